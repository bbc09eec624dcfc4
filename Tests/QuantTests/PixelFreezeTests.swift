import Foundation
import XCTest
import Kernels
import Randomness
import Segmentation
import Training
@testable import Quant

/// A U-Net trained on patches, frozen at a larger whole-image size and evaluated per pixel:
/// the integer program and the float pipeline of the frozen graph decide alike.
final class PixelFreezeTests: XCTestCase {
    /// Samples of `size` x `size`: a smooth random field; a pixel is class 1 iff its value > 0.6.
    func split(count: Int, size: Int, seed: UInt64) throws -> DataSplit {
        var r = Xoshiro256StarStar(seed: seed)
        var v = [Float](repeating: 0, count: count * size * size)
        for s in 0..<count {
            let (a, b, c) = (r.uniform(0, 0.5), r.uniform(0.1, 0.4), r.uniform(0.1, 0.4))
            for y in 0..<size { for x in 0..<size {
                v[(s * size + y) * size + x] = Float(min(1, max(0, a + 0.25 * (1 + sin(b * Double(y)) * cos(c * Double(x))) + 0.1 * r.uniform(0, 1))))
            } }
        }
        return try DataSplit(count: count, sampleShape: [1, size, size], samples: v, labels: v.map { $0 > 0.6 ? 1 : 0 }, labelsPerSample: size * size)
    }

    func testAUNetFrozenAtTheWholeImageSizeAgreesWithItsFloatPipeline() throws {
        var cfg = TrainConfig.defaults(task: "drive")
        cfg.epochs = 2; cfg.batch = 8; cfg.evalBatch = 8; cfg.crop = 16; cfg.lr = 0.01; cfg.seed = 3
        // a toy of 8 steps: a wide hysteresis band keeps its masks from flapping
        cfg.limitStart = 0.3; cfg.limitEnd = 0.007
        let specs = Architectures.driveUNet(base: 4, depth: 2)
        let t = try Trainer(config: cfg, train: try split(count: 32, size: 24, seed: 1), test: try split(count: 8, size: 16, seed: 2),
                            threads: 2, specs: specs, classes: 2)
        for _ in 0..<cfg.epochs { try t.trainEpoch() }
        let dir = tempPath("pixel-freeze-run")
        try? FileManager.default.removeItem(atPath: dir)
        try t.save(to: dir)
        // the patches' network read at 32 x 32 (a multiple of 2^depth)
        let run = try TrainedRun(try Checkpoint.read(dir: dir), maxBatch: 1, threads: 1, inputShape: [1, 32, 32])
        let source = FreezeSource(run: run)
        XCTAssertEqual(source.inputShape, [1, 32, 32])
        let whole = try split(count: 5, size: 32, seed: 9)
        let bytes = (0..<whole.count).map { i in (0..<1024).map { UInt8((whole.samples[i * 1024 + $0] * 255).rounded()) } }
        let calibration = PixelSet(count: 2, shape: TensorShape(c: 1, h: 32, w: 32), pixels: bytes[0] + bytes[1])
        let model = try Freezer.freeze(source, target: smallTarget(), calibration: calibration, options: FreezeOptions())
        XCTAssertEqual(model.program.tensors[model.program.output].shape, TensorShape(c: 2, h: 32, w: 32))
        // count a 30 x 31 window of each image (as if padded), inside a disc-shaped mask
        let (h, w) = (30, 31)
        let masks = (2..<5).map { _ in (0..<(h * w)).map { k -> UInt8 in
            let dy = Double(k / w) - 15, dx = Double(k % w) - 15
            return dy * dy + dx * dx < 14 * 14 ? 1 : 0
        } }
        let labels = (2..<5).map { i in (0..<(h * w)).map { k in whole.labels[i * 1024 + (k / w) * 32 + k % w] } }
        let e = try Freezer.evaluatePixels(model.program, images: Array(bytes[2..<5]), labels: labels, masks: masks, height: h, width: w, threads: 2)
        XCTAssertEqual(e.images, 3)
        XCTAssertEqual(e.pixels, masks.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1) } })
        XCTAssertGreaterThanOrEqual(e.agreement, 0.98, "integer vs float pipeline decisions")
        let ri = try XCTUnwrap(e.integer.rocAUC), rf = try XCTUnwrap(e.float.rocAUC)
        XCTAssertEqual(ri, rf, accuracy: 0.01, "ROC-AUC integer \(ri) vs float \(rf)")
        XCTAssertGreaterThan(rf, 0.6, "the net learned something of the threshold map (\(rf))")
        // the integer decisions are the engine's own per-pixel argmax
        let engine = try Engine(program: model.program, threads: 1)
        let (z, pred) = engine.inferBatch(bytes[2], count: 1)
        for k in 0..<1024 where Int(pred[k]) != (z[1024 + k] > z[k] ? 1 : 0) {
            return XCTFail("pixel \(k): argmax \(pred[k]), logits \(z[k]), \(z[1024 + k])")
        }
        // the thresholded figures count the argmax decisions
        var tp = 0
        for i in 0..<3 {
            let (zi, _) = engine.inferBatch(bytes[2 + i], count: 1)
            for k in 0..<(h * w) where masks[i][k] != 0 && labels[i][k] == 1 {
                let q = (k / w) * 32 + k % w
                if zi[1024 + q] > zi[q] { tp += 1 }
            }
        }
        XCTAssertEqual(e.integerAtHalf.tp, tp)
        // a mismatched mask is refused, not a trap
        XCTAssertThrowsError(try Freezer.evaluatePixels(model.program, images: [bytes[2]], labels: [labels[0]], masks: [[1]], height: h, width: w, threads: 1))
    }
}
