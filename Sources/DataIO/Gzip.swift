import CZlib

/// gzip through the system zlib (no hand-written inflate).
public enum Gzip {
    /// True when `data` starts with the gzip magic 1f 8b.
    public static func isGzip(_ data: [UInt8]) -> Bool {
        data.count >= 2 && data[0] == 0x1F && data[1] == 0x8B
    }

    /// Decompresses a gzip file (one or more concatenated members, as `gzip -c a b` writes).
    /// Trailing zero bytes after the last member (tape/block padding) are ignored; any other
    /// trailing bytes are an error. A truncated stream, a corrupt stream or a CRC/length
    /// mismatch raise `.gzip(...)`; output beyond `limit` bytes raises `.tooLarge(limit)`
    /// before it is stored (so a gzip bomb is an error, not an out-of-memory kill).
    public static func decompress(_ data: [UInt8], name: String, limit: Int = 1 << 31) throws -> [UInt8] {
        guard limit >= 0 else { throw DataIOError(.gzip("negative size limit \(limit)"), file: name) }
        guard isGzip(data) else {
            throw DataIOError(.gzip("not a gzip stream (missing 1f 8b magic)"), file: name, offset: 0)
        }
        var strm = z_stream()
        let initRC = inflateInit2_(&strm, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initRC == Z_OK else {
            throw DataIOError(.gzip("inflateInit2 failed (zlib code \(initRC))"), file: name)
        }
        defer { inflateEnd(&strm) }

        var out: [UInt8] = []
        // Size hint from the ISIZE trailer (size mod 2^32 of the last member), capped by the
        // limit and by deflate's maximal ratio (~1032:1) so a lying trailer cannot force a
        // huge allocation.
        if data.count >= 18 {
            let n = data.count
            let isize = Int(data[n - 4]) | Int(data[n - 3]) << 8 | Int(data[n - 2]) << 16 | Int(data[n - 1]) << 24
            let (maxRatio, o) = data.count.multipliedReportingOverflow(by: 1032)
            out.reserveCapacity(min(isize, limit, o ? Int.max : maxRatio))
        }
        let chunkSize = 1 << 18
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        let total = data.count

        try data.withUnsafeBufferPointer { inBuf in
            let base = inBuf.baseAddress!
            var pos = 0
            while true {
                let give = min(total - pos, 1 << 30)
                strm.next_in = UnsafeMutablePointer(mutating: base + pos)
                strm.avail_in = UInt32(give)
                let rc: Int32 = chunk.withUnsafeMutableBufferPointer { ob in
                    strm.next_out = ob.baseAddress
                    strm.avail_out = UInt32(ob.count)
                    return inflate(&strm, Z_NO_FLUSH)
                }
                pos += give - Int(strm.avail_in)
                let produced = chunkSize - Int(strm.avail_out)
                if produced > 0 {
                    let (newCount, o) = out.count.addingReportingOverflow(produced)
                    if o || newCount > limit { throw DataIOError(.tooLarge(limit), file: name) }
                    out.append(contentsOf: chunk[0..<produced])
                }
                switch rc {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    if pos == total { return }
                    if total - pos >= 2 && base[pos] == 0x1F && base[pos + 1] == 0x8B {
                        // Another member follows.
                        guard inflateReset(&strm) == Z_OK else {
                            throw DataIOError(.gzip("inflateReset failed"), file: name, offset: pos)
                        }
                        continue
                    }
                    var allZero = true
                    for i in pos..<total where base[i] != 0 { allZero = false; break }
                    if allZero { return }
                    throw DataIOError(.gzip("trailing garbage after the last gzip member"), file: name, offset: pos)
                case Z_BUF_ERROR:
                    if pos == total {
                        throw DataIOError(.gzip("truncated stream (compressed data ends early)"), file: name, offset: pos)
                    }
                    throw DataIOError(.gzip("inflate made no progress"), file: name, offset: pos)
                case Z_DATA_ERROR, Z_NEED_DICT:
                    let msg = strm.msg.map { String(cString: $0) } ?? "invalid data"
                    throw DataIOError(.gzip("corrupt stream: \(msg)"), file: name, offset: pos)
                case Z_MEM_ERROR:
                    throw DataIOError(.gzip("zlib out of memory"), file: name, offset: pos)
                default:
                    throw DataIOError(.gzip("zlib error \(rc)"), file: name, offset: pos)
                }
            }
        }
        return out
    }

    /// Compresses `data` as one gzip member (deflateInit2 with windowBits 31). `level` 0...9
    /// (or -1 for zlib's default); anything else raises `.gzip`.
    public static func compress(_ data: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        let name = "<gzip compress>"
        var strm = z_stream()
        let initRC = deflateInit2_(&strm, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initRC == Z_OK else {
            throw DataIOError(.gzip("deflateInit2 failed (zlib code \(initRC)) for level \(level)"), file: name)
        }
        defer { deflateEnd(&strm) }
        var out: [UInt8] = []
        out.reserveCapacity(Int(deflateBound(&strm, UInt(data.count))))
        let chunkSize = 1 << 18
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        let total = data.count
        try data.withUnsafeBufferPointer { inBuf in
            var pos = 0
            while true {
                let give = min(total - pos, 1 << 30)
                let isLast = pos + give == total
                strm.next_in = inBuf.baseAddress.map { UnsafeMutablePointer(mutating: $0 + pos) }
                strm.avail_in = UInt32(give)
                while true {
                    let rc: Int32 = chunk.withUnsafeMutableBufferPointer { ob in
                        strm.next_out = ob.baseAddress
                        strm.avail_out = UInt32(ob.count)
                        return deflate(&strm, isLast ? Z_FINISH : Z_NO_FLUSH)
                    }
                    let produced = chunkSize - Int(strm.avail_out)
                    if produced > 0 { out.append(contentsOf: chunk[0..<produced]) }
                    if rc == Z_STREAM_ERROR || (rc == Z_BUF_ERROR && produced == 0) {
                        throw DataIOError(.gzip("deflate failed (zlib code \(rc))"), file: name)
                    }
                    if isLast { if rc == Z_STREAM_END { break } } else if strm.avail_out != 0 { break }
                }
                pos += give
                if isLast { return }
            }
        }
        return out
    }
}
