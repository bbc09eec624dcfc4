import XCTest
import Randomness
@testable import Segmentation

// Every expected value here comes from an oracle written for the test, not from Metrics.swift:
// ROC-AUC by counting all positive-negative pairs (and by the trapezoid over ROC points); AP and
// the trapezoid PR-AUC by listing every distinct threshold, recounting tp and fp from scratch
// at each, and then following sklearn's `precision_recall_curve` / `average_precision_score`
// and `np.trapz` step by step.

/// Values are in [0, 1], so the tolerance is relative to max(1, |expected|).
private let tolerance = 1e-12

private struct Oracle {
    let positives: Int
    let negatives: Int
    let rocPairs: Double?       // Mann-Whitney pair count
    let rocTrapezoid: Double?   // trapezoid over (FPR, TPR) points
    let averagePrecision: Double?
    let prTrapezoid: Double?

    init(scores: [Float], labels: [Bool]) {
        let p = labels.filter { $0 }.count
        let n = labels.count - p
        positives = p
        negatives = n

        var greater = 0.0, equal = 0.0
        for i in scores.indices where labels[i] {
            for j in scores.indices where !labels[j] {
                if scores[i] > scores[j] { greater += 1 } else if scores[i] == scores[j] { equal += 1 }
            }
        }
        rocPairs = p > 0 && n > 0 ? (greater + 0.5 * equal) / (Double(p) * Double(n)) : nil

        // Distinct thresholds, highest first (Float's == and hashing make -0.0 and +0.0 one value).
        let thresholds = Array(Set(scores)).sorted(by: >)
        var tps: [Int] = [], fps: [Int] = []
        for t in thresholds {
            var tp = 0, fp = 0
            for i in scores.indices where scores[i] >= t {
                if labels[i] { tp += 1 } else { fp += 1 }
            }
            tps.append(tp)
            fps.append(fp)
        }

        if p > 0 && n > 0 {
            // sklearn roc_curve (without drop_intermediate): (0, 0) then one point per threshold.
            var fpr = [0.0], tpr = [0.0]
            for k in thresholds.indices {
                fpr.append(Double(fps[k]) / Double(n))
                tpr.append(Double(tps[k]) / Double(p))
            }
            rocTrapezoid = trapz(y: tpr, x: fpr)
        } else {
            rocTrapezoid = nil
        }

        guard p > 0 else { averagePrecision = nil; prTrapezoid = nil; return }
        // sklearn precision_recall_curve: precision and recall per threshold (highest first),
        // cut after the first threshold reaching full recall, reversed, then (recall 0,
        // precision 1) appended.
        let precisionDesc = thresholds.indices.map { Double(tps[$0]) / Double(tps[$0] + fps[$0]) }
        let recallDesc = thresholds.indices.map { Double(tps[$0]) / Double(tps.last!) }
        let lastInd = tps.firstIndex(of: tps.last!)!
        let precision = Array(precisionDesc[0...lastInd].reversed()) + [1.0]
        let recall = Array(recallDesc[0...lastInd].reversed()) + [0.0]
        // average_precision_score: -sum(diff(recall) * precision[:-1]).
        var ap = 0.0
        for k in 1..<recall.count { ap -= (recall[k] - recall[k - 1]) * precision[k - 1] }
        averagePrecision = ap
        // The paper's code: flip both arrays, np.trapz(precision, recall).
        prTrapezoid = trapz(y: Array(precision.reversed()), x: Array(recall.reversed()))
    }
}

/// numpy's trapz(y, x).
private func trapz(y: [Double], x: [Double]) -> Double {
    var s = 0.0
    for k in 1..<max(1, x.count) { s += (x[k] - x[k - 1]) * (y[k] + y[k - 1]) / 2 }
    return s
}

private func assertClose(_ got: Double?, _ expected: Double?, _ what: String,
                         file: StaticString = #filePath, line: UInt = #line) {
    switch (got, expected) {
    case (nil, nil):
        return
    case let (g?, e?):
        let err = abs(g - e)
        XCTAssertTrue(err <= tolerance * max(1, abs(e)),
                      "\(what): expected \(e), got \(g) (error \(err), tolerance \(tolerance) relative)",
                      file: file, line: line)
    default:
        XCTFail("\(what): expected \(String(describing: expected)), got \(String(describing: got))",
                file: file, line: line)
    }
}

