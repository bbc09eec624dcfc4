import XCTest
import Randomness
@testable import Training

/// Layer graphs in training: the residual / U-Net ops' gradients by finite differences, through
/// a branching graph (values read by several nodes get the sum of their gradients), the
/// per-pixel loss, Adam, and the residual task's graph.
final class GraphTests: XCTestCase {
    func randomArray(_ n: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Float] {
        var r = Xoshiro256StarStar(seed: seed)
        return (0..<n).map { _ in Float(r.uniform(lo, hi)) }
    }

    /// input [2,4,4] -> conv 3x3 pad 1 (v1) -> add(v1, input) (v2) -> upsample x2 (v3);
    /// upsample x3 of the input (v4: [2,12,12]) -> maxpool... -> concat(v3, upsample x2 of the
    /// input, v3) -> conv 1x1 6->3 -> global average pool -> add(itself) -> [3].
    func makeGraph(batch: Int, pool: WorkPool, weights: [[Float]]? = nil) throws -> LayerGraph {
        let c1 = Conv2d(name: "c1", cin: 2, cout: 2, kh: 3, kw: 3, stride: 1, pad: 1)
        let c2 = Conv2d(name: "c2", cin: 6, cout: 3, kh: 1, kw: 1)
        c1.weight.copy(from: weights?[0] ?? randomArray(c1.weight.count, seed: 21))
        c2.weight.copy(from: weights?[1] ?? randomArray(c2.weight.count, seed: 22))
        let layers: [Layer] = [c1, Add(), UpsampleBilinear(factor: 2), UpsampleBilinear(factor: 2), Concat(), c2, GlobalAvgPool(), Add()]
        let inputs = [[0], [1, 0], [2], [0], [3, 4, 3], [5], [6], [7, 7]]
        return try LayerGraph(layers: layers, inputs: inputs, inputShape: [2, 4, 4], maxBatch: batch, pool: pool)
    }

    func loss(_ g: LayerGraph, x: [Float], R: [Float], batch: Int) -> Double {
        g.input.update(from: x, count: x.count)
        g.forward(batch: batch, training: true)
        var L = 0.0
        for i in 0..<R.count { L += Double(g.output[i]) * Double(R[i]) }
        return L
    }

    func testBranchingGraphGradientsByFiniteDifferences() throws {
        let pool = WorkPool(threads: 2), B = 3
        let g = try makeGraph(batch: B, pool: pool)
        XCTAssertEqual(g.shapes.last!, [3])
        let x = randomArray(B * 32, seed: 23), R = randomArray(B * 3, seed: 24)
        _ = loss(g, x: x, R: R, batch: B)
        g.outputGrad.update(from: R, count: R.count)
        g.backward(batch: B)
        // the input is read by three nodes but needs no gradient (no weight upstream); the
        // weights' gradients flow through the shared values v1 (conv, add) and v3 (both concat slots)
        let c1 = g.layers[0] as! Conv2d, c2 = g.layers[5] as! Conv2d
        let w = [c1.weight.array, c2.weight.array], dW = [c1.weightGrad.array, c2.weightGrad.array]
        let eps: Float = 1e-2
        for (k, wk) in w.enumerated() {
            let scale = dW[k].map { Double(abs($0)) }.max()!
            XCTAssertGreaterThan(scale, 0)
            for i in stride(from: 0, to: wk.count, by: max(1, wk.count / 20)) {
                var wp = w, wm = w
                wp[k][i] += eps; wm[k][i] -= eps
                let lp = loss(try makeGraph(batch: B, pool: pool, weights: wp), x: x, R: R, batch: B)
                let lm = loss(try makeGraph(batch: B, pool: pool, weights: wm), x: x, R: R, batch: B)
                let fd = (lp - lm) / Double(2 * eps)
                XCTAssertEqual(fd, Double(dW[k][i]), accuracy: 2e-2 * max(1, scale), "weight \(k) element \(i)")
            }
        }
    }

