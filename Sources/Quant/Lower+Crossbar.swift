// conv2d and linear nodes: one crossbar each (docs/DATAPATH.md sections 4-6 and 14). Weight
// codes are final here; the ADC gain is a placeholder until calibration.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerCrossbar(_ gi: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        let spec = src.graph[gi], o = options
        guard let j = byIndex[gi] else { throw fail(gi, "no weights recorded for this layer") }
        let wl = src.weightLayers[j]
        guard case .codes(let t, let unit) = x else {
            throw fail(gi, "the input of a crossbar must be quantized codes (a fake-quant node before it); got \(x.name)")
        }
        let shape = tensors[t].shape
        var cp: CrossbarParams
        if spec.op == "conv2d" {
            guard let cin = spec.inChannels, let cout = spec.outChannels, let kh = spec.kernelH, let kw = spec.kernelW else { throw fail(gi, "incomplete conv spec") }
            let sh = spec.strideH ?? spec.stride ?? 1, sw = spec.strideW ?? spec.stride ?? 1, pd = spec.padding ?? 0
            guard cin == shape.c else { throw fail(gi, "expects \(cin) input channels, the map is \(shape)") }
            guard sh >= 1, sw >= 1, pd >= 0, pd < kh, pd < kw, shape.h + 2 * pd >= kh, shape.w + 2 * pd >= kw else {
                throw fail(gi, "kernel \(kh)x\(kw), stride (\(sh),\(sw)), padding \(pd) do not fit \(shape)")
            }
            cp = CrossbarParams(inChannels: cin, outChannels: cout, kernelH: kh, kernelW: kw, strideH: sh, strideW: sw,
                                padH: pd, padW: pd, weightBits: o.weightBits, weights: [], tiles: [])
        } else {
            guard let fi = spec.inFeatures, let fo = spec.outFeatures else { throw fail(gi, "incomplete linear spec") }
            guard shape.h == 1, shape.w == 1, shape.c == fi else { throw fail(gi, "expects \(fi) features, the map is \(shape) (flatten first)") }
            cp = CrossbarParams(inChannels: fi, outChannels: fo, kernelH: 1, kernelW: 1, weightBits: o.weightBits, weights: [], tiles: [])
        }
        guard wl.fanIn == cp.fanIn, wl.fanOut == cp.outChannels, wl.wOn.count == wl.fanIn * wl.fanOut,
              wl.wOff.count == wl.wOn.count, wl.mask.count == wl.wOn.count else {
            throw fail(gi, "weights are \(wl.fanOut)x\(wl.fanIn) (\(wl.wOn.count) values), the layer needs \(cp.outChannels)x\(cp.fanIn)")
        }
        let (matrix, layer) = try frozenMatrix(wl, inChannels: cp.fanIn, prototype: cp)
        crossbars.append((node: nodes.count, frozen: layers.count, inputUnit: unit))
        layers.append(layer)
        let out = emit(.crossbar(matrix), .sum(matrix.outputShape(for: shape)), inputs: [t])
        return .sums(AffineOperand(tensor: out, scale: .layer(layers.count - 1), bn: nil))
    }

    /// A weight layer's final codes and placeholder tiles (gain 1: multiplier 2^30, shift 1;
    /// calibration sets it) on `prototype`'s geometry, and its FrozenLayer record.
    func frozenMatrix(_ wl: SourceWeightLayer, inChannels: Int, prototype: CrossbarParams) throws(FreezeError) -> (CrossbarParams, FrozenLayer) {
        let o = options
        let q = try Freezer.quantizeWeights(wl, bits: o.weightBits, percentile: o.weightPercentile)
        var cp = prototype
        cp.weights = q.codes
        cp.weightLSBMicroSiemens = wl.scale > 0 ? q.lsb / wl.scale : 0
        cp.tiles = CrossbarParams.uniformTiles(fanIn: cp.fanIn, arrayRows: target.arrayRows, multiplier: 1 << 30, shift: 1,
                                               rounding: o.adcRounding, bits: adcBits)
        let fl = FrozenLayer(name: wl.name, node: nodes.count, activationNode: nil, fanIn: cp.fanIn, fanOut: cp.outChannels,
                             tiles: cp.tiles.count, weightLSB: q.lsb, weightLSBMicroSiemens: cp.weightLSBMicroSiemens,
                             weightsClipped: q.clipped, pruned: wl.mask.reduce(0) { $0 + ($1 == 0 ? 1 : 0) },
                             accLevel: 0, accMax: 0, adcGain: 1, adcMultiplier: 1 << 30, adcShift: 1, adcBits: adcBits,
                             calibrationReadings: 0, calibrationClipped: 0, sumUnit: 0)
        return (cp, fl)
    }
}
