// FixedPoint: the integer semantics every other rram-edge module uses.
// Standard library only (no Foundation): this module is also built with Embedded Swift.
// The exact definitions are in docs/FIXEDPOINT.md.

/// How a value that lies between two integers is mapped to one of them.
///
/// For `x / 2^s` write `q = floor(x / 2^s)` and `r = x - q * 2^s` (so `0 <= r < 2^s`),
/// `h = 2^(s-1)` (half a unit of the result). The result is `q` or `q + 1`:
///
/// | rule               | result is `q + 1` when                          |
/// |--------------------|-------------------------------------------------|
/// | `floor`            | never (two's-complement truncation, `x >> s`)   |
/// | `towardZero`       | `x < 0 && r != 0`                               |
/// | `halfUp`           | `r >= h` (ties toward +infinity)                |
/// | `halfAwayFromZero` | `r > h`, or `r == h && x > 0`                   |
/// | `halfToEven`       | `r > h`, or `r == h && q` is odd                |
public enum RoundingRule: UInt8, Sendable, CaseIterable {
    /// Toward -infinity: what an arithmetic right shift does; the FPGA default.
    case floor = 0
    /// Toward zero (C integer division).
    case towardZero = 1
    /// Nearest; ties toward +infinity (`floor(x / 2^s + 1/2)`).
    case halfUp = 2
    /// Nearest; ties away from zero (C `round`, gemmlowp `RoundingDivideByPOT`).
    case halfAwayFromZero = 3
    /// Nearest; ties to the even neighbour (IEEE 754 default, "banker's rounding").
    case halfToEven = 4
}

#if !hasFeature(Embedded)
extension RoundingRule: Codable {}
#endif

/// `x * 2^n` saturated to `Int64`, for `n >= 0` (any `n`, no trap). A negative `n` is treated as 0.
@inlinable
public func saturatingShiftLeft(_ x: Int64, _ n: Int) -> Int64 {
    if x == 0 || n <= 0 { return x }
    if n >= 63 {
        // Only x == -1, n == 63 is exactly representable (Int64.min), which saturation also gives.
        return x < 0 ? .min : .max
    }
    let hi = Int64.max >> n          //  2^(63-n) - 1
    let lo = Int64.min >> n          // -2^(63-n)
    if x > hi { return .max }
    if x < lo { return .min }
    return x << n
}

/// `x / 2^shift` rounded by `rule`, exactly (no intermediate overflow at any input).
///
/// The contract is `shift` in `0...63`. Other shifts never trap and are still exact:
/// `shift >= 64` gives the correctly rounded value of `x / 2^shift` (0 or -1, see the docs),
/// and `shift < 0` is a saturating left shift, `x * 2^(-shift)` clamped to `Int64`.
@inlinable
public func roundingShiftRight(_ x: Int64, _ shift: Int, _ rule: RoundingRule) -> Int64 {
    if shift <= 0 {
        if shift == 0 { return x }
        return saturatingShiftLeft(x, shift == Int.min ? Int.max : -shift)
    }
    if shift >= 64 { return _roundingShiftRightBeyond63(x, shift, rule) }
    let q = x >> shift                                                // floor(x / 2^shift)
    let r = UInt64(bitPattern: x) & (((1 as UInt64) << shift) &- 1)  // x - q * 2^shift
    let half = (1 as UInt64) << (shift &- 1)
    // shift >= 1, so q <= Int64.max >> 1 and q + 1 cannot overflow.
    return _roundsUp(rule, negative: x < 0, inexact: r != 0, aboveHalf: r > half, atHalf: r == half, qOdd: (q & 1) != 0) ? q &+ 1 : q
}

/// The rounding table of `RoundingRule` (the one place it is written): whether `q = floor(x / d)`
/// becomes `q + 1`, given the sign of `x`, whether the remainder `r` is non-zero, and how `r`
/// compares with half of the divisor. `roundingShiftRight` and `roundingDivide` both call it.
@inlinable @inline(__always)
internal func _roundsUp(_ rule: RoundingRule, negative: Bool, inexact: Bool, aboveHalf: Bool, atHalf: Bool, qOdd: Bool) -> Bool {
    switch rule {
    case .floor: return false
    case .towardZero: return negative && inexact
    case .halfUp: return aboveHalf || atHalf
    case .halfAwayFromZero: return aboveHalf || (atHalf && !negative)
    case .halfToEven: return aboveHalf || (atHalf && qOdd)
    }
}

/// `x / 2^shift` for `shift >= 64`: the value lies in `[-1/2, 1/2)`; the only exact tie is
/// `Int64.min / 2^64 = -1/2`.
@inlinable
internal func _roundingShiftRightBeyond63(_ x: Int64, _ shift: Int, _ rule: RoundingRule) -> Int64 {
    if x >= 0 { return 0 }                  // value in [0, 1/2): every rule gives 0
    switch rule {                           // value in [-1/2, 0)
    case .floor: return -1
    case .towardZero, .halfUp, .halfToEven: return 0
    case .halfAwayFromZero: return (x == .min && shift == 64) ? -1 : 0
    }
}

/// `x / 2^shift` rounded by `rule`; the contract is `shift` in `0...31`. Other shifts behave as
/// the `Int64` overload (exact for `shift >= 32`; saturating left shift for `shift < 0`).
@inlinable @inline(__always)
public func roundingShiftRight(_ x: Int32, _ shift: Int, _ rule: RoundingRule) -> Int32 {
    Int32(clamping: roundingShiftRight(Int64(x), shift, rule))
}

/// `x / d` rounded by `rule`, exactly, for a divisor `d >= 1` that need not be a power of two
/// (the average of a global pooling window, the `1 / ((OH-1)(OW-1))` of a bilinear upsampling).
///
/// The same table as `roundingShiftRight` with `2^s` replaced by `d`: `q = floor(x / d)`,
/// `r = x - q*d` (`0 <= r < d`), and "`r` against half of `d`" compares `2r` with `d` (so an
/// odd `d` has no ties):
///
/// | rule               | result is `q + 1` when                  |
/// |--------------------|-----------------------------------------|
/// | `floor`            | never                                   |
/// | `towardZero`       | `x < 0 && r != 0`                       |
/// | `halfUp`           | `2r >= d`                               |
/// | `halfAwayFromZero` | `2r > d`, or `2r == d && x > 0`         |
/// | `halfToEven`       | `2r > d`, or `2r == d && q` is odd      |
///
/// For `d == 2^s` it equals `roundingShiftRight(x, s, rule)` (tested for every `s`). The
/// contract is `d >= 1`; `d <= 0` returns `x` (never traps).
@inlinable
public func roundingDivide(_ x: Int64, by d: Int64, _ rule: RoundingRule) -> Int64 {
    if d <= 1 { return x }
    // floor division without overflow: Int64.min / d cannot overflow for d >= 2
    var q = x / d
    var r = x - q * d
    if r < 0 { q -= 1; r += d }
    // 2r vs d without overflow: r < d <= Int64.max, compare r with d - r
    let other = d - r
    // d >= 2, so |q| <= Int64.max / 2 and q + 1 cannot overflow.
    return _roundsUp(rule, negative: x < 0, inexact: r != 0, aboveHalf: r > other, atHalf: r == other, qOdd: (q & 1) != 0) ? q &+ 1 : q
}
