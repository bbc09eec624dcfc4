// The typed form of a graph node: what `LayerSpec`'s op string and optional fields mean, parsed
// and checked in one place for both sides of the float/integer seam (the trainer builds its
// layers from it, freeze lowers it).

/// One graph node's op with every parameter it needs (docs/TRAINING.md).
public enum OpSpec: Sendable, Equatable {
    case conv2d(name: String, inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padding: Int)
    case linear(name: String, inFeatures: Int, outFeatures: Int)
    /// `steps`: known after the first forward pass; `range`: the hidden quantizer's saved range.
    case rnn(name: String, inFeatures: Int, hidden: Int, bits: Int, steps: Int?, range: Double?)
    case maxPool(kernel: Int)
    case batchNorm(eps: Double, momentum: Double)
    case relu
    /// `fixedRange`: the range of a fixed quantizer (the input's); else `range`, the saved EMA range.
    case fakeQuant(bits: Int, fixedRange: Double?, range: Double?)
    case flatten
    case add
    case concat
    case upsample(factor: Int)
    case globalAvgPool
}

extension LayerSpec {
    /// The typed op of graph node `index`; a TrainingError names the node and the missing or
    /// invalid field.
    public func typed(index: Int) throws(TrainingError) -> OpSpec {
        func need(_ v: Int?, _ what: String) throws(TrainingError) -> Int {
            guard let v, v > 0 else { throw TrainingError("graph node \(index) (\(op)): missing or invalid \(what)") }
            return v
        }
        switch op {
        case "conv2d":
            let st = stride ?? 1
            let sh = strideH ?? st, sw = strideW ?? st
            guard sh > 0, sw > 0, (padding ?? 0) >= 0 else { throw TrainingError("graph node \(index) (conv2d): invalid stride or padding") }
            return .conv2d(name: name ?? "conv\(index)", inChannels: try need(inChannels, "inChannels"), outChannels: try need(outChannels, "outChannels"),
                           kernelH: try need(kernelH, "kernelH"), kernelW: try need(kernelW, "kernelW"), strideH: sh, strideW: sw, padding: padding ?? 0)
        case "rnn":
            let t: Int?
            if let steps { t = try need(steps, "steps") } else { t = nil }
            return .rnn(name: name ?? "rnn\(index)", inFeatures: try need(inFeatures, "inFeatures"), hidden: try need(hidden, "hidden"),
                        bits: try need(bits, "bits"), steps: t, range: range)
        case "linear":
            return .linear(name: name ?? "fc\(index)", inFeatures: try need(inFeatures, "inFeatures"), outFeatures: try need(outFeatures, "outFeatures"))
        case "maxpool2d": return .maxPool(kernel: try need(kernel, "kernel"))
        case "batchnorm": return .batchNorm(eps: eps ?? 1e-5, momentum: momentum ?? 0.1)
        case "relu": return .relu
        case "flatten": return .flatten
        case "add": return .add
        case "concat": return .concat
        case "upsample": return .upsample(factor: try need(factor, "factor"))
        case "globalavgpool": return .globalAvgPool
        case "fakequant":
            let b = try need(bits, "bits")
            return fixedRange == true ? .fakeQuant(bits: b, fixedRange: range ?? 1, range: nil) : .fakeQuant(bits: b, fixedRange: nil, range: range)
        default: throw TrainingError("graph node \(index): unknown op '\(op)'")
        }
    }
}
