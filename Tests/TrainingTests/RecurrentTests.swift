import XCTest
import Foundation
import DataIO
import Randomness
@testable import Training

/// The RNN node (forward formula, BPTT gradients), the strided non-square convolution and the
/// spoken-digit CRNN (graph, determinism, resume, run directory, one epoch on real data).
final class RecurrentTests: XCTestCase {
    func rnd(_ n: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Float] {
        var r = Xoshiro256StarStar(seed: seed)
        return (0..<n).map { _ in Float(r.uniform(lo, hi)) }
    }

    /// Naive reference of the documented forward pass (Double accumulation), returning y, the
    /// pre-activations a[t][s][h] and the ranges used; `ranges` nil = no hidden quantization.
    func reference(x: [Float], batch B: Int, C: Int, T: Int, H: Int, wih: [Float], whh: [Float], bits: Int,
                   range: (Int, [Float]) -> Float?) -> (y: [Double], a: [[Double]], q: [[Double]], used: [Float?]) {
        var y = [Double](repeating: 0, count: B * H)
        var A = [[Double]](repeating: [Double](repeating: 0, count: B * H), count: T), Q = A
        var used: [Float?] = []
        let L = Double((1 << bits) - 1)
        for t in 0..<T {
            for s in 0..<B { for h in 0..<H {
                var a = 0.0
                for c in 0..<C { a += Double(wih[h * C + c]) * Double(x[s * C * T + c * T + t]) }
                if t > 0 { for j in 0..<H { a += Double(whh[h * H + j]) * Q[t - 1][s * H + j] } }
                A[t][s * H + h] = a
                Q[t][s * H + h] = max(a, 0)
            }}
            let r = t < T - 1 ? range(t, Q[t].map { Float($0) }) : nil
            used.append(r)
            if let r {
                let rr = Double(r)
                for i in 0..<(B * H) { Q[t][i] = rr > 0 ? (min(Q[t][i], rr) / rr * L).rounded(.toNearestOrAwayFromZero) * rr / L : 0 }
            }
        }
        for i in 0..<(B * H) { for t in 0..<T { y[i] += Q[t][i] }; y[i] /= Double(T) }
        return (y, A, Q, used)
    }

    func makeRNN(C: Int, H: Int, bits: Int = 3, quantize: Bool, wih: [Float], whh: [Float]) -> RNN {
        let r = RNN(name: "rnn", inFeatures: C, hidden: H, bits: bits, momentum: 0.25)
        r.quantizeHidden = quantize
        r.ih.copy(from: wih); r.hh.copy(from: whh)
        return r
    }

    /// loss = sum(y * R); returns (loss, dx, dW_ih, dW_hh).
    func run(_ layer: RNN, x: [Float], R: [Float], batch: Int, C: Int, T: Int, threads: Int = 2, backward: Bool = true) throws
        -> (Double, [Float], [Float], [Float]) {
        let pool = WorkPool(threads: threads)
        let g = try LayerGraph(layers: [layer], inputShape: [C, 1, T], maxBatch: batch, pool: pool)
        g.input.update(from: x, count: x.count)
        g.forward(batch: batch, training: true)
        var L = 0.0
        for i in 0..<R.count { L += Double(g.output[i]) * Double(R[i]) }
        guard backward else { return (L, [], [], []) }
        g.outputGrad.update(from: R, count: R.count)
        layer.backward(g.acts[0].ptr, g.acts[1].ptr, g.grads[1].ptr, g.grads[0].ptr, batch: batch, pool: pool)
        return (L, Array(UnsafeBufferPointer(start: g.grads[0].ptr, count: x.count)), layer.ihGrad.array, layer.hhGrad.array)
    }

