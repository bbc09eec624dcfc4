extension Reference {
    /// Runs a validated program on one image (pixels in (C,H,W) order) and returns every
    /// intermediate tensor. The program must have passed `validate()`.
    public static func run(_ program: Program, pixels: [UInt8]) -> Trace {
        precondition(pixels.count == program.tensors[program.input].shape.count, "pixel count")
        var tensors = [[Int32]](repeating: [], count: program.tensors.count)
        var tiles = [[[Int32]]](repeating: [], count: program.nodes.count)
        tensors[program.input] = pixels.map { Int32($0) }
        for (k, node) in program.nodes.enumerated() {
            let x = tensors[node.inputs[0]]
            let shape = program.tensors[node.inputs[0]].shape
            switch node.op {
            case .inputQuant(let p), .activation(let p):
                tensors[node.output] = affineQuant(x, shape: shape, p)
            case .maxPool(let p):
                tensors[node.output] = maxPool(x, shape: shape, p)
            case .flatten:
                tensors[node.output] = x
            case .crossbar(let p):
                var t: [[Int32]] = []
                tensors[node.output] = crossbar(x, shape: shape, p, tileADC: &t)
                tiles[k] = t
            case .rnn(let p):
                var t: [[Int32]] = []
                tensors[node.output] = rnn(x, shape: shape, p, steps: &t)
                tiles[k] = t
            case .add(let p):
                tensors[node.output] = add(x, tensors[node.inputs[1]], shape: shape, p)
            case .concat(let p):
                tensors[node.output] = concat(node.inputs.map { tensors[$0] }, shapes: node.inputs.map { program.tensors[$0].shape }, p)
            case .upsampleBilinear(let p):
                tensors[node.output] = upsample(x, shape: shape, p, exact: program.tensors[node.output].kind == .sum)
            case .globalAvgPool(let p):
                tensors[node.output] = globalAvgPool(x, shape: shape, p, exact: program.globalPoolIsExact(node))
            }
        }
        return Trace(tensors: tensors, tileADC: tiles)
    }
}
