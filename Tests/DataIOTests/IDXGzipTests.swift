import XCTest
import Randomness
@testable import DataIO

final class GzipTests: XCTestCase {
    func testRoundTripSizes() throws {
        var g = Xoshiro256StarStar(seed: 1)
        for n in [0, 1, 100, 70_000, 600_000] {
            let data = (0..<n).map { i in UInt8(truncatingIfNeeded: i % 7 == 0 ? Int(g.next() & 0xFF) : i / 13) }
            let z = try Gzip.compress(data)
            XCTAssertTrue(Gzip.isGzip(z))
            XCTAssertEqual(try Gzip.decompress(z, name: "x.gz"), data, "n=\(n)")
        }
    }

    func testConcatenatedMembersAndZeroPadding() throws {
        let a = Array("hello ".utf8), b = Array("world".utf8)
        let z = try Gzip.compress(a) + Gzip.compress(b, level: 9)
        XCTAssertEqual(try Gzip.decompress(z, name: "c.gz"), a + b)
        XCTAssertEqual(try Gzip.decompress(z + [0, 0, 0, 0], name: "c.gz"), a + b)
    }

    func testTrailingGarbageIsAnError() throws {
        let z = try Gzip.compress(Array("abc".utf8))
        let e = assertDataIOError(.gzip("trailing garbage after the last gzip member"), file: "g.gz") {
            try Gzip.decompress(z + [0x41, 0x42], name: "g.gz")
        }
        XCTAssertEqual(e?.offset, z.count)
    }

    func testTruncatedGzip() throws {
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let z = try Gzip.compress(data)
        for cut in [3, 10, z.count / 2, z.count - 1] {
            assertGzipError(containing: "truncated") { try Gzip.decompress(Array(z[0..<cut]), name: "t.gz") }
        }
    }

    func testCorruptCRC() throws {
        var z = try Gzip.compress(Array("some text to compress".utf8))
        z[z.count - 6] ^= 0xFF  // inside the CRC32 trailer
        assertGzipError(containing: "corrupt") { try Gzip.decompress(z, name: "crc.gz") }
    }

    func testGzipBombOverLimitIsTooLarge() throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)  // 4 MiB of zeros -> a few KiB compressed
        let z = try Gzip.compress(zeros, level: 9)
        XCTAssertLessThan(z.count, 10_000)
        assertDataIOError(.tooLarge(1 << 20), file: "bomb.gz") { try Gzip.decompress(z, name: "bomb.gz", limit: 1 << 20) }
        // ... also through IDX.decode
        assertDataIOError(.tooLarge(1000), file: "bomb.idx.gz") { try IDX.decode(z, name: "bomb.idx.gz", limit: 1000) }
        XCTAssertEqual(try Gzip.decompress(z, name: "ok.gz", limit: 4 << 20).count, 4 << 20)
    }

    func testNotGzipAndBadLevel() {
        assertGzipError(containing: "magic") { try Gzip.decompress([1, 2, 3], name: "n.gz") }
        assertGzipError(containing: "level 42") { try Gzip.compress([1], level: 42) }
    }
}

final class FileIOTests: XCTestCase {
    func testAtomicWriteReadBackAndReplace() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let p = dir + "/a.bin"
        try writeFileAtomically([1, 2, 3], to: p)
        XCTAssertEqual(try readFileBytes(p), [1, 2, 3])
        try writeFileAtomically([9], to: p)
        XCTAssertEqual(try readFileBytes(p), [9])
        try writeFileAtomically([], to: p)
        XCTAssertEqual(try readFileBytes(p), [])
        XCTAssertEqual(listDir(dir), ["a.bin"], "no temporary files left behind")
    }

    func testFailedRenameCleansTemp() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let target = dir + "/sub"
        XCTAssertEqual(mkdir(target, 0o755), 0)
        try writeFileAtomically([1], to: target + "/x")  // make the directory non-empty
        do {
            try writeFileAtomically([1, 2], to: target)  // rename onto a non-empty directory fails
            XCTFail("expected an error")
        } catch let e as DataIOError {
            guard case .io(let m) = e.kind else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("rename"), m)
            XCTAssertEqual(e.file, target)
        }
        XCTAssertEqual(listDir(dir), ["sub"], "temporary file removed")
    }

    func testMissingDirectoryAndMissingFile() {
        let e = assertDataIOError(.fileNotFound, file: "/nonexistent-dir-xyz/f") { try readFileBytes("/nonexistent-dir-xyz/f") }
        XCTAssertEqual(e?.description, "/nonexistent-dir-xyz/f: file not found")
        do {
            try writeFileAtomically([1], to: "/nonexistent-dir-xyz/f")
            XCTFail("expected an error")
        } catch let e as DataIOError {
            guard case .io(let m) = e.kind else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("temporary"), m)
            XCTAssertTrue(e.description.contains("/nonexistent-dir-xyz/f"))
        } catch { XCTFail("\(error)") }
        do { _ = try readFileBytes("/tmp"); XCTFail("directory read") } catch let e as DataIOError {
            XCTAssertEqual(e.kind, .io("is a directory"))
        } catch { XCTFail("\(error)") }
    }
}

