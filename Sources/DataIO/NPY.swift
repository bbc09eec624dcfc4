/// NPY element types we read and write: little-endian (or single-byte), C order.
/// Big-endian descriptors ('>f4', '>i8', ...) are refused with `.unsupportedType` naming them
/// (convert in numpy with `a.astype('<f4')`); we never silently byte-swap.
public enum NPYDType: String, Sendable, CaseIterable {
    case float32 = "<f4", float64 = "<f8", int8 = "|i1", uint8 = "|u1", int16 = "<i2", int32 = "<i4", int64 = "<i8", bool = "|b1"

    public var itemSize: Int {
        switch self {
        case .int8, .uint8, .bool: return 1
        case .int16: return 2
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        }
    }

    /// Maps a numpy descriptor string to a dtype. Single-byte types accept '|', '<', '>', '='
    /// and no prefix; multi-byte types accept '<' (and '=' / no prefix, which numpy means as the
    /// native little-endian order on the platforms we support).
    public init?(descr: String) {
        var s = Substring(descr)
        var order: Character = "="
        if let f = s.first, "<>|=".contains(f) { order = f; s = s.dropFirst() }
        switch s {
        case "i1": self = .int8
        case "u1": self = .uint8
        case "b1", "?": self = .bool
        case "f4" where order != ">" && order != "|": self = .float32
        case "f8" where order != ">" && order != "|": self = .float64
        case "i2" where order != ">" && order != "|": self = .int16
        case "i4" where order != ">" && order != "|": self = .int32
        case "i8" where order != ">" && order != "|": self = .int64
        default: return nil
        }
    }
}

/// An n-dimensional array as stored in an NPY file: shape, dtype and the raw little-endian
/// payload. Equality is byte equality (NaN payloads compare equal to themselves).
public struct NPYArray: Sendable, Equatable {
    public var shape: [Int]
    public var dtype: NPYDType
    /// Raw little-endian payload, `count * dtype.itemSize` bytes, C order.
    public var data: [UInt8]

    /// Validating initializer from raw bytes: count must match the shape; bool bytes 0/1.
    public init(shape: [Int], dtype: NPYDType, data: [UInt8]) throws {
        let name = "<NPYArray>"
        guard let need = checkedProduct(shape, times: dtype.itemSize) else {
            throw DataIOError(shape.contains { $0 < 0 } ? .badHeader("negative dimension in shape \(shape)") : .dimensionOverflow,
                              file: name)
        }
        guard need == data.count else {
            throw DataIOError(.countMismatch(expected: need / dtype.itemSize, got: data.count / dtype.itemSize), file: name)
        }
        if dtype == .bool, let i = data.firstIndex(where: { $0 > 1 }) {
            throw DataIOError(.invalidBool(data[i]), file: name, offset: i)
        }
        self.shape = shape
        self.dtype = dtype
        self.data = data
    }

    init(unchecked shape: [Int], dtype: NPYDType, data: [UInt8]) {
        self.shape = shape
        self.dtype = dtype
        self.data = data
    }

    private static func checkCount(_ shape: [Int], _ n: Int) throws {
        guard let need = checkedProduct(shape) else {
            throw DataIOError(shape.contains { $0 < 0 } ? .badHeader("negative dimension in shape \(shape)") : .dimensionOverflow,
                              file: "<NPYArray>")
        }
        guard need == n else { throw DataIOError(.countMismatch(expected: need, got: n), file: "<NPYArray>") }
    }

    private init<T: FixedWidthInteger>(shape: [Int], dtype: NPYDType, ints: [T]) throws {
        try NPYArray.checkCount(shape, ints.count)
        var d: [UInt8] = []
        d.reserveCapacity(ints.count * MemoryLayout<T>.size)
        for v in ints { appendLE(&d, v) }
        self.init(unchecked: shape, dtype: dtype, data: d)
    }

    public init(shape: [Int], float32: [Float]) throws { try self.init(shape: shape, dtype: .float32, ints: float32.map(\.bitPattern)) }
    public init(shape: [Int], float64: [Double]) throws { try self.init(shape: shape, dtype: .float64, ints: float64.map(\.bitPattern)) }
    public init(shape: [Int], int8: [Int8]) throws { try self.init(shape: shape, dtype: .int8, ints: int8) }
    public init(shape: [Int], uint8: [UInt8]) throws { try self.init(shape: shape, dtype: .uint8, ints: uint8) }
    public init(shape: [Int], int16: [Int16]) throws { try self.init(shape: shape, dtype: .int16, ints: int16) }
    public init(shape: [Int], int32: [Int32]) throws { try self.init(shape: shape, dtype: .int32, ints: int32) }
    public init(shape: [Int], int64: [Int64]) throws { try self.init(shape: shape, dtype: .int64, ints: int64) }
    public init(shape: [Int], bool: [Bool]) throws { try self.init(shape: shape, dtype: .bool, ints: bool.map { $0 ? UInt8(1) : 0 }) }

