// Freezing the spoken-digit CRNN (docs/DATAPATH.md section 15): a narrow copy of the paper's graph
// (Architectures.spokenDigitCRNN) with seeded weights, BN statistics and static ranges from a
// Double oracle of the source model written from docs/TRAINING.md.
import Foundation
import XCTest
import DataIO
import Device
import Kernels
import ModelFile
import Randomness
import Training
@testable import Quant

enum CRNNOracle {
    struct Act { var v: [Double]; var c: Int; var h: Int; var w: Int }

    static func fq(_ x: Double, _ q: (bits: Int, range: Float)) -> Double {
        let r = Double(q.range), L = Double((1 << q.bits) - 1)
        return r > 0 ? (min(max(x, 0), r) / r * L).rounded(.toNearestOrAwayFromZero) * r / L : 0
    }

    /// The input of graph node `upTo` (`graph.count`: logits), from features in [0, 1]. The
    /// rnn's hidden codes of steps t < T-1 are appended to `hidden` when given.
    static func forward(_ src: FreezeSource, features: [Float], upTo: Int? = nil, hidden: UnsafeMutablePointer<[Int]>? = nil) -> Act {
        var a = Act(v: features.map { Double($0) }, c: src.inputShape[0], h: src.inputShape[1], w: src.inputShape[2])
        for gi in 0..<(upTo ?? src.graph.count) {
            let s = src.graph[gi]
            switch s.op {
            case "maxpool2d":
                let k = s.kernel ?? 2, oh = a.h / k, ow = a.w / k
                var o = [Double](repeating: 0, count: a.c * oh * ow)
                for c in 0..<a.c { for y in 0..<oh { for x in 0..<ow {
                    var m = -Double.infinity
                    for dy in 0..<k { for dx in 0..<k { m = max(m, a.v[(c * a.h + y * k + dy) * a.w + x * k + dx]) } }
                    o[(c * oh + y) * ow + x] = m
                } } }
                a = Act(v: o, c: a.c, h: oh, w: ow)
            case "fakequant": a.v = a.v.map { fq($0, src.quantizers[gi]!) }
            case "batchnorm":
                let bn = src.batchNorms[gi]!, per = a.h * a.w
                for c in 0..<a.c {
                    let istd = 1 / (Double(bn.variance[c]) + bn.eps).squareRoot()
                    for k in 0..<per { a.v[c * per + k] = (a.v[c * per + k] - Double(bn.mean[c])) * istd }
                }
            case "relu": a.v = a.v.map { max($0, 0) }
            case "flatten": a = Act(v: a.v, c: a.v.count, h: 1, w: 1)
            case "conv2d":
                let l = src.weightLayers.first { $0.graphIndex == gi }!
                let kh = s.kernelH!, kw = s.kernelW!, sh = s.strideH ?? s.stride ?? 1, sw = s.strideW ?? s.stride ?? 1
                let oh = (a.h - kh) / sh + 1, ow = (a.w - kw) / sw + 1
                var o = [Double](repeating: 0, count: l.fanOut * oh * ow)
                for oc in 0..<l.fanOut { for y in 0..<oh { for x in 0..<ow {
                    var acc = 0.0
                    for r in 0..<l.fanIn {
                        let c = r / (kh * kw), dy = (r / kw) % kh, dx = r % kw
                        acc += a.v[(c * a.h + y * sh + dy) * a.w + x * sw + dx] * Double(l.effective(oc * l.fanIn + r))
                    }
                    o[(oc * oh + y) * ow + x] = acc
                } } }
                a = Act(v: o, c: l.fanOut, h: oh, w: ow)
            case "linear":
                let l = src.weightLayers.first { $0.graphIndex == gi }!
                a = Act(v: (0..<l.fanOut).map { o in (0..<l.fanIn).reduce(0.0) { $0 + a.v[$1] * Double(l.effective(o * l.fanIn + $1)) } },
                        c: l.fanOut, h: 1, w: 1)
            case "rnn":
                let ws = src.weightLayers.filter { $0.graphIndex == gi }
                let wi = ws[0], wh = ws[1], hd = wh.fanOut, T = a.w, q = src.quantizers[gi]!
                var prev = [Double](repeating: 0, count: hd), sum = [Double](repeating: 0, count: hd)
                for t in 0..<T {
                    var h = [Double](repeating: 0, count: hd)
                    for o in 0..<hd {
                        var v = 0.0
                        for c in 0..<wi.fanIn { v += Double(wi.effective(o * wi.fanIn + c)) * a.v[c * T + t] }
                        for j in 0..<hd { v += Double(wh.effective(o * hd + j)) * prev[j] }
                        h[o] = max(v, 0)
                    }
                    if t < T - 1 {
                        h = h.map { fq($0, q) }
                        let L = Double((1 << q.bits) - 1)
                        hidden?.pointee += h.map { Int(($0 / Double(q.range) * L).rounded()) }
                    }
                    for o in 0..<hd { sum[o] += h[o] }
                    prev = h
                }
                a = Act(v: sum.map { $0 / Double(T) }, c: hd, h: 1, w: 1)
            default: fatalError("op \(s.op)")
            }
        }
        return a
    }
}

