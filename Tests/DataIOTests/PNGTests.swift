import XCTest
import Foundation
import CZlib
import Randomness
@testable import DataIO

// The PNG writer is checked by decoding its output with a reader written here from the PNG
// specification (signature, chunk layout, zlib's own crc32 for every chunk, zlib's uncompress,
// all five row filters) and, when python3 is installed, by a second reader in Python's
// standard library.

private struct DecodeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

private struct DecodedPNG {
    let width: Int
    let height: Int
    let pixels: [UInt8]
    let filterTypes: Set<UInt8>
    let idatLengths: [Int]
}

private func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
}

private func decodePNG(_ bytes: [UInt8]) throws -> DecodedPNG {
    let sig: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
    guard bytes.count >= 8, Array(bytes[0..<8]) == sig else { throw DecodeFailure("bad signature") }
    var pos = 8
    var chunks: [(type: String, data: [UInt8])] = []
    while pos < bytes.count {
        guard pos + 12 <= bytes.count else { throw DecodeFailure("truncated chunk header at \(pos)") }
        let length = Int(be32(bytes, pos))
        guard length <= 0x7FFF_FFFF, pos + 12 + length <= bytes.count else {
            throw DecodeFailure("chunk at \(pos) claims \(length) bytes, file has \(bytes.count - pos - 12)")
        }
        let typeAndData = Array(bytes[(pos + 4)..<(pos + 8 + length)])
        let stored = be32(bytes, pos + 8 + length)
        let computed = typeAndData.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        let type = String(decoding: typeAndData[0..<4], as: UTF8.self)
        guard stored == computed else {
            throw DecodeFailure("chunk \(type) at \(pos): stored CRC \(stored), zlib crc32 \(computed)")
        }
        chunks.append((type, Array(typeAndData[4...])))
        pos += 12 + length
    }
    guard let first = chunks.first, first.type == "IHDR", first.data.count == 13 else {
        throw DecodeFailure("first chunk is not a 13-byte IHDR: \(chunks.map(\.type))")
    }
    guard chunks.last?.type == "IEND", chunks.last?.data.isEmpty == true else {
        throw DecodeFailure("last chunk is not an empty IEND: \(chunks.map(\.type))")
    }
    let middle = chunks[1..<(chunks.count - 1)]
    guard !middle.isEmpty, middle.allSatisfy({ $0.type == "IDAT" }) else {
        throw DecodeFailure("between IHDR and IEND expected only IDAT, got \(middle.map(\.type))")
    }
    let h = first.data
    let width = Int(be32(h, 0)), height = Int(be32(h, 4))
    guard Array(h[8..<13]) == [8, 0, 0, 0, 0] else {
        throw DecodeFailure("IHDR depth/colour/compression/filter/interlace \(Array(h[8..<13])), expected [8, 0, 0, 0, 0]")
    }
    guard width >= 1, height >= 1 else { throw DecodeFailure("IHDR size \(width)x\(height)") }
    let stream = middle.flatMap(\.data)
    let rowBytes = width + 1
    var raw = [UInt8](repeating: 0, count: rowBytes * height)
    var rawLen = uLongf(raw.count)
    let rc = raw.withUnsafeMutableBufferPointer { r in
        stream.withUnsafeBufferPointer { s in uncompress(r.baseAddress, &rawLen, s.baseAddress, uLong(s.count)) }
    }
    guard rc == Z_OK else { throw DecodeFailure("uncompress failed with zlib code \(rc)") }
    guard Int(rawLen) == raw.count else { throw DecodeFailure("inflated \(rawLen) bytes, expected \(raw.count)") }

    var px = [UInt8](repeating: 0, count: width * height)
    var filters = Set<UInt8>()
    for y in 0..<height {
        let f = raw[y * rowBytes]
        filters.insert(f)
        for x in 0..<width {
            let v = Int(raw[y * rowBytes + 1 + x])
            let a = x > 0 ? Int(px[y * width + x - 1]) : 0
            let b = y > 0 ? Int(px[(y - 1) * width + x]) : 0
            let c = x > 0 && y > 0 ? Int(px[(y - 1) * width + x - 1]) : 0
            let pred: Int
            switch f {
            case 0: pred = 0
            case 1: pred = a
            case 2: pred = b
            case 3: pred = (a + b) / 2
            case 4:
                let p = a + b - c
                let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                pred = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
            default: throw DecodeFailure("row \(y): filter type \(f)")
            }
            px[y * width + x] = UInt8((v + pred) & 0xFF)
        }
    }
    return DecodedPNG(width: width, height: height, pixels: px, filterTypes: filters, idatLengths: middle.map(\.data.count))
}

