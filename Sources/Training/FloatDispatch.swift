// Which build of the float kernels runs: FloatKernels (baseline code for the architecture) or,
// on x86-64 CPUs with AVX2, FloatKernelsAVX2 (the same source compiled for Haswell-class
// CPUs). Both give bit-identical results (same operations in the same order; no FMA
// contraction), so the choice changes speed only. `RRAM_EDGE_FLOAT_KERNELS=portable` forces the
// baseline build (e.g. to measure what the AVX2 build buys).
import CPUFeatures
import FloatKernels
#if RRAM_EDGE_FLOAT_AVX2
import FloatKernelsAVX2
#endif

public enum FloatKernelBuild: String, Sendable, CaseIterable {
    case portable, avx2
}

public enum FloatDispatch {
    /// The environment variable that overrides the choice.
    public static let environmentKey = "RRAM_EDGE_FLOAT_KERNELS"

    /// Builds this binary has and this CPU can run.
    public static let choice = KernelBuildChoice<FloatKernelBuild>(key: environmentKey, available: {
        #if RRAM_EDGE_FLOAT_AVX2
        if CPUFeatures.runsHaswellCode { return [.portable, .avx2] }
        #endif
        return [.portable]
    }())
    public static var available: [FloatKernelBuild] { choice.available }

    /// The build in use: the environment's choice when it names an available build, else the
    /// fastest available one. `edgecli` rejects an unknown or unavailable value before any work.
    public static var selected: FloatKernelBuild { choice.selected }

    /// nil when the environment variable is unset or valid; else what is wrong with it.
    public static var environmentProblem: String? { choice.problem }
}

/// Scratch of one GEMM caller (one per worker).
public final class GemmWorkspace: @unchecked Sendable {
    public let packA: FloatBuffer
    public let packB: FloatBuffer
    public init() {
        packA = FloatBuffer(count: Gemm.mc * Gemm.kc)
        packB = FloatBuffer(count: Gemm.kc * Gemm.nc)
    }
}

/// Training's matrix multiply: `GemmKernel` of the selected build.
public enum Gemm {
    /// Block sizes (the workspace's packed panels hold mc x kc and kc x nc floats).
    public static let kc = FloatKernels.GemmKernel.kc, mc = FloatKernels.GemmKernel.mc, nc = FloatKernels.GemmKernel.nc

    /// C[i*ldc + j] (+)= sum_k A(i,k) B(k,j) with A(i,k) = a[i*ars + k*acs], B(k,j) = b[k*brs + j*bcs].
    /// `accumulate` false overwrites C.
    @inline(__always)
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, ars: Int, acs: Int,
                                b: UnsafePointer<Float>, brs: Int, bcs: Int,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                accumulate: Bool, ws: GemmWorkspace) {
        #if RRAM_EDGE_FLOAT_AVX2
        if FloatDispatch.selected == .avx2 {
            FloatKernelsAVX2.GemmKernel.multiply(m: m, n: n, k: k, a: a, ars: ars, acs: acs, b: b, brs: brs, bcs: bcs, c: c, ldc: ldc,
                                                 accumulate: accumulate, pa: ws.packA.ptr, pb: ws.packB.ptr)
            return
        }
        #endif
        FloatKernels.GemmKernel.multiply(m: m, n: n, k: k, a: a, ars: ars, acs: acs, b: b, brs: brs, bcs: bcs, c: c, ldc: ldc,
                                         accumulate: accumulate, pa: ws.packA.ptr, pb: ws.packB.ptr)
    }
}

/// Training's window products (stride-1 convolution): `WindowKernel` of the selected build.
public enum Window {
    /// Rows per panel of `product`'s packed A.
    public static let mr = FloatKernels.WindowKernel.mr

    /// Packs A(i, kk) = value(i, kk) (m x k) for `product`: a[panel * k * mr + kk * mr + ii], zero-padded.
    @inlinable
    public static func pack(m: Int, k: Int, into dst: UnsafeMutablePointer<Float>, _ value: (Int, Int) -> Float) {
        var d = dst, i0 = 0
        while i0 < m {
            for kk in 0..<k { for ii in 0..<mr { d[kk * mr + ii] = i0 + ii < m ? value(i0 + ii, kk) : 0 } }
            d += k * mr
            i0 += mr
        }
    }

    @inline(__always)
    public static func product(m: Int, nvec: Int, k: Int, a: UnsafePointer<Float>, off: UnsafePointer<Int>,
                               base: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int) {
        #if RRAM_EDGE_FLOAT_AVX2
        if FloatDispatch.selected == .avx2 {
            FloatKernelsAVX2.WindowKernel.product(m: m, nvec: nvec, k: k, a: a, off: off, base: base, c: c, ldc: ldc)
            return
        }
        #endif
        FloatKernels.WindowKernel.product(m: m, nvec: nvec, k: k, a: a, off: off, base: base, c: c, ldc: ldc)
    }

    @inline(__always)
    public static func dot(m: Int, k: Int, nvec: Int, samples: Int,
                           a: UnsafePointer<Float>, aRow: Int, aStride: Int,
                           base: UnsafePointer<Float>, bStride: Int, off: UnsafePointer<Int>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
        #if RRAM_EDGE_FLOAT_AVX2
        if FloatDispatch.selected == .avx2 {
            FloatKernelsAVX2.WindowKernel.dot(m: m, k: k, nvec: nvec, samples: samples, a: a, aRow: aRow, aStride: aStride,
                                              base: base, bStride: bStride, off: off, c: c, ldc: ldc, add: add)
            return
        }
        #endif
        FloatKernels.WindowKernel.dot(m: m, k: k, nvec: nvec, samples: samples, a: a, aRow: aRow, aStride: aStride,
                                      base: base, bStride: bStride, off: off, c: c, ldc: ldc, add: add)
    }
}
