import FixedPoint

extension Reference {
    /// The requantization every affine op ends with (DATAPATH.md sections 3, 7, 16, 17): the
    /// already multiplied value `v` (an input times its multiplier, or a sum of such products)
    /// plus the channel's offset, rounded by the channel's shift and clamped to the output codes:
    /// `clamp(roundingShiftRight(v + offset[c], shift[c], rounding), 0, 2^outBits - 1)`.
    public static func requantize(_ v: Int64, channel c: Int, _ p: AffineQuantParams) -> Int64 {
        saturate(roundingShiftRight(v + p.offset[c], Int(p.shift[c]), p.rounding), unsignedBits: p.outBits)
    }

    /// One element of `inputQuant` / `activation` (DATAPATH.md sections 3 and 7).
    public static func affineQuant(_ s: Int64, channel c: Int, _ p: AffineQuantParams) -> Int64 {
        requantize(s * Int64(p.multiplier[c]), channel: c, p)
    }

    /// `inputQuant` / `activation` over a (C,H,W) tensor.
    public static func affineQuant(_ input: [Int32], shape: TensorShape, _ p: AffineQuantParams) -> [Int32] {
        var out = [Int32](repeating: 0, count: shape.count)
        for c in 0..<shape.c {
            for y in 0..<shape.h {
                for x in 0..<shape.w {
                    let i = (c * shape.h + y) * shape.w + x
                    out[i] = Int32(affineQuant(Int64(input[i]), channel: c, p))
                }
            }
        }
        return out
    }
}
