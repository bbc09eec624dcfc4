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

/// The part of a DRIVE image a program of input `height` x `width` reads: the whole image
/// (zero-padded at the bottom and right) when the input is at least the image's size, else an
/// input-sized window (a crop, as golden vectors use) centred horizontally and `rise` rows above
/// the image's centre: the fovea at the centre is nearly free of vessels (2.3 % vessel pixels in
/// the centre 48 x 48 window over the 20 test images), the upper vascular arcade above it is not
/// (15 % at 80 rows up, and over 5 % in 19 of the 20 images).
struct DriveWindow {
    static let rise = 80
    /// The window's top-left corner in the image and its size.
    let y0: Int, x0: Int, height: Int, width: Int
    /// The program's input size.
    let inputHeight: Int, inputWidth: Int

    init(imageHeight: Int, imageWidth: Int, inputHeight: Int, inputWidth: Int) {
        self.inputHeight = inputHeight; self.inputWidth = inputWidth
        height = min(imageHeight, inputHeight); width = min(imageWidth, inputWidth)
        y0 = max(0, (imageHeight - height) / 2 - DriveWindow.rise); x0 = (imageWidth - width) / 2
    }

    init(_ set: DriveSet, inputHeight: Int, inputWidth: Int) {
        self.init(imageHeight: set.height, imageWidth: set.width, inputHeight: inputHeight, inputWidth: inputWidth)
    }

    /// The window of a per-pixel map of the image (`imageWidth` columns), row-major.
    func cut<C: RandomAccessCollection>(_ map: C, imageWidth: Int) -> [C.Element] where C.Index == Int {
        var out: [C.Element] = []
        out.reserveCapacity(height * width)
        for y in 0..<height {
            let row: Int = map.startIndex + (y0 + y) * imageWidth + x0
            out.append(contentsOf: map[row ..< row + width])
        }
        return out
    }

    /// The program's input: the window's preprocessed bytes at the top left, zeros elsewhere.
    func input(_ set: DriveSet, _ i: Int, preprocess: Preprocess = Preprocess()) throws -> [UInt8] {
        let b = try preprocess.bytes(rgb: Array(set.image(i)), width: set.width, height: set.height)
        let w = cut(b.pixels, imageWidth: set.width)
        var out = [UInt8](repeating: 0, count: inputHeight * inputWidth)
        for y in 0..<height { for x in 0..<width { out[y * inputWidth + x] = w[y * width + x] } }
        return out
    }
}

extension FreezeCommand {
    /// A DRIVE program's input size: the whole image padded to multiples of 16 (584 x 565 ->
    /// 592 x 576), or `--input-size` (a crop: `DriveWindow`).
    static func driveInputSize(_ option: String?, image set: DriveSet) throws -> (h: Int, w: Int) {
        guard let option else { return (DriveData.padded(set.height), DriveData.padded(set.width)) }
        let parts = option.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(parts.count), parts.allSatisfy({ $0 != nil }) else {
            throw CLIError("freeze: --input-size must be N or HxW (multiples of \(DriveData.sideMultiple)), got '\(option)'")
        }
        let h = parts[0]!, w = parts.last!!
        let m = DriveData.sideMultiple
        guard h >= m, w >= m, h % m == 0, w % m == 0, h <= DriveData.padded(set.height), w <= DriveData.padded(set.width) else {
            throw CLIError("freeze: --input-size \(option): height and width must be multiples of \(m) from \(m) to the padded image \(DriveData.padded(set.height))x\(DriveData.padded(set.width)) (the U-Net pools four times)")
        }
        return (h, w)
    }

    static func freezeDrive(_ checkpoint: Checkpoint, runDir: String, target: TargetProfile, out: String, calib: Int?, evalN: Int,
                            data: String?, inputSize: String?, options: FreezeOptions, json: Bool) throws -> Int32 {
        var o = options
        let dir = try DriveData.dir(data, command: "freeze")
        let train = try DriveSet.load(dir: dir, split: .train)
        let (ph, pw) = try driveInputSize(inputSize, image: train)
        let window = DriveWindow(train, inputHeight: ph, inputWidth: pw)
        let run: TrainedRun
        // the network at its training size holds the weights; the program is lowered for the input size
        do { run = try TrainedRun(checkpoint, maxBatch: 1, threads: 1) } catch { throw CLIError("freeze: \(runDir): \(error)") }
        let source = FreezeSource(run: run, inputShape: [1, ph, pw])
        if o.weightBits == 0 { o.weightBits = FreezeOptions.defaultWeightBits(task: source.task, mode: source.mode) }
        let shape = TensorShape(c: 1, h: ph, w: pw)
        // whole images: 4 (each is 340,992 pixels); crops: every training image's
        let nCal = min(calib ?? (inputSize == nil ? 4 : train.count), train.count)
        let calibration = PixelSet(count: nCal, shape: shape, pixels: try (0..<nCal).flatMap { try window.input(train, $0) })
        let t0 = Date()
        let model = try Freezer.freeze(source, target: target, calibration: calibration, options: o)
        let tFreeze = Date().timeIntervalSince(t0)
        var evaluation: PixelEvaluation? = nil
        if evalN > 0 {
            let test = try DriveSet.load(dir: dir, split: .test)
            let n = min(evalN, test.count)
            evaluation = try Freezer.evaluatePixels(model.program, images: try (0..<n).map { try window.input(test, $0) },
                                                    labels: (0..<n).map { window.cut(test.vessels($0), imageWidth: test.width) },
                                                    masks: (0..<n).map { window.cut(test.fov($0), imageWidth: test.width) },
                                                    height: window.height, width: window.width, threads: o.threads)
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
            let what = inputSize == nil ? "whole" : "\(ph) x \(pw) crops of"
            print("froze \(runDir) for \(target.name) at \(ph) x \(pw): \(model.layers.count) crossbar layers, \(nCal) calibration images (\(what) training images) -> \(out)")
            for l in model.layers {
                print(String(format: "  %-13@ %5d x %-5d %d tile(s)  ADC gain %.5g  clip rate (calibration) %.4f%%",
                             l.name as NSString, l.fanOut, l.fanIn, l.tiles, l.adcGain, 100 * l.clipRate))
            }
            if let e = evaluation {
                func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
                print("  test (\(e.images) \(inputSize == nil ? "images" : "crops"), \(e.pixels) FOV pixels): ROC-AUC integer \(f(e.integer.rocAUC)), float pipeline \(f(e.float.rocAUC)); "
                      + "average precision integer \(f(e.integer.averagePrecision)), float \(f(e.float.averagePrecision)); "
                      + String(format: "decision agreement %.2f%%", 100 * e.agreement))
            }
        }
        return 0
    }
}
