// Freeze: a trained float model (FreezeSource) + a target profile + calibration images -> an
// integer Program (docs/DATAPATH.md section 14 describes every derivation). Prepare only:
// float math happens here, once; evaluation is the Kernels engine's integer code.
import Device
import FixedPoint
import Kernels
import Training

/// Freeze settings. Defaults: 8-bit signed weight codes, LSB from max |w_on|, ADC full scale
/// from the max |accumulator| over 512 calibration images, half-up rounding everywhere.
public struct FreezeOptions: Sendable, Equatable {
    /// Weight code width (2...8): codes in `-(2^(b-1) - 1)...2^(b-1) - 1`.
    public var weightBits = 8
    /// The weight code width `edgecli freeze` and `pipeline` use when none is given: 2 (codes
    /// +-1) for a software-TO residual net, whose signed-constant weights they represent exactly
    /// and whose every ADC they keep exact (integer gains; agreement with the float pipeline
    /// 100.00 % against 98.91 % with 8 bits, docs/experiments/2026-12-07-residual-net-weight-codes.md);
    /// 8 otherwise (the CNN and CRNN golden models were frozen with 8).
    public static func defaultWeightBits(task: String, mode: String) -> Int {
        task == "fashion-mnist-resnet" && mode == "software" ? 2 : 8
    }
    /// Percentile (0 < p <= 100) of |w_on| per layer that maps to the largest code.
    public var weightPercentile = 100.0
    /// Percentile (0 < p <= 100) of |acc| over the calibration set (all tiles of a layer) that
    /// maps to the ADC's full scale `2^(n-1) - 1`.
    public var adcPercentile = 100.0
    /// How the full-scale level becomes the ADC gain (see `ADCGainRule`).
    public var adcGainRule = ADCGainRule.integer
    /// ADC resolution override (nil: the target's `adcBits`).
    public var adcBits: Int? = nil
    public var adcRounding: RoundingRule = .halfUp
    public var activationRounding: RoundingRule = .halfUp
    /// Threads for the calibration passes (results do not depend on it).
    public var threads = 1
    /// Store explicit int8 codes even where a weight generator reproduces them (format 1.0 file).
    public var explicitWeights = false

    public init() {}

    func validate() throws(FreezeError) {
        guard Program.weightBitsRange.contains(weightBits) else { throw FreezeError("weight bits \(weightBits) not in 2...8") }
        guard weightPercentile > 0, weightPercentile <= 100 else { throw FreezeError("weight percentile \(weightPercentile) not in (0, 100]") }
        guard adcPercentile > 0, adcPercentile <= 100 else { throw FreezeError("ADC percentile \(adcPercentile) not in (0, 100]") }
        if let b = adcBits, !Program.adcBitsRange.contains(b) { throw FreezeError("ADC bits \(b) not in 2...16") }
    }
}

/// How freeze turns a layer's calibrated |acc| level `A` into its ADC gain (DATAPATH.md
/// section 14). `g = (2^(n-1) - 1) / A` maps `A` to the ADC's full scale.
public enum ADCGainRule: String, Sendable, Equatable, CaseIterable {
    /// `floor(g)` when `g >= 1`, else `g`. Tile accumulators are integers, so an integer gain
    /// gives every accumulator value its own ADC code with no rounding (the ADC is exact, and the
    /// integer program equals the float pipeline up to the activation quantizers) while still
    /// covering `A`; only layers whose `A` exceeds the ADC's range (`g < 1`) round.
    case integer
    /// `g` itself: `A` exactly at full scale; every reading is rounded (the rule before the
    /// integer one; kept for comparison).
    case fullScale = "full-scale"

    /// The real gain for level `A` (`A <= 0`: 1) and an `n`-bit ADC.
    public func gain(level: Int64, adcBits n: Int) -> Double {
        guard level > 0 else { return 1 }
        let g = Double((Int64(1) << Int64(n - 1)) - 1) / Double(level)
        return self == .integer && g >= 1 ? g.rounded(.down) : g
    }
}

/// Images as 8-bit pixels, back to back in (C,H,W) order.
public struct PixelSet: Sendable, Equatable {
    public var count: Int
    public var shape: TensorShape
    public var pixels: [UInt8]
    public var labels: [UInt8]?
    public init(count: Int, shape: TensorShape, pixels: [UInt8], labels: [UInt8]? = nil) {
        precondition(pixels.count == count * shape.count, "pixel count")
        precondition(labels == nil || labels!.count == count, "label count")
        self.count = count; self.shape = shape; self.pixels = pixels; self.labels = labels
    }
    /// The first `n` images.
    public func prefix(_ n: Int) -> PixelSet {
        let k = min(n, count)
        return PixelSet(count: k, shape: shape, pixels: Array(pixels[0..<(k * shape.count)]), labels: labels.map { Array($0[0..<k]) })
    }
}

