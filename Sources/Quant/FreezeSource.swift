// The float model to freeze, decoupled from the training module's classes: a sequential graph
// of LayerSpec nodes plus the state freeze needs (weights, masks, BN statistics, static ranges).
// `FreezeSource(run:)` reads it from a TrainedRun; tests may build one directly.
import Training

/// Why freezing failed. The message names the layer / node / option at fault.
public struct FreezeError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One weight layer of the source model.
public struct SourceWeightLayer: Sendable {
    public var name: String
    /// Index of the layer's node in `graph`.
    public var graphIndex: Int
    public var fanOut: Int
    public var fanIn: Int
    /// Normalised weights of the formed (on) and reset (off) pair states, `[fanOut][fanIn]`.
    public var wOn: [Float]
    public var wOff: [Float]
    /// 1 = kept (formed), 0 = pruned (reset).
    public var mask: [UInt8]
    /// Weight units per microsiemens (the training's normalisation; 1 in software mode).
    public var scale: Double
    /// Mask bits flipped since the initial programming (programming operations).
    public var flipsTotal: Int

    public init(name: String, graphIndex: Int, fanOut: Int, fanIn: Int, wOn: [Float], wOff: [Float], mask: [UInt8],
                scale: Double = 1, flipsTotal: Int = 0) {
        self.name = name; self.graphIndex = graphIndex; self.fanOut = fanOut; self.fanIn = fanIn
        self.wOn = wOn; self.wOff = wOff; self.mask = mask; self.scale = scale; self.flipsTotal = flipsTotal
    }

    /// mask ? w_on : w_off, element `i`.
    @inlinable public func effective(_ i: Int) -> Float { mask[i] != 0 ? wOn[i] : wOff[i] }
}

/// Everything `Freezer` reads from a trained model.
public struct FreezeSource: Sendable {
    public var task: String
    public var mode: String
    /// The target the run's conductances were drawn for (hardware mode), if any.
    public var runTarget: String?
    public var seed: UInt64
    public var epochs: Int
    /// Per-sample input shape [C, H, W].
    public var inputShape: [Int]
    public var classes: Int
    /// x = raw * inputScale + inputOffset (raw = the 8-bit pixel).
    public var inputScale: Double
    /// Float features in [0, 1] (spoken digit) instead of 8-bit pixels: the program's input holds
    /// their DAC codes (`Kernels.FeatureEncoding`), its input quantizer is the identity clamp
    /// (DATAPATH.md section 15.1). Requires x = the feature (scale 1, offset 0) and a fixed first
    /// fake-quant range of 1.
    public var featureInput = false
    public var inputOffset: Double
    public var graph: [LayerSpec]
    public var weightLayers: [SourceWeightLayer]
    /// Per graph index: BN running (mean, variance, eps).
    public var batchNorms: [Int: (mean: [Float], variance: [Float], eps: Double)]
    /// Per graph index: fake-quant (bits, static range).
    public var quantizers: [Int: (bits: Int, range: Float)]
    /// The training's own (float) test accuracy, if recorded.
    public var trainingTestAccuracy: Double?
    /// Software weight init ("signed-constant", "kaiming-normal"), if known.
    public var weightInit: String?
    /// Hardware mode with measured readouts instead of the statistical model (path), if any.
    public var readouts: String?

    public init(task: String, mode: String, runTarget: String?, seed: UInt64, epochs: Int, inputShape: [Int], classes: Int,
                inputScale: Double, inputOffset: Double, graph: [LayerSpec], weightLayers: [SourceWeightLayer],
                batchNorms: [Int: (mean: [Float], variance: [Float], eps: Double)], quantizers: [Int: (bits: Int, range: Float)],
                trainingTestAccuracy: Double? = nil) {
        self.task = task; self.mode = mode; self.runTarget = runTarget; self.seed = seed; self.epochs = epochs
        self.inputShape = inputShape; self.classes = classes; self.inputScale = inputScale; self.inputOffset = inputOffset
        self.graph = graph; self.weightLayers = weightLayers; self.batchNorms = batchNorms; self.quantizers = quantizers
        self.trainingTestAccuracy = trainingTestAccuracy
        self.weightInit = nil; self.readouts = nil
    }

    /// Reads a trained run (checkpoint state in evaluation mode: running BN, static ranges), for
    /// inputs of `inputShape` (default: the shape the run's network was loaded at; a fully
    /// convolutional run, such as the DRIVE U-Net trained on patches, freezes at any size).
    public init(run: TrainedRun, inputShape: [Int]? = nil) {
        let m = run.meta
        var bns: [Int: (mean: [Float], variance: [Float], eps: Double)] = [:]
        var qs: [Int: (bits: Int, range: Float)] = [:]
        let g = run.graph
        for i in g.indices {
            if let b = run.batchNorm(at: i) { bns[i] = b }
            if let q = run.quantizer(at: i) { qs[i] = q }
        }
        let metas = Dictionary(m.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let layers = run.weightLayers.map { w in
            SourceWeightLayer(name: w.name, graphIndex: w.graphIndex, fanOut: w.shape[0], fanIn: w.shape[1], wOn: w.wOn, wOff: w.wOff,
                              mask: w.mask, scale: metas[w.name]?.scale ?? 1, flipsTotal: metas[w.name]?.flipsTotal ?? 0)
        }
        self.init(task: m.task, mode: m.mode, runTarget: m.target, seed: m.seed, epochs: m.epochsDone, inputShape: inputShape ?? run.network.inputShape,
                  classes: m.classes, inputScale: m.inputNormalization.scale, inputOffset: m.inputNormalization.offset,
                  graph: g, weightLayers: layers, batchNorms: bns, quantizers: qs, trainingTestAccuracy: m.testAccuracy)
        featureInput = m.task == "spoken-digit"   // InputNormalization.of(task:) == .features
        weightInit = m.config.weightInit
        readouts = m.config.readouts
    }
}
