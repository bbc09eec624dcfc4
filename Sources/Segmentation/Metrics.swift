// Pixel metrics of a binary segmentation: the curve metrics (ROC-AUC, average precision, the
// trapezoid PR-AUC the paper's code reported) and the statistics at one threshold. The exact
// definitions, tie handling and degenerate cases are specified in docs/SEGMENTATION.md
// ("Metrics"); the tests check each against a brute-force oracle.
//
// The scores of the integer program are quantized, so millions of pixels share a few hundred
// values: every metric treats a group of equal scores as one threshold (sklearn's convention),
// never as an arbitrary order of its members.

/// The scored pixels of one or more images, split by label. Build it once per evaluation and
/// `append` each image with its field-of-view mask; only masked-in pixels count.
///
/// Scores are stored as given except that -0.0 becomes +0.0 (the two compare equal, so they are
/// one threshold). NaN scores are rejected: a NaN is neither above nor below a threshold, and
/// every metric here would silently depend on where a sort put it.
public struct PixelScores: Sendable {
    /// Scores of the pixels labelled positive (vessel), in the order appended.
    public private(set) var positiveScores: [Float] = []
    /// Scores of the pixels labelled negative (background), in the order appended.
    public private(set) var negativeScores: [Float] = []

    public init() {}

    /// The pixels of `scores`/`labels` (where `mask` is set, when one is given).
    /// Throws `SegmentationError` on mismatched lengths or a NaN score.
    public init(scores: [Float], labels: [Bool], mask: [Bool]? = nil) throws {
        try append(scores: scores, labels: labels, mask: mask)
    }

    public var positives: Int { positiveScores.count }
    public var negatives: Int { negativeScores.count }
    public var count: Int { positiveScores.count + negativeScores.count }

    /// Adds one image's pixels: label true = positive; with a mask, only pixels whose mask
    /// entry is true count. On a thrown error nothing is added.
    public mutating func append(scores: [Float], labels: [Bool], mask: [Bool]? = nil) throws {
        try scores.withUnsafeBufferPointer { s in
            try labels.withUnsafeBufferPointer { l in
                if let mask {
                    try mask.withUnsafeBufferPointer { m in try append(scores: s, labels: l, mask: m) }
                } else {
                    try append(scores: s, labels: l, mask: nil)
                }
            }
        }
    }

    /// Same, with 8-bit labels and mask as the DRIVE files hold them (0 = unset, any other
    /// value, usually 255, = set).
    public mutating func append(scores: [Float], labels: [UInt8], mask: [UInt8]? = nil) throws {
        try scores.withUnsafeBufferPointer { s in
            try labels.withUnsafeBufferPointer { l in
                if let mask {
                    try mask.withUnsafeBufferPointer { m in
                        try appendCore(s, l, m, isSet: { $0 != 0 })
                    }
                } else {
                    try appendCore(s, l, nil, isSet: { $0 != 0 })
                }
            }
        }
    }

    /// Same on buffers (no copy of the inputs).
    public mutating func append(scores: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Bool>,
                                mask: UnsafeBufferPointer<Bool>?) throws {
        try appendCore(scores, labels, mask, isSet: { $0 })
    }

    @inline(__always)
    private mutating func appendCore<Flag>(_ scores: UnsafeBufferPointer<Float>, _ labels: UnsafeBufferPointer<Flag>,
                                           _ mask: UnsafeBufferPointer<Flag>?, isSet: (Flag) -> Bool) throws {
        let n = scores.count
        guard labels.count == n else {
            throw SegmentationError("scores has \(n) elements but labels has \(labels.count)")
        }
        if let mask, mask.count != n {
            throw SegmentationError("scores has \(n) elements but mask has \(mask.count)")
        }
        let oldPos = positiveScores.count, oldNeg = negativeScores.count
        // Geometric growth: reserving exactly the new total on every image would copy the
        // whole accumulation once per image.
        if positiveScores.capacity < oldPos + n { positiveScores.reserveCapacity(max(oldPos + n, 2 * oldPos)) }
        if negativeScores.capacity < oldNeg + n { negativeScores.reserveCapacity(max(oldNeg + n, 2 * oldNeg)) }
        var nanIndex = -1
        for i in 0..<n {
            if let mask, !isSet(mask[i]) { continue }
            var s = scores[i]
            if s.isNaN { nanIndex = i; break }
            if s == 0 { s = 0 }  // -0.0 -> +0.0: one threshold, one sort key
            if isSet(labels[i]) { positiveScores.append(s) } else { negativeScores.append(s) }
        }
        if nanIndex >= 0 {
            positiveScores.removeSubrange(oldPos...)
            negativeScores.removeSubrange(oldNeg...)
            throw SegmentationError("score at index \(nanIndex) is NaN")
        }
    }

