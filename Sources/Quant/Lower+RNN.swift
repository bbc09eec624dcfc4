// The rnn node (docs/DATAPATH.md section 15): two crossbars (W_ih, W_hh) whose combiner and
// output quantizer are set by `Freezer.calibrateRNN`; the fake-quant after it completes it.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerRNN(_ gi: Int, hidden: Int, steps: Int?, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        let o = options
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
        guard wi.fanIn == shape.c, wi.fanOut == hd, wh.fanIn == hd, hidden == hd,
              wi.wOn.count == wi.fanIn * wi.fanOut, wh.wOn.count == hd * hd, wi.wOff.count == wi.wOn.count,
              wh.wOff.count == wh.wOn.count, wi.mask.count == wi.wOn.count, wh.mask.count == wh.wOn.count else {
            throw fail(gi, "weights \(wi.name) \(wi.fanOut)x\(wi.fanIn) and \(wh.name) \(wh.fanOut)x\(wh.fanIn) do not fit \(shape.c) features and \(hidden) hidden units")
        }
        if let steps, steps != shape.w { throw fail(gi, "\(steps) steps recorded, the input map has \(shape.w)") }
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

extension Freezer {
    /// Calibrates an rnn node (DATAPATH.md section 15): the ADC gains of both matrices, the
    /// combiner (Mx, Mh, S) and the fused average + output quantizer.
    ///
    /// Input-matrix accumulators are exact (the program up to the rnn's input codes). The
    /// recurrent matrix reads hidden codes, which depend on its own gain; its calibration readings
    /// are therefore taken on the ideal-analog recurrence: `q_t = clamp(round_halfUp(a_t / e_h), 0, L_h)`
    /// with `a_t / e_h = acc_x u_in LSB_ih / e_h + acc_h LSB_hh` from the exact accumulators
    /// (steps t >= 1; step 0 reads the zero state).
    static func calibrateRNN(_ pr: PendingRNN, _ program: inout Program, _ sk: inout Skeleton, calibration: PixelSet,
                             options o: FreezeOptions, adcBits: Int) throws(FreezeError) {
        guard case .rnn(var rp) = program.nodes[pr.node].op else { return }
        let name = sk.layers[pr.inputLayer].name
        let inT = program.nodes[pr.node].inputs[0]
        let codes = try partialRun(program, upTo: pr.node, calibration: calibration, threads: o.threads, layer: name)
        let inShape = program.tensors[inT].shape, T = pr.steps, hd = rp.hiddenSize, nI = rp.inputSize
        // exact input-matrix accumulators, [image][tile][step][out] (a 1x1 crossbar over the (I,1,T) map)
        let accX = tileAccumulators(codes: codes, count: calibration.count, shape: inShape, rp.input, threads: o.threads)
        let lsbX = sk.layers[pr.inputLayer].weightLSB, lsbH = sk.layers[pr.recurrentLayer].weightLSB
        let Lh = Double((1 << pr.hiddenBits) - 1), eh = pr.hiddenRange / Lh
        let tilesX = rp.input.tiles.count, perX = tilesX * T * hd
        // ideal recurrence: recurrent-matrix tile accumulators for t >= 1
        var accH: [Int32] = []
        accH.reserveCapacity(calibration.count * max(0, T - 1) * rp.recurrent.tiles.count * hd)
        let fx = pr.inputUnit * lsbX / eh
        for img in 0..<calibration.count {
            var q = [Int32](repeating: 0, count: hd)
            for t in 0..<T {
                var h = [Int64](repeating: 0, count: hd)
                if t > 0 {
                    for tile in rp.recurrent.tiles {
                        for oo in 0..<hd {
                            var acc: Int32 = 0
                            for r in tile.rowStart..<(tile.rowStart + tile.rowCount) { acc += q[r] * Int32(rp.recurrent.weights[oo * hd + r]) }
                            accH.append(acc)
                            h[oo] += Int64(acc)
                        }
                    }
                }
                guard t < T - 1 else { break }
                for oo in 0..<hd {
                    var ax: Int64 = 0
                    for k in 0..<tilesX { ax += Int64(accX[img * perX + (k * T + t) * hd + oo]) }
                    let v = Double(ax) * fx + Double(h[oo]) * lsbH
                    q[oo] = Int32(min(max((v + 0.5).rounded(.down), 0), Lh))
                }
            }
        }
        _ = nI
        let gx = try calibrateADC(accX, layer: &sk.layers[pr.inputLayer], &rp.input, options: o, adcBits: adcBits)
        let gh = try calibrateADC(accH, layer: &sk.layers[pr.recurrentLayer], &rp.recurrent, options: o, adcBits: adcBits)
        let ux = gx.realValue > 0 ? pr.inputUnit * lsbX / gx.realValue : 0, uh = gh.realValue > 0 ? eh * lsbH / gh.realValue : 0
        sk.layers[pr.inputLayer].sumUnit = ux; sk.layers[pr.recurrentLayer].sumUnit = uh
        // combiner: the largest S with Mx, Mh in Int32, |z| <= 2^31 - 1 and A <= 2^62
        let sx = rp.input.tiles.reduce(Int64(0)) { $0 + (Int64(1) << Int64($1.bits - 1)) }
        let sh = rp.recurrent.tiles.reduce(Int64(0)) { $0 + (Int64(1) << Int64($1.bits - 1)) }
        let mxR = ux / eh, mhR = uh / eh
        var chosen: (Int32, Int32, Int32)? = nil
        for S in stride(from: 62, through: 0, by: -1) {
            let mx = (mxR * Double(sign: .plus, exponent: S, significand: 1)).rounded(), mh = (mhR * Double(sign: .plus, exponent: S, significand: 1)).rounded()
            guard mx <= Double(Int32.max), mh <= Double(Int32.max) else { continue }
            let zMax = Int64(mx) * sx + Int64(mh) * sh
            guard zMax <= Int64(Int32.max) else { continue }
            let (c1, f1) = (Int64(T - 1) * Int64(Lh)).multipliedReportingOverflow(by: Int64(1) << Int64(S))
            guard !f1, c1 <= Program.affineBound - zMax else { continue }
            chosen = (Int32(mx), Int32(mh), Int32(S))
            break
        }
        guard let (mx, mh, S) = chosen else { throw FreezeError("layer \(name): no combiner shift keeps the rnn accumulators in range") }
        rp.inputMultiplier = mx; rp.recurrentMultiplier = mh; rp.stateShift = S
        // output: M_o / 2^S_o = e_h / (T e_o 2^S), B_o = 0
        let zMax = Int64(mx) * sx + Int64(mh) * sh
        let aMax = Int64(T - 1) * Int64(Lh) * (Int64(1) << Int64(S)) + zMax
        let Lo = Double((1 << pr.outBits) - 1)
        if pr.outRange > 0 {
            let scale = eh / (Double(T) * (pr.outRange / Lo) * Double(sign: .plus, exponent: Int(S), significand: 1))
            let (m, s, b) = try AffineFold.derive(scale: scale, offset: 0, maxInput: aMax)
            rp.output.multiplier = Array(repeating: m, count: hd); rp.output.shift = Array(repeating: s, count: hd)
            rp.output.offset = Array(repeating: b, count: hd)
        }
        program.nodes[pr.node].op = .rnn(rp)
    }
}
