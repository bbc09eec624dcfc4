import Foundation
import XCTest
import DataIO
import ModelFile
import Training
@testable import Quant

/// `edgecli freeze` and `edgecli bench infer` through the built binary, on a tiny run and a tiny
/// data directory in the Fashion-MNIST file layout.
final class CommandTests: XCTestCase {
    func testFreezeCommandPrintsClipRatesAndWritesAModelThatBenchRuns() throws {
        guard FileManager.default.isExecutableFile(atPath: edgecli) else { throw XCTSkip("no binary at \(edgecli)") }
        let dir = tempPath("cli")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let train = syntheticPixels(count: 120, seed: 8), test = syntheticPixels(count: 60, seed: 9)
        for (name, s) in [("train", train), ("t10k", test)] {
            try IDX.write(try IDXArray(shape: [s.count, 28, 28], element: .uint8(s.pixels)), to: "\(dir)/data/\(name)-images-idx3-ubyte.gz", gzip: true)
            try IDX.write(try IDXArray(shape: [s.count], element: .uint8(s.labels!)), to: "\(dir)/data/\(name)-labels-idx1-ubyte.gz", gzip: true)
        }
        let split = try DataSplit(count: train.count, sampleShape: [1, 28, 28], samples: train.pixels.map { Float($0) / 255 }, labels: train.labels!)
        var cfg = TrainConfig(); cfg.epochs = 1; cfg.batch = 60; cfg.evalBatch = 60; cfg.seed = 4
        let t = try Trainer(config: cfg, train: split, test: split, threads: 1, specs: miniSpecs())
        try t.trainEpoch()
        try t.save(to: dir + "/run")
        let model = dir + "/m.rrm"
        let r = try runTool(["freeze", dir + "/run", "--target", "rram-40nm-taox", "--calib", "50", "--eval", "60", "--data", dir + "/data", "--out", model, "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.err)
        for name in ["conv1", "conv2", "fc1", "fc2"] {
            XCTAssertTrue(r.out.split(separator: "\n").contains { $0.contains(name) && $0.contains("clip rate (calibration)") }, "clip rate of \(name) printed: \(r.out)")
        }
        XCTAssertTrue(r.out.contains("argmax agreement"), r.out)
        let b = try ModelBundle.read(path: model)
        XCTAssertEqual(b.metadata.provenance.epochs, 1)
        XCTAssertEqual(b.metadata.extra["freeze.calibration_images"], .u64(50))
        XCTAssertEqual(b.metadata.extra["freeze.eval_images"], .u64(60))
        // the same command again gives the same bytes
        let model2 = dir + "/m2.rrm"
        let r2 = try runTool(["freeze", dir + "/run", "--target", "rram-40nm-taox", "--calib", "50", "--eval", "60", "--data", dir + "/data", "--out", model2, "--threads", "1", "--json"])
        XCTAssertEqual(r2.status, 0, r2.err)
        XCTAssertEqual(try readFileBytes(model), try readFileBytes(model2), "freeze is deterministic (1 vs 2 threads)")
        let j = try JSONSerialization.jsonObject(with: Data(r2.out.utf8)) as! [String: Any]
        XCTAssertEqual((j["layers"] as! [[String: Any]]).compactMap { $0["clip_rate_calibration"] as? Double }.count, 4)
        // no --weight-bits: the task's default, 8 bits for the CNN (2 only for a software-TO residual net)
        XCTAssertEqual(j["weight_bits"] as? Int, 8)
        XCTAssertEqual(FreezeOptions.defaultWeightBits(task: "fashion-mnist-resnet", mode: "software"), 2)
        for (task, mode) in [("fashion-mnist-resnet", "hardware"), ("fashion-mnist", "software"), ("spoken-digit", "software")] {
            XCTAssertEqual(FreezeOptions.defaultWeightBits(task: task, mode: mode), 8, "\(task) \(mode)")
        }
        // a bad option is refused before anything is written
        let r3 = try runTool(["freeze", dir + "/run", "--target", "rram-40nm-taox", "--out", dir + "/m3.rrm", "--weight-bits", "9"])
        XCTAssertNotEqual(r3.status, 0); XCTAssertTrue(r3.err.contains("--weight-bits"), r3.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/m3.rrm"))
        let r4 = try runTool(["freeze", dir + "/run", "--target", "rram-40nm-taox", "--out", dir + "/m3.rrm", "--adc-gain", "round"])
        XCTAssertNotEqual(r4.status, 0); XCTAssertTrue(r4.err.contains("--adc-gain must be integer or full-scale, got 'round'"), r4.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/m3.rrm"))
        XCTAssertEqual(b.metadata.extra["freeze.adc_gain_rule"], .string("integer"))
        // bench infer
        let bi = try runTool(["bench", "infer", model, "--runs", "20", "--warmup", "2", "--seconds", "0.05", "--batch", "16", "--data", dir + "/data", "--json"])
        XCTAssertEqual(bi.status, 0, bi.err)
        let bj = try JSONSerialization.jsonObject(with: Data(bi.out.utf8)) as! [String: Any]
        let res = bj["results"] as! [[String: Any]]
        XCTAssertEqual(res.compactMap { $0["threads"] as? Int }, [1, 2])
        for x in res { XCTAssertGreaterThan(x["latency_us_median"] as? Double ?? 0, 0); XCTAssertGreaterThan(x["images_per_second"] as? Double ?? 0, 0) }
    }
}
