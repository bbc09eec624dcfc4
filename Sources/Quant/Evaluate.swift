// Evaluation of a frozen program on labelled images: integer engine (Kernels, integers only),
// optionally the float pipeline of the frozen graph (DATAPATH.md section 11) for the golden
// comparison, and ADC full-scale statistics from traces. Batches are streamed; results do not
// depend on the thread count.
import DataIO
import Device
import Randomness
import Training
import Kernels
import ModelFile

public final class Evaluator {
    public let program: Program
    public let engine: Engine
    public let withFloat: Bool
    public let classes: Int
    public private(set) var images = 0
    public private(set) var labelled = 0
    public private(set) var integerCorrect = 0
    public private(set) var floatCorrect = 0
    public private(set) var agreements = 0
    var logitBuf: [Int32] = []
    var predBuf: [Int32] = []
    var floatPred: [Int] = []
    let floatEval: FloatEvaluator
    /// One float scratch arena per thread (allocated once).
    let floatArenas: [UncheckedMutablePointer<Float>]

    public init(program: Program, threads: Int, withFloat: Bool) throws {
        self.program = program
        engine = try Engine(program: program, threads: threads)
        self.withFloat = withFloat
        classes = engine.outputCount
        floatEval = FloatEvaluator(program)
        let n = floatEval.arenaCount
        floatArenas = withFloat ? (0..<engine.threads).map { _ in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n); p.initialize(repeating: 0, count: n); return UncheckedMutablePointer(p)
        } : []
    }
    deinit { for a in floatArenas { a.p.deallocate() } }

    public var integerAccuracy: Double { labelled == 0 ? 0 : Double(integerCorrect) / Double(labelled) }
    public var floatAccuracy: Double { labelled == 0 ? 0 : Double(floatCorrect) / Double(labelled) }
    public var agreement: Double { images == 0 ? 0 : Double(agreements) / Double(images) }

    /// Runs `count` images (pixels back to back); `labels` (count entries) when known; the
    /// integer logits are appended to `logits` when given.
    public func process(pixels: UnsafeBufferPointer<UInt8>, count: Int, labels: ArraySlice<UInt8>?, logits: UnsafeMutablePointer<Int32>? = nil) {
        guard count > 0 else { return }
        let nOut = engine.outputCount, nIn = engine.inputCount
        if logitBuf.count < count * nOut { logitBuf = [Int32](repeating: 0, count: count * nOut) }
        // a per-pixel output predicts H*W classes per image; image labels and the float
        // agreement below are counted for classifiers (one prediction per image)
        let ppi = engine.predictionsPerImage
        if predBuf.count < count * ppi { predBuf = [Int32](repeating: 0, count: count * ppi) }
        logitBuf.withUnsafeMutableBufferPointer { lg in
            predBuf.withUnsafeMutableBufferPointer { pr in
                engine.inferBatch(pixels: pixels, count: count, logits: lg, predictions: pr)
                if let logits { logits.update(from: lg.baseAddress!, count: count * nOut) }
            }
        }
        guard ppi == 1 else { images += count; return }
        if withFloat {
            if floatPred.count < count { floatPred = [Int](repeating: 0, count: count) }
            let fe = floatEval
            let n = max(1, min(engine.threads, count))
            let px = UncheckedPointer(pixels.baseAddress!)
            let ar = floatArenas
            floatPred.withUnsafeMutableBufferPointer { fp in
                let out = UncheckedMutablePointer(fp.baseAddress!)
                KernelsParallel.forEach(n) { part in
                    for i in (count * part / n)..<(count * (part + 1) / n) {
                        let lg = fe.logits(pixels: px.p + i * nIn, arena: ar[part].p)
                        var best = 0
                        for j in 1..<lg.count where lg[j] > lg[best] { best = j }
                        out.p[i] = best
                    }
                }
            }
        }
        for i in 0..<count {
            let p = Int(predBuf[i])
            if withFloat, floatPred[i] == p { agreements += 1 }
            if let labels {
                let y = Int(labels[labels.startIndex + i])
                if p == y { integerCorrect += 1 }
                if withFloat, floatPred[i] == y { floatCorrect += 1 }
            }
        }
        images += count
        if labels != nil { labelled += count }
    }

    /// Convenience over a PixelSet, in batches of 256.
    public func process(_ set: PixelSet) {
        let per = set.shape.count
        set.pixels.withUnsafeBufferPointer { px in
            var i = 0
            while i < set.count {
                let n = min(256, set.count - i)
                process(pixels: UnsafeBufferPointer(rebasing: px[(i * per)..<((i + n) * per)]), count: n,
                        labels: set.labels.map { $0[i..<(i + n)] })
                i += n
            }
        }
    }
}

