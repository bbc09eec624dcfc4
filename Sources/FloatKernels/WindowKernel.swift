// (FloatKernels; see GemmKernel.swift for the two builds.)
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
// keeps eight lanes over the samples and vectors in order, then adds the lanes in a fixed
// tree), never on the thread count.
public enum WindowKernel {
    /// Rows per panel of `product`'s packed A.
    public static let mr = 4

    /// C[i * ldc + j] = sum_kk A(i, kk) base[off[kk] + j] for i < m, j < 8 * nvec; `a` packed
    /// in panels of `mr` rows: a[panel * k * mr + kk * mr + ii], zero-padded. Overwrites C;
    /// ldc >= 8 * nvec.
    @inline(never)
    public static func product(m: Int, nvec: Int, k: Int, a: UnsafePointer<Float>, off: UnsafePointer<Int>,
                               base: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int) {
        var i0 = 0, ap = a
        while i0 < m {
            let h = min(mr, m - i0)
            var jv = 0
            // 4 x 16 tiles (8 accumulators: without FMA a product needs a register of its own,
            // and 6 x 16 would spill), then a 4 x 8 tile for an odd last vector
            while jv + 1 < nvec {
                let b = base + 8 * jv
                var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
                var d0 = SIMD8<Float>(), d1 = SIMD8<Float>(), d2 = SIMD8<Float>(), d3 = SIMD8<Float>()
                var pa = ap
                for kk in 0..<k {
                    let p = b + off[kk]
                    let u = load(p), v = load(p + 8)
                    var s = SIMD8<Float>(repeating: pa[0]); c0 += u * s; d0 += v * s
                    s = SIMD8<Float>(repeating: pa[1]); c1 += u * s; d1 += v * s
                    s = SIMD8<Float>(repeating: pa[2]); c2 += u * s; d2 += v * s
                    s = SIMD8<Float>(repeating: pa[3]); c3 += u * s; d3 += v * s
                    pa += 4
                }
                storeRows(c + i0 * ldc + 8 * jv, ldc, h, c0, c1, c2, c3)
                storeRows(c + i0 * ldc + 8 * jv + 8, ldc, h, d0, d1, d2, d3)
                jv += 2
            }
            if jv < nvec {
                let b = base + 8 * jv
                var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
                var pa = ap
                for kk in 0..<k {
                    let u = load(b + off[kk])
                    c0 += u * pa[0]
                    c1 += u * pa[1]
                    c2 += u * pa[2]
                    c3 += u * pa[3]
                    pa += 4
                }
                storeRows(c + i0 * ldc + 8 * jv, ldc, h, c0, c1, c2, c3)
            }
            ap += k * mr
            i0 += mr
        }
    }

    /// Stores the first `h` of four row vectors at rows p, p + ldc, ...
    @inline(__always)
    static func storeRows(_ p: UnsafeMutablePointer<Float>, _ ldc: Int, _ h: Int,
                          _ c0: SIMD8<Float>, _ c1: SIMD8<Float>, _ c2: SIMD8<Float>, _ c3: SIMD8<Float>) {
        let cp = UnsafeMutableRawPointer(p), row = 4 * ldc
        cp.storeBytes(of: c0, as: SIMD8<Float>.self)
        if h > 1 { cp.storeBytes(of: c1, toByteOffset: row, as: SIMD8<Float>.self) }
        if h > 2 { cp.storeBytes(of: c2, toByteOffset: 2 * row, as: SIMD8<Float>.self) }
        if h > 3 { cp.storeBytes(of: c3, toByteOffset: 3 * row, as: SIMD8<Float>.self) }
    }

    /// C[i * ldc + kk] (+)= sum_(s < samples) sum_(q < 8 nvec) a[s * aStride + i * aRow + q]
    /// * base[s * bStride + off[kk] + q], for i < m, kk < k. `add` false overwrites C.
    @inline(never)
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
                var s00 = SIMD8<Float>(), s01 = SIMD8<Float>(), s02 = SIMD8<Float>()
                var s10 = SIMD8<Float>(), s11 = SIMD8<Float>(), s12 = SIMD8<Float>()
                for s in 0..<samples {
                    let a0 = a + s * aStride + i0 * aRow, a1 = a + s * aStride + i1 * aRow
                    let bs = base + s * bStride
                    let b0 = bs + off[k0], b1 = bs + off[k1], b2 = bs + off[k2]
                    for v in 0..<nvec {
                        let x0 = load(a0 + 8 * v), x1 = load(a1 + 8 * v)
                        var y = load(b0 + 8 * v)
                        s00 += x0 * y; s10 += x1 * y
                        y = load(b1 + 8 * v)
                        s01 += x0 * y; s11 += x1 * y
                        y = load(b2 + 8 * v)
                        s02 += x0 * y; s12 += x1 * y
                    }
                }
                let t00 = laneSum(s00), t01 = laneSum(s01), t02 = laneSum(s02), t10 = laneSum(s10), t11 = laneSum(s11), t12 = laneSum(s12)
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

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

    /// The lanes' sum in a fixed tree: ((0+4) + (2+6)) + ((1+5) + (3+7)). (Also Training's
    /// vectorised reductions.)
    @inlinable @inline(__always)
    public static func laneSum(_ v: SIMD8<Float>) -> Float {
        let h = v.lowHalf + v.highHalf
        let q = h.lowHalf + h.highHalf
        return q[0] + q[1]
    }

    @inline(__always)
    static func put(_ v: Float, _ p: UnsafeMutablePointer<Float>, _ add: Bool) {
        if add { p.pointee += v } else { p.pointee = v }
    }
}