    func testRNNGradientsMatchFiniteDifferencesWithoutHiddenQuantization() throws {
        let B = 7, C = 5, T = 4, H = 6
        // inputs and weights with every pre-activation at least 0.05 away from the ReLU kink,
        // so central differences (eps 1e-3) never cross it and the gradient is exact
        var seed: UInt64 = 100
        var x: [Float] = [], wih: [Float] = [], whh: [Float] = []
        while true {
            x = rnd(B * C * T, seed: seed, lo: 0, hi: 1); wih = rnd(H * C, seed: seed + 1); whh = rnd(H * H, seed: seed + 2, lo: -0.6, hi: 0.6)
            let ref = reference(x: x, batch: B, C: C, T: T, H: H, wih: wih, whh: whh, bits: 3) { _, _ in nil }
            let active = ref.a.flatMap { $0 }.filter { $0 > 0 }.count
            if ref.a.allSatisfy({ $0.allSatisfy { abs($0) > 0.05 } }) && active > B * T * H / 3 { break }
            seed += 3
            XCTAssertLessThan(seed, 100 + 3 * 5000, "no kink-free draw found")
            if seed > 100 + 3 * 5000 { return }
        }
        let R = rnd(B * H, seed: 7)
        let layer = makeRNN(C: C, H: H, quantize: false, wih: wih, whh: whh)
        let (_, dx, dih, dhh) = try run(layer, x: x, R: R, batch: B, C: C, T: T)
        let eps: Float = 1e-3
        func loss(_ x: [Float], _ wih: [Float], _ whh: [Float]) throws -> Double {
            try run(makeRNN(C: C, H: H, quantize: false, wih: wih, whh: whh), x: x, R: R, batch: B, C: C, T: T, backward: false).0
        }
        func check(_ analytic: [Float], _ what: String, perturb: (inout [Float], inout [Float], inout [Float], Int, Float) -> Void) throws {
            let scale = Double(analytic.map(abs).max()!)
            XCTAssertGreaterThan(scale, 0, what)
            var worst = 0.0
            for i in analytic.indices {
                var xp = x, ip = wih, hp = whh, xm = x, im = wih, hm = whh
                perturb(&xp, &ip, &hp, i, eps); perturb(&xm, &im, &hm, i, -eps)
                let fd = (try loss(xp, ip, hp) - loss(xm, im, hm)) / Double(2 * eps)
                worst = max(worst, abs(fd - Double(analytic[i])) / max(1e-3, scale))
            }
            XCTAssertLessThan(worst, 1e-2, what)
        }
        try check(dx, "input gradient") { x, _, _, i, e in x[i] += e }
        try check(dih, "W_ih gradient") { _, w, _, i, e in w[i] += e }
        try check(dhh, "W_hh gradient") { _, _, w, i, e in w[i] += e }
        // the forward pass is the documented formula
        let ref = reference(x: x, batch: B, C: C, T: T, H: H, wih: wih, whh: whh, bits: 3) { _, _ in nil }
        let pool = WorkPool(threads: 1)
        let g = try LayerGraph(layers: [layer], inputShape: [C, 1, T], maxBatch: B, pool: pool)
        g.input.update(from: x, count: x.count); g.forward(batch: B, training: false)
        for i in 0..<(B * H) { XCTAssertEqual(Double(g.output[i]), ref.y[i], accuracy: 1e-5) }
    }

