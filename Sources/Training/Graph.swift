// The layer graph: nodes in topological order, each reading one or more earlier values (the
// graph input or an earlier node's output), with preallocated activation and gradient buffers
// for the largest batch. A chain is the case where every node reads its predecessor; it runs
// exactly the operations it ran before graphs could branch (bit-identical training).

/// A node that reads several tensors (`Add`, `Concat`). The graph calls these methods; the
/// single-input `Layer` methods are never used for such a node.
public protocol MultiInputLayer: Layer {
    /// Input per-sample shapes -> output per-sample shape; allocates buffers for `maxBatch`.
    func configure(inputs: [[Int]], maxBatch: Int, pool: WorkPool) throws -> [Int]
    func forward(inputs xs: [UnsafeMutablePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool)
    /// Writes (overwrites) each non-nil `dxs[j]` from `dy`.
    func backward(inputs xs: [UnsafeMutablePointer<Float>], _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dxs: [UnsafeMutablePointer<Float>?], batch: Int, pool: WorkPool)
}

extension MultiInputLayer {
    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        try configure(inputs: [input], maxBatch: maxBatch, pool: pool)
    }
    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        forward(inputs: [x], y, batch: batch, training: training, pool: pool)
    }
    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        backward(inputs: [x], y, dy, [dx], batch: batch, pool: pool)
    }
}

public final class LayerGraph {
    public let layers: [Layer]
    /// `inputs[i]`: the values node i reads; value 0 is the graph input, value k + 1 the output
    /// of node k (so node i may read values 0...i).
    public let inputs: [[Int]]
    /// shapes[0] = per-sample input shape, shapes[i + 1] = output of layer i.
    public let shapes: [[Int]]
    public let maxBatch: Int
    public let pool: WorkPool
    /// acts[0] = input, acts[i + 1] = output of layer i; grads likewise (dL/d activation).
    public let acts: [FloatBuffer]
    public let grads: [FloatBuffer]
    /// Per node: whether its backward runs (it has weights, or a value it reads needs a gradient).
    let runsBackward: [Bool]
    /// Per node and input slot: where its input gradient goes (nil: not needed) and, for a value
    /// read by several slots, the scratch its gradient is written to before being added to the
    /// value's gradient (the first slot in backward order writes the value's gradient directly).
    let gradTargets: [[UnsafeMutablePointer<Float>?]]
    let accumulate: [[(scratch: FloatBuffer, into: FloatBuffer)?]]
    let inputPointers: [[UnsafeMutablePointer<Float>]]
    let multi: [MultiInputLayer?]

