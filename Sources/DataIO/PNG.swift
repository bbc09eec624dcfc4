import CZlib

/// A minimal PNG writer: 8-bit grayscale (colour type 0), no interlace, for the segmentation
/// maps a user opens in any viewer. Compression goes through the system zlib.
///
/// Each row is filtered with the PNG filter (None, Sub, Up, Average, Paeth) whose output has
/// the smallest sum of absolute values when read as signed bytes: libpng's heuristic, which
/// costs five passes over a row and shrinks smooth maps (probabilities, masks) several-fold
/// against filter None.
public enum PNG {
    /// The 8-byte PNG signature.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Largest IDAT chunk written; the compressed stream is split into chunks of at most this
    /// many bytes (readers concatenate them), keeping every chunk far below PNG's 2^31-1 limit.
    static let maxIDATLength = 1 << 16

    /// The complete PNG file of a `width` x `height` grey image, `pixels` row-major
    /// (`pixels[y * width + x]`). Width and height must be 1...2^31-1 and `pixels.count`
    /// their product; otherwise a `DataIOError` naming `<png encode>` is thrown.
    public static func encodeGray8(width: Int, height: Int, pixels: [UInt8]) throws -> [UInt8] {
        try encode(width: width, height: height, pixels: pixels, name: "<png encode>")
    }

    /// Encodes as `encodeGray8` and writes the file atomically (a temporary file renamed into
    /// place), so a failure never leaves a partial PNG at `path`. Invalid sizes are rejected
    /// before anything touches the disk; errors name `path`.
    public static func writeGray8(width: Int, height: Int, pixels: [UInt8], to path: String) throws {
        let bytes = try encode(width: width, height: height, pixels: pixels, name: path)
        try writeFileAtomically(bytes, to: path)
    }

    static func encode(width: Int, height: Int, pixels: [UInt8], name: String) throws -> [UInt8] {
        let maxSide = Int(Int32.max)
        guard width >= 1 && width <= maxSide else {
            throw DataIOError(.badHeader("PNG width \(width) outside 1...\(maxSide)"), file: name)
        }
        guard height >= 1 && height <= maxSide else {
            throw DataIOError(.badHeader("PNG height \(height) outside 1...\(maxSide)"), file: name)
        }
        guard let count = checkedProduct([width, height]) else {
            throw DataIOError(.dimensionOverflow, file: name)
        }
        guard pixels.count == count else {
            throw DataIOError(.countMismatch(expected: count, got: pixels.count), file: name)
        }
        let filtered = filterRows(width: width, height: height, pixels: pixels)
        let stream = try zlibCompress(filtered, name: name)

        var out: [UInt8] = signature
        out.reserveCapacity(signature.count + 25 + stream.count + 12 * (stream.count / maxIDATLength + 1) + 12)
        var ihdr: [UInt8] = []
        appendBigEndian(UInt32(width), to: &ihdr)
        appendBigEndian(UInt32(height), to: &ihdr)
        // Bit depth 8, colour type 0 (grey), compression 0, filter method 0, no interlace.
        ihdr += [8, 0, 0, 0, 0]
        appendChunk("IHDR", ihdr, range: 0..<ihdr.count, to: &out)
        var start = 0
        repeat {
            let end = min(start + maxIDATLength, stream.count)
            appendChunk("IDAT", stream, range: start..<end, to: &out)
            start = end
        } while start < stream.count
        appendChunk("IEND", [], range: 0..<0, to: &out)
        return out
    }

    /// The filtered image data: per row, one filter-type byte and `width` filtered bytes.
    static func filterRows(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        let rowBytes = width + 1
        var out = [UInt8](repeating: 0, count: rowBytes * height)
        // Five candidate rows, one per filter type, reused for every row.
        var candidates = [UInt8](repeating: 0, count: 5 * width)
        pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { ob in
                candidates.withUnsafeMutableBufferPointer { cb in
                    for y in 0..<height {
                        let row = px.baseAddress! + y * width
                        let up: UnsafePointer<UInt8>? = y > 0 ? row - width : nil
                        var best = 0, bestCost = Int.max
                        for f in 0..<5 {
                            let c = cb.baseAddress! + f * width
                            var cost = 0
                            for x in 0..<width {
                                let raw = row[x]
                                let a = x > 0 ? row[x - 1] : 0
                                let b = up?[x] ?? 0
                                let cUL = x > 0 ? (up?[x - 1] ?? 0) : 0
                                let pred: UInt8
                                switch f {
                                case 0: pred = 0
                                case 1: pred = a
                                case 2: pred = b
                                case 3: pred = UInt8((Int(a) + Int(b)) >> 1)
                                default: pred = paeth(a, b, cUL)
                                }
                                let v = raw &- pred
                                c[x] = v
                                cost += v < 128 ? Int(v) : 256 - Int(v)
                            }
                            if cost < bestCost { bestCost = cost; best = f }
                        }
                        let o = ob.baseAddress! + y * rowBytes
                        o[0] = UInt8(best)
                        (o + 1).update(from: cb.baseAddress! + best * width, count: width)
                    }
                }
            }
        }
        return out
    }

    /// The Paeth predictor (PNG specification, section 9.4): the neighbour nearest to
    /// a + b - c, ties resolved in the order a, b, c.
    @inline(__always)
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        if pb <= pc { return b }
        return c
    }

    /// One zlib stream (RFC 1950) of `data` at the best compression.
    static func zlibCompress(_ data: [UInt8], name: String) throws -> [UInt8] {
        var bound = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(bound))
        let rc = out.withUnsafeMutableBufferPointer { ob in
            data.withUnsafeBufferPointer { ib in
                compress2(ob.baseAddress, &bound, ib.baseAddress, uLong(ib.count), Z_BEST_COMPRESSION)
            }
        }
        guard rc == Z_OK else {
            throw DataIOError(.io("zlib compress2 failed (zlib code \(rc))"), file: name)
        }
        out.removeSubrange(Int(bound)...)
        return out
    }

    private static func appendBigEndian(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    /// Length, type, data, CRC-32 of type + data.
    private static func appendChunk(_ type: String, _ data: [UInt8], range: Range<Int>, to out: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        appendBigEndian(UInt32(range.count), to: &out)
        out += typeBytes
        out += data[range]
        var crc = CRC32.State()
        crc.update(typeBytes)
        crc.update(data, range: range)
        appendBigEndian(crc.value, to: &out)
    }
}
