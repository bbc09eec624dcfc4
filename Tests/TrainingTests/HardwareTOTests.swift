import XCTest
import Foundation
import Randomness
@testable import Training

/// Hardware TO: weight normalisation, the learning-rate limit schedule, the noisy-read evaluation.
final class HardwareTOTests: XCTestCase {
    let train = syntheticSplit(count: 240, seed: 1)
    let test = syntheticSplit(count: 200, seed: 2)

    func hardwareConfig() -> TrainConfig {
        var c = smallConfig(epochs: 2); c.mode = "hardware"
        c.weightNorm = .rms; c.limitSchedule = .learningRate; c.limitStart = 0.2; c.limitEnd = 0.007
        return c
    }

    func testRMSNormalisationGivesTheSignedConstantSecondMoment() throws {
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        for norm in [WeightNorm.rms, .meanAbs] {
            var cfg = hardwareConfig(); cfg.weightNorm = norm
            let t = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
            for m in t.net.masked {
                let on = m.wOn.array.map(Double.init)
                let size = norm == .rms ? (on.reduce(0) { $0 + $1 * $1 } / Double(m.count)).squareRoot()
                                        : on.reduce(0) { $0 + abs($1) } / Double(m.count)
                XCTAssertEqual(size, m.targetStd, accuracy: 1e-4 * m.targetStd, "\(norm) \(m.name)")
                // w_off and every read share the same scale
                let raw = src.differential(layer: t.net.masked.firstIndex { $0 === m }!, read: nil)
                XCTAssertEqual(Double(m.wOff[3]), Double(raw.off[3] * m.scale), accuracy: 1e-6)
            }
        }
    }

