// Typed metadata (GGUF-like): sorted keys, each with a type tag and a value.

/// A metadata value. Arrays hold scalars of one type (no nested arrays).
public enum MetadataValue: Sendable, Equatable, Hashable {
    case u32(UInt32)
    case i64(Int64)
    case u64(UInt64)
    case f64(Double)
    case string(String)
    case bool(Bool)
    case array([MetadataValue])

    /// Type tags as stored.
    public enum Tag: UInt32, Sendable, CaseIterable {
        case u32 = 0, i64 = 1, u64 = 2, f64 = 3, string = 4, bool = 5, array = 6
        /// Smallest encoded size of one value of this type (bounds counts before allocating).
        var minSize: Int {
            switch self {
            case .u32: return 4
            case .i64, .u64, .f64: return 8
            case .string: return 4
            case .bool: return 1
            case .array: return 12
            }
        }
    }

    public var tag: Tag {
        switch self {
        case .u32: return .u32
        case .i64: return .i64
        case .u64: return .u64
        case .f64: return .f64
        case .string: return .string
        case .bool: return .bool
        case .array: return .array
        }
    }

    // Bit-exact equality for doubles (NaN == NaN with the same payload), so round trips compare.
    public static func == (a: MetadataValue, b: MetadataValue) -> Bool {
        switch (a, b) {
        case let (.u32(x), .u32(y)): return x == y
        case let (.i64(x), .i64(y)): return x == y
        case let (.u64(x), .u64(y)): return x == y
        case let (.f64(x), .f64(y)): return x.bitPattern == y.bitPattern
        case let (.string(x), .string(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        default: return false
        }
    }
    public func hash(into h: inout Hasher) {
        switch self {
        case .u32(let x): h.combine(0); h.combine(x)
        case .i64(let x): h.combine(1); h.combine(x)
        case .u64(let x): h.combine(2); h.combine(x)
        case .f64(let x): h.combine(3); h.combine(x.bitPattern)
        case .string(let x): h.combine(4); h.combine(x)
        case .bool(let x): h.combine(5); h.combine(x)
        case .array(let x): h.combine(6); h.combine(x)
        }
    }
}

enum MetadataCodec {
    /// Keys sorted by their UTF-8 bytes (the stored order).
    static func sortedKeys(_ keys: some Collection<String>) -> [String] {
        keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func encode(_ entries: [String: MetadataValue]) throws -> [UInt8] {
        var w = ByteWriter()
        w.u32(try ByteWriter.u32(entries.count, "metadata count"))
        for k in sortedKeys(entries.keys) {
            guard !k.isEmpty else { throw ModelFileError(.unencodable, section: "metadata", offset: 0, "empty metadata key") }
            w.string(k)
            try encodeValue(entries[k]!, into: &w, key: k)
        }
        return w.bytes
    }

    static func encodeValue(_ v: MetadataValue, into w: inout ByteWriter, key: String) throws {
        w.u32(v.tag.rawValue)
        switch v {
        case .u32(let x): w.u32(x)
        case .i64(let x): w.i64(x)
        case .u64(let x): w.u64(x)
        case .f64(let x): w.f64(x)
        case .string(let s): w.string(s)
        case .bool(let b): w.u8(b ? 1 : 0)
        case .array(let xs):
            let t = xs.first?.tag ?? .u32
            guard t != .array, xs.allSatisfy({ $0.tag == t }) else {
                throw ModelFileError(.unencodable, section: "metadata", offset: 0, "\(key): arrays hold scalars of one type")
            }
            w.u32(t.rawValue)
            w.u64(UInt64(xs.count))
            for x in xs {
                switch x {
                case .u32(let y): w.u32(y)
                case .i64(let y): w.i64(y)
                case .u64(let y): w.u64(y)
                case .f64(let y): w.f64(y)
                case .string(let s): w.string(s)
                case .bool(let b): w.u8(b ? 1 : 0)
                case .array: break
                }
            }
        }
    }

    static func decode(_ b: [UInt8], _ s: SectionEntry, budget: DecodeBudget? = nil) throws -> [String: MetadataValue] {
        var r = ByteReader(b, from: s.offset, to: s.offset + s.length, section: "metadata")
        let n = try r.count("metadata count", limit: min(FormatLimits.maxItems, r.remaining / 10))   // smallest entry: key 4+1, tag 4, bool 1
        // dictionary slots (key + value, hash table at most 2x) plus the keys' bytes
        try budget?.charge(2 * n * (MemoryLayout<String>.stride + MemoryLayout<MetadataValue>.stride) + s.length,
                           "\(n) metadata entries", section: "metadata", offset: r.pos)
        return try decodeEntries(&r, n, budget: budget)
    }

    static func decodeEntries(_ r: inout ByteReader, _ n: Int, budget: DecodeBudget? = nil) throws -> [String: MetadataValue] {
        var out: [String: MetadataValue] = [:]
        var previous: [UInt8]? = nil
        for _ in 0..<n {
            let at = r.pos
            let key = try r.string("metadata key", allowEmpty: false)
            let kb = Array(key.utf8)
            if let p = previous, !p.lexicographicallyPrecedes(kb) {
                throw r.error(.badMetadataOrder, p == kb ? "duplicate metadata key '\(key)'" : "metadata key '\(key)' out of order", at: at)
            }
            previous = kb
            out[key] = try decodeValue(&r, key: key, budget: budget)
        }
        if r.remaining != 0 { throw r.error(.badMetadata, "\(r.remaining) unread bytes after the metadata entries") }
        return out
    }

    static func decodeValue(_ r: inout ByteReader, key: String, budget: DecodeBudget? = nil) throws -> MetadataValue {
        let at = r.pos
        let raw = try r.u32("type tag of '\(key)'")
        guard let tag = MetadataValue.Tag(rawValue: raw) else { throw r.error(.badEnum, "metadata type tag \(raw) of '\(key)'", at: at) }
        if tag == .array {
            let et = r.pos
            let eraw = try r.u32("element type of '\(key)'")
            guard let etag = MetadataValue.Tag(rawValue: eraw), etag != .array else {
                throw r.error(.badEnum, "array element type \(eraw) of '\(key)'", at: et)
            }
            let ct = r.pos
            let count = try r.u64("array count of '\(key)'")
            guard count <= UInt64(min(FormatLimits.maxItems, r.remaining / etag.minSize)) else {
                throw r.error(.countTooLarge, "array '\(key)' claims \(count) elements, \(r.remaining) bytes left", at: ct)
            }
            try budget?.charge(Int(count) * MemoryLayout<MetadataValue>.stride + DecodeBudget.arrayHeader,
                               "array '\(key)' of \(count) elements", section: "metadata", offset: ct)
            var xs: [MetadataValue] = []
            xs.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { xs.append(try scalar(&r, etag, key)) }
            return .array(xs)
        }
        return try scalar(&r, tag, key)
    }

    static func scalar(_ r: inout ByteReader, _ tag: MetadataValue.Tag, _ key: String) throws -> MetadataValue {
        switch tag {
        case .u32: return .u32(try r.u32(key))
        case .i64: return .i64(try r.i64(key))
        case .u64: return .u64(try r.u64(key))
        case .f64: return .f64(try r.f64(key))
        case .string: return .string(try r.string(key))
        case .bool:
            let at = r.pos
            let v = try r.u8(key)
            guard v <= 1 else { throw r.error(.badEnum, "bool '\(key)' = \(v)", at: at) }
            return .bool(v == 1)
        case .array: throw r.error(.badEnum, "nested array in '\(key)'")
        }
    }
}
