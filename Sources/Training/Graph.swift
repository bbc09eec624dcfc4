// The layer graph: a sequence of nodes with preallocated activation and gradient buffers for
// the largest batch. (Later graphs with branches reuse the same nodes; this type is the
// sequential case.)

public final class Sequential {
    public let layers: [Layer]
    /// shapes[0] = per-sample input shape, shapes[i + 1] = output of layer i.
    public let shapes: [[Int]]
    public let maxBatch: Int
    public let pool: WorkPool
    /// acts[0] = input, acts[i + 1] = output of layer i; grads likewise (dL/d activation).
    public let acts: [FloatBuffer]
    public let grads: [FloatBuffer]
    let needsInputGrad: [Bool]

    public init(layers: [Layer], inputShape: [Int], maxBatch: Int, pool: WorkPool) throws {
        guard maxBatch > 0 else { throw TrainingError("batch size must be positive") }
        self.layers = layers; self.maxBatch = maxBatch; self.pool = pool
        var shapes = [inputShape]
        for l in layers { shapes.append(try l.configure(input: shapes.last!, maxBatch: maxBatch, pool: pool)) }
        self.shapes = shapes
        acts = shapes.map { FloatBuffer(count: maxBatch * elementCount($0)) }
        grads = shapes.map { FloatBuffer(count: maxBatch * elementCount($0)) }
        var need = [Bool](repeating: false, count: layers.count)
        var seen = false
        for i in layers.indices { need[i] = seen; if layers[i].hasWeights { seen = true } }
        needsInputGrad = need
    }

    public var inputSize: Int { elementCount(shapes[0]) }
    public var outputSize: Int { elementCount(shapes.last!) }
    public var input: UnsafeMutablePointer<Float> { acts[0].ptr }
    public var output: UnsafeMutablePointer<Float> { acts[layers.count].ptr }
    public var outputGrad: UnsafeMutablePointer<Float> { grads[layers.count].ptr }

    /// Runs the graph on acts[0] (first `batch` samples).
    public func forward(batch: Int, training: Bool) {
        precondition(batch <= maxBatch)
        for i in layers.indices {
            layers[i].forward(acts[i].ptr, acts[i + 1].ptr, batch: batch, training: training, pool: pool)
        }
    }

    /// Back-propagates `outputGrad`; weight layers leave their gradients in `weightGrad`.
    public func backward(batch: Int) {
        for i in layers.indices.reversed() {
            if !needsInputGrad[i] && !layers[i].hasWeights { break }
            layers[i].backward(acts[i].ptr, acts[i + 1].ptr, grads[i + 1].ptr, needsInputGrad[i] ? grads[i].ptr : nil,
                               batch: batch, pool: pool)
        }
    }
}

/// Mean softmax cross-entropy (optionally label-smoothed) of `batch` rows of `classes` logits;
/// writes dL/dlogits into `grad` and returns (sum of per-sample losses, correct top-1 count).
/// Per-sample work in fixed order; the sum is accumulated in Double in sample order.
public func softmaxCrossEntropy(logits: UnsafeMutablePointer<Float>, labels: UnsafePointer<UInt8>, batch: Int, classes: Int,
                                smoothing: Float = 0, grad: UnsafeMutablePointer<Float>?) -> (loss: Double, correct: Int) {
    var total = 0.0
    var correct = 0
    let inv = 1 / Float(batch)
    for s in 0..<batch {
        let z = logits + s * classes
        var m = z[0], arg = 0
        for j in 1..<classes where z[j] > m { m = z[j]; arg = j }
        var sum = 0.0
        for j in 0..<classes { sum += Double(expf(z[j] - m)) }
        let lse = Double(m) + log(sum)
        let y = Int(labels[s])
        if arg == y { correct += 1 }
        let off = Double(smoothing) / Double(classes)
        var l = 0.0
        for j in 0..<classes {
            let t = (j == y ? 1 - Double(smoothing) : 0) + off
            if t > 0 { l -= t * (Double(z[j]) - lse) }
        }
        total += l
        if let grad {
            let g = grad + s * classes
            for j in 0..<classes {
                let p = Float(exp(Double(z[j]) - lse))
                let t = (j == y ? 1 - smoothing : 0) + smoothing / Float(classes)
                g[j] = (p - t) * inv
            }
        }
    }
    return (total, correct)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
