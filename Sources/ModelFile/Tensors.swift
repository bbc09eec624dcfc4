// The tensor directory and typed tensor data.

/// Element types of stored tensors. `bits` is bit-packed LSB-first (FixedPoint's BitPacking):
/// element `i` is bit `i % 8` of byte `i / 8`; unused high bits of the last byte are zero.
public enum TensorDType: UInt8, Sendable, CaseIterable {
    case bits = 1, u8 = 2, i8 = 3, u16 = 4, i16 = 5, u32 = 6, i32 = 7, u64 = 8, i64 = 9, f32 = 10, f64 = 11

    public var name: String { "\(self)" }
    /// Bytes per element (0 for `bits`).
    public var size: Int {
        switch self {
        case .bits: return 0
        case .u8, .i8: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        }
    }
    /// Stored byte length of `count` elements, nil on overflow.
    public func byteLength(count: Int) -> Int? {
        if self == .bits { return count / 8 + (count % 8 == 0 ? 0 : 1) }
        let (p, o) = count.multipliedReportingOverflow(by: size)
        return o ? nil : p
    }
}

/// One tensor directory entry, validated. `offset` is absolute in the file.
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var dtype: TensorDType
    public var dims: [Int]
    public var offset: Int
    public var byteLength: Int
    public var count: Int { dims.reduce(1, *) }   // validated not to overflow
}

/// Format limits (a reader refuses more; they keep every product far from overflow).
public enum FormatLimits {
    public static let maxRank = 4
    /// Largest single dimension of any tensor or graph tensor.
    public static let maxDim = 1 << 24
    /// Largest element count of a graph (activation) tensor.
    public static let maxTensorElements = 1 << 28
    /// Largest input count of a node.
    public static let maxNodeInputs = 16
    /// Largest number of graph tensors, nodes, directory tensors, tiles per layer, placement tiles.
    public static let maxItems = 1 << 16
}

enum TensorCodec {
    struct Pending { var name: String; var dtype: TensorDType; var dims: [Int]; var data: [UInt8] }

    /// Encodes directory + data section payloads. Tensors are laid out in the given order, each
    /// at a 64-byte aligned offset relative to the start of the data section.
    static func encode(_ tensors: [Pending]) throws -> (directory: [UInt8], data: [UInt8]) {
        var dir = ByteWriter(), data = ByteWriter()
        dir.u32(try ByteWriter.u32(tensors.count, "tensor count"))
        for t in tensors {
            data.pad(to: FormatConstants.alignment)
            dir.string(t.name)
            dir.u8(t.dtype.rawValue)
            dir.u8(UInt8(t.dims.count))
            dir.u16(0)
            for d in t.dims { dir.u64(UInt64(d)) }
            dir.u64(UInt64(data.bytes.count))
            dir.u64(UInt64(t.data.count))
            data.bytes += t.data
        }
        return (dir.bytes, data.bytes)
    }