/// Fraction of tile ADC readings at full scale (the saturation limits) per crossbar layer
/// (`Program.crossbarLayers`: an rnn node gives its input then its recurrent matrix, over all
/// steps), over the images of `set` (from traces: a reading exactly at a limit is counted too).
public func adcFullScaleRates(program: Program, _ set: PixelSet) throws -> [(node: Int, readings: Int, atLimit: Int)] {
    let engine = try Engine(program: program, threads: 1)
    let layers = program.crossbarLayers
    var stats = [(Int, Int)](repeating: (0, 0), count: layers.count)
    let per = set.shape.count
    for i in 0..<set.count {
        let tr = engine.trace(pixels: Array(set.pixels[(i * per)..<((i + 1) * per)]))
        for (l, x) in layers.enumerated() {
            // the trace sub-points of this matrix and the tile each one belongs to
            var subs: [(Int, TileADC)] = []
            switch program.nodes[x.node].op {
            case .crossbar(let cp): subs = cp.tiles.enumerated().map { ($0, $1) }
            case .rnn(let rp):
                let steps = program.tensors[program.nodes[x.node].inputs[0]].shape.w, pps = rp.subpointsPerStep
                for t in 0..<steps {
                    if x.part == 0 { for (k, tile) in rp.input.tiles.enumerated() { subs.append((t * pps + k, tile)) } }
                    else { for (k, tile) in rp.recurrent.tiles.enumerated() { subs.append((t * pps + rp.input.tiles.count + k, tile)) } }
                }
            default: break
            }
            var (r, a) = stats[l]
            for (j, tile) in subs {
                let hi = Int32((1 << (tile.bits - 1)) - 1), lo = -hi - 1
                r += tr.tileADC[x.node][j].count
                for v in tr.tileADC[x.node][j] where v >= hi || v <= lo { a += 1 }
            }
            stats[l] = (r, a)
        }
    }
    return layers.indices.map { (node: layers[$0].node, readings: stats[$0].0, atLimit: stats[$0].1) }
}

/// Multiply-accumulates per image of a program's crossbars.
public func macsPerImage(_ p: Program) -> Int {
    var total = 0
    for n in p.nodes {
        if case .crossbar(let cp) = n.op { total += p.tensors[n.output].shape.count * cp.fanIn }
        if case .rnn(let r) = n.op { total += p.tensors[n.inputs[0]].shape.w * r.hiddenSize * (r.inputSize + r.hiddenSize) }
    }
    return total
}

/// Accuracy figures that go into the model file's provenance.
public struct FreezeEvaluation: Sendable, Equatable {
    public var images: Int
    public var integerAccuracy: Double
    public var floatAccuracy: Double
    public var agreement: Double
    /// Per crossbar layer: ADC readings at full scale on the evaluation images traced.
    public var tracedImages: Int
    public var fullScaleRates: [Double]
    public init(images: Int, integerAccuracy: Double, floatAccuracy: Double, agreement: Double, tracedImages: Int, fullScaleRates: [Double]) {
        self.images = images; self.integerAccuracy = integerAccuracy; self.floatAccuracy = floatAccuracy
        self.agreement = agreement; self.tracedImages = tracedImages; self.fullScaleRates = fullScaleRates
    }
}

