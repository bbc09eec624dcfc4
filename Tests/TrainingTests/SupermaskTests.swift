import XCTest
import Foundation
import Randomness
@testable import Training

/// Synthetic 28x28 images: class c has a bright bar at a class-specific place, plus noise.
func syntheticSplit(count: Int, seed: UInt64) -> DataSplit {
    var r = Xoshiro256StarStar(seed: seed)
    var x = [Float](repeating: 0, count: count * 784), y = [UInt8](repeating: 0, count: count)
    for s in 0..<count {
        let c = r.int(below: 10)
        y[s] = UInt8(c)
        for i in 0..<784 { x[s * 784 + i] = Float(r.uniform()) * 0.3 }
        let row = 2 + 2 * c
        for col in 4..<24 { x[s * 784 + row * 28 + col] = 1; x[s * 784 + (row + 1) * 28 + col] = 0.9 }
    }
    return try! DataSplit(count: count, sampleShape: [1, 28, 28], samples: x, labels: y)
}

/// A tiny CNN with the same kinds of nodes (debug builds train it in well under a second).
func tinySpecs() -> [LayerSpec] {
    func s(_ op: String, _ f: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec { var x = LayerSpec(op: op); f(&x); return x }
    return [
        s("maxpool2d") { $0.kernel = 2 },
        s("fakequant") { $0.bits = 4; $0.fixedRange = true; $0.range = 1 },
        s("conv2d") { $0.name = "conv1"; $0.inChannels = 1; $0.outChannels = 4; $0.kernelH = 3; $0.kernelW = 3 },
        s("batchnorm") { $0.eps = 1e-5 },
        s("relu"),
        s("fakequant") { $0.bits = 4; $0.fixedRange = false },
        s("maxpool2d") { $0.kernel = 2 },
        s("flatten"),
        s("linear") { $0.name = "fc1"; $0.inFeatures = 144; $0.outFeatures = 10 },
    ]
}
let tinyCounts = [36, 1440]

func smallConfig(epochs: Int = 2) -> TrainConfig {
    var c = TrainConfig()
    c.epochs = epochs; c.batch = 60; c.evalBatch = 100; c.seed = 7
    return c
}

final class SupermaskTests: XCTestCase {
    func testTopKExactCountAndDeterministicTies() {
        let m = MaskedWeight(name: "t", count: 10, fanIn: 5, sparsity: 0.5)
        XCTAssertEqual(m.keep, 5)
        m.scores.copy(from: [0.1, -0.5, 0.5, 0.2, -0.2, 0.5, 0.05, -0.5, 0.0, 0.3])
        m.topK(into: m.mask.ptr)
        // |s| ranks: 0.5 (idx 1, 2, 5, 7) then 0.3 (9): ties broken by the lower index
        XCTAssertEqual(m.mask.array, [0, 1, 1, 0, 0, 1, 0, 1, 0, 1])
        let m2 = MaskedWeight(name: "t", count: 6, fanIn: 2, sparsity: 0.5)
        m2.scores.copy(from: [1, 1, 1, 1, 1, 1])
        m2.topK(into: m2.mask.ptr)
        XCTAssertEqual(m2.mask.array, [1, 1, 1, 0, 0, 0])
        // keep = count - floor(sparsity * count)
        XCTAssertEqual(MaskedWeight(name: "t", count: 7, fanIn: 7, sparsity: 0.5).keep, 4)
        // large random layer: exactly `keep` ones, and they are the largest |s|
        let big = MaskedWeight(name: "b", count: 5001, fanIn: 50, sparsity: 0.3)
        var r = Xoshiro256StarStar(seed: 3)
        big.initScores(rng: &r)
        let ones = big.mask.array.filter { $0 == 1 }.count
        XCTAssertEqual(ones, big.keep)
        let s = big.scores.array.map(abs)
        let minKept = zip(s, big.mask.array).filter { $0.1 == 1 }.map { $0.0 }.min()!
        let maxDropped = zip(s, big.mask.array).filter { $0.1 == 0 }.map { $0.0 }.max()!
        XCTAssertGreaterThanOrEqual(minKept, maxDropped)
    }

    func testKaimingUniformScoreBound() {
        let m = MaskedWeight(name: "t", count: 4000, fanIn: 400, sparsity: 0.5)
        var r = Xoshiro256StarStar(seed: 1)
        m.initScores(rng: &r)
        let b = Float(1 / 20.0)  // sqrt(6 / (6 * 400))
        let a = m.scores.array
        XCTAssertLessThanOrEqual(a.map(abs).max()!, b)
        XCTAssertGreaterThan(a.map(abs).max()!, 0.95 * b)
        XCTAssertEqual(m.sRef.array, a)
    }

    func testHysteresisKeepsBitsUntilScoreMovedEnough() {
        let m = MaskedWeight(name: "t", count: 4, fanIn: 2, sparsity: 0.5)
        m.scores.copy(from: [1.0, 0.52, 0.5, 0.4])
        m.sRef.copy(from: m.scores.array)
        m.topK(into: m.mask.ptr)
        XCTAssertEqual(m.mask.array, [1, 1, 0, 0])
        // idx 2 overtakes idx 1, but both moved < 10 % from their references: nothing flips
        m.scores.copy(from: [1.0, 0.5, 0.53, 0.4])
        XCTAssertEqual(m.updateMask(limit: 0.1), 0)
        XCTAssertEqual(m.mask.array, [1, 1, 0, 0])
        // idx 2 moved 20 % from its reference: it enters; idx 1 moved 3.8 %: it stays (3 ones)
        m.scores.copy(from: [1.0, 0.5, 0.6, 0.4])
        XCTAssertEqual(m.updateMask(limit: 0.1), 1)
        XCTAssertEqual(m.mask.array, [1, 1, 1, 0])
        XCTAssertEqual(m.sRef[2], 0.6)
        XCTAssertEqual(m.sRef[1], 0.52)
        // without hysteresis the mask is exactly the top-k
        XCTAssertEqual(m.updateMask(limit: 0), 1)
        XCTAssertEqual(m.mask.array, [1, 0, 1, 0])
        XCTAssertEqual(m.flipsTotal, 2)
    }

    func testHysteresisPreviousStepReference() {
        let m = MaskedWeight(name: "t", count: 2, fanIn: 2, sparsity: 0.5)
        m.scores.copy(from: [1.0, 0.5]); m.sRef.copy(from: m.scores.array); m.topK(into: m.mask.ptr)
        // idx 1 creeps up by < 10 % per step: it never flips in, although it ends far above idx 0
        for v: Float in [0.54, 0.58, 0.63, 0.68, 0.74, 0.8, 0.87, 0.95, 1.04, 1.13] {
            m.scores[1] = v
            XCTAssertEqual(m.updateMask(limit: 0.1, reference: .previousStep), 0)
        }
        XCTAssertEqual(m.mask.array, [1, 0])
        m.scores[1] = 1.5   // a 33 % jump in one step: idx 1 enters; idx 0 did not move and stays
        XCTAssertEqual(m.updateMask(limit: 0.1, reference: .previousStep), 1)
        XCTAssertEqual(m.mask.array, [1, 1])
        m.scores[0] = 0.5   // now idx 0 drops 50 % in one step: it leaves
        XCTAssertEqual(m.updateMask(limit: 0.1, reference: .previousStep), 1)
        XCTAssertEqual(m.mask.array, [0, 1])
    }

    func testStraightThroughScoreGradientAndSGD() {
        let m = MaskedWeight(name: "t", count: 3, fanIn: 3, sparsity: 0.5)
        m.wOn.copy(from: [2, -1, 0.5]); m.wOff.copy(from: [0.5, 0, 0])
        m.scores.copy(from: [-0.1, 0.2, 0])
        var dW: [Float] = [1, 3, 4]
        dW.withUnsafeMutableBufferPointer { m.scoreGradient(from: $0.baseAddress!) }
        XCTAssertEqual(m.scoreGrad.array, [-1.5, -3, 0])
        m.sgdStep(lr: 0.1, momentum: 0.9, weightDecay: 0.5)
        XCTAssertEqual(m.velocity[0], -1.5 + 0.5 * -0.1, accuracy: 1e-7)
        XCTAssertEqual(m.scores[0], -0.1 - 0.1 * (-1.55), accuracy: 1e-7)
        m.sgdStep(lr: 0.1, momentum: 0.9, weightDecay: 0)
        XCTAssertEqual(m.velocity[1], 0.9 * (-3 + 0.1) - 3, accuracy: 1e-5)
    }

    func testMaskedNetworkGradientMatchesFiniteDifferenceOfMaskedWeights() throws {
        // Effective weight = mask ? on : off; the layer's weight gradient times (on - off) is the
        // directional derivative of the loss along the switch from off to on.
        var cfg = smallConfig(); cfg.mode = "hardware"
        let data = syntheticSplit(count: 60, seed: 1)
        let src = SyntheticDifferentialSource(seed: 3, counts: tinyCounts)
        let t = try Trainer(config: cfg, train: data, test: data, source: src, threads: 2, specs: tinySpecs())
        let net = t.net
        let wl = net.weights[1], m = net.masked[1]
        net.applyMasks()
        net.graph.input.update(from: data.samples, count: 60 * 784)
        // training passes set the static ranges and let the running BN statistics converge
        for _ in 0..<40 { net.graph.forward(batch: 60, training: true) }
        func loss() -> Double {
            net.graph.input.update(from: data.samples, count: 60 * 784)
            // eval mode: static BN/quant state does not move between evaluations
            net.graph.forward(batch: 60, training: false)
            return data.labels.withUnsafeBufferPointer {
                softmaxCrossEntropy(logits: net.graph.output, labels: $0.baseAddress!, batch: 60, classes: 10, grad: net.graph.outputGrad).loss / 60
            }
        }
        _ = loss()
        net.graph.backward(batch: 60)  // backward through eval-mode forward (fc2 only depends on fc1 output)
        var i = 0
        for k in 0..<m.count where abs(wl.weightGrad[k] * (m.wOn[k] - m.wOff[k])) > abs(wl.weightGrad[i] * (m.wOn[i] - m.wOff[i])) { i = k }
        let analytic = Double(wl.weightGrad[i]) * Double(m.wOn[i] - m.wOff[i])
        let w0 = wl.weight[i]
        let h: Float = 1e-2
        wl.weight[i] = w0 + h * (m.wOn[i] - m.wOff[i]); let lp = loss()
        wl.weight[i] = w0 - h * (m.wOn[i] - m.wOff[i]); let lm = loss()
        XCTAssertEqual((lp - lm) / Double(2 * h), analytic, accuracy: 1e-3 + 0.02 * abs(analytic))
        XCTAssertNotEqual(analytic, 0)
    }
}

final class TrainerTests: XCTestCase {
    let train = syntheticSplit(count: 240, seed: 1)
    let test = syntheticSplit(count: 200, seed: 2)

    func testTrainingLearnsAndIsIdenticalWithOneOrTwoThreads() throws {
        var cfg = smallConfig(epochs: 2)
        cfg.limitSchedule = .bestAccuracy; cfg.limitStart = 0.01   // the paper's schedule
        let a = try Trainer(config: cfg, train: train, test: test, threads: 1, specs: tinySpecs())
        let b = try Trainer(config: cfg, train: train, test: test, threads: 2, specs: tinySpecs())
        for _ in 0..<2 { try a.trainEpoch(); try b.trainEpoch() }
        XCTAssertEqual(a.history.map { $0.timeless }, b.history.map { $0.timeless })
        for (x, y) in zip(a.net.masked, b.net.masked) {
            XCTAssertEqual(x.mask.array, y.mask.array)
            XCTAssertEqual(x.scores.array, y.scores.array)
        }
        XCTAssertGreaterThan(a.history.last!.testAccuracy, 0.5, "the synthetic task is easy")
        XCTAssertGreaterThan(a.history.last!.flipsEpoch, 0)
        XCTAssertEqual(a.history[0].limit, 0.01, accuracy: 1e-9)
        XCTAssertLessThan(a.history[1].limit, 0.01)
    }

    func testResumeEqualsUninterruptedRun() throws {
        let cfg = smallConfig(epochs: 2)
        let dir = NSTemporaryDirectory() + "rram-resume-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try Trainer(config: cfg, train: train, test: test, threads: 2, specs: tinySpecs())
        try full.trainEpoch(); try full.trainEpoch()
        let first = try Trainer(config: cfg, train: train, test: test, threads: 1, specs: tinySpecs())
        try first.trainEpoch()
        try first.save(to: dir)
        let second = try Trainer(config: cfg, train: train, test: test, threads: 2, specs: tinySpecs())
        try second.restore(try Checkpoint.read(dir: dir))
        XCTAssertEqual(second.epochsDone, 1)
        try second.trainEpoch()
        XCTAssertEqual(full.history.map { $0.timeless }, second.history.map { $0.timeless })
        let dirFull = dir + "-full", dirRes = dir + "-res"
        defer { try? FileManager.default.removeItem(atPath: dirFull); try? FileManager.default.removeItem(atPath: dirRes) }
        try full.save(to: dirFull); try second.save(to: dirRes)
        let c1 = try Checkpoint.read(dir: dirFull), c2 = try Checkpoint.read(dir: dirRes)
        XCTAssertEqual(c1.f32, c2.f32)
        XCTAssertEqual(c1.u8, c2.u8)
        // a different configuration refuses to resume
        var other = cfg; other.lr = 0.05
        let t3 = try Trainer(config: other, train: train, test: test, threads: 1, specs: tinySpecs())
        XCTAssertThrowsError(try t3.restore(c1))
    }

    func testRunDirectoryLoadsForEvaluation() throws {
        let cfg = smallConfig(epochs: 1)
        let dir = NSTemporaryDirectory() + "rram-run-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try Trainer(config: cfg, train: train, test: test, threads: 2, specs: tinySpecs())
        try t.trainEpoch()
        try t.save(to: dir)
        let run = try TrainedRun(dir: dir, maxBatch: 64)
        XCTAssertEqual(run.meta.epochsDone, 1)
        XCTAssertEqual(run.meta.inputNormalization, .pixels)
        XCTAssertEqual(run.weightLayers.map { $0.name }, ["conv1", "fc1"])
        XCTAssertEqual(run.weightLayers[1].shape, [10, 144])
        for l in run.weightLayers {
            for i in 0..<l.mask.count { XCTAssertEqual(l.effective[i], l.mask[i] != 0 ? l.wOn[i] : l.wOff[i]) }
        }
        let q = run.quantizer(at: 5)!
        XCTAssertEqual(q.bits, 4); XCTAssertGreaterThan(q.range, 0)
        XCTAssertNotNil(run.batchNorm(at: 3))
        XCTAssertNil(run.batchNorm(at: 4))
        XCTAssertEqual(run.graph.map { $0.op }, tinySpecs().map { $0.op })
        let logits = try run.forward(test.samples, count: test.count)
        var correct = 0
        for s in 0..<test.count {
            let row = logits[(s * 10)..<(s * 10 + 10)]
            if row.firstIndex(of: row.max()!)! - s * 10 == Int(test.labels[s]) { correct += 1 }
        }
        XCTAssertEqual(Double(correct) / Double(test.count), t.history[0].testAccuracy, accuracy: 1e-12)
        let lines = try String(contentsOfFile: dir + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].contains("\"flips\""))
        // corrupt checkpoints are clear errors
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: dir + "/checkpoint.bin"))
        XCTAssertThrowsError(try TrainedRun(dir: dir)) { XCTAssertTrue("\($0)".contains("not an rram-edge checkpoint")) }
        XCTAssertThrowsError(try TrainedRun(dir: dir + "-missing"))
    }

    func testHardwareModeHysteresisReducesFlips() throws {
        var cfg = smallConfig(epochs: 2); cfg.mode = "hardware"
        cfg.limitStart = 0.3; cfg.limitEnd = 0.3   // a strong limit: the mechanism, not the paper's figure
        cfg.weightNorm = .meanAbs
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        let with = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        cfg.hysteresis = false
        let without = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        for _ in 0..<2 { try with.trainEpoch(); try without.trainEpoch() }
        XCTAssertLessThan(with.history.last!.flipsTotal, without.history.last!.flipsTotal)
        XCTAssertEqual(without.history[0].limit, 0)
        // normalisation: mean |w_on| = the signed-constant std
        let m = with.net.masked[1]
        let mean = m.wOn.array.reduce(0) { $0 + Double(abs($1)) } / Double(m.count)
        XCTAssertEqual(mean, m.targetStd, accuracy: 1e-3 * m.targetStd)
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: test, source: nil, threads: 1, specs: tinySpecs()))
    }

    func testPaperCNNTrainsOneEpochOnASmallSubset() throws {
        var cfg = smallConfig(epochs: 1); cfg.evalBatch = 60
        cfg.limitSchedule = .bestAccuracy; cfg.limitStart = 0.01   // the paper's limits: two batches are enough to flip bits
        let t = try Trainer(config: cfg, train: syntheticSplit(count: 120, seed: 3), test: syntheticSplit(count: 60, seed: 4), threads: 2)
        XCTAssertEqual(t.net.graph.shapes, [[1, 28, 28], [1, 14, 14], [1, 14, 14], [64, 12, 12], [64, 12, 12], [64, 12, 12], [64, 12, 12],
                                            [16, 10, 10], [16, 5, 5], [16, 5, 5], [16, 5, 5], [16, 5, 5], [400], [128], [128], [128], [10]])
        XCTAssertEqual(t.net.masked.map { $0.count }, [576, 9216, 51200, 1280])
        // signed constants: |w| = sqrt(2) / sqrt(fan_in * (1 - sparsity)), both signs
        let w = t.net.masked[2].wOn.array
        XCTAssertEqual(Set(w.map(abs)).count, 1)
        XCTAssertEqual(Double(abs(w[0])), (2.0 / (400 * 0.5)).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Double(w.filter { $0 > 0 }.count) / Double(w.count), 0.5, accuracy: 0.02)
        let r = try t.trainEpoch()
        XCTAssertTrue(r.trainLoss.isFinite)
        XCTAssertGreaterThan(r.flipsEpoch, 0)
        XCTAssertGreaterThan(t.net.quantizers[1].range, 0)
    }

    func testBadConfigurationAndNaNAreErrors() throws {
        var cfg = smallConfig(); cfg.lr = -1
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: test, threads: 1, specs: tinySpecs()))
        cfg = smallConfig(); cfg.batch = 1000
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: test, threads: 1, specs: tinySpecs()))
        XCTAssertThrowsError(try DataSplit(count: 1, sampleShape: [2], samples: [0, .nan], labels: [0]))
        cfg = smallConfig(epochs: 1); cfg.lr = 1e30
        let t = try Trainer(config: cfg, train: train, test: test, threads: 1, specs: tinySpecs())
        XCTAssertThrowsError(try t.trainEpoch()) { XCTAssertTrue("\($0)".contains("non-finite")) }
    }
}

