import XCTest
import Randomness
@testable import Training

/// Finite-difference checks of every op (Float32 forward, central differences, loss in Double).
final class OpsTests: XCTestCase {
    func randomArray(_ n: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Float] {
        var r = Xoshiro256StarStar(seed: seed)
        return (0..<n).map { _ in Float(r.uniform(lo, hi)) }
    }

    func testGemmMatchesNaiveWithStridesAndEdges() {
        let ws = GemmWorkspace()
        for (m, n, k) in [(1, 1, 1), (7, 9, 5), (13, 17, 300), (6, 8, 256), (30, 70, 300)] {
            let a = randomArray(m * k, seed: 1), b = randomArray(k * n, seed: 2)
            for transA in [false, true] { for transB in [false, true] { for acc in [false, true] {
                var c = randomArray(m * n, seed: 3)
                let c0 = c
                let (ars, acs) = transA ? (1, m) : (k, 1)
                let (brs, bcs) = transB ? (1, k) : (n, 1)
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    Gemm.multiply(m: m, n: n, k: k, a: pa.baseAddress!, ars: ars, acs: acs, b: pb.baseAddress!, brs: brs, bcs: bcs,
                                  c: pc.baseAddress!, ldc: n, accumulate: acc, ws: ws)
                }}}
                var maxErr: Float = 0
                for i in 0..<m { for j in 0..<n {
                    var s: Double = acc ? Double(c0[i * n + j]) : 0
                    for kk in 0..<k { s += Double(a[i * ars + kk * acs]) * Double(b[kk * brs + j * bcs]) }
                    maxErr = max(maxErr, abs(Float(s) - c[i * n + j]))
                }}
                XCTAssertLessThan(maxErr, 1e-3, "m\(m) n\(n) k\(k) tA\(transA) tB\(transB) acc\(acc)")
            }}}
        }
    }

    /// Runs forward on x, loss = sum(y * R); returns (loss, dx, dW?) analytically.
    func lossAndGrads(_ layer: Layer, input: [Int], batch: Int, x: [Float], R: [Float], pool: WorkPool) throws -> (Double, [Float], [Float]?) {
        let g = try LayerGraph(layers: [layer], inputShape: input, maxBatch: batch, pool: pool)
        g.input.update(from: x, count: x.count)
        g.forward(batch: batch, training: true)
        var L = 0.0
        for i in 0..<R.count { L += Double(g.output[i]) * Double(R[i]) }
        g.outputGrad.update(from: R, count: R.count)
        layer.backward(g.acts[0].ptr, g.acts[1].ptr, g.grads[1].ptr, g.grads[0].ptr, batch: batch, pool: pool)
        let dx = Array(UnsafeBufferPointer(start: g.grads[0].ptr, count: x.count))
        let dW = (layer as? WeightLayer).map { $0.weightGrad.array }
        return (L, dx, dW)
    }

    func lossOnly(_ layer: Layer, input: [Int], batch: Int, x: [Float], R: [Float], pool: WorkPool) throws -> Double {
        let g = try LayerGraph(layers: [layer], inputShape: input, maxBatch: batch, pool: pool)
        g.input.update(from: x, count: x.count)
        g.forward(batch: batch, training: true)
        var L = 0.0
        for i in 0..<R.count { L += Double(g.output[i]) * Double(R[i]) }
        return L
    }

    func gradCheck(_ make: () -> Layer, input: [Int], batch: Int, x xin: [Float]? = nil, eps: Float = 1e-2, tol: Double = 2e-2,
                   file: StaticString = #filePath, line: UInt = #line) throws {
        let pool = WorkPool(threads: 2)
        let n = batch * input.reduce(1, *)
        let x = xin ?? randomArray(n, seed: 11)
        let layer = make()
        let outShape = try layer.configure(input: input, maxBatch: batch, pool: pool)
        let R = randomArray(batch * outShape.reduce(1, *), seed: 12)
        if let w = layer as? WeightLayer { w.weight.copy(from: randomArray(w.weight.count, seed: 13)) }
        let weights = (layer as? WeightLayer)?.weight.array
        let (_, dx, dW) = try lossAndGrads(layer, input: input, batch: batch, x: x, R: R, pool: pool)
        var scale = 0.0
        for v in dx { scale = max(scale, Double(abs(v))) }
        var worst = 0.0
        for i in stride(from: 0, to: n, by: max(1, n / 40)) {
            var xp = x, xm = x
            xp[i] += eps; xm[i] -= eps
            let l2 = make(); if let w = l2 as? WeightLayer { w.weight.copy(from: weights!) }
            let lp = try lossOnly(l2, input: input, batch: batch, x: xp, R: R, pool: pool)
            let l3 = make(); if let w = l3 as? WeightLayer { w.weight.copy(from: weights!) }
            let lm = try lossOnly(l3, input: input, batch: batch, x: xm, R: R, pool: pool)
            let fd = (lp - lm) / Double(2 * eps)
            worst = max(worst, abs(fd - Double(dx[i])) / max(1, scale))
        }
        XCTAssertLessThan(worst, tol, "input gradient", file: file, line: line)
        XCTAssertGreaterThan(scale, 0, "gradient is identically zero", file: file, line: line)
        if let dW, let weights {
            var wscale = 0.0
            for v in dW { wscale = max(wscale, Double(abs(v))) }
            var worstW = 0.0
            for i in stride(from: 0, to: weights.count, by: max(1, weights.count / 40)) {
                var wp = weights, wm = weights
                wp[i] += eps; wm[i] -= eps
                let l2 = make() as! WeightLayer; l2.weight.copy(from: wp)
                let lp = try lossOnly(l2, input: input, batch: batch, x: x, R: R, pool: pool)
                let l3 = make() as! WeightLayer; l3.weight.copy(from: wm)
                let lm = try lossOnly(l3, input: input, batch: batch, x: x, R: R, pool: pool)
                let fd = (lp - lm) / Double(2 * eps)
                worstW = max(worstW, abs(fd - Double(dW[i])) / max(1, wscale))
            }
            XCTAssertLessThan(worstW, tol, "weight gradient", file: file, line: line)
            XCTAssertGreaterThan(wscale, 0, file: file, line: line)
        }
    }

    func testConvGradients() throws {
        try gradCheck({ Conv2d(name: "c", cin: 2, cout: 3, kh: 3, kw: 3) }, input: [2, 6, 5], batch: 5)
        try gradCheck({ Conv2d(name: "c", cin: 3, cout: 4, kh: 3, kw: 2, stride: 2, pad: 1) }, input: [3, 7, 6], batch: 3)
        // more samples than one im2col block (16) and a chunk split over several blocks
        try gradCheck({ Conv2d(name: "c", cin: 1, cout: 2, kh: 2, kw: 2) }, input: [1, 3, 3], batch: 70)
    }

    /// The stride-1 window path (Conv2dWindow.swift) against the im2col + GEMM reference path:
    /// forward output, input gradient and weight gradient, element by element, over shapes with
    /// padding, non-square kernels, widths that are not multiples of 8, output rows shorter than
    /// a vector, and batches that span several window blocks and uneven chunks.
    func testWindowConvMatchesIm2colReference() throws {
        let shapes: [(cin: Int, cout: Int, kh: Int, kw: Int, pad: Int, h: Int, w: Int, batch: Int)] = [
            (3, 5, 3, 3, 0, 7, 6, 11), (2, 7, 2, 3, 1, 5, 8, 3), (1, 64, 3, 3, 0, 14, 14, 9),
            (64, 16, 3, 3, 0, 12, 12, 19), (4, 13, 5, 1, 2, 9, 4, 1), (2, 3, 1, 1, 0, 3, 3, 5), (3, 2, 3, 3, 2, 2, 2, 4),
        ]
        for (t, sh) in shapes.enumerated() {
            let pool = WorkPool(threads: 2)
            let make = { (window: Bool) -> Conv2d in
                let c = Conv2d(name: "c", cin: sh.cin, cout: sh.cout, kh: sh.kh, kw: sh.kw, pad: sh.pad)
                c.useWindow = window
                return c
            }
            let fast = make(true), ref = make(false)
            let w = randomArray(fast.weight.count, seed: 20 + UInt64(t))
            fast.weight.copy(from: w); ref.weight.copy(from: w)
            let x = randomArray(sh.batch * sh.cin * sh.h * sh.w, seed: 40 + UInt64(t))
            var results: [(y: [Float], dx: [Float], dW: [Float])] = []
            for conv in [fast, ref] {
                let g = try LayerGraph(layers: [conv], inputShape: [sh.cin, sh.h, sh.w], maxBatch: sh.batch, pool: pool)
                g.input.update(from: x, count: x.count)
                g.forward(batch: sh.batch, training: true)
                let ny = sh.batch * elementCount(g.shapes[1])
                let R = randomArray(ny, seed: 60 + UInt64(t))
                g.outputGrad.update(from: R, count: ny)
                conv.backward(g.acts[0].ptr, g.acts[1].ptr, g.grads[1].ptr, g.grads[0].ptr, batch: sh.batch, pool: pool)
                results.append((Array(UnsafeBufferPointer(start: g.output, count: ny)),
                                Array(UnsafeBufferPointer(start: g.grads[0].ptr, count: x.count)), conv.weightGrad.array))
            }
            XCTAssertTrue(fast.useWindow, "shape \(t): stride 1 must take the window path")
            XCTAssertFalse(ref.useWindow)
            for (what, a, b) in [("output", results[0].y, results[1].y), ("input gradient", results[0].dx, results[1].dx),
                                 ("weight gradient", results[0].dW, results[1].dW)] {
                XCTAssertEqual(a.count, b.count, "shape \(t) \(what)")
                let scale = b.reduce(Float(0)) { max($0, abs($1)) }
                XCTAssertGreaterThan(scale, 0, "shape \(t) \(what) is identically zero")
                for i in 0..<min(a.count, b.count) where abs(a[i] - b[i]) > 1e-5 * max(1, scale) {
                    XCTFail("shape \(t) \(what)[\(i)]: window \(a[i]), im2col \(b[i])")
                    break
                }
            }
        }
        // strided convolutions keep the im2col path
        let strided = Conv2d(name: "s", cin: 1, cout: 1, kh: 3, kw: 3, stride: 2)
        _ = try strided.configure(input: [1, 7, 7], maxBatch: 2, pool: WorkPool(threads: 1))
        XCTAssertFalse(strided.useWindow)
    }

    func testConvForwardMatchesDirect() throws {
        let pool = WorkPool(threads: 2)
        let conv = Conv2d(name: "c", cin: 2, cout: 3, kh: 3, kw: 3, stride: 2, pad: 1)
        let g = try LayerGraph(layers: [conv], inputShape: [2, 5, 5], maxBatch: 2, pool: pool)
        let x = randomArray(2 * 50, seed: 4), w = randomArray(conv.weight.count, seed: 5)
        conv.weight.copy(from: w)
        g.input.update(from: x, count: x.count)
        g.forward(batch: 2, training: true)
        XCTAssertEqual(g.shapes[1], [3, 3, 3])
        for s in 0..<2 { for co in 0..<3 { for oy in 0..<3 { for ox in 0..<3 {
            var acc: Float = 0
            for c in 0..<2 { for ky in 0..<3 { for kx in 0..<3 {
                let iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx
                if iy >= 0 && iy < 5 && ix >= 0 && ix < 5 { acc += x[s * 50 + c * 25 + iy * 5 + ix] * w[((co * 2 + c) * 3 + ky) * 3 + kx] }
            }}}
            XCTAssertEqual(g.output[((s * 3 + co) * 3 + oy) * 3 + ox], acc, accuracy: 1e-5)
        }}}}
    }

    /// The vectorised reductions of BatchNorm and FakeQuant against plain loops, for every
    /// length from 0 to 40 (whole vectors and tails).
    func testReductionHelpers() {
        for n in 0...40 {
            let a = randomArray(n, seed: 70 + UInt64(n)), b = randomArray(n, seed: 90 + UInt64(n))
            var s = 0.0, d = 0.0
            for i in 0..<n { s += Double(a[i]); d += Double(a[i]) * Double(b[i]) }
            let (fs, fd) = sums(a, b, count: n)
            XCTAssertEqual(Double(fs), s, accuracy: 1e-5, "sum, n \(n)")
            XCTAssertEqual(Double(fd), d, accuracy: 1e-5, "dot, n \(n)")
            XCTAssertEqual(maxOf(a, count: n, atLeast: 0), a.reduce(Float(0)) { max($0, $1) }, "max, n \(n)")
            XCTAssertEqual(maxOf(a, count: n, atLeast: -5), a.reduce(Float(-5)) { max($0, $1) }, "max from -5, n \(n)")
        }
    }

    func testLinearGradients() throws {
        try gradCheck({ Linear(name: "f", inFeatures: 13, outFeatures: 7) }, input: [13], batch: 9)
    }

    func testMaxPoolGradients() throws {
        try gradCheck({ MaxPool2d(kernel: 2) }, input: [3, 5, 4], batch: 4, eps: 1e-3)
    }

    func testBatchNormGradientsAndEvalStatistics() throws {
        try gradCheck({ BatchNorm() }, input: [3, 2, 2], batch: 6, eps: 1e-2, tol: 3e-2)
        try gradCheck({ BatchNorm() }, input: [5], batch: 8, eps: 1e-2, tol: 3e-2)
        // evaluation uses the running statistics, not the batch's
        let pool = WorkPool(threads: 1)
        let bn = BatchNorm(momentum: 1)
        let g = try LayerGraph(layers: [bn], inputShape: [1], maxBatch: 4, pool: pool)
        g.input.update(from: [1, 2, 3, 4], count: 4)
        g.forward(batch: 4, training: true)
        XCTAssertEqual(bn.runningMean[0], 2.5, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVar[0], 5.0 / 3.0, accuracy: 1e-5)   // unbiased
        g.input.update(from: [10, 10, 10, 10], count: 4)
        g.forward(batch: 1, training: false)
        XCTAssertEqual(g.output[0], Float((10 - 2.5) / (5.0 / 3.0 + 1e-5).squareRoot()), accuracy: 1e-4)
    }

    func testReLUGradients() throws {
        var x = randomArray(60, seed: 3)
        for i in x.indices where abs(x[i]) < 0.05 { x[i] = 0.3 }
        try gradCheck({ ReLU() }, input: [3, 4], batch: 5, x: x)
    }

    func testFakeQuantForwardStaticRangeAndStraightThrough() throws {
        let pool = WorkPool(threads: 2)
        let q = FakeQuant(bits: 4, momentum: 0.5)
        let g = try LayerGraph(layers: [q], inputShape: [4], maxBatch: 2, pool: pool)
        g.input.update(from: [-1, 0.1, 0.5, 2, 0.26, 0.9, 1.5, 3], count: 8)
        g.forward(batch: 2, training: true)
        XCTAssertEqual(q.range, 3)                                   // first batch: the batch max
        let step: Float = 3 / 15
        XCTAssertEqual(g.output[0], 0)
        XCTAssertEqual(g.output[2], (0.5 / step).rounded() * step, accuracy: 1e-6)
        XCTAssertEqual(g.output[7], 3, accuracy: 1e-6)
        // EMA update, and evaluation uses the static range, not the batch max
        g.input.update(from: [1, 1, 1, 1, 1, 1, 1, 1], count: 8)
        g.forward(batch: 2, training: true)
        XCTAssertEqual(q.range, 2, accuracy: 1e-6)                   // 0.5 * 3 + 0.5 * 1
        g.input.update(from: [10, 0.6, 0, 0, 0, 0, 0, 0], count: 8)
        g.forward(batch: 2, training: false)
        XCTAssertEqual(q.range, 2, accuracy: 1e-6)
        XCTAssertEqual(g.output[0], 2, accuracy: 1e-6)               // clamped to the static range
        XCTAssertEqual(g.output[1], (0.6 / (2.0 / 15)).rounded() * (2.0 / 15), accuracy: 1e-6)
        // straight-through: gradient passes inside [0, r], zero outside
        g.input.update(from: [-0.5, 0.3, 1.9, 2.5, 1, 1, 1, 1], count: 8)
        g.forward(batch: 2, training: true)  // r = 0.5*2 + 0.5*2.5 = 2.25
        g.outputGrad.update(from: [1, 2, 3, 4, 5, 6, 7, 8], count: 8)
        q.backward(g.acts[0].ptr, g.acts[1].ptr, g.grads[1].ptr, g.grads[0].ptr, batch: 2, pool: pool)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: g.grads[0].ptr, count: 4)), [0, 2, 3, 0])
        // a fixed range never moves
        let fq = FakeQuant(bits: 4, fixedRange: 1)
        let g2 = try LayerGraph(layers: [fq], inputShape: [1], maxBatch: 1, pool: pool)
        g2.input[0] = 7; g2.forward(batch: 1, training: true)
        XCTAssertEqual(fq.range, 1); XCTAssertEqual(g2.output[0], 1)
    }

    func testFastRoundingEqualsRoundedHalfAway() {
        var r = Xoshiro256StarStar(seed: 9)
        var xs: [Float] = [0, 0.5, 1.5, 2.5, 0.49999997, 1.4999999, 254.5, 255, 14.5, 7.5000005, 0x1p21 + 0.5]
        for _ in 0..<20000 { xs.append(Float(r.uniform(0, 300))) }
        for k in 0..<600 { xs.append(Float(k) / 2) }
        for x in xs { XCTAssertEqual(roundHalfAwayNonNegative(x), x.rounded(.toNearestOrAwayFromZero), "\(x)") }
    }

    func testFlattenGradient() throws {
        try gradCheck({ Flatten() }, input: [2, 3, 2], batch: 3)
    }

    func testSoftmaxCrossEntropyGradient() {
        let B = 4, C = 5
        let z = randomArray(B * C, seed: 8, lo: -2, hi: 2)
        let labels: [UInt8] = [0, 3, 4, 1]
        for smoothing: Float in [0, 0.1] {
            var g = [Float](repeating: 0, count: B * C)
            var zz = z
            _ = zz.withUnsafeMutableBufferPointer { zp in g.withUnsafeMutableBufferPointer { gp in
                softmaxCrossEntropy(logits: zp.baseAddress!, labels: labels, batch: B, classes: C, smoothing: smoothing, grad: gp.baseAddress!) } }
            for i in 0..<(B * C) {
                var zp = z, zm = z
                zp[i] += 1e-2; zm[i] -= 1e-2
                let lp = zp.withUnsafeMutableBufferPointer { softmaxCrossEntropy(logits: $0.baseAddress!, labels: labels, batch: B, classes: C, smoothing: smoothing, grad: nil).loss }
                let lm = zm.withUnsafeMutableBufferPointer { softmaxCrossEntropy(logits: $0.baseAddress!, labels: labels, batch: B, classes: C, smoothing: smoothing, grad: nil).loss }
                XCTAssertEqual((lp - lm) / 2e-2 / Double(B), Double(g[i]), accuracy: 2e-3)
            }
        }
    }
}