    func testRNNQuantizedForwardRangesAndStraightThroughBPTT() throws {
        let B = 9, C = 4, T = 5, H = 7, bits = 3, mom: Float = 0.25
        let x = rnd(B * C * T, seed: 21, lo: 0, hi: 1), wih = rnd(H * C, seed: 22), whh = rnd(H * H, seed: 23, lo: -0.7, hi: 0.7)
        let R = rnd(B * H, seed: 24)
        let layer = makeRNN(C: C, H: H, bits: bits, quantize: true, wih: wih, whh: whh)
        // training: the range is the EMA of each quantized step's batch maximum (the first sets it)
        var ema: Float? = nil
        let ref = reference(x: x, batch: B, C: C, T: T, H: H, wih: wih, whh: whh, bits: bits) { _, h in
            let m = h.max()!
            ema = ema.map { (1 - mom) * $0 + mom * m } ?? m
            return ema!
        }
        let (_, dx, dih, dhh) = try run(layer, x: x, R: R, batch: B, C: C, T: T)
        XCTAssertEqual(layer.range, ema!, accuracy: 1e-5)
        XCTAssertTrue(layer.initialized)
        let pool = WorkPool(threads: 2)
        // (y checked through a second, identical layer: the training pass above moved its range)
        let fresh = makeRNN(C: C, H: H, bits: bits, quantize: true, wih: wih, whh: whh)
        let g = try LayerGraph(layers: [fresh], inputShape: [C, 1, T], maxBatch: B, pool: pool)
        g.input.update(from: x, count: x.count); g.forward(batch: B, training: true)
        var maxErr = 0.0
        for i in 0..<(B * H) { maxErr = max(maxErr, abs(Double(g.output[i]) - ref.y[i])) }
        XCTAssertLessThan(maxErr, 1e-5)
        // quantized steps take values on the grid k * r / 7
        for t in 0..<(T - 1) { for v in ref.q[t] {
            let k = v / Double(ref.used[t]!) * 7
            XCTAssertEqual(k, k.rounded(), accuracy: 1e-9)
        }}
        // evaluation uses the static range at every quantized step
        g.forward(batch: B, training: false)
        let refEval = reference(x: x, batch: B, C: C, T: T, H: H, wih: wih, whh: whh, bits: bits) { _, _ in fresh.range }
        for i in 0..<(B * H) { XCTAssertEqual(Double(g.output[i]), refEval.y[i], accuracy: 1e-5) }
        // BPTT with the straight-through gradient, in Double, from the reference's a and q
        var dq = [[Double]](repeating: [Double](repeating: 0, count: B * H), count: T)
        var gih = [Double](repeating: 0, count: H * C), ghh = [Double](repeating: 0, count: H * H), gx = [Double](repeating: 0, count: x.count)
        for t in stride(from: T - 1, through: 0, by: -1) {
            for i in 0..<(B * H) { dq[t][i] += Double(R[i]) / Double(T) }
            for s in 0..<B { for h in 0..<H {
                let a = ref.a[t][s * H + h]
                // (the element that set a first range equals it exactly in Float: allow 1e-6 for the Double reference)
                let pass = a > 0 && (t == T - 1 || a <= Double(ref.used[t]!) + 1e-6)
                let d = pass ? dq[t][s * H + h] : 0
                for c in 0..<C { gih[h * C + c] += d * Double(x[s * C * T + c * T + t]); gx[s * C * T + c * T + t] += d * Double(wih[h * C + c]) }
                if t > 0 { for j in 0..<H { ghh[h * H + j] += d * ref.q[t - 1][s * H + j]; dq[t - 1][s * H + j] += d * Double(whh[h * H + j]) } }
            }}
        }
        for (a, b) in zip(dih, gih) { XCTAssertEqual(Double(a), b, accuracy: 1e-4) }
        for (a, b) in zip(dhh, ghh) { XCTAssertEqual(Double(a), b, accuracy: 1e-4) }
        for (a, b) in zip(dx, gx) { XCTAssertEqual(Double(a), b, accuracy: 1e-4) }
        XCTAssertGreaterThan(dhh.map(abs).max()!, 0)
        // one or two threads: bit-identical
        let one = makeRNN(C: C, H: H, bits: bits, quantize: true, wih: wih, whh: whh)
        let (_, dx1, dih1, dhh1) = try run(one, x: x, R: R, batch: B, C: C, T: T, threads: 1)
        XCTAssertEqual(dx1, dx); XCTAssertEqual(dih1, dih); XCTAssertEqual(dhh1, dhh)
    }

    func testRNNSpecAndBadInputs() throws {
        let pool = WorkPool(threads: 1)
        XCTAssertThrowsError(try RNN(name: "r", inFeatures: 4, hidden: 3, bits: 3).configure(input: [4, 2, 3], maxBatch: 2, pool: pool))
        XCTAssertThrowsError(try RNN(name: "r", inFeatures: 4, hidden: 3, bits: 3).configure(input: [5, 1, 3], maxBatch: 2, pool: pool))
        XCTAssertThrowsError(try RNN(name: "r", inFeatures: 4, hidden: 3, bits: 3, steps: 4).configure(input: [4, 1, 3], maxBatch: 2, pool: pool))
        let r = RNN(name: "r", inFeatures: 4, hidden: 3, bits: 3)
        XCTAssertEqual(try r.configure(input: [4, 1, 6], maxBatch: 2, pool: pool), [3])
        let s = r.spec
        XCTAssertEqual(s.op, "rnn"); XCTAssertEqual(s.hidden, 3); XCTAssertEqual(s.steps, 6); XCTAssertEqual(s.bits, 3)
        XCTAssertEqual(r.maskedWeights.map { $0.name }, ["r.ih", "r.hh"])
        XCTAssertEqual(r.maskedWeights.map { $0.fanIn }, [4, 3])
        var bad = s; bad.hidden = nil
        XCTAssertThrowsError(try SupermaskNetwork(specs: [bad], inputShape: [4, 1, 6], sparsity: 0.5, maxBatch: 2, pool: pool))
    }

}

