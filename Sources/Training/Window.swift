// Stride-1 convolution as products over shifted windows: no im2col, no col2im, no transposes.
//
// With stride 1, row k = (c, ky, kx) of a sample's im2col matrix is a contiguous window of its
// zero-padded input (planes Hp x Wp), provided the output is computed over the padded width:
// output position q = oy * Wp + ox (ox in 0..<Wp; columns ox >= OW are computed and discarded)
// reads X[off[k] + q] with off[k] = (c * Hp + ky) * Wp + kx. The three products of Conv2d are
//
//   forward  Y[co, q]  = sum_k W[co, k] X[off[k] + q]                           `product`
//   weights  dW[co, k] = sum_s sum_q dY_s[co, q] X_s[off[k] + q]                 `dot`
//                        (dY zero in the discarded columns, so they add nothing)
//   inputs   dX[c, p]  = sum_(co,ky,kx) W[co, c, ky, kx] dY[co, p - ky Wp - kx]  `product`
//                        (dY rows with a zero margin in front; p indexes the padded input)
//
// Rows are read 8 floats at a time from the callers' scratch, whose slack past every row is
// zero, so a vector that runs past a row's end reads only zeros or discarded columns. The
// summation order of every output depends only on the shapes (k in increasing order; `dot`
// sums each sample's lanes, then samples in order, then lanes in a fixed tree), never on the
// thread count.
public enum Window {
    /// Packs A(i, kk) = value(i, kk) (m x k) into row panels of `Gemm.mr`:
    /// dst[panel * k * mr + kk * mr + ii], zero-padded. Same layout as `Gemm.packA`.
    @inlinable
    public static func pack(m: Int, k: Int, into dst: UnsafeMutablePointer<Float>, _ value: (Int, Int) -> Float) {
        let mr = Gemm.mr
        var d = dst, i0 = 0
        while i0 < m {
            for kk in 0..<k { for ii in 0..<mr { d[kk * mr + ii] = i0 + ii < m ? value(i0 + ii, kk) : 0 } }
            d += k * mr
            i0 += mr
        }
    }

    /// C[i * ldc + j] = sum_kk A(i, kk) base[off[kk] + j] for i < m, j < 8 * nvec; `a` packed
    /// by `pack` (or `Gemm.packA`). Overwrites C; ldc >= 8 * nvec.
    @inlinable
    public static func product(m: Int, nvec: Int, k: Int, a: UnsafePointer<Float>, off: UnsafePointer<Int>,
                               base: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int) {
        var i0 = 0, ap = a
        while i0 < m {
            let h = min(Gemm.mr, m - i0)
            for jv in 0..<nvec {
                let b = base + 8 * jv
                var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>()
                var c3 = SIMD8<Float>(), c4 = SIMD8<Float>(), c5 = SIMD8<Float>()
                var pa = ap
                for kk in 0..<k {
                    let bv = UnsafeRawPointer(b + off[kk]).loadUnaligned(as: SIMD8<Float>.self)
                    c0 += bv * pa[0]
                    c1 += bv * pa[1]
                    c2 += bv * pa[2]
                    c3 += bv * pa[3]
                    c4 += bv * pa[4]
                    c5 += bv * pa[5]
                    pa += 6
                }
                let cp = UnsafeMutableRawPointer(c + i0 * ldc + 8 * jv), row = 4 * ldc
                cp.storeBytes(of: c0, as: SIMD8<Float>.self)
                if h > 1 { cp.storeBytes(of: c1, toByteOffset: row, as: SIMD8<Float>.self) }
                if h > 2 { cp.storeBytes(of: c2, toByteOffset: 2 * row, as: SIMD8<Float>.self) }
                if h > 3 { cp.storeBytes(of: c3, toByteOffset: 3 * row, as: SIMD8<Float>.self) }
                if h > 4 { cp.storeBytes(of: c4, toByteOffset: 4 * row, as: SIMD8<Float>.self) }
                if h > 5 { cp.storeBytes(of: c5, toByteOffset: 5 * row, as: SIMD8<Float>.self) }
            }
            ap += k * Gemm.mr
            i0 += Gemm.mr
        }
    }

    /// C[i * ldc + kk] (+)= sum_(s < samples) sum_(q < 8 nvec) a[s * aStride + i * aRow + q]
    /// * base[s * bStride + off[kk] + q], for i < m, kk < k. `add` false overwrites C.
    @inlinable
    public static func dot(m: Int, k: Int, nvec: Int, samples: Int,
                           a: UnsafePointer<Float>, aRow: Int, aStride: Int,
                           base: UnsafePointer<Float>, bStride: Int, off: UnsafePointer<Int>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
        // 2 x 3 tiles; a short edge tile repeats its last row / column and does not store it.
        var i0 = 0
        while i0 < m {
            let i1 = min(i0 + 1, m - 1)
            var k0 = 0
            while k0 < k {
                let k1 = min(k0 + 1, k - 1), k2 = min(k0 + 2, k - 1)
                var t00: Float = 0, t01: Float = 0, t02: Float = 0, t10: Float = 0, t11: Float = 0, t12: Float = 0
                for s in 0..<samples {
                    let a0 = a + s * aStride + i0 * aRow, a1 = a + s * aStride + i1 * aRow
                    let bs = base + s * bStride
                    let b0 = bs + off[k0], b1 = bs + off[k1], b2 = bs + off[k2]
                    var s00 = SIMD8<Float>(), s01 = SIMD8<Float>(), s02 = SIMD8<Float>()
                    var s10 = SIMD8<Float>(), s11 = SIMD8<Float>(), s12 = SIMD8<Float>()
                    for v in 0..<nvec {
                        let x0 = load(a0 + 8 * v), x1 = load(a1 + 8 * v)
                        var y = load(b0 + 8 * v)
                        s00 += x0 * y; s10 += x1 * y
                        y = load(b1 + 8 * v)
                        s01 += x0 * y; s11 += x1 * y
                        y = load(b2 + 8 * v)
                        s02 += x0 * y; s12 += x1 * y
                    }
                    t00 += sum(s00); t01 += sum(s01); t02 += sum(s02)
                    t10 += sum(s10); t11 += sum(s11); t12 += sum(s12)
                }
                put(t00, c + i0 * ldc + k0, add)
                if k1 > k0 { put(t01, c + i0 * ldc + k1, add) }
                if k2 > k1 { put(t02, c + i0 * ldc + k2, add) }
                if i1 > i0 {
                    put(t10, c + i1 * ldc + k0, add)
                    if k1 > k0 { put(t11, c + i1 * ldc + k1, add) }
                    if k2 > k1 { put(t12, c + i1 * ldc + k2, add) }
                }
                k0 += 3
            }
            i0 += 2
        }
    }

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

    /// The lanes' sum in a fixed tree: ((0+4) + (2+6)) + ((1+5) + (3+7)).
    @inlinable @inline(__always)
    static func sum(_ v: SIMD8<Float>) -> Float {
        let h = v.lowHalf + v.highHalf
        let q = h.lowHalf + h.highHalf
        return q[0] + q[1]
    }

    @inlinable @inline(__always)
    static func put(_ v: Float, _ p: UnsafeMutablePointer<Float>, _ add: Bool) {
        if add { p.pointee += v } else { p.pointee = v }
    }
}