/// What freeze decided for one crossbar layer.
public struct FrozenLayer: Sendable, Equatable {
    public var name: String
    /// Node index of the crossbar in the program; of the activation that reads it (nil: logits).
    public var node: Int
    public var activationNode: Int?
    public var fanIn: Int, fanOut: Int, tiles: Int
    /// Weight LSB in weight units and in microsiemens; weights clipped to the code range.
    public var weightLSB: Double
    public var weightLSBMicroSiemens: Double
    public var weightsClipped: Int
    /// Pruned pairs (mask 0).
    public var pruned: Int
    /// Calibration: |acc| level mapped to full scale, the ADC gain (real, quantized), and the
    /// number of tile readings and how many saturate the ADC.
    public var accLevel: Int64
    public var accMax: Int64
    public var adcGain: Double
    public var adcMultiplier: Int32
    public var adcShift: Int32
    public var adcBits: Int
    public var calibrationReadings: Int
    public var calibrationClipped: Int
    public var clipRate: Double { calibrationReadings == 0 ? 0 : Double(calibrationClipped) / Double(calibrationReadings) }
    /// Real value (training units) of one digital-sum unit of this layer.
    public var sumUnit: Double
}

/// The result of freezing.
public struct FrozenModel: Sendable {
    public var program: Program
    public var layers: [FrozenLayer]
    public var inputBits: Int
    public var calibrationImages: Int
    public var placement: CrossbarPlacement
    /// Per crossbar layer: codes made by `Device.differentialCodes` from the statistical device
    /// (hardware TO, seed = the run's), so the model file can store a generator instead of them.
    public var deviceGenerated: [Bool] = []
    /// Why layers were not device-generated in hardware mode (empty otherwise).
    public var generatorNote: String? = nil
}

public enum Freezer {
    // MARK: structure

    /// An rnn node (DATAPATH.md section 15): its two FrozenLayer indices and the float scales.
    struct PendingRNN {
        var node: Int
        var inputLayer: Int, recurrentLayer: Int
        /// Real value of one input code (the step of the quantizer before the rnn).
        var inputUnit: Double
        var hiddenBits: Int, hiddenRange: Double
        var outBits = 0, outRange = 0.0
        var steps: Int
    }

    /// Builds the program skeleton (final weights and input quantizer; placeholder ADC gains and
    /// activations) and the bookkeeping to fill them in.
    struct Skeleton {
        var tensors: [TensorDesc]
        var nodes: [Node]
        /// `frozen`: index into `layers`.
        var crossbars: [(node: Int, frozen: Int, inputUnit: Double)]
        var rnns: [PendingRNN]
        /// Activations and additions, in node order.
        var affines: [PendingAffine]
        var layers: [FrozenLayer]
        var inputBits: Int
    }

    static func skeleton(_ src: FreezeSource, target: TargetProfile, options o: FreezeOptions, adcBits: Int) throws(FreezeError) -> Skeleton {
        guard src.inputShape.count == 3, src.inputShape.allSatisfy({ $0 >= 1 }) else {
            throw FreezeError("input shape \(src.inputShape) is not [C, H, W]")
        }
        guard src.inputScale.isFinite, src.inputOffset.isFinite, src.inputScale > 0 else {
            throw FreezeError("input normalisation x = raw * \(src.inputScale) + \(src.inputOffset) must have a finite positive scale (max-pool before the DAC must commute)")
        }
        var l = Lowering(src, target: target, options: o, adcBits: adcBits)
        for gi in src.graph.indices { try l.lower(gi) }
        return try l.finish()
    }

