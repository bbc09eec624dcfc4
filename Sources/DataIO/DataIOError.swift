// DataIO: reading and writing data sets and arrays on disk (IDX, NPY, gzip).
//
// Every malformed input raises a `DataIOError` naming the file and the problem (and the byte
// offset where it is meaningful). Counts read from files are validated with overflow-checked
// arithmetic against the bytes actually present before anything is allocated or indexed.

/// The one error type of DataIO. `description` reads `FILE: PROBLEM [at byte N][; note]`.
public struct DataIOError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case fileNotFound
        case io(String)
        case badMagic
        /// The file ends before a fixed-size header does.
        case truncated(expected: Int, got: Int)
        case unsupportedType(String)
        case unsupportedVersion(String)
        /// The product of the dimensions (times the item size) does not fit in an Int.
        case dimensionOverflow
        /// The payload holds fewer bytes than the header's shape and type require.
        case payloadTooShort(expected: Int, got: Int)
        /// The payload holds more bytes than the header's shape and type require (count of extra bytes).
        case trailingBytes(Int)
        case badHeader(String)
        case fortranOrder
        case objectArray
        case dtypeMismatch(String)
        case gzip(String)
        /// Decompressed output would exceed the limit (the limit in bytes).
        case tooLarge(Int)
        /// A bool payload byte other than 0 or 1 (the byte's value; the offset is in `offset`).
        case invalidBool(UInt8)
        /// An in-memory array whose element count does not match its shape.
        case countMismatch(expected: Int, got: Int)
        /// Files that are individually valid but do not fit together (e.g. images vs labels).
        case inconsistent(String)
    }

    public let kind: Kind
    public let file: String
    /// Byte offset into the (decompressed) content where the problem was found, if meaningful.
    public let offset: Int?
    /// Extra advice, e.g. how to install a missing data set.
    public let note: String?

    public init(_ kind: Kind, file: String, offset: Int? = nil, note: String? = nil) {
        self.kind = kind
        self.file = file
        self.offset = offset
        self.note = note
    }

    /// Same as `init(_:file:)` (labelled spelling).
    public init(kind: Kind, file: String) {
        self.init(kind, file: file)
    }

    /// The problem in words, without the file name.
    public var problem: String {
        switch kind {
        case .fileNotFound: return "file not found"
        case .io(let m): return "I/O error: \(m)"
        case .badMagic: return "bad magic number (not a file of the expected format)"
        case .truncated(let e, let g): return "truncated: header needs \(e) bytes, file has \(g)"
        case .unsupportedType(let t): return "unsupported element type: \(t)"
        case .unsupportedVersion(let v): return "unsupported format version \(v)"
        case .dimensionOverflow: return "dimension product overflows (shape too large to be real)"
        case .payloadTooShort(let e, let g): return "payload too short: header promises \(e) bytes, file has \(g)"
        case .trailingBytes(let n): return "\(n) unexpected bytes after the payload (header lies about shape or type?)"
        case .badHeader(let m): return "bad header: \(m)"
        case .fortranOrder: return "Fortran-order array refused (save it C-contiguous: np.ascontiguousarray)"
        case .objectArray: return "object array refused (dtype 'O' holds pickled Python objects)"
        case .dtypeMismatch(let m): return "dtype mismatch: \(m)"
        case .gzip(let m): return "gzip: \(m)"
        case .tooLarge(let l): return "decompressed data exceeds the limit of \(l) bytes (gzip bomb?)"
        case .invalidBool(let b): return "invalid bool byte \(b) (must be 0 or 1)"
        case .countMismatch(let e, let g): return "element count mismatch: shape needs \(e) elements, got \(g)"
        case .inconsistent(let m): return "inconsistent data: \(m)"
        }
    }

    public var description: String {
        var s = "\(file): \(problem)"
        if let o = offset { s += " (at byte \(o))" }
        if let n = note { s += "; \(n)" }
        return s
    }
}

/// Product of non-negative dimensions, nil on overflow or a negative dimension.
@inline(__always)
public func checkedProduct(_ dims: [Int], times itemSize: Int = 1) -> Int? {
    var p = itemSize
    for d in dims {
        if d < 0 { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: d)
        if o { return nil }
        p = r
    }
    return p
}
