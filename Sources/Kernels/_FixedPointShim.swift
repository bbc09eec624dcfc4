// TEMPORARY: a minimal copy of the FixedPoint API (same names, same semantics) used until the
// FixedPoint module lands on main. Deleted after merging; do not use anything else from here.

public enum RoundingRule: UInt8, Sendable, CaseIterable {
    case floor = 0, towardZero = 1, halfUp = 2, halfAwayFromZero = 3, halfToEven = 4
}

@inlinable
public func roundingShiftRight(_ x: Int64, _ shift: Int, _ rule: RoundingRule) -> Int64 {
    if shift <= 0 { return x }   // shim: only the contract range 0...62 is used by Kernels
    let q = x >> shift
    let r = UInt64(bitPattern: x) & (((1 as UInt64) << shift) &- 1)
    let half = (1 as UInt64) << (shift &- 1)
    let up: Bool
    switch rule {
    case .floor: up = false
    case .towardZero: up = x < 0 && r != 0
    case .halfUp: up = r >= half
    case .halfAwayFromZero: up = r > half || (r == half && x > 0)
    case .halfToEven: up = r > half || (r == half && (q & 1) != 0)
    }
    return up ? q &+ 1 : q
}

@inlinable
public func saturate(_ x: Int64, signedBits n: Int) -> Int64 {
    let hi = Int64.max >> (64 - n), lo = Int64.min >> (64 - n)
    return x < lo ? lo : (x > hi ? hi : x)
}

@inlinable
public func saturate(_ x: Int64, unsignedBits n: Int) -> Int64 {
    let hi = Int64.max >> (63 - n)
    return x < 0 ? 0 : (x > hi ? hi : x)
}
