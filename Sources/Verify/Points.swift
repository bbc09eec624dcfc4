// The comparison points of a program (docs/GOLDEN.md, section 2): the input, then in node order
// each crossbar's row tiles' ADC codes followed by each node's output tensor. Golden directories,
// dumps of other implementations and verification reports all use these names.
import DataIO
import Kernels

/// One comparison point: a tensor of the program (or one tile's ADC codes) for every image.
public struct GoldenPoint: Sendable, Equatable, Hashable {
    /// File stem and report name, e.g. `input`, `n01_inputQuant`, `n02_crossbar_tile00`, `n02_crossbar`.
    public var name: String
    /// Node producing it (nil: the program input).
    public var node: Int?
    /// Row tile of a crossbar node, or the per-step sub-point index of an rnn node
    /// (`Trace.tileADC[node][tile]`; nil: a whole tensor).
    public var tile: Int?
    /// `input`, `inputQuant`, `maxPool`, `crossbarTile`, `crossbar`, `activation`, `flatten`, `rnn`,
    /// and the rnn sub-points `rnnInputTile`, `rnnRecurrentTile`, `rnnHidden`, `rnnState`.
    public var op: String
    /// Program tensor index (nil for tile ADC codes, which are not program tensors).
    public var tensor: Int?
    public var kind: ElementKind
    public var bits: Int
    /// Shape of one image's values, (C,H,W).
    public var shape: TensorShape

    public init(name: String, node: Int?, tile: Int?, op: String, tensor: Int?, kind: ElementKind, bits: Int, shape: TensorShape) {
        self.name = name; self.node = node; self.tile = tile; self.op = op; self.tensor = tensor
        self.kind = kind; self.bits = bits; self.shape = shape
    }

    /// The NPY dtype of the integer file: u8 codes, i16 ADC codes, i32 sums.
    public var dtype: NPYDType { GoldenPoint.dtype(for: kind) }
    public static func dtype(for kind: ElementKind) -> NPYDType {
        switch kind {
        case .code: return .uint8
        case .adc: return .int16
        case .sum: return .int32
        }
    }
    /// Integer file name (`NAME.npy`) and float file name (`NAME.float.npy`).
    public var file: String { name + ".npy" }
    public var floatFile: String { name + ".float.npy" }
    /// Full array shape for `count` images: `[N, C, H, W]`.
    public func arrayShape(count: Int) -> [Int] { [count, shape.c, shape.h, shape.w] }

    /// `(n, c, h, w)` of a flat index into the `[N, C, H, W]` array.
    public func coordinates(ofFlatIndex i: Int) -> (n: Int, c: Int, h: Int, w: Int) {
        let per = Swift.max(shape.count, 1)
        let n = i / per, r = i % per
        let hw = Swift.max(shape.h * shape.w, 1)
        return (n, r / hw, (r % hw) / Swift.max(shape.w, 1), r % Swift.max(shape.w, 1))
    }
}

/// Names of the element kinds in manifests and reports.
extension ElementKind {
    public var goldenName: String {
        switch self {
        case .code: return "code"
        case .adc: return "adc"
        case .sum: return "sum"
        }
    }
    public init?(goldenName: String) {
        switch goldenName {
        case "code": self = .code
        case "adc": self = .adc
        case "sum": self = .sum
        default: return nil
        }
    }
}

public enum GoldenLayout {
    static func padded(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: Swift.max(0, width - s.count)) + s
    }

    /// The comparison points of `program`, in program order.
    public static func points(for program: Program) -> [GoldenPoint] {
        let nodeWidth = Swift.max(2, String(Swift.max(program.nodes.count - 1, 0)).count)
        let inT = program.tensors[program.input]
        var out = [GoldenPoint(name: "input", node: nil, tile: nil, op: "input", tensor: program.input,
                               kind: inT.kind, bits: inT.bits, shape: inT.shape)]
        for (k, node) in program.nodes.enumerated() {
            let stem = "n" + padded(k, nodeWidth) + "_" + node.op.kind.name
            let t = program.tensors[node.output]
            if case .crossbar(let p) = node.op {
                let tileWidth = Swift.max(2, String(Swift.max(p.tiles.count - 1, 0)).count)
                for (j, tile) in p.tiles.enumerated() {
                    out.append(GoldenPoint(name: stem + "_tile" + padded(j, tileWidth), node: k, tile: j, op: "crossbarTile",
                                           tensor: nil, kind: .adc, bits: tile.bits, shape: t.shape))
                }
            }
            if case .rnn(let p) = node.op {
                // per step t: input-matrix tiles, recurrent-matrix tiles, hidden codes (t < T-1) or
                // the combined accumulator z (t = T-1); `tile` = the sub-point index of the trace
                let steps = program.tensors[node.inputs[0]].shape.w
                let stepWidth = String(Swift.max(steps - 1, 0)).count
                let tileWidth = Swift.max(2, String(Swift.max(p.input.tiles.count, p.recurrent.tiles.count) - 1).count)
                let hs = TensorShape(c: p.hiddenSize, h: 1, w: 1)
                var j = 0
                for t in 0..<steps {
                    let st = stem + "_t" + padded(t, stepWidth)
                    for (m, tile) in p.input.tiles.enumerated() {
                        out.append(GoldenPoint(name: st + "_input_tile" + padded(m, tileWidth), node: k, tile: j, op: "rnnInputTile",
                                               tensor: nil, kind: .adc, bits: tile.bits, shape: hs)); j += 1
                    }
                    for (m, tile) in p.recurrent.tiles.enumerated() {
                        out.append(GoldenPoint(name: st + "_recurrent_tile" + padded(m, tileWidth), node: k, tile: j, op: "rnnRecurrentTile",
                                               tensor: nil, kind: .adc, bits: tile.bits, shape: hs)); j += 1
                    }
                    if t < steps - 1 {
                        out.append(GoldenPoint(name: st + "_hidden", node: k, tile: j, op: "rnnHidden",
                                               tensor: nil, kind: .code, bits: p.hiddenBits, shape: hs))
                    } else {
                        out.append(GoldenPoint(name: st + "_state", node: k, tile: j, op: "rnnState",
                                               tensor: nil, kind: .sum, bits: 32, shape: hs))
                    }
                    j += 1
                }
            }
            out.append(GoldenPoint(name: stem, node: k, tile: nil, op: node.op.kind.name, tensor: node.output,
                                   kind: t.kind, bits: t.bits, shape: t.shape))
        }
        return out
    }
}