    /// ROC-AUC, average precision and the trapezoid PR-AUC, in one sort of the scores
    /// (O(n log n) in effect: a radix sort of 32-bit keys, then one merge walk over the
    /// distinct thresholds).
    public func curveMetrics() -> CurveMetrics {
        let p = positiveScores.count, n = negativeScores.count
        let posKeys = sortedKeys(positiveScores)
        let negKeys = sortedKeys(negativeScores)
        // Walk the distinct thresholds from the highest score down; at each, the group of
        // positives (dTP) and negatives (dFP) that share the score joins the predicted set.
        var tp = 0, fp = 0
        var u2 = 0.0          // 2 x Mann-Whitney U; integer-valued, exact in Double below 2^53
        var ap = 0.0
        var trapz = 0.0
        var prevRecall = 0.0, prevPrecision = 1.0   // sklearn's final point (recall 0, precision 1)
        let invP = p > 0 ? 1.0 / Double(p) : 0
        posKeys.withUnsafeBufferPointer { pk in
            negKeys.withUnsafeBufferPointer { nk in
                var i = p - 1, j = n - 1
                while i >= 0 || j >= 0 {
                    let key: UInt32
                    if i < 0 { key = nk[j] } else if j < 0 { key = pk[i] } else { key = max(pk[i], nk[j]) }
                    var dTP = 0, dFP = 0
                    while i >= 0 && pk[i] == key { dTP += 1; i -= 1 }
                    while j >= 0 && nk[j] == key { dFP += 1; j -= 1 }
                    // Each positive of the group beats the negatives strictly below it and ties
                    // the dFP negatives of its own group.
                    u2 += Double(dTP) * Double(2 * (n - fp - dFP) + dFP)
                    tp += dTP
                    fp += dFP
                    if p > 0 {
                        let recall = Double(tp) * invP
                        let precision = Double(tp) / Double(tp + fp)
                        ap += Double(dTP) * invP * precision
                        trapz += (recall - prevRecall) * (precision + prevPrecision) * 0.5
                        prevRecall = recall
                        prevPrecision = precision
                    }
                }
            }
        }
        return CurveMetrics(positives: p, negatives: n,
                            rocAUC: p > 0 && n > 0 ? u2 / (2 * Double(p) * Double(n)) : nil,
                            averagePrecision: p > 0 ? ap : nil,
                            prAUCTrapezoid: p > 0 ? trapz : nil)
    }

    /// The confusion counts and statistics at `threshold`: a pixel is predicted positive when
    /// its score is >= threshold (the paper's code's rule). A NaN threshold predicts every
    /// pixel negative (no score is >= NaN).
    public func thresholdMetrics(at threshold: Float = 0.5) -> ThresholdMetrics {
        let tp = countAtLeast(positiveScores, threshold)
        let fp = countAtLeast(negativeScores, threshold)
        return ThresholdMetrics(threshold: threshold, tp: tp, fp: fp,
                                tn: negativeScores.count - fp, fn: positiveScores.count - tp)
    }
}

/// The threshold-free metrics. A metric is nil when it is undefined for the data:
/// `rocAUC` needs both classes; `averagePrecision` and `prAUCTrapezoid` need a positive
/// (recall divides by the positives). With positives but no negatives both PR metrics are 1.
public struct CurveMetrics: Equatable, Sendable {
    public let positives: Int
    public let negatives: Int
    /// P(score_pos > score_neg) + 0.5 P(score_pos == score_neg) over all positive-negative
    /// pairs = the trapezoid area under the ROC curve through the distinct thresholds
    /// (sklearn `roc_auc_score`).
    public let rocAUC: Double?
    /// sum over the distinct thresholds t, highest first, of (R(t) - R(previous)) * P(t)
    /// (sklearn `average_precision_score`).
    public let averagePrecision: Double?
    /// The trapezoid area under the precision-recall points (recall 0, precision 1), then
    /// (R(t), P(t)) for each distinct threshold t, highest first: sklearn
    /// `precision_recall_curve` reversed, integrated by `np.trapz(precision, recall)`, as the
    /// paper's code did. Interpolates precision linearly, so it is not AP.
    public let prAUCTrapezoid: Double?

