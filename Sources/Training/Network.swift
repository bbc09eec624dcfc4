// A supermask network: a layer graph built from serializable specs plus, for every weight
// layer, its `MaskedWeight` (fixed weights, scores, mask).
import Randomness

/// Conv2d and Linear: layers with one weight matrix that comes from a supermask.
public protocol WeightLayer: SupermaskedLayer {
    var name: String { get }
    var weight: FloatBuffer { get }
    var weightGrad: FloatBuffer { get }
    var fanIn: Int { get }
}
extension WeightLayer {
    public var maskedWeights: [WeightTensor] { [WeightTensor(name: name, weight: weight, weightGrad: weightGrad, fanIn: fanIn)] }
}
extension Conv2d: WeightLayer {}
extension Linear: WeightLayer {}

/// The paper's Fashion-MNIST CNN (input [1, 28, 28], pixels/255 in [0, 1]).
public enum Architectures {
    public static func fashionCNN(bits: Int = 4) -> [LayerSpec] {
        func s(_ op: String, _ f: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec { var x = LayerSpec(op: op); f(&x); return x }
        func q(fixed: Double? = nil) -> LayerSpec {
            s("fakequant") { $0.bits = bits; $0.fixedRange = fixed != nil; $0.range = fixed ?? 0 }
        }
        return [
            s("maxpool2d") { $0.kernel = 2 },
            q(fixed: 1.0),
            s("conv2d") { $0.name = "conv1"; $0.inChannels = 1; $0.outChannels = 64; $0.kernelH = 3; $0.kernelW = 3; $0.stride = 1; $0.padding = 0 },
            s("batchnorm") { $0.eps = 1e-5; $0.momentum = 0.1 },
            s("relu"),
            q(),
            s("conv2d") { $0.name = "conv2"; $0.inChannels = 64; $0.outChannels = 16; $0.kernelH = 3; $0.kernelW = 3; $0.stride = 1; $0.padding = 0 },
            s("maxpool2d") { $0.kernel = 2 },
            s("batchnorm") { $0.eps = 1e-5; $0.momentum = 0.1 },
            s("relu"),
            q(),
            s("flatten"),
            s("linear") { $0.name = "fc1"; $0.inFeatures = 400; $0.outFeatures = 128 },
            s("relu"),
            q(),
            s("linear") { $0.name = "fc2"; $0.inFeatures = 128; $0.outFeatures = 10 },
        ]
    }

    /// The paper's spoken-digit CRNN (input [1, 23, 20] features in [0, 1]; docs/TRAINING.md).
    /// The widths are parameters only so that tests can run a narrow copy of the same graph.
    public static func spokenDigitCRNN(bits: Int = 3, conv1: Int = 64, conv2: Int = 32, hidden: Int = 128, fc: Int = 256) -> [LayerSpec] {
        func s(_ op: String, _ f: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec { var x = LayerSpec(op: op); f(&x); return x }
        func q(fixed: Double? = nil) -> LayerSpec {
            s("fakequant") { $0.bits = bits; $0.fixedRange = fixed != nil; $0.range = fixed ?? 0 }
        }
        func conv(_ name: String, _ cin: Int, _ cout: Int) -> LayerSpec {
            s("conv2d") { $0.name = name; $0.inChannels = cin; $0.outChannels = cout; $0.kernelH = 3; $0.kernelW = 2
                          $0.strideH = 2; $0.strideW = 1; $0.padding = 0 }
        }
        return [
            q(fixed: 1.0),
            conv("conv1", 1, conv1),                        // 64x11x19
            s("maxpool2d") { $0.kernel = 2 },               // 64x5x9
            s("batchnorm") { $0.eps = 1e-5; $0.momentum = 0.1 },
            s("relu"),
            q(),
            conv("conv2", conv1, conv2),                    // 32x2x8
            s("maxpool2d") { $0.kernel = 2 },               // 32x1x4
            s("batchnorm") { $0.eps = 1e-5; $0.momentum = 0.1 },
            s("relu"),
            q(),
            s("rnn") { $0.name = "rnn"; $0.inFeatures = conv2; $0.hidden = hidden; $0.bits = bits; $0.fixedRange = false; $0.range = 0 },
            q(),
            s("linear") { $0.name = "fc1"; $0.inFeatures = hidden; $0.outFeatures = fc },
            s("relu"),
            q(),
            s("linear") { $0.name = "fc2"; $0.inFeatures = fc; $0.outFeatures = 10 },
        ]
    }

    /// A residual supermask CNN for Fashion-MNIST (input [1, 28, 28]): maxpool 2 (unless
    /// `inputPool` is false) -> input
    /// quantizer -> stem conv 1->w 3x3 pad 1 - BN - ReLU - fq -> an identity block (conv-BN-ReLU-fq-
    /// conv-BN, + the block input's codes, ReLU, fq) -> a projection block to 2w channels at
    /// stride 2 (conv-BN-ReLU-fq-conv-BN, + a 1x1 stride-2 projection conv-BN of the block input,
    /// ReLU, fq) -> with `stages` 3 a second projection block "b3" to 4w channels at stride 2 ->
    /// global average pooling -> fq -> fc (features)->10, or with `hidden` h > 0 a layer
    /// "hidden" (features)->h - ReLU - fq before fc h->10 (the logits are "fc" either way, so the
    /// hardware defaults' hysteresis exemption holds). `inputs` name the branches (value 0 is the
    /// graph input, k + 1 node k's output).
    public static func fashionResNet(bits: Int = 4, width w: Int = 32, inputPool: Bool = true, hidden: Int = 0, stages: Int = 2) -> [LayerSpec] {
        var g: [LayerSpec] = []
        /// Appends a node; returns its output value.
        @discardableResult func node(_ op: String, inputs: [Int]? = nil, _ f: (inout LayerSpec) -> Void = { _ in }) -> Int {
            var x = LayerSpec(op: op); x.inputs = inputs; f(&x); g.append(x); return g.count
        }
        func q(fixed: Double? = nil) -> Int { node("fakequant") { $0.bits = bits; $0.fixedRange = fixed != nil; $0.range = fixed ?? 0 } }
        func conv(_ name: String, _ cin: Int, _ cout: Int, k: Int = 3, stride: Int = 1, reads: Int? = nil) {
            node("conv2d", inputs: reads.map { [$0] }) {
                $0.name = name; $0.inChannels = cin; $0.outChannels = cout; $0.kernelH = k; $0.kernelW = k; $0.stride = stride; $0.padding = k / 2
            }
        }
        func bn() -> Int { node("batchnorm") { $0.eps = 1e-5; $0.momentum = 0.1 } }
        if inputPool { node("maxpool2d") { $0.kernel = 2 } }
        _ = q(fixed: 1.0)
        conv("stem", 1, w); _ = bn(); node("relu")
        let x1 = q()
        // identity block
        conv("b1.conv1", w, w); _ = bn(); node("relu"); _ = q()
        conv("b1.conv2", w, w)
        let y1 = bn()
        node("add", inputs: [y1, x1]); node("relu")
        let x2 = q()
        // projection blocks, each doubling the channels at stride 2
        var x = x2, c = w
        for stage in 2...stages {
            let name = "b\(stage)"
            conv(name + ".conv1", c, 2 * c, stride: 2); _ = bn(); node("relu"); _ = q()
            conv(name + ".conv2", 2 * c, 2 * c)
            let y = bn()
            conv(name + ".proj", c, 2 * c, k: 1, stride: 2, reads: x)
            let z = bn()
            node("add", inputs: [y, z]); node("relu")
            x = q(); c *= 2
        }
        // the pooled features are quantized again: the fc crossbar reads DAC codes
        node("globalavgpool"); _ = q()
        if hidden > 0 {
            node("linear") { $0.name = "hidden"; $0.inFeatures = c; $0.outFeatures = hidden }
            node("relu"); _ = q()
        }
        node("linear") { $0.name = "fc"; $0.inFeatures = hidden > 0 ? hidden : c; $0.outFeatures = 10 }
        return g
    }

    /// The paper's DRIVE U-Net (input [1, H, W] preprocessed grey levels in [0, 1], H and W
    /// multiples of 2^depth): `depth` levels of double 3x3 convolutions (pad 1, no bias), each
    /// conv - BN - ReLU - fake-quant, with `base * 2^i` channels at level i (32-64-128-256), a
    /// 2x2 max-pool between levels, a bottom level at 1/2^depth keeping the last level's channels
    /// (256); then `depth` decoder levels, each a bilinear x2 upsampling (align_corners) of the
    /// codes below, concatenated with the skip codes of the encoder level at that resolution,
    /// quantized, and a double conv from the concatenation's channels c to c/2 and then to the
    /// next skip's channels (512->256->128, 256->128->64, 128->64->32, 64->32->32); a 1x1 head
    /// "head" 32->2 writes the per-pixel class logits [2, H, W]. Every conv reads `bits`-bit codes.
    public static func driveUNet(bits: Int = 6, base: Int = 32, depth: Int = 4) -> [LayerSpec] {
        var g: [LayerSpec] = []
        @discardableResult func node(_ op: String, inputs: [Int]? = nil, _ f: (inout LayerSpec) -> Void = { _ in }) -> Int {
            var x = LayerSpec(op: op); x.inputs = inputs; f(&x); g.append(x); return g.count
        }
        func q(fixed: Double? = nil) -> Int { node("fakequant") { $0.bits = bits; $0.fixedRange = fixed != nil; $0.range = fixed ?? 0 } }
        /// conv 3x3 pad 1 - BN - ReLU - fq, twice; returns the codes' value.
        func double(_ name: String, _ cin: Int, _ mid: Int, _ cout: Int) -> Int {
            for (k, (i, o)) in [(cin, mid), (mid, cout)].enumerated() {
                node("conv2d") { $0.name = name + ".conv\(k + 1)"; $0.inChannels = i; $0.outChannels = o; $0.kernelH = 3; $0.kernelW = 3; $0.stride = 1; $0.padding = 1 }
                node("batchnorm") { $0.eps = 1e-5; $0.momentum = 0.1 }
                node("relu")
                _ = q()
            }
            return g.count
        }
        _ = q(fixed: 1.0)
        var skips: [Int] = [], channels: [Int] = [], cin = 1
        for level in 0..<depth {
            if level > 0 { node("maxpool2d") { $0.kernel = 2 } }
            let c = base << level
            skips.append(double("enc\(level + 1)", cin, c, c)); channels.append(c); cin = c
        }
        node("maxpool2d") { $0.kernel = 2 }
        var below = double("bottom", cin, cin, cin), c = cin
        for level in stride(from: depth - 1, through: 0, by: -1) {
            let up = node("upsample", inputs: [below]) { $0.factor = 2 }
            node("concat", inputs: [up, skips[level]])
            _ = q()
            let cat = c + channels[level], out = level > 0 ? channels[level - 1] : base
            below = double("dec\(level + 1)", cat, cat / 2, out); c = out
        }
        node("conv2d") { $0.name = "head"; $0.inChannels = c; $0.outChannels = 2; $0.kernelH = 1; $0.kernelW = 1; $0.stride = 1; $0.padding = 0 }
        return g
    }

    /// Tasks `edgecli prune` knows.
    public static let tasks = ["fashion-mnist", "spoken-digit", "fashion-mnist-resnet", "drive"]

    /// The graph of a task (fashion-mnist-resnet: `width` w, nil = 32; `inputPool` false = the
    /// stem reads the 28x28 image instead of its 2x2 max-pool; `hidden` the units of a hidden fc
    /// layer, nil or 0 = none; `stages` the resolutions of blocks, nil = 2).
    public static func graph(task: String, bits: Int, width: Int? = nil, inputPool: Bool? = nil, hidden: Int? = nil, stages: Int? = nil) throws -> [LayerSpec] {
        switch task {
        case "fashion-mnist": return fashionCNN(bits: bits)
        case "spoken-digit": return spokenDigitCRNN(bits: bits)
        case "fashion-mnist-resnet":
            return fashionResNet(bits: bits, width: width ?? 32, inputPool: inputPool ?? true, hidden: hidden ?? 0, stages: stages ?? 2)
        case "drive": return driveUNet(bits: bits, base: width ?? 32)
        default: throw TrainingError("unknown task '\(task)' (supported: \(tasks.joined(separator: ", ")))")
        }
    }

    /// The graph a run's configuration trains (its task, bits and architecture options).
    public static func graph(of config: TrainConfig) throws -> [LayerSpec] {
        try graph(task: config.task, bits: config.bits, width: config.width, inputPool: config.inputPool, hidden: config.hidden, stages: config.stages)
    }
}

public final class SupermaskNetwork {
    public let specs: [LayerSpec]
    public let inputShape: [Int]
    public let graph: LayerGraph
    /// Every supermasked weight matrix in graph order (an RNN node contributes `.ih` then `.hh`);
    /// parallel to `masked` and to `weightGraphIndices`.
    public let weights: [WeightTensor]
    /// Graph node index of each entry of `weights`.
    public let weightGraphIndices: [Int]
    public let masked: [MaskedWeight]
    public let quantizers: [FakeQuant]
    public let batchNorms: [BatchNorm]

    public init(specs: [LayerSpec], inputShape: [Int], sparsity: Double, maxBatch: Int, pool: WorkPool,
                rangeMomentum: Float = 0.1, rangeMode: RangeMode = .ema) throws {
        guard sparsity >= 0, sparsity < 1 else { throw TrainingError("sparsity must be in [0, 1), got \(sparsity)") }
        var layers: [Layer] = []
        for (i, sp) in specs.enumerated() { layers.append(try Self.makeLayer(sp, index: i, rangeMomentum: rangeMomentum, rangeMode: rangeMode)) }
        self.specs = specs
        self.inputShape = inputShape
        let chain = specs.allSatisfy { $0.inputs == nil }
        graph = try LayerGraph(layers: layers, inputs: chain ? nil : specs.indices.map { specs[$0].inputs ?? [$0] },
                               inputShape: inputShape, maxBatch: maxBatch, pool: pool)
        var ws: [WeightTensor] = [], gi: [Int] = []
        for (i, l) in layers.enumerated() {
            guard let m = l as? SupermaskedLayer else { continue }
            for w in m.maskedWeights { ws.append(w); gi.append(i) }
        }
        guard Set(ws.map { $0.name }).count == ws.count else { throw TrainingError("graph: weight layer names are not unique (\(ws.map { $0.name }))") }
        weights = ws; weightGraphIndices = gi
        masked = ws.map { MaskedWeight(name: $0.name, count: $0.weight.count, fanIn: $0.fanIn, sparsity: sparsity) }
        quantizers = layers.compactMap { $0 as? FakeQuant }
        batchNorms = layers.compactMap { $0 as? BatchNorm }
    }

    static func makeLayer(_ s: LayerSpec, index: Int, rangeMomentum: Float, rangeMode: RangeMode) throws -> Layer {
        switch try s.typed(index: index) {
        case let .conv2d(name, cin, cout, kh, kw, sh, sw, pad):
            return Conv2d(name: name, cin: cin, cout: cout, kh: kh, kw: kw, strideH: sh, strideW: sw, pad: pad)
        case let .rnn(name, inFeatures, hidden, bits, steps, range):
            let r = RNN(name: name, inFeatures: inFeatures, hidden: hidden, bits: bits, momentum: rangeMomentum, mode: rangeMode, steps: steps)
            if let v = range, v > 0 { r.range = Float(v); r.initialized = true }
            return r
        case let .linear(name, inFeatures, outFeatures): return Linear(name: name, inFeatures: inFeatures, outFeatures: outFeatures)
        case .maxPool(let k): return MaxPool2d(kernel: k)
        case let .batchNorm(eps, momentum): return BatchNorm(eps: eps, momentum: momentum)
        case .relu: return ReLU()
        case .flatten: return Flatten()
        case .add: return Add()
        case .concat: return Concat()
        case .upsample(let f): return UpsampleBilinear(factor: f)
        case .globalAvgPool: return GlobalAvgPool()
        case let .fakeQuant(bits, fixed, range):
            if let fixed { return FakeQuant(bits: bits, fixedRange: Float(fixed)) }
            let q = FakeQuant(bits: bits, momentum: rangeMomentum, mode: rangeMode)
            if let r = range, r > 0 { q.range = Float(r); q.initialized = true }
            return q
        }
    }

    /// The serializable graph with the current static ranges and BN channel counts.
    public var currentSpecs: [LayerSpec] {
        graph.layers.indices.map { i in var sp = graph.layers[i].spec; sp.inputs = specs[i].inputs; return sp }
    }

    /// Layer shapes for the device mapper: (name, fanIn, fanOut).
    public var layerShapes: [(name: String, fanIn: Int, fanOut: Int)] {
        weights.map { ($0.name, $0.fanIn, $0.fanOut) }
    }

    /// The xoshiro stream of weight layer `j`'s software weights: signed-constant weight `i` is
    /// negative iff bit 63 of draw `i` of `Xoshiro256StarStar(seed: seed, stream: softwareWeightStream(j))`
    /// is 1. Part of the model-file contract: freeze stores (seed, stream) instead of the signs.
    public static func softwareWeightStream(layer j: Int) -> UInt64 { 0x5747_0000 + UInt64(j) }

    /// Software weights: signed constants ±std (signs from the seed) or Kaiming-normal N(0, std).
    public func initSoftwareWeights(seed: UInt64, kind: String) throws {
        for (j, m) in masked.enumerated() {
            var rng = Xoshiro256StarStar(seed: seed, stream: SupermaskNetwork.softwareWeightStream(layer: j))
            let std = m.targetStd
            var on = [Float](repeating: 0, count: m.count)
            switch kind {
            case "signed-constant":
                for i in 0..<m.count { on[i] = (rng.next() >> 63) == 0 ? Float(std) : Float(-std) }
            case "kaiming-normal":
                for i in 0..<m.count { on[i] = Float(std * rng.normal()) }
            default: throw TrainingError("unknown weight init '\(kind)' (signed-constant or kaiming-normal)")
            }
            m.wOn.copy(from: on); m.wOff.zero(); m.scale = 1
        }
    }

    /// Hardware weights from differential conductances, normalised per layer: scale =
    /// std / mean|w_on| (`.meanAbs`) or std / rms(w_on) (`.rms`) of the nominal read, the same
    /// scale applied to w_off and to every later read.
    public func initHardwareWeights(source: DifferentialWeightSource, norm: WeightNorm = .meanAbs) throws {
        for (j, m) in masked.enumerated() {
            let (on, off) = source.differential(layer: j, read: nil)
            guard on.count == m.count, off.count == m.count else {
                throw TrainingError("weight source: layer \(m.name) has \(on.count)/\(off.count) weights, expected \(m.count)")
            }
            var s = 0.0, s2 = 0.0
            for v in on {
                guard v.isFinite else { throw TrainingError("weight source: non-finite conductance in layer \(m.name)") }
                s += Double(abs(v)); s2 += Double(v) * Double(v)
            }
            for v in off where !v.isFinite { throw TrainingError("weight source: non-finite conductance in layer \(m.name)") }
            let size = norm == .rms ? (s2 / Double(m.count)).squareRoot() : s / Double(m.count)
            guard size > 0 else { throw TrainingError("weight source: layer \(m.name) has all-zero weights") }
            m.scale = Float(m.targetStd / size)
            m.wOn.copy(from: on.map { $0 * m.scale }); m.wOff.copy(from: off.map { $0 * m.scale })
        }
    }

    /// Writes the effective weights into the layers: nominal (`read` nil): mask ? w_on : w_off;
    /// with a source and a read index: the scaled read `read` of the programmed pairs.
    public func applyMasks(source: DifferentialWeightSource?, read: Int?) {
        guard let source, let read else { applyMasks(); return }
        graph.pool.run(masked.count) { j, _ in
            let m = self.masked[j], w = self.weights[j].weight.ptr
            source.programmed(layer: j, read: read, mask: m.mask.ptr, into: w)
            let sc = m.scale
            for i in 0..<m.count { w[i] *= sc }
        }
    }

    public func initScores(seed: UInt64) {
        for (j, m) in masked.enumerated() {
            var rng = Xoshiro256StarStar(seed: seed, stream: 0x5343_0000 + UInt64(j))
            m.initScores(rng: &rng)
        }
    }

    /// Writes the effective weights (mask ? cur_on : cur_off) into the layers.
    public func applyMasks() {
        graph.pool.run(masked.count) { j, _ in self.masked[j].writeEffective(into: self.weights[j].weight.ptr) }
    }

    /// Logits of `count` samples in evaluation mode (static ranges, running BN statistics).
    public func evaluate(samples: UnsafePointer<Float>, count: Int, into logits: UnsafeMutablePointer<Float>) {
        let isz = graph.inputSize, osz = graph.outputSize
        var s = 0
        while s < count {
            let b = min(graph.maxBatch, count - s)
            graph.input.update(from: samples + s * isz, count: b * isz)
            graph.forward(batch: b, training: false)
            (logits + s * osz).update(from: graph.output, count: b * osz)
            s += b
        }
    }
}
