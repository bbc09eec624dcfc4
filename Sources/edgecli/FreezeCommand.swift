// `edgecli freeze RUN_DIR --target T --out MODEL`: a trained run -> an integer model file
// (Quant.Freezer; derivations in docs/DATAPATH.md section 14).
import Foundation
import DataIO
import Device
import FixedPoint
import Kernels
import ModelFile
import Quant
import Training

enum FreezeCommand {
    static let usage = """
    usage: edgecli freeze RUN_DIR --target T --out MODEL [--calib N] [--eval N] [--data DIR]
                          [--weight-bits B] [--weight-percentile P] [--adc-percentile P] [--adc-bits N]
                          [--adc-gain integer|full-scale] [--threads T] [--explicit-weights] [--input-size N|HxW] [--json]
      Freezes a trained run (edgecli prune --out RUN_DIR) into an integer program for target T
      (name or profile path): weight codes (default 8-bit signed pair differences; 2-bit, codes
      +-1, for a software-TO fashion-mnist-resnet run, whose weights they represent exactly; LSB from
      max |w_on|), one ADC gain per layer from N calibration images (default 512, the first
      training images; the ADC full scale maps to the P-th percentile of |accumulator|, default
      100 = max; --adc-gain integer, the default, rounds a gain >= 1 down to an integer so that
      the ADC reads integer accumulators without rounding; full-scale keeps the exact ratio),
      folded batch norm / ReLU / quantizers. Prints each layer's ADC clipping rate on
      the calibration set, then evaluates the integer program and the float pipeline of the frozen
      graph on the first N test images (--eval, default 10000; 0 skips) and stores both accuracies
      in the model file. --data: the Fashion-MNIST directory (default \(Datasets.fashionMNISTDefaultDir)),
      or for a spoken-digit run the features directory (default shared/data/spoken-digit; the
      float32 features are encoded to the model's DAC codes, docs/DATAPATH.md section 15.1).
      Refuses (exit 1, no file written) a model whose worst case can overflow an accumulator.
      Weights are stored as generators where they are random by construction (format 1.1,
      docs/FORMAT.md 8b): software TO signed constants as (magnitude, seed, stream), hardware TO
      on the statistical model as (device seed, embedded profile); the reader regenerates and
      CRC-checks them. --explicit-weights stores the int8 codes instead (a format 1.0 file).
      A drive run (docs/SEGMENTATION.md) is frozen for whole images (584 x 565 padded to 592 x 576),
      calibrated on the first 4 preprocessed training images (--calib), evaluated per pixel inside
      the FOV of the first --eval test images (at most 20); --data is the DRIVE folder.
      --input-size N|HxW (drive only; multiples of 16) freezes it for N x N (H x W) inputs instead:
      calibration (default: every training image) and evaluation use a window of that size of each
      image, centred horizontally 80 rows above the centre (the upper vessel arcade; docs/SEGMENTATION.md).
      Golden vectors of a U-Net are made at such a crop size (edgecli golden --drive).
    """