extension OpsTests {
    func testStridedNonSquareConvolution() throws {
        try gradCheck({ Conv2d(name: "c", cin: 2, cout: 3, kh: 3, kw: 2, strideH: 2, strideW: 1) }, input: [2, 9, 7], batch: 5)
        try gradCheck({ Conv2d(name: "c", cin: 3, cout: 2, kh: 2, kw: 3, strideH: 1, strideW: 3, pad: 1) }, input: [3, 5, 8], batch: 3)
        let pool = WorkPool(threads: 2)
        let conv = Conv2d(name: "c", cin: 2, cout: 3, kh: 3, kw: 2, strideH: 2, strideW: 1)
        let g = try LayerGraph(layers: [conv], inputShape: [2, 9, 6], maxBatch: 2, pool: pool)
        XCTAssertEqual(g.shapes[1], [3, 4, 5])
        let x = randomArray(2 * 2 * 54, seed: 4), w = randomArray(conv.weight.count, seed: 5)
        conv.weight.copy(from: w)
        g.input.update(from: x, count: x.count)
        g.forward(batch: 2, training: true)
        for s in 0..<2 { for co in 0..<3 { for oy in 0..<4 { for ox in 0..<5 {
            var acc: Float = 0
            for c in 0..<2 { for ky in 0..<3 { for kx in 0..<2 {
                acc += x[s * 108 + c * 54 + (oy * 2 + ky) * 6 + ox + kx] * w[((co * 2 + c) * 3 + ky) * 2 + kx]
            }}}
            XCTAssertEqual(g.output[((s * 3 + co) * 4 + oy) * 5 + ox], acc, accuracy: 1e-5)
        }}}}
        // the spec round-trips both strides; `stride` is written only when they are equal
        XCTAssertEqual(conv.spec.strideH, 2); XCTAssertEqual(conv.spec.strideW, 1); XCTAssertNil(conv.spec.stride)
        XCTAssertEqual(Conv2d(name: "d", cin: 1, cout: 1, kh: 3, kw: 3, stride: 2).spec.stride, 2)
        let net = try SupermaskNetwork(specs: [conv.spec], inputShape: [2, 9, 6], sparsity: 0.5, maxBatch: 1, pool: pool)
        XCTAssertEqual(net.graph.shapes[1], [3, 4, 5])
        XCTAssertThrowsError(try Conv2d(name: "e", cin: 1, cout: 1, kh: 3, kw: 2, strideH: 0, strideW: 1).configure(input: [1, 5, 5], maxBatch: 1, pool: pool))
    }
}

/// Synthetic [1, 23, 20] "spectrograms": class c has a bright band in bands 2c..2c+1 during a
/// class-dependent time window, plus noise, all in [0, 1].
func syntheticSpoken(count: Int, seed: UInt64) -> DataSplit {
    var r = Xoshiro256StarStar(seed: seed)
    let per = 23 * 20
    var x = [Float](repeating: 0, count: count * per), y = [UInt8](repeating: 0, count: count)
    for s in 0..<count {
        let c = r.int(below: 10)
        y[s] = UInt8(c)
        for i in 0..<per { x[s * per + i] = Float(r.uniform()) * 0.3 }
        for t in (c % 3 * 5)..<(c % 3 * 5 + 8) { for f in (2 * c)..<(2 * c + 2) { x[s * per + t * 20 + f] = 0.9 } }
    }
    return try! DataSplit(count: count, sampleShape: [1, 23, 20], samples: x, labels: y)
}

func spokenConfig(epochs: Int, mode: String = "software") -> TrainConfig {
    var c = TrainConfig.defaults(task: "spoken-digit")
    c.epochs = epochs; c.seed = 5; c.mode = mode; c.evalBatch = 100
    c.warmupEpochs = min(c.warmupEpochs, Double(epochs) / 2)
    return c
}

/// A narrow copy of the CRNN (same nodes, strides and shapes; debug builds train it quickly).
let narrowCRNN = Architectures.spokenDigitCRNN(conv1: 8, conv2: 6, hidden: 12, fc: 16)

final class CRNNTests: XCTestCase {
    let train = syntheticSpoken(count: 90, seed: 1)
    let test = syntheticSpoken(count: 60, seed: 2)