    /// Freezes `source` for `target`, calibrating ADC gains on `calibration` (8-bit images of the
    /// source's input shape). Throws a FreezeError naming the layer for any model the datapath cannot
    /// carry, including one whose worst case can overflow an accumulator (Program.validate()).
    public static func freeze(_ source: FreezeSource, target: TargetProfile, calibration: PixelSet,
                              options o: FreezeOptions = FreezeOptions()) throws(FreezeError) -> FrozenModel {
        try o.validate()
        let adcBits = o.adcBits ?? target.adcBits
        guard Program.adcBitsRange.contains(adcBits) else { throw FreezeError("target '\(target.name)': ADC bits \(adcBits) not in 2...16") }
        guard target.arrayRows >= 1, target.arrayCols >= 2 else { throw FreezeError("target '\(target.name)': arrays of \(target.arrayRows)x\(target.arrayCols)") }
        if source.mode == "hardware", let t = source.runTarget, t != target.name {
            throw FreezeError("the run's conductances were drawn for target '\(t)', not '\(target.name)' (freeze a hardware run for the target it was trained on)")
        }
        var sk = try skeleton(source, target: target, options: o, adcBits: adcBits)
        for a in sk.affines {
            if let want = target.activationBits[source.task], want != a.bits {
                throw FreezeError("graph node \(a.node): the run quantizes activations to \(a.bits) bits, target '\(target.name)' carries \(want)-bit activations for task '\(source.task)'")
            }
        }
        let inShape = sk.tensors[0].shape
        guard calibration.shape == inShape else { throw FreezeError("calibration images are \(calibration.shape), the model reads \(inShape)") }
        guard calibration.count >= 1 else { throw FreezeError("no calibration images") }

        let placement: CrossbarPlacement
        do {
            placement = try CrossbarMapper.place(sk.layers.map { LayerShape(name: $0.name, fanIn: $0.fanIn, fanOut: $0.fanOut) },
                                                 arrayRows: target.arrayRows, arrayCols: target.arrayCols)
        } catch { throw FreezeError("placement on \(target.arrayRows)x\(target.arrayCols) arrays: \(error)") }
        // Hardware TO on the statistical model: the codes are made from the device's conductances
        // by Device.differentialCodes, the function the model reader regenerates them with.
        var deviceGenerated = [Bool](repeating: false, count: sk.layers.count)
        var note: String? = nil
        if source.mode == "hardware", source.readouts == nil {
            do {
                let dev = try StatisticalDevice(validating: target, seed: source.seed)
                let byName = Dictionary(source.weightLayers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                for (k, fl) in sk.layers.enumerated() {
                    // the layer's matrix: a crossbar node, or one of an rnn node's two
                    let part = sk.rnns.contains { $0.recurrentLayer == k } ? 1 : 0
                    guard var cp = sk.nodes[fl.node].op.crossbarMatrices.dropFirst(part).first, let wl = byName[fl.name] else { continue }
                    guard let g = try deviceCodes(wl, layer: k, placement: placement, device: dev, options: o) else {
                        note = "layer \(wl.name): the checkpoint's weights are not the statistical device's (seed \(source.seed), target \(target.name)); explicit codes"
                        continue
                    }
                    cp.weights = g.codes
                    cp.weightLSBMicroSiemens = g.lsbMicroSiemens
                    switch sk.nodes[fl.node].op {
                    case .rnn(var rp):
                        if part == 0 { rp.input = cp } else { rp.recurrent = cp }
                        sk.nodes[fl.node].op = .rnn(rp)
                    default: sk.nodes[fl.node].op = .crossbar(cp)
                    }
                    sk.layers[k].weightLSB = g.lsbMicroSiemens * wl.scale
                    sk.layers[k].weightLSBMicroSiemens = g.lsbMicroSiemens
                    sk.layers[k].weightsClipped = g.clipped
                    deviceGenerated[k] = true
                }
            } catch let e as FreezeError { throw e } catch { note = "statistical device of '\(target.name)': \(error); explicit codes" }
        }

        // Structure and worst-case accumulator bounds do not depend on the gains: check them first.
        var program = Program(tensors: sk.tensors, nodes: sk.nodes, input: 0, output: sk.tensors.count - 1, arrayRows: target.arrayRows)
        try check(program, sk.layers)

        // calibrate in node order (each step runs the program with every earlier node final)
        enum Item { case crossbar(Int), rnn(Int), affine(Int) }
        let items = (sk.crossbars.indices.map { (sk.crossbars[$0].node, Item.crossbar($0)) } + sk.rnns.indices.map { (sk.rnns[$0].node, Item.rnn($0)) }
                     + sk.affines.indices.map { (sk.affines[$0].node, Item.affine($0)) }).sorted { $0.0 < $1.0 }
        for (_, item) in items {
            switch item {
            case .rnn(let r):
                try calibrateRNN(sk.rnns[r], &program, &sk, calibration: calibration, options: o, adcBits: adcBits)
            case .affine(let a):
                try finalizeAffine(sk.affines[a], &program, layers: sk.layers, source: source, rounding: o.activationRounding)
            case .crossbar(let item):
                let xb = sk.crossbars[item], k = xb.frozen
                guard case .crossbar(var cp) = program.nodes[xb.node].op else { continue }
                let inT = program.nodes[xb.node].inputs[0]
                let codes = try partialRun(program, upTo: xb.node, calibration: calibration, threads: o.threads, layer: sk.layers[k].name)
                let accs = tileAccumulators(codes: codes, count: calibration.count, shape: program.tensors[inT].shape, cp, threads: o.threads)
                let realGain = try calibrateADC(accs, layer: &sk.layers[k], &cp, options: o, adcBits: adcBits).realValue
                program.nodes[xb.node].op = .crossbar(cp)
                sk.layers[k].sumUnit = realGain > 0 ? xb.inputUnit * sk.layers[k].weightLSB / realGain : 0
            }
        }
        try check(program, sk.layers)
        return FrozenModel(program: program, layers: sk.layers, inputBits: sk.inputBits, calibrationImages: calibration.count, placement: placement,
                           deviceGenerated: deviceGenerated, generatorNote: note)
    }

    /// Hardware-TO codes of one layer from the statistical device: the differential conductances
    /// (µS, nominal read) on `placement`, LSB = percentile(|G_on|) / top (as `quantizeWeights`),
    /// codes = `Device.differentialCodes` (mask ? on : off). nil if the checkpoint's normalised
    /// weights are not these conductances times the layer's scale (within 1e-5 of max |w_on|):
    /// then the run was not drawn from this device and its own weights are frozen explicitly.
    static func deviceCodes(_ wl: SourceWeightLayer, layer k: Int, placement: CrossbarPlacement, device: StatisticalDevice,
                            options o: FreezeOptions) throws(FreezeError) -> (codes: [Int8], lsbMicroSiemens: Double, clipped: Int)? {
        let (on, off) = differentialWeights(placement: placement, layer: k, source: device, read: nil)
        guard on.count == wl.wOn.count, off.count == wl.wOff.count, wl.scale > 0, wl.scale.isFinite else { return nil }
        let tol = 1e-5 * Double(wl.wOn.map { abs($0) }.max() ?? 0)
        for i in on.indices {
            if abs(Double(on[i]) * wl.scale - Double(wl.wOn[i])) > tol || abs(Double(off[i]) * wl.scale - Double(wl.wOff[i])) > tol { return nil }
        }
        let micro = SourceWeightLayer(name: wl.name, graphIndex: wl.graphIndex, fanOut: wl.fanOut, fanIn: wl.fanIn, wOn: on, wOff: off, mask: wl.mask)
        let q = try quantizeWeights(micro, bits: o.weightBits, percentile: o.weightPercentile)
        guard let g = differentialCodes(placement: placement, layer: k, source: device, lsbMicroSiemens: q.lsb, bits: o.weightBits) else { return nil }
        var eff = g.off
        for i in eff.indices where wl.mask[i] != 0 { eff[i] = g.on[i] }
        // the same formula on the same values: must agree code for code
        guard eff == q.codes else { throw FreezeError("layer \(wl.name): Device.differentialCodes disagrees with the weight quantizer (internal error)") }
        return (eff, q.lsb, q.clipped)
    }

    /// The input of node `n` over the calibration images, by the program so far (every earlier
    /// node final): the nodes before `n` and the tensors they write, output = `n`'s first input.
    static func partialRun(_ program: Program, upTo n: Int, calibration: PixelSet, threads: Int, layer: String) throws(FreezeError) -> [Int32] {
        let partial = Program(tensors: Array(program.tensors[0..<program.nodes[n].output]), nodes: Array(program.nodes[0..<n]),
                              input: 0, output: program.nodes[n].inputs[0], arrayRows: program.arrayRows)
        do {
            let engine = try Engine(program: partial, threads: threads)
            return engine.inferBatch(calibration.pixels, count: calibration.count).logits
        } catch { throw FreezeError("layer \(layer): \(error)") }
    }

    /// Program.validate() with the failing node named by its layer.
    static func check(_ p: Program, _ layers: [FrozenLayer]) throws(FreezeError) {
        _ = try p.valueRanges(orFail: layers)
    }

}

struct UncheckedPointer<T>: @unchecked Sendable {
    let p: UnsafePointer<T>
    init(_ p: UnsafePointer<T>) { self.p = p }
}
struct UncheckedMutablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

extension Program {
    /// valueRanges() with a FreezeError that names the crossbar layer at fault.
    func valueRanges(orFail layers: [FrozenLayer]) throws(FreezeError) -> [ValueRange] {
        do { return try valueRanges() } catch {
            let where_ = error.node.flatMap { n in layers.first(where: { $0.node == n || $0.activationNode == n }).map { l in "layer \(l.name) (node \(n))" } }
                ?? (error.node.map { "node \($0)" } ?? "program")
            if error.kind == .accumulatorOverflow {
                throw FreezeError("\(where_): the worst case can overflow an accumulator: \(error.message); refusing to freeze (use fewer weight bits, fewer activation bits or a target with fewer rows per array)")
            }
            throw FreezeError("\(where_): invalid program: \(error.kind): \(error.message)")
        }
    }
}