    /// `inputs` nil: a chain (node i reads value i).
    public init(layers: [Layer], inputs: [[Int]]? = nil, inputShape: [Int], maxBatch: Int, pool: WorkPool) throws {
        guard maxBatch > 0 else { throw TrainingError("batch size must be positive") }
        let ins = inputs ?? layers.indices.map { [$0] }
        guard ins.count == layers.count else { throw TrainingError("graph: \(ins.count) input lists for \(layers.count) nodes") }
        self.layers = layers; self.inputs = ins; self.maxBatch = maxBatch; self.pool = pool
        var shapes = [inputShape]
        var multi: [MultiInputLayer?] = []
        for (i, l) in layers.enumerated() {
            guard !ins[i].isEmpty, ins[i].allSatisfy({ (0...i).contains($0) }) else {
                throw TrainingError("graph node \(i): inputs \(ins[i]) must be earlier values 0...\(i) (0 is the graph input)")
            }
            let m = l as? MultiInputLayer
            multi.append(m)
            if let m { shapes.append(try m.configure(inputs: ins[i].map { shapes[$0] }, maxBatch: maxBatch, pool: pool)) } else {
                guard ins[i].count == 1 else { throw TrainingError("graph node \(i) (\(l.spec.op)) reads one tensor, \(ins[i].count) given") }
                shapes.append(try l.configure(input: shapes[ins[i][0]], maxBatch: maxBatch, pool: pool))
            }
        }
        self.multi = multi
        self.shapes = shapes
        let acts = shapes.map { FloatBuffer(count: maxBatch * elementCount($0)) }
        let grads = shapes.map { FloatBuffer(count: maxBatch * elementCount($0)) }
        self.acts = acts; self.grads = grads
        // a value needs a gradient when a weight layer lies upstream of it
        var needs = [Bool](repeating: false, count: shapes.count)
        for i in layers.indices { needs[i + 1] = layers[i].hasWeights || ins[i].contains { needs[$0] } }
        let runs = layers.indices.map { needs[$0 + 1] }
        runsBackward = runs
        var written = [Bool](repeating: false, count: shapes.count)
        var targets = [[UnsafeMutablePointer<Float>?]](repeating: [], count: layers.count)
        var acc = [[(scratch: FloatBuffer, into: FloatBuffer)?]](repeating: [], count: layers.count)
        for i in layers.indices.reversed() {
            for v in ins[i] {
                guard needs[v], runs[i] else { targets[i].append(nil); acc[i].append(nil); continue }
                if !written[v] { targets[i].append(grads[v].ptr); acc[i].append(nil); written[v] = true } else {
                    let sc = FloatBuffer(count: maxBatch * elementCount(shapes[v]))
                    targets[i].append(sc.ptr); acc[i].append((sc, grads[v]))
                }
            }
        }
        gradTargets = targets
        accumulate = acc
        inputPointers = ins.map { $0.map { acts[$0].ptr } }
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
            if let m = multi[i] { m.forward(inputs: inputPointers[i], acts[i + 1].ptr, batch: batch, training: training, pool: pool) }
            else { layers[i].forward(inputPointers[i][0], acts[i + 1].ptr, batch: batch, training: training, pool: pool) }
        }
    }

    /// Back-propagates `outputGrad`; weight layers leave their gradients in `weightGrad`. A
    /// value read by several nodes gets the sum of their gradients, added in backward order.
    public func backward(batch: Int) {
        for i in layers.indices.reversed() where runsBackward[i] {
            if let m = multi[i] { m.backward(inputs: inputPointers[i], acts[i + 1].ptr, grads[i + 1].ptr, gradTargets[i], batch: batch, pool: pool) }
            else { layers[i].backward(inputPointers[i][0], acts[i + 1].ptr, grads[i + 1].ptr, gradTargets[i][0], batch: batch, pool: pool) }
            for a in accumulate[i] {
                guard let a else { continue }
                let S = SendablePtr(a.scratch.ptr), D = SendablePtr(a.into.ptr)
                pool.blocks(batch * (a.scratch.count / maxBatch), grain: elementGrain) { r in for k in r { D.p[k] += S.p[k] } }
            }
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

/// Mean softmax cross-entropy over the pixels of a per-pixel head: `logits` holds `batch`
/// maps of `classes` channels by `pixels` positions (NCHW), `labels` one class per pixel
/// (`batch * pixels`), `weights` (optional, `batch * pixels`) 0 for pixels that do not count
/// (outside a field of view). The mean is over the counted pixels of the batch; writes
/// dL/dlogits into `grad` (0 at uncounted pixels); returns (sum of per-pixel losses, correct
/// argmax count, counted pixels). Pixel order is fixed; the sum is accumulated in Double.
public func pixelSoftmaxCrossEntropy(logits: UnsafeMutablePointer<Float>, labels: UnsafePointer<UInt8>, weights: UnsafePointer<UInt8>?,
                                     batch: Int, classes: Int, pixels: Int, grad: UnsafeMutablePointer<Float>?) -> (loss: Double, correct: Int, counted: Int) {
    var counted = 0
    for i in 0..<(batch * pixels) where weights == nil || weights![i] != 0 { counted += 1 }
    let inv = 1 / Float(max(counted, 1))
    var total = 0.0, correct = 0
    for s in 0..<batch {
        let z = logits + s * classes * pixels
        let g = grad.map { $0 + s * classes * pixels }
        for p in 0..<pixels {
            let k = s * pixels + p
            guard weights == nil || weights![k] != 0 else {
                if let g { for j in 0..<classes { g[j * pixels + p] = 0 } }
                continue
            }
            var m = z[p], arg = 0
            for j in 1..<classes where z[j * pixels + p] > m { m = z[j * pixels + p]; arg = j }
            var sum = 0.0
            for j in 0..<classes { sum += Double(expf(z[j * pixels + p] - m)) }
            let lse = Double(m) + log(sum)
            let y = Int(labels[k])
            if arg == y { correct += 1 }
            total += lse - Double(z[y * pixels + p])
            if let g {
                for j in 0..<classes {
                    let q = Float(exp(Double(z[j * pixels + p]) - lse))
                    g[j * pixels + p] = (q - (j == y ? 1 : 0)) * inv
                }
            }
        }
    }
    return (total, correct, counted)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