    static let command = Command(name: "freeze", summary: "freeze a trained run into an integer model file", usage: usage) { args in
        let runDir = try args.requiredPositional("RUN_DIR")
        let targetName = try args.required("target")
        let out = try args.required("out")
        let calibOption = try args.option("calib").map { v -> Int in
            guard let n = Int(v), (1...60000).contains(n) else { throw CLIError("freeze: --calib must be an integer in 1...60000, got '\(v)'") }
            return n
        }
        let evalN = try args.int("eval", default: 10000, range: 0...10000)
        let dataOption = try args.option("data")
        var o = FreezeOptions()
        // (0: the task's default, known once the run is read)
        o.weightBits = try args.int("weight-bits", default: 0, range: 2...8)
        o.weightPercentile = try args.double("weight-percentile", default: 100)
        o.adcPercentile = try args.double("adc-percentile", default: 100)
        if let r = try args.option("adc-gain") {
            guard let v = ADCGainRule(rawValue: r) else { throw CLIError("freeze: --adc-gain must be integer or full-scale, got '\(r)'") }
            o.adcGainRule = v
        }
        if let b = try args.option("adc-bits") {
            guard let v = Int(b), (2...16).contains(v) else { throw CLIError("freeze: --adc-bits must be an integer in 2...16, got '\(b)'") }
            o.adcBits = v
        }
        o.threads = try args.int("threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...64)
        o.explicitWeights = args.flag("explicit-weights")
        let inputSize = try args.option("input-size")
        let json = args.flag("json")
        try args.finish()
        guard o.weightPercentile > 0, o.weightPercentile <= 100 else { throw CLIError("freeze: --weight-percentile must be in (0, 100]") }
        guard o.adcPercentile > 0, o.adcPercentile <= 100 else { throw CLIError("freeze: --adc-percentile must be in (0, 100]") }
        try checkOutputPath(out, command: "freeze")

        let target = try TargetProfiles.resolve(targetName)
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint.read(dir: runDir) } catch { throw CLIError("freeze: \(runDir): \(error)") }
        if checkpoint.meta.task == "drive" {
            return try freezeDrive(checkpoint, runDir: runDir, target: target, out: out, calib: calibOption, evalN: evalN, data: dataOption,
                                   inputSize: inputSize, options: o, json: json)
        }
        if inputSize != nil { throw CLIError("freeze: --input-size is for drive runs (a fully convolutional U-Net); \(runDir) is a \(checkpoint.meta.task) run") }
        let calib = calibOption ?? 512
        let run: TrainedRun
        do { run = try TrainedRun(checkpoint, maxBatch: 16, threads: 1) } catch { throw CLIError("freeze: \(runDir): \(error)") }
        let source = FreezeSource(run: run)
        if o.weightBits == 0 { o.weightBits = FreezeOptions.defaultWeightBits(task: source.task, mode: source.mode) }
        let shape = TensorShape(c: source.inputShape[0], h: source.inputShape[1], w: source.inputShape[2])
        let files = try taskFiles(task: source.task, data: dataOption, command: "freeze")
        let (trainImages, testImages, testLabels) = (files.trainImages, files.testImages, files.testLabels)
        // feature tasks: the first fake-quant's bits are the DAC code bits (DATAPATH.md 15.1)
        let featureBits = source.featureInput ? source.graph.indices.first { source.graph[$0].op == "fakequant" }.flatMap { source.quantizers[$0]?.bits } : nil
        if source.featureInput && featureBits == nil { throw CLIError("freeze: \(runDir): the feature model has no input fake-quant") }
        let cal = try ImageStream(path: trainImages, shape: shape, featureBits: featureBits)
        let calPixels = try cal.readAll(limit: calib)
        let calibration = PixelSet(count: calPixels.count / shape.count, shape: shape, pixels: calPixels)
        var evalSet: PixelSet? = nil
        if evalN > 0 {
            let s = try ImageStream(path: testImages, shape: shape, featureBits: featureBits)
            let px = try s.readAll(limit: evalN)
            let n = px.count / shape.count
            let labels = Array(try readLabels(path: testLabels, count: s.count, classes: source.classes)[0..<n])
            evalSet = PixelSet(count: n, shape: shape, pixels: px, labels: labels)
        }

        let t0 = Date()
        let model = try Freezer.freeze(source, target: target, calibration: calibration, options: o)
        let tFreeze = Date().timeIntervalSince(t0)
        let evaluation = try evalSet.map { try Freezer.evaluate(model, on: $0, threads: o.threads) }
        let bundle = Freezer.bundle(model, source: source, target: target, evaluation: evaluation, options: o, toolVersion: ToolInfo.version)
        try bundle.write(to: out)
        let fileBytes = (try? bundle.encode().count) ?? 0
        let storage = (0..<model.layers.count).map { k in
            k < bundle.metadata.weightGenerators.count ? (bundle.metadata.weightGenerators[k]?.kindName ?? "explicit int8 codes") : "explicit int8 codes"
        }

        var layers: [[String: Any]] = []
        for (k, l) in model.layers.enumerated() {
            var d: [String: Any] = [
                "name": l.name, "node": l.node, "fan_in": l.fanIn, "fan_out": l.fanOut, "tiles": l.tiles,
                "weight_lsb": l.weightLSB, "weight_lsb_uS": l.weightLSBMicroSiemens, "weights_clipped": l.weightsClipped,
                "pruned_pairs": l.pruned, "acc_max": l.accMax, "acc_full_scale": l.accLevel, "adc_gain": l.adcGain,
                "adc_multiplier": Int(l.adcMultiplier), "adc_shift": Int(l.adcShift), "adc_bits": l.adcBits,
                "calibration_readings": l.calibrationReadings, "clip_rate_calibration": l.clipRate,
                "weight_storage": storage[k],
            ]
            if let e = evaluation, k < e.fullScaleRates.count { d["full_scale_rate_eval"] = e.fullScaleRates[k] }
            layers.append(d)
        }
        if json {
            var r: [String: Any] = ["model": out, "target": target.name, "calibration_images": model.calibrationImages,
                                    "weight_bits": o.weightBits, "layers": layers, "freeze_seconds": tFreeze,
                                    "macs_per_image": macsPerImage(model.program), "file_bytes": fileBytes]
            if let e = evaluation {
                r["eval_images"] = e.images; r["integer_accuracy"] = e.integerAccuracy; r["float_accuracy"] = e.floatAccuracy
                r["argmax_agreement"] = e.agreement; r["traced_images"] = e.tracedImages
            }
            if let t = source.trainingTestAccuracy { r["training_test_accuracy"] = t }
            try printJSON(r)
        } else {
            print("froze \(runDir) for \(target.name): \(model.layers.count) crossbar layers, \(model.calibrationImages) calibration images -> \(out)")
            for (k, l) in model.layers.enumerated() {
                var line = String(format: "  %-6@ %4d x %-4d %d tile(s)  weight LSB %.4g (%d clipped)  ADC gain %.5g (|acc| %lld -> %.0f of %d)  clip rate (calibration) %.4f%%",
                                  l.name as NSString, l.fanOut, l.fanIn, l.tiles, l.weightLSB, l.weightsClipped, l.adcGain, l.accLevel,
                                  (Double(l.accLevel) * l.adcGain).rounded(), (1 << (l.adcBits - 1)) - 1, 100 * l.clipRate)
                if let e = evaluation, k < e.fullScaleRates.count { line += String(format: ", at full scale (eval) %.4f%%", 100 * e.fullScaleRates[k]) }
                print(line + "  weights: \(storage[k])")
            }
            print("  model file: \(fileBytes) bytes" + (model.generatorNote.map { " (\($0))" } ?? ""))
            if let e = evaluation {
                print(String(format: "  test (%d images): integer %.2f%%, float pipeline %.2f%%, argmax agreement %.2f%%",
                             e.images, 100 * e.integerAccuracy, 100 * e.floatAccuracy, 100 * e.agreement)
                      + (source.trainingTestAccuracy.map { String(format: " (training's own float model: %.2f%%)", 100 * $0) } ?? ""))
            }
        }
        return 0
    }

