// Run directories: checkpoint (binary tensors + JSON header), run.json, log.jsonl.
// Layout and formats: docs/TRAINING.md.
import Foundation

/// How raw data becomes the network input: x = raw * scale + offset.
public struct InputNormalization: Codable, Equatable, Sendable {
    public var scale: Double
    public var offset: Double
    public var note: String
    public static let pixels = InputNormalization(scale: 1.0 / 255.0, offset: 0,
        note: "x = pixel/255 in [0,1]; no mean/std normalisation; the first fake-quant node has the fixed range [0,1]")
    public static let features = InputNormalization(scale: 1, offset: 0,
        note: "x = the stored float32 feature in [0,1] (spoken-digit IDX files); no normalisation; the first fake-quant node has the fixed range [0,1]")

    /// The input normalisation of a task's data (pixels/255 for images, features as stored).
    public static func of(task: String) -> InputNormalization { task == "spoken-digit" ? .features : .pixels }
}

public struct LayerMeta: Codable, Equatable, Sendable {
    public var name: String
    public var graphIndex: Int
    public var fanIn: Int
    public var fanOut: Int
    public var count: Int
    public var keep: Int
    public var sparsity: Double
    /// Normalisation scale applied to raw (µS) weights (1 in software mode).
    public var scale: Double
    public var flipsTotal: Int
    public var keptFraction: Double
}

/// Metadata of a run (the JSON header of checkpoint.bin and the content of run.json).
public struct RunMeta: Codable, Equatable, Sendable {
    public var format = "rram-edge-run/1"
    public var task: String
    public var mode: String
    public var target: String?
    public var seed: UInt64
    public var config: TrainConfig
    public var epochsPlanned: Int
    public var epochsDone: Int
    public var globalBatch: Int
    public var limitStep: Int
    public var bestAccuracy: Double
    public var inputShape: [Int]
    public var classes: Int
    public var inputNormalization: InputNormalization
    public var graph: [LayerSpec]
    public var layers: [LayerMeta]
    public var testAccuracy: Double?
    public var trainAccuracy: Double?
    public var history: [EpochRecord]
}

struct TensorEntry: Codable {
    var name: String
    var dtype: String   // f32 | u8
    var shape: [Int]
    var offset: Int     // from the start of the data section
    var bytes: Int
}

struct CheckpointHeader: Codable {
    var meta: RunMeta
    var tensors: [TensorEntry]
}

public enum RunFiles {
    public static let checkpoint = "checkpoint.bin"
    public static let runJSON = "run.json"
    public static let log = "log.jsonl"
    public static let summary = "summary.json"
    static let magic: [UInt8] = Array("RRCKPT01".utf8)

    public static func writeAtomically(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw TrainingError("cannot write \(path): \(error.localizedDescription)") }
    }

    static func encoder(pretty: Bool) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return e
    }
}

/// A decoded checkpoint: metadata and named tensors.
public struct Checkpoint {
    public var meta: RunMeta
    public var f32: [String: [Float]] = [:]
    public var u8: [String: [UInt8]] = [:]
    public var shapes: [String: [Int]] = [:]

    public init(meta: RunMeta) { self.meta = meta }

    public func encode() throws -> Data {
        var entries: [TensorEntry] = []
        var body = Data()
        func pad() { while body.count % 64 != 0 { body.append(0) } }
        for name in f32.keys.sorted() {
            pad()
            let v = f32[name]!
            let bytes = v.withUnsafeBufferPointer { Data(buffer: $0) }
            entries.append(TensorEntry(name: name, dtype: "f32", shape: shapes[name] ?? [v.count], offset: body.count, bytes: bytes.count))
            body.append(bytes)
        }
        for name in u8.keys.sorted() {
            pad()
            let v = u8[name]!
            entries.append(TensorEntry(name: name, dtype: "u8", shape: shapes[name] ?? [v.count], offset: body.count, bytes: v.count))
            body.append(contentsOf: v)
        }
        let header = try RunFiles.encoder(pretty: false).encode(CheckpointHeader(meta: meta, tensors: entries))
        var out = Data(RunFiles.magic)
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(header)
        out.append(body)
        return out
    }