final class ErrorTests: XCTestCase {
    func testDescriptionNamesFileProblemOffsetAndNote() {
        let e = DataIOError(.payloadTooShort(expected: 8, got: 5), file: "/d/x.npy", offset: 128, note: "hint")
        XCTAssertEqual(e.description, "/d/x.npy: payload too short: header promises 8 bytes, file has 5 (at byte 128); hint")
        XCTAssertEqual(DataIOError(kind: .badMagic, file: "f"), DataIOError(.badMagic, file: "f"))
        XCTAssertNotEqual(DataIOError(.badMagic, file: "f"), DataIOError(.badMagic, file: "g"))
        XCTAssertEqual("\(DataIOError(.fortranOrder, file: "a.npy"))",
                       "a.npy: Fortran-order array refused (save it C-contiguous: np.ascontiguousarray)")
    }
}

final class IDXTests: XCTestCase {
    /// Hand-built known answer: a 2x3 uint8 array and a 2x2 float32 one.
    static let u8Bytes: [UInt8] = [0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 254, 255]
    static let f32Bytes: [UInt8] = [0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 2,
                                    0x3F, 0x80, 0, 0,   // 1.0
                                    0xC0, 0x00, 0, 0,   // -2.0
                                    0x3E, 0x80, 0, 0,   // 0.25
                                    0x7F, 0x80, 0, 0]   // +inf

    func testKnownAnswerUInt8PlainAndGzipped() throws {
        for bytes in [Self.u8Bytes, try Gzip.compress(Self.u8Bytes)] {
            let a = try IDX.decode(bytes, name: "k.idx")
            XCTAssertEqual(a.shape, [2, 3])
            XCTAssertEqual(a.count, 6)
            XCTAssertEqual(a.uint8, [1, 2, 3, 250, 254, 255])
            XCTAssertNil(a.float32)
            XCTAssertEqual(a.asFloats(), [1, 2, 3, 250, 254, 255])
        }
        XCTAssertEqual(IDX.encode(try IDX.decode(Self.u8Bytes, name: "k")), Self.u8Bytes)
    }

    func testKnownAnswerFloat32PlainAndGzipped() throws {
        for bytes in [Self.f32Bytes, try Gzip.compress(Self.f32Bytes)] {
            let a = try IDX.decode(bytes, name: "f.idx")
            XCTAssertEqual(a.shape, [2, 2])
            XCTAssertEqual(a.float32, [1.0, -2.0, 0.25, .infinity])
            XCTAssertNil(a.uint8)
        }
        let a = try IDXArray(shape: [2, 2], element: .float32([1.0, -2.0, 0.25, .infinity]))
        XCTAssertEqual(IDX.encode(a), Self.f32Bytes)
    }