/// Smooth class-dependent features in [0, 1] (a ridge whose slope depends on the class).
func syntheticFeatures(count: Int, seed: UInt64) -> (features: [Float], labels: [UInt8]) {
    var r = Xoshiro256StarStar(seed: seed)
    var f = [Float](repeating: 0, count: count * 460), y = [UInt8](repeating: 0, count: count)
    for s in 0..<count {
        let c = r.int(below: 10)
        y[s] = UInt8(c)
        for t in 0..<23 { for b in 0..<20 {
            let d = Double(b) - 2 - Double(c) * 1.5 - Double(t) * 0.1 * Double(c % 3)
            let v = exp(-d * d / 6) + r.uniform(0, 0.25)
            f[s * 460 + t * 20 + b] = Float(min(1, max(0, v)))
        } }
    }
    return (f, y)
}

func crnnSource(seed: UInt64, bits: Int = 3, hidden: Int = 6) -> FreezeSource {
    var r = Xoshiro256StarStar(seed: seed, stream: 5)
    let g = Architectures.spokenDigitCRNN(bits: bits, conv1: 4, conv2: 3, hidden: hidden, fc: 8)
    var layers: [SourceWeightLayer] = []
    func add(_ name: String, _ gi: Int, _ fanOut: Int, _ fanIn: Int) {
        let std = Float((2.0 / (Double(fanIn) * 0.5)).squareRoot())
        var on = [Float](), off = [Float](), mask = [UInt8]()
        for _ in 0..<(fanIn * fanOut) {
            on.append((r.int(below: 2) == 0 ? -1 : 1) * std); off.append(0); mask.append(r.int(below: 2) == 0 ? 0 : 1)
        }
        layers.append(SourceWeightLayer(name: name, graphIndex: gi, fanOut: fanOut, fanIn: fanIn, wOn: on, wOff: off, mask: mask))
    }
    for (gi, s) in g.enumerated() {
        switch s.op {
        case "conv2d": add(s.name!, gi, s.outChannels!, s.inChannels! * s.kernelH! * s.kernelW!)
        case "linear": add(s.name!, gi, s.outFeatures!, s.inFeatures!)
        case "rnn": add(s.name! + ".ih", gi, s.hidden!, s.inFeatures!); add(s.name! + ".hh", gi, s.hidden!, s.hidden!)
        default: break
        }
    }
    var src = FreezeSource(task: "spoken-digit", mode: "software", runTarget: nil, seed: seed, epochs: 1, inputShape: [1, 23, 20], classes: 10,
                           inputScale: 1, inputOffset: 0, graph: g, weightLayers: layers, batchNorms: [:], quantizers: [0: (bits, 1)])
    src.featureInput = true
    let cal = syntheticFeatures(count: 48, seed: seed &+ 1)
    func acts(_ gi: Int) -> [CRNNOracle.Act] { (0..<48).map { CRNNOracle.forward(src, features: Array(cal.features[($0 * 460)..<(($0 + 1) * 460)]), upTo: gi) } }
    for gi in g.indices {
        switch g[gi].op {
        case "batchnorm":
            let a = acts(gi), c = a[0].c, per = a[0].v.count / c
            var mean = [Float](), variance = [Float]()
            for ch in 0..<c {
                var s = 0.0, s2 = 0.0
                for x in a { for k in 0..<per { let v = x.v[ch * per + k]; s += v; s2 += v * v } }
                let n = Double(a.count * per), m = s / n
                mean.append(Float(m)); variance.append(Float(max(s2 / n - m * m, 1e-6)))
            }
            src.batchNorms[gi] = (mean, variance, 1e-5)
        case "fakequant" where gi != 0:
            var mx = 0.0
            for x in acts(gi) { for v in x.v { mx = max(mx, v) } }
            src.quantizers[gi] = (bits, Float(0.8 * mx))
        case "rnn":
            // the hidden range: 0.8 x the largest pre-activation with an unquantized recurrence is
            // close enough; use the rnn output's max x T as a scale proxy
            var mx = 0.0
            src.quantizers[gi] = (bits, 1e9)   // placeholder for the pass below
            for x in acts(gi + 1) { for v in x.v { mx = max(mx, v) } }
            src.quantizers[gi] = (bits, Float(max(mx, 1e-3)))
        default: break
        }
    }
    return src
}

