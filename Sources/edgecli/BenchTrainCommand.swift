// `edgecli bench SUBJECT`: speed figures. `bench train`: seconds per training epoch of the
// Fashion-MNIST supermask CNN (release build: `swift build -c release`; for the host's vector
// units add `-Xswiftc -target-cpu -Xswiftc native`).
import Foundation
import DataIO
import Training

enum BenchCommand {
    static let usage = """
    usage: edgecli bench train [--task fashion-mnist|fashion-mnist-resnet|drive] [--epochs N] [--threads T] [--batch B]
                               [--limit-train N] [--data DIR] [--json]
      Trains the paper's Fashion-MNIST CNN (or, --task fashion-mnist-resnet, the residual net;
      --task drive, the DRIVE U-Net on its 4500 training patches; software TO, the task's default
      settings) and reports seconds per epoch and per batch (training only; evaluation is timed
      separately). Without the data set (apt-get install dataset-fashion-mnist; shared/data/drive)
      it times synthetic samples of the same shape and count.
    """

    static let command = Command(name: "bench", summary: "speed benchmarks (bench train, bench infer, bench peak)",
                                 usage: usage + "\n" + BenchInferCommand.usage + "\n" + BenchPeakCommand.usage) { args in
        guard let subject = args.positional() else {
            throw CLIError("bench: missing subject (train, infer, peak)\n" + usage + "\n" + BenchInferCommand.usage + "\n" + BenchPeakCommand.usage)
        }
        switch subject {
        case "train": return try benchTrain(&args)
        case "infer": return try BenchInferCommand.run(&args)
        case "peak": return try BenchPeakCommand.run(&args)
        default: throw CLIError("bench: unknown subject '\(subject)' (train, infer, peak)")
        }
    }

    static func benchTrain(_ args: inout Args) throws -> Int32 {
        let task = try args.option("task") ?? "fashion-mnist"
        guard ["fashion-mnist", "fashion-mnist-resnet", "drive"].contains(task) else {
            throw CLIError("bench: --task must be fashion-mnist, fashion-mnist-resnet or drive, got '\(task)'")
        }
        let epochs = try args.int("epochs", default: 1, range: 1...100)
        let threads = try args.int("threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...64)
        let batch = try args.int("batch", default: TrainConfig.defaults(task: task).batch, range: 1...4096)
        let limit = try args.option("limit-train").map { s -> Int in
            guard let v = Int(s), v >= batch else { throw CLIError("bench: --limit-train must be an integer >= the batch size, got '\(s)'") }
            return v
        }
        let dataOption = try args.option("data")
        let json = args.flag("json")
        try args.finish()
        var train: DataSplit, test: DataSplit
        var dataNote = task == "drive" ? "drive" : "fashion-mnist"
        // the plain CNN keeps TrainConfig()'s settings (what the figures in docs/TRAINING.md timed)
        var cfg = task == "fashion-mnist" ? TrainConfig() : TrainConfig.defaults(task: task)
        cfg.epochs = epochs; cfg.batch = batch; cfg.limitTrain = limit
        if task == "drive" {
            do {
                (train, test) = try DriveData.splits(dir: try DriveData.dir(dataOption, command: "bench"), config: cfg)
            } catch {
                dataNote = "synthetic (\(error))"
                let total = cfg.patches ?? 5000, n = min(limit ?? total, total - total / 10), crop = cfg.crop ?? 48
                var rng = Xoshiro256StarStar(seed: 1, stream: 78)
                let x = (0..<(n * 64 * 64)).map { _ in rng.uniformFloat() }
                train = try DataSplit(count: n, sampleShape: [1, 64, 64], samples: x, labels: x.map { $0 > 0.9 ? 1 : 0 }, labelsPerSample: 64 * 64)
                let v = (0..<(total / 10 * crop * crop)).map { _ in rng.uniformFloat() }
                test = try DataSplit(count: total / 10, sampleShape: [1, crop, crop], samples: v, labels: v.map { $0 > 0.9 ? 1 : 0 }, labelsPerSample: crop * crop)
            }
        } else {
            do {
                (train, test) = try PruneCommand.loadFashion(dir: dataOption ?? Datasets.fashionMNISTDefaultDir, limitTrain: limit)
            } catch {
                dataNote = "synthetic (\(error))"
                let n = limit ?? 60000
                var rng = Xoshiro256StarStar(seed: 1, stream: 77)
                var x = [Float](repeating: 0, count: n * 784), y = [UInt8](repeating: 0, count: n)
                for i in 0..<x.count { x[i] = rng.uniformFloat() }
                for i in 0..<n { y[i] = UInt8(rng.int(below: 10)) }
                train = try DataSplit(count: n, sampleShape: [1, 28, 28], samples: x, labels: y)
                test = train.prefix(10000)
            }
        }
        let trainer = try Trainer(config: cfg, train: train, test: test, threads: threads, classes: task == "drive" ? 2 : 10)
        var perEpoch: [Double] = [], evalSeconds: [Double] = []
        for _ in 0..<epochs {
            let t0 = Date()
            let r = try trainer.trainEpoch()
            perEpoch.append(r.seconds)
            evalSeconds.append(Date().timeIntervalSince(t0) - r.seconds)
            if !json { printErr(String(format: "epoch %d: %.2f s training (%.2f ms/batch), %.2f s evaluation, test acc %.2f%%",
                                        r.epoch, r.seconds, 1000 * r.seconds / Double(trainer.batchesPerEpoch), evalSeconds.last!, 100 * r.testAccuracy)) }
        }
        let mean = perEpoch.reduce(0, +) / Double(perEpoch.count)
        let result: [String: Any] = [
            "bench": "train", "model": task == "fashion-mnist" ? "fashion-mnist-cnn" : task, "threads": threads, "batch": batch, "epochs": epochs,
            "images": train.count, "seconds_per_epoch": mean, "ms_per_batch": 1000 * mean / Double(trainer.batchesPerEpoch),
            "seconds_per_epoch_all": perEpoch, "eval_seconds": evalSeconds, "test_accuracy": trainer.history.last!.testAccuracy,
            "data": dataNote, "float_kernels": FloatDispatch.selected.rawValue,
        ]
        if json { try printJSON(result) } else {
            print(String(format: "bench train: %.2f s/epoch, %.2f ms/batch (%d threads, batch %d, %d images, %@ float kernels)", mean,
                         1000 * mean / Double(trainer.batchesPerEpoch), threads, batch, train.count, FloatDispatch.selected.rawValue))
        }
        return 0
    }
}

import Randomness