    func testLearningRateLimitScheduleFollowsTheLearningRate() throws {
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        let t = try Trainer(config: hardwareConfig(), train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        XCTAssertEqual(t.limit(step: 0), 0.2, accuracy: 1e-12)
        for s in [1, 3, 5, 7] {
            XCTAssertEqual(t.limit(step: s), 0.007 + (0.2 - 0.007) * t.learningRate(step: s) / 0.1, accuracy: 1e-12)
        }
        XCTAssertLessThan(t.limit(step: 7), t.limit(step: 1))
        var off = hardwareConfig(); off.hysteresis = false
        let t0 = try Trainer(config: off, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        XCTAssertEqual(t0.limit(step: 3), 0)
        // the per-epoch record carries the limit of its first batch
        try t.trainEpoch(); try t.trainEpoch()
        XCTAssertEqual(t.history[0].limit, 0.2, accuracy: 1e-12)
        XCTAssertEqual(t.history[1].limit, t.limit(step: t.batchesPerEpoch), accuracy: 1e-12)
        XCTAssertLessThan(t.history[1].limit, 0.2)
    }

    /// `hysteresisExempt`: the listed layers take the plain top-k mask at every update (mask ==
    /// the last top-k candidate), the others keep their hysteresis; bad lists are errors.
    func testHysteresisExemptLayersUsePlainTopK() throws {
        var cfg = hardwareConfig(); cfg.limitStart = 0.3; cfg.limitEnd = 0.3   // a strong limit everywhere else
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        let names = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs()).net.masked.map(\.name)
        XCTAssertGreaterThanOrEqual(names.count, 2)
        for exempt in names {
            cfg.hysteresisExempt = [exempt]
            let t = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
            try t.trainEpoch(); try t.trainEpoch()
            for m in t.net.masked {
                let differs = zip(m.mask.array, m.candidate.array).filter { $0 != $1 }.count
                if m.name == exempt {
                    XCTAssertEqual(differs, 0, "exempt layer \(m.name): the mask is the top-k candidate")
                } else {
                    XCTAssertGreaterThan(differs, 0, "layer \(m.name) (exempt: \(exempt)): hysteresis holds some bits")
                }
            }
            XCTAssertGreaterThan(t.history.last!.flips[exempt]!, 0)
        }
        cfg.hysteresisExempt = ["conv9"]
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())) {
            XCTAssertTrue("\($0)".contains("'conv9'") && "\($0)".contains(names[0]), "\($0)")
        }
        cfg.hysteresisExempt = [names[0], names[0]]
        XCTAssertThrowsError(try cfg.validate()) { XCTAssertTrue("\($0)".contains("twice"), "\($0)") }
        // checkpoints from before the option: no key, decoded as nil = no exempt layer
        cfg.hysteresisExempt = nil
        let json = try JSONEncoder().encode(cfg)
        XCTAssertFalse(String(decoding: json, as: UTF8.self).contains("hysteresisExempt"))
        XCTAssertNil(try JSONDecoder().decode(TrainConfig.self, from: json).hysteresisExempt)
    }

    /// The hysteresis figures of two finished twin runs, in either order; mismatched or
    /// unfinished runs are errors.
    func testHysteresisComparisonOfTwinRuns() throws {
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        var cfg = hardwareConfig(); cfg.limitStart = 0.3; cfg.limitEnd = 0.3
        let with = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        var off = cfg; off.hysteresis = false; off.limitStart = 0.3; off.hysteresisExempt = ["conv1"]
        let without = try Trainer(config: off, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        try with.trainEpoch()
        XCTAssertThrowsError(try HysteresisComparison(with.meta(), without.meta())) { XCTAssertTrue("\($0)".contains("finished 1 of its 2"), "\($0)") }
        XCTAssertThrowsError(try HysteresisComparison.finalRecord(with.meta()))   // what prune checks before training
        try with.trainEpoch(); try without.trainEpoch(); try without.trainEpoch()
        let c = try HysteresisComparison(without.meta(), with.meta())
        XCTAssertEqual(c, try HysteresisComparison(with.meta(), without.meta()))
        XCTAssertEqual(c.flipsWith, with.history.last!.flipsTotal)
        XCTAssertEqual(c.flipsWithout, without.history.last!.flipsTotal)
        XCTAssertEqual(c.fewerFlips, 1 - Double(c.flipsWith) / Double(c.flipsWithout), accuracy: 1e-15)
        XCTAssertGreaterThan(c.fewerFlips, 0)
        XCTAssertEqual(c.costPoints, 100 * (without.history.last!.testAccuracy - with.history.last!.testAccuracy), accuracy: 1e-12)
        XCTAssertThrowsError(try HysteresisComparison(with.meta(), with.meta())) { XCTAssertTrue("\($0)".contains("both runs use"), "\($0)") }
        var other = off; other.seed = 2
        XCTAssertThrowsError(try HysteresisComparison.checkTwins(cfg, other)) { XCTAssertTrue("\($0)".contains("more than the hysteresis options"), "\($0)") }
        other = off; other.lr = 0.2
        XCTAssertThrowsError(try HysteresisComparison.checkTwins(cfg, other))
    }

    func testConfigurationsFromBeforeTheOptionsDecodeAsThePaperSchedule() throws {
        var cfg = TrainConfig(); cfg.limitSchedule = nil; cfg.weightNorm = nil
        let json = try JSONEncoder().encode(cfg)
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertFalse(text.contains("limitSchedule")); XCTAssertFalse(text.contains("weightNorm"))
        let back = try JSONDecoder().decode(TrainConfig.self, from: json)
        XCTAssertNil(back.limitSchedule); XCTAssertNil(back.weightNorm)
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        var old = smallConfig(epochs: 2); old.mode = "hardware"; old.limitSchedule = nil; old.weightNorm = nil
        old.limitStart = 0.01   // the default of those checkpoints (saved explicitly in them)
        let t = try Trainer(config: old, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        XCTAssertEqual(t.limit(step: 5), 0.01, accuracy: 1e-12)   // best-accuracy schedule, step 0
        let m = t.net.masked[1]
        XCTAssertEqual(m.wOn.array.reduce(0) { $0 + Double(abs($1)) } / Double(m.count), m.targetStd, accuracy: 1e-4 * m.targetStd)
    }

    func testHardwareRunIsIdenticalWithOneOrTwoThreadsAndResumes() throws {
        let cfg = hardwareConfig()
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        let a = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        let b = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        for _ in 0..<2 { try a.trainEpoch(); try b.trainEpoch() }
        XCTAssertEqual(a.history.map { $0.timeless }, b.history.map { $0.timeless })
        for (x, y) in zip(a.net.masked, b.net.masked) { XCTAssertEqual(x.mask.array, y.mask.array); XCTAssertEqual(x.sRef.array, y.sRef.array) }
        let dir = NSTemporaryDirectory() + "rram-hwto-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        try first.trainEpoch(); try first.save(to: dir)
        let second = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        try second.restore(try Checkpoint.read(dir: dir))
        try second.trainEpoch()
        XCTAssertEqual(a.history.map { $0.timeless }, second.history.map { $0.timeless })
        for (x, y) in zip(a.net.masked, second.net.masked) { XCTAssertEqual(x.scores.array, y.scores.array) }
    }

    func testNoisyReadEvaluationIsLoggedAndLeavesTheNominalWeights() throws {
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts, readNoise: 0.3)
        var cfg = hardwareConfig(); cfg.epochs = 1
        let t = try Trainer(config: cfg, train: train, test: test, source: src, threads: 2, specs: tinySpecs())
        let r = try t.trainEpoch()
        let read = try XCTUnwrap(r.testAccuracyRead)
        XCTAssertNotNil(r.testLossRead)
        XCTAssertNotEqual(r.testLossRead!, r.testLoss, "a noisy read is not the nominal conductance")
        // the read is the one a chip pass would give: evaluate it by hand
        t.net.applyMasks(source: src, read: Trainer.evalReadBase + 1)
        XCTAssertEqual(t.evaluate(test).accuracy, read)
        t.net.applyMasks()
        // after the epoch the layers hold the nominal effective weights again
        XCTAssertEqual(t.evaluate(test).accuracy, r.testAccuracy)
        for (j, m) in t.net.masked.enumerated() {
            let w = t.net.weights[j].weight
            for i in 0..<m.count { XCTAssertEqual(w[i], m.mask.ptr[i] != 0 ? m.wOn[i] : m.wOff[i]) }
        }
        // software mode and hardware without read noise log no read accuracy
        var quiet = cfg; quiet.readNoise = false
        XCTAssertNil(try Trainer(config: quiet, train: train, test: test, source: src, threads: 1, specs: tinySpecs()).trainEpoch().testAccuracyRead)
        XCTAssertNil(try Trainer(config: smallConfig(epochs: 1), train: train, test: test, threads: 1, specs: tinySpecs()).trainEpoch().testAccuracyRead)
    }

    func testMagnitudeScoreInit() throws {
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        var cfg = hardwareConfig()
        let u = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        cfg.scoreInit = "magnitude"
        let g = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        for (a, b) in zip(u.net.masked, g.net.masked) {
            let on = a.wOn.array.map(Double.init)
            let rms = (on.reduce(0) { $0 + $1 * $1 } / Double(a.count)).squareRoot()
            for i in 0..<a.count { XCTAssertEqual(Double(b.scores[i]), Double(a.scores[i]) * abs(on[i]) / rms, accuracy: 1e-6) }
            XCTAssertEqual(b.sRef.array, b.scores.array)
            var top = [UInt8](repeating: 0, count: b.count)
            top.withUnsafeMutableBufferPointer { b.topK(into: $0.baseAddress!) }
            XCTAssertEqual(b.mask.array, top)
        }
        // signed constants have one magnitude: the same scores as the uniform init
        var sw = smallConfig(epochs: 1); sw.scoreInit = "magnitude"
        let s1 = try Trainer(config: sw, train: train, test: test, threads: 1, specs: tinySpecs())
        let s0 = try Trainer(config: smallConfig(epochs: 1), train: train, test: test, threads: 1, specs: tinySpecs())
        for (a, b) in zip(s0.net.masked, s1.net.masked) {
            for i in 0..<a.count { XCTAssertEqual(a.scores[i], b.scores[i], accuracy: 1e-6 * abs(a.scores[i])) }
        }
        cfg.scoreInit = "bogus"
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs()))
    }

    func testSignScoreGradient() throws {
        let src = SyntheticDifferentialSource(seed: 5, counts: tinyCounts)
        var cfg = hardwareConfig(); cfg.scoreGradient = .sign
        let t = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        var rng = Xoshiro256StarStar(seed: 77)
        for m in t.net.masked {
            let d = (0..<m.count).map { Double(m.wOn[$0] - m.wOff[$0]) }
            let rms = (d.reduce(0) { $0 + $1 * $1 } / Double(m.count)).squareRoot()
            XCTAssertEqual(Double(m.signGradientScale), rms, accuracy: 1e-6 * rms, m.name)
            XCTAssertGreaterThan(m.signGradientScale, 0)
            var dW = (0..<m.count).map { _ in Float(rng.uniform(-1, 1)) }
            m.scores[0] = 0   // sign(0) = 0
            dW.withUnsafeMutableBufferPointer { m.scoreGradient(from: $0.baseAddress!) }
            for i in 0..<m.count {
                let f: Float = d[i] > 0 ? m.signGradientScale : (d[i] < 0 ? -m.signGradientScale : 0)
                let sg: Float = m.scores[i] > 0 ? 1 : (m.scores[i] < 0 ? -1 : 0)
                XCTAssertEqual(m.scoreGrad[i], dW[i] * f * sg, "\(m.name)[\(i)]")
            }
            XCTAssertEqual(m.scoreGrad[0], 0)
        }
        // the edge-popup gradient, and checkpoints from before the option (nil), use dW * (w_on - w_off)
        for kind in [ScoreGradient.weight, nil] {
            var w = cfg; w.scoreGradient = kind
            let tw = try Trainer(config: w, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
            for m in tw.net.masked { XCTAssertEqual(m.signGradientScale, 0) }
        }
        // different from the edge-popup gradient on continuous weights ...
        var w = cfg; w.scoreGradient = .weight
        let a = try Trainer(config: cfg, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        let b = try Trainer(config: w, train: train, test: test, source: src, threads: 1, specs: tinySpecs())
        try a.trainEpoch(); try b.trainEpoch()
        XCTAssertNotEqual(a.net.masked[1].scores.array, b.net.masked[1].scores.array)
        // ... and bit-identical to it on signed constants (one magnitude per layer, w_off = 0)
        var s = smallConfig(epochs: 2); s.scoreGradient = .sign
        var e = s; e.scoreGradient = .weight
        let ss = try Trainer(config: s, train: train, test: test, threads: 1, specs: tinySpecs())
        let se = try Trainer(config: e, train: train, test: test, threads: 1, specs: tinySpecs())
        for _ in 0..<2 { try ss.trainEpoch(); try se.trainEpoch() }
        XCTAssertEqual(ss.history.map { $0.timeless }, se.history.map { $0.timeless })
        for (x, y) in zip(ss.net.masked, se.net.masked) {
            XCTAssertGreaterThan(x.signGradientScale, 0)
            XCTAssertEqual(x.scores.array, y.scores.array); XCTAssertEqual(x.mask.array, y.mask.array)
        }
    }

    func testTaskAndModeDefaults() {
        let sw = TrainConfig.defaults(task: "fashion-mnist"), hw = TrainConfig.defaults(task: "fashion-mnist", mode: "hardware")
        XCTAssertEqual(sw.mode, "software"); XCTAssertEqual(hw.mode, "hardware")
        XCTAssertEqual(sw.limitStart, 0.3); XCTAssertEqual(hw.limitStart, 0.8)
        XCTAssertEqual(sw.weightDecay, 1e-4); XCTAssertEqual(hw.weightDecay, 1e-4)
        XCTAssertEqual(sw.lr, 0.1); XCTAssertEqual(hw.lr, 0.2)
        XCTAssertEqual(hw.limitSchedule, .learningRate); XCTAssertEqual(hw.weightNorm, .rms); XCTAssertEqual(hw.scoreGradient, .sign)
        XCTAssertEqual(hw.hysteresisExempt, ["conv1", "fc2"]); XCTAssertNil(sw.hysteresisExempt)
        var rest = hw; rest.mode = "software"; rest.limitStart = 0.3; rest.lr = 0.1; rest.hysteresisExempt = nil
        XCTAssertEqual(rest, sw, "hardware differs from software only in the limit, its exempt layers and the learning rate")
        let sd = TrainConfig.defaults(task: "spoken-digit", mode: "hardware")
        XCTAssertEqual(sd.limitStart, 0.009); XCTAssertEqual(sd.limitSchedule, .bestAccuracy)
        XCTAssertEqual(sd.weightNorm, .rms); XCTAssertEqual(sd.scoreGradient, .sign)
        XCTAssertEqual(sd.weightDecay, 5e-4, "the paper's CRNN setting")
    }
}
