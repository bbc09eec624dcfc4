import XCTest
import Randomness
@testable import Training
import FloatKernels
#if RRAM_EDGE_FLOAT_AVX2
import FloatKernelsAVX2
#endif

/// The two builds of the float kernels (FloatDispatch.swift) must agree bit for bit: the AVX2
/// build is only faster. Compared with `==` on every element, over edge shapes.
final class FloatKernelBuildTests: XCTestCase {
    func random(_ n: Int, seed: UInt64) -> [Float] {
        var r = Xoshiro256StarStar(seed: seed)
        return (0..<n).map { _ in Float(r.uniform(-1, 1)) }
    }

    func firstMismatch(_ a: [Float], _ b: [Float]) -> String? {
        guard a.count == b.count else { return "lengths \(a.count) and \(b.count)" }
        for i in a.indices where a[i].bitPattern != b[i].bitPattern { return "index \(i): portable \(a[i]), avx2 \(b[i])" }
        return nil
    }

    func testAVX2BuildIsBitIdenticalToPortable() throws {
        #if RRAM_EDGE_FLOAT_AVX2
        guard FloatDispatch.available.contains(.avx2) else { throw XCTSkip("this CPU cannot run the AVX2 build of the float kernels") }
        let pa = FloatBuffer(count: Gemm.mc * Gemm.kc), pb = FloatBuffer(count: Gemm.kc * Gemm.nc)
        for (t, (m, n, k)) in [(1, 1, 1), (7, 9, 5), (13, 17, 300), (16, 600, 576), (30, 70, 600)].enumerated() {
            let a = random(m * k, seed: 1 + UInt64(t)), b = random(k * n, seed: 9 + UInt64(t)), c0 = random(m * n, seed: 17)
            for (transA, transB, acc) in [(false, false, false), (true, false, true), (false, true, true), (true, true, false)] {
                let (ars, acs) = transA ? (1, m) : (k, 1)
                let (brs, bcs) = transB ? (1, k) : (n, 1)
                var out: [[Float]] = []
                for avx in [false, true] {
                    var c = c0
                    c.withUnsafeMutableBufferPointer { pc in
                        if avx {
                            FloatKernelsAVX2.GemmKernel.multiply(m: m, n: n, k: k, a: a, ars: ars, acs: acs, b: b, brs: brs, bcs: bcs,
                                                                 c: pc.baseAddress!, ldc: n, accumulate: acc, pa: pa.ptr, pb: pb.ptr)
                        } else {
                            FloatKernels.GemmKernel.multiply(m: m, n: n, k: k, a: a, ars: ars, acs: acs, b: b, brs: brs, bcs: bcs,
                                                             c: pc.baseAddress!, ldc: n, accumulate: acc, pa: pa.ptr, pb: pb.ptr)
                        }
                    }
                    out.append(c)
                }
                if let e = firstMismatch(out[0], out[1]) { XCTFail("GEMM \(m)x\(n)x\(k) tA\(transA) tB\(transB): \(e)") }
            }
        }
        // window products and dots: offsets as a 3x3 convolution over 12-wide planes
        for (m, k, nvec, samples) in [(16, 576, 15, 8), (5, 7, 1, 1), (64, 144, 18, 3), (1, 2, 2, 5)] {
            let rowLen = 8 * nvec + 64
            let off = (0..<k).map { ($0 % 9) / 3 * 12 + $0 % 3 + ($0 / 9) * 3 }
            let base = random(samples * (rowLen + k * 3 + 40), seed: 31), a = random(samples * m * rowLen, seed: 37)
            let bStride = rowLen + k * 3 + 40
            let packed = FloatBuffer(count: (m + Window.mr - 1) / Window.mr * Window.mr * k)
            Window.pack(m: m, k: k, into: packed.ptr) { i, kk in a[i * k + kk] }
            var prod: [[Float]] = [], dot: [[Float]] = []
            for avx in [false, true] {
                var c = [Float](repeating: .nan, count: m * 8 * nvec), d = random(m * k, seed: 41)
                c.withUnsafeMutableBufferPointer { pc in d.withUnsafeMutableBufferPointer { pd in
                    if avx {
                        FloatKernelsAVX2.WindowKernel.product(m: m, nvec: nvec, k: k, a: packed.ptr, off: off, base: base, c: pc.baseAddress!, ldc: 8 * nvec)
                        FloatKernelsAVX2.WindowKernel.dot(m: m, k: k, nvec: nvec, samples: samples, a: a, aRow: rowLen, aStride: m * rowLen,
                                                          base: base, bStride: bStride, off: off, c: pd.baseAddress!, ldc: k, add: true)
                    } else {
                        FloatKernels.WindowKernel.product(m: m, nvec: nvec, k: k, a: packed.ptr, off: off, base: base, c: pc.baseAddress!, ldc: 8 * nvec)
                        FloatKernels.WindowKernel.dot(m: m, k: k, nvec: nvec, samples: samples, a: a, aRow: rowLen, aStride: m * rowLen,
                                                      base: base, bStride: bStride, off: off, c: pd.baseAddress!, ldc: k, add: true)
                    }
                }}
                prod.append(c); dot.append(d)
            }
            XCTAssertFalse(prod[0].contains { $0.isNaN }, "product left outputs unwritten")
            if let e = firstMismatch(prod[0], prod[1]) { XCTFail("window product m\(m) k\(k) nvec\(nvec): \(e)") }
            if let e = firstMismatch(dot[0], dot[1]) { XCTFail("window dot m\(m) k\(k) nvec\(nvec) samples\(samples): \(e)") }
        }
        #else
        throw XCTSkip("this architecture has one build of the float kernels")
        #endif
    }

    func testSelectionIsAnAvailableBuild() {
        XCTAssertTrue(FloatDispatch.available.contains(FloatDispatch.selected))
        XCTAssertEqual(FloatDispatch.available.first, .portable)
    }
}
