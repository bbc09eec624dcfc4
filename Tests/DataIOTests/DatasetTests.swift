import XCTest
import Randomness
@testable import DataIO

final class DatasetTests: XCTestCase {
    func sharedData() throws -> String {
        guard let d = Datasets.sharedDataDir() else {
            throw XCTSkip("shared data folder (../shared/data with README.md) not found; set RRAM_EDGE_DATA to point at it")
        }
        return d
    }

    func requireFile(_ path: String) throws {
        if !fileExists(path) { throw XCTSkip("\(path) absent: data set not installed, test skipped") }
    }

    func testSpokenDigitShapesFromReadme() throws {
        let dir = try sharedData() + "/spoken-digit"
        try requireFile(dir + "/train-features-idx3-float.gz")
        for (train, n) in [(true, 2100), (false, 900)] {
            let s = try Datasets.spokenDigit(dir: dir, train: train)
            XCTAssertEqual(s.count, n)
            XCTAssertEqual(s.sampleShape, [1, 23, 20])
            XCTAssertEqual(s.samples.count, n * 23 * 20)
            XCTAssertEqual(s.labels.count, n)
            XCTAssertEqual(Set(s.labels), Set(0...9))
            let r = try XCTUnwrap(valueRange(s.samples))
            XCTAssertGreaterThanOrEqual(r.min, 0, "README: features in [0, 1]")
            XCTAssertLessThanOrEqual(r.max, 1, "README: features in [0, 1]")
            XCTAssertGreaterThan(r.max, r.min)
            XCTAssertEqual(s.sample(n - 1).count, 460)
        }
    }

    func testEverySharedFileLoadsWithReadmeShape() throws {
        let root = try sharedData()
        let expected: [(String, [Int], String)] = [
            ("spoken-digit/train-features-idx3-float.gz", [2100, 23, 20], "float32"),
            ("spoken-digit/train-labels-idx1-ubyte.gz", [2100], "uint8"),
            ("spoken-digit/test-features-idx3-float.gz", [900, 23, 20], "float32"),
            ("spoken-digit/test-labels-idx1-ubyte.gz", [900], "uint8"),
            ("drive/train-images-idx4-ubyte.gz", [20, 584, 565, 3], "uint8"),
            ("drive/train-vessels-idx3-ubyte.gz", [20, 584, 565], "uint8"),
            ("drive/train-fov-idx3-ubyte.gz", [20, 584, 565], "uint8"),
            ("drive/test-images-idx4-ubyte.gz", [20, 584, 565, 3], "uint8"),
            ("drive/test-vessels-idx3-ubyte.gz", [20, 584, 565], "uint8"),
            ("drive/test-fov-idx3-ubyte.gz", [20, 584, 565], "uint8"),
        ]
        var checked = 0
        for (rel, shape, type) in expected {
            let p = root + "/" + rel
            guard fileExists(p) else { continue }
            let a = try IDX.read(path: p)
            XCTAssertEqual(a.shape, shape, rel)
            XCTAssertEqual(a.element.typeName, type, rel)
            if rel.contains("vessels") || rel.contains("fov") {
                let h = byteHistogram(try XCTUnwrap(a.uint8))
                XCTAssertEqual(h[0] + h[255], a.count, "\(rel): README says {0,255}")
                XCTAssertGreaterThan(h[255], 0, rel)
            }
            checked += 1
        }
        if checked == 0 { throw XCTSkip("no shared data files present under \(root)") }
        // Every file in the folder is one of the listed ones (a new file needs a README row + test).
        for sub in ["spoken-digit", "drive"] {
            for f in listDir(root + "/" + sub) {
                XCTAssertTrue(expected.contains { $0.0 == sub + "/" + f }, "unlisted file \(sub)/\(f)")
            }
        }
    }

    func testFashionMNIST() throws {
        try requireFile(Datasets.fashionMNISTDefaultDir + "/train-images-idx3-ubyte.gz")
        for (train, n) in [(true, 60000), (false, 10000)] {
            let s = try Datasets.fashionMNIST(train: train)
            XCTAssertEqual(s.count, n)
            XCTAssertEqual(s.sampleShape, [1, 28, 28])
            XCTAssertEqual(s.samples.count, n * 784)
            XCTAssertEqual(Set(s.labels), Set(0...9))
            let r = try XCTUnwrap(valueRange(Array(s.samples.prefix(784 * 500))))  // a prefix: debug builds are slow
            XCTAssertEqual(r.min, 0)
            XCTAssertEqual(r.max, 1)
            let v = s.samples[784 * 7 + 400]
            XCTAssertEqual(v, Float((v * 255).rounded()) / 255, "values are k / 255")
        }
    }

