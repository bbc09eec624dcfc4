// Lowering (Prepare): a trained layer graph -> the program skeleton freeze calibrates
// (docs/DATAPATH.md section 14). One file per op kind: Lower+Quantizer (the fake-quant node
// that ends an input quantizer, an activation, a residual addition, a concatenation or an rnn),
// Lower+Crossbar (conv2d, linear), Lower+RNN, Lower+Pool (max-pool, global average pooling),
// Lower+Add, Lower+Concat, Lower+Upsample; the structural nodes (batch norm, ReLU, flatten) are here. Every integer a node needs is computed
// once calibration knows the scales (Freezer.freeze), through the functions of FixedPoint and
// Kernels' reference.
import Device
import FixedPoint
import Kernels
import Training

/// Where the real value of one integer unit of a sum tensor comes from.
enum SumScale: Equatable {
    /// `FrozenLayer.sumUnit` of that layer (known after its ADC is calibrated).
    case layer(Int)
    /// Known when lowering (the exact sums of a global average pool: the code unit / (H*W)).
    case fixed(Double)
}

/// One input of an affine requantization: a tensor, the real value of its unit, and the batch
/// norm (graph index) applied to it before the quantizer.
struct AffineOperand: Equatable {
    var tensor: Int
    var scale: SumScale
    var bn: Int?
}

/// A quantizer node whose integers wait for calibration: an activation (one operand), a
/// residual addition (two operands), `out = clamp(round((sum_k BN_k(x_k unit_k)) L / range), 0, L)`,
/// or a concatenation (each output channel from one operand's channel, the same rule with one term).
struct PendingAffine {
    var node: Int
    var operands: [AffineOperand]
    var bits: Int
    var range: Double
    /// The crossbar layer an activation reads (nil: an addition, or sums of no crossbar).
    var layer: Int? {
        guard operands.count == 1, case .layer(let k) = operands[0].scale else { return nil }
        return k
    }
}

/// The state of one value of the training graph (value 0 the input, value k+1 node k's output).
enum LoweredValue {
    case pixels(tensor: Int)
    /// Quantized codes; real value = code * unit.
    case codes(tensor: Int, unit: Double)
    /// Sums (a crossbar's digital sums, or exact pooled sums) with an optional batch norm.
    case sums(AffineOperand)
    /// A residual addition waiting for its quantizer (through an optional ReLU).
    case pendingAdd([AffineOperand])
    /// A channel concatenation waiting for its quantizer.
    case pendingConcat([AffineOperand])
    /// An rnn node waiting for its output quantizer.
    case rnnPending(Freezer.PendingRNN, RNNParams, input: Int)

    var name: String {
        switch self {
        case .pixels: return "raw pixels"
        case .codes: return "quantized codes"
        case .sums: return "sums"
        case .pendingAdd: return "an addition not yet quantized"
        case .pendingConcat: return "a concatenation not yet quantized"
        case .rnnPending: return "an rnn not yet quantized"
        }
    }
}

struct Lowering {
    let src: FreezeSource
    let target: TargetProfile
    let options: FreezeOptions
    let adcBits: Int
    let byIndex: [Int: Int]

    var tensors: [TensorDesc]
    var nodes: [Node] = []
    var values: [LoweredValue]
    var crossbars: [(node: Int, frozen: Int, inputUnit: Double)] = []
    var rnns: [Freezer.PendingRNN] = []
    var affines: [PendingAffine] = []
    var layers: [FrozenLayer] = []
    var inputBits = 0

    init(_ src: FreezeSource, target: TargetProfile, options: FreezeOptions, adcBits: Int) {
        self.src = src; self.target = target; self.options = options; self.adcBits = adcBits
        byIndex = Dictionary(src.weightLayers.enumerated().map { ($1.graphIndex, $0) }, uniquingKeysWith: { a, _ in a })
        tensors = [.code(TensorShape(c: src.inputShape[0], h: src.inputShape[1], w: src.inputShape[2]), bits: 8)]
        values = [.pixels(tensor: 0)]
    }

    /// Appends a node reading `inputs` (tensor indices) and writing a new tensor `out`; returns it.
    @discardableResult
    mutating func emit(_ op: Op, _ out: TensorDesc, inputs: [Int]) -> Int {
        tensors.append(out)
        nodes.append(Node(op, inputs: inputs, output: tensors.count - 1))
        return tensors.count - 1
    }

    /// The tensor holding a value (nil while it waits for a quantizer).
    func tensor(_ v: LoweredValue) -> Int? {
        switch v {
        case .pixels(let t), .codes(let t, _): return t
        case .sums(let o): return o.tensor
        case .pendingAdd, .pendingConcat, .rnnPending: return nil
        }
    }

    /// The operands of a multi-input requantization (an addition, a concatenation): each input
    /// a weight layer's sums (with its pending batch norm) or quantized codes.
    func affineOperands(_ gi: Int, _ xs: [LoweredValue], of what: String) throws(FreezeError) -> [AffineOperand] {
        var ops: [AffineOperand] = []
        for (j, x) in xs.enumerated() {
            switch x {
            case .sums(let o): ops.append(o)
            case .codes(let t, let u): ops.append(AffineOperand(tensor: t, scale: .fixed(u), bn: nil))
            default: throw fail(gi, "input \(j) is \(x.name); \(what) reads sums or quantized codes")
            }
        }
        return ops
    }

