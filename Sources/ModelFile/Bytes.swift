// Little-endian byte writer and a bounds-checked reader. The reader never traps: every read
// checks the bytes left in its window and throws `.truncated` naming the section and offset.

struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    /// u32 byte length + UTF-8 bytes.
    mutating func string(_ s: String) { let u = Array(s.utf8); u32(UInt32(u.count)); bytes += u }
    mutating func pad(to alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }
    /// Checked conversion of an in-memory count to a u32 field.
    static func u32(_ v: Int, _ what: String) throws -> UInt32 {
        guard v >= 0, v <= Int(UInt32.max) else {
            throw ModelFileError(.unencodable, section: "writer", offset: 0, "\(what) = \(v) does not fit a u32")
        }
        return UInt32(v)
    }

    static func patchU32(_ b: inout [UInt8], at o: Int, _ v: UInt32) {
        for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
    static func patchU64(_ b: inout [UInt8], at o: Int, _ v: UInt64) {
        for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
}

@inline(__always) func loadU32(_ b: [UInt8], _ o: Int) -> UInt32 {
    UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}
@inline(__always) func loadU64(_ b: [UInt8], _ o: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in (0..<8).reversed() { v = v << 8 | UInt64(b[o + i]) }
    return v
}

/// A read window `[pos, end)` over the file bytes. Offsets reported are absolute file offsets.
struct ByteReader {
    let bytes: [UInt8]
    var pos: Int
    let end: Int
    let section: String

    init(_ bytes: [UInt8], from start: Int, to end: Int, section: String) {
        self.bytes = bytes; self.pos = start; self.end = end; self.section = section
    }

    var remaining: Int { end - pos }

    func error(_ kind: ModelFileError.Kind, _ message: String, at offset: Int? = nil) -> ModelFileError {
        ModelFileError(kind, section: section, offset: offset ?? pos, message)
    }

    mutating func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else {
            throw error(.truncated, "\(what) needs \(n) bytes, \(remaining) left")
        }
    }

    mutating func u8(_ what: String) throws -> UInt8 { try need(1, what); defer { pos += 1 }; return bytes[pos] }
    mutating func u16(_ what: String) throws -> UInt16 {
        try need(2, what); defer { pos += 2 }; return UInt16(bytes[pos]) | UInt16(bytes[pos + 1]) << 8
    }
    mutating func u32(_ what: String) throws -> UInt32 { try need(4, what); defer { pos += 4 }; return loadU32(bytes, pos) }
    mutating func u64(_ what: String) throws -> UInt64 { try need(8, what); defer { pos += 8 }; return loadU64(bytes, pos) }
    mutating func i32(_ what: String) throws -> Int32 { Int32(bitPattern: try u32(what)) }
    mutating func i64(_ what: String) throws -> Int64 { Int64(bitPattern: try u64(what)) }
    mutating func f64(_ what: String) throws -> Double { Double(bitPattern: try u64(what)) }

    /// A reserved field that must be zero.
    mutating func zero16(_ what: String) throws {
        let at = pos
        guard try u16(what) == 0 else { throw error(.badGraph, "\(what) must be 0", at: at) }
    }

    /// A u32 used as a count or index, bounded by `limit` (inclusive).
    mutating func count(_ what: String, limit: Int) throws -> Int {
        let at = pos
        let v = Int(try u32(what))
        guard v <= limit else { throw error(.countTooLarge, "\(what) = \(v) exceeds \(limit)", at: at) }
        return v
    }

    /// u32 length + UTF-8 bytes, validated.
    mutating func string(_ what: String, allowEmpty: Bool = true) throws -> String {
        let at = pos
        let n = Int(try u32(what + " length"))
        guard n <= remaining else {
            throw error(.countTooLarge, "\(what) length \(n) exceeds the \(remaining) bytes left", at: at)
        }
        let slice = bytes[pos..<(pos + n)]
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw error(.badString, "\(what) is not valid UTF-8", at: pos)
        }
        guard allowEmpty || n > 0 else { throw error(.badString, "\(what) is empty", at: at) }
        pos += n
        return s
    }
}
