// `edgecli run MODEL --input IMAGES`: integer inference over an IDX image file, streamed in
// batches (pixels stay 8-bit; the set is never held as floats). Logits (Int32) to an NPY file,
// accuracy when labels are given. Every input is checked before any output is written.
import Foundation
import DataIO
import Kernels
import ModelFile
import Quant
import Segmentation

enum RunCommand {
    static let usage = """
    usage: edgecli run MODEL --input IMAGES.idx[.gz] [--labels LABELS.idx[.gz]] [--out LOGITS.npy]
                       [--float] [--threads T] [--batch B] [--json]
           edgecli run DRIVE_MODEL --drive [--data DIR] [--split test|train] [--out-dir DIR] [--json]
      Runs the integer program of MODEL on the images (IDX: uint8 pixels N x H x W or N x C x H x W,
      or float32/float64 intensities in [0, 1]; for a feature model (spoken digit) float32 features in
      [0, 1], encoded to the model's DAC codes, or uint8 codes). --labels: accuracy. --out: the logits as an int32
      NPY array [N, classes] (written only after every image was processed). --float: also the
      float pipeline of the frozen graph (accuracy, argmax agreement). Batches of B (default 256)
      images are read, run and dropped: memory does not grow with the set.
      --drive: a DRIVE model on the images of a DRIVE split (--data, default shared/data/drive;
      --split, default test), one whole image at a time: the figures inside the field of view
      (ROC-AUC, average precision, PR-AUC by the trapezoid, F1, sensitivity, specificity,
      accuracy at 0.5) and, with --out-dir, NN-probability.png and NN-vessels.png per image
      (8-bit grey: round(255 p); 255 where the program's argmax is vessel) and metrics.json,
      the directory written whole or not at all.
    """

    static let command = Command(name: "run", summary: "run a model file on images (logits, accuracy)", usage: usage) { args in
        let modelPath = try args.requiredPositional("MODEL path")
        if args.flag("drive") {
            let data = try args.option("data")
            let split = try args.option("split").map { s -> DriveSet.Split in
                guard let v = DriveSet.Split(rawValue: s) else { throw CLIError("run: --split must be test or train, got '\(s)'") }
                return v
            } ?? .test
            let outDir = try args.option("out-dir")
            let json = args.flag("json")
            try args.finish()
            let bundle = try ModelBundle.read(path: modelPath)
            return try runDrive(bundle, modelPath: modelPath, dataDir: try DriveData.dir(data, command: "run"), split: split, outDir: outDir,
                                json: json)
        }
        let input = try args.required("input")
        let labelsPath = try args.option("labels")
        let out = try args.option("out")
        let withFloat = args.flag("float")
        let threads = try args.int("threads", default: 1, range: 1...64)
        let batch = try args.int("batch", default: 256, range: 1...65536)
        let json = args.flag("json")
        try args.finish()
        if let out { try FreezeCommand.checkOutputPath(out, command: "run") }

        let bundle = try ModelBundle.read(path: modelPath)
        let program = bundle.program
        let inShape = program.tensors[program.input].shape
        let classes = program.tensors[program.output].shape.count
        let os = program.tensors[program.output].shape
        if labelsPath != nil, os.h * os.w != 1 {
            throw CLIError("run: \(modelPath) has a per-pixel output (\(os.c) classes at \(os.h)x\(os.w)); --labels holds one class per image and applies to classifiers only")
        }
        let images = try ImageStream(path: input, shape: inShape, featureBits: inputFeatureBits(bundle))
        let labels = try labelsPath.map { try readLabels(path: $0, count: images.count, classes: classes) }
        let ev = try Evaluator(program: program, threads: threads, withFloat: withFloat)
        let per = inShape.count
        var buf = [UInt8](repeating: 0, count: batch * per)
        var logits = [Int32](repeating: 0, count: out == nil ? 0 : images.count * classes)
        let t0 = Date()
        var done = 0
        while done < images.count {
            let n = try buf.withUnsafeMutableBufferPointer { try images.next(into: $0.baseAddress!, max: batch) }
            guard n > 0 else { break }
            buf.withUnsafeBufferPointer { px in
                logits.withUnsafeMutableBufferPointer { lg in
                    ev.process(pixels: UnsafeBufferPointer(rebasing: px[0..<(n * per)]), count: n,
                               labels: labels.map { $0[done..<(done + n)] }, logits: out == nil ? nil : lg.baseAddress! + done * classes)
                }
            }
            done += n
        }
        let secs = Date().timeIntervalSince(t0)
        if let out { try NPY.write(try NPYArray(shape: [images.count, classes], int32: logits), to: out) }

        var r: [String: Any] = ["model": modelPath, "input": input, "images": done, "seconds": secs,
                                "images_per_second": secs > 0 ? Double(done) / secs : 0, "threads": threads]
        if labels != nil { r["accuracy"] = ev.integerAccuracy; r["correct"] = ev.integerCorrect }
        if withFloat {
            r["argmax_agreement"] = ev.agreement
            if labels != nil { r["float_accuracy"] = ev.floatAccuracy }
        }
        if let out { r["out"] = out }
        if json { print(flatJSON(r)) } else {
            var s = String(format: "%d images in %.3f s", done, secs)
            if labels != nil { s += String(format: ", accuracy %.2f%% (%d correct)", 100 * ev.integerAccuracy, ev.integerCorrect) }
            if withFloat {
                s += String(format: ", argmax agreement with the float pipeline %.2f%%", 100 * ev.agreement)
                if labels != nil { s += String(format: " (float accuracy %.2f%%)", 100 * ev.floatAccuracy) }
            }
            if let out { s += ", logits -> \(out)" }
            print(s)
        }
        return 0
    }
}

/// One-line JSON of a flat object of strings and numbers, keys sorted. (`run` avoids
/// JSONSerialization: with a static build it adds ~5 MB of resident memory.)
func flatJSON(_ d: [String: Any]) -> String {
    let items = d.keys.sorted().map { k -> String in
        let v: String
        switch d[k]! {
        case let x as Int: v = String(x)
        case let x as Double: v = x.isFinite ? "\(x)" : "null"
        case let x as Bool: v = x ? "true" : "false"
        case let x as String: v = jsonStringLiteral(x)
        case is NSNull: v = "null"
        default: v = jsonStringLiteral("\(d[k]!)")
        }
        return jsonStringLiteral(k) + ":" + v
    }
    return "{" + items.joined(separator: ",") + "}"
}
