// Memory images (word width, depth, contents) and their two text encodings: Verilog
// `$readmemh` (`.mem`) and Xilinx coefficient files (`.coe`). docs/EXPORT.md section 2.

/// A memory of `depth` words of `wordBits` bits (a multiple of 8). Word `k` occupies bytes
/// `k*wordBytes ..< (k+1)*wordBytes` of `bytes`, least significant byte first.
public struct MemoryImage: Sendable, Equatable {
    public var wordBits: Int
    public var depth: Int
    public var bytes: [UInt8]
    /// Comment lines written at the top of both encodings (ASCII, no newlines).
    public var comments: [String]

    public init(wordBits: Int, depth: Int, bytes: [UInt8], comments: [String] = []) {
        precondition(wordBits > 0 && wordBits % 8 == 0 && bytes.count == depth * (wordBits / 8))
        self.wordBits = wordBits; self.depth = depth; self.bytes = bytes; self.comments = comments
    }

    public init(wordBits: Int, depth: Int, comments: [String] = []) {
        self.init(wordBits: wordBits, depth: depth, bytes: [UInt8](repeating: 0, count: depth * (wordBits / 8)), comments: comments)
    }

    @inlinable public var wordBytes: Int { wordBits / 8 }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends word `k` as `wordBits / 4` lowercase hex digits, most significant first.
    private func appendHex(_ k: Int, to out: inout [UInt8]) {
        let base = k * wordBytes
        var j = base + wordBytes - 1
        while j >= base {
            let b = bytes[j]
            out.append(Self.hexDigits[Int(b >> 4)]); out.append(Self.hexDigits[Int(b & 15)])
            j -= 1
        }
    }

    private func sanitized(_ s: String) -> String {
        String(decoding: s.utf8.map { ($0 >= 0x20 && $0 < 0x7F) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    /// `$readmemh` text: `// ` comment lines, then one word per line (address 0 first).
    public func mem() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(depth * (wordBits / 4 + 1) + 256)
        for c in comments { out.append(contentsOf: Array("// \(sanitized(c))\n".utf8)) }
        out.append(contentsOf: Array("// depth \(depth) words, width \(wordBits) bits, hex, one word per line from address 0\n".utf8))
        for k in 0..<depth { appendHex(k, to: &out); out.append(0x0A) }
        return out
    }

    /// Xilinx `.coe` text: `; ` comment lines, radix 16, the vector comma-separated, one word per line.
    public func coe() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(depth * (wordBits / 4 + 2) + 256)
        for c in comments { out.append(contentsOf: Array("; \(sanitized(c))\n".utf8)) }
        out.append(contentsOf: Array("; depth \(depth) words, width \(wordBits) bits\n".utf8))
        out.append(contentsOf: Array("memory_initialization_radix=16;\nmemory_initialization_vector=\n".utf8))
        for k in 0..<depth {
            appendHex(k, to: &out)
            out.append(k == depth - 1 ? UInt8(ascii: ";") : UInt8(ascii: ","))
            out.append(0x0A)
        }
        return out
    }

    /// Stores the low `width` bits of `value` (two's complement) at bit `bit` of word `k`.
    mutating func put(word k: Int, bit: Int, width: Int, _ value: Int64) {
        let v = UInt64(bitPattern: value)
        for b in 0..<width where (v >> UInt64(b)) & 1 == 1 {
            let pos = bit + b
            bytes[k * wordBytes + pos / 8] |= 1 << UInt8(pos % 8)
        }
    }
}
