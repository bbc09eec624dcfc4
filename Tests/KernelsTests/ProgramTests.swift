// Whole programs: the paper's Fashion-MNIST CNN with random weights. Fast engine == reference
// engine on every intermediate tensor and every tile's ADC codes; 1 thread == 2 threads; float
// pipeline vs integer argmax agreement.

import XCTest
import FixedPoint
import Randomness
@testable import Kernels

final class ProgramTests: XCTestCase {
    func testCNNShapeMatchesPaper() throws {
        let p = makeCNN(seed: 3)
        try p.validate()
        XCTAssertEqual(p.tensors[p.output].shape, TensorShape(c: 10, h: 1, w: 1))
        var macs = 0
        for n in p.nodes { if case .crossbar(let c) = n.op { macs += c.fanIn * p.tensors[n.output].shape.count } }
        XCTAssertEqual(macs, 1_057_024)   // 1.06 M MACs per image
    }

    func testFastEngineEqualsReferenceOnEveryTensor() throws {
        for seed: UInt64 in [5, 6] {
            let p = makeCNN(seed: seed, weightBits: seed == 5 ? 8 : 5, codeBits: seed == 5 ? 4 : 6)
            let engine = try Engine(program: p)
            // conv1+act and fc1+act are fused with 4-bit activations; 6-bit ones (63 levels) are not
            XCTAssertEqual(engine.compiled.fusedCount, seed == 5 ? 2 : 0)
            let images = randomImages(2, seed: seed)
            var zeros = 0, highs = 0, adcSat = 0, adcTotal = 0
            for i in 0..<2 {
                let px = Array(images[(i * 784)..<((i + 1) * 784)])
                let ref = Reference.run(p, pixels: px)
                let fast = engine.trace(pixels: px)
                for t in 0..<p.tensors.count {
                    assertBitExact(ref.tensors[t], fast.tensors[t], stage: "seed \(seed) image \(i) tensor \(t)")
                }
                for (k, node) in p.nodes.enumerated() {
                    guard case .crossbar(let c) = node.op else { XCTAssertTrue(fast.tileADC[k].isEmpty); continue }
                    XCTAssertEqual(ref.tileADC[k].count, c.tiles.count)
                    for t in 0..<c.tiles.count {
                        assertBitExact(ref.tileADC[k][t], fast.tileADC[k][t], stage: "seed \(seed) image \(i) node \(k) tile \(t) ADC")
                        for v in ref.tileADC[k][t] { adcTotal += 1; if abs(v) >= 8191 { adcSat += 1 } }
                    }
                    if case .activation(let a) = p.nodes[min(k + 1, p.nodes.count - 1)].op {
                        for v in ref.tensors[p.nodes[k + 1].output] { if v == 0 { zeros += 1 } else if v == (1 << a.outBits) - 1 { highs += 1 } }
                    }
                }
                var logits = [Int32](repeating: 0, count: 10)
                let pred = px.withUnsafeBufferPointer { a in logits.withUnsafeMutableBufferPointer { engine.infer(pixels: a, logits: $0) } }
                assertBitExact(ref.tensors[p.output], logits, stage: "logits")
                XCTAssertEqual(pred, argmax(ref.tensors[p.output]))
            }
            // the random network exercises the ranges (not all zero, not all saturated)
            XCTAssertGreaterThan(zeros, 100); XCTAssertGreaterThan(highs, 10)
            XCTAssertGreaterThan(adcSat, 0, "some ADC saturation"); XCTAssertLessThan(adcSat * 10, adcTotal)
        }
    }

    func testOneThreadEqualsTwoThreads() throws {
        let p = makeCNN(seed: 9)
        let engine = try Engine(program: p, threads: 2)
        let n = 10
        let images = randomImages(n, seed: 10)
        let one = engine.inferBatch(images, count: n, threads: 1)
        let two = engine.inferBatch(images, count: n, threads: 2)
        assertBitExact(one.logits, two.logits, stage: "batch logits 1 vs 2 threads")
        assertBitExact(one.predictions, two.predictions, stage: "batch predictions 1 vs 2 threads")
        // and equal to single-image inference
        for i in [0, n - 1] {
            let px = Array(images[(i * 784)..<((i + 1) * 784)])
            assertBitExact(Reference.run(p, pixels: px).tensors[p.output], Array(two.logits[(i * 10)..<((i + 1) * 10)]),
                           stage: "batch image \(i) vs reference")
        }
        XCTAssertGreaterThan(Set(one.predictions).count, 1, "predictions are not constant")
    }