/// The confusion counts at `t` by direct counting, and the statistics from their definitions.
private func assertThreshold(_ ps: PixelScores, scores: [Float], labels: [Bool], at t: Float, _ name: String,
                             file: StaticString = #filePath, line: UInt = #line) {
    var tp = 0, fp = 0, tn = 0, fn = 0
    for i in scores.indices {
        let predicted = scores[i] >= t
        switch (predicted, labels[i]) {
        case (true, true): tp += 1
        case (true, false): fp += 1
        case (false, false): tn += 1
        case (false, true): fn += 1
        }
    }
    let m = ps.thresholdMetrics(at: t)
    let what = "\(name), threshold \(t)"
    XCTAssertEqual(m.threshold.bitPattern, t.bitPattern, "\(what): threshold", file: file, line: line)
    XCTAssertEqual([m.tp, m.fp, m.tn, m.fn], [tp, fp, tn, fn], "\(what): [tp, fp, tn, fn]", file: file, line: line)
    func r(_ a: Int, _ b: Int) -> Double? { b == 0 ? nil : Double(a) / Double(b) }
    assertClose(m.accuracy, r(tp + tn, scores.count), "\(what): accuracy", file: file, line: line)
    assertClose(m.sensitivity, r(tp, tp + fn), "\(what): sensitivity", file: file, line: line)
    assertClose(m.specificity, r(tn, tn + fp), "\(what): specificity", file: file, line: line)
    assertClose(m.precision, r(tp, tp + fp), "\(what): precision", file: file, line: line)
    // F1 as the harmonic mean where precision and recall exist; 0 when only one of them
    // exists (then tp is 0: positives but no predicted positive, or the reverse, as sklearn
    // scores it); undefined with neither.
    let f1: Double?
    if let pr = r(tp, tp + fp), let rc = r(tp, tp + fn) {
        f1 = pr + rc == 0 ? 0 : 2 * pr * rc / (pr + rc)
    } else if tp + fn > 0 || tp + fp > 0 {
        f1 = 0
    } else {
        f1 = nil
    }
    assertClose(m.f1, f1, "\(what): f1", file: file, line: line)
}

private func checkAgainstOracle(scores: [Float], labels: [Bool], _ name: String,
                                file: StaticString = #filePath, line: UInt = #line) throws {
    let ps = try PixelScores(scores: scores, labels: labels)
    let m = ps.curveMetrics()
    let o = Oracle(scores: scores, labels: labels)
    XCTAssertEqual(m.positives, o.positives, "\(name): positives", file: file, line: line)
    XCTAssertEqual(m.negatives, o.negatives, "\(name): negatives", file: file, line: line)
    assertClose(m.rocAUC, o.rocPairs, "\(name): ROC-AUC vs pair count", file: file, line: line)
    assertClose(m.rocAUC, o.rocTrapezoid, "\(name): ROC-AUC vs ROC trapezoid", file: file, line: line)
    assertClose(m.averagePrecision, o.averagePrecision, "\(name): average precision", file: file, line: line)
    assertClose(m.prAUCTrapezoid, o.prTrapezoid, "\(name): trapezoid PR-AUC", file: file, line: line)
}

/// A random case: with `levels` > 0, scores drawn from that many levels in [0, 1] (0.5 among
/// them when the count is odd), positives biased upwards; with `levels` == 0, continuous
/// scores (normal, shifted for positives) salted with -0.0, +0.0, infinities.
private func randomCase(_ rng: inout Xoshiro256StarStar, count n: Int, levels: Int, positiveRate: Double) -> ([Float], [Bool]) {
    var scores: [Float] = [], labels: [Bool] = []
    for _ in 0..<n {
        let label = rng.uniform() < positiveRate
        let s: Float
        if levels > 0 {
            let k = min(levels - 1, rng.int(below: levels) + (label ? rng.int(below: 2) : 0))
            s = levels == 1 ? 0.5 : Float(k) / Float(levels - 1)
        } else {
            switch rng.int(below: 40) {
            case 0: s = -0.0
            case 1: s = 0.0
            case 2: s = .infinity
            case 3: s = -.infinity
            default: s = Float(rng.normal() + (label ? 0.8 : 0))
            }
        }
        scores.append(s)
        labels.append(label)
    }
    return (scores, labels)
}

