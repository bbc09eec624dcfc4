extension Reference {
    /// One element of a residual addition (DATAPATH.md section 16).
    public static func add(_ a: Int64, _ b: Int64, channel c: Int, _ p: AddParams) -> Int64 {
        requantize(a * Int64(p.first.multiplier[c]) + b * Int64(p.secondMultiplier[c]), channel: c, p.first)
    }

    /// A residual addition of two (C,H,W) tensors of one shape.
    public static func add(_ a: [Int32], _ b: [Int32], shape: TensorShape, _ p: AddParams) -> [Int32] {
        var out = [Int32](repeating: 0, count: shape.count)
        for c in 0..<shape.c {
            for y in 0..<shape.h {
                for x in 0..<shape.w {
                    let i = (c * shape.h + y) * shape.w + x
                    out[i] = Int32(add(Int64(a[i]), Int64(b[i]), channel: c, p))
                }
            }
        }
        return out
    }
}
