// `edgecli pipeline`: the main job. Runs the other commands in-process, in order —
// prune (hardware TO on the target) -> freeze -> export -> golden -> verify — and writes a
// summary (accuracies, flips, arrays, file sizes, time per stage). Each stage is exactly the
// command a user would type (printed before it runs), so the pipeline adds no logic of its own.
// DRIVE: the whole-image U-Net is frozen and exported; the golden vectors are of the same run
// frozen for a 48 x 48 crop (a whole image's vectors would take hundreds of megabytes).
import Foundation
import DataIO
import Device
import ModelFile
import Segmentation
import Training

enum PipelineCommand {
    static let usage = """
    usage: edgecli pipeline --task fashion-mnist|spoken-digit|fashion-mnist-resnet|drive --out DIR [options]
      --epochs N         training epochs (default 8: the whole job stays under 15 minutes on 2 cores;
                         drive 5: under 20 minutes, docs/SEGMENTATION.md)
      --mode M           hardware (default; the device model with per-batch read noise) or software
      --target T         device profile (default \(TargetProfiles.defaultName))
      --seed S           seed (default 1)
      --data DIR         Fashion-MNIST directory (default \(Datasets.fashionMNISTDefaultDir)); spoken-digit:
                         the features directory (default shared/data/spoken-digit); drive: the DRIVE
                         folder (default shared/data/drive)
      --golden-count N   images in the golden vectors (default 64; drive: 4 crops)
      --threads T        worker threads (default: all cores; results do not depend on it)
      --limit-train N    train on the first N images only (quick looks and tests)
      --width W          drive: the U-Net's first level W channels (default 32; a narrow net for
                         quick looks and tests)
      --eval N           test images for the accuracies freeze records (default all 10,000; drive: all 20)
      --json             print the summary as JSON
    Stages write into DIR: run/ (training), model.rram, export/, golden/, summary.json; drive also
    crop.rram (the run frozen for 48 x 48 inputs, whose golden vectors golden/ holds).
    An existing DIR/run with a finished run is reused; an unfinished one is resumed.
    """

    struct Stage {
        let name: String
        let seconds: Double
    }