final class MetricsTests: XCTestCase {
    func testRandomCasesAgainstOracles() throws {
        var rng = Xoshiro256StarStar(seed: 20_240_611)
        let rates = [0.02, 0.1, 0.3, 0.5, 0.8, 0.97]
        var tied = 0, untied = 0
        for c in 0..<260 {
            let n = 1 + rng.int(below: 300)
            let levels = c % 3 == 2 ? 0 : 1 + rng.int(below: 7)
            let rate = rates[rng.int(below: rates.count)]
            let (scores, labels) = randomCase(&rng, count: n, levels: levels, positiveRate: rate)
            let name = "case \(c) (n \(n), \(levels == 0 ? "continuous" : "\(levels) levels"), positive rate \(rate))"
            try checkAgainstOracle(scores: scores, labels: labels, name)
            let ps = try PixelScores(scores: scores, labels: labels)
            var thresholds: [Float] = [0.5, -.infinity, .infinity, -0.0]
            for s in Set(scores).sorted().prefix(8) { thresholds += [s, s.nextUp, s.nextDown] }
            for t in thresholds { assertThreshold(ps, scores: scores, labels: labels, at: t, name) }
            if levels == 0 { untied += 1 } else { tied += 1 }
        }
        XCTAssertGreaterThanOrEqual(tied, 150, "tied cases")
        XCTAssertGreaterThanOrEqual(untied, 80, "untied cases")
    }

    /// Larger cases: the radix sort's passes over keys that differ in every digit.
    func testLargerCasesAgainstOracles() throws {
        var rng = Xoshiro256StarStar(seed: 77)
        for (c, levels) in [0, 0, 256, 3].enumerated() {
            let (scores, labels) = randomCase(&rng, count: 2500, levels: levels, positiveRate: 0.15)
            try checkAgainstOracle(scores: scores, labels: labels, "large case \(c) (\(levels) levels)")
        }
    }

    func testDefaultThresholdIsOneHalfInclusive() throws {
        let ps = try PixelScores(scores: [0.5, 0.4999, 0.5, 0.7], labels: [true, true, false, false])
        let m = ps.thresholdMetrics()
        XCTAssertEqual(m.threshold, 0.5, "default threshold")
        XCTAssertEqual([m.tp, m.fp, m.tn, m.fn], [1, 2, 0, 1], "score 0.5 is predicted positive at 0.5")
    }

    func testEmpty() {
        let ps = PixelScores()
        let m = ps.curveMetrics()
        XCTAssertEqual([m.positives, m.negatives], [0, 0], "empty: counts")
        XCTAssertNil(m.rocAUC, "empty: ROC-AUC")
        XCTAssertNil(m.averagePrecision, "empty: AP")
        XCTAssertNil(m.prAUCTrapezoid, "empty: trapezoid PR-AUC")
        let t = ps.thresholdMetrics()
        XCTAssertEqual([t.tp, t.fp, t.tn, t.fn], [0, 0, 0, 0], "empty: counts at 0.5")
        XCTAssertNil(t.accuracy, "empty: accuracy")
        XCTAssertNil(t.sensitivity, "empty: sensitivity")
        XCTAssertNil(t.specificity, "empty: specificity")
        XCTAssertNil(t.precision, "empty: precision")
        XCTAssertNil(t.f1, "empty: F1")
    }