    func testInputGradientsThroughSharedValues() throws {
        // a graph with a weight layer first, so every later value needs a gradient: the conv's
        // output (value 1) is read by the add, by an upsampling and twice by a concat
        let pool = WorkPool(threads: 1), B = 2
        func make(_ w: [Float]) throws -> LayerGraph {
            let c = Conv2d(name: "c", cin: 1, cout: 2, kh: 3, kw: 3, stride: 1, pad: 1)
            c.weight.copy(from: w)
            return try LayerGraph(layers: [c, Add(), UpsampleBilinear(factor: 2), UpsampleBilinear(factor: 2), Concat(), GlobalAvgPool()],
                                  inputs: [[0], [1, 1], [2], [1], [3, 4, 3]].map { $0 } + [[5]], inputShape: [1, 3, 3], maxBatch: B, pool: pool)
        }
        let w = randomArray(18, seed: 31), x = randomArray(B * 9, seed: 32)
        let g = try make(w)
        let R = randomArray(B * g.outputSize, seed: 33)
        _ = loss(g, x: x, R: R, batch: B)
        g.outputGrad.update(from: R, count: R.count)
        g.backward(batch: B)
        let dW = (g.layers[0] as! Conv2d).weightGrad.array
        for i in 0..<18 {
            var wp = w, wm = w
            wp[i] += 1e-2; wm[i] -= 1e-2
            let fd = (loss(try make(wp), x: x, R: R, batch: B) - loss(try make(wm), x: x, R: R, batch: B)) / 2e-2
            XCTAssertEqual(fd, Double(dW[i]), accuracy: 2e-3 * max(1, dW.map { Double(abs($0)) }.max()!), "weight \(i)")
        }
    }

