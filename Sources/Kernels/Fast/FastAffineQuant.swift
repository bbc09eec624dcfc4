// Fast inputQuant / activation on an HWC Int32 buffer (DATAPATH.md sections 3 and 7).

import FixedPoint

/// Set-up constants of one affine quantizer.
public struct AffinePlan: Sendable {
    public var multiplier: [Int64]
    public var offset: [Int64]
    public var shifts: [ShiftConst]
    public var hi: Int64
    public var rounding: RoundingRule

    public init(_ p: AffineQuantParams) {
        multiplier = p.multiplier.map { Int64($0) }
        offset = p.offset
        shifts = p.shift.map { ShiftConst(shift: Int($0)) }
        hi = (Int64(1) << Int64(p.outBits)) - 1
        rounding = p.rounding
    }
}

extension Fast {
    /// `dst[i*C + c] = clamp(round((src[i*C + c] * M_c + B_c) >> S_c), 0, hi)` for `i < pixels`.
    @inlinable
    public static func affineQuant(src: UnsafePointer<Int32>, dst: UnsafeMutablePointer<Int32>,
                                   pixels: Int, channels: Int, plan: AffinePlan) {
        switch plan.rounding {
        case .floor: affineLoop(RoundFloor.self, src, dst, pixels, channels, plan)
        case .towardZero: affineLoop(RoundTowardZero.self, src, dst, pixels, channels, plan)
        case .halfUp: affineLoop(RoundHalfUp.self, src, dst, pixels, channels, plan)
        case .halfAwayFromZero: affineLoop(RoundHalfAway.self, src, dst, pixels, channels, plan)
        case .halfToEven: affineLoop(RoundHalfEven.self, src, dst, pixels, channels, plan)
        }
    }

    @inlinable @inline(__always)
    static func affineLoop<R: RoundPolicy>(_: R.Type, _ src: UnsafePointer<Int32>, _ dst: UnsafeMutablePointer<Int32>,
                                           _ pixels: Int, _ channels: Int, _ plan: AffinePlan) {
        let hi = plan.hi
        plan.multiplier.withUnsafeBufferPointer { m in
            plan.offset.withUnsafeBufferPointer { b in
                plan.shifts.withUnsafeBufferPointer { k in
                    var i = 0
                    for _ in 0..<pixels {
                        for c in 0..<channels {
                            // |src * M| + |B| <= 2^62 (validate): no wrap
                            let v = Int64(src[i &+ c]) &* m[c] &+ b[c]
                            let q = R.apply(v, k[c])
                            dst[i &+ c] = Int32(truncatingIfNeeded: q < 0 ? 0 : (q > hi ? hi : q))
                        }
                        i &+= channels
                    }
                }
            }
        }
    }
}
