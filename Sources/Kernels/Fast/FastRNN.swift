// Fast rnn layer (DATAPATH.md section 15) on HWC Int16 codes. The input `(I, 1, T)` stored HWC
// is `T` contiguous vectors of `I` codes (step t at `t * I`), so each step's input-matrix read is
// a crossbar kernel on a 1x1 map straight from the tensor; the recurrent matrix reads
// the previous hidden codes from a scratch vector. The combiner, the hidden quantizer and the
// fused average + output quantizer use the set-up rounding constants (FastRounding.swift).

import CrossbarLayout
import FixedPoint

/// Set-up of one rnn layer: the two crossbar kernels and the combiner constants. Immutable.
public final class RNNPlan: @unchecked Sendable {
    public let inputKernel: any CrossbarSumsKernel
    public let recurrentKernel: any CrossbarSumsKernel
    public let steps: Int, inputSize: Int, hiddenSize: Int
    public let inputTiles: Int, recurrentTiles: Int
    @usableFromInline let mx: Int64, mh: Int64
    @usableFromInline let hidden: RoundingConst
    @usableFromInline let hiddenMax: Int64
    @usableFromInline let stateShift: Int64
    @usableFromInline let output: AffinePlan

    /// `maxCode`: the largest input code (the input tensor's range); `set`: the kernel set.
    public init(_ p: RNNParams, steps: Int, maxCode: Int64, set: IntKernelSet = IntDispatch.selected) {
        self.steps = steps
        inputSize = p.inputSize
        hiddenSize = p.hiddenSize
        inputKernel = Fast.crossbarKernel(p.input, inShape: TensorShape(c: p.inputSize, h: 1, w: 1), maxCode: maxCode, set: set)
        hiddenMax = (Int64(1) << Int64(p.hiddenBits)) - 1
        recurrentKernel = Fast.crossbarKernel(p.recurrent, inShape: TensorShape(c: p.hiddenSize, h: 1, w: 1), maxCode: hiddenMax, set: set)
        inputTiles = p.input.tiles.count
        recurrentTiles = p.recurrent.tiles.count
        mx = Int64(p.inputMultiplier); mh = Int64(p.recurrentMultiplier)
        hidden = RoundingConst(shift: Int(p.stateShift), rule: p.hiddenRounding)
        stateShift = Int64(p.stateShift)
        output = AffinePlan(p.output)
    }

    /// Scratch: Int16 codes (the hidden vector) and Int32 sums (s_x, s_h, code sum, z of the last step).
    public var codeScratch: Int { (hiddenSize + 7) / 8 * 8 }
    public var sumScratch: Int { 4 * ((hiddenSize + 7) / 8 * 8) }
    /// Patch scratch needed by the two crossbar kernels.
    public var patchCount: Int { Swift.max(inputKernel.scratchCount, recurrentKernel.scratchCount) }
    /// Trace buffer elements: per step, the input tiles, the recurrent tiles, the hidden values.
    public var traceCount: Int { steps * (inputTiles + recurrentTiles + 1) * hiddenSize }
}

extension Fast {
    /// One rnn layer. `src`: HWC input codes `(I, 1, T)`; `dst`: the `Hd` output codes;
    /// `q`: `plan.codeScratch` Int16; `s`: `plan.sumScratch` Int32; `patch`: `patchCount` Int16 (the kernels' scratch);
    /// `trace` (optional): `plan.traceCount` Int32, the per-step sub-points
    /// `[t][input tiles, recurrent tiles, hidden][Hd]`.
    @inlinable
    public static func rnn(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, plan: RNNPlan,
                           q: UnsafeMutablePointer<Int16>, s: UnsafeMutablePointer<Int32>,
                           patch: UnsafeMutablePointer<Int16>, trace: UnsafeMutablePointer<Int32>?) {
        let hd = plan.hiddenSize, T = plan.steps
        let stride = (hd + 7) / 8 * 8
        let sx = s, sh = s + stride, codeSum = s + 2 * stride, zLast = s + 3 * stride
        let perStep = plan.inputTiles + plan.recurrentTiles + 1
        for o in 0..<hd { q[o] = 0; codeSum[o] = 0 }
        let mx = plan.mx, mh = plan.mh, k = plan.hidden, hMax = plan.hiddenMax
        for t in 0..<T {
            let tr = trace.map { $0 + t &* perStep &* hd }
            plan.inputKernel.sums(src: src + t &* plan.inputSize, dst: sx, scratch: patch, tileOut: tr)
            plan.recurrentKernel.sums(src: UnsafePointer(q), dst: sh, scratch: patch, tileOut: tr.map { $0 + plan.inputTiles &* hd })
            let hiddenOut = tr.map { $0 + (plan.inputTiles &+ plan.recurrentTiles) &* hd }
            if t < T - 1 {
                for o in 0..<hd {
                    // |z| <= 2^31 - 1 (validate): no wrap, and the rounding bias cannot overflow
                    let z = Int64(sx[o]) &* mx &+ Int64(sh[o]) &* mh
                    let v = k.apply(z)
                    let c = v < 0 ? 0 : (v > hMax ? hMax : v)
                    q[o] = Int16(truncatingIfNeeded: c)
                    codeSum[o] &+= Int32(truncatingIfNeeded: c)
                    hiddenOut?[o] = Int32(truncatingIfNeeded: c)
                }
            } else {
                for o in 0..<hd {
                    let z = Int64(sx[o]) &* mx &+ Int64(sh[o]) &* mh
                    zLast[o] = Int32(truncatingIfNeeded: z)
                    hiddenOut?[o] = Int32(truncatingIfNeeded: z)
                }
            }
        }
        let out = plan.output, hi = out.hi, S = plan.stateShift
        out.multiplier.withUnsafeBufferPointer { m in
            out.offset.withUnsafeBufferPointer { b in
                out.rounding.withUnsafeBufferPointer { r in
                    for o in 0..<hd {
                        // A <= 2^62 and |A * M| + |B| <= 2^62 (validate)
                        let z = Int64(zLast[o])
                        let a = (Int64(codeSum[o]) &<< S) &+ (z > 0 ? z : 0)
                        let v = r[o].apply(a &* m[o] &+ b[o])
                        dst[o] = Int16(truncatingIfNeeded: v < 0 ? 0 : (v > hi ? hi : v))
                    }
                }
            }
        }
    }
}
