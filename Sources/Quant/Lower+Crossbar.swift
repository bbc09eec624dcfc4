// conv2d and linear nodes: one crossbar each (docs/DATAPATH.md sections 4-6 and 14). Weight
// codes are final here; the ADC gain is a placeholder until calibration.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerCrossbar(_ gi: Int, _ op: OpSpec, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        let o = options
        guard let j = byIndex[gi] else { throw fail(gi, "no weights recorded for this layer") }
        let wl = src.weightLayers[j]
        guard case .codes(let t, let unit) = x else {
            throw fail(gi, "the input of a crossbar must be quantized codes (a fake-quant node before it); got \(x.name)")
        }
        let shape = tensors[t].shape
        var cp: CrossbarParams
        switch op {
        case let .conv2d(_, cin, cout, kh, kw, sh, sw, pd):
            guard cin == shape.c else { throw fail(gi, "expects \(cin) input channels, the map is \(shape)") }
            guard sh >= 1, sw >= 1, pd >= 0, pd < kh, pd < kw, shape.h + 2 * pd >= kh, shape.w + 2 * pd >= kw else {
                throw fail(gi, "kernel \(kh)x\(kw), stride (\(sh),\(sw)), padding \(pd) do not fit \(shape)")
            }
            cp = CrossbarParams(inChannels: cin, outChannels: cout, kernelH: kh, kernelW: kw, strideH: sh, strideW: sw,
                                padH: pd, padW: pd, weightBits: o.weightBits, weights: [], tiles: [])
        case let .linear(_, fi, fo):
            guard shape.h == 1, shape.w == 1, shape.c == fi else { throw fail(gi, "expects \(fi) features, the map is \(shape) (flatten first)") }
            cp = CrossbarParams(inChannels: fi, outChannels: fo, kernelH: 1, kernelW: 1, weightBits: o.weightBits, weights: [], tiles: [])
        default:
            throw fail(gi, "not a weight layer")
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

extension Freezer {
    /// Weight codes of one layer: LSB = percentile(|w_on|) / (2^(b-1) - 1); code = round(w_eff / LSB)
    /// (half away from zero), clamped to `±(2^(b-1) - 1)`; pruned pairs use their w_off.
    public static func quantizeWeights(_ wl: SourceWeightLayer, bits: Int, percentile: Double) throws(FreezeError) -> (codes: [Int8], lsb: Double, clipped: Int) {
        let top = Double((1 << (bits - 1)) - 1)
        for (i, v) in wl.wOn.enumerated() where !v.isFinite { throw FreezeError("layer \(wl.name): w_on[\(i)] = \(v) is not finite") }
        for (i, v) in wl.wOff.enumerated() where !v.isFinite { throw FreezeError("layer \(wl.name): w_off[\(i)] = \(v) is not finite") }
        let level = percentileOf(wl.wOn.map { Double(abs($0)) }, percentile) ?? 0
        let lsb = level > 0 ? level / top : 1
        var codes = [Int8](repeating: 0, count: wl.wOn.count)
        var clipped = 0
        for i in codes.indices {
            let v = (Double(wl.effective(i)) / lsb).rounded(.toNearestOrAwayFromZero)
            if abs(v) > top { clipped += 1 }
            codes[i] = Int8(min(max(v, -top), top))
        }
        return (codes, lsb, clipped)
    }

    /// The `p`-th percentile (0 < p <= 100) of `values`: the element of rank ceil(p/100 n) (the
    /// maximum at 100); nil if empty.
    static func percentileOf<T: Comparable>(_ values: [T], _ p: Double) -> T? {
        if p >= 100 { return values.max() }
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[max(0, min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
    }

    /// ADC level of a set of exact accumulators: the `percentile` of |acc| (max if 0), and the max.
    static func accLevel(_ accs: [Int32], percentile: Double) -> (level: Int64, max: Int64) {
        let mags = accs.map { Int64($0.magnitude) }
        let mx = mags.max() ?? 0
        let l = percentileOf(mags, percentile) ?? 0
        return (l == 0 ? mx : l, mx)
    }

    /// One layer's ADC from its exact calibration accumulators (every tile, pixel and image):
    /// level `A` = the `adcPercentile` of |acc|, gain by `adcGainRule`, the same (multiplier,
    /// shift) on every tile of `cp`, and the calibration clipping count of the exact integer ADC.
    static func calibrateADC(_ accs: [Int32], layer: inout FrozenLayer, _ cp: inout CrossbarParams,
                             options o: FreezeOptions, adcBits: Int) throws(FreezeError) -> QuantizedMultiplier {
        let (level, mx) = accLevel(accs, percentile: o.adcPercentile)
        let gain = o.adcGainRule.gain(level: level, adcBits: adcBits)
        let qm: QuantizedMultiplier
        do { qm = try QuantizedMultiplier(real: gain) } catch { throw FreezeError("layer \(layer.name): ADC gain \(gain): \(error)") }
        for t in cp.tiles.indices { cp.tiles[t].multiplier = qm.multiplier; cp.tiles[t].shift = qm.shift }
        // the tiles' own ADC (one gain, one rule, one resolution on every tile of the layer)
        var clipped = 0
        if let tile = cp.tiles.first {
            for a in accs where Reference.adcConversion(a, tile).saturated { clipped += 1 }
        }
        layer.accLevel = level; layer.accMax = mx
        layer.adcGain = qm.realValue; layer.adcMultiplier = qm.multiplier; layer.adcShift = qm.shift
        layer.calibrationReadings = accs.count; layer.calibrationClipped = clipped
        return qm
    }

    /// Exact tile accumulators `acc_t[o]` (DATAPATH.md section 5) of every output pixel of every
    /// image, order [image][tile][pixel][out]. `codes`: the crossbar's input, (C,H,W) per image.
    static func tileAccumulators(codes: [Int32], count: Int, shape s: TensorShape, _ p: CrossbarParams, threads: Int) -> [Int32] {
        let os = p.outputShape(for: s)
        let fanIn = p.fanIn, px = os.h * os.w, per = p.tiles.count * px * p.outChannels
        var out = [Int32](repeating: 0, count: count * per)
        let rc = (0..<fanIn).map { r in (c: r / (p.kernelH * p.kernelW), y: (r / p.kernelW) % p.kernelH, x: r % p.kernelW) }
        let n = max(1, min(threads, count))
        codes.withUnsafeBufferPointer { cb in
            p.weights.withUnsafeBufferPointer { wb in
                out.withUnsafeMutableBufferPointer { ob in
                    let cbp = UncheckedPointer(cb.baseAddress!), wbp = UncheckedPointer(wb.baseAddress!), obp = UncheckedMutablePointer(ob.baseAddress!)
                    KernelsParallel.forEach(n) { part in
                        var patch = [Int32](repeating: 0, count: fanIn)
                        for img in (count * part / n)..<(count * (part + 1) / n) {
                            let a = cbp.p + img * s.count
                            for oy in 0..<os.h { for ox in 0..<os.w {
                                for r in 0..<fanIn {
                                    let iy = oy * p.strideH - p.padH + rc[r].y, ix = ox * p.strideW - p.padW + rc[r].x
                                    patch[r] = (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) ? a[(rc[r].c * s.h + iy) * s.w + ix] : 0
                                }
                                patch.withUnsafeBufferPointer { pb in
                                    for (t, tile) in p.tiles.enumerated() {
                                        let dst = obp.p + img * per + (t * px + oy * os.w + ox) * p.outChannels
                                        for o in 0..<p.outChannels {
                                            let w = wbp.p + o * fanIn
                                            var acc: Int32 = 0
                                            for r in tile.rowStart..<(tile.rowStart + tile.rowCount) { acc &+= pb[r] &* Int32(w[r]) }
                                            dst[o] = acc
                                        }
                                    }
                                }
                            } }
                        }
                    }
                }
            }
        }
        return out
    }
}