    func testRoundTripAllTypesThroughFiles() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let arrays: [IDXArray] = [
            try IDXArray(shape: [3], element: .uint8([0, 128, 255])),
            try IDXArray(shape: [1, 3], element: .int8([-128, 0, 127])),
            try IDXArray(shape: [2, 1, 2], element: .int16([-32768, -1, 1, 32767])),
            try IDXArray(shape: [2], element: .int32([.min, .max])),
            try IDXArray(shape: [3], element: .float32([-0.0, Float(bitPattern: 1), .greatestFiniteMagnitude])),
            try IDXArray(shape: [2], element: .float64([.pi, -1e300])),
            try IDXArray(shape: [0, 5], element: .uint8([])),
        ]
        for (i, a) in arrays.enumerated() {
            for gz in [false, true] {
                let p = dir + "/a\(i)\(gz ? ".gz" : "")"
                try IDX.write(a, to: p, gzip: gz)
                XCTAssertEqual(Gzip.isGzip(try readFileBytes(p)), gz)
                XCTAssertEqual(try IDX.read(path: p), a)
            }
        }
    }

    func testIDXArrayInitValidates() {
        assertDataIOError(.countMismatch(expected: 6, got: 5)) { try IDXArray(shape: [2, 3], element: .uint8([1, 2, 3, 4, 5])) }
        assertDataIOError(.badHeader("IDX needs 1...255 dimensions, got 0")) { try IDXArray(shape: [], element: .uint8([1])) }
        assertDataIOError(.dimensionOverflow) {
            try IDXArray(shape: [Int(UInt32.max), Int(UInt32.max), Int(UInt32.max)], element: .uint8([]))
        }
    }

    // MARK: malformed IDX

    func testBadMagic() {
        let e = assertDataIOError(.badMagic, file: "m.idx") { try IDX.decode([0x50, 0x4B, 3, 4, 0, 0], name: "m.idx") }
        XCTAssertEqual(e?.offset, 0)
        XCTAssertTrue(e?.description.contains("m.idx: bad magic") ?? false)
    }

    func testTruncatedHeader() {
        assertDataIOError(.truncated(expected: 4, got: 3), file: "h.idx") { try IDX.decode([0, 0, 8], name: "h.idx") }
        assertDataIOError(.truncated(expected: 4, got: 0), file: "h.idx") { try IDX.decode([], name: "h.idx") }
        // 3 dims announced, only 2 present
        assertDataIOError(.truncated(expected: 16, got: 12), file: "h.idx") {
            try IDX.decode([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1], name: "h.idx")
        }
    }

    func testPayloadTooShortAndTrailingBytes() {
        let short = Array(Self.u8Bytes.dropLast())
        let e = assertDataIOError(.payloadTooShort(expected: 6, got: 5), file: "p.idx") { try IDX.decode(short, name: "p.idx") }
        XCTAssertEqual(e?.offset, 12)
        assertDataIOError(.trailingBytes(2), file: "p.idx") { try IDX.decode(Self.u8Bytes + [0, 0], name: "p.idx") }
        // float32 header but a uint8-sized payload (header lying about the type)
        var lying = Self.u8Bytes; lying[2] = 0x0D
        assertDataIOError(.payloadTooShort(expected: 24, got: 6), file: "p.idx") { try IDX.decode(lying, name: "p.idx") }
    }

    func testDimensionProductOverflow() {
        let ff: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
        let bytes: [UInt8] = [0, 0, 0x08, 3] + ff + ff + ff + [1, 2, 3]
        assertDataIOError(.dimensionOverflow, file: "o.idx") { try IDX.decode(bytes, name: "o.idx") }
        // 2 dims of 0xFFFFFFFF already overflow Int64 for 1-byte items
        assertDataIOError(.dimensionOverflow, file: "o.idx") { try IDX.decode([0, 0, 0x08, 2] + ff + ff, name: "o.idx") }
        // Large but not overflowing: must be a clean payloadTooShort, no allocation attempt.
        let big: [UInt8] = [0, 0, 0x0E, 2, 0, 0, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF]
        assertDataIOError(.payloadTooShort(expected: 65535 * 65535 * 8, got: 0), file: "o.idx") {
            try IDX.decode(big, name: "o.idx")
        }
    }

    func testUnsupportedTypeAndZeroDims() {
        let e = assertDataIOError(.unsupportedType("IDX type byte 0x0A (known: 08 uint8, 09 int8, 0B int16, 0C int32, 0D float32, 0E float64)"),
                                  file: "t.idx") { try IDX.decode([0, 0, 0x0A, 1, 0, 0, 0, 0], name: "t.idx") }
        XCTAssertEqual(e?.offset, 2)
        assertDataIOError(.badHeader("zero dimensions"), file: "z.idx") { try IDX.decode([0, 0, 8, 0], name: "z.idx") }
    }

    func testTruncatedGzippedIDXFromFile() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let z = try Gzip.compress(Self.f32Bytes)
        let p = dir + "/cut.idx.gz"
        try writeFileAtomically(Array(z.dropLast(5)), to: p)
        do { _ = try IDX.read(path: p); XCTFail("expected error") } catch let e as DataIOError {
            guard case .gzip(let m) = e.kind else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("truncated"), m)
            XCTAssertEqual(e.file, p)
            XCTAssertTrue(e.description.hasPrefix(p + ": gzip: truncated"), e.description)
        }
        assertDataIOError(.fileNotFound, file: dir + "/none.idx") { try IDX.read(path: dir + "/none.idx") }
    }
}