    /// Number of elements (the product of `shape`; 1 for a 0-d array). For a shape whose product
    /// overflows (only possible by mutating `shape` by hand) this is the number of whole items in `data`.
    public var count: Int { checkedProduct(shape) ?? data.count / dtype.itemSize }

    /// Items actually present in `data` (guards against hand-mutated, inconsistent values).
    private var storedCount: Int { data.count / dtype.itemSize }

    private func want(_ t: NPYDType) throws {
        guard dtype == t else {
            throw DataIOError(.dtypeMismatch("array is \(dtype) '\(dtype.rawValue)', asked for \(t) '\(t.rawValue)'"), file: "<NPYArray>")
        }
    }

    private func le<T: FixedWidthInteger>(_: T.Type) -> [T] {
        data.withUnsafeBytes { loadLE($0, storedCount, T.self) }
    }

    public func float32s() throws -> [Float] { try want(.float32); return le(UInt32.self).map { Float(bitPattern: $0) } }
    public func float64s() throws -> [Double] { try want(.float64); return le(UInt64.self).map { Double(bitPattern: $0) } }
    public func int8s() throws -> [Int8] { try want(.int8); return data.map { Int8(bitPattern: $0) } }
    public func uint8s() throws -> [UInt8] { try want(.uint8); return data }
    public func int16s() throws -> [Int16] { try want(.int16); return le(Int16.self) }
    public func int32s() throws -> [Int32] { try want(.int32); return le(Int32.self) }
    public func int64s() throws -> [Int64] { try want(.int64); return le(Int64.self) }
    public func bools() throws -> [Bool] { try want(.bool); return data.map { $0 != 0 } }

    /// Every dtype converted to Double (bool as 0/1; int64 beyond 2^53 rounds).
    public func asDoubles() -> [Double] {
        switch dtype {
        case .float32: return le(UInt32.self).map { Double(Float(bitPattern: $0)) }
        case .float64: return le(UInt64.self).map { Double(bitPattern: $0) }
        case .int8: return data.map { Double(Int8(bitPattern: $0)) }
        case .uint8: return data.map { Double($0) }
        case .bool: return data.map { $0 != 0 ? 1 : 0 }
        case .int16: return le(Int16.self).map { Double($0) }
        case .int32: return le(Int32.self).map { Double($0) }
        case .int64: return le(Int64.self).map { Double($0) }
        }
    }
}