    func testMissingFashionMNISTSaysHowToInstall() {
        do {
            _ = try Datasets.fashionMNIST(dir: "/nonexistent-fmnist", train: true)
            XCTFail("expected an error")
        } catch let e as DataIOError {
            XCTAssertEqual(e.kind, .fileNotFound)
            XCTAssertEqual(e.file, "/nonexistent-fmnist/train-images-idx3-ubyte.gz")
            XCTAssertTrue(e.description.contains("apt-get install dataset-fashion-mnist"), e.description)
            XCTAssertTrue(e.description.contains("--data DIR"), e.description)
        } catch { XCTFail("\(error)") }
    }

    /// Synthetic Fashion-MNIST-shaped fixtures: known values, label range and count checks.
    func testSyntheticFixtures() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let pixels = (0..<(3 * 784)).map { UInt8($0 % 256) }
        try IDX.write(try IDXArray(shape: [3, 28, 28], element: .uint8(pixels)), to: dir + "/t10k-images-idx3-ubyte.gz", gzip: true)
        try IDX.write(try IDXArray(shape: [3], element: .uint8([9, 0, 4])), to: dir + "/t10k-labels-idx1-ubyte.gz", gzip: true)
        let s = try Datasets.fashionMNIST(dir: dir, train: false)
        XCTAssertEqual(s.labels, [9, 0, 4])
        XCTAssertEqual(s.samples[255], 1)
        XCTAssertEqual(s.samples[51], Float(51) / 255)
        XCTAssertEqual(s.samples[784 + 3], Float((784 + 3) % 256) / 255)
        // a label outside 0...9
        try IDX.write(try IDXArray(shape: [3], element: .uint8([9, 10, 4])), to: dir + "/t10k-labels-idx1-ubyte.gz", gzip: true)
        assertDataIOError(.inconsistent("label 10 at index 1 outside 0..<10"), file: dir + "/t10k-labels-idx1-ubyte.gz") {
            try Datasets.fashionMNIST(dir: dir, train: false)
        }
        // label count differs from the image count
        try IDX.write(try IDXArray(shape: [2], element: .uint8([1, 2])), to: dir + "/t10k-labels-idx1-ubyte.gz", gzip: true)
        assertDataIOError(.inconsistent("2 labels for 3 samples"), file: dir + "/t10k-labels-idx1-ubyte.gz") {
            try Datasets.fashionMNIST(dir: dir, train: false)
        }
        // spoken-digit: float features kept as stored
        let feats: [Float] = (0..<(2 * 23 * 20)).map { Float($0) / 1000 }
        try IDX.write(try IDXArray(shape: [2, 23, 20], element: .float32(feats)), to: dir + "/test-features-idx3-float.gz", gzip: true)
        try IDX.write(try IDXArray(shape: [2], element: .uint8([3, 7])), to: dir + "/test-labels-idx1-ubyte.gz", gzip: true)
        let sd = try Datasets.spokenDigit(dir: dir, train: false)
        XCTAssertEqual(sd.samples, feats)
        XCTAssertEqual(sd.sampleShape, [1, 23, 20])
        XCTAssertEqual(sd.labels, [3, 7])
        // uint8 where float32 features are expected
        try IDX.write(try IDXArray(shape: [2, 1, 1], element: .uint8([1, 2])), to: dir + "/test-features-idx3-float.gz", gzip: false)
        assertDataIOError(.inconsistent("expected float32 features N x T x F, got uint8 [2, 1, 1]"),
                          file: dir + "/test-features-idx3-float.gz") { try Datasets.spokenDigit(dir: dir, train: false) }
        assertDataIOError(.fileNotFound, file: dir + "/train-features-idx3-float.gz") { try Datasets.spokenDigit(dir: dir, train: true) }
    }

    func testValueRangeAndHistogram() {
        XCTAssertNil(valueRange([]))
        XCTAssertNil(valueRange([.nan]))
        XCTAssertEqual(valueRange([3, .nan, -1, 2])?.min, -1)
        XCTAssertEqual(valueRange([3, .nan, -1, 2])?.max, 3)
        let h = byteHistogram([0, 255, 255, 7])
        XCTAssertEqual(h.count, 256)
        XCTAssertEqual(h[255], 2); XCTAssertEqual(h[0], 1); XCTAssertEqual(h[7], 1); XCTAssertEqual(h.reduce(0, +), 4)
        XCTAssertEqual(scaledBytes(Array(0...255), dividedBy: 255), (0...255).map { Float($0) / 255 })
    }

    func testLabeledSetInitValidates() throws {
        assertDataIOError(.countMismatch(expected: 8, got: 7)) {
            try LabeledSet(count: 2, sampleShape: [1, 2, 2], samples: [Float](repeating: 0, count: 7), labels: [0, 1])
        }
        assertDataIOError(.countMismatch(expected: 2, got: 1)) {
            try LabeledSet(count: 2, sampleShape: [1, 2, 2], samples: [Float](repeating: 0, count: 8), labels: [0])
        }
        let s = try LabeledSet(count: 2, sampleShape: [2], samples: [1, 2, 3, 4], labels: [0, 1])
        XCTAssertEqual(Array(s.sample(1)), [3, 4])
    }
}

