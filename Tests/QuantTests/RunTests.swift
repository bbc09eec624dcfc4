import Foundation
import XCTest
import DataIO
import Device
import Kernels
import ModelFile
import Randomness
import Training
@testable import Quant

/// The built binary (swift test builds it with the tests).
let edgecli: String = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    return root + "/.build/debug/edgecli"
}()

func runTool(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: edgecli)
    p.arguments = args
    let o = Pipe(), e = Pipe()
    p.standardOutput = o; p.standardError = e
    try p.run()
    let od = o.fileHandleForReading.readDataToEndOfFile(), ed = e.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
}

final class RunTests: XCTestCase {
    static let model: (path: String, frozen: FrozenModel) = {
        let m = try! Freezer.freeze(syntheticSource(seed: 21), target: smallTarget(), calibration: syntheticPixels(count: 32, seed: 3))
        let path = tempPath("run-model.rrm")
        try! Freezer.bundle(m, source: syntheticSource(seed: 21), target: smallTarget(), evaluation: nil, options: FreezeOptions(), toolVersion: "t").write(to: path)
        return (path, m)
    }()
    static let images = syntheticPixels(count: 150, seed: 77)

    func writeIDX(_ path: String, shape: [Int], _ e: IDXArray.Element, gzip: Bool) throws {
        try IDX.write(try IDXArray(shape: shape, element: e), to: path, gzip: gzip)
    }