/// Test images of several kinds: noise, smooth gradients, constant, thin lines on a smooth
/// background (the look of a vessel map).
private func testImage(_ kind: Int, width w: Int, height h: Int, _ rng: inout Xoshiro256StarStar) -> [UInt8] {
    var px = [UInt8](repeating: 0, count: w * h)
    for y in 0..<h {
        for x in 0..<w {
            let v: Int
            switch kind {
            case 0: v = Int(rng.next() & 0xFF)
            case 1: v = (x * 3 + y * 5) & 0xFF
            case 2: v = 200
            case 3: v = (x * x + y * y) / 97 & 0xFF
            default:
                let line = (x + 2 * y) % 37 == 0 || (3 * x - y + 1000) % 53 < 2
                v = line ? 255 : (x / 4 + y / 6) & 0x3F
            }
            px[y * w + x] = UInt8(v)
        }
    }
    return px
}

final class PNGTests: XCTestCase {
    private let sizes = [(1, 1), (1, 9), (13, 1), (2, 2), (7, 5), (64, 64), (100, 37), (565, 584)]

    func testRoundTripPixelExact() throws {
        var rng = Xoshiro256StarStar(seed: 2024)
        var allFilters = Set<UInt8>()
        for (w, h) in sizes {
            for kind in 0..<5 {
                let px = testImage(kind, width: w, height: h, &rng)
                let png = try PNG.encodeGray8(width: w, height: h, pixels: px)
                let name = "\(w)x\(h) kind \(kind)"
                let d: DecodedPNG
                do { d = try decodePNG(png) } catch { XCTFail("\(name): \(error)"); continue }
                XCTAssertEqual(d.width, w, "\(name): width")
                XCTAssertEqual(d.height, h, "\(name): height")
                if let i = px.indices.first(where: { px[$0] != d.pixels[$0] }) {
                    XCTFail("\(name): pixel \(i) (x \(i % w), y \(i / w)): expected \(px[i]), got \(d.pixels[i])")
                }
                XCTAssertTrue(d.idatLengths.allSatisfy { $0 <= PNG.maxIDATLength }, "\(name): IDAT lengths \(d.idatLengths)")
                allFilters.formUnion(d.filterTypes)
                if w == 565 && kind == 0 {
                    XCTAssertGreaterThan(d.idatLengths.count, 1, "\(name): incompressible noise spans several IDAT chunks")
                }
            }
        }
        XCTAssertEqual(allFilters, [0, 1, 2, 3, 4], "every row filter type was chosen somewhere and decoded")
    }