    /// Training and test files of a task: fashion-mnist (`--data`, default the Debian package's
    /// directory) or spoken-digit (`--data`, default `shared/data/spoken-digit` found by
    /// `Datasets.sharedDataDir()`; IDX float32 features).
    static func taskFiles(task: String, data: String?, command: String) throws -> (trainImages: String, testImages: String, testLabels: String, trainLabels: String) {
        switch task {
        case "fashion-mnist", "fashion-mnist-resnet":
            let d = data ?? Datasets.fashionMNISTDefaultDir
            return (d + "/train-images-idx3-ubyte.gz", d + "/t10k-images-idx3-ubyte.gz", d + "/t10k-labels-idx1-ubyte.gz", d + "/train-labels-idx1-ubyte.gz")
        case "spoken-digit":
            guard let d = data ?? Datasets.sharedDataDir().map({ $0 + "/spoken-digit" }) else {
                throw CLIError("\(command): the spoken-digit features were not found (no shared/data directory above the current one; set RRAM_EDGE_DATA or give --data DIR)")
            }
            return (d + "/train-features-idx3-float.gz", d + "/test-features-idx3-float.gz", d + "/test-labels-idx1-ubyte.gz", d + "/train-labels-idx1-ubyte.gz")
        default:
            throw CLIError("\(command): task '\(task)': calibration data is known for fashion-mnist, fashion-mnist-resnet and spoken-digit only")
        }
    }

    /// The output file's directory must exist (checked before any work, so a typo fails fast).
    /// (stat only: no FileManager, which costs `run` resident memory.)
    static func checkOutputPath(_ path: String, command: String) throws {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        if !directoryExists(dir.isEmpty ? "/" : dir) {
            throw CLIError("\(command): output directory '\(dir)' of \(path) does not exist")
        }
        if directoryExists(path) { throw CLIError("\(command): output \(path) is a directory") }
    }
}
