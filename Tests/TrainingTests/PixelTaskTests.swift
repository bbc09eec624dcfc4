import XCTest
import Randomness
@testable import Training

/// Per-pixel tasks: the geometric augmentation of samples and label maps, training on logit
/// maps, and the DRIVE U-Net's graph.
final class PixelTaskTests: XCTestCase {
    /// numpy's `rot90` (k = 1): out[i][j] = in[j][n - 1 - i].
    func rot90(_ a: [[Int]]) -> [[Int]] {
        let n = a.count
        return (0..<n).map { i in (0..<n).map { j in a[j][n - 1 - i] } }
    }

    func testAugmentationIsCropThenMirrorsThenQuarterTurns() {
        let (h, w, c, crop) = (7, 6, 2, 4)
        let src = (0..<(c * h * w)).map { $0 * 3 + 1 }
        var dst = [Int](repeating: -1, count: c * crop * crop)
        for top in 0...(h - crop) { for left in 0...(w - crop) { for hf in [false, true] { for vf in [false, true] { for k in 0..<4 {
            let a = Trainer.Augmentation(top: top, left: left, horizontal: hf, vertical: vf, quarterTurns: k)
            src.withUnsafeBufferPointer { s in
                dst.withUnsafeMutableBufferPointer { d in
                    Trainer.apply(a, s.baseAddress!, channels: c, height: h, width: w, outHeight: crop, outWidth: crop, into: d.baseAddress!)
                }
            }
            for ch in 0..<c {
                // the same view composed step by step, as array operations
                var m = (0..<crop).map { y in (0..<crop).map { x in src[ch * h * w + (y + top) * w + x + left] } }
                if hf { m = m.map { Array($0.reversed()) } }
                if vf { m = m.reversed() }
                for _ in 0..<k { m = rot90(m) }
                for i in 0..<crop { for j in 0..<crop where dst[ch * crop * crop + i * crop + j] != m[i][j] {
                    return XCTFail("\(a) channel \(ch) pixel (\(i), \(j)): expected \(m[i][j]), got \(dst[ch * crop * crop + i * crop + j])")
                } }
            }
        } } } } }
    }

    func testAugmentationDrawsAreTheDocumentedOnes() {
        var cfg = TrainConfig.defaults(task: "drive")
        cfg.seed = 11
        let views = Trainer.augmentation(config: cfg, height: 64, width: 64, epoch: 3, count: 4000)
        let flips = Trainer.flips(seed: 11, epoch: 3, count: 4000)
        let sk = CounterRandom.key(seed: 11, stream: 0x4155_474D_0000 + 3)
        for (j, a) in views.enumerated() {
            let k = CounterRandom.key(sk, index: UInt64(j))
            let want = Trainer.Augmentation(top: Int(CounterRandom.bits(k, lane: 0) % 17), left: Int(CounterRandom.bits(k, lane: 1) % 17),
                                            horizontal: flips[j], vertical: CounterRandom.bits(k, lane: 2) >> 63 == 1,
                                            quarterTurns: Int(CounterRandom.bits(k, lane: 3) >> 62))
            guard a == want else { return XCTFail("position \(j): expected \(want), got \(a)") }
        }
        // every offset, mirror and turn occurs, about uniformly
        XCTAssertEqual(Set(views.map(\.top)), Set(0...16))
        for k in 0..<4 { XCTAssertEqual(Double(views.filter { $0.quarterTurns == k }.count), 1000, accuracy: 150, "turns \(k)") }
        XCTAssertEqual(Double(views.filter(\.vertical).count), 2000, accuracy: 150)
        // each option off leaves its field at the identity
        cfg.crop = nil; cfg.verticalFlip = nil; cfg.rotate90 = nil; cfg.horizontalFlip = nil
        XCTAssertTrue(Trainer.augmentation(config: cfg, height: 64, width: 64, epoch: 3, count: 100).allSatisfy(\.isIdentity))
    }