    public static func decode(_ data: Data, path: String) throws -> Checkpoint {
        let bytes = [UInt8](data)
        guard bytes.count >= 16, Array(bytes[0..<8]) == RunFiles.magic else { throw TrainingError("\(path): not an rram-edge checkpoint") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[8 + i]) << (8 * UInt64(i)) }
        guard n <= UInt64(bytes.count - 16) else { throw TrainingError("\(path): truncated checkpoint header") }
        let hEnd = 16 + Int(n)
        let header: CheckpointHeader
        do { header = try JSONDecoder().decode(CheckpointHeader.self, from: Data(bytes[16..<hEnd])) }
        catch { throw TrainingError("\(path): bad checkpoint header: \(error)") }
        guard header.meta.format == "rram-edge-run/1" else { throw TrainingError("\(path): unsupported format \(header.meta.format)") }
        var ck = Checkpoint(meta: header.meta)
        for e in header.tensors {
            let start = hEnd + e.offset
            guard e.offset >= 0, e.bytes >= 0, start + e.bytes <= bytes.count else { throw TrainingError("\(path): tensor \(e.name) out of range (truncated file?)") }
            let count = e.shape.reduce(1, *)
            ck.shapes[e.name] = e.shape
            switch e.dtype {
            case "f32":
                guard e.bytes == 4 * count else { throw TrainingError("\(path): tensor \(e.name) size mismatch") }
                var v = [Float](repeating: 0, count: count)
                v.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + e.bytes)])) } }
                ck.f32[e.name] = v
            case "u8":
                guard e.bytes == count else { throw TrainingError("\(path): tensor \(e.name) size mismatch") }
                ck.u8[e.name] = Array(bytes[start..<(start + e.bytes)])
            default: throw TrainingError("\(path): tensor \(e.name) has unknown dtype \(e.dtype)")
            }
        }
        return ck
    }

    public static func read(dir: String) throws -> Checkpoint {
        let path = (dir as NSString).appendingPathComponent(RunFiles.checkpoint)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("no checkpoint at \(path) (not a run directory, or the run has not finished an epoch)")
        }
        return try decode(data, path: path)
    }

    func tensor(_ name: String, _ count: Int) throws -> [Float] {
        guard let v = f32[name], v.count == count else { throw TrainingError("checkpoint: tensor \(name) missing or of wrong size") }
        return v
    }
    func bytes(_ name: String, _ count: Int) throws -> [UInt8] {
        guard let v = u8[name], v.count == count else { throw TrainingError("checkpoint: tensor \(name) missing or of wrong size") }
        return v
    }
}

extension SupermaskNetwork {
    func layerMetas() -> [LayerMeta] {
        let idx = weightGraphIndices
        return masked.enumerated().map { j, m in
            LayerMeta(name: m.name, graphIndex: idx[j], fanIn: m.fanIn, fanOut: m.count / m.fanIn, count: m.count, keep: m.keep,
                      sparsity: m.sparsity, scale: Double(m.scale), flipsTotal: m.flipsTotal, keptFraction: m.keptFraction)
        }
    }

    /// Tensors of the network state (weights, scores, optimizer state, masks, BN statistics, ranges).
    func stateTensors(into ck: inout Checkpoint) {
        for m in masked {
            let shape = [m.count / m.fanIn, m.fanIn]
            for (k, b) in [("w_on", m.wOn), ("w_off", m.wOff), ("scores", m.scores), ("velocity", m.velocity), ("s_ref", m.sRef)] {
                ck.f32["\(m.name).\(k)"] = b.array; ck.shapes["\(m.name).\(k)"] = shape
            }
            ck.u8["\(m.name).mask"] = m.mask.array; ck.shapes["\(m.name).mask"] = shape
            if let v = m.secondMoment { ck.f32["\(m.name).second_moment"] = v.array; ck.shapes["\(m.name).second_moment"] = shape }
        }
        for (i, l) in graph.layers.enumerated() {
            if let bn = l as? BatchNorm {
                ck.f32["node\(i).running_mean"] = bn.runningMean.array
                ck.f32["node\(i).running_var"] = bn.runningVar.array
            }
            if let q = l as? FakeQuant {
                ck.f32["node\(i).range"] = [q.range]
                ck.u8["node\(i).range_initialized"] = [q.initialized ? 1 : 0]
            }
            if let r = l as? RNN {   // the hidden-state quantizer
                ck.f32["node\(i).range"] = [r.range]
                ck.u8["node\(i).range_initialized"] = [r.initialized ? 1 : 0]
            }
        }
    }

