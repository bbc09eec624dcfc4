// Channel concatenation (docs/DATAPATH.md section 17): its inputs (codes of one scale or
// another, exact upsampled sums, a weight layer's sums with a batch norm) meet at the scale of
// the quantizer that follows; one `concat` node requantizes each input's channels.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerConcat(_ gi: Int, _ xs: [LoweredValue]) throws(FreezeError) -> LoweredValue {
        guard (2...Program.maxNodeInputs).contains(xs.count) else {
            throw fail(gi, "a concatenation reads 2...\(Program.maxNodeInputs) values, got \(xs.count)")
        }
        let ops = try affineOperands(gi, xs, of: "a concatenation")
        let s0 = tensors[ops[0].tensor].shape
        for (j, o) in ops.enumerated() where tensors[o.tensor].shape.h != s0.h || tensors[o.tensor].shape.w != s0.w {
            throw fail(gi, "input \(j) is \(tensors[o.tensor].shape), input 0 \(s0): the heights and widths differ")
        }
        return .pendingConcat(ops)
    }
}
