import XCTest
import Foundation
import DataIO
import Randomness
@testable import Segmentation

// MARK: - Shared helpers (OpenCV through python3, the DRIVE images)

/// The package root: this file is Tests/SegmentationTests/CLAHETests.swift.
func packageRoot() -> String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

/// Runs `argv` (argv[0] an absolute path); returns the exit status and the captured stderr.
@discardableResult
func runProcess(_ argv: [String]) throws -> (status: Int32, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let data = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A python3 that imports cv2 and numpy: `$RRAM_EDGE_PYTHON`, the one on PATH, then Debian's
/// /usr/bin/python3 (python3-opencv installs there; a pyenv python on PATH does not see it).
func pythonWithOpenCV() throws -> [String] {
    var candidates: [[String]] = []
    if let p = ProcessInfo.processInfo.environment["RRAM_EDGE_PYTHON"] { candidates.append([p]) }
    candidates += [["/usr/bin/env", "python3"], ["/usr/bin/python3"]]
    var tried: [String] = []
    for c in candidates {
        guard FileManager.default.isExecutableFile(atPath: c[0]) else { continue }
        if let r = try? runProcess(c + ["-c", "import cv2, numpy"]), r.status == 0 { return c }
        tried.append(c.joined(separator: " "))
    }
    throw XCTSkip("python3-opencv is not installed (apt-get install python3-opencv): no python3 imports cv2 and numpy (tried \(tried.joined(separator: ", ")))")
}

/// A fresh temporary directory, removed by the caller.
func makeScratchDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segmentation-test-" + UUID().uuidString).path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// `scripts/opencv-clahe.py` on same-size images: OpenCV's CLAHE output of each.
func openCVCLAHE(_ images: [GrayImage], clipLimit: Double = 2.0, tilesX: Int = 8, tilesY: Int = 8) throws -> [GrayImage] {
    let python = try pythonWithOpenCV()
    let dir = try makeScratchDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let w = images[0].width, h = images[0].height
    let input = try NPYArray(shape: [images.count, h, w], uint8: images.flatMap(\.pixels))
    try NPY.write(input, to: dir + "/in.npy")
    let r = try runProcess(python + [packageRoot() + "/scripts/opencv-clahe.py", dir + "/in.npy", dir + "/out.npy",
                                     "--clip", String(clipLimit), "--tiles", String(tilesX), String(tilesY)])
    guard r.status == 0 else { throw SegmentationError("opencv-clahe.py failed (\(r.status)): \(r.stderr)") }
    let out = try NPY.read(path: dir + "/out.npy")
    XCTAssertEqual(out.shape, [images.count, h, w])
    let px = try out.uint8s()
    return (0..<images.count).map { GrayImage(width: w, height: h, pixels: Array(px[($0 * w * h)..<(($0 + 1) * w * h)])) }
}

/// The 20 DRIVE training images (RGB, 584 x 565), or a skip when the data set is absent.
func driveTrainingRGB() throws -> (count: Int, height: Int, width: Int, rgb: [UInt8]) {
    guard let root = Datasets.sharedDataDir() else {
        throw XCTSkip("shared data folder (../shared/data with README.md) not found; set RRAM_EDGE_DATA to point at it")
    }
    let path = root + "/drive/train-images-idx4-ubyte.gz"
    guard fileExists(path) else { throw XCTSkip("\(path) absent: DRIVE not installed, test skipped") }
    let a = try IDX.read(path: path)
    XCTAssertEqual(a.shape.count, 4)
    XCTAssertEqual(a.shape.last, 3)
    return (a.shape[0], a.shape[1], a.shape[2], try XCTUnwrap(a.uint8))
}

struct Agreement {
    var exact = 0, total = 0, maxDiff = 0
    var fraction: Double { total == 0 ? 1 : Double(exact) / Double(total) }
    mutating func add(_ o: Agreement) { exact += o.exact; total += o.total; maxDiff = max(maxDiff, o.maxDiff) }
}

/// Pixel-by-pixel agreement; fails (naming the case, the pixel, expected and got) where the
/// difference exceeds `tolerance`, reporting the first five such pixels and their count.
func agreement(_ name: String, ours: GrayImage, reference: GrayImage, tolerance: Int = 1,
               file: StaticString = #filePath, line: UInt = #line) -> Agreement {
    XCTAssertEqual(ours.width, reference.width, name, file: file, line: line)
    XCTAssertEqual(ours.height, reference.height, name, file: file, line: line)
    var a = Agreement(), bad = 0
    for i in 0..<min(ours.pixels.count, reference.pixels.count) {
        let d = abs(Int(ours.pixels[i]) - Int(reference.pixels[i]))
        a.total += 1
        if d == 0 { a.exact += 1 }
        a.maxDiff = max(a.maxDiff, d)
        if d > tolerance {
            bad += 1
            if bad <= 5 {
                XCTFail("\(name): pixel \(i) (x \(i % ours.width), y \(i / ours.width)): expected \(reference.pixels[i]), got \(ours.pixels[i])",
                        file: file, line: line)
            }
        }
    }
    if bad > 5 { XCTFail("\(name): \(bad) pixels differ by more than \(tolerance)", file: file, line: line) }
    return a
}

func randomImage(width: Int, height: Int, seed: UInt64, values: [UInt8]? = nil) -> GrayImage {
    var g = Xoshiro256StarStar(seed: seed)
    let px: [UInt8] = (0..<(width * height)).map { _ in
        if let v = values { return v[g.int(below: v.count)] }
        return UInt8(truncatingIfNeeded: g.next())
    }
    return GrayImage(width: width, height: height, pixels: px)
}

// MARK: - CLAHE

final class CLAHETests: XCTestCase {
    // MARK: against OpenCV

    func testAgainstOpenCV() throws {
        _ = try pythonWithOpenCV()
        var cases: [(String, GrayImage, CLAHE)] = []
        let sizes = [(64, 64), (565, 584), (61, 37), (8, 8), (64, 37), (61, 64), (100, 9)]
        for (i, (w, h)) in sizes.enumerated() {
            cases.append(("random \(w)x\(h)", randomImage(width: w, height: h, seed: UInt64(100 + i)), CLAHE()))
        }
        for v: UInt8 in [0, 128, 255] {
            cases.append(("constant \(v) 64x64", GrayImage(width: 64, height: 64, pixels: [UInt8](repeating: v, count: 4096)), CLAHE()))
            cases.append(("constant \(v) 61x37", GrayImage(width: 61, height: 37, pixels: [UInt8](repeating: v, count: 61 * 37)), CLAHE()))
        }
        cases.append(("values {0,255} 64x64", randomImage(width: 64, height: 64, seed: 7, values: [0, 255]), CLAHE()))
        cases.append(("values {10,11,12,200} 61x37", randomImage(width: 61, height: 37, seed: 8, values: [10, 11, 12, 200]), CLAHE()))
        cases.append(("values {0..4} 565x584", randomImage(width: 565, height: 584, seed: 9, values: [0, 1, 2, 3, 4]), CLAHE()))
        let gradient = GrayImage(width: 300, height: 200, pixels: (0..<60000).map { UInt8(($0 % 300) * 255 / 299) })
        cases.append(("horizontal gradient 300x200", gradient, CLAHE()))
        cases.append(("random 61x37 clip 40 grid 3x5", randomImage(width: 61, height: 37, seed: 11), CLAHE(clipLimit: 40, tilesX: 3, tilesY: 5)))
        cases.append(("values {0..4} 100x80 clip 0.5 grid 1x1", randomImage(width: 100, height: 80, seed: 12, values: [0, 1, 2, 3, 4]), CLAHE(clipLimit: 0.5, tilesX: 1, tilesY: 1)))
        cases.append(("random 97x131 clip 1000 grid 16x4", randomImage(width: 97, height: 131, seed: 13), CLAHE(clipLimit: 1000, tilesX: 16, tilesY: 4)))
        var all = Agreement()
        for (name, img, c) in cases {
            let ref = try openCVCLAHE([img], clipLimit: c.clipLimit, tilesX: c.tilesX, tilesY: c.tilesY)[0]
            let a = agreement(name, ours: try c.apply(img), reference: ref)
            print("CLAHE vs OpenCV, \(name): \(a.exact)/\(a.total) exact (\(a.fraction)), max diff \(a.maxDiff)")
            all.add(a)
        }
        print("CLAHE vs OpenCV, all synthetic cases: \(all.exact)/\(all.total) exact (\(all.fraction)), max diff \(all.maxDiff)")
    }

    /// The images CLAHE sees in the paper's chain: DRIVE after grayscale and min-max.
    func testAgainstOpenCVOnDRIVE() throws {
        _ = try pythonWithOpenCV()
        let d = try driveTrainingRGB()
        let n = d.width * d.height
        var inputs: [GrayImage] = []
        for k in 0..<d.count {
            let gray = try Preprocess.grayscale(rgb: Array(d.rgb[(k * n * 3)..<((k + 1) * n * 3)]), width: d.width, height: d.height)
            inputs.append(GrayImage(width: d.width, height: d.height, pixels: Preprocess.truncatedToUInt8(Preprocess.minMaxTo255(gray))))
        }
        let refs = try openCVCLAHE(inputs)
        var all = Agreement()
        for k in 0..<d.count {
            all.add(agreement("DRIVE training image \(k + 1)", ours: try CLAHE().apply(inputs[k]), reference: refs[k]))
        }
        print("CLAHE vs OpenCV, \(d.count) DRIVE training images: \(all.exact)/\(all.total) exact (\(all.fraction)), max diff \(all.maxDiff)")
    }

    // MARK: properties (no OpenCV)

    func testConstantImageMapsToOneValue() throws {
        for (w, h) in [(64, 64), (61, 37), (8, 8), (565, 584)] {
            for v: UInt8 in [0, 1, 77, 254, 255] {
                let out = try CLAHE().apply(GrayImage(width: w, height: h, pixels: [UInt8](repeating: v, count: w * h)))
                let first = out.pixels[0]
                if let i = out.pixels.firstIndex(where: { $0 != first }) {
                    XCTFail("constant \(v) \(w)x\(h): pixel \(i): expected \(first) (pixel 0's value), got \(out.pixels[i])")
                }
            }
        }
    }

    func testMonotoneInOneTile() throws {
        for (w, h, clip) in [(64, 64, 2.0), (61, 37, 2.0), (61, 37, 0.3), (200, 3, 8.0)] {
            let img = randomImage(width: w, height: h, seed: UInt64(w * h), values: (0..<40).map { UInt8($0 * 6) })
            let out = try CLAHE(clipLimit: clip, tilesX: 1, tilesY: 1).apply(img)
            // With one tile every pixel reads the same LUT: output as a function of input.
            var byValue = [Int](repeating: -1, count: 256)
            for i in 0..<img.pixels.count {
                let v = Int(img.pixels[i]), o = Int(out.pixels[i])
                if byValue[v] >= 0 && byValue[v] != o {
                    XCTFail("\(w)x\(h) clip \(clip): pixel \(i) input \(v): expected \(byValue[v]) (as earlier pixels), got \(o)")
                }
                byValue[v] = o
            }
            var last = -1, lastValue = -1
            for v in 0..<256 where byValue[v] >= 0 {
                XCTAssertGreaterThanOrEqual(byValue[v], last, "\(w)x\(h) clip \(clip): input \(v) maps below input \(lastValue)")
                last = byValue[v]; lastValue = v
            }
        }
    }

    /// Plain histogram equalization of one tile, straight from the definition:
    /// lut[v] = round(255 * #{pixels <= v} / area). Areas are powers of two here, so the
    /// quotient is exact in float32 and double and the rounding (half to even) is unambiguous.
    func equalizationOracle(_ img: GrayImage, x0: Int, y0: Int, w: Int, h: Int) -> [UInt8] {
        var hist = [Int](repeating: 0, count: 256)
        for y in y0..<(y0 + h) { for x in x0..<(x0 + w) { hist[Int(img.pixels[y * img.width + x])] += 1 } }
        var cdf = 0
        return (0..<256).map { v in
            cdf += hist[v]
            return UInt8((Double(cdf) * 255 / Double(w * h)).rounded(.toNearestOrEven))
        }
    }

    func testHugeClipLimitIsPlainEqualizationPerTile() throws {
        for clip in [300.0, 1e300, .infinity] {
            // 8 x 4 tiles of 8 x 8 pixels.
            let img = randomImage(width: 64, height: 32, seed: 21, values: (0..<50).map { UInt8($0 * 5) })
            let c = CLAHE(clipLimit: clip, tilesX: 8, tilesY: 4)
            let luts = try c.tileLUTs(img)
            for ty in 0..<4 {
                for tx in 0..<8 {
                    let oracle = equalizationOracle(img, x0: tx * 8, y0: ty * 8, w: 8, h: 8)
                    for v in 0..<256 where luts[(ty * 8 + tx) * 256 + v] != oracle[v] {
                        XCTFail("clip \(clip) tile (\(tx), \(ty)) value \(v): expected \(oracle[v]), got \(luts[(ty * 8 + tx) * 256 + v])")
                    }
                }
            }
            // One tile: the output is the tile's equalization applied to every pixel.
            let one = randomImage(width: 32, height: 32, seed: 22)
            let oracle = equalizationOracle(one, x0: 0, y0: 0, w: 32, h: 32)
            let out = try CLAHE(clipLimit: clip, tilesX: 1, tilesY: 1).apply(one)
            for i in 0..<one.pixels.count where out.pixels[i] != oracle[Int(one.pixels[i])] {
                XCTFail("clip \(clip) 1x1 grid: pixel \(i): expected \(oracle[Int(one.pixels[i])]), got \(out.pixels[i])")
            }
        }
    }

    func testPaddingGeometryFollowsOpenCV() throws {
        // Divisible: no padding. Otherwise both axes grow by tiles - size % tiles, even an axis
        // that was divisible (it grows by a whole tiles count).
        let c = CLAHE()
        XCTAssertEqual(try c.geometry(width: 64, height: 64), .init(paddedWidth: 64, paddedHeight: 64, tileWidth: 8, tileHeight: 8, clipCount: 1))
        let g = try c.geometry(width: 565, height: 584)
        XCTAssertEqual([g.paddedWidth, g.paddedHeight, g.tileWidth, g.tileHeight], [568, 592, 71, 74])
        XCTAssertEqual(g.clipCount, Int(2.0 * 71 * 74 / 256))
        let q = try c.geometry(width: 64, height: 37)
        XCTAssertEqual([q.paddedWidth, q.paddedHeight, q.tileWidth, q.tileHeight], [72, 40, 9, 5])
        XCTAssertEqual(try CLAHE(clipLimit: .infinity).geometry(width: 64, height: 64).clipCount, 64)
        XCTAssertEqual(CLAHE.reflect101(-1, 5), 1)
        XCTAssertEqual(CLAHE.reflect101(5, 5), 3)
        XCTAssertEqual(CLAHE.reflect101(9, 5), 1)  // reflected twice
        XCTAssertEqual(CLAHE.reflect101(1, 1), 0)
    }

    func testBadParametersThrowNotTrap() {
        let img = GrayImage(width: 16, height: 16, pixels: [UInt8](repeating: 3, count: 256))
        let bad: [(CLAHE, GrayImage, String)] = [
            (CLAHE(clipLimit: 0), img, "clip limit must be > 0, got 0.0"),
            (CLAHE(clipLimit: -2), img, "clip limit must be > 0, got -2.0"),
            (CLAHE(clipLimit: .nan), img, "clip limit must be > 0, got nan"),
            (CLAHE(tilesX: 0), img, "at least 1 x 1, got 0 x 8"),
            (CLAHE(tilesX: 4, tilesY: -3), img, "at least 1 x 1, got 4 x -3"),
            (CLAHE(tilesX: 17, tilesY: 2), img, "at least as large as its 17 x 2 tile grid, got 16 x 16"),
            (CLAHE(), GrayImage(width: 7, height: 100, pixels: [UInt8](repeating: 0, count: 700)), "got 7 x 100"),
            (CLAHE(), GrayImage(width: 0, height: 0, pixels: []), "got 0 x 0"),
        ]
        for (c, image, fragment) in bad {
            do {
                _ = try c.apply(image)
                XCTFail("\(c) on \(image.width)x\(image.height): expected an error containing '\(fragment)', got an image")
            } catch let e as SegmentationError {
                XCTAssertTrue(e.description.contains(fragment), "expected '\(fragment)' in: \(e)")
                XCTAssertNil(e.file)
            } catch {
                XCTFail("expected SegmentationError, got \(error)")
            }
        }
    }

    func testSpeedOnDRIVESize() throws {
        let img = randomImage(width: 565, height: 584, seed: 5)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<5 { _ = try CLAHE().apply(img) }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 5e6
        print("CLAHE 565x584: \(ms) ms per image (this build)")
        // Debug builds take tens of milliseconds, optimized ones a few; a second means a
        // per-pixel allocation or a quadratic loop crept in.
        XCTAssertLessThan(ms, 1000, "CLAHE on a DRIVE-size image")
    }
}