func featureCodes(_ f: [Float], bits: Int = 3) -> [UInt8] { f.map { FeatureEncoding.code($0, bits: bits)! } }

final class CRNNFreezeTests: XCTestCase {
    func freezeFixture(seed: UInt64 = 3, target: TargetProfile = smallTarget()) throws -> (FreezeSource, FrozenModel, PixelSet, [Float]) {
        let src = crnnSource(seed: seed)
        let cal = syntheticFeatures(count: 64, seed: seed &+ 7)
        let set = PixelSet(count: 64, shape: TensorShape(c: 1, h: 23, w: 20), pixels: featureCodes(cal.features), labels: cal.labels)
        let m = try Freezer.freeze(src, target: target, calibration: set)
        return (src, m, set, cal.features)
    }

    /// The frozen CRNN: identity input quantizer, strided 3x2 convs, one rnn node with two
    /// crossbar layers (six layers in all, in Program.crossbarLayers order), validates, and the
    /// fast engine equals the reference on every tensor and every rnn step; written and read back.
    func testFrozenCRNNStructureAndBitExactness() throws {
        let (src, m, set, _) = try freezeFixture()
        let p = m.program
        XCTAssertNoThrow(try p.validate())
        guard case .inputQuant(let iq) = p.nodes[0].op else { return XCTFail("node 0") }
        XCTAssertEqual(iq, AffineQuantParams(channels: 1, multiplier: 1, shift: 0, offset: 0, outBits: 3, rounding: .halfUp))
        XCTAssertEqual(m.layers.map(\.name), ["conv1", "conv2", "rnn.ih", "rnn.hh", "fc1", "fc2"])
        XCTAssertEqual(p.crossbarLayers.map(\.node), m.layers.map(\.node))
        guard let k = p.nodes.firstIndex(where: { $0.op.kind == .rnn }), case .rnn(let rp) = p.nodes[k].op else { return XCTFail("no rnn") }
        XCTAssertEqual(p.tensors[p.nodes[k].inputs[0]].shape, TensorShape(c: 3, h: 1, w: 4))
        XCTAssertEqual(rp.hiddenBits, 3); XCTAssertEqual(rp.output.outBits, 3)
        XCTAssertGreaterThan(rp.stateShift, 8, "a fine combiner resolution")
        if case .crossbar(let c1) = p.nodes[1].op { XCTAssertEqual([c1.kernelH, c1.kernelW, c1.strideH, c1.strideW], [3, 2, 2, 1]) } else { XCTFail("conv1") }
        let engine = try Engine(program: p)
        for i in 0..<8 { XCTAssertEqual(engine.trace(pixels: image(set, i)), Reference.run(p, pixels: image(set, i)), "sample \(i)") }
        // model file round trip, feature-input metadata
        let b = Freezer.bundle(m, source: src, target: smallTarget(), evaluation: nil, options: FreezeOptions(), toolVersion: "t")
        let back = try ModelBundle.decode(try b.encode())
        XCTAssertEqual(back.program, p)
        XCTAssertEqual(back.metadata.masks.count, 6)
        XCTAssertEqual(inputFeatureBits(back), 3)
        XCTAssertEqual(back.metadata.programming.maskFlips.count, 6)
        // software signed constants: every layer, both rnn matrices included, is stored as a
        // generator record (sign bits here: the seeded test weights are not the training stream)
        XCTAssertEqual(b.metadata.weightGenerators.count, 6)
        XCTAssertTrue(b.metadata.weightGenerators.allSatisfy { $0 != nil }, "\(b.metadata.weightGenerators)")
        XCTAssertEqual(back.metadata.weightGenerators, b.metadata.weightGenerators)
    }