extension Freezer {
    /// Evaluates a frozen model on labelled images: integer and float accuracy, argmax agreement,
    /// ADC full-scale rates on the first `traceCount` images.
    public static func evaluate(_ model: FrozenModel, on set: PixelSet, threads: Int, traceCount: Int = 1000) throws -> FreezeEvaluation {
        let ev = try Evaluator(program: model.program, threads: threads, withFloat: true)
        ev.process(set)
        let traced = set.prefix(traceCount)
        let rates = try adcFullScaleRates(program: model.program, traced).map { $0.readings == 0 ? 0 : Double($0.atLimit) / Double($0.readings) }
        return FreezeEvaluation(images: set.count, integerAccuracy: ev.integerAccuracy, floatAccuracy: ev.floatAccuracy,
                                agreement: ev.agreement, tracedImages: traced.count, fullScaleRates: rates)
    }

    /// The model file: program + task, target (name, SHA-256 of its canonical JSON), provenance,
    /// programming counts (mask flips per layer; cells to reset = 2 x pruned pairs), placement,
    /// packed masks, and the freeze report under `freeze.*` keys.
    /// A per-pixel program's `pixelEvaluation` gives the accuracies (per counted pixel, of the
    /// argmax decision) and `freeze.pixel_*` keys.
    public static func bundle(_ model: FrozenModel, source: FreezeSource, target: TargetProfile, evaluation: FreezeEvaluation?,
                              pixelEvaluation: PixelEvaluation? = nil, options: FreezeOptions, toolVersion: String) -> ModelBundle {
        let hash = SHA256.hex(SHA256.hash(TargetProfiles.canonicalJSON(target)))
        let floatAccuracy = evaluation?.floatAccuracy ?? pixelEvaluation?.floatAtHalf.accuracy ?? .nan
        let integerAccuracy = evaluation?.integerAccuracy ?? pixelEvaluation?.integerAtHalf.accuracy ?? .nan
        let prov = Provenance(seed: source.seed, epochs: source.epochs, dataset: source.task,
                              floatAccuracy: floatAccuracy, integerAccuracy: integerAccuracy,
                              toolVersion: toolVersion, created: nil)
        let byName = Dictionary(source.weightLayers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let flips = model.layers.map { byName[$0.name]?.flipsTotal ?? 0 }
        let pruned = model.layers.reduce(0) { $0 + $1.pruned }
        let masks: [PackedMask?] = model.layers.map { l in byName[l.name].map { PackedMask($0.mask.map { $0 != 0 }) } }
        let pl = model.placement
        let placement = Placement(arrayRows: pl.arrayRows, arrayCols: pl.arrayCols, arrayCount: pl.arrayCount,
                                  tiles: pl.tiles.map { PlacementTile(layer: $0.layer, array: $0.array, rowOffset: $0.rowOffset, rows: $0.rows,
                                                                      inputOffset: $0.inputOffset, colOffset: $0.colOffset,
                                                                      outputOffset: $0.outputOffset, outputs: $0.outputs) })
        var extra: [String: MetadataValue] = [
            "freeze.calibration_images": .u64(UInt64(model.calibrationImages)),
            "freeze.weight_bits": .u32(UInt32(options.weightBits)),
            "freeze.weight_percentile": .f64(options.weightPercentile),
            "freeze.adc_percentile": .f64(options.adcPercentile),
            "freeze.adc_gain_rule": .string(options.adcGainRule.rawValue),
            "freeze.layer_names": .array(model.layers.map { .string($0.name) }),
            "freeze.weight_lsb": .array(model.layers.map { .f64($0.weightLSB) }),
            "freeze.weights_clipped": .array(model.layers.map { .u64(UInt64($0.weightsClipped)) }),
            "freeze.adc_gain": .array(model.layers.map { .f64($0.adcGain) }),
            "freeze.adc_acc_level": .array(model.layers.map { .i64($0.accLevel) }),
            "freeze.adc_clip_rate_calibration": .array(model.layers.map { .f64($0.clipRate) }),
            "input.scale": .f64(source.inputScale),
            "input.kind": .string(source.featureInput ? "features" : "pixels"),
            "input.offset": .f64(source.inputOffset),
            "model.mode": .string(source.mode),
        ]
        if let evaluation {
            extra["freeze.eval_images"] = .u64(UInt64(evaluation.images))
            extra["freeze.argmax_agreement"] = .f64(evaluation.agreement)
            extra["freeze.adc_full_scale_rate_eval"] = .array(evaluation.fullScaleRates.map { .f64($0) })
            extra["freeze.traced_images"] = .u64(UInt64(evaluation.tracedImages))
        }
        if pixelEvaluation != nil || source.task == "drive", let head = model.layers.last {
            // the real value of one unit of the output's digital sums: a per-pixel program's
            // probabilities are sigmoid(unit * (z1 - z0))
            extra["freeze.output_unit"] = .f64(head.sumUnit)
        }
        if let e = pixelEvaluation {
            extra["freeze.eval_images"] = .u64(UInt64(e.images))
            extra["freeze.pixel_count"] = .u64(UInt64(e.pixels))
            extra["freeze.pixel_agreement"] = .f64(e.agreement)
            for (key, v) in [("integer_roc_auc", e.integer.rocAUC), ("float_roc_auc", e.float.rocAUC),
                             ("integer_average_precision", e.integer.averagePrecision), ("float_average_precision", e.float.averagePrecision)] {
                if let v { extra["freeze.pixel_" + key] = .f64(v) }
            }
        }
        if let t = source.trainingTestAccuracy { extra["provenance.training_test_accuracy"] = .f64(t) }
        let gens = options.explicitWeights ? [] : weightGenerators(model, source: source)
        let usesDevice = gens.contains { if case .statisticalDevice? = $0 { return true } else { return false } }
        let meta = ModelMetadata(task: source.task, targetName: target.name, targetHash: hash, provenance: prov,
                                 programming: ProgrammingCounts(maskFlips: flips, cellsToReset: 2 * pruned),
                                 placement: placement, masks: masks, conductances: [], extra: extra,
                                 weightGenerators: gens, deviceProfile: usesDevice ? TargetProfiles.canonicalJSON(target) : [])
        return ModelBundle(program: model.program, metadata: meta)
    }

    /// Per crossbar layer, the generator that reproduces its codes (docs/FORMAT.md section 8b), or nil:
    /// - hardware TO on the statistical model: `statisticalDevice(seed)` (codes made by Device at freeze);
    /// - software TO with signed constants (all |w_on| equal, w_off = 0, codes mask ? ±c : 0):
    ///   `signedConstant(c, signs)`, signs from the training's stream when they match it, else stored bits.
    /// The writer re-checks that every generator reproduces the program's codes exactly.
    public static func weightGenerators(_ model: FrozenModel, source: FreezeSource) -> [WeightGenerator?] {
        let byName = Dictionary(source.weightLayers.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [WeightGenerator?] = []
        let matrices = model.program.crossbarLayers   // aligned with model.layers (an rnn node is two)
        for (k, l) in model.layers.enumerated() {
            guard k < matrices.count, let j = byName[l.name] else { out.append(nil); continue }
            let c = matrices[k].params
            let wl = source.weightLayers[j]
            if k < model.deviceGenerated.count, model.deviceGenerated[k] { out.append(.statisticalDevice(seed: source.seed)); continue }
            guard source.mode == "software", source.weightInit ?? "signed-constant" == "signed-constant",
                  let m0 = wl.wOn.first.map({ abs($0) }), m0 > 0, wl.wOn.allSatisfy({ abs($0) == m0 }), wl.wOff.allSatisfy({ $0 == 0 }),
                  c.weights.count == wl.wOn.count else { out.append(nil); continue }
            let mag = c.weights.indices.first { wl.mask[$0] != 0 }.map { Int(c.weights[$0].magnitude) } ?? 0
            guard mag >= 1, c.weights.indices.allSatisfy({ i in
                wl.mask[i] == 0 ? c.weights[i] == 0 : Int(c.weights[i]) == (wl.wOn[i] > 0 ? mag : -mag)
            }) else { out.append(nil); continue }
            var rng = Xoshiro256StarStar(seed: source.seed, stream: SupermaskNetwork.softwareWeightStream(layer: j))
            let fromStream = wl.wOn.allSatisfy { ($0 < 0) == (rng.next() >> 63 != 0) }
            out.append(.signedConstant(magnitude: mag, signs: fromStream
                ? .stream(seed: source.seed, stream: SupermaskNetwork.softwareWeightStream(layer: j))
                : .bits(PackedMask(wl.wOn.map { $0 < 0 }))))
        }
        return out
    }
}
