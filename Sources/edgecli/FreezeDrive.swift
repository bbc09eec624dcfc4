// `edgecli freeze` of a DRIVE run: the U-Net, trained on patches, frozen at the whole-image
// size (584 x 565 padded to 592 x 576), calibrated on whole preprocessed training images and
// evaluated per pixel inside the field of view of the test images.
import Foundation
import DataIO
import Device
import Kernels
import Quant
import Segmentation
import Training

extension FreezeCommand {
    /// The preprocessed bytes of image `i` of `set`, zero-padded at the bottom and right to
    /// `ph` x `pw` (the program's input).
    static func paddedImage(_ set: DriveSet, _ i: Int, height ph: Int, width pw: Int, preprocess: Preprocess = Preprocess()) throws -> [UInt8] {
        let b = try preprocess.bytes(rgb: Array(set.image(i)), width: set.width, height: set.height)
        var out = [UInt8](repeating: 0, count: ph * pw)
        for y in 0..<set.height { for x in 0..<set.width { out[y * pw + x] = b.pixels[y * set.width + x] } }
        return out
    }

    /// `paddedImage` of images `0..<n`.
    static func paddedBytes(_ set: DriveSet, count n: Int, height ph: Int, width pw: Int) throws -> [[UInt8]] {
        try (0..<n).map { try paddedImage(set, $0, height: ph, width: pw) }
    }

    static func freezeDrive(_ checkpoint: Checkpoint, runDir: String, target: TargetProfile, out: String, calib: Int, evalN: Int,
                            data: String?, options: FreezeOptions, json: Bool) throws -> Int32 {
        var o = options
        let dir = try DriveData.dir(data, command: "freeze")
        let train = try DriveSet.load(dir: dir, split: .train)
        let ph = DriveData.padded(train.height), pw = DriveData.padded(train.width)
        let run: TrainedRun
        // the network at its training size holds the weights; the program is lowered for whole images
        do { run = try TrainedRun(checkpoint, maxBatch: 1, threads: 1) } catch { throw CLIError("freeze: \(runDir): \(error)") }
        let source = FreezeSource(run: run, inputShape: [1, ph, pw])
        if o.weightBits == 0 { o.weightBits = FreezeOptions.defaultWeightBits(task: source.task, mode: source.mode) }
        let shape = TensorShape(c: 1, h: ph, w: pw)
        let nCal = min(calib, train.count)
        let calibration = PixelSet(count: nCal, shape: shape, pixels: try paddedBytes(train, count: nCal, height: ph, width: pw).flatMap { $0 })
        let t0 = Date()
        let model = try Freezer.freeze(source, target: target, calibration: calibration, options: o)
        let tFreeze = Date().timeIntervalSince(t0)
        var evaluation: PixelEvaluation? = nil
        if evalN > 0 {
            let test = try DriveSet.load(dir: dir, split: .test)
            let n = min(evalN, test.count)
            evaluation = try Freezer.evaluatePixels(model.program, images: try paddedBytes(test, count: n, height: ph, width: pw),
                                                    labels: (0..<n).map { Array(test.vessels($0)) }, masks: (0..<n).map { Array(test.fov($0)) },
                                                    height: test.height, width: test.width, threads: o.threads)
        }
        let bundle = Freezer.bundle(model, source: source, target: target, evaluation: nil, pixelEvaluation: evaluation, options: o,
                                    toolVersion: ToolInfo.version)
        try bundle.write(to: out)
        func v(_ x: Double?) -> Any { x.map { $0 as Any } ?? NSNull() }
        if json {
            var r: [String: Any] = ["model": out, "target": target.name, "calibration_images": nCal, "weight_bits": o.weightBits,
                                    "freeze_seconds": tFreeze, "input_shape": [1, ph, pw],
                                    "layers": model.layers.map { ["name": $0.name, "adc_gain": $0.adcGain, "clip_rate_calibration": $0.clipRate] as [String: Any] }]
            if let e = evaluation {
                r["eval_images"] = e.images; r["pixels"] = e.pixels; r["pixel_agreement"] = e.agreement
                r["integer_roc_auc"] = v(e.integer.rocAUC); r["float_roc_auc"] = v(e.float.rocAUC)
                r["integer_average_precision"] = v(e.integer.averagePrecision); r["float_average_precision"] = v(e.float.averagePrecision)
                r["integer_accuracy"] = v(e.integerAtHalf.accuracy); r["float_accuracy"] = v(e.floatAtHalf.accuracy)
            }
            try printJSON(r)
        } else {
            print("froze \(runDir) for \(target.name) at \(ph) x \(pw): \(model.layers.count) crossbar layers, \(nCal) calibration images -> \(out)")
            for l in model.layers {
                print(String(format: "  %-13@ %5d x %-5d %d tile(s)  ADC gain %.5g  clip rate (calibration) %.4f%%",
                             l.name as NSString, l.fanOut, l.fanIn, l.tiles, l.adcGain, 100 * l.clipRate))
            }
            if let e = evaluation {
                func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
                print("  test (\(e.images) images, \(e.pixels) FOV pixels): ROC-AUC integer \(f(e.integer.rocAUC)), float pipeline \(f(e.float.rocAUC)); "
                      + "average precision integer \(f(e.integer.averagePrecision)), float \(f(e.float.averagePrecision)); "
                      + String(format: "decision agreement %.2f%%", 100 * e.agreement))
            }
        }
        return 0
    }
}
