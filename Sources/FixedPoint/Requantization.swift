// Requantization: scaling an integer accumulator by a real factor m > 0 represented as
// m ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (or 0), as TFLite does.
// Two application modes, always chosen explicitly; see docs/FIXEDPOINT.md.

/// Why a real number has no `QuantizedMultiplier`.
public enum QuantizedMultiplierError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The real multiplier is NaN or infinite.
    case notFinite(Double)
    /// The real multiplier is negative (requantization multipliers are non-negative).
    case negative(Double)
    /// The real multiplier is `>= 2^30 - 1/4`, which would need `shift > 30`
    /// (`QuantizedMultiplier.maxShift`); the single-rounding path cannot shift left.
    case shiftTooLarge(Double, shift: Int)

    public var description: String {
        switch self {
        case .notFinite(let m):
            return "QuantizedMultiplier: real multiplier \(m) is not finite"
        case .negative(let m):
            return "QuantizedMultiplier: real multiplier \(m) is negative; only m >= 0 is supported"
        case .shiftTooLarge(let m, let shift):
            return "QuantizedMultiplier: real multiplier \(m) needs shift \(shift) > \(QuantizedMultiplier.maxShift) (m must be < 2^30 - 1/4)"
        }
    }
}

/// A non-negative real factor as `multiplier * 2^(shift - 31)`.
///
/// Values made by `init(real:)` satisfy `multiplier == 0 && shift == 0` or
/// `multiplier in 2^30 ..< 2^31` and `shift in -31...30`. Hand-made values outside that range are
/// still accepted by `requantize` (which is total); see the docs for their exact meaning.
public struct QuantizedMultiplier: Sendable, Equatable, Hashable {
    public var multiplier: Int32
    public var shift: Int32

    /// Smallest shift `init(real:)` produces (smaller ones are flushed to zero, as TFLite does).
    public static let minShift: Int32 = -31
    /// Largest shift `init(real:)` accepts (TFLite's single-rounding limit; beyond it throws).
    public static let maxShift: Int32 = 30
    /// The zero multiplier (every accumulator requantizes to 0).
    public static let zero = QuantizedMultiplier(multiplier: 0, shift: 0)

    @inlinable
    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    /// TFLite `QuantizeMultiplier`: `m = frac * 2^e` with `frac in [1/2, 1)` (frexp),
    /// `q = round(frac * 2^31)` with ties away from zero; if `q == 2^31` then `q = 2^30, e += 1`;
    /// if `e < -31` the result is flushed to `(0, 0)`. `m == 0` (either sign) gives `(0, 0)`.
    /// Throws for NaN, infinities, negative `m`, and for `e > 30` (`m >= 2^30 - 1/4`).
    public init(real m: Double) throws(QuantizedMultiplierError) {
        guard m.isFinite else { throw .notFinite(m) }
        guard m >= 0 else { throw .negative(m) }
        if m == 0 { self = .zero; return }
        // frexp without libm: significand in [1, 2) (also normalised for subnormals).
        var e = Int(m.exponent) + 1
        let frac = m.significand * 0.5                                // exact, in [1/2, 1)
        var q = Int64((frac * 2_147_483_648.0).rounded(.toNearestOrAwayFromZero))  // exact product
        if q == 1 << 31 { q = 1 << 30; e += 1 }
        if e < Int(QuantizedMultiplier.minShift) { self = .zero; return }
        if e > Int(QuantizedMultiplier.maxShift) { throw .shiftTooLarge(m, shift: e) }
        self.init(multiplier: Int32(q), shift: Int32(e))
    }

    /// The represented real value `multiplier * 2^(shift - 31)` (exact unless it under/overflows).
    public var realValue: Double {
        Double(multiplier) * Double(sign: .plus, exponent: Int(shift) - 31, significand: 1.0)
    }
}

#if !hasFeature(Embedded)
extension QuantizedMultiplier: Codable {}
extension RequantMode: Codable {}
#endif

/// How `requantize` applies a `QuantizedMultiplier`. There is no default: callers choose.
public enum RequantMode: UInt8, Sendable, CaseIterable {
    /// One rounding: `(acc * multiplier) / 2^(31 - shift)` rounded half up (ties toward +infinity),
    /// saturated to `Int32` (TFLite with `TFLITE_SINGLE_ROUNDING`).
    case singleRounding = 0
    /// gemmlowp two-step: saturating left shift by `max(shift, 0)`, then
    /// `saturatingRoundingDoublingHighMul`, then `roundingDivideByPOT(-min(shift, 0))`
    /// (TFLite's classic `MultiplyByQuantizedMultiplier`).
    case doubleRounding = 1
}

