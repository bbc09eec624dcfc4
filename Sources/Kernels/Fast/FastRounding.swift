// Branch-free rounding shifts for the fast kernels, specialised per rule at compile time.
// Each equals FixedPoint's `roundingShiftRight(x, s, rule)` for `s in 0...62` and
// `|x| <= 2^62` (the bound validate() proves), so `x + bias` cannot overflow.

import FixedPoint

/// Per-shift constants, computed once at set-up.
public struct ShiftConst: Sendable, Equatable {
    public var shift: Int64
    public var half: Int64        // 2^(s-1), 0 for s == 0
    public var halfMinus1: Int64  // 2^(s-1) - 1, 0 for s == 0
    public var mask: Int64        // 2^s - 1
    public var tie: Int64         // half, or -1 (never matches) for s == 0

    public init(shift s: Int) {
        shift = Int64(s)
        half = s > 0 ? Int64(1) << Int64(s - 1) : 0
        halfMinus1 = s > 0 ? half - 1 : 0
        mask = (Int64(1) << Int64(s)) - 1
        tie = s > 0 ? half : -1
    }
}

@usableFromInline protocol RoundPolicy {
    static func apply(_ x: Int64, _ k: ShiftConst) -> Int64
}

@usableFromInline enum RoundFloor: RoundPolicy {
    @inlinable @inline(__always) static func apply(_ x: Int64, _ k: ShiftConst) -> Int64 { x >> k.shift }
}
@usableFromInline enum RoundTowardZero: RoundPolicy {
    @inlinable @inline(__always) static func apply(_ x: Int64, _ k: ShiftConst) -> Int64 {
        (x &+ ((x >> 63) & k.mask)) >> k.shift
    }
}
@usableFromInline enum RoundHalfUp: RoundPolicy {
    @inlinable @inline(__always) static func apply(_ x: Int64, _ k: ShiftConst) -> Int64 { (x &+ k.half) >> k.shift }
}
@usableFromInline enum RoundHalfAway: RoundPolicy {
    @inlinable @inline(__always) static func apply(_ x: Int64, _ k: ShiftConst) -> Int64 {
        (x &+ (x > 0 ? k.half : k.halfMinus1)) >> k.shift
    }
}
@usableFromInline enum RoundHalfEven: RoundPolicy {
    @inlinable @inline(__always) static func apply(_ x: Int64, _ k: ShiftConst) -> Int64 {
        let q = (x &+ k.half) >> k.shift
        return ((x & k.mask) == k.tie && (q & 1) != 0) ? q &- 1 : q
    }
}

/// Fast scalar rounding shift (rule dispatched at run time); used off the hot loops and in tests.
@inlinable
public func fastRoundingShiftRight(_ x: Int64, _ k: ShiftConst, _ rule: RoundingRule) -> Int64 {
    switch rule {
    case .floor: return RoundFloor.apply(x, k)
    case .towardZero: return RoundTowardZero.apply(x, k)
    case .halfUp: return RoundHalfUp.apply(x, k)
    case .halfAwayFromZero: return RoundHalfAway.apply(x, k)
    case .halfToEven: return RoundHalfEven.apply(x, k)
    }
}
