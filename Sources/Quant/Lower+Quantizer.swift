// The fake-quant node: it ends the input quantizer (pixels -> DAC codes), an activation (sums
// -> codes), a residual addition, a concatenation or an rnn (docs/DATAPATH.md sections 3, 7,
// 15, 16, 17).
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerQuantizer(_ gi: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        let o = options
        guard let q = src.quantizers[gi] else { throw fail(gi, "no static range recorded") }
        guard (1...Program.maxCodeBits).contains(q.bits) else { throw fail(gi, "\(q.bits)-bit codes: the datapath carries 1...8-bit codes") }
        guard q.range.isFinite else { throw fail(gi, "static range \(q.range) is not finite") }
        guard q.bits <= target.dacBits else { throw fail(gi, "\(q.bits)-bit codes exceed the target's \(target.dacBits)-bit DAC") }
        let L = Double((1 << q.bits) - 1), r = Double(q.range)
        let placeholder = { (c: Int) in
            AffineQuantParams(channels: c, multiplier: 0, shift: 0, offset: 0, outBits: q.bits, rounding: o.activationRounding)
        }
        let out: Int
        switch x {
        case .pixels(let t):
            let shape = tensors[t].shape
            var m: Int32 = 0, s: Int32 = 0, b: Int64 = 0
            if src.featureInput {
                // DATAPATH.md 15.1: the input holds the features' DAC codes; identity clamp
                guard src.inputScale == 1, src.inputOffset == 0, r == 1 else {
                    throw fail(gi, "feature input needs x = the feature (scale 1, offset 0) and the fixed range 1, got scale \(src.inputScale), offset \(src.inputOffset), range \(r)")
                }
                m = 1
            } else if r > 0 { (m, s, b) = try AffineFold.derive(scale: src.inputScale * L / r, offset: src.inputOffset * L / r, maxInput: 255) }
            out = emit(.inputQuant(AffineQuantParams(channels: shape.c, multiplier: m, shift: s, offset: b, outBits: q.bits,
                                                     rounding: o.activationRounding)), .code(shape, bits: q.bits), inputs: [t])
            inputBits = q.bits
        case .sums(let a):
            let shape = tensors[a.tensor].shape
            affines.append(PendingAffine(node: nodes.count, operands: [a], bits: q.bits, range: r))
            out = emit(.activation(placeholder(shape.c)), .code(shape, bits: q.bits), inputs: [a.tensor])
        case .pendingAdd(let ops):
            let shape = tensors[ops[0].tensor].shape
            affines.append(PendingAffine(node: nodes.count, operands: ops, bits: q.bits, range: r))
            out = emit(.add(AddParams(first: placeholder(shape.c), secondMultiplier: Array(repeating: 0, count: shape.c))),
                       .code(shape, bits: q.bits), inputs: ops.map(\.tensor))
        case .pendingConcat(let ops):
            let s0 = tensors[ops[0].tensor].shape
            let shape = TensorShape(c: ops.reduce(0) { $0 + tensors[$1.tensor].shape.c }, h: s0.h, w: s0.w)
            affines.append(PendingAffine(node: nodes.count, operands: ops, bits: q.bits, range: r))
            out = emit(.concat(ConcatParams(quant: placeholder(shape.c))), .code(shape, bits: q.bits), inputs: ops.map(\.tensor))
        case .codes:
            throw fail(gi, "a fake-quant directly on quantized codes is not supported")
        case .rnnPending(var pr, var rp, let input):
            // the rnn's output quantizer (DATAPATH.md section 15); scales set by calibration
            rp.output = placeholder(rp.hiddenSize)
            pr.outBits = q.bits; pr.outRange = r; pr.node = nodes.count
            layers[pr.inputLayer].node = nodes.count; layers[pr.recurrentLayer].node = nodes.count
            rnns.append(pr)
            out = emit(.rnn(rp), .code(TensorShape(c: rp.hiddenSize, h: 1, w: 1), bits: q.bits), inputs: [input])
        }
        return .codes(tensor: out, unit: r > 0 ? r / L : 0)
    }
}

extension Freezer {
    /// The integers of a pending activation, addition or concatenation once every operand's unit
    /// is known: per output channel, over the operands that feed it (all of them, or for a
    /// concatenation the one whose channel it is), scale_k = unit_k istd_k L / range and
    /// offset = -sum_k mean_k istd_k L / range folded into one (multipliers, shift, offset) by
    /// `AffineFold.derive` over the inputs' worst-case magnitudes (DATAPATH.md sections 7, 14, 16, 17).
    static func finalizeAffine(_ a: PendingAffine, _ program: inout Program, layers: [FrozenLayer], source: FreezeSource,
                               rounding: RoundingRule) throws(FreezeError) {
        let L = Double((1 << a.bits) - 1)
        let ranges = try program.valueRanges(orFail: layers)
        let node = program.nodes[a.node]
        let maxIn = node.inputs.map { ranges[$0].magnitude }
        let units = a.operands.map { o -> Double in
            switch o.scale {
            case .layer(let k): return layers[k].sumUnit
            case .fixed(let u): return u
            }
        }
        let bns = a.operands.map { o in o.bn.flatMap { source.batchNorms[$0] } }
        let channels = program.tensors[node.output].shape.c
        var p = AffineQuantParams(channels: channels, multiplier: 0, shift: 0, offset: 0, outBits: a.bits, rounding: rounding)
        var second = [Int32](repeating: 0, count: channels)
        // (operand, its channel) feeding each output channel
        var feeds: [[(k: Int, ch: Int)]] = []
        if case .concat = node.op {
            for (k, t) in node.inputs.enumerated() { for ch in 0..<program.tensors[t].shape.c { feeds.append([(k, ch)]) } }
        } else {
            feeds = (0..<channels).map { c in a.operands.indices.map { ($0, c) } }
        }
        for c in 0..<channels {
            guard a.range > 0, feeds[c].allSatisfy({ units[$0.k] > 0 }) else { continue }
            var scales: [Double] = [], offset = 0.0
            for (k, ch) in feeds[c] {
                var istd = 1.0, mean = 0.0
                if let bn = bns[k] { istd = 1 / (Double(bn.variance[ch]) + bn.eps).squareRoot(); mean = Double(bn.mean[ch]) }
                let f = istd * L / a.range
                scales.append(units[k] * f)
                offset += -mean * f
            }
            let (m, s, b) = try AffineFold.derive(scales: scales, offset: offset, maxInputs: feeds[c].map { maxIn[$0.k] })
            p.multiplier[c] = m[0]; p.shift[c] = s; p.offset[c] = b
            if m.count > 1 { second[c] = m[1] }
        }
        switch node.op {
        case .add: program.nodes[a.node].op = .add(AddParams(first: p, secondMultiplier: second))
        case .concat: program.nodes[a.node].op = .concat(ConcatParams(quant: p))
        default: program.nodes[a.node].op = .activation(p)
        }
    }
}