    func restoreState(from ck: Checkpoint, layers: [LayerMeta]) throws {
        guard layers.count == masked.count else { throw TrainingError("checkpoint: \(layers.count) weight layers, graph has \(masked.count)") }
        for (j, m) in masked.enumerated() {
            guard layers[j].name == m.name, layers[j].count == m.count else { throw TrainingError("checkpoint: layer \(j) is \(layers[j].name), expected \(m.name)") }
            m.wOn.copy(from: try ck.tensor("\(m.name).w_on", m.count))
            m.wOff.copy(from: try ck.tensor("\(m.name).w_off", m.count))
            m.scores.copy(from: try ck.tensor("\(m.name).scores", m.count))
            m.velocity.copy(from: try ck.tensor("\(m.name).velocity", m.count))
            m.sRef.copy(from: try ck.tensor("\(m.name).s_ref", m.count))
            if let v = m.secondMoment { v.copy(from: try ck.tensor("\(m.name).second_moment", m.count)) }
            m.mask.copy(from: try ck.bytes("\(m.name).mask", m.count))
            m.scale = Float(layers[j].scale)
            m.flipsTotal = layers[j].flipsTotal
            for v in m.wOn.array + m.wOff.array + m.scores.array where !v.isFinite { throw TrainingError("checkpoint: non-finite values in layer \(m.name)") }
        }
        for (i, l) in graph.layers.enumerated() {
            if let bn = l as? BatchNorm {
                bn.runningMean.copy(from: try ck.tensor("node\(i).running_mean", bn.channels))
                bn.runningVar.copy(from: try ck.tensor("node\(i).running_var", bn.channels))
            }
            if let q = l as? FakeQuant {
                q.range = try ck.tensor("node\(i).range", 1)[0]
                q.initialized = try ck.bytes("node\(i).range_initialized", 1)[0] != 0
            }
            if let r = l as? RNN {
                r.range = try ck.tensor("node\(i).range", 1)[0]
                r.initialized = try ck.bytes("node\(i).range_initialized", 1)[0] != 0
            }
        }
        for (i, l) in graph.layers.enumerated() {
            let r: Float? = (l as? FakeQuant)?.range ?? (l as? RNN)?.range
            if let r, !(r.isFinite && r >= 0) { throw TrainingError("checkpoint: node \(i) has the unusable range \(r)") }
        }
        applyMasks()
    }
}

extension Trainer {
    public func meta() -> RunMeta {
        RunMeta(task: config.task, mode: config.mode, target: config.target, seed: config.seed, config: config,
                epochsPlanned: config.epochs, epochsDone: epochsDone, globalBatch: globalBatch, limitStep: limitStep,
                bestAccuracy: bestAccuracy, inputShape: net.inputShape, classes: classes, inputNormalization: .of(task: config.task),
                graph: net.currentSpecs, layers: net.layerMetas(), testAccuracy: history.last?.testAccuracy,
                trainAccuracy: history.last?.trainAccuracy, history: history)
    }

    /// Writes checkpoint.bin, run.json and log.jsonl into `dir` (created if needed), each atomically.
    public func save(to dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw TrainingError("cannot create run directory \(dir): \(error.localizedDescription)") }
        var ck = Checkpoint(meta: meta())
        net.stateTensors(into: &ck)
        try RunFiles.writeAtomically(try ck.encode(), to: (dir as NSString).appendingPathComponent(RunFiles.checkpoint))
        try RunFiles.writeAtomically(try RunFiles.encoder(pretty: true).encode(ck.meta), to: (dir as NSString).appendingPathComponent(RunFiles.runJSON))
        try RunFiles.writeAtomically(try logLines(), to: (dir as NSString).appendingPathComponent(RunFiles.log))
    }

    public func logLines() throws -> Data {
        var d = Data()
        for r in history { d.append(try RunFiles.encoder(pretty: false).encode(r)); d.append(0x0A) }
        return d
    }

    /// Restores a run saved by `save` (the trainer must have been built with the saved config).
    public func restore(_ ck: Checkpoint) throws {
        guard ck.meta.config == config else { throw TrainingError("resume: the checkpoint was written with a different configuration") }
        try net.restoreState(from: ck, layers: ck.meta.layers)
        epochsDone = ck.meta.epochsDone; globalBatch = ck.meta.globalBatch; limitStep = ck.meta.limitStep
        bestAccuracy = ck.meta.bestAccuracy; history = ck.meta.history
    }
}

/// A trained run loaded for inference (what `freeze` uses).
public final class TrainedRun {
    public let meta: RunMeta
    public let network: SupermaskNetwork

    /// Loads `dir/checkpoint.bin`; the network evaluates up to `maxBatch` samples per forward
    /// pass, of the run's input shape or of `inputShape` (a fully convolutional net, such as
    /// the DRIVE U-Net trained on patches, reads whole images with the same weights).
    public convenience init(dir: String, maxBatch: Int = 250, threads: Int = 1, inputShape: [Int]? = nil) throws {
        try self.init(try Checkpoint.read(dir: dir), maxBatch: maxBatch, threads: threads, inputShape: inputShape)
    }

    /// The network of a checkpoint already read.
    public init(_ ck: Checkpoint, maxBatch: Int = 250, threads: Int = 1, inputShape: [Int]? = nil) throws {
        meta = ck.meta
        network = try SupermaskNetwork(specs: ck.meta.graph, inputShape: inputShape ?? ck.meta.inputShape, sparsity: ck.meta.config.sparsity,
                                       maxBatch: maxBatch, pool: WorkPool(threads: threads))
        try network.restoreState(from: ck, layers: ck.meta.layers)
    }

