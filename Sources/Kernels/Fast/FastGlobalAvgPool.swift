// Fast global average pooling on an HWC buffer (DATAPATH.md section 19).

import FixedPoint

extension Fast {
    /// `dst[c] = roundingDivide(sum over pixels of src[p*C + c], pixels, rounding)`, or the sum
    /// itself when `exact` (a `.sum` output).
    @inlinable
    public static func globalAvgPool<S: FixedWidthInteger, D: FixedWidthInteger>(src: UnsafePointer<S>, dst: UnsafeMutablePointer<D>, shape: TensorShape,
                                                                                rounding: RoundingRule, exact: Bool = false) {
        let c = shape.c, n = shape.h &* shape.w
        for ch in 0..<c {
            // n < 2^31 values of |v| < 2^31: the Int64 sum cannot wrap
            var s: Int64 = 0
            var p = src + ch
            for _ in 0..<n { s &+= Int64(p[0]); p += c }
            dst[ch] = D(truncatingIfNeeded: exact ? s : roundingDivide(s, by: Int64(n), rounding))
        }
    }
}