/// `FloatBuffer`: what the kernels rely on, whatever the allocator: 64-byte alignment, `count`
/// zeros, and writable memory (64 bytes of slack after the last element for vector tails).
final class FloatBufferTests: XCTestCase {
    func testBuffersAreAlignedZeroedAndWritable() {
        var buffers: [FloatBuffer] = []
        for count in [0, 1, 3, 15, 16, 17, 1000, 4097, 1 << 18, (1 << 22) + 5] {
            let b = FloatBuffer(count: count)
            XCTAssertEqual(Int(bitPattern: b.ptr) % 64, 0, "count \(count): 64-byte aligned")
            for i in 0..<max(count, 1) where b.ptr[i] != 0 { XCTFail("count \(count): element \(i) is \(b.ptr[i]), not 0"); break }
            for i in 0..<(max(count, 1) + 16) { b.ptr[i] = Float(i) }   // the slack is ours too
            XCTAssertEqual(b.ptr[max(count, 1) + 15], Float(max(count, 1) + 15))
            buffers.append(b)
        }
        // a buffer made after others were freed is zero again (calloc, not reused dirty memory)
        buffers.removeAll()
        let again = FloatBuffer(count: 1000)
        XCTAssertTrue((0..<1000).allSatisfy { again.ptr[$0] == 0 })
    }
}
