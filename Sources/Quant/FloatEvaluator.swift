// The float pipeline of the frozen graph (Kernels.FloatPipeline, DATAPATH.md section 11) compiled
// once for repeated evaluation: the same Float32 operations in the same order (so the results are
// bit-identical to FloatPipeline; test `testFloatEvaluatorEqualsFloatPipelineBitForBit`), without
// the per-image allocations and per-MAC index decoding.
import FixedPoint
import Kernels

public final class FloatEvaluator: @unchecked Sendable {
    enum Step {
        case affine(src: Int, dst: Int, shape: TensorShape, scale: [Float], bias: [Float], hi: Float, rule: RoundingRule)
        case maxPool(src: Int, dst: Int, shape: TensorShape, p: MaxPoolParams)
        case copy(src: Int, dst: Int, count: Int)
        case crossbar(src: Int, dst: Int, shape: TensorShape, p: CrossbarParams, weights: [Float], gains: [Float], rc: [(c: Int, y: Int, x: Int)])
        case rnn(src: Int, dst: Int, shape: TensorShape, p: RNNParams)
        /// Any other node: FloatPipeline's own evaluation (the same arithmetic), inputs copied out.
        case node(Node, dst: Int)
    }
    public let program: Program
    let steps: [Step]
    let offsets: [Int]
    let total: Int

    public init(_ program: Program) {
        self.program = program
        var offs: [Int] = [], t = 0
        for d in program.tensors { offs.append(t); t += d.shape.count }
        offsets = offs; total = t
        var steps: [Step] = []
        for n in program.nodes {
            let i = n.inputs[0], o = n.output, s = program.tensors[i].shape
            switch n.op {
            case .inputQuant(let p), .activation(let p):
                var sc: [Float] = [], bi: [Float] = []
                for c in 0..<s.c {
                    let d = Double(sign: .plus, exponent: Int(p.shift[c]), significand: 1.0)
                    sc.append(Float(Double(p.multiplier[c]) / d)); bi.append(Float(Double(p.offset[c]) / d))
                }
                steps.append(.affine(src: offs[i], dst: offs[o], shape: s, scale: sc, bias: bi, hi: Float((1 << p.outBits) - 1), rule: p.rounding))
            case .maxPool(let p): steps.append(.maxPool(src: offs[i], dst: offs[o], shape: s, p: p))
            case .flatten: steps.append(.copy(src: offs[i], dst: offs[o], count: s.count))
            case .crossbar(let p):
                let rc = (0..<p.fanIn).map { r in (c: r / (p.kernelH * p.kernelW), y: (r / p.kernelW) % p.kernelH, x: r % p.kernelW) }
                steps.append(.crossbar(src: offs[i], dst: offs[o], shape: s, p: p, weights: p.weights.map { Float($0) },
                                       gains: p.tiles.map { Float($0.realGain) }, rc: rc))
            case .rnn(let p):
                steps.append(.rnn(src: offs[i], dst: offs[o], shape: s, p: p))
            case .add, .concat, .upsampleBilinear, .globalAvgPool:
                steps.append(.node(n, dst: offs[o]))
            }
        }
        self.steps = steps
    }

    /// Logits (Float32, (C,H,W) order) of one image; `arena` is scratch of `arenaCount` floats.
    public var arenaCount: Int { total }

    public func logits(pixels: UnsafePointer<UInt8>, arena a: UnsafeMutablePointer<Float>) -> UnsafeBufferPointer<Float> {
        let ins = program.tensors[program.input].shape.count
        for k in 0..<ins { a[offsets[program.input] + k] = Float(pixels[k]) }
        for st in steps {
            switch st {
            case let .affine(src, dst, s, scale, bias, hi, rule):
                let per = s.h * s.w
                for c in 0..<s.c {
                    let sc = scale[c], b = bias[c]
                    for k in (c * per)..<((c + 1) * per) {
                        let v = FloatPipeline.round(a[src + k] * sc + b, rule)
                        a[dst + k] = Swift.min(Swift.max(v, 0), hi)
                    }
                }
            case let .maxPool(src, dst, s, p):
                let oh = (s.h - p.kh) / p.sh + 1, ow = (s.w - p.kw) / p.sw + 1
                for c in 0..<s.c { for oy in 0..<oh { for ox in 0..<ow {
                    var m = -Float.infinity
                    for dy in 0..<p.kh { for dx in 0..<p.kw { m = Swift.max(m, a[src + (c * s.h + oy * p.sh + dy) * s.w + ox * p.sw + dx]) } }
                    a[dst + (c * oh + oy) * ow + ox] = m
                } } }
            case let .copy(src, dst, n):
                (a + dst).update(from: a + src, count: n)
            case let .node(n, dst):
                let ins = n.inputs.map { Array(UnsafeBufferPointer(start: a + offsets[$0], count: program.tensors[$0].shape.count)) }
                let out = FloatPipeline.evaluate(n, in: program, inputs: ins)
                for k in 0..<out.count { a[dst + k] = out[k] }
            case let .rnn(src, dst, s, p):
                // small (a few 10k MACs): the float pipeline's own rnn, exactly the same arithmetic
                let out = FloatPipeline.rnn(Array(UnsafeBufferPointer(start: a + src, count: s.count)), shape: s, p).output
                for k in 0..<out.count { a[dst + k] = out[k] }
            case let .crossbar(src, dst, s, p, weights, gains, rc):
                let os = p.outputShape(for: s), fanIn = p.fanIn
                weights.withUnsafeBufferPointer { w in
                    rc.withUnsafeBufferPointer { rc in
                        for o in 0..<p.outChannels { for oy in 0..<os.h { for ox in 0..<os.w {
                            var totalV: Float = 0
                            for (t, tile) in p.tiles.enumerated() {
                                var acc: Float = 0
                                for r in tile.rowStart..<(tile.rowStart + tile.rowCount) {
                                    let iy = oy * p.strideH - p.padH + rc[r].y, ix = ox * p.strideW - p.padW + rc[r].x
                                    if iy >= 0 && iy < s.h && ix >= 0 && ix < s.w {
                                        acc += a[src + (rc[r].c * s.h + iy) * s.w + ix] * w[o * fanIn + r]
                                    }
                                }
                                totalV += acc * gains[t]
                            }
                            a[dst + (o * os.h + oy) * os.w + ox] = totalV
                        } } }
                    }
                }
            }
        }
        return UnsafeBufferPointer(start: a + offsets[program.output], count: program.tensors[program.output].shape.count)
    }
}