    func testAllOneClass() throws {
        let scores: [Float] = [0.1, 0.9, 0.9, 0.3, 0.6]
        let pos = try PixelScores(scores: scores, labels: Array(repeating: true, count: 5)).curveMetrics()
        XCTAssertNil(pos.rocAUC, "all positive: ROC-AUC needs a negative")
        // Without negatives every threshold has precision 1.
        assertClose(pos.averagePrecision, 1, "all positive: AP")
        assertClose(pos.prAUCTrapezoid, 1, "all positive: trapezoid PR-AUC")
        let neg = try PixelScores(scores: scores, labels: Array(repeating: false, count: 5)).curveMetrics()
        XCTAssertNil(neg.rocAUC, "all negative: ROC-AUC")
        XCTAssertNil(neg.averagePrecision, "all negative: AP needs a positive")
        XCTAssertNil(neg.prAUCTrapezoid, "all negative: trapezoid PR-AUC needs a positive")
        try checkAgainstOracle(scores: scores, labels: Array(repeating: true, count: 5), "all positive")
        try checkAgainstOracle(scores: scores, labels: Array(repeating: false, count: 5), "all negative")
        for label in [true, false] {
            let labels = Array(repeating: label, count: 5)
            let ps = try PixelScores(scores: scores, labels: labels)
            for t: Float in [0.5, 0.95, 0.05] { assertThreshold(ps, scores: scores, labels: labels, at: t, "all \(label)") }
        }
        // All negative at 0.5: three false positives, so F1 = 0 / (0 + 3 + 0) and precision 0.
        let t = try PixelScores(scores: scores, labels: Array(repeating: false, count: 5)).thresholdMetrics()
        XCTAssertNil(t.sensitivity, "all negative: sensitivity")
        XCTAssertEqual(t.f1, 0, "all negative with 3 predicted positives: F1")
        XCTAssertEqual(t.precision, 0, "all negative with 3 predicted positives: precision")
    }

    func testSinglePixel() throws {
        for label in [true, false] {
            let ps = try PixelScores(scores: [0.7], labels: [label])
            let m = ps.curveMetrics()
            XCTAssertNil(m.rocAUC, "single pixel (label \(label)): ROC-AUC")
            if label {
                assertClose(m.averagePrecision, 1, "single positive pixel: AP")
                assertClose(m.prAUCTrapezoid, 1, "single positive pixel: trapezoid PR-AUC")
            } else {
                XCTAssertNil(m.averagePrecision, "single negative pixel: AP")
            }
            for t: Float in [0.7, 0.5, 0.9] {
                assertThreshold(ps, scores: [0.7], labels: [label], at: t, "single pixel (label \(label))")
            }
        }
    }

    func testAllScoresEqual() throws {
        var rng = Xoshiro256StarStar(seed: 5)
        for c in 0..<20 {
            let n = 2 + rng.int(below: 50)
            var labels = (0..<n).map { _ in rng.uniform() < 0.4 }
            labels[0] = true
            labels[1] = false
            let p = labels.filter { $0 }.count
            let m = try PixelScores(scores: Array(repeating: 0.25, count: n), labels: labels).curveMetrics()
            let name = "all equal, case \(c) (\(p) of \(n) positive)"
            assertClose(m.rocAUC, 0.5, "\(name): ROC-AUC")
            // One threshold: recall 1 at precision p/n.
            assertClose(m.averagePrecision, Double(p) / Double(n), "\(name): AP")
            // Points (0, 1) and (1, p/n).
            assertClose(m.prAUCTrapezoid, (1 + Double(p) / Double(n)) / 2, "\(name): trapezoid PR-AUC")
        }
    }

    func testPerfectAndReversedSeparation() throws {
        var rng = Xoshiro256StarStar(seed: 9)
        for c in 0..<20 {
            let n = 2 + rng.int(below: 100)
            var labels = (0..<n).map { _ in rng.uniform() < 0.3 }
            labels[0] = true
            labels[n - 1] = false
            // Positives score in [0.6, 1], negatives in [0, 0.4] (ties within each class allowed).
            let scores = labels.map { l in Float(rng.int(below: 5)) / 10 + (l ? 0.6 : 0) }
            let name = "separation case \(c) (n \(n))"
            let perfect = try PixelScores(scores: scores, labels: labels).curveMetrics()
            assertClose(perfect.rocAUC, 1, "\(name): perfect ROC-AUC")
            assertClose(perfect.averagePrecision, 1, "\(name): perfect AP")
            assertClose(perfect.prAUCTrapezoid, 1, "\(name): perfect trapezoid PR-AUC")
            let flipped = labels.map { !$0 }
            let reversed = try PixelScores(scores: scores, labels: flipped).curveMetrics()
            assertClose(reversed.rocAUC, 0, "\(name): reversed ROC-AUC")
            try checkAgainstOracle(scores: scores, labels: flipped, "\(name), reversed")
        }
    }

    func testSignedZerosAreOneThreshold() throws {
        let m = try PixelScores(scores: [-0.0, 0.0, -0.0, 0.0], labels: [true, false, false, true]).curveMetrics()
        assertClose(m.rocAUC, 0.5, "-0.0 vs +0.0: ROC-AUC")
        assertClose(m.averagePrecision, 0.5, "-0.0 vs +0.0: AP (one threshold, precision 1/2)")
    }

