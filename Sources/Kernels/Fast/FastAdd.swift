// Fast residual addition on HWC buffers (DATAPATH.md section 16).

import CrossbarLayout
import FixedPoint

/// Set-up constants of one residual addition.
public struct AddPlan: Sendable {
    public var first: [Int64], second: [Int64], offset: [Int64]
    public var rounding: [RoundingConst]
    public var hi: Int64

    public init(_ p: AddParams) {
        first = p.first.multiplier.map { Int64($0) }
        second = p.secondMultiplier.map { Int64($0) }
        offset = p.first.offset
        rounding = p.first.shift.map { RoundingConst(shift: Int($0), rule: p.first.rounding) }
        hi = (Int64(1) << Int64(p.first.outBits)) - 1
    }
}

extension Fast {
    /// `dst[i*C + c] = clamp(round((a * M1_c + b * M2_c + B_c) / 2^S_c), 0, hi)` for `i < pixels`.
    @inlinable
    public static func add<A: FixedWidthInteger, B: FixedWidthInteger>(
        _ a: UnsafePointer<A>, _ b: UnsafePointer<B>, dst: UnsafeMutablePointer<Int16>, pixels: Int, channels: Int, plan: AddPlan) {
        let hi = plan.hi
        plan.first.withUnsafeBufferPointer { m1 in
            plan.second.withUnsafeBufferPointer { m2 in
                plan.offset.withUnsafeBufferPointer { off in
                    plan.rounding.withUnsafeBufferPointer { k in
                        var i = 0
                        for _ in 0..<pixels {
                            for c in 0..<channels {
                                // |a M1| + |b M2| + |B| <= 2^62 (validate): no wrap
                                let v = Int64(a[i &+ c]) &* m1[c] &+ Int64(b[i &+ c]) &* m2[c] &+ off[c]
                                let q = k[c].apply(v)
                                dst[i &+ c] = Int16(truncatingIfNeeded: q < 0 ? 0 : (q > hi ? hi : q))
                            }
                            i &+= channels
                        }
                    }
                }
            }
        }
    }
}