/// The NPY format (numpy.lib.format), versions 1.0, 2.0 and 3.0.
///
/// Reading: the header dict must have exactly the keys 'descr', 'fortran_order', 'shape' (any
/// order, Python literal syntax, trailing commas allowed). The payload must be EXACTLY
/// product(shape) * itemsize bytes: shorter is `.payloadTooShort`, longer `.trailingBytes`
/// (this catches headers that lie about the dtype). Bool bytes must be 0 or 1.
/// Writing: version 1.0, header padded with spaces and a newline so the payload starts at a
/// multiple of 64 bytes, with numpy's growth-axis spaces (byte-identical to np.save); version 2.0 when the header would exceed 65535 bytes.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    public static func read(path: String) throws -> NPYArray {
        try decode(try readFileBytes(path), name: path)
    }

    /// Writes atomically. Validates the array first (count vs shape, bool bytes).
    public static func write(_ a: NPYArray, to path: String) throws {
        do { _ = try NPYArray(shape: a.shape, dtype: a.dtype, data: a.data) } catch let e as DataIOError {
            throw DataIOError(e.kind, file: path, offset: e.offset, note: "array not written")
        }
        try writeFileAtomically(encode(a), to: path)
    }

    public static func encode(_ a: NPYArray) -> [UInt8] {
        let shapeText: String
        switch a.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(a.shape[0]),)"
        default: shapeText = "(" + a.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '\(a.dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        // Like numpy: room for the first axis to grow to 21 digits when appending in place.
        if let first = a.shape.first { header += [UInt8](repeating: 0x20, count: max(0, 21 - String(first).utf8.count)) }
        func padded(_ prefix: Int) -> Int { (prefix + header.count + 1 + 63) / 64 * 64 - prefix }
        var hlen = padded(10)
        let v2 = hlen > 65535
        if v2 { hlen = padded(12) }
        header += [UInt8](repeating: 0x20, count: hlen - header.count - 1) + [0x0A]
        var out = magic + (v2 ? [2, 0] : [1, 0])
        out.reserveCapacity(12 + hlen + a.data.count)
        if v2 { appendLE(&out, UInt32(hlen)) } else { appendLE(&out, UInt16(hlen)) }
        out += header
        out += a.data
        return out
    }

    public static func decode(_ b: [UInt8], name: String) throws -> NPYArray {
        // Magic (a short file that is a prefix of the magic is truncated, not foreign).
        let m = min(b.count, 6)
        guard Array(b[0..<m]) == Array(magic[0..<m]) else { throw DataIOError(.badMagic, file: name, offset: 0) }
        guard b.count >= 8 else { throw DataIOError(.truncated(expected: 10, got: b.count), file: name) }
        let major = b[6], minor = b[7]
        let prefix: Int
        switch major {
        case 1: prefix = 10
        case 2, 3: prefix = 12
        default: throw DataIOError(.unsupportedVersion("\(major).\(minor) (known: 1.0, 2.0, 3.0)"), file: name, offset: 6)
        }
        guard minor == 0 else { throw DataIOError(.unsupportedVersion("\(major).\(minor) (known: 1.0, 2.0, 3.0)"), file: name, offset: 6) }
        guard b.count >= prefix else { throw DataIOError(.truncated(expected: prefix, got: b.count), file: name) }
        let hlen = prefix == 10 ? Int(b[8]) | Int(b[9]) << 8
                                : Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
        let dataStart = prefix + hlen  // hlen < 2^32: cannot overflow
        guard b.count >= dataStart else { throw DataIOError(.truncated(expected: dataStart, got: b.count), file: name) }

        var p = HeaderParser(bytes: b, pos: prefix, end: dataStart, name: name)
        let h = try p.parseHeader()

        guard let need = checkedProduct(h.shape, times: h.dtype.itemSize) else {
            throw DataIOError(.dimensionOverflow, file: name, offset: prefix)
        }
        let have = b.count - dataStart
        if have < need { throw DataIOError(.payloadTooShort(expected: need, got: have), file: name, offset: dataStart) }
        if have > need { throw DataIOError(.trailingBytes(have - need), file: name, offset: dataStart + need) }
        let data = Array(b[dataStart...])
        if h.dtype == .bool, let i = data.firstIndex(where: { $0 > 1 }) {
            throw DataIOError(.invalidBool(data[i]), file: name, offset: dataStart + i)
        }
        return NPYArray(unchecked: h.shape, dtype: h.dtype, data: data)
    }
}

/// A parser for the subset of Python literal syntax numpy writes in NPY headers.
struct HeaderParser {
    enum Value {
        case string(String), bool(Bool), none, int(Int?)  // nil: out of range
        case tuple([Value]), list([Value]), dict
    }

    let bytes: [UInt8]
    var pos: Int
    let end: Int
    let name: String
    var depth = 0

    init(bytes: [UInt8], pos: Int, end: Int, name: String) {
        self.bytes = bytes; self.pos = pos; self.end = end; self.name = name
    }

    func fail(_ m: String) -> DataIOError { DataIOError(.badHeader(m), file: name, offset: pos) }

