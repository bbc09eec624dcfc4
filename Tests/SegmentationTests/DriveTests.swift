import XCTest
import DataIO
@testable import Segmentation

final class DriveTests: XCTestCase {
    func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "drive-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// Writes a split of `n` images of h x w; map values as given (0/255 unless a test breaks them).
    func writeSplit(_ dir: String, n: Int, h: Int, w: Int, vessels: [UInt8]? = nil, fov: [UInt8]? = nil,
                    imageShape: [Int]? = nil, skipFOV: Bool = false) throws -> (rgb: [UInt8], vessels: [UInt8], fov: [UInt8]) {
        let p = DriveSet.paths(dir: dir, split: .test)
        let rgb = (0..<(n * h * w * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let v = vessels ?? (0..<(n * h * w)).map { $0 % 3 == 0 ? 255 : 0 }
        let f = fov ?? (0..<(n * h * w)).map { $0 % 5 == 0 ? 0 : 255 }
        try IDX.write(try IDXArray(shape: imageShape ?? [n, h, w, 3], element: .uint8(rgb)), to: p.images, gzip: true)
        try IDX.write(try IDXArray(shape: [n, h, w], element: .uint8(v)), to: p.vessels, gzip: true)
        if !skipFOV { try IDX.write(try IDXArray(shape: [n, h, w], element: .uint8(f)), to: p.fov, gzip: true) }
        return (rgb, v, f)
    }

    func testLoadsAValidSplitWithMapsAsZeroOne() throws {
        let dir = try tempDir()
        let (rgb, v, f) = try writeSplit(dir, n: 2, h: 7, w: 5)
        let s = try DriveSet.load(dir: dir, split: .test, size: nil)
        XCTAssertEqual([s.count, s.height, s.width], [2, 7, 5])
        XCTAssertEqual(s.rgb, rgb)
        XCTAssertEqual(s.vessels, v.map { $0 / 255 })
        XCTAssertEqual(s.fov, f.map { $0 / 255 })
        XCTAssertEqual(Array(s.vessels(1)), v[35..<70].map { $0 / 255 })
        XCTAssertEqual(Array(s.image(1)), Array(rgb[105..<210]))
    }

    func assertRefused(_ dir: String, size: (height: Int, width: Int)? = nil, file: String, mentions: String, line: UInt = #line) {
        XCTAssertThrowsError(try DriveSet.load(dir: dir, split: .test, size: size), line: line) { e in
            let text = "\(e)"
            XCTAssertTrue(text.hasPrefix(file), "error names \(file): \(text)", line: line)
            XCTAssertTrue(text.contains(mentions), "error mentions '\(mentions)': \(text)", line: line)
        }
    }

    func testMissingFOVFileIsNamed() throws {
        let dir = try tempDir()
        _ = try writeSplit(dir, n: 1, h: 4, w: 4, skipFOV: true)
        assertRefused(dir, file: DriveSet.paths(dir: dir, split: .test).fov, mentions: "file not found")
    }

    func testWrongSizedImagesAreNamed() throws {
        let dir = try tempDir()
        _ = try writeSplit(dir, n: 1, h: 584, w: 564)
        assertRefused(dir, size: (584, 565), file: DriveSet.paths(dir: dir, split: .test).images, mentions: "584 x 564")
        // the default size is DRIVE's
        XCTAssertThrowsError(try DriveSet.load(dir: dir, split: .test))
    }

    func testGreyscaleImagesAreRefused() throws {
        let dir = try tempDir()
        // the same bytes declared as 3 images of 4 x 4 x 1 channel... shape N x H x W x 1
        let p = DriveSet.paths(dir: dir, split: .test)
        _ = try writeSplit(dir, n: 1, h: 4, w: 4)
        try IDX.write(try IDXArray(shape: [3, 4, 4, 1], element: .uint8([UInt8](repeating: 9, count: 48))), to: p.images, gzip: true)
        assertRefused(dir, file: p.images, mentions: "x 3")
    }

    func testVesselValueOtherThan0Or255IsNamedWithItsPixel() throws {
        let dir = try tempDir()
        var v = [UInt8](repeating: 0, count: 2 * 6 * 5)
        v[30 + 2 * 5 + 4] = 128                  // image 1, row 2, column 4
        _ = try writeSplit(dir, n: 2, h: 6, w: 5, vessels: v)
        assertRefused(dir, file: DriveSet.paths(dir: dir, split: .test).vessels, mentions: "value 128 at image 1, row 2, column 4")
    }

    func testFOVOfAnotherSizeIsNamed() throws {
        let dir = try tempDir()
        _ = try writeSplit(dir, n: 2, h: 6, w: 5)
        let p = DriveSet.paths(dir: dir, split: .test)
        try IDX.write(try IDXArray(shape: [2, 5, 6], element: .uint8([UInt8](repeating: 255, count: 60))), to: p.fov, gzip: true)
        assertRefused(dir, file: p.fov, mentions: "[2, 5, 6]")
    }

    func testInMemorySetRefusesMapValuesAboveOne() {
        XCTAssertThrowsError(try DriveSet(count: 1, height: 1, width: 2, rgb: [1, 2, 3, 4, 5, 6], vessels: [0, 2], fov: [1, 1]))
        XCTAssertThrowsError(try DriveSet(count: 1, height: 1, width: 2, rgb: [1, 2, 3], vessels: [0, 1], fov: [1, 1]))
        XCTAssertNoThrow(try DriveSet(count: 1, height: 1, width: 2, rgb: [1, 2, 3, 4, 5, 6], vessels: [0, 1], fov: [1, 1]))
    }

    func testSharedDRIVEHasTheREADMEsShapeAndPlausibleMaps() throws {
        guard let dir = DriveSet.defaultDir, fileExists(DriveSet.paths(dir: dir, split: .train).images) else {
            throw XCTSkip("DRIVE absent (shared/data/drive): data set not installed, test skipped")
        }
        for split in [DriveSet.Split.train, .test] {
            let s = try DriveSet.load(dir: dir, split: split)
            XCTAssertEqual([s.count, s.height, s.width], [20, 584, 565], "\(split)")
            for i in 0..<s.count {
                let fov = s.fov(i).reduce(0) { $0 + Int($1) }, px = s.pixels
                // DRIVE's field of view is a disc of ~540 px diameter: about 69 % of the frame
                XCTAssertGreaterThan(fov, px * 6 / 10, "\(split) image \(i): FOV \(fov) of \(px)")
                XCTAssertLessThan(fov, px * 8 / 10, "\(split) image \(i): FOV \(fov) of \(px)")
                let vessel = s.vessels(i).reduce(0) { $0 + Int($1) }
                // vessels cover roughly 8-15 % of the image
                XCTAssertGreaterThan(vessel, px / 20, "\(split) image \(i): vessels \(vessel)")
                XCTAssertLessThan(vessel, px / 5, "\(split) image \(i): vessels \(vessel)")
            }
        }
    }
}
