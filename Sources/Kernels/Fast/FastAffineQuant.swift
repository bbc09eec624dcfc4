// Fast inputQuant / activation on an HWC buffer (DATAPATH.md sections 3 and 7).

import FixedPoint

/// Set-up constants of one affine quantizer.
public struct AffinePlan: Sendable {
    public var multiplier: [Int64]
    public var offset: [Int64]
    public var rounding: [RoundingConst]
    public var hi: Int64

    public init(_ p: AffineQuantParams) {
        multiplier = p.multiplier.map { Int64($0) }
        offset = p.offset
        rounding = p.shift.map { RoundingConst(shift: Int($0), rule: p.rounding) }
        hi = (Int64(1) << Int64(p.outBits)) - 1
    }
}

extension Fast {
    /// `dst[i*C + c] = clamp(round((src[i*C + c] * M_c + B_c) / 2^S_c), 0, hi)` for `i < pixels`.
    @inlinable
    public static func affineQuant<S: FixedWidthInteger, D: FixedWidthInteger>(
        src: UnsafePointer<S>, dst: UnsafeMutablePointer<D>, pixels: Int, channels: Int, plan: AffinePlan) {
        let hi = plan.hi
        plan.multiplier.withUnsafeBufferPointer { m in
            plan.offset.withUnsafeBufferPointer { b in
                plan.rounding.withUnsafeBufferPointer { k in
                    var i = 0
                    for _ in 0..<pixels {
                        for c in 0..<channels {
                            // |src * M| + |B| <= 2^62 (validate): no wrap
                            let q = k[c].apply(Int64(src[i &+ c]) &* m[c] &+ b[c])
                            dst[i &+ c] = D(truncatingIfNeeded: q < 0 ? 0 : (q > hi ? hi : q))
                        }
                        i &+= channels
                    }
                }
            }
        }
    }
}