    /// Integer vs float pipeline of the frozen graph (agreement) and the float pipeline vs the
    /// Double oracle of the source model (the freeze's scales are right): on 200 samples.
    func testIntegerFloatAndSourceModelAgree() throws {
        let (src, m, _, _) = try freezeFixture()
        let test = syntheticFeatures(count: 200, seed: 99)
        let codes = featureCodes(test.features)
        let ev = try Evaluator(program: m.program, threads: 1, withFloat: true)
        ev.process(PixelSet(count: 200, shape: TensorShape(c: 1, h: 23, w: 20), pixels: codes, labels: test.labels))
        XCTAssertGreaterThanOrEqual(ev.agreement, 0.95, "integer vs float pipeline")
        var same = 0
        for i in 0..<200 {
            let f = Array(test.features[(i * 460)..<((i + 1) * 460)])
            let o = CRNNOracle.forward(src, features: f)
            let fl = FloatPipeline.logits(m.program, pixels: Array(codes[(i * 460)..<((i + 1) * 460)]))
            if SourceOracle.argmax(o.v) == FloatPipeline.argmax(fl) { same += 1 }
        }
        XCTAssertGreaterThanOrEqual(same, 180, "float pipeline vs the source model: \(same)/200")
    }

    /// The integer rnn's hidden codes of steps t < T-1 equal the source model's (Double oracle)
    /// codes except near rounding boundaries, on samples whose rnn input codes agree exactly.
    func testHiddenCodesMatchTheSourceModel() throws {
        let (src, m, _, _) = try freezeFixture()
        let p = m.program
        let k = p.nodes.firstIndex { $0.op.kind == .rnn }!
        guard case .rnn(let rp) = p.nodes[k].op else { return XCTFail() }
        let rnnGraph = src.graph.firstIndex { $0.op == "rnn" }!
        let test = syntheticFeatures(count: 60, seed: 5)
        var equal = 0, total = 0, inputsEqual = 0
        for i in 0..<60 {
            let f = Array(test.features[(i * 460)..<((i + 1) * 460)])
            let tr = Reference.run(p, pixels: featureCodes(f))
            // the rnn's input codes vs the source model's quantized input (codes x step)
            let q = src.quantizers[rnnGraph - 1]!, L = Double((1 << q.bits) - 1)
            let srcIn = CRNNOracle.forward(src, features: f, upTo: rnnGraph).v.map { Int32(($0 / Double(q.range) * L).rounded()) }
            guard srcIn == tr.tensors[p.nodes[k].inputs[0]] else { continue }
            inputsEqual += 1
            var hidden: [Int] = []
            _ = withUnsafeMutablePointer(to: &hidden) { CRNNOracle.forward(src, features: f, upTo: rnnGraph + 1, hidden: $0) }
            for t in 0..<3 {
                let got = tr.tileADC[k][t * rp.subpointsPerStep + rp.subpointsPerStep - 1]
                for o in 0..<rp.hiddenSize { total += 1; if Int(got[o]) == hidden[t * rp.hiddenSize + o] { equal += 1 } }
            }
        }
        XCTAssertGreaterThan(inputsEqual, 20)
        XCTAssertGreaterThanOrEqual(Double(equal) / Double(max(total, 1)), 0.97, "hidden codes \(equal)/\(total)")
    }

