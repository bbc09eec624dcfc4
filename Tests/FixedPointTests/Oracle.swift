// Independent reference implementations ("oracles") for the FixedPoint tests.
//
// Written separately from Sources/FixedPoint and deliberately in a different style: everything
// is computed exactly in the standard library's 128-bit `Int128` with division and remainder
// (no shifts-and-masks), and the gemmlowp functions are transcribed literally from their
// published definitions (nudge + truncating division; mask + threshold).
import Randomness
@testable import FixedPoint

@available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
enum Oracle {
    static func pow2(_ k: Int) -> Int128 { precondition(k >= 0 && k <= 126); return Int128(1) << k }

    /// Floor division and the non-negative remainder, by definition.
    static func floorDivMod(_ x: Int128, _ d: Int128) -> (q: Int128, r: Int128) {
        var q = x / d, r = x % d            // Swift: truncating
        if r < 0 { q -= 1; r += d }
        return (q, r)
    }

    static func clamp(_ v: Int128, _ lo: Int128, _ hi: Int128) -> Int128 { v < lo ? lo : (v > hi ? hi : v) }

    /// x / 2^s rounded by `rule`, from the rule's definition on (q, r) with 2r compared to 2^s.
    static func roundDiv(_ x: Int128, shift s: Int, _ rule: RoundingRule) -> Int128 {
        let d = pow2(s)
        let (q, r) = floorDivMod(x, d)
        if r == 0 { return q }
        let twoR = 2 * r
        switch rule {
        case .floor: return q
        case .towardZero: return x < 0 ? q + 1 : q
        case .halfUp: return twoR >= d ? q + 1 : q
        case .halfAwayFromZero:
            if twoR != d { return twoR > d ? q + 1 : q }
            return x > 0 ? q + 1 : q
        case .halfToEven:
            if twoR != d { return twoR > d ? q + 1 : q }
            return q % 2 == 0 ? q : q + 1
        }
    }

    /// The Int64 function's full documented behaviour for any shift.
    static func roundingShiftRight64(_ x: Int64, _ s: Int, _ rule: RoundingRule) -> Int64 {
        if s >= 0 {
            return Int64(roundDiv(Int128(x), shift: min(s, 120), rule))   // |x| <= 2^63 < 2^119
        }
        let n = s == Int.min ? Int.max : -s
        if x == 0 { return 0 }
        if n >= 64 { return x < 0 ? .min : .max }
        return Int64(clamp(Int128(x) * pow2(n), Int128(Int64.min), Int128(Int64.max)))
    }

    static func roundingShiftRight32(_ x: Int32, _ s: Int, _ rule: RoundingRule) -> Int32 {
        Int32(clamp(Int128(roundingShiftRight64(Int64(x), s, rule)), Int128(Int32.min), Int128(Int32.max)))
    }

    /// gemmlowp SaturatingRoundingDoublingHighMul, literally.
    static func srdhm(_ a: Int32, _ b: Int32) -> Int32 {
        let overflow = a == b && a == Int32.min
        let ab = Int128(a) * Int128(b)
        let nudge: Int128 = ab >= 0 ? (1 << 30) : (1 - (1 << 30))
        let high = (ab + nudge) / (Int128(1) << 31)        // C++ division: truncates toward zero
        return overflow ? Int32.max : Int32(high)
    }

    /// gemmlowp RoundingDivideByPOT, literally (mask / remainder / threshold), exponent 0...31.
    static func roundingDivideByPOT(_ x: Int32, _ exponent: Int) -> Int32 {
        precondition(exponent >= 0 && exponent <= 31)
        let x64 = Int64(x)
        let mask = (Int64(1) << exponent) - 1
        let remainder = x64 & mask
        let threshold = (mask >> 1) + (x64 < 0 ? 1 : 0)
        return Int32((x64 >> exponent) + (remainder > threshold ? 1 : 0))
    }