    func testThresholdDegenerateCases() throws {
        // Positives exist, nothing predicted positive: precision undefined, F1 = 0.
        let a = try PixelScores(scores: [0.1, 0.2, 0.3], labels: [true, false, true]).thresholdMetrics(at: 0.9)
        XCTAssertNil(a.precision, "no predicted positives: precision")
        XCTAssertEqual(a.f1, 0, "no predicted positives, 2 positives: F1")
        XCTAssertEqual(a.sensitivity, 0, "no predicted positives: sensitivity")
        // No positives, nothing predicted positive: F1 and sensitivity undefined.
        let b = try PixelScores(scores: [0.1, 0.2], labels: [false, false]).thresholdMetrics(at: 0.9)
        XCTAssertNil(b.f1, "no positives, no predicted positives: F1")
        XCTAssertNil(b.sensitivity, "no positives: sensitivity")
        XCTAssertEqual(b.specificity, 1, "no positives: specificity")
        // No negatives: specificity undefined.
        let c = try PixelScores(scores: [0.1, 0.8], labels: [true, true]).thresholdMetrics()
        XCTAssertNil(c.specificity, "no negatives: specificity")
        XCTAssertEqual(c.precision, 1, "no negatives: precision")
        // A NaN threshold predicts nothing positive.
        let d = try PixelScores(scores: [0.1, 0.8], labels: [true, false]).thresholdMetrics(at: .nan)
        XCTAssertEqual([d.tp, d.fp, d.tn, d.fn], [0, 0, 1, 1], "NaN threshold: counts")
    }

    func testMaskAndAccumulation() throws {
        var rng = Xoshiro256StarStar(seed: 31)
        var acc = PixelScores(), acc8 = PixelScores()
        var allScores: [Float] = [], allLabels: [Bool] = []
        for image in 0..<6 {
            let n = 50 + rng.int(below: 200)
            let (scores, labels) = randomCase(&rng, count: n, levels: image % 2 == 0 ? 5 : 0, positiveRate: 0.2)
            let mask = (0..<n).map { _ in rng.uniform() < 0.7 }
            try acc.append(scores: scores, labels: labels, mask: mask)
            try acc8.append(scores: scores, labels: labels.map { $0 ? 255 : 0 }, mask: mask.map { $0 ? UInt8(1 + rng.int(below: 255)) : 0 })
            for i in 0..<n where mask[i] { allScores.append(scores[i]); allLabels.append(labels[i]) }
        }
        let direct = try PixelScores(scores: allScores, labels: allLabels)
        XCTAssertEqual(acc.count, allScores.count, "masked accumulation: pixel count")
        XCTAssertEqual(acc.curveMetrics(), direct.curveMetrics(), "masked accumulation vs the masked-in pixels at once")
        XCTAssertEqual(acc8.curveMetrics(), direct.curveMetrics(), "8-bit labels and mask vs Bool")
        XCTAssertEqual(acc.thresholdMetrics(), direct.thresholdMetrics(), "masked accumulation: threshold metrics")
        try checkAgainstOracle(scores: allScores, labels: allLabels, "masked accumulation of 6 images")
    }

    func testMismatchedLengthsThrowAndAppendNothing() throws {
        var ps = try PixelScores(scores: [0.2, 0.8], labels: [false, true])
        let before = ps.curveMetrics()
        func expectError(_ what: String, _ body: () throws -> Void) {
            do {
                try body()
                XCTFail("\(what): expected SegmentationError, nothing thrown")
            } catch let e as SegmentationError {
                XCTAssertNil(e.file, "\(what): no file involved")
                XCTAssertFalse(e.description.isEmpty, "\(what): description")
            } catch {
                XCTFail("\(what): expected SegmentationError, got \(error)")
            }
        }
        expectError("labels shorter") { try ps.append(scores: [0.1, 0.2, 0.3], labels: [true, false]) }
        expectError("mask longer") { try ps.append(scores: [0.1, 0.2], labels: [true, false], mask: [true, true, true]) }
        expectError("8-bit labels longer") { try ps.append(scores: [0.1], labels: [UInt8]([0, 255])) }
        expectError("8-bit mask shorter") { try ps.append(scores: [0.1, 0.2], labels: [UInt8]([0, 255]), mask: [1]) }
        expectError("init with mismatch") { _ = try PixelScores(scores: [0.1], labels: []) }
        expectError("NaN score") { try ps.append(scores: [0.1, .nan, 0.3], labels: [true, false, true]) }
        XCTAssertEqual(ps.count, 2, "failed appends add nothing")
        XCTAssertEqual(ps.curveMetrics(), before, "failed appends leave the metrics unchanged")
        // A NaN outside the field of view is not a counted pixel.
        try ps.append(scores: [.nan, 0.3], labels: [true, true], mask: [false, true])
        XCTAssertEqual(ps.positives, 2, "masked-out NaN ignored, the other pixel added")
        let e = SegmentationError("bad", file: "x.png")
        XCTAssertEqual(e.description, "x.png: bad", "error description with a file")
        XCTAssertEqual(SegmentationError("bad").description, "bad", "error description without a file")
    }

