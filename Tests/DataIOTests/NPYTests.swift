import XCTest
import Foundation
@testable import DataIO

/// Builds an NPY file by hand from a header text (padded like numpy) and a payload.
func npyBytes(_ header: String, _ payload: [UInt8] = [], major: UInt8 = 1, growth: Int = 0) -> [UInt8] {
    var h = Array(header.utf8) + [UInt8](repeating: 0x20, count: growth)
    let prefix = major == 1 ? 10 : 12
    let total = (prefix + h.count + 1 + 63) / 64 * 64
    h += [UInt8](repeating: 0x20, count: total - prefix - h.count - 1) + [0x0A]
    var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
    if major == 1 { out += [UInt8(h.count & 0xFF), UInt8(h.count >> 8)] } else {
        out += [UInt8(h.count & 0xFF), UInt8(h.count >> 8 & 0xFF), 0, 0]
    }
    return out + h + payload
}

final class NPYTests: XCTestCase {
    static func sampleArrays() throws -> [NPYArray] {
        [
            try NPYArray(shape: [2, 3], float32: [0, -0.0, 1.5, .infinity, -.infinity, .leastNonzeroMagnitude]),
            try NPYArray(shape: [3], float64: [.pi, -1e300, .nan]),
            try NPYArray(shape: [2, 2], int8: [-128, -1, 0, 127]),
            try NPYArray(shape: [4], uint8: [0, 1, 128, 255]),
            try NPYArray(shape: [1, 3], int16: [-32768, 12345, 32767]),
            try NPYArray(shape: [2, 1, 2], int32: [.min, -7, 7, .max]),
            try NPYArray(shape: [2], int64: [.min, .max]),
            try NPYArray(shape: [5], bool: [true, false, false, true, true]),
            // empty, 0-d and zero-sized shapes
            try NPYArray(shape: [0], float32: []),
            try NPYArray(shape: [], float64: [2.5]),
            try NPYArray(shape: [], bool: [true]),
            try NPYArray(shape: [3, 0, 2], int32: []),
            try NPYArray(shape: [0, 4], int8: []),
        ]
    }

    func testRoundTripEveryDType() throws {
        let arrays = try Self.sampleArrays()
        XCTAssertEqual(Set(arrays.map(\.dtype)), Set(NPYDType.allCases))
        for a in arrays {
            let bytes = NPY.encode(a)
            XCTAssertEqual((bytes.count - a.data.count) % 64, 0, "payload 64-aligned")
            XCTAssertEqual(bytes[6], 1)
            let b = try NPY.decode(bytes, name: "rt.npy")
            XCTAssertEqual(b, a)
            XCTAssertEqual(b.count, a.shape.reduce(1, *))
        }
        // typed accessors give back the values
        XCTAssertEqual(try arrays[0].float32s().map(\.bitPattern),
                       [0, -0.0, 1.5, .infinity, -.infinity, Float.leastNonzeroMagnitude].map(\.bitPattern))
        XCTAssertTrue(try arrays[1].float64s()[2].isNaN)
        XCTAssertEqual(try arrays[2].int8s(), [-128, -1, 0, 127])
        XCTAssertEqual(try arrays[3].uint8s(), [0, 1, 128, 255])
        XCTAssertEqual(try arrays[4].int16s(), [-32768, 12345, 32767])
        XCTAssertEqual(try arrays[5].int32s(), [.min, -7, 7, .max])
        XCTAssertEqual(try arrays[6].int64s(), [.min, .max])
        XCTAssertEqual(try arrays[7].bools(), [true, false, false, true, true])
        XCTAssertEqual(arrays[9].count, 1)
        XCTAssertEqual(arrays[11].count, 0)
        XCTAssertEqual(arrays[5].asDoubles(), [Double(Int32.min), -7, 7, Double(Int32.max)])
        XCTAssertEqual(arrays[7].asDoubles(), [1, 0, 0, 1, 1])
        XCTAssertEqual(arrays[2].asDoubles(), [-128, -1, 0, 127])
    }

