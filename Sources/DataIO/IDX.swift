/// An n-dimensional array read from (or to be written to) an IDX file.
public struct IDXArray: Sendable, Equatable {
    public enum Element: Sendable, Equatable {
        case uint8([UInt8]), int8([Int8]), int16([Int16]), int32([Int32]), float32([Float]), float64([Double])
    }

    public let shape: [Int]
    public let element: Element

    /// Validates that the shape can be written as IDX (1...255 dimensions, each 0...2^32-1)
    /// and that the element count equals the product of the shape.
    public init(shape: [Int], element: Element) throws {
        let name = "<IDXArray>"
        guard (1...255).contains(shape.count) else {
            throw DataIOError(.badHeader("IDX needs 1...255 dimensions, got \(shape.count)"), file: name)
        }
        for d in shape where d < 0 || d > Int(UInt32.max) {
            throw DataIOError(.badHeader("dimension \(d) outside 0...\(UInt32.max)"), file: name)
        }
        guard let n = checkedProduct(shape, times: IDXArray.itemSize(of: element)) else {
            throw DataIOError(.dimensionOverflow, file: name)
        }
        let want = n / IDXArray.itemSize(of: element)
        let have = IDXArray.count(of: element)
        guard want == have else { throw DataIOError(.countMismatch(expected: want, got: have), file: name) }
        self.shape = shape
        self.element = element
    }

    init(unchecked shape: [Int], element: Element) {
        self.shape = shape
        self.element = element
    }

    static func count(of e: Element) -> Int {
        switch e {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .int16(let a): return a.count
        case .int32(let a): return a.count
        case .float32(let a): return a.count
        case .float64(let a): return a.count
        }
    }

    static func itemSize(of e: Element) -> Int {
        switch e {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }

    /// The IDX type byte: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
    public var typeCode: UInt8 {
        switch element {
        case .uint8: return 0x08
        case .int8: return 0x09
        case .int16: return 0x0B
        case .int32: return 0x0C
        case .float32: return 0x0D
        case .float64: return 0x0E
        }
    }

    public var itemSize: Int { IDXArray.itemSize(of: element) }

    /// Number of elements (the product of `shape`).
    public var count: Int { IDXArray.count(of: element) }

    /// The values converted to Float as stored (uint8 pixels stay 0...255: no scaling).
    public func asFloats() -> [Float] {
        switch element {
        case .uint8(let a): return a.map { Float($0) }
        case .int8(let a): return a.map { Float($0) }
        case .int16(let a): return a.map { Float($0) }
        case .int32(let a): return a.map { Float($0) }
        case .float32(let a): return a
        case .float64(let a): return a.map { Float($0) }
        }
    }

    /// The payload when the element type is uint8, else nil.
    public var uint8: [UInt8]? { if case .uint8(let a) = element { return a } else { return nil } }
    /// The payload when the element type is float32, else nil.
    public var float32: [Float]? { if case .float32(let a) = element { return a } else { return nil } }
}

/// The IDX container (MNIST format): big-endian header `00 00 TYPE NDIMS`, one big-endian
/// UInt32 per dimension, then the row-major big-endian payload. The payload must be exactly
/// as long as the header says (shorter: `.payloadTooShort`, longer: `.trailingBytes`).
public enum IDX {
    /// Reads and decodes an IDX file, gzipped or not (detected by the 1f 8b magic).
    public static func read(path: String, limit: Int = 1 << 31) throws -> IDXArray {
        try decode(try readFileBytes(path), name: path, limit: limit)
    }

    /// Decodes IDX bytes; gzipped input (1f 8b) is decompressed first, output capped at `limit`.
    public static func decode(_ bytes: [UInt8], name: String, limit: Int = 1 << 31) throws -> IDXArray {
        if Gzip.isGzip(bytes) {
            return try decodePlain(try Gzip.decompress(bytes, name: name, limit: limit), name: name)
        }
        return try decodePlain(bytes, name: name)
    }