    func testWriteMatchesEncodeAndReplacesAtomically() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        var rng = Xoshiro256StarStar(seed: 3)
        let path = dir + "/map.png"
        let a = testImage(4, width: 565, height: 584, &rng)
        try PNG.writeGray8(width: 565, height: 584, pixels: a, to: path)
        XCTAssertEqual(try readFileBytes(path), try PNG.encodeGray8(width: 565, height: 584, pixels: a), "file vs encodeGray8")
        let b = testImage(0, width: 3, height: 2, &rng)
        try PNG.writeGray8(width: 3, height: 2, pixels: b, to: path)
        let d = try decodePNG(try readFileBytes(path))
        XCTAssertEqual(d.pixels, b, "overwritten file holds the new image")
        XCTAssertEqual(listDir(dir), ["map.png"], "no temporary file left behind")
    }

    func testBadSizesThrowAndCreateNothing() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/bad.png"
        let tooWide = Int(Int32.max) + 1
        let cases: [(String, Int, Int, [UInt8], DataIOError.Kind)] = [
            ("width 0", 0, 5, [], .badHeader("PNG width 0 outside 1...2147483647")),
            ("height 0", 5, 0, [], .badHeader("PNG height 0 outside 1...2147483647")),
            ("negative width", -3, 2, [], .badHeader("PNG width -3 outside 1...2147483647")),
            ("width 2^31", tooWide, 1, [], .badHeader("PNG width \(tooWide) outside 1...2147483647")),
            ("height 2^31", 1, tooWide, [], .badHeader("PNG height \(tooWide) outside 1...2147483647")),
            ("too few pixels", 4, 3, [UInt8](repeating: 1, count: 11), .countMismatch(expected: 12, got: 11)),
            ("too many pixels", 1, 1, [1, 2], .countMismatch(expected: 1, got: 2)),
        ]
        for (name, w, h, px, kind) in cases {
            let e = assertDataIOError(kind, file: path) { try PNG.writeGray8(width: w, height: h, pixels: px, to: path) }
            XCTAssertNotNil(e, "\(name): writeGray8 must throw")
            XCTAssertEqual(listDir(dir), [], "\(name): no file (final or temporary) created")
            assertDataIOError(kind, file: "<png encode>") { try PNG.encodeGray8(width: w, height: h, pixels: px) }
        }
        // A failed write leaves an existing file as it was.
        try PNG.writeGray8(width: 1, height: 1, pixels: [9], to: path)
        let before = try readFileBytes(path)
        assertDataIOError(.countMismatch(expected: 4, got: 3), file: path) {
            try PNG.writeGray8(width: 2, height: 2, pixels: [1, 2, 3], to: path)
        }
        XCTAssertEqual(try readFileBytes(path), before, "existing file untouched by a failed write")
        XCTAssertEqual(listDir(dir), ["bad.png"], "only the earlier file in the directory")
        // A missing directory is an I/O error naming the path.
        let missing = dir + "/no/such/dir/x.png"
        XCTAssertThrowsError(try PNG.writeGray8(width: 1, height: 1, pixels: [0], to: missing)) { error in
            XCTAssertEqual((error as? DataIOError)?.file, missing, "missing directory: error names the path, got \(error)")
        }
    }

    /// A second, independent reader: Python's zlib and struct, when python3 is installed.
    func testPythonStdlibReaderAgrees() throws {
        let dir = makeTempDir()
        defer { removeTree(dir) }
        let script = """
        import struct, sys, zlib
        data = open(sys.argv[1], 'rb').read()
        assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'signature'
        pos, idat, ihdr, types = 8, b'', None, []
        while pos < len(data):
            n, t = struct.unpack('>I4s', data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + n]
            crc, = struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])
            assert zlib.crc32(t + body) & 0xffffffff == crc, 'crc of ' + t.decode()
            types.append(t)
            if t == b'IHDR': ihdr = body
            if t == b'IDAT': idat += body
            pos += 12 + n
        assert types[0] == b'IHDR' and types[-1] == b'IEND', types
        w, h, depth, colour, comp, filt, inter = struct.unpack('>IIBBBBB', ihdr)
        assert (depth, colour, comp, filt, inter) == (8, 0, 0, 0, 0), ihdr
        raw = zlib.decompress(idat)
        assert len(raw) == h * (w + 1), len(raw)
        out, prev = bytearray(), bytearray(w)
        for y in range(h):
            f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
            for x in range(w):
                a = line[x - 1] if x else 0
                b = prev[x]
                c = prev[x - 1] if x else 0
                if f == 0: p = 0
                elif f == 1: p = a
                elif f == 2: p = b
                elif f == 3: p = (a + b) // 2
                elif f == 4:
                    q = a + b - c
                    pa, pb, pc = abs(q - a), abs(q - b), abs(q - c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                else: raise SystemExit('filter %d' % f)
                line[x] = (line[x] + p) & 255
            out += line
            prev = line
        open(sys.argv[2], 'wb').write(struct.pack('>II', w, h) + bytes(out))
        """
        let scriptPath = dir + "/read_png.py"
        try writeFileAtomically(Array(script.utf8), to: scriptPath)
        var rng = Xoshiro256StarStar(seed: 11)
        for (i, (w, h)) in [(1, 1), (31, 17), (565, 584)].enumerated() {
            let px = testImage(i == 2 ? 4 : 0, width: w, height: h, &rng)
            let png = dir + "/img\(i).png", out = dir + "/img\(i).raw"
            try PNG.writeGray8(width: w, height: h, pixels: px, to: png)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", scriptPath, png, out]
            let err = Pipe()
            p.standardError = err
            try p.run()
            p.waitUntilExit()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if p.terminationStatus == 127 { throw XCTSkip("python3 not found: the Python cross-check is skipped") }
            XCTAssertEqual(p.terminationStatus, 0, "\(w)x\(h): python reader failed: \(stderr)")
            guard p.terminationStatus == 0 else { continue }
            let got = try readFileBytes(out)
            var header: [UInt8] = []
            for v in [UInt32(w), UInt32(h)] { header += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
            XCTAssertEqual(Array(got.prefix(8)), header, "\(w)x\(h): size read by python")
            XCTAssertTrue(Array(got.dropFirst(8)) == px, "\(w)x\(h): pixels read by python differ from the written ones")
        }
    }
}