    static let command = Command(name: "pipeline", summary: "the main job: prune -> freeze -> export -> golden -> verify", usage: usage) { args in
        let task = try args.option("task") ?? "fashion-mnist"
        let epochs = try args.int("epochs", default: task == "drive" ? 5 : 8, range: 1...10_000)
        let mode = try args.option("mode") ?? "hardware"
        let target = try args.option("target") ?? TargetProfiles.defaultName
        let seed = try args.uint64("seed", default: 1)
        let dataOption = try args.option("data")
        let goldenCount = try args.int("golden-count", default: task == "drive" ? 4 : 64, range: 1...10_000)
        let threads = try args.int("threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...64)
        let limitTrain = try args.option("limit-train").map { s -> Int in
            guard let v = Int(s), v >= 1 else { throw CLIError("pipeline: --limit-train must be a positive integer, got '\(s)'") }
            return v
        }
        let width = try args.option("width")
        if width != nil && task != "drive" { throw CLIError("pipeline: --width is for --task drive") }
        let eval = try args.int("eval", default: 10_000, range: 1...10_000)
        let out = try args.required("out")
        let json = args.flag("json")
        try args.finish()
        guard Architectures.tasks.contains(task) else { throw CLIError("pipeline: unknown task '\(task)' (supported: \(Architectures.tasks.joined(separator: ", ")))") }
        guard mode == "hardware" || mode == "software" else { throw CLIError("pipeline: --mode must be hardware or software, got '\(mode)'") }
        // Fail early, before hours of work, on the inputs the later stages need.
        _ = try TargetProfiles.resolve(target)
        let drive = task == "drive"
        let dataArgs = dataOption.map { ["--data", $0] } ?? []
        var testImages = "", testLabels = ""
        if drive {
            let dir = try DriveData.dir(dataOption, command: "pipeline")
            for split in [DriveSet.Split.train, .test] {
                let p = DriveSet.paths(dir: dir, split: split)
                for f in [p.images, p.vessels, p.fov] where !FileManager.default.fileExists(atPath: f) {
                    throw CLIError("pipeline: \(f) is missing (the DRIVE folder; shared/data/drive/README.md, or pass --data DIR)")
                }
            }
        } else {
            let files = try FreezeCommand.taskFiles(task: task, data: dataOption, command: "pipeline")
            (testImages, testLabels) = (files.testImages, files.testLabels)
            for f in [testImages, testLabels] where !FileManager.default.fileExists(atPath: f) {
                throw CLIError(task != "spoken-digit" ? "pipeline: \(f) is missing; install the data set with `apt-get install dataset-fashion-mnist` (or pass --data DIR)"
                                                       : "pipeline: \(f) is missing (the spoken-digit features; pass --data DIR)")
            }
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
        let cropSide = 48
        let runDir = path("run"), model = path("model.rram"), exportDir = path("export"), goldenDir = path("golden"), crop = path("crop.rram")

        var stages: [Stage] = []
        // `label`: the stage's name in the summary when a command runs twice (drive's crop freeze)
        func stage(_ name: String, _ argv: [String], label: String? = nil) throws {
            guard let c = Registry.all.first(where: { $0.name == name }) else { throw CLIError("pipeline: no command \(name)") }
            printErr("\n== pipeline: edgecli \(name) " + argv.joined(separator: " "))
            let t0 = Date()
            var a = Args(command: name, argv)
            let code = try c.run(&a)
            stages.append(Stage(name: label ?? name, seconds: Date().timeIntervalSince(t0)))
            guard code == 0 else { throw CLIError("pipeline: stage `\(name)` failed (exit code \(code))") }
        }

        // 1. Topology optimization (reuse a finished run, resume an unfinished one).
        var prune = ["--task", task, "--mode", mode, "--epochs", String(epochs), "--seed", String(seed),
                     "--threads", String(threads), "--out", runDir] + dataArgs
        if mode == "hardware" { prune += ["--target", target] }
        if let n = limitTrain { prune += ["--limit-train", String(n)] }
        if let w = width { prune += ["--width", w] }
        if FileManager.default.fileExists(atPath: (runDir as NSString).appendingPathComponent(RunFiles.checkpoint)) {
            let meta = try Checkpoint.read(dir: runDir).meta
            if meta.epochsDone >= meta.epochsPlanned {
                printErr("\n== pipeline: reusing the finished run in \(runDir) (\(meta.epochsDone) epochs)")
            } else {
                try stage("prune", ["--resume", "--out", runDir, "--threads", String(threads)])
            }
        } else {
            try stage("prune", prune)
        }
        // 2-5. Freeze, export, golden vectors, verification.
        try stage("freeze", [runDir, "--target", target, "--eval", String(eval), "--threads", String(threads), "--out", model] + dataArgs)
        try stage("export", [model, "--out", exportDir, "--force"])
        if drive {
            try stage("freeze", [runDir, "--target", target, "--input-size", String(cropSide), "--eval", "0", "--threads", String(threads),
                                 "--out", crop] + dataArgs, label: "freeze-crop")
            try stage("golden", [crop, "--drive", "--count", String(goldenCount), "--out", goldenDir, "--force"] + dataArgs)
            try stage("verify", [crop, "--golden", goldenDir])
        } else {
            try stage("golden", [model, "--input", testImages, "--labels", testLabels, "--count", String(goldenCount),
                                 "--out", goldenDir, "--force"])
            try stage("verify", [model, "--golden", goldenDir])
        }

        // Summary from the artifacts themselves.
        let bundle = try ModelBundle.read(path: model)
        let run = try Checkpoint.read(dir: runDir).meta
        let md = bundle.metadata
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int) ?? 0 }
        func dirSize(_ d: String) -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).reduce(0) { $0 + size((d as NSString).appendingPathComponent($1)) }
        }
        let flips = run.layers.reduce(0) { $0 + $1.flipsTotal }
        // the test images freeze actually evaluated (the spoken-digit test set has 900)
        var evalImages = eval
        if case .u64(let n)? = md.extra["freeze.eval_images"] { evalImages = Int(n) }
        var bytes = ["model": size(model), "export": dirSize(exportDir), "golden": dirSize(goldenDir)]
        if drive { bytes["crop"] = size(crop) }
        var summary: [String: Any] = [
            "task": task, "mode": mode, "target": target, "seed": seed, "epochs": run.epochsDone, "evalImages": evalImages,
            "trainingTestAccuracy": run.testAccuracy ?? -1,
            "floatAccuracy": md.provenance.floatAccuracy, "integerAccuracy": md.provenance.integerAccuracy,
            "maskFlips": flips, "maskFlipsPerLayer": Dictionary(uniqueKeysWithValues: run.layers.map { ($0.name, $0.flipsTotal) }),
            "cellsToReset": md.programming.cellsToReset,
            "arraysUsed": md.placement?.arraysUsed ?? 0,
            "bytes": bytes,
            "seconds": Dictionary(uniqueKeysWithValues: stages.map { ($0.name, ($0.seconds * 10).rounded() / 10) }),
            "verify": "bit-exact",
        ]
        // DRIVE: the per-pixel figures freeze measured inside the FOV (nil: not evaluated)
        func extra(_ k: String) -> Double? { if case .f64(let v)? = md.extra["freeze.pixel_" + k] { return v } else { return nil } }
        if drive {
            for k in ["integer_roc_auc", "float_roc_auc", "integer_average_precision", "float_average_precision", "agreement"] {
                summary["pixel_" + k] = extra(k).map { $0 as Any } ?? NSNull()
            }
            summary["goldenCrop"] = [cropSide, cropSide]
        }
        let summaryJSON = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted])
        try writeFileAtomically(Array(summaryJSON) + [10], to: path("summary.json"))
        if json {
            try printJSON(summary)
        } else {
            var accuracy = "accuracy: float \(pct(md.provenance.floatAccuracy)), integer \(pct(md.provenance.integerAccuracy)) (first \(evalImages) test images)"
            if drive {
                accuracy = "inside the FOV of the first \(evalImages) test images: ROC-AUC integer \(num(extra("integer_roc_auc"))), "
                    + "float \(num(extra("float_roc_auc"))); average precision integer \(num(extra("integer_average_precision"))), "
                    + "float \(num(extra("float_average_precision"))); decision agreement \(pct(extra("agreement") ?? -1))"
            }
            print("""

            pipeline summary (\(path("summary.json")))
              task \(task), \(mode) TO on \(target), seed \(seed), \(run.epochsDone) epochs
              \(accuracy)
              mask flips (programming operations): \(flips); cells to reset: \(md.programming.cellsToReset); arrays used: \(md.placement?.arraysUsed ?? 0)
              files: model \(size(model)) B, export \(dirSize(exportDir)) B, golden \(dirSize(goldenDir)) B
              seconds: \(stages.map { "\($0.name) \(String(format: "%.1f", $0.seconds))" }.joined(separator: ", "))
              golden vectors\(drive ? " (\(goldenCount) crops of \(cropSide) x \(cropSide), \(crop))" : "") verified bit-exact
            """)
        }
        return 0
    }

    static func pct(_ x: Double) -> String { x < 0 || x.isNaN ? "n/a" : String(format: "%.2f %%", 100 * x) }
    static func num(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
}
