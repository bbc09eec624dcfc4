import FixedPoint

extension Reference {
    /// One axis of a bilinear upsampling with aligned corners (DATAPATH.md section 18): output
    /// position `o` of `m` (input length `n`) reads source `i = floor(o (n-1) / D)` with weight
    /// `D - f` and source `i + 1` with weight `f`, `f = o (n-1) mod D`, `D = max(m - 1, 1)`.
    public static func upsampleAxis(_ o: Int, input n: Int, output m: Int) -> (i: Int, f: Int, d: Int) {
        let d = UpsampleParams.axisDenominator(output: m)
        let s = o * (n - 1)
        return (s / d, s % d, d)
    }

    /// The exact numerator of one output element: the value times `Dy * Dx`.
    public static func upsampleNumerator(_ x: [Int32], shape s: TensorShape, channel c: Int, y oy: Int, x ox: Int,
                                         output os: TensorShape) -> Int64 {
        let (iy, fy, dy) = upsampleAxis(oy, input: s.h, output: os.h)
        let (ix, fx, dx) = upsampleAxis(ox, input: s.w, output: os.w)
        func v(_ y: Int, _ xx: Int) -> Int64 { Int64(x[(c * s.h + y) * s.w + xx]) }
        var num = Int64((dy - fy) * (dx - fx)) * v(iy, ix)
        // a zero weight's source may lie outside the map: it is not read
        if fx > 0 { num += Int64((dy - fy) * fx) * v(iy, ix + 1) }
        if fy > 0 { num += Int64(fy * (dx - fx)) * v(iy + 1, ix) }
        if fy > 0 && fx > 0 { num += Int64(fy * fx) * v(iy + 1, ix + 1) }
        return num
    }

    /// Bilinear upsampling of a (C,H,W) tensor. `exact`: the numerators (a `.sum` output);
    /// otherwise the numerators divided by `Dy * Dx` with `roundingDivide` and `p.rounding`.
    public static func upsample(_ x: [Int32], shape s: TensorShape, _ p: UpsampleParams, exact: Bool) -> [Int32] {
        let os = p.outputShape(for: s)
        let den = Int64(UpsampleParams.axisDenominator(output: os.h) * UpsampleParams.axisDenominator(output: os.w))
        var out = [Int32](repeating: 0, count: os.count)
        for c in 0..<os.c {
            for oy in 0..<os.h {
                for ox in 0..<os.w {
                    let num = upsampleNumerator(x, shape: s, channel: c, y: oy, x: ox, output: os)
                    out[(c * os.h + oy) * os.w + ox] = Int32(exact ? num : roundingDivide(num, by: den, p.rounding))
                }
            }
        }
        return out
    }
}
