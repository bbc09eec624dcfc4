// `edgecli prune`: topology optimization (supermask training) of a random-weight network.
// Run directory layout: docs/TRAINING.md.
import Foundation
import DataIO
import Training

enum PruneCommand {
    static let usage = """
    usage: edgecli prune --task fashion-mnist|spoken-digit|fashion-mnist-resnet|drive --mode software|hardware --out DIR [options]
      --task T            fashion-mnist (the paper's CNN, default), spoken-digit (the paper's CRNN),
                          fashion-mnist-resnet (a residual CNN on the Fashion-MNIST data) or drive
                          (the paper's retinal-vessel U-Net; docs/SEGMENTATION.md)
      --target T          device profile for hardware mode (default: the default RRAM profile)
      --readouts P        hardware mode: measured readouts (P as in `edgecli device fit`) instead of the model
      --epochs N          epochs (default 16; spoken-digit 20; drive 8)   --seed S   seed (default 1)
      --batch B           batch size (default 60; spoken-digit 30; drive 64)
      --lr X              peak learning rate (default 0.1; fashion-mnist hardware 0.2; drive 1e-3 with Adam)
      --threads T         worker threads (default: all cores; results do not depend on it)
      --no-hysteresis     plain top-k masks (every candidate flip is programmed)
      --hysteresis-exempt L[,L...]|none   plain top-k masks in these layers only (fashion-mnist
                          hardware default: conv1,fc2); none = hysteresis in every layer
      --data DIR          data directory (fashion-mnist: default /usr/share/datasets/fashion-mnist;
                          spoken-digit, drive: default shared/data/spoken-digit or shared/data/drive
                          found next to the package, e.g. ../shared/data/drive, or under $RRAM_EDGE_DATA)
      --limit-train N     use the first N training samples
      (the defaults of every option per task: docs/TRAINING.md)
      --resume            continue the run in --out from its last checkpoint (bit-identical)
      --compare-hysteresis DIR   a finished run identical but for hysteresis (e.g. the same options
                          plus --no-hysteresis): the summary adds both runs' flips and accuracies,
                          the fraction of flips saved and the accuracy cost of hysteresis
      --json              print the final summary as JSON
      --width W           fashion-mnist-resnet: stem channels W, projection blocks 2W, 4W (default 64);
                          drive: the U-Net's first level W channels (default 32; levels W..8W)
      --no-input-pool     fashion-mnist-resnet: the stem reads the 28x28 image (no 2x2 max-pool first)
      --hidden N          fashion-mnist-resnet: a hidden fc layer of N units before the logits
                          (layer "hidden", ReLU, quantizer, then fc; default 256; 0 = fc alone)
      --stages N          fashion-mnist-resnet: 3 (default) = a projection block "b3" to 4W
                          channels at a third resolution; 2 = without it
      --flip | --no-flip  image tasks: mirror each training image left-right with probability 1/2
                          (fashion-mnist-resnet and drive default: on)
      --patches N         drive: random 64x64 training patches (default 5000, a tenth held out to
                          validate; the network trains on random 48x48 crops, flipped and turned)
      tuning: --optimizer sgd|adam --momentum X --weight-decay X --warmup EPOCHS --label-smoothing X --sparsity X
              --weight-init signed-constant|kaiming-normal --range-mode ema|batch --range-momentum X
              --no-read-noise (hardware: nominal reads instead of a noisy re-read per batch)
              --hysteresis-reference last-flip|previous-step --limit-start X --limit-end X --limit-steps N
              --limit-schedule best-accuracy|lr (default lr: 0.3 -> 0.007 with the learning rate,
              hardware 0.8 -> 0.007; the paper: --limit-schedule best-accuracy --limit-start 0.01)
              --weight-norm rms|mean-abs (hardware, default rms) --score-init uniform|magnitude
              --score-gradient sign|weight (default sign: every score of a layer on one scale; weight = edge-popup)
    """