    func testRunMatchesTheEngineAndReportsAccuracy() throws {
        guard FileManager.default.isExecutableFile(atPath: edgecli) else { throw XCTSkip("no binary at \(edgecli)") }
        let s = RunTests.images
        let img = tempPath("ok-images.idx.gz"), lab = tempPath("ok-labels.idx"), out = tempPath("ok-logits.npy")
        try writeIDX(img, shape: [s.count, 28, 28], .uint8(s.pixels), gzip: true)
        try writeIDX(lab, shape: [s.count], .uint8(s.labels!), gzip: false)
        let r = try runTool(["run", RunTests.model.path, "--input", img, "--labels", lab, "--out", out, "--json", "--batch", "64", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.err)
        let logits = try NPY.read(path: out)
        XCTAssertEqual(logits.shape, [s.count, 10])
        let engine = try Engine(program: RunTests.model.frozen.program)
        let want = engine.inferBatch(s.pixels, count: s.count)
        let got = try logits.int32s()
        if let j = got.indices.first(where: { got[$0] != want.logits[$0] }) { XCTFail("logits index \(j) (image \(j / 10), class \(j % 10)): expected \(want.logits[j]) got \(got[j])") }
        let correct = zip(want.predictions, s.labels!).filter { Int($0) == Int($1) }.count
        let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        XCTAssertEqual(json["correct"] as? Int, correct)
        XCTAssertEqual(json["images"] as? Int, s.count)
        // float intensities in [0, 1] (x = p/255) give the same result
        let fimg = tempPath("ok-float.idx"), k = 30
        try writeIDX(fimg, shape: [k, 1, 28, 28], .float32(s.pixels[0..<(k * 784)].map { Float($0) / 255 }), gzip: false)
        let out2 = tempPath("ok-logits2.npy")
        let r2 = try runTool(["run", RunTests.model.path, "--input", fimg, "--out", out2, "--float", "--json"])
        XCTAssertEqual(r2.status, 0, r2.err)
        XCTAssertEqual(try NPY.read(path: out2).int32s(), Array(got[0..<(k * 10)]))
        let j2 = try JSONSerialization.jsonObject(with: Data(r2.out.utf8)) as! [String: Any]
        XCTAssertGreaterThanOrEqual(j2["argmax_agreement"] as? Double ?? 0, 0.9)
    }

    func testBadInputsFailWithANamedErrorAndLeaveNoOutput() throws {
        guard FileManager.default.isExecutableFile(atPath: edgecli) else { throw XCTSkip("no binary at \(edgecli)") }
        let s = RunTests.images.prefix(20)
        let dir = tempPath("bad")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let out = dir + "/logits.npy"
        let good = dir + "/good.idx"
        try writeIDX(good, shape: [20, 28, 28], .uint8(s.pixels), gzip: false)
        // wrong container: a 28x28 image set as NPY
        let npy = dir + "/images.npy"
        try NPY.write(try NPYArray(shape: [20, 28, 28], uint8: s.pixels), to: npy)
        // a 3-d IDX of the wrong size
        let big = dir + "/images32.idx"
        try writeIDX(big, shape: [2, 32, 32], .uint8([UInt8](repeating: 1, count: 2048)), gzip: false)
        // NaN in a float input (image 3, pixel 17)
        var f = s.pixels.map { Float($0) / 255 }; f[3 * 784 + 17] = .nan
        let nan = dir + "/nan.idx"
        try writeIDX(nan, shape: [20, 28, 28], .float32(f), gzip: false)
        // a truncated gzip image file and a truncated model file
        let gz = dir + "/images.idx.gz"
        try writeIDX(gz, shape: [20, 28, 28], .uint8(s.pixels), gzip: true)
        let gzBytes = try readFileBytes(gz)
        let trGz = dir + "/trunc.idx.gz"
        try writeFileAtomically(Array(gzBytes[0..<(gzBytes.count / 2)]), to: trGz)
        let modelBytes = try readFileBytes(RunTests.model.path)
        let trModel = dir + "/trunc.rrm"
        try writeFileAtomically(Array(modelBytes[0..<(modelBytes.count - 37)]), to: trModel)
        let labels = dir + "/labels.idx"
        try writeIDX(labels, shape: [19], .uint8([UInt8](repeating: 1, count: 19)), gzip: false)
        // a per-pixel head (the sample U-Net) with image labels
        let unet = dir + "/unet.rram"
        try ModelSamples.graph(seed: 35, unet: true).write(to: unet)
        let labels20 = dir + "/labels20.idx"
        try writeIDX(labels20, shape: [20], .uint8([UInt8](repeating: 1, count: 20)), gzip: false)
        let cases: [(String, [String], [String])] = [
            ("wrong container", ["run", RunTests.model.path, "--input", npy, "--out", out], [npy, "NPY"]),
            ("wrong size", ["run", RunTests.model.path, "--input", big, "--out", out], [big, "2 x 32 x 32", "28 x 28"]),
            ("NaN", ["run", RunTests.model.path, "--input", nan, "--out", out], [nan, "image 3, pixel 17", "nan"]),
            ("truncated images", ["run", RunTests.model.path, "--input", trGz, "--out", out], [trGz, "truncated"]),
            ("truncated model", ["run", trModel, "--input", good, "--out", out], [trModel]),
            ("label count", ["run", RunTests.model.path, "--input", good, "--labels", labels, "--out", out], [labels, "19 labels for 20 images"]),
            ("unknown option", ["run", RunTests.model.path, "--input", good, "--out", out, "--fast"], ["--fast"]),
            ("missing model", ["run", dir + "/none.rrm", "--input", good, "--out", out], ["none.rrm"]),
            ("image labels for a per-pixel head", ["run", unet, "--input", good, "--labels", labels20, "--out", out], [unet, "per-pixel output", "classifiers only"]),
            ("missing output dir", ["run", RunTests.model.path, "--input", good, "--out", dir + "/no/such/x.npy"], ["no/such"]),
        ]
        for (what, args, needles) in cases {
            let r = try runTool(args)
            XCTAssertNotEqual(r.status, 0, "\(what): exit status")
            for n in needles { XCTAssertTrue(r.err.contains(n), "\(what): stderr should name '\(n)': \(r.err)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(what): no output file")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") || $0.contains("tmp") }
            XCTAssertEqual(left, [], "\(what): no temporary files")
        }
        // without labels the per-pixel model runs (its logits maps are written)
        let ok = try runTool(["run", unet, "--input", good, "--out", dir + "/maps.npy"])
        XCTAssertEqual(ok.status, 0, ok.err)
        try FileManager.default.removeItem(atPath: dir + "/maps.npy")
        // freeze refuses a missing run directory without writing
        let fr = try runTool(["freeze", dir + "/norun", "--target", "rram-40nm-taox", "--out", dir + "/m.rrm"])
        XCTAssertNotEqual(fr.status, 0)
        XCTAssertTrue(fr.err.contains("norun"), fr.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/m.rrm"))
    }

    func testImageStreamReadsPlainGzipAndFloatIDXInBatches() throws {
        let s = RunTests.images.prefix(50)
        let plain = tempPath("s.idx"), gz = tempPath("s.idx.gz"), fl = tempPath("s64.idx")
        try writeIDX(plain, shape: [50, 28, 28], .uint8(s.pixels), gzip: false)
        try writeIDX(gz, shape: [50, 28, 28], .uint8(s.pixels), gzip: true)
        try writeIDX(fl, shape: [50, 28, 28], .float64(s.pixels.map { Double($0) / 255 }), gzip: true)
        for p in [plain, gz, fl] {
            let st = try ImageStream(path: p, shape: TensorShape(c: 1, h: 28, w: 28))
            XCTAssertEqual(st.count, 50)
            var all: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 7 * 784)
            while true {
                let n = try buf.withUnsafeMutableBufferPointer { try st.next(into: $0.baseAddress!, max: 7) }
                if n == 0 { break }
                all += buf[0..<(n * 784)]
            }
            XCTAssertEqual(all, s.pixels, p)
        }
        // out-of-range floats and trailing bytes are errors
        let oor = tempPath("oor.idx")
        var v = [Float](repeating: 0.5, count: 784); v[5] = 1.5
        try writeIDX(oor, shape: [1, 28, 28], .float32(v), gzip: false)
        XCTAssertThrowsError(try ImageStream(path: oor, shape: TensorShape(c: 1, h: 28, w: 28)).readAll()) { XCTAssertTrue("\($0)".contains("pixel 5"), "\($0)") }
        let trail = tempPath("trail.idx")
        try writeFileAtomically(try readFileBytes(plain) + [0], to: trail)
        XCTAssertThrowsError(try ImageStream(path: trail, shape: TensorShape(c: 1, h: 28, w: 28)).readAll()) { XCTAssertTrue("\($0)".contains("trailing"), "\($0)") }
    }

    /// A real (tiny) training run: train, save, load with TrainedRun, freeze; the integer program
    /// agrees with the training's own float model.
    func testTrainedRunFreezesAndAgreesWithTheTrainingModel() throws {
        let px = syntheticPixels(count: 600, seed: 5)
        let split = try DataSplit(count: px.count, sampleShape: [1, 28, 28], samples: px.pixels.map { Float($0) / 255 }, labels: px.labels!)
        var cfg = TrainConfig(); cfg.epochs = 1; cfg.batch = 60; cfg.evalBatch = 100; cfg.seed = 3
        let t = try Trainer(config: cfg, train: split, test: split, threads: 2, specs: miniSpecs())
        try t.trainEpoch()
        let dir = tempPath("run")
        try t.save(to: dir)
        let run = try TrainedRun(dir: dir, maxBatch: 100, threads: 1)
        let src = FreezeSource(run: run)
        XCTAssertEqual(src.weightLayers.map(\.name), ["conv1", "conv2", "fc1", "fc2"])
        let m = try Freezer.freeze(src, target: TargetProfiles.rram40nmTaOx, calibration: px.prefix(100))
        let (agree, trainingCorrect, intCorrect, _) = try agreement(run, m.program, syntheticPixels(count: 200, seed: 6))
        XCTAssertGreaterThanOrEqual(Double(agree) / 200.0, 0.95, "integer vs the training's float model")
        XCTAssertLessThanOrEqual(abs(intCorrect - trainingCorrect), 6, "accuracy within 3 points (\(intCorrect) vs \(trainingCorrect) of 200)")
        XCTAssertGreaterThan(trainingCorrect, 50, "the synthetic task is learnable (chance: 20 of 200)")
    }
}

final class GraphFreezeTests: XCTestCase {
    /// A tiny residual net (the task graph at width 8: an identity block, a projection block,
    /// global average pooling) trained three short epochs, saved, loaded and frozen: the integer program
    /// has the graph ops and agrees with the training's own float model.
    func testTrainedResidualNetFreezesAndAgreesWithTheTrainingModel() throws {
        let px = syntheticPixels(count: 600, seed: 7)
        let split = try DataSplit(count: px.count, sampleShape: [1, 28, 28], samples: px.pixels.map { Float($0) / 255 }, labels: px.labels!)
        var cfg = TrainConfig(); cfg.task = "fashion-mnist-resnet"; cfg.width = 8
        cfg.epochs = 3; cfg.batch = 30; cfg.evalBatch = 100; cfg.seed = 4
        let t = try Trainer(config: cfg, train: split, test: split, threads: 2)
        for _ in 0..<cfg.epochs { try t.trainEpoch() }
        let dir = tempPath("resnet-run")
        try t.save(to: dir)
        let run = try TrainedRun(dir: dir, maxBatch: 100, threads: 1)
        let src = FreezeSource(run: run)
        let m = try Freezer.freeze(src, target: TargetProfiles.rram40nmTaOx, calibration: px.prefix(100))
        let kinds = m.program.nodes.map(\.op.kind)
        XCTAssertEqual(kinds.filter { $0 == .add }.count, 2, "two residual additions: \(kinds)")
        XCTAssertEqual(m.layers.map(\.name), ["stem", "b1.conv1", "b1.conv2", "b2.conv1", "b2.conv2", "b2.proj", "fc"])
        let gap = try XCTUnwrap(m.program.nodes.first { $0.op.kind == .globalAvgPool })
        XCTAssertEqual(m.program.tensors[gap.output].kind, .sum, "the pooled sums stay exact until the next quantizer")
        // the projection shortcut reads the first block's output, not its predecessor
        let proj = m.program.nodes[m.layers[5].node]
        XCTAssertEqual(proj.inputs, m.program.nodes[m.layers[3].node].inputs, "b2.proj and b2.conv1 read the same codes")
        try m.program.validate()

        let (agree, trainingCorrect, intCorrect, pipelineAgree) = try agreement(run, m.program, syntheticPixels(count: 200, seed: 8))
        XCTAssertGreaterThanOrEqual(Double(agree) / 200.0, 0.95, "integer vs the training's float model (\(agree) of 200)")
        XCTAssertGreaterThanOrEqual(Double(pipelineAgree) / 200.0, 0.97, "integer vs the frozen float pipeline (\(pipelineAgree) of 200)")
        XCTAssertLessThanOrEqual(abs(intCorrect - trainingCorrect), 6, "accuracy within 3 points (\(intCorrect) vs \(trainingCorrect) of 200)")
        XCTAssertGreaterThan(trainingCorrect, 50, "the synthetic task is learnable (chance: 20 of 200)")
    }
}

extension GraphFreezeTests {
    /// A U-Net-shaped classifier (skip, bilinear x2, concatenation of codes of two scales)
    /// trained three short epochs and frozen: the upsampling stays exact (sums), the
    /// concatenation requantizes both inputs to the next quantizer's scale, and the integer program
    /// agrees with the training's float model and with the frozen float pipeline.
    func testTrainedUNetShapeFreezesWithExactUpsamplingAndOneConcatScale() throws {
        let px = syntheticPixels(count: 600, seed: 9)
        let split = try DataSplit(count: px.count, sampleShape: [1, 28, 28], samples: px.pixels.map { Float($0) / 255 }, labels: px.labels!)
        var cfg = TrainConfig(); cfg.epochs = 3; cfg.batch = 30; cfg.evalBatch = 100; cfg.seed = 5
        let t = try Trainer(config: cfg, train: split, test: split, threads: 2, specs: miniUNetSpecs())
        for _ in 0..<cfg.epochs { try t.trainEpoch() }
        let dir = tempPath("unet-run")
        try t.save(to: dir)
        let run = try TrainedRun(dir: dir, maxBatch: 100, threads: 1)
        let m = try Freezer.freeze(FreezeSource(run: run), target: TargetProfiles.rram40nmTaOx, calibration: px.prefix(100))
        let p = m.program
        try p.validate()
        XCTAssertEqual(m.layers.map(\.name), ["enc1", "enc2", "dec1", "fc"])
        let up = try XCTUnwrap(p.nodes.first { $0.op.kind == .upsampleBilinear })
        XCTAssertEqual(p.tensors[up.output].kind, .sum, "the upsampled numerators stay exact until the concatenation's quantizer")
        XCTAssertEqual(p.tensors[up.output].shape, TensorShape(c: 8, h: 14, w: 14))
        let cat = try XCTUnwrap(p.nodes.first { $0.op.kind == .concat })
        // the skip: the codes of enc1's activation, read by the pool of the next level as well
        let skip = p.nodes[try XCTUnwrap(m.layers[0].activationNode)].output
        XCTAssertEqual(cat.inputs, [up.output, skip])
        XCTAssertEqual(p.nodes.filter { $0.inputs.contains(skip) }.count, 2, "the skip codes have two readers")
        XCTAssertEqual(p.tensors[cat.output].shape, TensorShape(c: 14, h: 14, w: 14))
        guard case .concat(let cp) = cat.op else { return XCTFail("not a concat") }
        // both slices carry the one output scale: the upsampled slice's multipliers include 1/(Dy Dx)
        XCTAssertEqual(cp.quant.multiplier.count, 14)
        XCTAssertTrue(cp.quant.multiplier.contains { $0 != 0 }, "the concatenation's quantizer was calibrated")
        // the decoder conv reads the concatenation
        XCTAssertEqual(p.nodes[m.layers[2].node].inputs, [cat.output])

        let (agree, trainingCorrect, intCorrect, pipelineAgree) = try agreement(run, p, syntheticPixels(count: 200, seed: 10))
        XCTAssertGreaterThanOrEqual(Double(agree) / 200.0, 0.95, "integer vs the training's float model (\(agree) of 200)")
        XCTAssertGreaterThanOrEqual(Double(pipelineAgree) / 200.0, 0.97, "integer vs the frozen float pipeline (\(pipelineAgree) of 200)")
        XCTAssertLessThanOrEqual(abs(intCorrect - trainingCorrect), 6, "accuracy within 3 points (\(intCorrect) vs \(trainingCorrect) of 200)")
        XCTAssertGreaterThan(trainingCorrect, 50, "the synthetic task is learnable (chance: 20 of 200)")
    }
}

/// Over 200 synthetic images: how often the integer program's class equals the training's own
/// float model's, both models' correct counts, and how often the frozen float pipeline's class
/// equals the integer program's.
func agreement(_ run: TrainedRun, _ program: Program, _ test: PixelSet) throws -> (agree: Int, trainingCorrect: Int, intCorrect: Int, pipelineAgree: Int) {
    precondition(test.count == 200)
    let logits = try run.forward(Array(test.pixels[0..<(100 * 784)]).map { Float($0) / 255 }, count: 100) + run.forward(Array(test.pixels[(100 * 784)...]).map { Float($0) / 255 }, count: 100)
    let ints = try Engine(program: program, threads: 1).inferBatch(test.pixels, count: test.count).predictions
    var r = (agree: 0, trainingCorrect: 0, intCorrect: 0, pipelineAgree: 0)
    for i in 0..<test.count {
        let row = Array(logits[(i * 10)..<((i + 1) * 10)])
        let a = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
        if a == Int(ints[i]) { r.agree += 1 }
        if a == Int(test.labels![i]) { r.trainingCorrect += 1 }
        if Int(ints[i]) == Int(test.labels![i]) { r.intCorrect += 1 }
        if FloatPipeline.argmax(FloatPipeline.logits(program, pixels: image(test, i))) == Int(ints[i]) { r.pipelineAgree += 1 }
    }
    return r
}
