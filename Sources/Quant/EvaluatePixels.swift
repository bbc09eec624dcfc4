// Evaluation of a frozen per-pixel program (a two-class logit map, such as the DRIVE U-Net's)
// on labelled images: the integer program and the float pipeline of the frozen graph, each
// pixel's decision and score, the metrics over the counted pixels, and their agreement.
import Kernels
import Segmentation

/// What `freeze` reports for a per-pixel program.
public struct PixelEvaluation: Sendable {
    public var images: Int
    /// Pixels counted (inside the masks).
    public var pixels: Int
    /// Integer program (score z1 - z0 of its digital sums).
    public var integer: CurveMetrics
    public var integerAtHalf: ThresholdMetrics
    /// Float pipeline of the frozen graph (score z1 - z0 of its logits).
    public var float: CurveMetrics
    public var floatAtHalf: ThresholdMetrics
    /// Fraction of counted pixels where both decide alike (vessel iff z1 > z0).
    public var agreement: Double
}

extension Freezer {
    /// Runs `program` (a `[2, H, W]` output) on `images` (`program`'s input bytes each) and
    /// counts, per image `i`, the pixels `(y, x)` with `y < height`, `x < width` (the image
    /// before padding) where `masks[i]` is set (`height * width` values, row-major), against
    /// `labels[i]` (0/1). A pixel's score is `z1 - z0`, the difference of its two logits (the
    /// probability of class 1 is a monotone function of it); its decision is the program's
    /// per-pixel argmax (docs/DATAPATH.md section 9): vessel iff z1 > z0, a tie is background.
    /// The thresholded figures count exactly these decisions.
    public static func evaluatePixels(_ program: Program, images: [[UInt8]], labels: [[UInt8]], masks: [[UInt8]],
                                      height: Int, width: Int, threads: Int) throws -> PixelEvaluation {
        let os = program.tensors[program.output].shape
        guard os.c == 2, os.h >= height, os.w >= width else {
            throw FreezeError("a per-pixel evaluation needs a [2, H, W] output of at least \(height) x \(width), the program writes \(os)")
        }
        guard images.count == labels.count, images.count == masks.count else {
            throw FreezeError("\(images.count) images, \(labels.count) label maps and \(masks.count) masks")
        }
        let engine = try Engine(program: program, threads: threads)
        for i in images.indices {
            guard images[i].count == engine.inputCount, labels[i].count == height * width, masks[i].count == height * width else {
                throw FreezeError("image \(i): \(images[i].count) input bytes (the program reads \(engine.inputCount)), \(labels[i].count) labels, \(masks[i].count) mask values (expected \(height * width))")
            }
        }
        let fe = FloatEvaluator(program)
        let lanes = max(1, min(engine.threads, images.count))
        let arenas = (0..<lanes).map { _ in UncheckedMutablePointer(UnsafeMutablePointer<Float>.allocate(capacity: fe.arenaCount)) }
        defer { for a in arenas { a.p.deallocate() } }
        let plane = os.h * os.w
        var si = PixelScores(), sf = PixelScores()
        var agree = 0, counted = 0
        // `lanes` images at a time: the integer program on the batch, the float pipeline one image per lane
        for g in stride(from: 0, to: images.count, by: lanes) {
            let group = Array(g..<min(g + lanes, images.count))
            let z = engine.inferBatch(group.flatMap { images[$0] }, count: group.count).logits
            var fl = [[Float]](repeating: [], count: group.count)
            fl.withUnsafeMutableBufferPointer { fb in
                let out = UncheckedMutablePointer(fb.baseAddress!)
                KernelsParallel.forEach(group.count) { j in
                    out.p[j] = images[group[j]].withUnsafeBufferPointer { Array(fe.logits(pixels: $0.baseAddress!, arena: arenas[j].p)) }
                }
            }
            for (j, i) in group.enumerated() {
                let zi = (j * 2 * plane), f = fl[j]
                var a = [Float](repeating: 0, count: height * width), b = a
                for y in 0..<height {
                    for x in 0..<width {
                        let k = y * os.w + x, q = y * width + x
                        a[q] = Float(Int64(z[zi + plane + k]) - Int64(z[zi + k]))
                        b[q] = f[plane + k] - f[k]
                        if masks[i][q] != 0 {
                            counted += 1
                            if (a[q] > 0) == (b[q] > 0) { agree += 1 }
                        }
                    }
                }
                do {
                    try si.append(scores: a, labels: labels[i], mask: masks[i])
                    try sf.append(scores: b, labels: labels[i], mask: masks[i])
                } catch { throw FreezeError("image \(i): \(error)") }
            }
        }
        // (score >= t counts as positive: integer differences > 0 are those >= 1, float ones > 0
        // those >= the least positive float)
        return PixelEvaluation(images: images.count, pixels: counted, integer: si.curveMetrics(), integerAtHalf: si.thresholdMetrics(at: 1),
                               float: sf.curveMetrics(), floatAtHalf: sf.thresholdMetrics(at: .leastNonzeroMagnitude),
                               agreement: counted == 0 ? 0 : Double(agree) / Double(counted))
    }
}