    func testGraphShapesAndWeightMatrices() throws {
        let t = try Trainer(config: spokenConfig(epochs: 1), train: train, test: test, threads: 1)
        XCTAssertEqual(t.net.graph.shapes, [[1, 23, 20], [1, 23, 20], [64, 11, 19], [64, 5, 9], [64, 5, 9], [64, 5, 9], [64, 5, 9],
                                            [32, 2, 8], [32, 1, 4], [32, 1, 4], [32, 1, 4], [32, 1, 4], [128], [128], [256], [256], [256], [10]])
        XCTAssertEqual(t.net.masked.map { $0.name }, ["conv1", "conv2", "rnn.ih", "rnn.hh", "fc1", "fc2"])
        XCTAssertEqual(t.net.masked.map { $0.count }, [384, 12288, 4096, 16384, 32768, 2560])
        XCTAssertEqual(t.net.weightGraphIndices, [1, 6, 11, 11, 13, 16])
        XCTAssertEqual(Architectures.layerShapes(Architectures.spokenDigitCRNN()).map { "\($0.name) \($0.fanOut)x\($0.fanIn)" },
                       ["conv1 64x6", "conv2 32x384", "rnn.ih 128x32", "rnn.hh 128x128", "fc1 256x128", "fc2 10x256"])
        XCTAssertEqual(t.net.quantizers.map { $0.bits }, [3, 3, 3, 3, 3])
        XCTAssertEqual(t.net.quantizers.first!.range, 1)
        XCTAssertEqual(t.config.batch, 30); XCTAssertEqual(t.config.limitStart, 0.009); XCTAssertEqual(t.config.limitSteps, 10)
        XCTAssertEqual(TrainConfig.defaults(task: "spoken-digit").warmupEpochs, 1); XCTAssertEqual(TrainConfig.defaults(task: "spoken-digit").epochs, 20)
        // signed constants per matrix: |w| = sqrt(2 / (fan_in / 2))
        let hh = t.net.masked[3].wOn.array
        XCTAssertEqual(Double(abs(hh[0])), (2.0 / 64).squareRoot(), accuracy: 1e-6)
    }

    func testOneOrTwoThreadsIdenticalAndResumeEqualsUninterrupted() throws {
        let cfg = spokenConfig(epochs: 2)
        let a = try Trainer(config: cfg, train: train, test: test, threads: 1, specs: narrowCRNN)
        let b = try Trainer(config: cfg, train: train, test: test, threads: 2, specs: narrowCRNN)
        for _ in 0..<2 { try a.trainEpoch(); try b.trainEpoch() }
        XCTAssertEqual(a.history.map { $0.timeless }, b.history.map { $0.timeless })
        for (x, y) in zip(a.net.masked, b.net.masked) { XCTAssertEqual(x.mask.array, y.mask.array); XCTAssertEqual(x.scores.array, y.scores.array) }
        XCTAssertEqual((a.net.graph.layers[11] as! RNN).range, (b.net.graph.layers[11] as! RNN).range)
        XCTAssertGreaterThan(a.history[1].flips["rnn.hh"]!, 0)
        XCTAssertGreaterThan(a.history[1].flips["rnn.ih"]!, 0)

        let dir = NSTemporaryDirectory() + "rram-crnn-resume-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: dir + "-full") }
        let first = try Trainer(config: cfg, train: train, test: test, threads: 2, specs: narrowCRNN)
        try first.trainEpoch()
        try first.save(to: dir)
        let second = try Trainer(config: cfg, train: train, test: test, threads: 1, specs: narrowCRNN)
        try second.restore(try Checkpoint.read(dir: dir))
        try second.trainEpoch()
        XCTAssertEqual(a.history.map { $0.timeless }, second.history.map { $0.timeless })
        try a.save(to: dir + "-full"); try second.save(to: dir)
        let c1 = try Checkpoint.read(dir: dir + "-full"), c2 = try Checkpoint.read(dir: dir)
        XCTAssertEqual(c1.f32, c2.f32); XCTAssertEqual(c1.u8, c2.u8)
        for k in ["rnn.ih.mask", "rnn.hh.mask"] { XCTAssertNotNil(c1.u8[k], k) }
        XCTAssertEqual(c1.shapes["rnn.hh.w_on"], [12, 12]); XCTAssertEqual(c1.shapes["rnn.ih.w_on"], [12, 6])
        XCTAssertNotNil(c1.f32["node11.range"])

        // what freeze reads: both matrices, masks, the hidden range, BN statistics
        let run = try TrainedRun(dir: dir, maxBatch: 30)
        XCTAssertEqual(run.meta.task, "spoken-digit")
        XCTAssertEqual(run.meta.inputNormalization, .features)
        XCTAssertEqual(run.weightLayers.map { $0.name }, ["conv1", "conv2", "rnn.ih", "rnn.hh", "fc1", "fc2"])
        XCTAssertEqual(run.weightLayers.map { $0.graphIndex }, [1, 6, 11, 11, 13, 16])
        let rs = try XCTUnwrap(run.recurrent(at: 11))
        XCTAssertEqual(rs.steps, 4); XCTAssertEqual(rs.hidden, 12); XCTAssertEqual(rs.inFeatures, 6); XCTAssertEqual(rs.bits, 3)
        XCTAssertEqual(rs.inputWeights, 2); XCTAssertEqual(rs.hiddenWeights, 3)
        XCTAssertGreaterThan(rs.range, 0)
        XCTAssertEqual(run.quantizer(at: 11)?.range, rs.range)
        XCTAssertEqual(Double(rs.range), run.graph[11].range!, accuracy: 0)
        XCTAssertEqual(run.graph[1].strideH, 2); XCTAssertEqual(run.graph[1].strideW, 1)
        XCTAssertNotNil(run.batchNorm(at: 3)); XCTAssertNotNil(run.batchNorm(at: 8))
        XCTAssertEqual(run.weightLayers[3].mask, second.net.masked[3].mask.array)
        let logits = try run.forward(test.samples, count: test.count)
        var correct = 0
        for s in 0..<test.count {
            let row = logits[(s * 10)..<(s * 10 + 10)]
            if row.firstIndex(of: row.max()!)! - s * 10 == Int(test.labels[s]) { correct += 1 }
        }
        XCTAssertEqual(Double(correct) / Double(test.count), second.history.last!.testAccuracy, accuracy: 1e-12)
    }

