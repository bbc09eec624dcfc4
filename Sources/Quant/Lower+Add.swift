// The residual addition (docs/DATAPATH.md section 16): two branches, each a weight layer's sums
// with an optional batch norm or quantized codes, become one `add` node at the next quantizer.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerAdd(_ gi: Int, _ xs: [LoweredValue]) throws(FreezeError) -> LoweredValue {
        guard xs.count == 2 else { throw fail(gi, "an addition reads two values, got \(xs.count)") }
        let ops = try affineOperands(gi, xs, of: "an addition")
        guard tensors[ops[0].tensor].shape == tensors[ops[1].tensor].shape else {
            throw fail(gi, "inputs \(tensors[ops[0].tensor].shape) and \(tensors[ops[1].tensor].shape) differ in shape")
        }
        return .pendingAdd(ops)
    }
}
