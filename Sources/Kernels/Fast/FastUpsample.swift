// Fast bilinear upsampling (aligned corners) on HWC buffers (DATAPATH.md section 18).

import FixedPoint

/// Set-up constants of one upsampling: per output row and column, the first source and the
/// second source's weight (the second source index is clamped to the map: where it lies
/// outside, its weight is 0).
public struct UpsamplePlan: Sendable {
    public var inShape: TensorShape, outShape: TensorShape
    public var y0: [Int], y1: [Int], fy: [Int64], dy: Int64
    public var x0: [Int], x1: [Int], fx: [Int64], dx: Int64
    /// `.sum` output: the numerators; otherwise divided by `dy * dx` with `rounding`.
    public var exact: Bool
    public var rounding: RoundingRule

    public init(_ p: UpsampleParams, inShape s: TensorShape, exact: Bool) {
        inShape = s
        outShape = p.outputShape(for: s)
        self.exact = exact
        rounding = p.rounding
        func axis(_ n: Int, _ m: Int) -> ([Int], [Int], [Int64], Int64) {
            var i0: [Int] = [], i1: [Int] = [], f: [Int64] = []
            for o in 0..<m {
                let a = Reference.upsampleAxis(o, input: n, output: m)
                i0.append(a.i); i1.append(Swift.min(a.i + 1, n - 1)); f.append(Int64(a.f))
            }
            return (i0, i1, f, Int64(UpsampleParams.axisDenominator(output: m)))
        }
        (y0, y1, fy, dy) = axis(s.h, outShape.h)
        (x0, x1, fx, dx) = axis(s.w, outShape.w)
    }
}

extension Fast {
    /// Upsamples the HWC tensor `src` (`plan.inShape`) into `dst` (`plan.outShape`).
    @inlinable
    public static func upsample<S: FixedWidthInteger, D: FixedWidthInteger>(
        src: UnsafePointer<S>, dst: UnsafeMutablePointer<D>, plan: UpsamplePlan) {
        let c = plan.inShape.c, iw = plan.inShape.w, ow = plan.outShape.w
        let dy = plan.dy, dx = plan.dx, den = dy &* dx, exact = plan.exact, rule = plan.rounding
        var o = dst
        for oy in 0..<plan.outShape.h {
            let r0 = src + plan.y0[oy] &* iw &* c, r1 = src + plan.y1[oy] &* iw &* c
            let fy = plan.fy[oy]
            for ox in 0..<ow {
                let fx = plan.fx[ox], a = plan.x0[ox] &* c, b = plan.x1[ox] &* c
                let w00 = (dy &- fy) &* (dx &- fx), w01 = (dy &- fy) &* fx, w10 = fy &* (dx &- fx), w11 = fy &* fx
                for ch in 0..<c {
                    // |numerator| <= max|in| * Dy * Dx <= 2^62 (validate)
                    let num = w00 &* Int64(r0[a &+ ch]) &+ w01 &* Int64(r0[b &+ ch]) &+ w10 &* Int64(r1[a &+ ch]) &+ w11 &* Int64(r1[b &+ ch])
                    o[ch] = D(truncatingIfNeeded: exact ? num : roundingDivide(num, by: den, rule))
                }
                o += c
            }
        }
    }
}
