extension Reference {
    /// Max-pool without padding (DATAPATH.md section 8).
    public static func maxPool(_ input: [Int32], shape: TensorShape, _ p: MaxPoolParams) -> [Int32] {
        let oh = (shape.h - p.kh) / p.sh + 1, ow = (shape.w - p.kw) / p.sw + 1
        var out = [Int32](repeating: 0, count: shape.c * oh * ow)
        for c in 0..<shape.c {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var m = Int32.min
                    for dy in 0..<p.kh {
                        for dx in 0..<p.kw {
                            m = max(m, input[(c * shape.h + oy * p.sh + dy) * shape.w + ox * p.sw + dx])
                        }
                    }
                    out[(c * oh + oy) * ow + ox] = m
                }
            }
        }
        return out
    }
}