    func testKnownAnswerHeaderBytes() throws {
        let a = try NPYArray(shape: [2], int16: [1, -2])
        let bytes = NPY.encode(a)
        let header = "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }"
        XCTAssertEqual(bytes, npyBytes(header, [1, 0, 0xFE, 0xFF], growth: 20))
        XCTAssertEqual(bytes.count, 128 + 4)
        XCTAssertEqual(Array(bytes[8..<10]), [118, 0])  // header length 118 (+10 = 128)
    }

    func testVersion2HeaderForHugeShape() throws {
        // A 0-sized array with 9000 dimensions has a header > 65535 bytes -> version 2.0.
        let shape = [0] + [Int](repeating: 1_000_000, count: 9000)
        let a = try NPYArray(shape: shape, uint8: [])
        let bytes = NPY.encode(a)
        XCTAssertEqual(bytes[6], 2)
        XCTAssertEqual(bytes.count % 64, 0)
        XCTAssertEqual(try NPY.decode(bytes, name: "v2.npy"), a)
    }

    func testHeaderVariantsNumpyMayWrite() throws {
        let payload: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0]
        let variants = [
            "{'shape': (2,), 'descr': '<i4', 'fortran_order': False}",
            "{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(2,)}",
            "{ 'fortran_order' : False , 'shape' : ( 2 , ) , 'descr' : '<i4' , }",
            "{'descr': '=i4', 'fortran_order': False, 'shape': (2L,), }",
        ]
        for v in variants {
            let a = try NPY.decode(npyBytes(v, payload), name: "v.npy")
            XCTAssertEqual(a.shape, [2]); XCTAssertEqual(try a.int32s(), [1, 2])
        }
        // version 2.0 and 3.0 prefixes
        for major: UInt8 in [2, 3] {
            let a = try NPY.decode(npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", payload, major: major), name: "v.npy")
            XCTAssertEqual(try a.int32s(), [1, 2])
        }
        // '<i1', '<u1', '<b1' single-byte variants
        XCTAssertEqual(try NPY.decode(npyBytes("{'descr': '<i1', 'fortran_order': False, 'shape': (1,), }", [0xFF]), name: "i").int8s(), [-1])
        XCTAssertEqual(try NPY.decode(npyBytes("{'descr': '<u1', 'fortran_order': False, 'shape': (1,), }", [0xFF]), name: "u").uint8s(), [255])
        XCTAssertEqual(try NPY.decode(npyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (), }", [1]), name: "b").bools(), [true])
    }

    func testAtomicWriteAndRead() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        for (i, a) in try Self.sampleArrays().enumerated() {
            let p = dir + "/a\(i).npy"
            try NPY.write(a, to: p)
            XCTAssertEqual(try NPY.read(path: p), a)
        }
        // an inconsistent hand-mutated array is refused and nothing is written
        var bad = try NPYArray(shape: [2], float32: [1, 2])
        bad.shape = [3]
        assertDataIOError(.countMismatch(expected: 3, got: 2), file: dir + "/bad.npy") { try NPY.write(bad, to: dir + "/bad.npy") }
        XCTAssertFalse(fileExists(dir + "/bad.npy"))
    }

    func testInitValidatesAndAccessorsCheckDType() throws {
        assertDataIOError(.countMismatch(expected: 6, got: 5)) { try NPYArray(shape: [2, 3], float32: [1, 2, 3, 4, 5]) }
        assertDataIOError(.countMismatch(expected: 1, got: 0)) { try NPYArray(shape: [], int64: []) }
        assertDataIOError(.badHeader("negative dimension in shape [-1]")) { try NPYArray(shape: [-1], uint8: []) }
        assertDataIOError(.dimensionOverflow) { try NPYArray(shape: [1 << 40, 1 << 40], uint8: []) }
        assertDataIOError(.invalidBool(7)) { try NPYArray(shape: [2], dtype: .bool, data: [1, 7]) }
        let a = try NPYArray(shape: [1], float64: [1])
        assertDataIOError(.dtypeMismatch("array is float64 '<f8', asked for float32 '<f4'")) { try a.float32s() }
        assertDataIOError(.dtypeMismatch("array is float64 '<f8', asked for bool '|b1'")) { try a.bools() }
    }

    // MARK: malformed NPY (each asserts the exact error kind)

    static let f4x2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"

