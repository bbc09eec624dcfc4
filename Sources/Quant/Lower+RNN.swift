// The rnn node (docs/DATAPATH.md section 15): two crossbars (W_ih, W_hh) whose combiner and
// output quantizer are set by `Freezer.calibrateRNN`; the fake-quant after it completes it.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerRNN(_ gi: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        let spec = src.graph[gi], o = options
        guard case .codes(let t, let unit) = x else {
            throw fail(gi, "the input of an rnn must be quantized codes (a fake-quant node before it)")
        }
        let shape = tensors[t].shape
        guard shape.h == 1 else { throw fail(gi, "the input map \(shape) must be (C, 1, T): T steps of C features") }
        let js = src.weightLayers.indices.filter { src.weightLayers[$0].graphIndex == gi }
        guard js.count == 2 else { throw fail(gi, "needs two weight matrices (W_ih, W_hh), \(js.count) recorded") }
        // W_ih [hidden, C] then W_hh [hidden, hidden] (the run's order; names end .ih / .hh)
        var (ji, jh) = (js[0], js[1])
        if src.weightLayers[ji].name.hasSuffix(".hh") || src.weightLayers[jh].name.hasSuffix(".ih") { swap(&ji, &jh) }
        let wi = src.weightLayers[ji], wh = src.weightLayers[jh]
        let hd = wh.fanOut
        guard wi.fanIn == shape.c, wi.fanOut == hd, wh.fanIn == hd, spec.hidden.map({ $0 == hd }) ?? true,
              wi.wOn.count == wi.fanIn * wi.fanOut, wh.wOn.count == hd * hd, wi.wOff.count == wi.wOn.count,
              wh.wOff.count == wh.wOn.count, wi.mask.count == wi.wOn.count, wh.mask.count == wh.wOn.count else {
            throw fail(gi, "weights \(wi.name) \(wi.fanOut)x\(wi.fanIn) and \(wh.name) \(wh.fanOut)x\(wh.fanIn) do not fit \(shape.c) features and \(spec.hidden ?? hd) hidden units")
        }
        if let steps = spec.steps, steps != shape.w { throw fail(gi, "\(steps) steps recorded, the input map has \(shape.w)") }
        guard let hq = src.quantizers[gi] else { throw fail(gi, "no hidden-state range recorded") }
        guard (1...Program.maxCodeBits).contains(hq.bits) else { throw fail(gi, "\(hq.bits)-bit hidden codes: the datapath carries 1...8-bit codes") }
        guard hq.bits <= target.dacBits else { throw fail(gi, "\(hq.bits)-bit hidden codes exceed the target's \(target.dacBits)-bit DAC") }
        guard hq.range.isFinite, hq.range > 0 else {
            throw fail(gi, "hidden-state range \(hq.range): the recurrence never saw a positive value, there is no hidden-code scale")
        }
        func proto(_ cin: Int) -> CrossbarParams {
            CrossbarParams(inChannels: cin, outChannels: hd, kernelH: 1, kernelW: 1, weightBits: o.weightBits, weights: [], tiles: [])
        }
        let (ci, li) = try frozenMatrix(wi, inChannels: shape.c, prototype: proto(shape.c))
        let (ch, lh) = try frozenMatrix(wh, inChannels: hd, prototype: proto(hd))
        layers.append(li); layers.append(lh)
        let pr = Freezer.PendingRNN(node: nodes.count, inputLayer: layers.count - 2, recurrentLayer: layers.count - 1, inputUnit: unit,
                                    hiddenBits: hq.bits, hiddenRange: Double(hq.range), steps: shape.w)
        let rp = RNNParams(input: ci, recurrent: ch, inputMultiplier: 0, recurrentMultiplier: 0, stateShift: 0, hiddenBits: hq.bits,
                           hiddenRounding: o.activationRounding,
                           output: AffineQuantParams(channels: hd, multiplier: 0, shift: 0, offset: 0, outBits: 1, rounding: o.activationRounding))
        return .rnnPending(pr, rp, input: t)
    }
}
