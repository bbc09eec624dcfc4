// Branch-free rounding shift for the fast kernels: one formula for every rule, with the rule
// folded into per-parameter constants at set-up:
//
//     q = (x + (x > 0 ? biasPos : biasNeg)) >> s
//     if (x & (2^s - 1)) == tieEven && q is odd { q -= 1 }          (halfToEven only)
//
// | rule             | biasPos       | biasNeg       | tieEven  |
// |------------------|---------------|---------------|----------|
// | floor            | 0             | 0             | -1 (off) |
// | towardZero       | 0             | 2^s - 1       | -1       |
// | halfUp           | 2^(s-1)       | 2^(s-1)       | -1       |
// | halfAwayFromZero | 2^(s-1)       | 2^(s-1) - 1   | -1       |
// | halfToEven       | 2^(s-1)       | 2^(s-1)       | 2^(s-1)  |
//
// (For s = 0 every bias is 0 and the tie test is off.) For x = 0 any bias below 2^s gives 0.
// Equals FixedPoint's `roundingShiftRight(x, s, rule)` for s in 0...62 and |x| <= 2^62 (the
// bound validate() proves), where `x + bias` cannot overflow; tested exhaustively on random
// and tie cases in FastVsReferenceTests.

import FixedPoint

/// Rounding-shift constants for one (shift, rule) pair, computed once at set-up.
public struct RoundingConst: Sendable, Equatable {
    public var shift: Int64
    public var biasPos: Int64
    public var biasNeg: Int64
    public var mask: Int64
    public var tieEven: Int64

    public init(shift s: Int, rule: RoundingRule) {
        shift = Int64(s)
        mask = (Int64(1) << Int64(s)) - 1
        let half: Int64 = s > 0 ? Int64(1) << Int64(s - 1) : 0
        tieEven = -1
        switch rule {
        case .floor: biasPos = 0; biasNeg = 0
        case .towardZero: biasPos = 0; biasNeg = mask
        case .halfUp: biasPos = half; biasNeg = half
        case .halfAwayFromZero: biasPos = half; biasNeg = s > 0 ? half - 1 : 0
        case .halfToEven: biasPos = half; biasNeg = half; if s > 0 { tieEven = half }
        }
    }

    /// `roundingShiftRight(x, shift, rule)` for `|x| <= 2^62`.
    @inlinable @inline(__always)
    public func apply(_ x: Int64) -> Int64 {
        let q = (x &+ (x > 0 ? biasPos : biasNeg)) &>> shift   // shift in 0...62: masking shift is exact
        return q &- (((x & mask) == tieEven) && (q & 1) != 0 ? 1 : 0)
    }
}
