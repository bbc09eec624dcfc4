// Max-pool and global average pooling (docs/DATAPATH.md sections 8 and 19).
import FixedPoint
import Kernels
import Training

extension Lowering {
    /// A max-pool of pixels, codes or sums (max commutes with the positive per-channel scale of
    /// a batch norm without affine parameters, so a pending one stays pending).
    mutating func lowerMaxPool(_ gi: Int, kernel k: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        guard let t = tensor(x) else { throw fail(gi, "max-pool of \(x.name)") }
        let d = tensors[t]
        guard k >= 1, d.shape.h >= k, d.shape.w >= k else { throw fail(gi, "pool window \(k) does not fit \(d.shape)") }
        let os = TensorShape(c: d.shape.c, h: (d.shape.h - k) / k + 1, w: (d.shape.w - k) / k + 1)
        let out = emit(.maxPool(MaxPoolParams(k)), TensorDesc(shape: os, kind: d.kind, bits: d.bits), inputs: [t])
        return Self.moved(x, to: out)
    }

    /// Global average pooling of codes: the exact per-channel sums (no rounding), whose unit is
    /// the codes' unit / (H*W); the next quantizer divides (as an activation of those sums).
    mutating func lowerGlobalAvgPool(_ gi: Int, _ x: LoweredValue) throws(FreezeError) -> LoweredValue {
        guard case .codes(let t, let unit) = x else {
            throw fail(gi, "global average pooling reads quantized codes (a fake-quant node before it), got \(x.name)")
        }
        let s = tensors[t].shape
        let out = emit(.globalAvgPool(GlobalAvgPoolParams(rounding: options.activationRounding)), .sum(TensorShape(c: s.c, h: 1, w: 1)), inputs: [t])
        return .sums(AffineOperand(tensor: out, scale: .fixed(unit / Double(s.h * s.w)), bn: nil))
    }
}