    func testArgmaxTieRule() {
        XCTAssertEqual(argmax([3, 7, 7, 1] as [Int32]), 1)
        XCTAssertEqual(argmax([-5, -5] as [Int32]), 0)
        XCTAssertEqual(argmax([] as [Int32]), -1)
        XCTAssertEqual(FloatPipeline.argmax([1, 2, 2]), 1)
    }
}

final class FloatPipelineTests: XCTestCase {
    /// On one crossbar with identical input codes, an ideal ADC differs from the integer ADC by
    /// less than 1 code per tile (rounding only) wherever no tile saturates.
    func testFloatCrossbarDiffersOnlyByADCRounding() {
        var rng = Xoshiro256StarStar(seed: 91)
        var checked = 0
        for _ in 0..<150 {
            let (p, s, codeBits) = FastVsReferenceTests.randomCrossbar(&rng)
            let x = (0..<s.count).map { _ in Int32(rng.int(0...((1 << codeBits) - 1))) }
            var tiles: [[Int32]] = []
            let ints = Reference.crossbar(x, shape: s, p, tileADC: &tiles)
            let floats = FloatPipeline.crossbar(x.map { Float($0) }, shape: s, p)
            for i in 0..<ints.count {
                let saturated = p.tiles.enumerated().contains { t, tile in abs(tiles[t][i]) >= (1 << (tile.bits - 1)) - 1 }
                if saturated { continue }
                checked += 1
                let tol = Float(p.tiles.count) * 1.0001 + abs(floats[i]) * 1e-6
                if abs(floats[i] - Float(ints[i])) > tol {
                    XCTFail("element \(i): float \(floats[i]) vs int \(ints[i]) beyond \(p.tiles.count) codes"); return
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000)
    }

    /// The float affine quantizer equals the integer one whenever the real value is exact.
    func testFloatAffineMatchesIntegerOnExactInputs() {
        var rng = Xoshiro256StarStar(seed: 92)
        for _ in 0..<500 {
            let p = AffineQuantParams(channels: 1, multiplier: Int32(rng.int(-64...64)), shift: Int32(rng.int(0...6)),
                                      offset: Int64(rng.int(-300...300)), outBits: rng.int(1...8), rounding: rng.rule())
            let x = (0..<8).map { _ in Int32(rng.int(-1000...1000)) }
            let s = TensorShape(c: 1, h: 1, w: 8)
            XCTAssertEqual(FloatPipeline.affine(x.map { Float($0) }, shape: s, p), Reference.affineQuant(x, shape: s, p).map { Float($0) },
                           "\(p) \(x)")
        }
    }

    func testFloatVsIntegerArgmaxAgreement() throws {
        let p = makeCNN(seed: 12)
        let engine = try Engine(program: p)
        let n = 12
        let images = randomImages(n, seed: 13)
        let ints = engine.inferBatch(images, count: n).predictions
        var agree = 0
        for i in 0..<n {
            let f = FloatPipeline.logits(p, pixels: Array(images[(i * 784)..<((i + 1) * 784)]))
            if FloatPipeline.argmax(f) == Int(ints[i]) { agree += 1 }
        }
        // random weights give small logit margins, so this is a sanity bound, not an accuracy figure
        XCTAssertGreaterThanOrEqual(agree, n / 2, "float/int argmax agreement \(agree)/\(n)")
        print("float/int argmax agreement on random CNN: \(agree)/\(n)")
    }
}

final class SampleProgramTests: XCTestCase {
    func testSampleCNNIsValidAndFastEqualsReference() throws {
        let p = SamplePrograms.fashionMNISTCNN(seed: 1)
        try p.validate()
        XCTAssertEqual(p, SamplePrograms.fashionMNISTCNN(seed: 1), "deterministic")
        XCTAssertNotEqual(p, SamplePrograms.fashionMNISTCNN(seed: 2))
        let engine = try Engine(program: p, threads: 2)
        let images = SamplePrograms.images(4, seed: 3)
        let batch = engine.inferBatch(images, count: 4, threads: 2)
        for i in 0..<4 {
            let ref = Reference.run(p, pixels: Array(images[(i * 784)..<((i + 1) * 784)]))
            assertBitExact(ref.tensors[p.output], Array(batch.logits[(i * 10)..<((i + 1) * 10)]), stage: "sample CNN image \(i) logits")
        }
    }

    /// The narrow first conv stores its output channels in level order for the second conv
    /// (`CompiledProgram.levelOrder`, the second conv's input channels permuted alike) and the
    /// flatten before the first linear layer is not run (HWC-ordered weight columns): logits
    /// equal the reference's, over several seeds, rounding rules and code widths.
    func testLevelOrderedChannelsEqualReference() throws {
        var permuted = 0
        for seed in UInt64(1)...8 {
            let p = makeCNN(seed: seed, codeBits: seed % 4 == 0 ? 3 : 4)
            let engine = try Engine(program: p, threads: 1)
            permuted += engine.compiled.permutedCount
            XCTAssertEqual(engine.compiled.elidedFlattenCount, 1, "the flatten before fc 400->128 is not run")
            let images = randomImages(6, seed: seed + 100)
            let batch = engine.inferBatch(images, count: 6, threads: 1)
            for i in 0..<6 {
                let px = Array(images[(i * 784)..<((i + 1) * 784)])
                let ref = Reference.run(p, pixels: px)
                assertBitExact(ref.tensors[p.output], Array(batch.logits[(i * 10)..<((i + 1) * 10)]), stage: "seed \(seed) image \(i) logits")
                // the trace (unfused, program order) still records every tensor as the reference does
                let tr = engine.trace(pixels: px)
                for t in 0..<p.tensors.count { assertBitExact(ref.tensors[t], tr.tensors[t], stage: "seed \(seed) image \(i) tensor \(t)") }
            }
        }
        XCTAssertGreaterThan(permuted, 3, "level-ordered channels exercised")
    }
}

final class FusionRuleTests: XCTestCase {
    /// A single-tile layer's sums read by an activation (a dead branch) and by a max-pool (the
    /// live branch): fusion must not happen, or the pool would read sums that were never written.
    func testNoFusionWhenSumsHaveOtherReaders() throws {
        let s = TensorShape(c: 1, h: 6, w: 6), s1 = TensorShape(c: 4, h: 4, w: 4), sp = TensorShape(c: 4, h: 2, w: 2)
        let conv = CrossbarParams(inChannels: 1, outChannels: 4, kernelH: 3, kernelW: 3, weightBits: 8,
                                  weights: (0..<36).map { Int8($0 % 7 - 3) },
                                  tiles: CrossbarParams.uniformTiles(fanIn: 9, arrayRows: 512, multiplier: 1 << 30, shift: 0, rounding: .halfUp, bits: 14))
        let fc = CrossbarParams(inChannels: 16, outChannels: 3, kernelH: 1, kernelW: 1, weightBits: 8,
                                weights: (0..<48).map { Int8($0 % 5 - 2) },
                                tiles: CrossbarParams.uniformTiles(fanIn: 16, arrayRows: 512, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 14))
        let act = AffineQuantParams(channels: 4, multiplier: 1, shift: 2, offset: 0, outBits: 4, rounding: .halfUp)
        let p = Program(tensors: [.code(s, bits: 8), .code(s, bits: 4), .sum(s1), .code(s1, bits: 4), .sum(sp), .code(sp, bits: 4),
                                  .code(TensorShape(c: 16, h: 1, w: 1), bits: 4), .sum(TensorShape(c: 3, h: 1, w: 1))],
                        nodes: [Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: 15, shift: 8, offset: 0, outBits: 4, rounding: .halfUp)), inputs: [0], output: 1),
                                Node(.crossbar(conv), inputs: [1], output: 2),
                                Node(.activation(act), inputs: [2], output: 3),      // dead branch
                                Node(.maxPool(MaxPoolParams(2)), inputs: [2], output: 4),
                                Node(.activation(act), inputs: [4], output: 5),
                                Node(.flatten, inputs: [5], output: 6),
                                Node(.crossbar(fc), inputs: [6], output: 7)],
                        input: 0, output: 7)
        let engine = try Engine(program: p)
        XCTAssertEqual(engine.compiled.fusedCount, 0)
        for seed: UInt64 in 0..<5 {
            var rng = Xoshiro256StarStar(seed: seed)
            let px = (0..<36).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var logits = [Int32](repeating: 0, count: 3)
            px.withUnsafeBufferPointer { a in logits.withUnsafeMutableBufferPointer { _ = engine.infer(pixels: a, logits: $0) } }
            assertBitExact(Reference.run(p, pixels: px).tensors[7], logits, stage: "two readers, image \(seed)")
        }
    }
}