    func testRefusalsAreNamed() throws {
        let cal = syntheticFeatures(count: 8, seed: 1)
        let set = PixelSet(count: 8, shape: TensorShape(c: 1, h: 23, w: 20), pixels: featureCodes(cal.features))
        func expect(_ src: FreezeSource, _ target: TargetProfile = smallTarget(), _ words: String, line: UInt = #line) {
            XCTAssertThrowsError(try Freezer.freeze(src, target: target, calibration: set), line: line) { e in
                XCTAssertTrue("\(e)".contains(words), "\(e)", line: line)
            }
        }
        var s = crnnSource(seed: 3)
        let rnn = s.graph.firstIndex { $0.op == "rnn" }!
        s.quantizers[rnn] = (3, 0)
        expect(s, smallTarget(), "hidden-state range")
        s = crnnSource(seed: 3); s.quantizers[rnn] = nil
        expect(s, smallTarget(), "no hidden-state range")
        s = crnnSource(seed: 3); s.weightLayers.removeAll { $0.name == "rnn.hh" }
        expect(s, smallTarget(), "two weight matrices")
        s = crnnSource(seed: 3); s.quantizers[0] = (3, 0.5)
        expect(s, smallTarget(), "feature input")
        // 8-bit codes x 8-bit weights over a 70,000-row... not reachable here; a 6-bit ADC on a
        // 2-bit-hidden rnn is fine; overflow: 16-bit ADCs on 512 x 2^15 tiles cannot be built, so
        // check the rnn bound through validate on the frozen program instead
        var (_, m, _, _) = try freezeFixture()
        let k = m.program.nodes.firstIndex { $0.op.kind == .rnn }!
        guard case .rnn(var rp) = m.program.nodes[k].op else { return XCTFail() }
        rp.inputMultiplier = Int32.max
        m.program.nodes[k].op = .rnn(rp)
        XCTAssertThrowsError(try Freezer.check(m.program, m.layers)) { e in
            XCTAssertTrue("\(e)".contains("rnn.ih") && "\(e)".contains("overflow"), "\(e)")
        }
    }

    func testFreezeIsDeterministicWhateverTheThreadCount() throws {
        let src = crnnSource(seed: 4)
        let cal = syntheticFeatures(count: 40, seed: 8)
        let set = PixelSet(count: 40, shape: TensorShape(c: 1, h: 23, w: 20), pixels: featureCodes(cal.features))
        var o1 = FreezeOptions(); o1.threads = 1
        var o2 = FreezeOptions(); o2.threads = 2
        let a = try Freezer.freeze(src, target: smallTarget(), calibration: set, options: o1)
        let b = try Freezer.freeze(src, target: smallTarget(), calibration: set, options: o2)
        XCTAssertEqual(a.program, b.program)
    }

    func testFloatEvaluatorEqualsFloatPipelineOnTheCRNN() throws {
        let (_, m, set, _) = try freezeFixture()
        let fe = FloatEvaluator(m.program)
        var arena = [Float](repeating: 0, count: fe.arenaCount)
        for i in 0..<10 {
            let px = image(set, i)
            let a = px.withUnsafeBufferPointer { p in arena.withUnsafeMutableBufferPointer { Array(fe.logits(pixels: p.baseAddress!, arena: $0.baseAddress!)) } }
            XCTAssertEqual(a, FloatPipeline.logits(m.program, pixels: px), "sample \(i)")
        }
    }
}

