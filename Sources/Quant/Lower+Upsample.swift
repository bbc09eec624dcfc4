// Bilinear upsampling (docs/DATAPATH.md section 18) in its exact form: the numerators of the
// interpolation of codes are a sum tensor whose unit is the codes' unit / (Dy Dx), so the next
// quantizer (an activation, or a concatenation's) rounds once, at its own scale.
import FixedPoint
import Kernels
import Training

extension Lowering {
    mutating func lowerUpsample(_ gi: Int, factor: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        guard case .codes(let t, let unit) = x else {
            throw fail(gi, "upsampling reads quantized codes (a fake-quant node before it), got \(x.name)")
        }
        guard (1...UpsampleParams.maxFactor).contains(factor) else { throw fail(gi, "factor \(factor) outside 1...\(UpsampleParams.maxFactor)") }
        let s = tensors[t].shape
        let os = TensorShape(c: s.c, h: s.h * factor, w: s.w * factor)
        let d = UpsampleParams.axisDenominator(output: os.h) * UpsampleParams.axisDenominator(output: os.w)
        let out = emit(.upsampleBilinear(UpsampleParams(factorH: factor, factorW: factor, rounding: options.activationRounding)), .sum(os), inputs: [t])
        return .sums(AffineOperand(tensor: out, scale: .fixed(unit / Double(d)), bn: nil))
    }
}
