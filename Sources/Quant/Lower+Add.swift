// The residual addition (docs/DATAPATH.md section 16): two branches, each a weight layer's sums
// with an optional batch norm or quantized codes, become one `add` node at the next quantizer.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerAdd(_ gi: Int, _ xs: [LoweredValue]) throws(FreezeError) -> LoweredValue {
        guard xs.count == 2 else { throw fail(gi, "an addition reads two values, got \(xs.count)") }
        var ops: [AffineOperand] = []
        for (j, x) in xs.enumerated() {
            switch x {
            case .sums(let o): ops.append(o)
            case .codes(let t, let u): ops.append(AffineOperand(tensor: t, scale: .fixed(u), bn: nil))
            default: throw fail(gi, "input \(j) is \(x.name); an addition reads sums or quantized codes")
            }
        }
        guard tensors[ops[0].tensor].shape == tensors[ops[1].tensor].shape else {
            throw fail(gi, "inputs \(tensors[ops[0].tensor].shape) and \(tensors[ops[1].tensor].shape) differ in shape")
        }
        return .pendingAdd(ops)
    }
}
