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
        // tensors share the arena by lifetime: from the node that writes one (the input: before
        // node 0) to the last node that reads it (the output: to the end), both included
        var life = [(first: Int, last: Int)](repeating: (Int.max, -1), count: program.tensors.count)
        life[program.input] = (-1, -1)
        for (k, n) in program.nodes.enumerated() {
            life[n.output].first = Swift.min(life[n.output].first, k); life[n.output].last = Swift.max(life[n.output].last, k)
            for i in n.inputs { life[i].last = Swift.max(life[i].last, k) }
        }
        life[program.output].last = program.nodes.count
        let used = program.tensors.indices.filter { life[$0].first != Int.max }
        let packed = LifetimePacking.firstFit(sizes: used.map { program.tensors[$0].shape.count }, lifetimes: used.map { life[$0] })
        var offs = [Int](repeating: 0, count: program.tensors.count)
        for (i, o) in zip(used, packed.offsets) { offs[i] = o }
        offsets = offs; total = packed.count
        var maxPlane = 0
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
                maxPlane = Swift.max(maxPlane, program.tensors[o].shape.h * program.tensors[o].shape.w)
                steps.append(.crossbar(src: offs[i], dst: offs[o], shape: s, p: p, weights: p.weights.map { Float($0) },
                                       gains: p.tiles.map { Float($0.realGain) }, rc: rc))
            case .rnn(let p):
                steps.append(.rnn(src: offs[i], dst: offs[o], shape: s, p: p))
            case .add, .concat, .upsampleBilinear, .globalAvgPool:
                steps.append(.node(n, dst: offs[o]))
            }
        }
        self.steps = steps
        self.plane = maxPlane
    }
    /// The largest output plane (h * w) of a crossbar: its tile accumulators sit after the tensors.
    let plane: Int

    /// Logits (Float32, (C,H,W) order) of one image; `arena` is scratch of `arenaCount` floats.
    public var arenaCount: Int { total + plane }

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
                // Per output pixel: each tile's sum over its rows in row order, then the tiles'
                // sum of sum * gain in tile order (FloatPipeline's order, so the same bits); the
                // loops run row by row over whole output planes so that the pixels vectorize.
                let os = p.outputShape(for: s), fanIn = p.fanIn, n = os.h * os.w
                let acc = a + total
                weights.withUnsafeBufferPointer { w in
                    for o in 0..<p.outChannels {
                        let out = a + dst + o * n
                        out.update(repeating: 0, count: n)
                        for (t, tile) in p.tiles.enumerated() {
                            acc.update(repeating: 0, count: n)
                            for r in tile.rowStart..<(tile.rowStart + tile.rowCount) {
                                let wv = w[o * fanIn + r], (c, ky, kx) = rc[r]
                                // output columns whose input column ox * sw - pw + kx lies in 0..<s.w
                                let off = kx - p.padW
                                let lo = off >= 0 ? 0 : (-off + p.strideW - 1) / p.strideW
                                let hi = s.w - off <= 0 ? 0 : Swift.min(os.w, (s.w - off + p.strideW - 1) / p.strideW)
                                guard lo < hi else { continue }
                                for oy in 0..<os.h {
                                    let iy = oy * p.strideH - p.padH + ky
                                    guard iy >= 0 && iy < s.h else { continue }
                                    let row = a + src + (c * s.h + iy) * s.w + off, accRow = acc + oy * os.w
                                    if p.strideW == 1 {
                                        for ox in lo..<hi { accRow[ox] += row[ox] * wv }
                                    } else {
                                        for ox in lo..<hi { accRow[ox] += row[ox * p.strideW] * wv }
                                    }
                                }
                            }
                            let g = gains[t]
                            for k in 0..<n { out[k] += acc[k] * g }
                        }
                    }
                }
            }
        }
        return UnsafeBufferPointer(start: a + offsets[program.output], count: program.tensors[program.output].shape.count)
    }
}