    /// conv 3x3 pad 1 (1->4) - BN - ReLU - fq - 1x1 conv (4->2): a per-pixel classifier.
    func pixelSpecs() -> [LayerSpec] {
        func s(_ op: String, _ f: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec { var x = LayerSpec(op: op); f(&x); return x }
        return [
            s("fakequant") { $0.bits = 6; $0.fixedRange = true; $0.range = 1 },
            s("conv2d") { $0.name = "conv"; $0.inChannels = 1; $0.outChannels = 8; $0.kernelH = 3; $0.kernelW = 3; $0.padding = 1 },
            s("batchnorm") { $0.eps = 1e-5 },
            s("relu"),
            s("fakequant") { $0.bits = 6; $0.fixedRange = false },
            s("conv2d") { $0.name = "head"; $0.inChannels = 8; $0.outChannels = 2; $0.kernelH = 1; $0.kernelW = 1; $0.padding = 0 },
        ]
    }

    /// Samples of `size` x `size` uniform values; a pixel's label is 1 iff its value > 0.5.
    func thresholdSplit(count: Int, size: Int, seed: UInt64) throws -> DataSplit {
        var r = Xoshiro256StarStar(seed: seed)
        let v = (0..<(count * size * size)).map { _ in Float(r.uniform(0, 1)) }
        return try DataSplit(count: count, sampleShape: [1, size, size], samples: v, labels: v.map { $0 > 0.5 ? 1 : 0 }, labelsPerSample: size * size)
    }

    func testPerPixelTrainingLearnsAndIsThreadIndependent() throws {
        let train = try thresholdSplit(count: 96, size: 12, seed: 1)
        let test = try thresholdSplit(count: 32, size: 8, seed: 2)
        var cfg = TrainConfig.defaults(task: "drive")
        cfg.epochs = 8; cfg.batch = 16; cfg.evalBatch = 16; cfg.lr = 0.05; cfg.crop = 8
        // a toy of 48 steps: a wide hysteresis band keeps its masks from flapping
        cfg.limitStart = 0.3; cfg.limitEnd = 0.007
        func run(threads: Int) throws -> (Trainer, [EpochRecord]) {
            let t = try Trainer(config: cfg, train: train, test: test, threads: threads, specs: pixelSpecs(), classes: 2)
            var recs: [EpochRecord] = []
            for _ in 0..<cfg.epochs { recs.append(try t.trainEpoch()) }
            return (t, recs)
        }
        let (t1, r1) = try run(threads: 1)
        XCTAssertEqual(t1.pixels, 64, "the crop's pixels")
        let last = try XCTUnwrap(r1.last)
        XCTAssertGreaterThan(last.testAccuracy, 0.75, "a threshold map is learnable: \(r1.map(\.testAccuracy))")
        XCTAssertGreaterThan(last.testAccuracy, r1[0].testAccuracy + 0.2, "training improves the map: \(r1.map(\.testAccuracy))")
        let (t2, r2) = try run(threads: 2)
        XCTAssertEqual(r1.map(\.timeless), r2.map(\.timeless), "same seed, same records at 1 and 2 threads")
        XCTAssertEqual(t1.net.masked.map { $0.mask.array }, t2.net.masked.map { $0.mask.array })
    }

    func testPerPixelShapesAreChecked() throws {
        let train = try thresholdSplit(count: 32, size: 12, seed: 1)
        var cfg = TrainConfig.defaults(task: "drive")
        cfg.batch = 16; cfg.evalBatch = 16; cfg.crop = 8
        // test samples must be the crop's size
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: try thresholdSplit(count: 4, size: 12, seed: 2), threads: 1,
                                         specs: pixelSpecs(), classes: 2)) { XCTAssertTrue("\($0)".contains("the training crop"), "\($0)") }
        // a classifier graph cannot train per-pixel labels
        XCTAssertThrowsError(try Trainer(config: cfg, train: train, test: try thresholdSplit(count: 4, size: 8, seed: 2), threads: 1,
                                         specs: pixelSpecs() + [LayerSpec(op: "globalavgpool")], classes: 2)) {
            XCTAssertTrue("\($0)".contains("logit map"), "\($0)")
        }
        // per-pixel labels must cover every pixel
        XCTAssertThrowsError(try DataSplit(count: 1, sampleShape: [1, 4, 4], samples: [Float](repeating: 0, count: 16),
                                           labels: [UInt8](repeating: 0, count: 8), labelsPerSample: 8))
        var sd = TrainConfig.defaults(task: "spoken-digit"); sd.rotate90 = true
        XCTAssertThrowsError(try sd.validate()) { XCTAssertTrue("\($0)".contains("image tasks only"), "\($0)") }
    }

    func testDriveUNetHasThePapersChannelsAndALogitMap() throws {
        let specs = Architectures.driveUNet()
        let convs = try specs.enumerated().compactMap { i, s -> (String, Int, Int)? in
            if case let .conv2d(name, cin, cout, kh, _, _, _, pad) = try s.typed(index: i) {
                XCTAssertEqual(pad, kh / 2, name)
                return (name, cin, cout)
            }
            return nil
        }
        let want: [(String, Int, Int)] = [
            ("enc1.conv1", 1, 32), ("enc1.conv2", 32, 32), ("enc2.conv1", 32, 64), ("enc2.conv2", 64, 64),
            ("enc3.conv1", 64, 128), ("enc3.conv2", 128, 128), ("enc4.conv1", 128, 256), ("enc4.conv2", 256, 256),
            ("bottom.conv1", 256, 256), ("bottom.conv2", 256, 256),
            ("dec4.conv1", 512, 256), ("dec4.conv2", 256, 128), ("dec3.conv1", 256, 128), ("dec3.conv2", 128, 64),
            ("dec2.conv1", 128, 64), ("dec2.conv2", 64, 32), ("dec1.conv1", 64, 32), ("dec1.conv2", 32, 32), ("head", 32, 2),
        ]
        XCTAssertEqual(convs.map(\.0), want.map(\.0))
        XCTAssertEqual(convs.map(\.1), want.map(\.1))
        XCTAssertEqual(convs.map(\.2), want.map(\.2))
        // every conv reads 6-bit codes: the node before each conv is a fake-quant, or a max-pool
        // of one (the max of codes is a code)
        for (i, s) in specs.enumerated() where s.op == "conv2d" {
            var j = (s.inputs?.first ?? i) - 1
            while specs[j].op == "maxpool2d" { j -= 1 }
            let prev = specs[j]
            XCTAssertEqual(prev.op, "fakequant", "\(s.name ?? "") reads \(prev.op)")
            XCTAssertEqual(prev.bits, 6)
        }
        // a narrow copy builds and maps [1, 32, 32] to [2, 32, 32]
        let net = try SupermaskNetwork(specs: Architectures.driveUNet(base: 4), inputShape: [1, 32, 32], sparsity: 0.5, maxBatch: 2, pool: WorkPool(threads: 1))
        XCTAssertEqual(net.graph.shapes.last, [2, 32, 32])
    }
}