    /// DRIVE-sized data (20 images x ~227k field-of-view pixels): the 8-bit-quantized case is
    /// checked against an oracle over the 256-level histogram, the continuous case against the
    /// binormal ROC-AUC; both are timed.
    func testDriveSizedTiming() throws {
        let n = 4_540_000
        var rng = Xoshiro256StarStar(seed: 123)
        var quantized = [Float](repeating: 0, count: n)
        var continuous = [Float](repeating: 0, count: n)
        var labels = [Bool](repeating: false, count: n)
        var posHist = [Int](repeating: 0, count: 256), negHist = [Int](repeating: 0, count: 256)
        for i in 0..<n {
            let l = rng.uniform() < 0.12
            let z = rng.normal() + (l ? 1 : 0)
            labels[i] = l
            continuous[i] = Float(z)
            let k = max(0, min(255, Int((z + 3) * 40)))
            quantized[i] = Float(k) / 255
            if l { posHist[k] += 1 } else { negHist[k] += 1 }
        }
        let clock = ContinuousClock()
        var q = PixelScores(), c = PixelScores()
        var mq: CurveMetrics?, mc: CurveMetrics?
        let tq = try clock.measure {
            try q.append(scores: quantized, labels: labels)
            mq = q.curveMetrics()
            _ = q.thresholdMetrics()
        }
        let tc = try clock.measure {
            try c.append(scores: continuous, labels: labels)
            mc = c.curveMetrics()
            _ = c.thresholdMetrics()
        }
        #if DEBUG
        let build = "debug build"
        #else
        let build = "release build"
        #endif
        print("PixelScores over \(n) pixels (append + curve + threshold metrics, \(build)): quantized to 256 levels \(tq), continuous \(tc)")

        // Histogram oracle: the levels, highest first, are the distinct thresholds.
        let p = posHist.reduce(0, +), nn = negHist.reduce(0, +)
        var u = 0.0, negBelow = nn, tp = 0, fp = 0, ap = 0.0, trap = 0.0, r0 = 0.0, p0 = 1.0
        for k in stride(from: 255, through: 0, by: -1) where posHist[k] + negHist[k] > 0 {
            negBelow -= negHist[k]
            u += Double(posHist[k]) * (Double(negBelow) + 0.5 * Double(negHist[k]))
            tp += posHist[k]
            fp += negHist[k]
            let r = Double(tp) / Double(p), pr = Double(tp) / Double(tp + fp)
            ap += (r - r0) * pr
            trap += (r - r0) * (pr + p0) / 2
            r0 = r
            p0 = pr
        }
        assertClose(mq?.rocAUC, u / (Double(p) * Double(nn)), "quantized 4.5M: ROC-AUC vs histogram pair count")
        assertClose(mq?.averagePrecision, ap, "quantized 4.5M: AP vs histogram")
        assertClose(mq?.prAUCTrapezoid, trap, "quantized 4.5M: trapezoid PR-AUC vs histogram")
        // Unit normals one standard deviation apart: AUC = Phi(1 / sqrt 2) = 0.76025; the
        // sampling error with ~545k positives is ~0.0005.
        let binormal = 0.760249
        let got = mc?.rocAUC ?? -1
        XCTAssertEqual(got, binormal, accuracy: 0.004, "continuous 4.5M: ROC-AUC vs binormal \(binormal), got \(got)")
    }
}