    func testBadMagic() {
        assertDataIOError(.badMagic, file: "m.npy") { try NPY.decode(Array("PK\u{3}\u{4}hello world".utf8), name: "m.npy") }
        assertDataIOError(.badMagic, file: "m.npy") { try NPY.decode(IDXTests.u8Bytes, name: "m.npy") }
    }

    func testTruncatedHeader() {
        let full = npyBytes(Self.f4x2, [UInt8](repeating: 0, count: 8))
        assertDataIOError(.truncated(expected: 10, got: 4), file: "t.npy") { try NPY.decode(Array(full[0..<4]), name: "t.npy") }
        assertDataIOError(.truncated(expected: 10, got: 9), file: "t.npy") { try NPY.decode(Array(full[0..<9]), name: "t.npy") }
        assertDataIOError(.truncated(expected: 128, got: 40), file: "t.npy") { try NPY.decode(Array(full[0..<40]), name: "t.npy") }
    }

    func testTruncatedPayload() {
        let e = assertDataIOError(.payloadTooShort(expected: 8, got: 5), file: "p.npy") {
            try NPY.decode(npyBytes(Self.f4x2, [0, 0, 0, 0, 0]), name: "p.npy")
        }
        XCTAssertEqual(e?.offset, 128)
    }

    func testHeaderLyingAboutDType() {
        // header says float64 but the payload holds 2 float32s
        assertDataIOError(.payloadTooShort(expected: 16, got: 8), file: "l.npy") {
            try NPY.decode(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", [UInt8](repeating: 0, count: 8)), name: "l.npy")
        }
        // header says uint8 but the payload holds 2 float32s
        assertDataIOError(.trailingBytes(6), file: "l.npy") {
            try NPY.decode(npyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", [UInt8](repeating: 0, count: 8)), name: "l.npy")
        }
    }

    func testFortranOrderRefused() {
        let e = assertDataIOError(.fortranOrder, file: "f.npy") {
            try NPY.decode(npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1), }", [UInt8](repeating: 0, count: 8)), name: "f.npy")
        }
        XCTAssertTrue(e?.description.contains("Fortran") ?? false)
    }

    func testObjectArrayRefused() {
        assertDataIOError(.objectArray, file: "o.npy") {
            try NPY.decode(npyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", [UInt8](repeating: 0, count: 16)), name: "o.npy")
        }
    }

    func testBigEndianRefused() {
        assertDataIOError(.unsupportedType("big-endian dtype '>f4' (only little-endian is read; convert with a.astype('<f4'))"), file: "b.npy") {
            try NPY.decode(npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", [UInt8](repeating: 0, count: 8)), name: "b.npy")
        }
        assertDataIOError(.unsupportedType("dtype '<c8' (supported: <f4 <f8 |i1 |u1 <i2 <i4 <i8 |b1)"), file: "c.npy") {
            try NPY.decode(npyBytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", [UInt8](repeating: 0, count: 8)), name: "c.npy")
        }
        assertDataIOError(.unsupportedType("structured dtype (descr is a list)"), file: "s.npy") {
            try NPY.decode(npyBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0]), name: "s.npy")
        }
    }

    func testBadHeaderDicts() {
        let cases: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unknown key 'extra'"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "duplicate key 'descr'"),
            ("{'descr': '<f4', 'shape': (2,)}", "missing key 'fortran_order'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': 2}", "'shape' must be a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "'shape' must be a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative dimension -2 in 'shape'"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "'fortran_order' must be True or False"),
            ("{'descr': 4, 'fortran_order': False, 'shape': (2,)}", "'descr' must be a string"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ('2',)}", "'shape' entries must be integers"),
            ("{'descr': '<f4', 'fortran_order': False 'shape': (2,)}", "expected ',' or '}' in the header dictionary"),
            ("{'descr': '<f4', 'fortran_order': Flase, 'shape': (2,)}", "unexpected token"),
            ("{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", "expected ':'"),
            ("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}' in the header dictionary"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "unexpected end of header"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}' in the header dictionary"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", "unexpected text after the header dictionary"),
            ("['descr', '<f4']", "expected '{'"),
        ]
        for (h, msg) in cases {
            assertDataIOError(.badHeader(msg), file: "h.npy") { try NPY.decode(npyBytes(h, [UInt8](repeating: 0, count: 8)), name: "h.npy") }
        }
    }

    func testShapeOverflow() {
        assertDataIOError(.dimensionOverflow, file: "o.npy") {
            try NPY.decode(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967295, 4294967295, 4294967295), }"), name: "o.npy")
        }
        assertDataIOError(.dimensionOverflow, file: "o.npy") {
            try NPY.decode(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"), name: "o.npy")
        }
    }

    func testBoolByteTwo() {
        let e = assertDataIOError(.invalidBool(2), file: "b.npy") {
            try NPY.decode(npyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", [1, 0, 2]), name: "b.npy")
        }
        XCTAssertEqual(e?.offset, 128 + 2)
    }

    func testUnsupportedVersion() {
        var b = npyBytes(Self.f4x2, [UInt8](repeating: 0, count: 8))
        b[6] = 4
        assertDataIOError(.unsupportedVersion("4.0 (known: 1.0, 2.0, 3.0)"), file: "v.npy") { try NPY.decode(b, name: "v.npy") }
    }
}

// MARK: numpy interoperability (skips when python3 + numpy are absent)

final class NumpyInteropTests: XCTestCase {
    /// Runs python3 with `script` and args; returns stdout, or nil when python3 cannot run.
    func python(_ script: String, _ args: [String]) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + args
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe
        p.standardError = err
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        _ = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func requireNumpy() throws {
        let r = try? python("import numpy", [])
        guard let r, r.status == 0 else { throw XCTSkip("python3 with numpy not available: numpy interoperability not checked") }
    }

    func testNumpyReadsOurFiles() throws {
        try requireNumpy()
        let dir = makeTempDir(); defer { removeTree(dir) }
        let arrays = try NPYTests.sampleArrays()
        var paths: [String] = []
        for (i, a) in arrays.enumerated() {
            let p = dir + "/ours\(i).npy"
            try NPY.write(a, to: p)
            paths.append(p)
        }
        // numpy prints dtype.str, shape and the values (floats via repr of float64, exact).
        let script = """
        import io, sys, numpy as np
        for p in sys.argv[1:]:
            a = np.load(p, allow_pickle=False)
            vals = ' '.join(repr(float(x)) if a.dtype.kind == 'f' else str(int(x)) for x in a.ravel())
            buf = io.BytesIO(); np.save(buf, a)
            same = buf.getvalue() == open(p, 'rb').read()
            print(a.dtype.str, list(a.shape), bool(a.flags.c_contiguous), same, vals)
        """
        let r = try python(script, paths)
        XCTAssertEqual(r.status, 0)
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertGreaterThanOrEqual(lines.count, arrays.count)
        for (i, a) in arrays.enumerated() {
            let vals = a.asDoubles().map { v -> String in
                if a.dtype == .float32 || a.dtype == .float64 {
                    return v.isNaN ? "nan" : v == .infinity ? "inf" : v == -.infinity ? "-inf" : "\(v)"
                }
                return String(Int64(exactly: v) ?? 0)
            }
            var expected = "\(a.dtype.rawValue) \(a.shape) True True \(vals.joined(separator: " "))"
            if a.dtype == .int64 { expected = "<i8 [2] True True \(Int64.min) \(Int64.max)" }  // exact, not via Double
            XCTAssertEqual(lines[i], expected, "array \(i)")
        }
    }

    /// Our IDX reader and numpy (parsing the same gzipped file independently) agree exactly.
    func testIDXAgreesWithNumpyOnSharedData() throws {
        try requireNumpy()
        guard let root = Datasets.sharedDataDir(), fileExists(root + "/spoken-digit/test-features-idx3-float.gz") else {
            throw XCTSkip("shared spoken-digit data absent: IDX/numpy cross-check skipped")
        }
        let p = root + "/spoken-digit/test-features-idx3-float.gz"
        let script = """
        import sys, gzip, numpy as np
        raw = gzip.open(sys.argv[1]).read()
        nd = raw[3]
        shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], 'big') for i in range(nd))
        a = np.frombuffer(raw[4 + 4 * nd:], dtype='>f4').reshape(shape)
        print(list(shape))
        print(' '.join(str(int(x)) for x in a.ravel()[::997].view('>u4')))
        """
        let r = try python(script, [p])
        XCTAssertEqual(r.status, 0)
        let lines = r.out.split(separator: "\n").map(String.init)
        let a = try IDX.read(path: p)
        XCTAssertEqual(lines.first, "\(a.shape)")
        let ours = try XCTUnwrap(a.float32)
        let sampled = stride(from: 0, to: ours.count, by: 997).map { String(ours[$0].bitPattern) }
        XCTAssertEqual(lines.dropFirst().first, sampled.joined(separator: " "))
    }

    func testWeReadNumpyFiles() throws {
        try requireNumpy()
        let dir = makeTempDir(); defer { removeTree(dir) }
        let script = """
        import sys, numpy as np
        d = sys.argv[1]
        np.save(d + '/f4.npy', np.array([[1.5, -2.0], [0.25, 3.0e-39]], dtype='<f4'))
        np.save(d + '/f8.npy', np.arange(6, dtype='<f8').reshape(2, 3) / 3)
        np.save(d + '/i1.npy', np.array([-128, 5, 127], dtype=np.int8))
        np.save(d + '/u1.npy', np.arange(256, dtype=np.uint8).reshape(16, 16))
        np.save(d + '/i2.npy', np.array([-32768, 32767], dtype='<i2'))
        np.save(d + '/i4.npy', np.array([[-2**31], [2**31 - 1]], dtype='<i4'))
        np.save(d + '/i8.npy', np.array([-2**63, 2**63 - 1, 0], dtype='<i8'))
        np.save(d + '/b1.npy', np.array([True, False, True]))
        np.save(d + '/scalar.npy', np.float64(7.25))
        np.save(d + '/empty.npy', np.zeros((0, 3), dtype='<f4'))
        np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype='<f4')))
        np.save(d + '/bigendian.npy', np.ones(3, dtype='>f4'))
        np.save(d + '/object.npy', np.array([1, 'a'], dtype=object), allow_pickle=True)
        np.lib.format.write_array(open(d + '/v2.npy', 'wb'), np.arange(3, dtype='<i4'), version=(2, 0))
        """
        let r = try python(script, [dir])
        XCTAssertEqual(r.status, 0)
        func load(_ n: String) throws -> NPYArray { try NPY.read(path: dir + "/" + n) }
        XCTAssertEqual(try load("f4.npy").float32s(), [1.5, -2.0, 0.25, Float(bitPattern: 0x0020_AAC8)])
        XCTAssertEqual(try load("f4.npy").shape, [2, 2])
        XCTAssertEqual(try load("f8.npy").float64s(), (0..<6).map { Double($0) / 3 })
        XCTAssertEqual(try load("i1.npy").int8s(), [-128, 5, 127])
        XCTAssertEqual(try load("u1.npy").uint8s(), (0...255).map { UInt8($0) })
        XCTAssertEqual(try load("u1.npy").shape, [16, 16])
        XCTAssertEqual(try load("i2.npy").int16s(), [-32768, 32767])
        XCTAssertEqual(try load("i4.npy").int32s(), [.min, .max])
        XCTAssertEqual(try load("i8.npy").int64s(), [.min, .max, 0])
        XCTAssertEqual(try load("b1.npy").bools(), [true, false, true])
        let s = try load("scalar.npy")
        XCTAssertEqual(s.shape, []); XCTAssertEqual(try s.float64s(), [7.25])
        XCTAssertEqual(try load("empty.npy").shape, [0, 3])
        XCTAssertEqual(try load("v2.npy").int32s(), [0, 1, 2])
        assertDataIOError(.fortranOrder, file: dir + "/fortran.npy") { try load("fortran.npy") }
        assertDataIOError(.objectArray, file: dir + "/object.npy") { try load("object.npy") }
        assertDataIOError(.unsupportedType("big-endian dtype '>f4' (only little-endian is read; convert with a.astype('<f4'))"),
                          file: dir + "/bigendian.npy") { try load("bigendian.npy") }
        // byte-identical: numpy re-saving our file gives our bytes
        let ours = try NPYArray(shape: [2, 2], float32: [1.5, -2.0, 0.25, Float(bitPattern: 0x0020_AAC8)])
        XCTAssertEqual(NPY.encode(ours), try readFileBytes(dir + "/f4.npy"))
    }
}