    public init(positives: Int, negatives: Int, rocAUC: Double?, averagePrecision: Double?, prAUCTrapezoid: Double?) {
        self.positives = positives
        self.negatives = negatives
        self.rocAUC = rocAUC
        self.averagePrecision = averagePrecision
        self.prAUCTrapezoid = prAUCTrapezoid
    }
}

/// The confusion counts at one threshold and the statistics derived from them. Each ratio is
/// nil when its denominator is zero: accuracy without pixels, sensitivity without positives,
/// specificity without negatives, precision without predicted positives, F1 when there are
/// neither positives nor predicted positives. F1 is 2tp / (2tp + fp + fn), so it is 0 (not
/// nil) when only one of precision and sensitivity is defined (tp is then 0), as sklearn's
/// `f1_score` scores it.
public struct ThresholdMetrics: Equatable, Sendable {
    public let threshold: Float
    public let tp: Int
    public let fp: Int
    public let tn: Int
    public let fn: Int

    public init(threshold: Float, tp: Int, fp: Int, tn: Int, fn: Int) {
        self.threshold = threshold
        self.tp = tp
        self.fp = fp
        self.tn = tn
        self.fn = fn
    }

    public var count: Int { tp + fp + tn + fn }
    /// (tp + tn) / all pixels.
    public var accuracy: Double? { ratio(tp + tn, count) }
    /// tp / (tp + fn), the recall.
    public var sensitivity: Double? { ratio(tp, tp + fn) }
    /// tn / (tn + fp).
    public var specificity: Double? { ratio(tn, tn + fp) }
    /// tp / (tp + fp).
    public var precision: Double? { ratio(tp, tp + fp) }
    /// 2tp / (2tp + fp + fn), the harmonic mean of precision and sensitivity where both exist.
    public var f1: Double? { ratio(2 * tp, 2 * tp + fp + fn) }

    private func ratio(_ a: Int, _ b: Int) -> Double? { b > 0 ? Double(a) / Double(b) : nil }
}

// MARK: - Sorting

/// An order-preserving map of a non-NaN Float to UInt32: flip every bit of a negative number,
/// only the sign bit of a positive one. (-0.0 never arrives: `append` made it +0.0.)
@inline(__always)
private func sortKey(_ s: Float) -> UInt32 {
    let b = s.bitPattern
    return b & 0x8000_0000 != 0 ? ~b : b | 0x8000_0000
}

/// The sort keys of `scores`, ascending. LSD radix sort, three passes of 11, 11 and 10 bits;
/// a pass whose digit is the same for every key is skipped, which is the common case for the
/// quantized scores (few distinct values) and makes their sort nearly a copy.
private func sortedKeys(_ scores: [Float]) -> [UInt32] {
    let n = scores.count
    if n == 0 { return [] }
    var keys = [UInt32](unsafeUninitializedCapacity: n) { buf, done in
        scores.withUnsafeBufferPointer { s in
            for i in 0..<n { buf[i] = sortKey(s[i]) }
        }
        done = n
    }
    var scratch = [UInt32](repeating: 0, count: n)
    let radix = 2048
    var histogram = [Int](repeating: 0, count: 3 * radix)
    var resultInScratch = false
    keys.withUnsafeMutableBufferPointer { kb in
        scratch.withUnsafeMutableBufferPointer { sb in
            histogram.withUnsafeMutableBufferPointer { h in
                for i in 0..<n {
                    let k = Int(kb[i])
                    h[k & 0x7FF] += 1
                    h[radix + ((k >> 11) & 0x7FF)] += 1
                    h[2 * radix + (k >> 22)] += 1
                }
                var src = kb, dst = sb
                for pass in 0..<3 {
                    let shift = UInt32(11 * pass)
                    let hist = UnsafeMutableBufferPointer(rebasing: h[(pass * radix)..<((pass + 1) * radix)])
                    let digit0 = Int((src[0] >> shift) & 0x7FF)
                    if hist[digit0] == n { continue }
                    // Exclusive prefix sums: the first output slot of each digit.
                    var sum = 0
                    for d in 0..<radix { let c = hist[d]; hist[d] = sum; sum += c }
                    for i in 0..<n {
                        let k = src[i]
                        let d = Int((k >> shift) & 0x7FF)
                        dst[hist[d]] = k
                        hist[d] += 1
                    }
                    swap(&src, &dst)
                    resultInScratch.toggle()
                }
            }
        }
    }
    return resultInScratch ? scratch : keys
}

private func countAtLeast(_ scores: [Float], _ t: Float) -> Int {
    scores.withUnsafeBufferPointer { s in
        var c = 0
        for v in s where v >= t { c += 1 }
        return c
    }
}