    static let command = Command(name: "prune", summary: "train a supermask (topology optimization) over random weights", usage: usage) { args in
        let taskOption = try args.option("task")
        let mode = try args.option("mode")
        let target = try args.option("target")
        let readouts = try args.option("readouts")
        let epochs = try args.option("epochs").map { try parseInt($0, "epochs", 1...10_000) }
        let seed = try args.option("seed").map { s -> UInt64 in
            guard let v = UInt64(s) else { throw CLIError("prune: --seed must be a non-negative integer, got '\(s)'") }
            return v
        }
        let batch = try args.option("batch").map { try parseInt($0, "batch", 1...4096) }
        let lr = try args.option("lr").map { try parseDouble($0, "lr") }
        let momentum = try args.option("momentum").map { try parseDouble($0, "momentum") }
        let optimizer = try args.option("optimizer")
        let width = try args.option("width").map { try parseInt($0, "width", 4...256) }
        let noInputPool = args.flag("no-input-pool")
        let hidden = try args.option("hidden").map { try parseInt($0, "hidden", 0...1024) }
        let stages = try args.option("stages").map { try parseInt($0, "stages", 2...3) }
        let patches = try args.option("patches").map { try parseInt($0, "patches", 10...1_000_000) }
        let wd = try args.option("weight-decay").map { try parseDouble($0, "weight-decay") }
        let warmup = try args.option("warmup").map { try parseDouble($0, "warmup") }
        let smoothing = try args.option("label-smoothing").map { try parseDouble($0, "label-smoothing") }
        let flip = args.flag("flip"), noFlip = args.flag("no-flip")
        if flip && noFlip { throw CLIError("prune: --flip and --no-flip contradict each other") }
        let sparsity = try args.option("sparsity").map { try parseDouble($0, "sparsity") }
        let weightInit = try args.option("weight-init")
        let rangeMode = try args.option("range-mode").map { s -> RangeMode in
            guard let m = RangeMode(rawValue: s) else { throw CLIError("prune: --range-mode must be ema or batch, got '\(s)'") }
            return m
        }
        let rangeMomentum = try args.option("range-momentum").map { try parseDouble($0, "range-momentum") }
        let hystRef = try args.option("hysteresis-reference").map { s -> HysteresisReference in
            guard let r = HysteresisReference(rawValue: s) else { throw CLIError("prune: --hysteresis-reference must be last-flip or previous-step, got '\(s)'") }
            return r
        }
        let limitStart = try args.option("limit-start").map { try parseDouble($0, "limit-start") }
        let limitEnd = try args.option("limit-end").map { try parseDouble($0, "limit-end") }
        let limitSteps = try args.option("limit-steps").map { try parseInt($0, "limit-steps", 1...1000) }
        let limitSchedule = try args.option("limit-schedule").map { s -> LimitSchedule in
            guard let v = LimitSchedule(rawValue: s) else { throw CLIError("prune: --limit-schedule must be best-accuracy or lr, got '\(s)'") }
            return v
        }
        let weightNorm = try args.option("weight-norm").map { s -> WeightNorm in
            guard let v = WeightNorm(rawValue: s) else { throw CLIError("prune: --weight-norm must be mean-abs or rms, got '\(s)'") }
            return v
        }
        let scoreInit = try args.option("score-init")
        let scoreGradient = try args.option("score-gradient").map { s -> ScoreGradient in
            guard let v = ScoreGradient(rawValue: s) else { throw CLIError("prune: --score-gradient must be sign or weight, got '\(s)'") }
            return v
        }
        let limitTrain = try args.option("limit-train").map { try parseInt($0, "limit-train", 1...10_000_000) }
        let threads = try args.int("threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...64)
        let noHyst = args.flag("no-hysteresis")
        let exempt = try args.option("hysteresis-exempt").map { s -> [String] in
            let names = s == "none" ? [] : s.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !names.contains("") else { throw CLIError("prune: --hysteresis-exempt takes layer names separated by commas (or none), got '\(s)'") }
            return names
        }
        let noReadNoise = args.flag("no-read-noise")
        let dataOption = try args.option("data")
        let out = try args.required("out")
        let resume = args.flag("resume")
        let compareDir = try args.option("compare-hysteresis")
        let json = args.flag("json")
        try args.finish()
        if let taskOption, !Architectures.tasks.contains(taskOption) {
            throw CLIError("prune: unknown task '\(taskOption)' (supported: \(Architectures.tasks.joined(separator: ", ")))")
        }

        var cfg = TrainConfig.defaults(task: taskOption ?? "fashion-mnist", mode: mode ?? "software")
        let ckPath = (out as NSString).appendingPathComponent(RunFiles.checkpoint)
        var checkpoint: Checkpoint? = nil
        if resume {
            let ck = try Checkpoint.read(dir: out)
            cfg = ck.meta.config
            checkpoint = ck
        } else {
            if FileManager.default.fileExists(atPath: ckPath) {
                throw CLIError("prune: \(out) already holds a run; use --resume to continue it or choose another --out")
            }
            guard mode != nil else { throw CLIError("prune: missing required option --mode (software or hardware)") }
        }
        let saved = cfg
        if let taskOption { cfg.task = taskOption }
        let task = cfg.task
        if let mode { cfg.mode = mode }
        if let target { cfg.target = target }
        if let epochs { cfg.epochs = epochs }
        if let seed { cfg.seed = seed }
        if let batch { cfg.batch = batch }
        if let lr { cfg.lr = lr }
        if let momentum { cfg.momentum = momentum }
        if let optimizer { cfg.optimizer = optimizer }
        if let width { cfg.width = width }
        if noInputPool { cfg.inputPool = false }
        if let hidden { cfg.hidden = hidden }
        if let stages { cfg.stages = stages }
        if let patches { cfg.patches = patches }
        if let wd { cfg.weightDecay = wd }
        if let warmup { cfg.warmupEpochs = warmup }
        if let smoothing { cfg.labelSmoothing = smoothing }
        if flip { cfg.horizontalFlip = true }
        if noFlip { cfg.horizontalFlip = false }
        if let sparsity { cfg.sparsity = sparsity }
        if let weightInit { cfg.weightInit = weightInit }
        if let rangeMode { cfg.rangeMode = rangeMode }
        if let rangeMomentum { cfg.rangeMomentum = rangeMomentum }
        if let limitTrain { cfg.limitTrain = limitTrain }
        if let readouts { cfg.readouts = readouts }
        if noHyst { cfg.hysteresis = false }
        if let exempt { cfg.hysteresisExempt = exempt }
        if let hystRef { cfg.hysteresisReference = hystRef }
        if let limitStart { cfg.limitStart = limitStart }
        if let limitEnd { cfg.limitEnd = limitEnd }
        if let limitSteps { cfg.limitSteps = limitSteps }
        if let limitSchedule { cfg.limitSchedule = limitSchedule }
        if let weightNorm { cfg.weightNorm = weightNorm }
        if let scoreInit { cfg.scoreInit = scoreInit }
        if let scoreGradient { cfg.scoreGradient = scoreGradient }
        if noReadNoise { cfg.readNoise = false }
        // a task's default warm-up never takes more than half of a short run (--epochs 1)
        if !resume && warmup == nil && cfg.warmupEpochs > 0 && cfg.warmupEpochs > Double(cfg.epochs) / 2 {
            cfg.warmupEpochs = Double(cfg.epochs) / 2
        }
        if cfg.mode == "hardware" && cfg.target == nil { cfg.target = DeviceWeightSource.defaultTarget }
        if resume && cfg != saved {
            // Only --epochs may grow on resume (the schedule of the remaining epochs would change otherwise).
            throw CLIError("prune: --resume continues the saved configuration; remove the options that differ from it")
        }
        let specs: [LayerSpec]
        do {
            try cfg.validate()
            specs = try Architectures.graph(of: cfg)
            try cfg.checkHysteresisExempt(maskedLayers: Architectures.layerShapes(specs).map(\.name))
        } catch { throw CLIError("prune: \(error)") }

        let twin = try compareDir.map { dir -> RunMeta in
            do {
                let m = try Checkpoint.read(dir: dir).meta
                try HysteresisComparison.checkTwins(cfg, m.config)
                _ = try HysteresisComparison.finalRecord(m)
                return m
            } catch { throw CLIError("prune: --compare-hysteresis \(dir): \(error)") }
        }

        let (train, test): (DataSplit, DataSplit)
        switch task {
        case "spoken-digit": (train, test) = try loadSpokenDigit(dir: try dataOption ?? defaultSpokenDigitDir(), limitTrain: cfg.limitTrain)
        case "drive": (train, test) = try DriveData.splits(dir: try DriveData.dir(dataOption, command: "prune"), config: cfg)
        default: (train, test) = try loadFashion(dir: dataOption ?? Datasets.fashionMNISTDefaultDir, limitTrain: cfg.limitTrain)
        }
        var source: DifferentialWeightSource? = nil
        if cfg.mode == "hardware" {
            let shapes = Architectures.layerShapes(specs)
            if let readouts = cfg.readouts {
                source = try DeviceWeightSource(readouts: readouts, target: cfg.target!, layers: shapes, threads: threads)
            } else {
                source = try DeviceWeightSource(target: cfg.target!, seed: cfg.seed, layers: shapes, threads: threads)
            }
        }
        let trainer = try Trainer(config: cfg, train: train, test: test, source: source, threads: threads, specs: specs,
                                  classes: task == "drive" ? 2 : 10)
        if let checkpoint { try trainer.restore(checkpoint) }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        if !json || stderrIsTerminal {
            printErr("prune: \(cfg.mode) TO on \(task), \(train.count) training / \(test.count) test samples, \(trainer.batchesPerEpoch) batches of \(cfg.batch) per epoch, \(threads) thread(s)" + (resume ? ", resuming after epoch \(trainer.epochsDone)" : ""))
        }
        let tty = stderrIsTerminal
        var lastShown = 0.0
        while trainer.epochsDone < cfg.epochs {
            let rec = try trainer.trainEpoch { p in
                let interval = tty ? 0.2 : 10.0
                guard p.elapsed - lastShown >= interval || p.batch == p.batches else { return }
                lastShown = p.elapsed
                let eta = p.elapsed / Double(p.batch) * Double(p.batches - p.batch)
                let line = String(format: "epoch %d/%d  batch %d/%d  loss %.4f  acc %.2f%%  %.1fs  ETA %.0fs",
                                  p.epoch, p.epochs, p.batch, p.batches, p.loss, 100 * p.accuracy, p.elapsed, eta)
                if tty { FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8)) } else { printErr(line) }
            }
            lastShown = 0
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            try trainer.save(to: out)
            let flips = rec.flips.keys.sorted().map { "\($0) \(rec.flips[$0]!)" }.joined(separator: ", ")
            let read = rec.testAccuracyRead.map { String(format: " (one noisy read %.2f%%)", 100 * $0) } ?? ""
            printErr(String(format: "epoch %d/%d  train loss %.4f  train acc %.2f%%  test acc %.2f%%%@  %.1fs  limit %.4f  flips %d (%@)",
                            rec.epoch, cfg.epochs, rec.trainLoss, 100 * rec.trainAccuracy, 100 * rec.testAccuracy, read, rec.seconds,
                            rec.limit, rec.flipsEpoch, flips))
        }
        let last = trainer.history.last!
        var summary: [String: Any] = [
            "task": cfg.task, "mode": cfg.mode, "target": cfg.target ?? NSNull(), "seed": cfg.seed, "epochs": cfg.epochs,
            "test_accuracy": last.testAccuracy, "train_accuracy": last.trainAccuracy, "train_loss": last.trainLoss,
            "flips_total": last.flipsTotal, "hysteresis": cfg.hysteresis,
            "seconds_train": trainer.history.reduce(0) { $0 + $1.seconds }, "out": out,
        ]
        if let a = last.testAccuracyRead { summary["test_accuracy_one_read"] = a }
        if cfg.hysteresis {
            summary["limit_schedule"] = cfg.effectiveLimitSchedule.rawValue
            summary["limit_start"] = cfg.limitStart; summary["limit_end"] = cfg.limitEnd
            summary["hysteresis_exempt"] = cfg.hysteresisExempt ?? []
        }
        if cfg.mode == "hardware" { summary["weight_norm"] = cfg.effectiveWeightNorm.rawValue }
        var comparison: HysteresisComparison? = nil
        if let twin, let compareDir {
            let c: HysteresisComparison
            do { c = try HysteresisComparison(trainer.meta(), twin) } catch { throw CLIError("prune: --compare-hysteresis \(compareDir): \(error)") }
            comparison = c
            summary["hysteresis_comparison"] = [
                "twin_run": compareDir, "flips_with": c.flipsWith, "flips_without": c.flipsWithout,
                "test_accuracy_with": c.accuracyWith, "test_accuracy_without": c.accuracyWithout,
                "fewer_flips": c.fewerFlips, "cost_points": c.costPoints,
            ] as [String: Any]
        }
        summary["score_gradient"] = cfg.effectiveScoreGradient.rawValue
        if task == "drive" {
            let figures = try DriveData.evaluate(runDir: out, dataDir: try DriveData.dir(dataOption, command: "prune"), validation: test,
                                                 trainer: trainer, threads: threads)
            summary["segmentation"] = figures
            if !json {
                for (key, what) in [("test_images_fov", "test images, inside the FOV"), ("validation_patches", "validation patches, every pixel")] {
                    guard let r = figures[key] as? [String: Any] else { continue }
                    func f(_ k: String) -> String { (r[k] as? Double).map { String(format: "%.4f", $0) } ?? "-" }
                    print("prune: \(what): ROC-AUC \(f("roc_auc")), average precision \(f("average_precision")), PR-AUC (trapezoid) \(f("pr_auc_trapezoid")), F1 \(f("f1")), sensitivity \(f("sensitivity")), specificity \(f("specificity")), accuracy \(f("accuracy")) at 0.5")
                }
            }
        }
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted])
        try RunFiles.writeAtomically(data, to: (out as NSString).appendingPathComponent(RunFiles.summary))
        if json { try printJSON(summary) } else {
            print(String(format: "prune: done, test accuracy %.2f%% after %d epochs, %d mask flips in total; run in %@",
                         100 * last.testAccuracy, cfg.epochs, last.flipsTotal, out))
            if let c = comparison {
                print(String(format: "prune: hysteresis: %d flips with, %d without (%.1f %% fewer); test accuracy %.2f %% with, %.2f %% without (cost %.2f points)",
                             c.flipsWith, c.flipsWithout, 100 * c.fewerFlips, 100 * c.accuracyWith, 100 * c.accuracyWithout, c.costPoints))
            }
        }
        return 0
    }

    static func parseInt(_ s: String, _ name: String, _ r: ClosedRange<Int>) throws -> Int {
        guard let v = Int(s), r.contains(v) else { throw CLIError("prune: --\(name) must be an integer in \(r.lowerBound)...\(r.upperBound), got '\(s)'") }
        return v
    }
    static func parseDouble(_ s: String, _ name: String) throws -> Double {
        guard let v = Double(s), v.isFinite else { throw CLIError("prune: --\(name) must be a finite number, got '\(s)'") }
        return v
    }

    /// The spoken-digit folder a user of this repository has: `shared/data/spoken-digit` next to
    /// the package (`../shared/data/spoken-digit`), found by `Datasets.sharedDataDir()`.
    static func defaultSpokenDigitDir() throws -> String {
        guard let root = Datasets.sharedDataDir() else {
            throw CLIError("""
                prune: spoken-digit features not found: there is no shared/data folder (holding README.md) next to the package \
                (../shared/data/spoken-digit) or above the current directory, and RRAM_EDGE_DATA is not set; \
                pass --data DIR (a folder with {train,test}-features-idx3-float.gz and {train,test}-labels-idx1-ubyte.gz)
                """)
        }
        return root + "/spoken-digit"
    }

    /// Spoken-digit features ([1, 23, 20] float32 in [0, 1], used as stored) as training splits.
    static func loadSpokenDigit(dir: String, limitTrain: Int?) throws -> (DataSplit, DataSplit) {
        let tr = try Datasets.spokenDigit(dir: dir, train: true)
        let te = try Datasets.spokenDigit(dir: dir, train: false)
        for (set, name) in [(tr, "training"), (te, "test")] {
            guard set.sampleShape == [1, 23, 20] else {
                throw CLIError("prune: \(dir): \(name) features are \(set.sampleShape.dropFirst().map(String.init).joined(separator: " x ")) per sample; the CRNN needs 23 x 20")
            }
            if let v = set.samples.first(where: { !$0.isFinite || $0 < 0 || $0 > 1 }) {
                throw CLIError("prune: \(dir): \(name) feature value \(v) outside [0, 1]")
            }
        }
        var train = try DataSplit(count: tr.count, sampleShape: tr.sampleShape, samples: tr.samples, labels: tr.labels)
        let test = try DataSplit(count: te.count, sampleShape: te.sampleShape, samples: te.samples, labels: te.labels)
        if let limitTrain { train = train.prefix(limitTrain) }
        return (train, test)
    }

    /// Fashion-MNIST through DataIO as training splits.
    static func loadFashion(dir: String, limitTrain: Int?) throws -> (DataSplit, DataSplit) {
        let tr = try Datasets.fashionMNIST(dir: dir, train: true)
        let te = try Datasets.fashionMNIST(dir: dir, train: false)
        var train = try DataSplit(count: tr.count, sampleShape: tr.sampleShape, samples: tr.samples, labels: tr.labels)
        let test = try DataSplit(count: te.count, sampleShape: te.sampleShape, samples: te.samples, labels: te.labels)
        if let limitTrain { train = train.prefix(limitTrain) }
        return (train, test)
    }
}
