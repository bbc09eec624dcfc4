import FixedPoint

extension Reference {
    /// Global average pooling (DATAPATH.md section 19): per channel, the Int64 sum over the map;
    /// `exact` (a `.sum` output) keeps the sum, otherwise it is divided by `H * W` with
    /// `roundingDivide` and `p.rounding`.
    public static func globalAvgPool(_ x: [Int32], shape s: TensorShape, _ p: GlobalAvgPoolParams, exact: Bool = false) -> [Int32] {
        let hw = s.h * s.w
        var out = [Int32](repeating: 0, count: s.c)
        for c in 0..<s.c {
            var sum: Int64 = 0
            for i in 0..<hw { sum += Int64(x[c * hw + i]) }
            out[c] = Int32(exact ? sum : roundingDivide(sum, by: Int64(hw), p.rounding))
        }
        return out
    }
}