final class DeviceSourceTests: XCTestCase {
    func testFastProgrammedReadsEqualTheDeviceModel() throws {
        let shapes = Architectures.layerShapes(tinySpecs())
        XCTAssertEqual(shapes.map { $0.fanIn }, [9, 144])
        let src = try DeviceWeightSource(target: DeviceWeightSource.defaultTarget, seed: 11, layers: shapes, threads: 2)
        XCTAssertNotNil(src.fast)
        for layer in 0..<2 {
            let (on, off) = src.differential(layer: layer, read: 5)
            let (on0, _) = src.differential(layer: layer, read: nil)
            XCTAssertNotEqual(on, on0, "read noise")
            var r = Xoshiro256StarStar(seed: UInt64(layer))
            let mask = (0..<on.count).map { _ in UInt8(r.int(below: 2)) }
            var out = [Float](repeating: .nan, count: on.count)
            mask.withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { o in
                src.programmed(layer: layer, read: 5, mask: m.baseAddress!, into: o.baseAddress!) } }
            XCTAssertEqual(out, (0..<on.count).map { mask[$0] != 0 ? on[$0] : off[$0] })
        }
        XCTAssertThrowsError(try DeviceWeightSource(target: "no-such-profile", seed: 1, layers: shapes))
    }
}
