// Which build of the float kernels runs: FloatKernels (baseline code for the architecture) or,
// on x86-64 CPUs with AVX2, FloatKernelsAVX2 (the same source compiled for Haswell-class
// CPUs). Both give bit-identical results (same operations in the same order; no FMA
// contraction), so the choice changes speed only. `RRAM_EDGE_FLOAT_KERNELS=portable` forces the
// baseline build (e.g. to measure what the AVX2 build buys).
import FloatKernels
#if RRAM_EDGE_FLOAT_AVX2
import FloatKernelsAVX2
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum FloatKernelBuild: String, Sendable, CaseIterable {
    case portable, avx2
}

public enum FloatDispatch {
    /// The environment variable that overrides the choice.
    public static let environmentKey = "RRAM_EDGE_FLOAT_KERNELS"

    /// Builds this binary has and this CPU can run.
    public static let available: [FloatKernelBuild] = {
        #if RRAM_EDGE_FLOAT_AVX2
        if cpuRunsHaswellCode() { return [.portable, .avx2] }
        #endif
        return [.portable]
    }()

    /// The build in use: the environment's choice when it names an available build, else the
    /// fastest available one. `edgecli` rejects an unknown or unavailable value before any work.
    public static let selected: FloatKernelBuild = {
        if let v = getenv(environmentKey).map({ String(cString: $0) }), let b = FloatKernelBuild(rawValue: v), available.contains(b) { return b }
        return available.last!
    }()

    /// nil when the environment variable is unset or valid; else what is wrong with it.
    public static var environmentProblem: String? {
        guard let raw = getenv(environmentKey) else { return nil }
        let v = String(cString: raw)
        guard let b = FloatKernelBuild(rawValue: v) else {
            return "\(environmentKey)='\(v)' is not one of \(FloatKernelBuild.allCases.map(\.rawValue).joined(separator: ", "))"
        }
        guard available.contains(b) else { return "\(environmentKey)=\(v): this binary or CPU has only \(available.map(\.rawValue).joined(separator: ", "))" }
        return nil
    }

    /// The CPU features `-target-cpu haswell` may use, as Linux reports them (the kernel clears
    /// AVX flags when the OS does not save the YMM registers). Elsewhere: false.
    static func cpuRunsHaswellCode() -> Bool {
        #if os(Linux)
        guard let f = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil, cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            guard s.hasPrefix("flags") else { continue }
            let flags = Set(s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init))
            return ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt", "abm"].allSatisfy(flags.contains)
        }
        return false
        #else
        return false
        #endif
    }
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