    static func decode(_ b: [UInt8], dir s: SectionEntry, data d: SectionEntry, budget: DecodeBudget? = nil) throws -> [TensorEntry] {
        var r = ByteReader(b, from: s.offset, to: s.offset + s.length, section: "tensor directory")
        // Smallest entry: name 4+1, dtype 1, rank 1, reserved 2, one dim 8, offset 8, length 8 = 33.
        let n = try r.count("tensor count", limit: min(FormatLimits.maxItems, r.remaining / 33))
        // entries, their dims, the name set, and the names' bytes (at most the section's length)
        try budget?.charge(n * (MemoryLayout<TensorEntry>.stride + 2 * DecodeBudget.arrayHeader + 4 * 8 + 2 * MemoryLayout<String>.stride) + s.length,
                           "\(n) tensor entries", section: "tensor directory", offset: r.pos)
        var out: [TensorEntry] = []
        out.reserveCapacity(n)
        var names = Set<String>()
        for i in 0..<n {
            let start = r.pos
            let name = try r.string("tensor \(i) name", allowEmpty: false)
            guard names.insert(name).inserted else { throw r.error(.badTensor, "duplicate tensor name '\(name)'", at: start) }
            let dt = r.pos
            let raw = try r.u8("dtype")
            guard let dtype = TensorDType(rawValue: raw) else { throw r.error(.badEnum, "tensor '\(name)': dtype \(raw)", at: dt) }
            let rk = r.pos
            let rank = Int(try r.u8("rank"))
            guard rank >= 1, rank <= FormatLimits.maxRank else {
                throw r.error(.badTensor, "tensor '\(name)': rank \(rank) outside 1...\(FormatLimits.maxRank)", at: rk)
            }
            let rs = r.pos
            guard try r.u16("reserved") == 0 else { throw r.error(.badTensor, "tensor '\(name)': reserved field not 0", at: rs) }
            var dims: [Int] = []
            var count = 1
            for k in 0..<rank {
                let at = r.pos
                let v = try r.u64("dim \(k)")
                guard v >= 1, v <= UInt64(FormatLimits.maxDim) else {
                    throw r.error(.countTooLarge, "tensor '\(name)': dim \(k) = \(v) outside 1...\(FormatLimits.maxDim)", at: at)
                }
                let (p, o) = count.multipliedReportingOverflow(by: Int(v))
                guard !o else { throw r.error(.sizeOverflow, "tensor '\(name)': element count overflows", at: at) }
                count = p
                dims.append(Int(v))
            }
            let oa = r.pos
            let off = try r.u64("offset"), len = try r.u64("byte length")
            guard let expect = dtype.byteLength(count: count) else {
                throw r.error(.sizeOverflow, "tensor '\(name)': byte length of \(count) \(dtype.name) overflows", at: oa)
            }
            guard len == UInt64(expect) else {
                throw r.error(.badTensor, "tensor '\(name)': byte length \(len), \(count) \(dtype.name) need \(expect)", at: oa + 8)
            }
            guard off % UInt64(FormatConstants.alignment) == 0 else {
                throw r.error(.badTensor, "tensor '\(name)': offset \(off) not 64-byte aligned", at: oa)
            }
            guard off <= UInt64(d.length), len <= UInt64(d.length) - off else {
                throw r.error(.badTensor, "tensor '\(name)': [\(off), +\(len)) outside the \(d.length)-byte data section", at: oa)
            }
            out.append(TensorEntry(name: name, dtype: dtype, dims: dims, offset: d.offset + Int(off), byteLength: Int(len)))
        }
        if r.remaining != 0 { throw r.error(.badTensor, "\(r.remaining) unread bytes after the tensor directory") }
        // No two tensors may share bytes.
        let order = out.indices.sorted { out[$0].offset < out[$1].offset }
        for (a, c) in zip(order, order.dropFirst()) where out[a].offset + out[a].byteLength > out[c].offset {
            throw ModelFileError(.badTensor, section: "tensor directory", offset: s.offset,
                                 "tensors '\(out[a].name)' and '\(out[c].name)' overlap")
        }
        return out
    }

    // Typed views, decoded straight into their final arrays (the entry is already validated).
    static func int8s(_ b: [UInt8], _ e: TensorEntry) -> [Int8] {
        b.withUnsafeBufferPointer { p in
            [Int8](unsafeUninitializedCapacity: e.byteLength) { buf, n in
                for i in 0..<e.byteLength { buf[i] = Int8(bitPattern: p[e.offset + i]) }
                n = e.byteLength
            }
        }
    }
    static func uint8s(_ b: [UInt8], _ e: TensorEntry) -> [UInt8] { Array(b[e.offset..<(e.offset + e.byteLength)]) }
    static func int32s(_ b: [UInt8], _ e: TensorEntry) -> [Int32] {
        let n = e.byteLength / 4
        return [Int32](unsafeUninitializedCapacity: n) { buf, c in
            for i in 0..<n { buf[i] = Int32(bitPattern: loadU32(b, e.offset + 4 * i)) }
            c = n
        }
    }
    static func int64s(_ b: [UInt8], _ e: TensorEntry) -> [Int64] {
        let n = e.byteLength / 8
        return [Int64](unsafeUninitializedCapacity: n) { buf, c in
            for i in 0..<n { buf[i] = Int64(bitPattern: loadU64(b, e.offset + 8 * i)) }
            c = n
        }
    }

    static func bytes(_ xs: [Int8]) -> [UInt8] { xs.map { UInt8(bitPattern: $0) } }
    static func bytes(_ xs: [Int32]) -> [UInt8] {
        var w = ByteWriter(); w.bytes.reserveCapacity(xs.count * 4); for x in xs { w.i32(x) }; return w.bytes
    }
    static func bytes(_ xs: [Int64]) -> [UInt8] {
        var w = ByteWriter(); w.bytes.reserveCapacity(xs.count * 8); for x in xs { w.i64(x) }; return w.bytes
    }
}