    mutating func skipSpace() {
        while pos < end, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    mutating func peek() -> UInt8? { skipSpace(); return pos < end ? bytes[pos] : nil }

    mutating func expect(_ c: Character) throws {
        guard peek() == c.asciiValue else { throw fail("expected '\(c)'") }
        pos += 1
    }

    mutating func parseHeader() throws -> (dtype: NPYDType, fortran: Bool, shape: [Int]) {
        try expect("{")
        var fields: [String: Value] = [:]
        var keyOrder: [String] = []
        while true {
            if peek() == UInt8(ascii: "}") { pos += 1; break }
            let keyPos = pos
            guard case .string(let key) = try parseValue() else {
                pos = keyPos; throw fail("dictionary keys must be strings")
            }
            guard ["descr", "fortran_order", "shape"].contains(key) else { pos = keyPos; throw fail("unknown key '\(key)'") }
            guard fields[key] == nil else { pos = keyPos; throw fail("duplicate key '\(key)'") }
            try expect(":")
            fields[key] = try parseValue()
            keyOrder.append(key)
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1
            default: throw fail("expected ',' or '}' in the header dictionary")
            }
            if bytes[pos - 1] == UInt8(ascii: "}") { break }
        }
        skipSpace()
        // Anything but trailing whitespace after the dict is an error (numpy pads with spaces).
        while pos < end && bytes[pos] == 0 { pos += 1 }  // tolerate NUL padding some writers use
        guard pos == end else { throw fail("unexpected text after the header dictionary") }

        for k in ["descr", "fortran_order", "shape"] where fields[k] == nil {
            throw DataIOError(.badHeader("missing key '\(k)'"), file: name, offset: 8)
        }
        // descr
        let dtype: NPYDType
        switch fields["descr"]! {
        case .string(let d):
            let body = d.drop { "<>|=".contains($0) }
            if body == "O" { throw DataIOError(.objectArray, file: name) }
            if let t = NPYDType(descr: d) {
                dtype = t
            } else if d.hasPrefix(">") && ["f4", "f8", "i2", "i4", "i8", "u2", "u4", "u8", "f2"].contains(String(body)) {
                throw DataIOError(.unsupportedType("big-endian dtype '\(d)' (only little-endian is read; convert with a.astype('<\(body)'))"),
                                  file: name)
            } else {
                throw DataIOError(.unsupportedType("dtype '\(d)' (supported: <f4 <f8 |i1 |u1 <i2 <i4 <i8 |b1)"), file: name)
            }
        case .list:
            throw DataIOError(.unsupportedType("structured dtype (descr is a list)"), file: name)
        default:
            throw DataIOError(.badHeader("'descr' must be a string"), file: name)
        }
        guard case .bool(let fortran) = fields["fortran_order"]! else {
            throw DataIOError(.badHeader("'fortran_order' must be True or False"), file: name)
        }
        if fortran { throw DataIOError(.fortranOrder, file: name) }
        guard case .tuple(let dims) = fields["shape"]! else {
            throw DataIOError(.badHeader("'shape' must be a tuple"), file: name)
        }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let v) = d else { throw DataIOError(.badHeader("'shape' entries must be integers"), file: name) }
            guard let n = v else { throw DataIOError(.dimensionOverflow, file: name) }
            guard n >= 0 else { throw DataIOError(.badHeader("negative dimension \(n) in 'shape'"), file: name) }
            shape.append(n)
        }
        return (dtype, fortran, shape)
    }

    mutating func parseValue() throws -> Value {
        depth += 1
        defer { depth -= 1 }
        guard depth < 32 else { throw fail("nesting too deep") }
        guard let c = peek() else { throw fail("unexpected end of header") }
        switch c {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            pos += 1
            var s: [UInt8] = []
            while true {
                guard pos < end else { throw fail("unterminated string") }
                let x = bytes[pos]; pos += 1
                if x == c { break }
                if x == UInt8(ascii: "\\") {
                    guard pos < end else { throw fail("unterminated string") }
                    s.append(bytes[pos]); pos += 1
                } else { s.append(x) }
            }
            return .string(String(decoding: s, as: UTF8.self))
        case UInt8(ascii: "("), UInt8(ascii: "["):
            let close = c == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
            pos += 1
            var items: [Value] = []
            var trailingComma = false
            while true {
                if peek() == close { pos += 1; break }
                items.append(try parseValue())
                trailingComma = false
                switch peek() {
                case UInt8(ascii: ","): pos += 1; trailingComma = true
                case close: pos += 1
                default: throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
                }
                if bytes[pos - 1] == close { break }
            }
            if c == UInt8(ascii: "[") { return .list(items) }
            // `(x)` is just x in Python; `(x,)` and `()` are tuples.
            if items.count == 1 && !trailingComma { return items[0] }
            return .tuple(items)
        case UInt8(ascii: "{"):
            throw fail("nested dictionaries are not supported")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            var neg = false
            if c == UInt8(ascii: "-") { neg = true; pos += 1 }
            var v: Int? = 0
            var digits = 0
            while pos < end, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[pos]) {
                let d = Int(bytes[pos] - UInt8(ascii: "0"))
                if let cur = v {
                    let (m, o1) = cur.multipliedReportingOverflow(by: 10)
                    let (r, o2) = m.addingReportingOverflow(d)
                    v = (o1 || o2) ? nil : r
                }
                pos += 1; digits += 1
            }
            guard digits > 0 else { throw fail("expected digits") }
            if pos < end && (bytes[pos] == UInt8(ascii: "L") || bytes[pos] == UInt8(ascii: "l")) { pos += 1 }  // Python 2 long
            return .int(neg ? v.map { -$0 } : v)
        default:
            var word: [UInt8] = []
            while pos < end, let ch = Optional(bytes[pos]),
                  (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(ch) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(ch) {
                word.append(ch); pos += 1
            }
            switch String(decoding: word, as: UTF8.self) {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default: throw fail("unexpected token")
            }
        }
    }
}
