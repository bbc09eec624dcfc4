extension Reference {
    /// Channel concatenation (DATAPATH.md section 17): the inputs' channels in input order, each
    /// output channel `c` requantized by channel `c` of `p.quant`. All inputs have one height
    /// and width; `shapes[j]` is input `j`'s shape.
    public static func concat(_ inputs: [[Int32]], shapes: [TensorShape], _ p: ConcatParams) -> [Int32] {
        var out: [Int32] = []
        var c0 = 0
        for (x, s) in zip(inputs, shapes) {
            for c in 0..<s.c {
                for i in 0..<(s.h * s.w) {
                    out.append(Int32(affineQuant(Int64(x[c * s.h * s.w + i]), channel: c0 + c, p.quant)))
                }
            }
            c0 += s.c
        }
        return out
    }
}