/// `edgecli run` / `golden` on a feature model (spoken digit): IDX float32 features are encoded
/// to the model's DAC codes (DATAPATH.md 15.1); bad features are named errors with no output.
final class FeatureRunTests: XCTestCase {
    static let model: (path: String, frozen: FrozenModel, features: [Float], labels: [UInt8]) = {
        let src = crnnSource(seed: 3)
        let cal = syntheticFeatures(count: 32, seed: 10)
        let m = try! Freezer.freeze(src, target: smallTarget(),
                                    calibration: PixelSet(count: 32, shape: TensorShape(c: 1, h: 23, w: 20), pixels: featureCodes(cal.features)))
        let path = tempPath("crnn-model.rram")
        try! Freezer.bundle(m, source: src, target: smallTarget(), evaluation: nil, options: FreezeOptions(), toolVersion: "t").write(to: path)
        let test = syntheticFeatures(count: 40, seed: 11)
        return (path, m, test.features, test.labels)
    }()

    func writeIDX(_ path: String, shape: [Int], _ e: IDXArray.Element) throws {
        try IDX.write(try IDXArray(shape: shape, element: e), to: path, gzip: true)
    }

    func testRunOnFloatFeaturesEqualsTheEngineOnTheirCodes() throws {
        guard FileManager.default.isExecutableFile(atPath: edgecli) else { throw XCTSkip("no binary at \(edgecli)") }
        let m = FeatureRunTests.model
        let f = tempPath("features.idx.gz"), lab = tempPath("features-labels.idx.gz"), out = tempPath("features-logits.npy")
        try writeIDX(f, shape: [40, 23, 20], .float32(m.features))
        try writeIDX(lab, shape: [40], .uint8(m.labels))
        let r = try runTool(["run", m.path, "--input", f, "--labels", lab, "--out", out, "--float", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let want = try Engine(program: m.frozen.program).inferBatch(featureCodes(m.features), count: 40).logits
        XCTAssertEqual(try NPY.read(path: out).int32s(), want)
        // the codes themselves as uint8 IDX give the same logits
        let c = tempPath("feature-codes.idx.gz"), out2 = tempPath("features-logits2.npy")
        try writeIDX(c, shape: [40, 23, 20], .uint8(featureCodes(m.features)))
        XCTAssertEqual(try runTool(["run", m.path, "--input", c, "--out", out2]).status, 0)
        XCTAssertEqual(try NPY.read(path: out2).int32s(), want)
        // golden on the float features: the stored input is the codes
        let g = tempPath("features-golden")
        let rg = try runTool(["golden", m.path, "--input", f, "--count", "3", "--out", g, "--force"])
        XCTAssertEqual(rg.status, 0, rg.err)
        let rv = try runTool(["verify", m.path, "--golden", g])
        XCTAssertEqual(rv.status, 0, rv.out + rv.err)
    }

    func testBadFeaturesAreNamedErrors() throws {
        guard FileManager.default.isExecutableFile(atPath: edgecli) else { throw XCTSkip("no binary at \(edgecli)") }
        let m = FeatureRunTests.model
        let cases: [(Float, String)] = [(.nan, "not a number"), (1.5, "not a number in [0, 1]"), (-0.25, "not a number in [0, 1]")]
        for (k, bad) in cases.enumerated() {
            var x = m.features
            x[460 * 2 + 21] = bad.0
            let f = tempPath("bad-features-\(k).idx.gz"), out = tempPath("bad-logits-\(k).npy")
            try writeIDX(f, shape: [40, 23, 20], .float32(x))
            let r = try runTool(["run", m.path, "--input", f, "--out", out])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.err.contains("sample 2, feature 21") && r.err.contains(bad.1), r.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            let g = tempPath("bad-golden-\(k)")
            let rg = try runTool(["golden", m.path, "--input", f, "--count", "4", "--out", g])
            XCTAssertNotEqual(rg.status, 0)
            XCTAssertTrue(rg.err.contains("sample 2, feature 21"), rg.err)
        }
        // uint8 input of a feature model holds codes: 9 > 7 is an error
        var codes = featureCodes(m.features)
        codes[5] = 9
        let c = tempPath("bad-codes.idx.gz")
        try writeIDX(c, shape: [40, 23, 20], .uint8(codes))
        let r = try runTool(["run", m.path, "--input", c])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("sample 0, feature 5") && r.err.contains("3-bit"), r.err)
    }
}
