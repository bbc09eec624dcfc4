// The float pipeline of the frozen graph (DATAPATH.md section 11): the same Program evaluated in
// Float32 with each integer op replaced by its real-valued meaning, in code units. The affine
// quantizers (input DAC, activations) keep their rounding and clamp (the float training pipeline
// has them too); the crossbar is ideal analog: exact real dot products, an ADC with the real
// gain and no rounding and no saturation, a real digital sum.

import FixedPoint

public enum FloatPipeline {
    /// Every tensor of the program in (C,H,W) order, as Float32.
    public static func run(_ program: Program, pixels: [UInt8]) -> [[Float]] {
        var tensors = [[Float]](repeating: [], count: program.tensors.count)
        tensors[program.input] = pixels.map { Float($0) }
        for node in program.nodes {
            tensors[node.output] = evaluate(node, in: program, inputs: node.inputs.map { tensors[$0] })
        }
        return tensors
    }

    /// One node's output from its inputs' float values (in `node.inputs` order).
    public static func evaluate(_ node: Node, in program: Program, inputs: [[Float]]) -> [Float] {
        let x = inputs[0]
        let s = program.tensors[node.inputs[0]].shape
        switch node.op {
        case .inputQuant(let p), .activation(let p):
            return affine(x, shape: s, p)
        case .maxPool(let p):
            let oh = (s.h - p.kh) / p.sh + 1, ow = (s.w - p.kw) / p.sw + 1
            var out = [Float](repeating: 0, count: s.c * oh * ow)
            for c in 0..<s.c { for oy in 0..<oh { for ox in 0..<ow {
                var m = -Float.infinity
                for dy in 0..<p.kh { for dx in 0..<p.kw {
                    m = Swift.max(m, x[(c * s.h + oy * p.sh + dy) * s.w + ox * p.sw + dx])
                } }
                out[(c * oh + oy) * ow + ox] = m
            } } }
            return out
        case .flatten:
            return x
        case .crossbar(let p):
            return crossbar(x, shape: s, p)
        case .rnn(let p):
            return rnn(x, shape: s, p).output
        case .add(let p):
            // both branches scaled, summed, then the quantizer's rounding and clamp
            return affine(x, shape: s, p.first, second: (inputs[1], p.secondMultiplier))
        case .concat(let p):
            var out: [Float] = [], c0 = 0
            for (j, t) in node.inputs.enumerated() {
                let ts = program.tensors[t].shape
                out += affine(inputs[j], shape: ts, p.quant.channels(c0..<(c0 + ts.c)))
                c0 += ts.c
            }
            return out
        case .upsampleBilinear(let p):
            return upsample(x, shape: s, p, exact: program.tensors[node.output].kind == .sum)
        case .globalAvgPool:
            // the real mean (no rounding), or the sum for an exact (sum) output
            let hw = s.h * s.w, exact = program.globalPoolIsExact(node)
            return (0..<s.c).map { c in x[(c * hw)..<((c + 1) * hw)].reduce(0, +) / (exact ? 1 : Float(hw)) }
        }
    }

    /// Logits (the output tensor) of the float pipeline.
    public static func logits(_ program: Program, pixels: [UInt8]) -> [Float] {
        run(program, pixels: pixels)[program.output]
    }

    /// Argmax with the same tie rule as the integer program (lowest index wins).
    public static func argmax(_ v: [Float]) -> Int {
        guard !v.isEmpty else { return -1 }
        var best = 0
        for i in 1..<v.count where v[i] > v[best] { best = i }
        return best
    }

    /// Rounds a real value to an integer with `rule` (the real-valued meaning of the rule).
    public static func round(_ v: Float, _ rule: RoundingRule) -> Float {
        switch rule {
        case .floor: return v.rounded(.down)
        case .towardZero: return v.rounded(.towardZero)
        case .halfUp:
            let f = v.rounded(.down)
            return v - f >= 0.5 ? f + 1 : f
        case .halfAwayFromZero: return v.rounded(.toNearestOrAwayFromZero)
        case .halfToEven: return v.rounded(.toNearestOrEven)
        }
    }