    func testHardwareModeWithReadNoiseUsesSixCrossbarLayers() throws {
        let cfg = spokenConfig(epochs: 1, mode: "hardware")
        let shapes = Architectures.layerShapes(narrowCRNN)
        XCTAssertEqual(shapes.map { $0.name }, ["conv1", "conv2", "rnn.ih", "rnn.hh", "fc1", "fc2"])
        let src = try DeviceWeightSource(target: DeviceWeightSource.defaultTarget, seed: cfg.seed, layers: shapes, threads: 2)
        let t1 = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: narrowCRNN)
        let t2 = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: narrowCRNN)
        try t1.trainEpoch(); try t2.trainEpoch()
        XCTAssertEqual(t1.history.map { $0.timeless }, t2.history.map { $0.timeless })
        XCTAssertEqual(cfg.weightNorm, .rms); XCTAssertEqual(cfg.scoreGradient, .sign)
        for m in t1.net.masked {   // rms normalisation: the second moment of the signed constants
            let rms = (m.wOn.array.reduce(0) { $0 + Double($1) * Double($1) } / Double(m.count)).squareRoot()
            XCTAssertEqual(rms, m.targetStd, accuracy: 1e-3 * m.targetStd, m.name)
            XCTAssertNotEqual(m.wOff.array.map(abs).max()!, 0, m.name)
            XCTAssertGreaterThan(m.signGradientScale, 0, m.name)
        }
    }

    func testOneSpokenDigitEpochOnASubsetOfTheRealData() throws {
        guard let root = Datasets.sharedDataDir(), FileManager.default.fileExists(atPath: root + "/spoken-digit/train-features-idx3-float.gz") else {
            throw XCTSkip("spoken-digit features not found (../shared/data/spoken-digit next to the package); set RRAM_EDGE_DATA to the shared/data folder")
        }
        let tr = try Datasets.spokenDigit(dir: root + "/spoken-digit", train: true)
        let te = try Datasets.spokenDigit(dir: root + "/spoken-digit", train: false)
        XCTAssertEqual(tr.sampleShape, [1, 23, 20]); XCTAssertEqual(tr.count, 2100); XCTAssertEqual(te.count, 900)
        for v in tr.samples + te.samples { guard v >= 0, v <= 1 else { XCTFail("feature \(v) outside [0, 1]"); break } }
        // the paper's CRNN at full width, one epoch of 2 batches (debug builds are slow)
        let train = try DataSplit(count: tr.count, sampleShape: tr.sampleShape, samples: tr.samples, labels: tr.labels).prefix(60)
        let test = try DataSplit(count: te.count, sampleShape: te.sampleShape, samples: te.samples, labels: te.labels).prefix(60)
        let t = try Trainer(config: spokenConfig(epochs: 1), train: train, test: test, threads: 2)
        let r = try t.trainEpoch()
        XCTAssertTrue(r.trainLoss.isFinite)
        XCTAssertGreaterThan(r.flipsEpoch, 0)
        XCTAssertEqual(r.globalBatch, 2)
        XCTAssertGreaterThan((t.net.graph.layers[11] as! RNN).range, 0)
    }
}
