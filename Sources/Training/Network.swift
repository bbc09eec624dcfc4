// A supermask network: a layer graph built from serializable specs plus, for every weight
// layer, its `MaskedWeight` (fixed weights, scores, mask).
import Randomness

/// Conv2d and Linear: layers whose weight comes from a supermask.
public protocol WeightLayer: Layer {
    var name: String { get }
    var weight: FloatBuffer { get }
    var weightGrad: FloatBuffer { get }
    var fanIn: Int { get }
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
}

public final class SupermaskNetwork {
    public let specs: [LayerSpec]
    public let inputShape: [Int]
    public let graph: Sequential
    public let weightLayers: [WeightLayer]
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
        graph = try Sequential(layers: layers, inputShape: inputShape, maxBatch: maxBatch, pool: pool)
        weightLayers = layers.compactMap { $0 as? WeightLayer }
        masked = weightLayers.map { MaskedWeight(name: $0.name, count: $0.weight.count, fanIn: $0.fanIn, sparsity: sparsity) }
        quantizers = layers.compactMap { $0 as? FakeQuant }
        batchNorms = layers.compactMap { $0 as? BatchNorm }
    }

    static func makeLayer(_ s: LayerSpec, index: Int, rangeMomentum: Float, rangeMode: RangeMode) throws -> Layer {
        func need(_ v: Int?, _ what: String) throws -> Int {
            guard let v, v > 0 else { throw TrainingError("graph node \(index) (\(s.op)): missing or invalid \(what)") }
            return v
        }
        switch s.op {
        case "conv2d":
            return Conv2d(name: s.name ?? "conv\(index)", cin: try need(s.inChannels, "inChannels"), cout: try need(s.outChannels, "outChannels"),
                          kh: try need(s.kernelH, "kernelH"), kw: try need(s.kernelW, "kernelW"), stride: s.stride ?? 1, pad: s.padding ?? 0)
        case "linear":
            return Linear(name: s.name ?? "fc\(index)", inFeatures: try need(s.inFeatures, "inFeatures"), outFeatures: try need(s.outFeatures, "outFeatures"))
        case "maxpool2d": return MaxPool2d(kernel: try need(s.kernel, "kernel"))
        case "batchnorm": return BatchNorm(eps: s.eps ?? 1e-5, momentum: s.momentum ?? 0.1)
        case "relu": return ReLU()
        case "flatten": return Flatten()
        case "fakequant":
            let bits = try need(s.bits, "bits")
            if s.fixedRange == true { return FakeQuant(bits: bits, fixedRange: Float(s.range ?? 1)) }
            let q = FakeQuant(bits: bits, momentum: rangeMomentum, mode: rangeMode)
            if let r = s.range, r > 0 { q.range = Float(r); q.initialized = true }
            return q
        default: throw TrainingError("graph node \(index): unknown op '\(s.op)'")
        }
    }

    /// The serializable graph with the current static ranges and BN channel counts.
    public var currentSpecs: [LayerSpec] { graph.layers.map { $0.spec } }

    /// Layer shapes for the device mapper: (name, fanIn, fanOut).
    public var layerShapes: [(name: String, fanIn: Int, fanOut: Int)] {
        weightLayers.map { ($0.name, $0.fanIn, $0.weight.count / $0.fanIn) }
    }

    /// Software weights: signed constants ±std (signs from the seed) or Kaiming-normal N(0, std).
    public func initSoftwareWeights(seed: UInt64, kind: String) throws {
        for (j, m) in masked.enumerated() {
            var rng = Xoshiro256StarStar(seed: seed, stream: 0x5747_0000 + UInt64(j))
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
            let m = self.masked[j], w = self.weightLayers[j].weight.ptr
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
        graph.pool.run(masked.count) { j, _ in self.masked[j].writeEffective(into: self.weightLayers[j].weight.ptr) }
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