    func fail(_ gi: Int, _ m: String) -> FreezeError {
        let spec = src.graph[gi]
        return FreezeError("graph node \(gi) (\(spec.op)\(spec.name.map { " " + $0 } ?? "")): \(m)")
    }

    /// Lowers graph node `gi`, appending its value.
    mutating func lower(_ gi: Int) throws(FreezeError) {
        let spec = src.graph[gi]
        let ins = spec.inputs ?? [gi]
        guard !ins.isEmpty, ins.allSatisfy({ $0 >= 0 && $0 <= gi }) else {
            throw fail(gi, "reads values \(ins): a node reads the input (0) or earlier nodes' outputs (1...\(gi))")
        }
        let op: OpSpec
        do { op = try spec.typed(index: gi) } catch { throw FreezeError("\(error)") }
        let inputs = ins.map { values[$0] }
        if op != .add, op != .concat, inputs.count != 1 { throw fail(gi, "reads \(inputs.count) values; \(spec.op) reads one") }
        let v: LoweredValue
        switch op {
        case .fakeQuant: v = try lowerQuantizer(gi, inputs[0])
        case .conv2d, .linear: v = try lowerCrossbar(gi, op, inputs[0])
        case let .rnn(_, _, hidden, _, steps, _): v = try lowerRNN(gi, hidden: hidden, steps: steps, inputs[0])
        case .maxPool(let k): v = try lowerMaxPool(gi, kernel: k, inputs[0])
        case .globalAvgPool: v = try lowerGlobalAvgPool(gi, inputs[0])
        case .add: v = try lowerAdd(gi, inputs)
        case .concat: v = try lowerConcat(gi, inputs)
        case .upsample(let f): v = try lowerUpsample(gi, factor: f, inputs[0])
        case .batchNorm: v = try lowerBatchNorm(gi, inputs[0])
        case .relu:
            // ReLU is the lower clamp of the next quantizer (unsigned codes)
            switch inputs[0] {
            case .sums, .pendingAdd: v = inputs[0]
            default: throw fail(gi, "ReLU must follow a weight layer or an addition, got \(inputs[0].name)")
            }
        case .flatten:
            guard let t = tensor(inputs[0]) else { throw fail(gi, "flatten of \(inputs[0].name)") }
            if case .sums(let o) = inputs[0], o.bn != nil { throw fail(gi, "flatten between a batch norm and its quantizer is not supported") }
            let d = tensors[t]
            let out = emit(.flatten, TensorDesc(shape: TensorShape(c: d.shape.count, h: 1, w: 1), kind: d.kind, bits: d.bits), inputs: [t])
            v = Self.moved(inputs[0], to: out)
        }
        values.append(v)
    }

    /// The same value held by another tensor (a shape-only or order-preserving node).
    static func moved(_ v: LoweredValue, to t: Int) -> LoweredValue {
        switch v {
        case .pixels: return .pixels(tensor: t)
        case .codes(_, let u): return .codes(tensor: t, unit: u)
        case .sums(var o): o.tensor = t; return .sums(o)
        case .pendingAdd, .pendingConcat, .rnnPending: return v
        }
    }

    mutating func lowerBatchNorm(_ gi: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        guard case .sums(var o) = x, o.bn == nil else {
            throw fail(gi, "batch norm must follow a weight layer (optionally through a max-pool), got \(x.name)")
        }
        let c = tensors[o.tensor].shape.c
        guard let bn = src.batchNorms[gi], bn.mean.count == c, bn.variance.count == c else {
            throw fail(gi, "no running statistics for \(c) channels")
        }
        for k in 0..<c where !(bn.mean[k].isFinite && bn.variance[k].isFinite && Double(bn.variance[k]) + bn.eps > 0) {
            throw fail(gi, "channel \(k): running mean \(bn.mean[k]) / variance \(bn.variance[k]) unusable")
        }
        o.bn = gi
        return .sums(o)
    }

    /// The skeleton after the last node: the output must be a weight layer's digital sums.
    func finish() throws(FreezeError) -> Freezer.Skeleton {
        guard case .sums(let o)? = values.last, o.bn == nil, case .layer = o.scale else {
            throw FreezeError("the graph must end with a weight layer (the logits are its digital sums); it ends with \(src.graph.last?.op ?? "nothing")")
        }
        guard inputBits > 0, !crossbars.isEmpty else { throw FreezeError("the graph has no input quantizer or no weight layer") }
        guard o.tensor == tensors.count - 1 else { throw FreezeError("the graph's output is not its last node's") }
        // a classifier's logits, or a per-pixel head's logit map of the input's size
        let os = tensors[o.tensor].shape
        let perPixel = os.h * os.w > 1 && os.c == src.classes && os.h == src.inputShape[1] && os.w == src.inputShape[2]
        guard os.count == src.classes || perPixel else {
            throw FreezeError("the last layer has \(os.count) outputs (\(os)), the run has \(src.classes) classes (one per image, or one map per class of the input's \(src.inputShape[1]) x \(src.inputShape[2]))")
        }
        var layers = layers
        // the activation that reads each crossbar (directly or through a max-pool)
        for a in affines { if let k = a.layer { layers[k].activationNode = a.node } }
        return Freezer.Skeleton(tensors: tensors, nodes: nodes, crossbars: crossbars, rnns: rnns, affines: affines, layers: layers,
                                inputBits: inputBits)
    }
}