    static func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1.0) }

    /// The affine quantizer in real numbers: `x M_c / 2^S_c + B_c / 2^S_c` rounded by the rule and
    /// clamped; `second` (a residual addition) adds `b M2_c / 2^S_c` before rounding.
    static func affine(_ x: [Float], shape s: TensorShape, _ p: AffineQuantParams,
                       second: (b: [Float], m: [Int32])? = nil) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        let hi = Float((1 << p.outBits) - 1)
        for c in 0..<s.c {
            let scale = Float(Double(p.multiplier[c]) / pow2(Int(p.shift[c])))
            let bias = Float(Double(p.offset[c]) / pow2(Int(p.shift[c])))
            let scale2 = second.map { Float(Double($0.m[c]) / pow2(Int(p.shift[c]))) } ?? 0
            for i in (c * s.h * s.w)..<((c + 1) * s.h * s.w) {
                let v = round(x[i] * scale + (second?.b[i] ?? 0) * scale2 + bias, p.rounding)
                out[i] = Swift.min(Swift.max(v, 0), hi)
            }
        }
        return out
    }

    /// The float rnn (DATAPATH.md section 15): ideal crossbars (real dot products times the real
    /// ADC gains, no rounding or saturation), the real combiner `z = (s_x Mx + s_h Mh) / 2^S` in
    /// hidden-code units, the hidden quantizer kept (rounding rule and clamp) for `t < T-1`, the
    /// last step unquantized `max(z, 0)`, then the output quantizer on `A = (sum q + max(z, 0)) 2^S`.
    /// `subpoints`: the per-step values in the units of the integer trace's sub-points (tile ADC
    /// codes; hidden codes; the last step's `z` in units of `2^-S` hidden codes).
    public static func rnn(_ x: [Float], shape s: TensorShape, _ p: RNNParams) -> (output: [Float], subpoints: [[Float]]) {
        let hd = p.hiddenSize, nI = p.inputSize, T = s.w
        let sS = pow2(Int(p.stateShift))
        let mx = Float(Double(p.inputMultiplier) / sS), mh = Float(Double(p.recurrentMultiplier) / sS)
        let hMax = Float((1 << p.hiddenBits) - 1)
        var q = [Float](repeating: 0, count: hd)
        var sum = [Float](repeating: 0, count: hd)
        var sub: [[Float]] = []
        for t in 0..<T {
            var v = [Float](repeating: 0, count: nI)
            for c in 0..<nI { v[c] = x[c * T + t] }
            let tx = tileFloats(v, shape: TensorShape(c: nI, h: 1, w: 1), p.input)
            let th = tileFloats(q, shape: TensorShape(c: hd, h: 1, w: 1), p.recurrent)
            var hidden = [Float](repeating: 0, count: hd)
            for o in 0..<hd {
                var sx: Float = 0, sh: Float = 0
                for a in tx { sx += a[o] }
                for a in th { sh += a[o] }
                let z = sx * mx + sh * mh
                if t < T - 1 {
                    let c = Swift.min(Swift.max(round(z, p.hiddenRounding), 0), hMax)
                    hidden[o] = c
                    sum[o] += c
                } else {
                    hidden[o] = Float(Double(z) * sS)
                    sum[o] += Swift.max(z, 0)
                }
            }
            sub += tx + th + [hidden]
            if t < T - 1 { q = hidden }
        }
        var out = [Float](repeating: 0, count: hd)
        let hi = Float((1 << p.output.outBits) - 1)
        for o in 0..<hd {
            let sc = Float(Double(p.output.multiplier[o]) * sS / pow2(Int(p.output.shift[o])))
            let b = Float(Double(p.output.offset[o]) / pow2(Int(p.output.shift[o])))
            out[o] = Swift.min(Swift.max(round(sum[o] * sc + b, p.output.rounding), 0), hi)
        }
        return (out, sub)
    }

    /// Each row tile's ideal-analog ADC output (real dot product times the tile's real gain, no
    /// rounding, no saturation), in ADC-code units, `[tile][(o*OH + oy)*OW + ox]`.
    public static func tileFloats(_ x: [Float], shape s: TensorShape, _ p: CrossbarParams) -> [[Float]] {
        let os = p.outputShape(for: s)
        let fanIn = p.fanIn
        var out = [[Float]](repeating: [Float](repeating: 0, count: os.count), count: p.tiles.count)
        for (t, tile) in p.tiles.enumerated() {
            let gain = Float(tile.realGain)
            for o in 0..<p.outChannels { for oy in 0..<os.h { for ox in 0..<os.w {
                var acc: Float = 0
                for r in tile.rowStart..<(tile.rowStart + tile.rowCount) {
                    let c = r / (p.kernelH * p.kernelW), y = (r / p.kernelW) % p.kernelH, xx = r % p.kernelW
                    let iy = oy * p.strideH - p.padH + y, ix = ox * p.strideW - p.padW + xx
                    if iy >= 0 && iy < s.h && ix >= 0 && ix < s.w {
                        acc += x[(c * s.h + iy) * s.w + ix] * Float(p.weights[o * fanIn + r])
                    }
                }
                out[t][(o * os.h + oy) * os.w + ox] = acc * gain
            } } }
        }
        return out
    }

    /// Bilinear upsampling with aligned corners in real numbers: the value (`exact`: times
    /// `Dy * Dx`, the units of the integer numerators), not rounded.
    static func upsample(_ x: [Float], shape s: TensorShape, _ p: UpsampleParams, exact: Bool) -> [Float] {
        let os = p.outputShape(for: s)
        let den = Float(UpsampleParams.axisDenominator(output: os.h) * UpsampleParams.axisDenominator(output: os.w))
        var out = [Float](repeating: 0, count: os.count)
        for c in 0..<os.c { for oy in 0..<os.h { for ox in 0..<os.w {
            let (iy, fy, dy) = Reference.upsampleAxis(oy, input: s.h, output: os.h)
            let (ix, fx, dx) = Reference.upsampleAxis(ox, input: s.w, output: os.w)
            func v(_ y: Int, _ xx: Int) -> Float { x[(c * s.h + y) * s.w + xx] }
            var num = Float((dy - fy) * (dx - fx)) * v(iy, ix)
            if fx > 0 { num += Float((dy - fy) * fx) * v(iy, ix + 1) }
            if fy > 0 { num += Float(fy * (dx - fx)) * v(iy + 1, ix) }
            if fy > 0 && fx > 0 { num += Float(fy * fx) * v(iy + 1, ix + 1) }
            out[(c * os.h + oy) * os.w + ox] = exact ? num : num / den
        } } }
        return out
    }

    /// The crossbar's float value: the tiles' ideal ADC outputs summed in tile order.
    static func crossbar(_ x: [Float], shape s: TensorShape, _ p: CrossbarParams) -> [Float] {
        let tiles = tileFloats(x, shape: s, p)
        var out = [Float](repeating: 0, count: p.outputShape(for: s).count)
        for t in tiles { for i in out.indices { out[i] += t[i] } }
        return out
    }
}