    /// The serializable graph (with static ranges, BN eps and channel counts).
    public var graph: [LayerSpec] { network.currentSpecs }

    /// Per weight layer: name, graph node index, shape [fanOut, fanIn], w_on, w_off, mask, effective weights.
    public struct WeightLayerState: Sendable {
        public let name: String
        public let graphIndex: Int
        public let shape: [Int]
        public let wOn: [Float]
        public let wOff: [Float]
        public let mask: [UInt8]
        /// mask ? w_on : w_off (what the network multiplies with).
        public let effective: [Float]
    }

    /// Every supermasked weight matrix in graph order; an `rnn` node gives two entries with its
    /// graph index: `<name>.ih` [hidden, in] (W_ih) then `<name>.hh` [hidden, hidden] (W_hh).
    public var weightLayers: [WeightLayerState] {
        let idx = network.weightGraphIndices
        return network.masked.enumerated().map { j, m in
            WeightLayerState(name: m.name, graphIndex: idx[j], shape: [m.count / m.fanIn, m.fanIn], wOn: m.wOn.array, wOff: m.wOff.array,
                             mask: m.mask.array, effective: network.weights[j].weight.array)
        }
    }

    /// Running statistics of the batch-norm node at `graphIndex`: (mean, variance, eps).
    public func batchNorm(at graphIndex: Int) -> (mean: [Float], variance: [Float], eps: Double)? {
        guard graphIndex >= 0, graphIndex < network.graph.layers.count, let bn = network.graph.layers[graphIndex] as? BatchNorm else { return nil }
        return (bn.runningMean.array, bn.runningVar.array, bn.eps)
    }

    /// Static range and bits of the fake-quant node at `graphIndex`; for an `rnn` node, its
    /// hidden-state quantizer (applied to h_0 ... h_{T-2}).
    public func quantizer(at graphIndex: Int) -> (bits: Int, range: Float)? {
        guard graphIndex >= 0, graphIndex < network.graph.layers.count else { return nil }
        if let q = network.graph.layers[graphIndex] as? FakeQuant { return (q.bits, q.range) }
        if let r = network.graph.layers[graphIndex] as? RNN { return (r.bits, r.range) }
        return nil
    }

    /// The `rnn` node at `graphIndex`: sizes, steps T, hidden quantizer (bits, static range) and
    /// the indices into `weightLayers` of W_ih and W_hh.
    public struct RecurrentState: Sendable, Equatable {
        public let inFeatures: Int, hidden: Int, steps: Int, bits: Int
        public let range: Float
        public let inputWeights: Int, hiddenWeights: Int
    }

    public func recurrent(at graphIndex: Int) -> RecurrentState? {
        guard graphIndex >= 0, graphIndex < network.graph.layers.count, let r = network.graph.layers[graphIndex] as? RNN,
              let ih = network.masked.firstIndex(where: { $0.name == r.name + ".ih" }),
              let hh = network.masked.firstIndex(where: { $0.name == r.name + ".hh" }) else { return nil }
        return RecurrentState(inFeatures: r.inFeatures, hidden: r.hidden, steps: r.steps, bits: r.bits, range: r.range,
                              inputWeights: ih, hiddenWeights: hh)
    }

    /// Float forward pass in evaluation mode of `count` samples (already normalised, NCHW,
    /// `meta.inputShape` each): logits [count, classes].
    public func forward(_ samples: [Float], count: Int) throws -> [Float] {
        let isz = network.graph.inputSize
        guard samples.count == count * isz else { throw TrainingError("forward: \(samples.count) values are not \(count) samples of \(isz)") }
        var out = [Float](repeating: 0, count: count * network.graph.outputSize)
        samples.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in network.evaluate(samples: s.baseAddress!, count: count, into: o.baseAddress!) }
        }
        return out
    }

    /// All activations of the graph for `count` <= maxBatch samples: acts[0] = input,
    /// acts[i + 1] = output of node i (for golden vectors / layer-by-layer comparison).
    public func activations(_ samples: [Float], count: Int) throws -> [[Float]] {
        let g = network.graph
        guard count >= 1, count <= g.maxBatch, samples.count == count * g.inputSize else { throw TrainingError("activations: need 1...\(g.maxBatch) samples of \(g.inputSize)") }
        g.input.update(from: samples, count: samples.count)
        g.forward(batch: count, training: false)
        return g.shapes.indices.map { i in Array(UnsafeBufferPointer(start: g.acts[i].ptr, count: count * g.shapes[i].reduce(1, *))) }
    }
}
