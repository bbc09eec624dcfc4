import FixedPoint

extension Reference {
    /// One element of `inputQuant` / `activation` (DATAPATH.md sections 3 and 7).
    public static func affineQuant(_ s: Int64, channel c: Int, _ p: AffineQuantParams) -> Int64 {
        let v = s * Int64(p.multiplier[c]) + p.offset[c]
        return saturate(roundingShiftRight(v, Int(p.shift[c]), p.rounding), unsignedBits: p.outBits)
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