    func testUpsampleMatchesAlignCornersAndGlobalPoolIsTheMean() throws {
        let pool = WorkPool(threads: 1)
        for (h, w, f) in [(1, 1, 3), (2, 3, 2), (3, 1, 4), (4, 4, 2)] {
            let u = UpsampleBilinear(factor: f)
            let g = try LayerGraph(layers: [u], inputShape: [2, h, w], maxBatch: 1, pool: pool)
            let x = randomArray(2 * h * w, seed: UInt64(h * 10 + w))
            g.input.update(from: x, count: x.count)
            g.forward(batch: 1, training: false)
            let oh = h * f, ow = w * f
            for c in 0..<2 { for oy in 0..<oh { for ox in 0..<ow {
                let sy = oh > 1 ? Double(oy * (h - 1)) / Double(oh - 1) : 0, sx = ow > 1 ? Double(ox * (w - 1)) / Double(ow - 1) : 0
                let y0 = Int(sy), x0 = Int(sx), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1), fy = sy - Double(y0), fx = sx - Double(x0)
                func v(_ y: Int, _ xx: Int) -> Double { Double(x[(c * h + y) * w + xx]) }
                let want = (1 - fy) * ((1 - fx) * v(y0, x0) + fx * v(y0, x1)) + fy * ((1 - fx) * v(y1, x0) + fx * v(y1, x1))
                XCTAssertEqual(Double(g.output[(c * oh + oy) * ow + ox]), want, accuracy: 1e-5, "\(h)x\(w) x\(f) at (\(c),\(oy),\(ox))")
            } } }
        }
        let gp = try LayerGraph(layers: [GlobalAvgPool()], inputShape: [3, 2, 5], maxBatch: 2, pool: pool)
        let x = randomArray(60, seed: 5)
        gp.input.update(from: x, count: 60)
        gp.forward(batch: 2, training: false)
        for p in 0..<6 { XCTAssertEqual(Double(gp.output[p]), Double(x[(p * 10)..<(p * 10 + 10)].reduce(0, +)) / 10, accuracy: 1e-6) }
    }

    func testSingleInputGraphOpsGradients() throws {
        // the ops alone, behind a weight layer so that the input gradient flows through them
        let pool = WorkPool(threads: 2), B = 2
        for op in ["upsample", "globalavgpool"] {
            func make(_ w: [Float]) throws -> LayerGraph {
                let c = Conv2d(name: "c", cin: 1, cout: 2, kh: 2, kw: 2)
                c.weight.copy(from: w)
                let l: Layer = op == "upsample" ? UpsampleBilinear(factor: 3) : GlobalAvgPool()
                return try LayerGraph(layers: [c, l], inputShape: [1, 4, 3], maxBatch: B, pool: pool)
            }
            let w = randomArray(8, seed: 41), x = randomArray(B * 12, seed: 42)
            let g = try make(w)
            let R = randomArray(B * g.outputSize, seed: 43)
            _ = loss(g, x: x, R: R, batch: B)
            g.outputGrad.update(from: R, count: R.count)
            g.backward(batch: B)
            let dW = (g.layers[0] as! Conv2d).weightGrad.array
            for i in 0..<8 {
                var wp = w, wm = w
                wp[i] += 1e-2; wm[i] -= 1e-2
                let fd = (loss(try make(wp), x: x, R: R, batch: B) - loss(try make(wm), x: x, R: R, batch: B)) / 2e-2
                XCTAssertEqual(fd, Double(dW[i]), accuracy: 2e-3 * max(1, dW.map { Double(abs($0)) }.max()!), "\(op) weight \(i)")
            }
        }
    }

    func testGraphRefusesBadInputs() {
        let pool = WorkPool(threads: 1)
        XCTAssertThrowsError(try LayerGraph(layers: [ReLU(), ReLU()], inputs: [[0], [2]], inputShape: [3], maxBatch: 1, pool: pool)) {
            XCTAssertTrue("\($0)".contains("graph node 1"), "\($0)")
        }
        XCTAssertNoThrow(try LayerGraph(layers: [ReLU(), Add()], inputs: [[0], [1, 0]], inputShape: [3], maxBatch: 1, pool: pool))
        XCTAssertThrowsError(try LayerGraph(layers: [UpsampleBilinear(factor: 2), Add()], inputs: [[0], [1, 0]], inputShape: [1, 2, 2], maxBatch: 1, pool: pool)) {
            XCTAssertTrue("\($0)".contains("one shape"), "\($0)")
        }
        XCTAssertThrowsError(try LayerGraph(layers: [ReLU()], inputs: [[0, 0]], inputShape: [3], maxBatch: 1, pool: pool)) {
            XCTAssertTrue("\($0)".contains("reads one tensor"), "\($0)")
        }
    }

    func testPixelCrossEntropyGradientAndMask() {
        let B = 2, K = 3, P = 5
        let z = randomArray(B * K * P, seed: 51, lo: -2, hi: 2)
        let labels: [UInt8] = [0, 1, 2, 1, 0, 2, 2, 1, 0, 1]
        let weights: [UInt8] = [1, 1, 0, 1, 1, 1, 0, 1, 1, 1]
        for w in [nil, weights] {
            var g = [Float](repeating: 9, count: z.count), zz = z
            let r = zz.withUnsafeMutableBufferPointer { zp in g.withUnsafeMutableBufferPointer { gp in
                pixelSoftmaxCrossEntropy(logits: zp.baseAddress!, labels: labels, weights: w, batch: B, classes: K, pixels: P, grad: gp.baseAddress!) } }
            XCTAssertEqual(r.counted, w == nil ? 10 : 8)
            func L(_ v: [Float]) -> Double {
                var v = v
                return v.withUnsafeMutableBufferPointer { pixelSoftmaxCrossEntropy(logits: $0.baseAddress!, labels: labels, weights: w, batch: B, classes: K, pixels: P, grad: nil).loss }
            }
            for i in 0..<z.count {
                var zp = z, zm = z
                zp[i] += 1e-2; zm[i] -= 1e-2
                XCTAssertEqual((L(zp) - L(zm)) / 2e-2 / Double(r.counted), Double(g[i]), accuracy: 2e-3, "logit \(i)")
            }
            if w != nil {
                // uncounted pixels get no gradient
                for s in 0..<B { for p in 0..<P where weights[s * P + p] == 0 { for k in 0..<K { XCTAssertEqual(g[(s * K + k) * P + p], 0) } } }
            }
        }
    }

    func testAdamStepIsTheDocumentedFormula() {
        let m = MaskedWeight(name: "w", count: 4, fanIn: 2, sparsity: 0.5)
        m.scores.copy(from: [0.5, -0.25, 1, 0])
        var s = [0.5, -0.25, 1.0, 0.0], mm = [Double](repeating: 0, count: 4), vv = mm
        let grads: [[Float]] = [[0.1, -0.2, 0.3, 0], [0.05, 0.4, -0.1, 1e-3], [-0.3, 0.1, 0.2, -0.2]]
        for (t, gr) in grads.enumerated() {
            m.scoreGrad.copy(from: gr)
            m.adamStep(lr: 0.01, weightDecay: 1e-3, step: t + 1)
            for i in 0..<4 {
                let d = Double(gr[i]) + 1e-3 * s[i]
                mm[i] = 0.9 * mm[i] + 0.1 * d; vv[i] = 0.999 * vv[i] + 0.001 * d * d
                s[i] -= 0.01 * (mm[i] / (1 - pow(0.9, Double(t + 1)))) / ((vv[i] / (1 - pow(0.999, Double(t + 1)))).squareRoot() + 1e-8)
                XCTAssertEqual(Double(m.scores[i]), s[i], accuracy: 1e-6, "step \(t + 1) score \(i)")
            }
        }
    }

    func testResidualTaskGraphTrains() throws {
        let specs = Architectures.fashionResNet(bits: 4, width: 4)
        let pool = WorkPool(threads: 2)
        let net = try SupermaskNetwork(specs: specs, inputShape: [1, 28, 28], sparsity: 0.5, maxBatch: 4, pool: pool)
        XCTAssertEqual(net.graph.outputSize, 10)
        XCTAssertEqual(net.weights.map(\.name), ["stem", "b1.conv1", "b1.conv2", "b2.conv1", "b2.conv2", "b2.proj", "fc"])
        XCTAssertEqual(net.graph.shapes[net.graph.shapes.count - 2], [8], "global average pooling of 8 channels")
        XCTAssertEqual(net.currentSpecs.map(\.inputs), specs.map(\.inputs), "the branches survive into the saved graph")
        // a few steps of software TO on synthetic data run and change the masks
        var cfg = TrainConfig.defaults(task: "fashion-mnist-resnet")
        cfg.epochs = 1; cfg.batch = 4; cfg.evalBatch = 4
        var rng = Xoshiro256StarStar(seed: 3)
        let n = 16
        let train = try DataSplit(count: n, sampleShape: [1, 28, 28], samples: (0..<(n * 784)).map { _ in Float(rng.uniform(0, 1)) },
                                  labels: (0..<n).map { UInt8($0 % 10) })
        let t = try Trainer(config: cfg, train: train, test: train, threads: 2, specs: specs)
        let before = t.net.masked.map { $0.mask.array }
        let rec = try t.trainEpoch()
        XCTAssertTrue(rec.trainLoss.isFinite)
        XCTAssertNotEqual(t.net.masked.map { $0.mask.array }, before, "training flipped masks")
    }

    /// `--flip` mirrors training images only: on left-right symmetric images training is
    /// bit-identical to training without it, on others it is not; the draws are the documented
    /// stream, about half of them flips.
    func testHorizontalFlipsMirrorTheTrainingImages() throws {
        let f = Trainer.flips(seed: 3, epoch: 2, count: 10_000)
        XCTAssertEqual(f, Trainer.flips(seed: 3, epoch: 2, count: 10_000))
        XCTAssertNotEqual(f, Trainer.flips(seed: 3, epoch: 3, count: 10_000))
        var r = Xoshiro256StarStar(seed: 3, stream: 0x464C_4950_0000 + 2)
        XCTAssertEqual(f, (0..<10_000).map { _ in r.next() >> 63 == 1 })
        XCTAssertEqual(Double(f.filter { $0 }.count), 5000, accuracy: 200)
        func run(symmetric: Bool, flip: Bool) throws -> [[UInt8]] {
            var rng = Xoshiro256StarStar(seed: 8)
            let n = 24
            var px = [Float](repeating: 0, count: n * 784)
            for i in 0..<n { for y in 0..<28 { for x in 0..<28 {
                let v = Float(rng.uniform(0, 1))
                px[i * 784 + y * 28 + x] = v
                if symmetric, x >= 14 { px[i * 784 + y * 28 + x] = px[i * 784 + y * 28 + 27 - x] }
            } } }
            let split = try DataSplit(count: n, sampleShape: [1, 28, 28], samples: px, labels: (0..<n).map { UInt8($0 % 10) })
            var cfg = TrainConfig.defaults(task: "fashion-mnist"); cfg.epochs = 2; cfg.batch = 6; cfg.evalBatch = 6
            cfg.horizontalFlip = flip ? true : nil
            let t = try Trainer(config: cfg, train: split, test: split, threads: 1, specs: tinySpecs())
            for _ in 0..<2 { try t.trainEpoch() }
            return t.net.masked.map { $0.mask.array }
        }
        XCTAssertEqual(try run(symmetric: true, flip: true), try run(symmetric: true, flip: false), "a mirrored symmetric image is the image")
        XCTAssertNotEqual(try run(symmetric: false, flip: true), try run(symmetric: false, flip: false), "flips change what is trained")
        var c = TrainConfig.defaults(task: "spoken-digit"); c.horizontalFlip = true
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("image tasks only"), "\($0)") }
    }

    func testTypedOpSpecsNameTheNodeAndTheField() throws {
        var conv = LayerSpec(op: "conv2d"); conv.inChannels = 1; conv.outChannels = 4; conv.kernelH = 3; conv.kernelW = 3; conv.stride = 2
        XCTAssertEqual(try conv.typed(index: 3), .conv2d(name: "conv3", inChannels: 1, outChannels: 4, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padding: 0))
        conv.kernelW = nil
        XCTAssertThrowsError(try conv.typed(index: 3)) { XCTAssertEqual("\($0)", "graph node 3 (conv2d): missing or invalid kernelW") }
        var fq = LayerSpec(op: "fakequant"); fq.bits = 4; fq.fixedRange = true
        XCTAssertEqual(try fq.typed(index: 0), .fakeQuant(bits: 4, fixedRange: 1, range: nil))
        XCTAssertThrowsError(try LayerSpec(op: "softmax").typed(index: 7)) { XCTAssertEqual("\($0)", "graph node 7: unknown op 'softmax'") }
        // every node of every task graph has a typed form
        for task in Architectures.tasks {
            for (i, sp) in try Architectures.graph(task: task, bits: 4).enumerated() { XCTAssertNoThrow(try sp.typed(index: i), "\(task) node \(i)") }
        }
    }

    func testResidualTaskOptions() throws {
        let pool = WorkPool(threads: 1)
        // without the input max-pool the stem reads the 28x28 image and the last block is 14x14
        let full = try Architectures.graph(task: "fashion-mnist-resnet", bits: 4, width: 4, inputPool: false)
        XCTAssertFalse(full.contains { $0.op == "maxpool2d" })
        let net = try SupermaskNetwork(specs: full, inputShape: [1, 28, 28], sparsity: 0.5, maxBatch: 1, pool: pool)
        XCTAssertEqual(net.graph.outputSize, 10)
        XCTAssertTrue(net.graph.shapes.contains([8, 14, 14]), "the projection block at 14x14: \(net.graph.shapes)")
        let pooled = try Architectures.graph(task: "fashion-mnist-resnet", bits: 4, width: 4)
        XCTAssertEqual(pooled.first?.op, "maxpool2d")
        XCTAssertFalse(pooled.contains { $0.name == "hidden" })
        // a hidden fc layer before the logits, which stay "fc" (the hardware exemption names it)
        let headed = try Architectures.graph(task: "fashion-mnist-resnet", bits: 4, width: 4, hidden: 12)
        let hiddenNet = try SupermaskNetwork(specs: headed, inputShape: [1, 28, 28], sparsity: 0.5, maxBatch: 1, pool: pool)
        XCTAssertEqual(hiddenNet.graph.outputSize, 10)
        XCTAssertEqual(headed.first { $0.name == "hidden" }?.outFeatures, 12)
        XCTAssertEqual(headed.last?.name, "fc")
        XCTAssertEqual(headed.last?.inFeatures, 12)
        var h = TrainConfig.defaults(task: "fashion-mnist-resnet", mode: "hardware"); h.hidden = 12
        XCTAssertNoThrow(try h.checkHysteresisExempt(maskedLayers: hiddenNet.masked.map(\.name)))
        // a third stage: b3 doubles the channels again at stride 2 (7x7 -> 4x4), and the head reads 4w
        var three = TrainConfig.defaults(task: "fashion-mnist-resnet"); three.width = 4; three.hidden = 12; three.stages = 3
        XCTAssertNoThrow(try three.validate())
        let staged = try Architectures.graph(of: three)
        let stagedNet = try SupermaskNetwork(specs: staged, inputShape: [1, 28, 28], sparsity: 0.5, maxBatch: 1, pool: pool)
        XCTAssertEqual(stagedNet.weights.map(\.name), ["stem", "b1.conv1", "b1.conv2", "b2.conv1", "b2.conv2", "b2.proj",
                                                       "b3.conv1", "b3.conv2", "b3.proj", "hidden", "fc"])
        XCTAssertTrue(stagedNet.graph.shapes.contains([16, 4, 4]), "b3 at 4x4 with 4w channels: \(stagedNet.graph.shapes)")
        XCTAssertEqual(staged.first { $0.name == "b3.proj" }.flatMap { $0.inputs }.map { staged[$0[0] - 1].op }, "fakequant",
                       "the projection shortcut reads the previous block's codes")
        XCTAssertEqual(staged.first { $0.name == "hidden" }?.inFeatures, 16)
        XCTAssertEqual(try Architectures.graph(task: "fashion-mnist-resnet", bits: 4, width: 4, hidden: 12, stages: 2), headed)
        XCTAssertNoThrow(try h.checkHysteresisExempt(maskedLayers: stagedNet.masked.map(\.name)))
        // the task's defaults: width 64, a hidden head of 256, three stages, flips
        let dflt = TrainConfig.defaults(task: "fashion-mnist-resnet")
        XCTAssertEqual(dflt.horizontalFlip, true)
        let d = try Architectures.graph(of: dflt)
        XCTAssertEqual(d.first { $0.name == "stem" }?.outChannels, 64)
        XCTAssertEqual(d.first { $0.name == "b3.conv2" }?.outChannels, 256)
        XCTAssertEqual(d.first { $0.name == "hidden" }.map { [$0.inFeatures, $0.outFeatures] }, [256, 256])
        XCTAssertEqual(Architectures.layerShapes(d).reduce(0) { $0 + $1.fanIn * $1.fanOut }, 1_289_280)
        XCTAssertNil(TrainConfig.defaults(task: "fashion-mnist").horizontalFlip)
        // the options belong to the residual task only
        var c = TrainConfig.defaults(task: "fashion-mnist"); c.width = 48
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("fashion-mnist-resnet and drive only"), "\($0)") }
        c = TrainConfig.defaults(task: "spoken-digit"); c.inputPool = false
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("fashion-mnist-resnet only"), "\($0)") }
        c = TrainConfig.defaults(task: "fashion-mnist"); c.hidden = 64
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("fashion-mnist-resnet only"), "\($0)") }
        c = TrainConfig.defaults(task: "fashion-mnist-resnet"); c.width = 300
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("4...256"), "\($0)") }
        c = TrainConfig.defaults(task: "fashion-mnist-resnet"); c.hidden = 2000
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("0...1024"), "\($0)") }
        c = TrainConfig.defaults(task: "fashion-mnist-resnet"); c.stages = 4
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("2 or 3"), "\($0)") }
        c = TrainConfig.defaults(task: "spoken-digit"); c.stages = 3
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("fashion-mnist-resnet only"), "\($0)") }
    }
}

#if canImport(Glibc)
import Glibc
#endif