/// Random mutations and truncations of valid files must throw a DataIOError or decode; never trap.
final class MutationSmokeTests: XCTestCase {
    func mutate(_ seed: [UInt8], _ g: inout Xoshiro256StarStar) -> [UInt8] {
        var b = seed
        switch g.int(below: 4) {
        case 0: b = Array(b.prefix(g.int(below: b.count + 1)))                    // truncate
        case 1: for _ in 0...g.int(below: 4) where !b.isEmpty { b[g.int(below: b.count)] = UInt8(truncatingIfNeeded: g.next()) }
        case 2: for _ in 0...g.int(below: 3) where !b.isEmpty { b[g.int(below: min(b.count, 16))] = [0, 0xFF, 0x7F, 0x80][g.int(below: 4)] }
        default: b += (0..<g.int(below: 8)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        }
        return b
    }

    func testMutatedInputsNeverTrap() throws {
        var g = Xoshiro256StarStar(seed: 2026)
        let npySeeds = try NPYTests.sampleArrays().map(NPY.encode) + [
            npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", [1, 0, 0, 0, 2, 0, 0, 0], major: 2),
        ]
        let idxSeeds = [IDXTests.u8Bytes, IDXTests.f32Bytes, try Gzip.compress(IDXTests.u8Bytes), try Gzip.compress(IDXTests.f32Bytes)]
        var thrown = 0, decoded = 0
        for i in 0..<600 {
            let npy = i % 2 == 0
            let seeds = npy ? npySeeds : idxSeeds
            let b = mutate(seeds[g.int(below: seeds.count)], &g)
            do {
                if npy { _ = try NPY.decode(b, name: "mut.npy") } else { _ = try IDX.decode(b, name: "mut.idx", limit: 1 << 20) }
                decoded += 1
            } catch let e as DataIOError {
                XCTAssertEqual(e.file, npy ? "mut.npy" : "mut.idx")
                XCTAssertFalse(e.description.isEmpty)
                thrown += 1
            }
        }
        XCTAssertEqual(thrown + decoded, 600)
        XCTAssertGreaterThan(thrown, 100, "mutations should mostly be caught")
        XCTAssertGreaterThan(decoded, 10, "some mutations (payload bytes) stay valid")
    }

    func testEveryTruncationOfEveryFormat() throws {
        let seeds: [(Bool, [UInt8])] = [(false, IDXTests.f32Bytes), (false, try Gzip.compress(IDXTests.f32Bytes)),
                                        (true, NPY.encode(try NPYArray(shape: [2, 2], int16: [1, 2, 3, 4])))]
        for (npy, full) in seeds {
            for cut in 0..<full.count {
                let b = Array(full.prefix(cut))
                XCTAssertThrowsError(try npy ? NPY.decode(b, name: "c").count : IDX.decode(b, name: "c").count, "cut \(cut)") { e in
                    XCTAssertTrue(e is DataIOError)
                }
            }
        }
    }
}
