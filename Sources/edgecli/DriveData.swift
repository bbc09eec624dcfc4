// The DRIVE task's training data for `prune` and `bench train`: the paper's preprocessing,
// random patches centred in the field of view and the held-out validation patches, as
// per-pixel training splits.
import Foundation
import DataIO
import Segmentation
import Training

enum DriveData {
    /// The DRIVE folder: `--data DIR`, else `shared/data/drive` next to the package.
    static func dir(_ option: String?, command: String) throws -> String {
        if let option { return option }
        guard let d = DriveSet.defaultDir else {
            throw CLIError("\(command): DRIVE not found: there is no shared/data folder (holding README.md) next to the package or above the current directory, and RRAM_EDGE_DATA is not set; pass --data DIR (a folder with {train,test}-{images-idx4,vessels-idx3,fov-idx3}-ubyte.gz)")
        }
        return d
    }

    /// (training patches [1, 64, 64], validation patches [1, crop, crop]) with per-pixel labels,
    /// from the training images, as `config` (its seed, patches and crop) draws them.
    static func splits(dir: String, config: TrainConfig) throws -> (train: DataSplit, validation: DataSplit) {
        let set = try DriveSet.load(dir: dir, split: .train)
        let total = config.patches ?? 5000
        let crop = config.crop ?? 48
        let (tr, va) = try Patches.drive(set, total: total, validation: total / 10, validationCrop: crop, seed: config.seed)
        var train = try DataSplit(count: tr.count, sampleShape: [1, tr.size, tr.size], samples: tr.values, labels: tr.labels, labelsPerSample: tr.size * tr.size)
        let validation = try DataSplit(count: va.count, sampleShape: [1, va.size, va.size], samples: va.values, labels: va.labels, labelsPerSample: va.size * va.size)
        if let n = config.limitTrain { train = train.prefix(n) }
        return (train, validation)
    }
}

extension DriveData {
    /// The side multiple the U-Net's `depth` 2x2 pools need (16 for the paper's four).
    static let sideMultiple = 16

    /// The vessel probability of every pixel of every image of `set` from the float network of
    /// the run in `runDir`, read whole: each preprocessed image zero-padded at the bottom and
    /// right to multiples of 16 (584 x 565 -> 592 x 576), one forward pass, the softmax
    /// probability of class 1 `1 / (1 + exp(z0 - z1))` cropped back; `body(i, probabilities)`
    /// receives image `i`'s `height * width` values.
    static func probabilities(runDir: String, set: DriveSet, threads: Int, preprocess: Preprocess = Preprocess(),
                              _ body: (Int, [Float]) throws -> Void) throws {
        let ph = padded(set.height), pw = padded(set.width)
        let run = try TrainedRun(dir: runDir, maxBatch: 1, threads: threads, inputShape: [1, ph, pw])
        guard run.network.graph.shapes.last! == [2, ph, pw] else {
            throw CLIError("\(runDir): the network does not write a 2-class map of its input (\(run.network.graph.shapes.last!))")
        }
        var padded = [Float](repeating: 0, count: ph * pw)
        for i in 0..<set.count {
            let x = try preprocess.apply(rgb: Array(set.image(i)), width: set.width, height: set.height)
            for y in 0..<set.height { for c in 0..<set.width { padded[y * pw + c] = x[y * set.width + c] } }
            let z = try run.forward(padded, count: 1)
            var p = [Float](repeating: 0, count: set.pixels)
            for y in 0..<set.height {
                for c in 0..<set.width {
                    let k = y * pw + c
                    p[y * set.width + c] = vesselProbability(Double(z[k]), Double(z[ph * pw + k]))
                }
            }
            try body(i, p)
        }
    }

    /// The side padded up to a multiple of `sideMultiple` (584 -> 592, 565 -> 576).
    static func padded(_ side: Int) -> Int { (side + sideMultiple - 1) / sideMultiple * sideMultiple }

    /// The softmax probability of class 1 from the two logits: `1 / (1 + exp(z0 - z1))`.
    static func vesselProbability(_ z0: Double, _ z1: Double) -> Float { Float(1 / (1 + exp(z0 - z1))) }

    /// The standard protocol's figures: ROC-AUC, average precision, the trapezoid PR-AUC, and
    /// accuracy, sensitivity, specificity, precision and F1 at the threshold 0.5 (nil: undefined).
    static func figures(_ s: PixelScores) -> [(key: String, value: Double?)] {
        let c = s.curveMetrics(), t = s.thresholdMetrics(at: 0.5)
        return [("roc_auc", c.rocAUC), ("average_precision", c.averagePrecision), ("pr_auc_trapezoid", c.prAUCTrapezoid),
                ("accuracy", t.accuracy), ("sensitivity", t.sensitivity), ("specificity", t.specificity),
                ("precision", t.precision), ("f1", t.f1)]
    }

    /// `figures` as JSON fields (null when undefined), with the pixels and positives counted.
    static func report(_ s: PixelScores) -> [String: Any] {
        var r: [String: Any] = ["pixels": s.count, "positives": s.positives]
        for f in figures(s) { r[f.key] = f.value.map { $0 as Any } ?? NSNull() }
        return r
    }

    /// The run's figures on the test images inside the field of view (the standard protocol)
    /// and on every pixel of the validation patches (the paper's), as `prune` reports them.
    static func evaluate(runDir: String, dataDir: String, validation: DataSplit, trainer: Trainer, threads: Int) throws -> [String: Any] {
        var out: [String: Any] = [:]
        // validation patches: all their pixels, no FOV
        var vs = PixelScores()
        let net = trainer.net, n = validation.labelsPerSample
        var logits = [Float](repeating: 0, count: validation.count * 2 * n)
        validation.samples.withUnsafeBufferPointer { s in
            logits.withUnsafeMutableBufferPointer { o in net.evaluate(samples: s.baseAddress!, count: validation.count, into: o.baseAddress!) }
        }
        for i in 0..<validation.count {
            let z = i * 2 * n
            let p = (0..<n).map { k in vesselProbability(Double(logits[z + k]), Double(logits[z + n + k])) }
            try vs.append(scores: p, labels: Array(validation.labels[(i * n) ..< ((i + 1) * n)]))
        }
        out["validation_patches"] = report(vs)
        let paths = DriveSet.paths(dir: dataDir, split: .test)
        if FileManager.default.fileExists(atPath: paths.images) {
            let test = try DriveSet.load(dir: dataDir, split: .test)
            var ts = PixelScores()
            try probabilities(runDir: runDir, set: test, threads: threads) { i, p in
                try ts.append(scores: p, labels: Array(test.vessels(i)), mask: Array(test.fov(i)))
            }
            out["test_images_fov"] = report(ts)
            out["test_images"] = test.count
        }
        return out
    }
}
