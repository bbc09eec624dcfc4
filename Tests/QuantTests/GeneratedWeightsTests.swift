import XCTest
import DataIO
import Device
import Kernels
import ModelFile
import Training
@testable import Quant

/// Freeze stores weight generators instead of codes for trained software-TO and hardware-TO
/// runs (docs/FORMAT.md 8b); the file loads to exactly the frozen program.
final class GeneratedWeightsTests: XCTestCase {
    func trainedSource(mode: String, target: String? = nil) throws -> FreezeSource {
        let px = syntheticPixels(count: 240, seed: 5)
        let split = try DataSplit(count: px.count, sampleShape: [1, 28, 28], samples: px.pixels.map { Float($0) / 255 }, labels: px.labels!)
        var cfg = TrainConfig(); cfg.epochs = 1; cfg.batch = 60; cfg.evalBatch = 120; cfg.seed = 9
        cfg.mode = mode; cfg.target = target
        let source: DifferentialWeightSource? = mode == "hardware"
            ? try DeviceWeightSource(target: target!, seed: cfg.seed, layers: Architectures.layerShapes(miniSpecs()))
            : nil
        let t = try Trainer(config: cfg, train: split, test: split, source: source, threads: 1, specs: miniSpecs())
        try t.trainEpoch()
        let dir = tempPath("gen-run-\(mode)")
        try t.save(to: dir)
        return FreezeSource(run: try TrainedRun(dir: dir, maxBatch: 60, threads: 1))
    }

    func check(_ src: FreezeSource, target: TargetProfile, expect: (WeightGenerator?) -> Bool) throws {
        let m = try Freezer.freeze(src, target: target, calibration: syntheticPixels(count: 60, seed: 7))
        let b = Freezer.bundle(m, source: src, target: target, evaluation: nil, options: FreezeOptions(), toolVersion: "t")
        XCTAssertEqual(b.metadata.weightGenerators.count, 4)
        for g in b.metadata.weightGenerators { XCTAssertTrue(expect(g), "\(String(describing: g))") }
        let bytes = try b.encode()
        XCTAssertEqual(try b.encode(), bytes)
        let back = try ModelBundle.decode(bytes)
        XCTAssertEqual(back.program, m.program, "generated weights regenerate to the frozen codes")
        var o = FreezeOptions(); o.explicitWeights = true
        let e = try Freezer.bundle(m, source: src, target: target, evaluation: nil, options: o, toolVersion: "t").encode()
        XCTAssertEqual(try Container.parse(e).minor, 0)
        XCTAssertEqual(try ModelBundle.decode(e).program, back.program)
        XCTAssertLessThan(bytes.count, e.count)
        print("\(src.mode): generated \(bytes.count) bytes, explicit \(e.count) bytes")
    }

    func testSoftwareRunStoresSignStreams() throws {
        let src = try trainedSource(mode: "software")
        try check(src, target: smallTarget()) { g in
            if case .signedConstant(127, .stream(let seed, _))? = g { return seed == 9 } else { return false }
        }
    }

    func testHardwareRunStoresTheStatisticalDevice() throws {
        let target = try TargetProfiles.resolve("rram-lowprec")
        let src = try trainedSource(mode: "hardware", target: "rram-lowprec")
        try check(src, target: target) { g in
            if case .statisticalDevice(9)? = g { return true } else { return false }
        }
    }

    /// Weights that are not the device's (a synthetic hardware-like source) stay explicit.
    func testForeignHardwareWeightsStayExplicit() throws {
        let src = syntheticSource(seed: 4, hardware: true)
        let m = try Freezer.freeze(src, target: smallTarget(), calibration: syntheticPixels(count: 30, seed: 7))
        XCTAssertEqual(m.deviceGenerated, [false, false, false, false])
        XCTAssertNotNil(m.generatorNote)
        let b = Freezer.bundle(m, source: src, target: smallTarget(), evaluation: nil, options: FreezeOptions(), toolVersion: "t")
        XCTAssertTrue(b.metadata.weightGenerators.isEmpty)
    }
}
