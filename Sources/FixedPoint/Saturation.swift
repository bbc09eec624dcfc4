// Saturating arithmetic and narrowing. Every function is total: no input traps.

/// `a + b` clamped to `Int32`.
@inlinable @inline(__always)
public func saturatingAdd(_ a: Int32, _ b: Int32) -> Int32 {
    let (s, o) = a.addingReportingOverflow(b)
    return o ? (b < 0 ? .min : .max) : s
}

/// `a + b` clamped to `Int64`.
@inlinable @inline(__always)
public func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
    let (s, o) = a.addingReportingOverflow(b)
    return o ? (b < 0 ? .min : .max) : s
}

/// `a - b` clamped to `Int32`.
@inlinable @inline(__always)
public func saturatingSubtract(_ a: Int32, _ b: Int32) -> Int32 {
    let (s, o) = a.subtractingReportingOverflow(b)
    return o ? (b < 0 ? .max : .min) : s
}

/// `a - b` clamped to `Int64`.
@inlinable @inline(__always)
public func saturatingSubtract(_ a: Int64, _ b: Int64) -> Int64 {
    let (s, o) = a.subtractingReportingOverflow(b)
    return o ? (b < 0 ? .max : .min) : s
}

/// `a * b` clamped to `Int32`.
@inlinable @inline(__always)
public func saturatingMultiply(_ a: Int32, _ b: Int32) -> Int32 {
    let (p, o) = a.multipliedReportingOverflow(by: b)
    return o ? ((a < 0) != (b < 0) ? .min : .max) : p
}

/// `a * b` clamped to `Int64`.
@inlinable @inline(__always)
public func saturatingMultiply(_ a: Int64, _ b: Int64) -> Int64 {
    let (p, o) = a.multipliedReportingOverflow(by: b)
    return o ? ((a < 0) != (b < 0) ? .min : .max) : p
}

/// `x` clamped to the `n`-bit two's-complement range `[-2^(n-1), 2^(n-1) - 1]`.
/// Contract `n` in `1...64`; `n < 1` is treated as 1 and `n > 64` as 64.
@inlinable @inline(__always)
public func saturate(_ x: Int64, signedBits n: Int) -> Int64 {
    let k = n < 1 ? 1 : (n > 64 ? 64 : n)
    let hi = Int64.max >> (64 - k)       //  2^(k-1) - 1
    let lo = Int64.min >> (64 - k)       // -2^(k-1)
    return x < lo ? lo : (x > hi ? hi : x)
}

/// `x` clamped to the `n`-bit unsigned range `[0, 2^n - 1]`.
/// Contract `n` in `1...63`; `n < 0` is treated as 0 (range `[0, 0]`) and `n > 63` as 63.
@inlinable @inline(__always)
public func saturate(_ x: Int64, unsignedBits n: Int) -> Int64 {
    let k = n < 0 ? 0 : (n > 63 ? 63 : n)
    let hi = Int64.max >> (63 - k)       // 2^k - 1
    return x < 0 ? 0 : (x > hi ? hi : x)
}

/// `x` clamped to `[-2^(n-1), 2^(n-1) - 1]`; contract `n` in `1...32` (`n < 1` -> 1, `n > 32` -> 32).
@inlinable @inline(__always)
public func saturate(_ x: Int32, signedBits n: Int) -> Int32 {
    Int32(truncatingIfNeeded: saturate(Int64(x), signedBits: n < 32 ? n : 32))
}

/// `x` clamped to `[0, 2^n - 1]`; contract `n` in `1...31` (`n < 0` -> 0, `n > 31` -> 31).
@inlinable @inline(__always)
public func saturate(_ x: Int32, unsignedBits n: Int) -> Int32 {
    Int32(truncatingIfNeeded: saturate(Int64(x), unsignedBits: n < 31 ? n : 31))
}

/// `x` clamped to `T.min...T.max` (e.g. `Int32`, `Int16`, `Int8`, `UInt8`, `UInt16`).
@inlinable @inline(__always)
public func saturatingNarrow<T: FixedWidthInteger>(_ x: Int64, to: T.Type) -> T {
    T(clamping: x)
}

/// `x` clamped to `T.min...T.max` (e.g. `Int16`, `Int8`, `UInt8`).
@inlinable @inline(__always)
public func saturatingNarrow<T: FixedWidthInteger>(_ x: Int32, to: T.Type) -> T {
    T(clamping: x)
}
