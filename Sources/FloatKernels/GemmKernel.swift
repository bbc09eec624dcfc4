// FloatKernels: the float pipeline's hot loops, plain Swift SIMD, no dependencies. This module
// is compiled twice on x86-64: as itself (baseline x86-64, SSE2) and as FloatKernelsAVX2 (the
// same files through symbolic links, `-target-cpu haswell`); Training's FloatDispatch picks one
// at startup. Both compute the same IEEE operations in the same order (Swift does not contract
// a * b + c into FMA), so they agree bit for bit; a test checks it. Entry points are
// `@inline(never)` so that callers in other modules call this module's code instead of
// inlining it at their own target CPU.
//
// Cache-blocked single-precision matrix multiply (GotoBLAS loop order) on SIMD8<Float>
// register tiles of 6 x 8 (12 SSE or 6 AVX accumulators: fits the 16 vector registers of any
// x86-64 or ARM64 core). Operands are read through general strides, so transposed operands
// cost nothing but the packing. The summation order of every output element depends only on
// K (blocks of `kc` in increasing k), never on M, N or the thread count.

public enum GemmKernel {
    public static let mr = 6
    public static let nr = 8
    public static let kc = 256
    public static let mc = 96
    public static let nc = 512

    /// C[i*ldc + j] (+)= sum_k A(i,k) B(k,j) with A(i,k) = a[i*ars + k*acs], B(k,j) = b[k*brs + j*bcs].
    /// `accumulate` false overwrites C. Scratch: `pa` holds mc * kc floats, `pb` kc * nc.
    @inline(never)
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, ars: Int, acs: Int,
                                b: UnsafePointer<Float>, brs: Int, bcs: Int,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                accumulate: Bool, pa: UnsafeMutablePointer<Float>, pb: UnsafeMutablePointer<Float>) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        var jc = 0
        while jc < n {
            let ncur = min(nc, n - jc)
            var pc = 0
            while pc < k {
                let kcur = min(kc, k - pc)
                packB(b + pc * brs + jc * bcs, brs: brs, bcs: bcs, k: kcur, n: ncur, into: pb)
                var ic = 0
                while ic < m {
                    let mcur = min(mc, m - ic)
                    packA(a + ic * ars + pc * acs, ars: ars, acs: acs, m: mcur, k: kcur, into: pa)
                    let add = accumulate || pc > 0
                    var jr = 0
                    while jr < ncur {
                        let nrr = min(nr, ncur - jr)
                        var ir = 0
                        while ir < mcur {
                            let mrr = min(mr, mcur - ir)
                            kernel(kc: kcur, a: pa + ir * kcur, b: pb + jr * kcur,
                                   c: c + (ic + ir) * ldc + jc + jr, ldc: ldc, m: mrr, n: nrr, add: add)
                            ir += mr
                        }
                        jr += nr
                    }
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// Panels of `nr` columns: dst[panel*k*nr + kk*nr + jj], zero-padded.
    @inline(__always)
    static func packB(_ b: UnsafePointer<Float>, brs: Int, bcs: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        var j0 = 0
        var d = dst
        while j0 < n {
            let w = min(nr, n - j0)
            if w == nr && bcs == 1 {
                for kk in 0..<k {
                    let s = b + kk * brs + j0
                    let v = UnsafeRawPointer(s).loadUnaligned(as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(d + kk * nr).storeBytes(of: v, as: SIMD8<Float>.self)
                }
            } else if w == nr && brs == 1 {
                for jj in 0..<nr {
                    let s = b + (j0 + jj) * bcs
                    for kk in 0..<k { d[kk * nr + jj] = s[kk] }
                }
            } else {
                for kk in 0..<k {
                    let s = b + kk * brs + j0 * bcs
                    for jj in 0..<nr { d[kk * nr + jj] = jj < w ? s[jj * bcs] : 0 }
                }
            }
            d += k * nr
            j0 += nr
        }
    }

    /// Panels of `mr` rows: dst[panel*k*mr + kk*mr + ii], zero-padded.
    @inline(__always)
    static func packA(_ a: UnsafePointer<Float>, ars: Int, acs: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        var i0 = 0
        var d = dst
        while i0 < m {
            let h = min(mr, m - i0)
            if acs == 1 {
                for ii in 0..<mr {
                    if ii < h {
                        let s = a + (i0 + ii) * ars
                        for kk in 0..<k { d[kk * mr + ii] = s[kk] }
                    } else {
                        for kk in 0..<k { d[kk * mr + ii] = 0 }
                    }
                }
            } else {
                for kk in 0..<k {
                    let s = a + i0 * ars + kk * acs
                    for ii in 0..<mr { d[kk * mr + ii] = ii < h ? s[ii * ars] : 0 }
                }
            }
            d += k * mr
            i0 += mr
        }
    }

    @inline(__always)
    static func kernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                       c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, add: Bool) {
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>()
        var c3 = SIMD8<Float>(), c4 = SIMD8<Float>(), c5 = SIMD8<Float>()
        var pa = a, pb = b
        for _ in 0..<kc {
            let bv = UnsafeRawPointer(pb).loadUnaligned(as: SIMD8<Float>.self)
            c0 += bv * pa[0]
            c1 += bv * pa[1]
            c2 += bv * pa[2]
            c3 += bv * pa[3]
            c4 += bv * pa[4]
            c5 += bv * pa[5]
            pa += 6
            pb += 8
        }
        if m == 6 && n == 8 {
            store(c0, c, add); store(c1, c + ldc, add); store(c2, c + 2 * ldc, add)
            store(c3, c + 3 * ldc, add); store(c4, c + 4 * ldc, add); store(c5, c + 5 * ldc, add)
        } else {
            let rows = (c0, c1, c2, c3, c4, c5)
            for i in 0..<m {
                let r: SIMD8<Float>
                switch i {
                case 0: r = rows.0
                case 1: r = rows.1
                case 2: r = rows.2
                case 3: r = rows.3
                case 4: r = rows.4
                default: r = rows.5
                }
                let row = c + i * ldc
                if add { for j in 0..<n { row[j] += r[j] } } else { for j in 0..<n { row[j] = r[j] } }
            }
        }
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ add: Bool) {
        let raw = UnsafeMutableRawPointer(p)
        if add {
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self) + v, as: SIMD8<Float>.self)
        } else {
            raw.storeBytes(of: v, as: SIMD8<Float>.self)
        }
    }
}