/// gemmlowp `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2 * a * b`, rounded to
/// nearest; `Int32.min * Int32.min` (the only overflow) saturates to `Int32.max`.
/// gemmlowp nudges `a*b` by `2^30` (or `1 - 2^30` when negative) and divides by `2^31` truncating
/// toward zero, which equals `floor((a*b + 2^30) / 2^31)`: ties go toward +infinity in both signs.
@inlinable @inline(__always)
public func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
    if a == .min && b == .min { return .max }
    let ab = Int64(a) * Int64(b)                     // |ab| <= 2^62: no overflow
    return Int32(truncatingIfNeeded: (ab &+ (1 << 30)) >> 31)
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
/// gemmlowp's domain is `exponent in 0...31`; beyond it this returns the exact rounded value
/// (0, or -1 for `Int32.min / 2^32`), and a negative exponent is a saturating left shift.
@inlinable @inline(__always)
public func roundingDivideByPOT(_ x: Int32, _ exponent: Int) -> Int32 {
    roundingShiftRight(x, exponent, .halfAwayFromZero)
}

/// `shift` clamped to a range where every arithmetic below is safe on 32- and 64-bit `Int`;
/// outside `-128...128` every result is already saturated or zero, so clamping changes nothing.
@inlinable @inline(__always)
internal func _clampedShift(_ s: Int32) -> Int {
    Int(s < -128 ? -128 : (s > 128 ? 128 : s))
}

/// Scales an `Int32` accumulator by `m` in the chosen mode. Total (never traps); the result is
/// saturated to `Int32`.
@inlinable
public func requantize(_ acc: Int32, _ m: QuantizedMultiplier, mode: RequantMode) -> Int32 {
    let s = _clampedShift(m.shift)
    switch mode {
    case .singleRounding:
        let p = Int64(acc) * Int64(m.multiplier)     // |p| <= 2^62: no overflow
        return Int32(clamping: roundingShiftRight(p, 31 - s, .halfUp))
    case .doubleRounding:
        let left = s > 0 ? s : 0
        let right = s > 0 ? 0 : -s
        let x = Int32(clamping: saturatingShiftLeft(Int64(acc), left))
        return roundingDivideByPOT(saturatingRoundingDoublingHighMul(x, m.multiplier), right)
    }
}

/// Single-rounding requantization of a 64-bit accumulator: the exact 95-bit product
/// `acc * multiplier` divided by `2^(31 - shift)`, rounded half up, saturated to `Int32`.
/// (Unlike TFLite's reduced-precision int64 variant, no multiplier bits are dropped.)
@inlinable
public func requantizeSingleRounding(_ acc: Int64, _ m: QuantizedMultiplier) -> Int32 {
    let (hi, lo) = acc.multipliedFullWidth(by: Int64(m.multiplier))   // |p| <= 2^94
    let t = 31 - _clampedShift(m.shift)
    let fits64 = hi == (Int64(bitPattern: lo) >> 63)
    if t <= 0 {
        if !fits64 { return hi < 0 ? .min : .max }
        return Int32(clamping: saturatingShiftLeft(Int64(bitPattern: lo), -t))
    }
    if t >= 96 { return 0 }                         // |p / 2^t| <= 1/4
    // p + 2^(t-1): cannot overflow 128 bits since |p| <= 2^94.
    var bhi = hi, blo = lo
    if t - 1 < 64 {
        let (s, c) = lo.addingReportingOverflow((1 as UInt64) << (t - 1))
        blo = s
        bhi = hi &+ (c ? 1 : 0)
    } else {
        bhi = hi &+ ((1 as Int64) << (t - 1 - 64))
    }
    // Arithmetic shift of (bhi, blo) right by t in 1...95.
    let rhi: Int64, rlo: UInt64
    if t < 64 {
        rlo = (blo >> t) | (UInt64(bitPattern: bhi) << (64 - t))
        rhi = bhi >> t
    } else {
        rlo = UInt64(bitPattern: bhi >> (t - 64))
        rhi = bhi >> 63
    }
    if rhi != (Int64(bitPattern: rlo) >> 63) { return rhi < 0 ? .min : .max }
    return Int32(clamping: Int64(bitPattern: rlo))
}