    static func decodePlain(_ b: [UInt8], name: String) throws -> IDXArray {
        if b.count >= 1 && b[0] != 0 || b.count >= 2 && b[1] != 0 {
            throw DataIOError(.badMagic, file: name, offset: 0)
        }
        guard b.count >= 4 else { throw DataIOError(.truncated(expected: 4, got: b.count), file: name) }
        let type = b[2]
        let itemSize: Int
        switch type {
        case 0x08, 0x09: itemSize = 1
        case 0x0B: itemSize = 2
        case 0x0C, 0x0D: itemSize = 4
        case 0x0E: itemSize = 8
        default:
            throw DataIOError(.unsupportedType("IDX type byte 0x" + hex2(type)
                                                + " (known: 08 uint8, 09 int8, 0B int16, 0C int32, 0D float32, 0E float64)"),
                              file: name, offset: 2)
        }
        let ndims = Int(b[3])
        guard ndims > 0 else { throw DataIOError(.badHeader("zero dimensions"), file: name, offset: 3) }
        let headerLen = 4 + 4 * ndims
        guard b.count >= headerLen else {
            throw DataIOError(.truncated(expected: headerLen, got: b.count), file: name)
        }
        var shape: [Int] = []
        shape.reserveCapacity(ndims)
        for i in 0..<ndims {
            let o = 4 + 4 * i
            shape.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        guard let need = checkedProduct(shape, times: itemSize) else {
            throw DataIOError(.dimensionOverflow, file: name, offset: 4)
        }
        let have = b.count - headerLen
        if have < need { throw DataIOError(.payloadTooShort(expected: need, got: have), file: name, offset: headerLen) }
        if have > need { throw DataIOError(.trailingBytes(have - need), file: name, offset: headerLen + need) }
        let n = need / itemSize
        let element: IDXArray.Element = b.withUnsafeBytes { raw in
            let p = UnsafeRawBufferPointer(rebasing: raw[headerLen...])
            switch type {
            case 0x08: return .uint8(Array(p))
            case 0x09: return .int8(p.map { Int8(bitPattern: $0) })
            case 0x0B: return .int16(loadBE(p, n, UInt16.self).map { Int16(bitPattern: $0) })
            case 0x0C: return .int32(loadBE(p, n, UInt32.self).map { Int32(bitPattern: $0) })
            case 0x0D: return .float32(loadBE(p, n, UInt32.self).map { Float(bitPattern: $0) })
            default: return .float64(loadBE(p, n, UInt64.self).map { Double(bitPattern: $0) })
            }
        }
        return IDXArray(unchecked: shape, element: element)
    }

    /// Encodes as plain (uncompressed) IDX.
    public static func encode(_ a: IDXArray) -> [UInt8] {
        var out: [UInt8] = [0, 0, a.typeCode, UInt8(a.shape.count)]
        out.reserveCapacity(4 + 4 * a.shape.count + a.count * a.itemSize)
        for d in a.shape { appendBE(&out, UInt32(d)) }
        switch a.element {
        case .uint8(let v): out.append(contentsOf: v)
        case .int8(let v): for x in v { out.append(UInt8(bitPattern: x)) }
        case .int16(let v): for x in v { appendBE(&out, UInt16(bitPattern: x)) }
        case .int32(let v): for x in v { appendBE(&out, UInt32(bitPattern: x)) }
        case .float32(let v): for x in v { appendBE(&out, x.bitPattern) }
        case .float64(let v): for x in v { appendBE(&out, x.bitPattern) }
        }
        return out
    }

    /// Writes atomically, gzipped when `gzip` is true.
    public static func write(_ a: IDXArray, to path: String, gzip: Bool) throws {
        let plain = encode(a)
        try writeFileAtomically(gzip ? try Gzip.compress(plain) : plain, to: path)
    }
}

@inline(__always)
func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16, uppercase: true)
    return s.count == 1 ? "0" + s : s
}

@inline(__always)
func appendBE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
}

@inline(__always)
func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

/// `n` big-endian integers from `p` (which holds at least n * size bytes).
func loadBE<T: FixedWidthInteger>(_ p: UnsafeRawBufferPointer, _ n: Int, _: T.Type) -> [T] {
    let size = MemoryLayout<T>.size
    return [T](unsafeUninitializedCapacity: n) { buf, initialized in
        for i in 0..<n { buf[i] = T(bigEndian: p.loadUnaligned(fromByteOffset: i * size, as: T.self)) }
        initialized = n
    }
}

/// `n` little-endian integers from `p` (which holds at least n * size bytes).
func loadLE<T: FixedWidthInteger>(_ p: UnsafeRawBufferPointer, _ n: Int, _: T.Type) -> [T] {
    let size = MemoryLayout<T>.size
    return [T](unsafeUninitializedCapacity: n) { buf, initialized in
        for i in 0..<n { buf[i] = T(littleEndian: p.loadUnaligned(fromByteOffset: i * size, as: T.self)) }
        initialized = n
    }
}
