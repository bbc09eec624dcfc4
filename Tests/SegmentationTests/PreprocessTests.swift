import XCTest
import Foundation
import DataIO
import Randomness
@testable import Segmentation

/// numpy's float64 `add.reduce` over a contiguous array, so the data-set z-score below is the
/// paper's to the last bit: the array goes through the ufunc loop in buffers of 8192 values,
/// added one after the other to the result; each buffer is summed pairwise (8 accumulators
/// over blocks of at most 128, halves split at a multiple of 8). A plain pairwise sum over the
/// whole array differs from numpy in the last bits, and that moves pixels across a uint8 step.
func numpySum(_ a: [Double]) -> Double {
    a.withUnsafeBufferPointer { p in
        var total = 0.0
        var start = 0
        while start < p.count {
            let n = min(8192, p.count - start)
            total += numpyPairwiseSum(p, start, n)
            start += n
        }
        return total
    }
}

func numpyPairwiseSum(_ a: UnsafeBufferPointer<Double>, _ start: Int, _ n: Int) -> Double {
    if n < 8 {
        var s = 0.0
        for i in 0..<n { s += a[start + i] }
        return s
    }
    if n <= 128 {
        var r = (0..<8).map { a[start + $0] }
        var i = 8
        while i < n - n % 8 {
            for j in 0..<8 { r[j] += a[start + i + j] }
            i += 8
        }
        var s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n { s += a[start + i]; i += 1 }
        return s
    }
    var n2 = n / 2
    n2 -= n2 % 8
    return numpyPairwiseSum(a, start, n2) + numpyPairwiseSum(a, start + n2, n - n2)
}

/// The paper's `dataset_normalized` followed by `astype(uint8)`, literally: z-score with the
/// mean and (population) standard deviation of all images together, then min-max per image.
func dataSetZScoreBytes(_ grays: [[Double]]) -> [[UInt8]] {
    let all = grays.flatMap { $0 }
    let n = Double(all.count)
    let mean = numpySum(all) / n
    let sq = all.map { ($0 - mean) * ($0 - mean) }
    let std = (numpySum(sq) / n).squareRoot()
    return grays.map { g in
        let z = g.map { ($0 - mean) / std }
        let lo = z.min()!, hi = z.max()!
        return z.map { UInt8(((($0 - lo) / (hi - lo)) * 255)) }
    }
}

final class PreprocessTests: XCTestCase {
    func testGrayscaleFormula() throws {
        let rgb: [UInt8] = [0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 201, 7, 99, 1, 254, 128]
        let gray = try Preprocess.grayscale(rgb: rgb, width: 4, height: 2)
        XCTAssertEqual(gray.count, 8)
        for i in 0..<8 {
            let r = Double(rgb[3 * i]), g = Double(rgb[3 * i + 1]), b = Double(rgb[3 * i + 2])
            XCTAssertEqual(gray[i], r * 0.299 + g * 0.587 + b * 0.114, "pixel \(i) (\(r), \(g), \(b))")
        }
        XCTAssertEqual(gray[0], 0)
        XCTAssertEqual(gray[1], 255, accuracy: 1e-12)
        XCTAssertEqual(gray[2], 255 * 0.299, accuracy: 1e-12)
        XCTAssertThrowsError(try Preprocess.grayscale(rgb: rgb, width: 3, height: 2)) { e in
            XCTAssertTrue("\(e)".contains("24 bytes for a 3 x 2 RGB image"), "\(e)")
        }
    }

    func testMinMaxMapsMinTo0AndMaxTo255() {
        var g = Xoshiro256StarStar(seed: 3)
        let v = (0..<1000).map { _ in g.uniform(-7, 300) }
        let s = Preprocess.minMaxTo255(v)
        let lo = v.firstIndex(of: v.min()!)!, hi = v.firstIndex(of: v.max()!)!
        XCTAssertEqual(s[lo], 0)
        XCTAssertEqual(s[hi], 255)
        for i in 0..<v.count {
            XCTAssertTrue(s[i] >= 0 && s[i] <= 255, "value \(i): \(s[i]) outside [0, 255]")
            let expected = ((v[i] - v[lo]) / (v[hi] - v[lo])) * 255
            XCTAssertEqual(s[i], expected, "value \(i)")
        }
        XCTAssertEqual(Preprocess.minMaxTo255([4, 4, 4]), [0, 0, 0], "a constant image has no contrast: zeros")
        XCTAssertEqual(Preprocess.minMaxTo255([]), [])
        XCTAssertEqual(Preprocess.truncatedToUInt8([0, 0.99, 1, 254.9999, 255, 300, -3, .nan]), [0, 0, 1, 254, 255, 255, 0, 0])
    }