    /// Single rounding: round-half-up of acc * mult / 2^(31 - shift), clamped to Int32.
    /// Written as floor((p + 2^(t-1)) / 2^t) for t >= 1 and an exact product for t <= 0.
    static func singleRounding(_ acc: Int128, _ mult: Int32, _ shift: Int32) -> Int32 {
        let p = acc * Int128(mult)
        let t = 31 - Int(shift)
        let lo = Int128(Int32.min), hi = Int128(Int32.max)
        if t <= 0 {
            if p == 0 { return 0 }
            if -t >= 40 { return p < 0 ? Int32.min : Int32.max }   // |p| >= 1 -> |p * 2^40| > 2^32
            // |p| > 2^40 saturates whatever the shift; clamping first keeps the product in Int128.
            return Int32(clamp(clamp(p, -pow2(40), pow2(40)) * pow2(-t), lo, hi))
        }
        if t >= 120 { return 0 }                                   // |p| < 2^96, far below 2^(t-1)
        let d = pow2(t)
        return Int32(clamp(floorDivMod(p + d / 2, d).q, lo, hi))
    }

    /// TFLite double rounding from the gemmlowp spec, with a saturating left shift.
    static func doubleRounding(_ acc: Int32, _ mult: Int32, _ shift: Int32) -> Int32 {
        let s = Int(shift)
        let left = max(s, 0), right = max(-s, 0)
        let shifted: Int32
        if acc == 0 { shifted = 0 } else if left >= 40 { shifted = acc < 0 ? .min : .max } else {
            shifted = Int32(clamp(Int128(acc) * pow2(left), Int128(Int32.min), Int128(Int32.max)))
        }
        let h = srdhm(shifted, mult)
        if right <= 31 { return roundingDivideByPOT(h, right) }
        return Int32(roundDiv(Int128(h), shift: min(right, 100), .halfAwayFromZero))
    }

    /// TFLite QuantizeMultiplier from the IEEE-754 bit pattern (no Double arithmetic):
    /// m = M * 2^(E - 52), frac = M / 2^53, q = round-half-up(M / 2^22) computed as (M + 2^21) >> 22.
    /// Returns nil where the implementation must throw (shift > 30).
    static func quantizeMultiplier(_ m: Double) -> (multiplier: Int32, shift: Int32)? {
        let bits = m.bitPattern
        precondition(bits >> 63 == 0)
        let biased = Int((bits >> 52) & 0x7FF)
        let fraction = bits & ((1 << 52) - 1)
        precondition(biased != 0x7FF)
        if biased == 0 { return (0, 0) }                 // zero or subnormal (< 2^-1022): flushed
        let M = Int128(fraction | (1 << 52))
        var shift = biased - 1023 + 1
        var q = (M + (1 << 21)) / (1 << 22)
        if q == (Int128(1) << 31) { q /= 2; shift += 1 }
        if shift < -31 { return (0, 0) }
        if shift > 30 { return nil }
        return (Int32(q), Int32(shift))
    }

    /// m exactly as a pair (M, E) with m = M * 2^E (normal, positive m only).
    static func exactDouble(_ m: Double) -> (M: Int128, E: Int) {
        let bits = m.bitPattern
        let biased = Int((bits >> 52) & 0x7FF)
        precondition(biased != 0 && biased != 0x7FF)
        return (Int128(bits & ((1 << 52) - 1) | (1 << 52)), biased - 1023 - 52)
    }
}

/// Test values: boundaries plus random values spread over all magnitudes.
struct Values {
    var g: Xoshiro256StarStar
    init(seed: UInt64) { g = Xoshiro256StarStar(seed: seed) }

    /// A random Int64 whose magnitude is spread over all bit lengths (arithmetic shift 0...63).
    mutating func int64() -> Int64 { Int64(bitPattern: g.next()) >> g.int(below: 64) }
    /// A random Int32 whose magnitude is spread over all bit lengths.
    mutating func int32() -> Int32 { Int32(truncatingIfNeeded: g.next()) >> g.int(below: 32) }
    /// A uniformly random Int32.
    mutating func fullInt32() -> Int32 { Int32(truncatingIfNeeded: g.next()) }

    static let int64Boundaries: [Int64] = [.min, .min + 1, .min + 2, -2, -1, 0, 1, 2, .max - 1, .max,
                                           Int64(Int32.min), Int64(Int32.max), Int64(Int32.min) - 1, Int64(Int32.max) + 1]
    static let int32Boundaries: [Int32] = [.min, .min + 1, .min + 2, -3, -2, -1, 0, 1, 2, 3, .max - 2, .max - 1, .max,
                                           Int32(Int16.min), Int32(Int16.max), 1 << 30, -(1 << 30)]
}