    func testGammaTableFormula() throws {
        let t = try Preprocess.gammaTable(gamma: 1.2)
        XCTAssertEqual(t.count, 256)
        for i in 0..<256 {
            let expected = UInt8((pow(Double(i) / 255.0, 1.0 / 1.2) * 255).rounded(.towardZero))
            XCTAssertEqual(t[i], expected, "gamma table entry \(i)")
        }
        XCTAssertEqual(t[0], 0)
        XCTAssertEqual(t[255], 255)
        for i in 1..<256 { XCTAssertGreaterThanOrEqual(t[i], t[i - 1], "entry \(i)") }
        XCTAssertGreaterThan(t[128], 128, "gamma 1.2 brightens the mid-tones")
        XCTAssertThrowsError(try Preprocess.gammaTable(gamma: 0))
        XCTAssertThrowsError(try Preprocess.gammaTable(gamma: .nan))
        let img = GrayImage(width: 3, height: 1, pixels: [0, 128, 255])
        XCTAssertEqual(Preprocess.applyTable(t, to: img).pixels, [t[0], t[128], t[255]])
    }

    func testGammaTableAgainstNumpy() throws {
        let python = try pythonWithOpenCV()
        let dir = try makeScratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let code = "import sys, numpy as np\ninv = 1.0 / 1.2\nnp.save(sys.argv[1], np.array([((i / 255.0) ** inv) * 255 for i in np.arange(0, 256)]).astype('uint8'))"
        let r = try runProcess(python + ["-c", code, dir + "/t.npy"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ref = try NPY.read(path: dir + "/t.npy").uint8s()
        let t = try Preprocess.gammaTable(gamma: 1.2)
        for i in 0..<256 where t[i] != ref[i] { XCTFail("gamma table entry \(i): expected \(ref[i]) (numpy), got \(t[i])") }
    }

    func testChainIsTheCompositionOfItsSteps() throws {
        let (w, h) = (61, 37)
        let rgb = randomImage(width: w * 3, height: h, seed: 31).pixels
        let p = Preprocess()
        let bytes = try p.bytes(rgb: rgb, width: w, height: h)
        let scaled = Preprocess.truncatedToUInt8(Preprocess.minMaxTo255(try Preprocess.grayscale(rgb: rgb, width: w, height: h)))
        let expected = Preprocess.applyTable(try Preprocess.gammaTable(gamma: 1.2),
                                             to: try CLAHE().apply(GrayImage(width: w, height: h, pixels: scaled)))
        XCTAssertEqual(bytes, expected)
        let f = try p.apply(rgb: rgb, width: w, height: h)
        XCTAssertEqual(f.count, w * h)
        for i in 0..<f.count where f[i] != Float(bytes.pixels[i]) / 255 {
            XCTFail("pixel \(i): expected \(Float(bytes.pixels[i]) / 255), got \(f[i])")
        }
        XCTAssertThrowsError(try Preprocess(gamma: -1).apply(rgb: rgb, width: w, height: h))
        XCTAssertThrowsError(try p.apply(rgb: Array(rgb.prefix(3 * 7 * 7)), width: 7, height: 7)) { e in
            XCTAssertTrue("\(e)".contains("tile grid"), "\(e)")
        }
    }

    struct DriveGrays { let count: Int, width: Int, height: Int, rgb: [UInt8], grays: [[Double]] }

    func driveGrays() throws -> DriveGrays {
        let d = try driveTrainingRGB()
        let n = d.width * d.height
        let grays = try (0..<d.count).map { k in
            try Preprocess.grayscale(rgb: Array(d.rgb[(k * n * 3)..<((k + 1) * n * 3)]), width: d.width, height: d.height)
        }
        return DriveGrays(count: d.count, width: d.width, height: d.height, rgb: d.rgb, grays: grays)
    }

    func finalBytes(_ scaled: [UInt8], _ d: DriveGrays) throws -> [UInt8] {
        let table = try Preprocess.gammaTable(gamma: 1.2)
        return Preprocess.applyTable(table, to: try CLAHE().apply(GrayImage(width: d.width, height: d.height, pixels: scaled))).pixels
    }

    /// The per-image min-max (what Preprocess does) against the paper's data-set z-score then
    /// min-max, on the 20 DRIVE training images: pixels whose uint8 differs, before CLAHE and
    /// after the whole chain.
    func testPerImageFormAgainstDataSetZScoreOnDRIVE() throws {
        let d = try driveGrays()
        let literal = dataSetZScoreBytes(d.grays)
        var scaledDiff = 0, finalDiff = 0, maxDiff = 0
        for k in 0..<d.count {
            let perImage = Preprocess.truncatedToUInt8(Preprocess.minMaxTo255(d.grays[k]))
            for i in 0..<perImage.count where perImage[i] != literal[k][i] {
                scaledDiff += 1
                maxDiff = max(maxDiff, abs(Int(perImage[i]) - Int(literal[k][i])))
            }
            let a = try finalBytes(perImage, d), b = try finalBytes(literal[k], d)
            for i in 0..<a.count where a[i] != b[i] { finalDiff += 1 }
        }
        let total = d.count * d.width * d.height
        print("per-image vs data-set z-score, \(d.count) DRIVE training images (\(total) pixels): \(scaledDiff) differ after the uint8 cast (max diff \(maxDiff)), \(finalDiff) after CLAHE and gamma")
        XCTAssertLessThanOrEqual(maxDiff, 1, "the two forms agree in real arithmetic: only rounding may differ")
        XCTAssertLessThan(Double(scaledDiff), 1e-4 * Double(total), "more than float rounding between the two forms")
    }

    /// The paper's own numpy/OpenCV code (scripts/opencv-clahe.py --paper-chain) on the DRIVE
    /// training images against this module: the literal data-set form must match it exactly;
    /// the per-image form is counted.
    func testAgainstPaperChainOnDRIVE() throws {
        let python = try pythonWithOpenCV()
        let d = try driveGrays()
        let dir = try makeScratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPY.write(try NPYArray(shape: [d.count, d.height, d.width, 3], uint8: d.rgb), to: dir + "/rgb.npy")
        let r = try runProcess(python + [packageRoot() + "/scripts/opencv-clahe.py", "--paper-chain",
                                         dir + "/rgb.npy", dir + "/norm.npy", dir + "/final.npy"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let norm = try NPY.read(path: dir + "/norm.npy").uint8s(), final = try NPY.read(path: dir + "/final.npy").uint8s()
        let n = d.width * d.height
        XCTAssertEqual(norm.count, d.count * n)
        XCTAssertEqual(final.count, d.count * n)
        let literal = dataSetZScoreBytes(d.grays)
        var perImageFinalDiff = 0, literalMismatch = 0
        let p = Preprocess()
        for k in 0..<d.count {
            let refNorm = Array(norm[(k * n)..<((k + 1) * n)]), refFinal = Array(final[(k * n)..<((k + 1) * n)])
            for i in 0..<n where literal[k][i] != refNorm[i] {
                literalMismatch += 1
                if literalMismatch <= 5 { XCTFail("image \(k + 1) pixel \(i): data-set z-score: expected \(refNorm[i]) (numpy), got \(literal[k][i])") }
            }
            let literalFinal = try finalBytes(literal[k], d)
            for i in 0..<n where literalFinal[i] != refFinal[i] {
                literalMismatch += 1
                if literalMismatch <= 5 { XCTFail("image \(k + 1) pixel \(i): chain from the literal form: expected \(refFinal[i]) (paper code), got \(literalFinal[i])") }
            }
            let ours = try p.bytes(rgb: Array(d.rgb[(k * n * 3)..<((k + 1) * n * 3)]), width: d.width, height: d.height).pixels
            for i in 0..<n where ours[i] != refFinal[i] { perImageFinalDiff += 1 }
        }
        XCTAssertEqual(literalMismatch, 0)
        print("paper code vs Preprocess (per-image form), \(d.count) DRIVE training images: \(perImageFinalDiff) of \(d.count * n) final bytes differ")
        XCTAssertLessThan(Double(perImageFinalDiff), 1e-3 * Double(d.count * n))
    }
}
