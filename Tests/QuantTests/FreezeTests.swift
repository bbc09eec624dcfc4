import Foundation
import XCTest
import DataIO
import Device
import FixedPoint
import Kernels
import ModelFile
import Randomness
import Training
@testable import Quant

final class FreezeTests: XCTestCase {
    static let source = syntheticSource(seed: 11)
    static let hwSource = syntheticSource(seed: 12, hardware: true)
    static let calibration = syntheticPixels(count: 32, seed: 100)
    static let eval = syntheticPixels(count: 80, seed: 200)

    func freeze(_ s: FreezeSource = FreezeTests.source, target: TargetProfile = smallTarget(), _ f: (inout FreezeOptions) -> Void = { _ in }) throws -> FrozenModel {
        var o = FreezeOptions(); f(&o)
        return try Freezer.freeze(s, target: target, calibration: FreezeTests.calibration, options: o)
    }

    func testFrozenModelLoadsRunsAndIsBitExactAgainstReference() throws {
        for src in [FreezeTests.source, FreezeTests.hwSource] {
            let m = try freeze(src)
            XCTAssertEqual(m.layers.map(\.name), ["conv1", "conv2", "fc1", "fc2"])
            XCTAssertEqual(m.layers.map(\.tiles), [1, 4, 7, 1], "54 rows -> 4 tiles of <= 16, 100 -> 7")
            let b = Freezer.bundle(m, source: src, target: smallTarget(), evaluation: nil, options: FreezeOptions(), toolVersion: "test")
            let path = tempPath("m-\(src.mode).rrm")
            try b.write(to: path)
            let back = try ModelBundle.read(path: path)
            XCTAssertEqual(back.program, m.program)
            XCTAssertEqual(back.metadata.masks.count, 4)
            for (k, l) in src.weightLayers.enumerated() {
                for i in 0..<l.mask.count where back.metadata.masks[k]![i] != (l.mask[i] != 0) {
                    XCTFail("layer \(l.name): mask bit \(i) expected \(l.mask[i]) got \(back.metadata.masks[k]![i])"); break
                }
            }
            XCTAssertEqual(back.metadata.programming.cellsToReset, 2 * src.weightLayers.reduce(0) { $0 + $1.mask.filter { $0 == 0 }.count })
            XCTAssertEqual(back.metadata.programming.maskFlips, src.weightLayers.map(\.flipsTotal))
            XCTAssertEqual(back.metadata.placement?.tiles.count, m.placement.tiles.count)
            XCTAssertEqual(back.metadata.targetHash, SHA256.hex(SHA256.hash(TargetProfiles.canonicalJSON(smallTarget()))))
            // the fast engine == the reference kernels on every tensor and tile (bit exact)
            let engine = try Engine(program: back.program, threads: 1)
            for i in 0..<6 {
                let px = image(FreezeTests.eval, i)
                let fast = engine.trace(pixels: px), ref = Reference.run(back.program, pixels: px)
                for (t, (a, e)) in zip(fast.tensors, ref.tensors).enumerated() {
                    if let j = a.indices.first(where: { a[$0] != e[$0] }) {
                        XCTFail("\(src.mode) image \(i): tensor \(t) (\(layerName(back.program, tensor: t, m))) index \(j): expected \(e[j]) got \(a[j])")
                    }
                }
                XCTAssertEqual(fast.tileADC, ref.tileADC, "\(src.mode) image \(i): tile ADC codes")
            }
        }
    }

    func layerName(_ p: Program, tensor: Int, _ m: FrozenModel) -> String {
        guard let n = p.nodes.firstIndex(where: { $0.output == tensor }) else { return "input" }
        if let l = m.layers.first(where: { $0.node == n }) { return "crossbar \(l.name)" }
        if let l = m.layers.first(where: { $0.activationNode == n }) { return "activation after \(l.name)" }
        return "node \(n) \(p.nodes[n].op.kind)"
    }

    func testIntegerFloatAndSourceModelAgree() throws {
        for src in [FreezeTests.source, FreezeTests.hwSource] {
            let m = try freeze(src)
            let ev = try Evaluator(program: m.program, threads: 2, withFloat: true)
            ev.process(FreezeTests.eval)
            var oracleAgree = 0
            for i in 0..<FreezeTests.eval.count {
                let px = image(FreezeTests.eval, i)
                let o = SourceOracle.argmax(SourceOracle.forward(src, pixels: px).v)
                if FloatPipeline.argmax(FloatPipeline.logits(m.program, pixels: px)) == o { oracleAgree += 1 }
            }
            // 14-bit ADCs: the integer program is the float pipeline up to ADC rounding
            XCTAssertGreaterThanOrEqual(ev.agreement, 0.97, "\(src.mode): integer vs float pipeline argmax agreement")
            // the frozen graph is the source model up to weight quantization and Float32
            XCTAssertGreaterThanOrEqual(Double(oracleAgree) / Double(FreezeTests.eval.count), src.mode == "software" ? 0.95 : 0.85,
                                        "\(src.mode): float pipeline vs source model (Double oracle) argmax agreement")
        }
    }

    func testSoftwareWeightsQuantizeExactlyAndHardwareLSBIsRecorded() throws {
        let m = try freeze()
        for (k, l) in FreezeTests.source.weightLayers.enumerated() {
            guard case .crossbar(let cp) = m.program.nodes[m.layers[k].node].op else { return XCTFail("not a crossbar") }
            for i in 0..<cp.weights.count {
                let want: Int8 = l.mask[i] == 0 ? 0 : (l.wOn[i] > 0 ? 127 : -127)
                if cp.weights[i] != want { return XCTFail("layer \(l.name) weight \(i): expected \(want) got \(cp.weights[i])") }
            }
            XCTAssertEqual(m.layers[k].weightsClipped, 0)
        }
        let h = try freeze(FreezeTests.hwSource) { $0.weightBits = 6 }
        for (k, l) in FreezeTests.hwSource.weightLayers.enumerated() {
            guard case .crossbar(let cp) = h.program.nodes[h.layers[k].node].op else { return XCTFail("not a crossbar") }
            let lsb = Double(l.wOn.map { abs($0) }.max()!) / 31
            XCTAssertEqual(h.layers[k].weightLSB, lsb, accuracy: lsb * 1e-12)
            XCTAssertEqual(cp.weightLSBMicroSiemens, lsb / 0.02, accuracy: lsb * 1e-9)
            XCTAssertEqual(cp.weightBits, 6)
            for i in 0..<cp.weights.count {
                let want = Int8(max(-31, min(31, (Double(l.effective(i)) / lsb).rounded(.toNearestOrAwayFromZero))))
                if cp.weights[i] != want { return XCTFail("layer \(l.name) weight \(i): expected \(want) got \(cp.weights[i])") }
            }
            XCTAssertEqual(cp.weights.map { abs(Int($0)) }.max(), 31)
            XCTAssertTrue(zip(cp.weights, l.mask).contains { $1 == 0 && $0 != 0 } || k == 3, "\(l.name): some pruned pairs keep a residual code")
        }
        // a percentile below 100 clips the largest weights and reports it
        let p = try freeze(FreezeTests.hwSource) { $0.weightPercentile = 90 }
        XCTAssertGreaterThan(p.layers[1].weightsClipped, 0)
    }

    func testInputQuantizerEqualsTrainingFakeQuantForEveryPixel() throws {
        let m = try freeze()
        guard case .inputQuant(let p) = m.program.nodes[1].op, case .maxPool = m.program.nodes[0].op else { return XCTFail("pool then inputQuant expected") }
        for px in 0...255 {
            let code = min(max(roundingShiftRight(Int64(px) * Int64(p.multiplier[0]) + p.offset[0], Int(p.shift[0]), p.rounding), 0), 15)
            // training (TRAINING.md): x = Float(p)/255, q = roundHalfAway(clamp(x, 0, r) * (15/r))
            let x = Float(px) / 255
            let want = roundHalfAwayNonNegative(min(max(x, 0), 1) * 15)
            XCTAssertEqual(Float(code), want, "pixel \(px): expected code \(want) got \(code)")
        }
    }

    func testAffineFoldEqualsRoundHalfUpOfTheRealValue() throws {
        var r = Xoshiro256StarStar(seed: 5)
        var checked = 0, edge = 0, clampedTop = 0, clampedZero = 0
        for _ in 0..<400 {
            // random BN statistics, ranges, ADC units: a = unit * istd * L / range, b = -mean * istd * L / range
            let unit = pow(10, r.uniform(-4, 0)), istd = 1 / (r.uniform(0.01, 4)).squareRoot(), range = r.uniform(0.1, 5)
            let mean = r.uniform(-2, 2), L = Double([1, 3, 15, 255][r.int(below: 4)])
            let a = unit * istd * L / range, b = -mean * istd * L / range
            let maxIn = Int64([16383, 65535, 1 << 20][r.int(below: 3)])
            let (M, S, B) = try AffineFold.derive(scale: a, offset: b, maxInput: maxIn)
            XCTAssertLessThanOrEqual(maxIn * Int64(M).magnitude.int64 + abs(B), Program.affineBound)
            for _ in 0..<50 {
                let s = Int64(r.int(below: Int(2 * maxIn + 1))) - maxIn
                let got = min(max(roundingShiftRight(s * Int64(M) + B, Int(S), .halfUp), 0), Int64(L))
                let v = a * Double(s) + b
                let tieDistance = abs(v - (v.rounded(.down) + 0.5))
                if tieDistance <= AffineFold.errorBound(input: s, shift: S) + 1e-12 * abs(v) { edge += 1; continue }
                let want = min(max((v + 0.5).rounded(.down), 0), L)
                XCTAssertEqual(Double(got), want, "a \(a) b \(b) s \(s): M \(M) S \(S) B \(B): expected \(want) got \(got)")
                checked += 1
                if got == 0 { clampedZero += 1 } else if Double(got) == L { clampedTop += 1 }
            }
        }
        XCTAssertGreaterThan(checked, 19000)
        XCTAssertLessThan(edge, 100, "values within the documented error bound of a rounding edge")
        XCTAssertGreaterThan(clampedZero, 300); XCTAssertGreaterThan(clampedTop, 300)
        XCTAssertGreaterThan(checked - clampedZero - clampedTop, 300)
        // exact ties on representable parameters round half up
        let (M, S, B) = try AffineFold.derive(scale: 0.5, offset: 0, maxInput: 100)
        for s: Int64 in [1, 3, -1, -3] {
            XCTAssertEqual(roundingShiftRight(s * Int64(M) + B, Int(S), .halfUp), Int64((Double(s + 1) / 2).rounded(.down)), "s = \(s): s/2 rounds half up")
        }
        XCTAssertThrowsError(try AffineFold.derive(scale: .nan, offset: 0, maxInput: 1))
        XCTAssertThrowsError(try AffineFold.derive(scale: 1, offset: 1e30, maxInput: 1))
    }

    /// The two-scale fold of a residual addition: `Reference.add` of the derived integers equals
    /// round-half-up of `a1 s1 + a2 s2 + b`, away from the documented error bound of a tie.
    func testTwoScaleFoldOfAnAdditionEqualsRoundHalfUpOfTheRealValue() throws {
        var r = Xoshiro256StarStar(seed: 15)
        var checked = 0, edge = 0, clamped = 0
        for _ in 0..<300 {
            // scales that spread both inputs' ranges over the codes (a BN'd branch of any sign, a code branch)
            let L = Double([1, 3, 15, 255][r.int(below: 4)]), b = r.uniform(-0.5, 0.5) * L
            let max1 = Int64([16383, 1 << 20, 1 << 28][r.int(below: 3)]), max2 = Int64([15, 255, 1 << 16][r.int(below: 3)])
            let a1 = L / Double(max1) * r.uniform(0.5, 4) * (r.int(below: 4) == 0 ? -1 : 1), a2 = L / Double(max2) * r.uniform(0.3, 1.5)
            let (M, S, B) = try AffineFold.derive(scales: [a1, a2], offset: b, maxInputs: [max1, max2])
            XCTAssertLessThanOrEqual(max1 * Int64(M[0]).magnitude.int64 + max2 * Int64(M[1]).magnitude.int64 + abs(B), Program.affineBound)
            let q = AffineQuantParams(channels: 1, multiplier: M[0], shift: S, offset: B, outBits: Int(L).bitWidthNeeded, rounding: .halfUp)
            let p = AddParams(first: q, secondMultiplier: [M[1]])
            for _ in 0..<40 {
                let s1 = Int64(r.int(below: Int(2 * max1 + 1))) - max1, s2 = Int64(r.int(below: Int(max2 + 1)))
                let got = Reference.add(s1, s2, channel: 0, p)
                let v = a1 * Double(s1) + a2 * Double(s2) + b
                // each input contributes its own error bound (the sum of the two)
                let bound = AffineFold.errorBound(input: s1, shift: S) + AffineFold.errorBound(input: s2, shift: S)
                if abs(v - (v.rounded(.down) + 0.5)) <= bound + 1e-12 * abs(v) { edge += 1; continue }
                let want = min(max((v + 0.5).rounded(.down), 0), L)
                XCTAssertEqual(Double(got), want, "a1 \(a1) a2 \(a2) b \(b) s1 \(s1) s2 \(s2): M \(M) S \(S) B \(B)")
                checked += 1
                if got == 0 || Double(got) == L { clamped += 1 }
            }
        }
        XCTAssertGreaterThan(checked, 11000)
        // one shift for both inputs: the smaller scale's multiplier has fewer significant bits,
        // so the bound (and the share of values near a tie) is wider than for one input
        XCTAssertLessThan(edge, checked / 10, "values within the error bound of a rounding edge")
        XCTAssertGreaterThan(checked - clamped, 1000, "values inside the code range")
        XCTAssertThrowsError(try AffineFold.derive(scales: [1, .infinity], offset: 0, maxInputs: [1, 1]))
    }

    func testActivationStagesOfTheFrozenModelMatchTheRealFold() throws {
        let m = try freeze(FreezeTests.hwSource)
        let engine = try Engine(program: m.program, threads: 1)
        var checked = 0, edge = 0
        for i in 0..<10 {
            let tr = engine.trace(pixels: image(FreezeTests.eval, i))
            for (k, l) in m.layers.enumerated() {
                guard let an = l.activationNode, case .activation(let p) = m.program.nodes[an].op else { continue }
                let inT = m.program.nodes[an].inputs[0], outT = m.program.nodes[an].output
                let sh = m.program.tensors[inT].shape, per = sh.h * sh.w
                let bnIndex = FreezeTests.hwSource.graph.indices.first { gi in gi > FreezeTests.hwSource.weightLayers[k].graphIndex && FreezeTests.hwSource.graph[gi].op == "batchnorm" && !FreezeTests.hwSource.graph[(FreezeTests.hwSource.weightLayers[k].graphIndex + 1)..<gi].contains { $0.op == "fakequant" } }
                let q = FreezeTests.hwSource.quantizers[FreezeTests.hwSource.graph.indices.first { $0 > FreezeTests.hwSource.weightLayers[k].graphIndex && FreezeTests.hwSource.graph[$0].op == "fakequant" }!]!
                let L = Double((1 << q.bits) - 1)
                for c in 0..<sh.c {
                    var istd = 1.0, mean = 0.0
                    if let bi = bnIndex, let bn = FreezeTests.hwSource.batchNorms[bi] { istd = 1 / (Double(bn.variance[c]) + bn.eps).squareRoot(); mean = Double(bn.mean[c]) }
                    for j in 0..<per {
                        let s = Int64(tr.tensors[inT][c * per + j])
                        let v = (Double(s) * l.sumUnit - mean) * istd * L / Double(q.range)
                        if abs(v - (v.rounded(.down) + 0.5)) <= AffineFold.errorBound(input: s, shift: p.shift[c]) + 1e-9 * max(1, abs(v)) { edge += 1; continue }
                        let want = Int32(min(max((v + 0.5).rounded(.down), 0), L))
                        if tr.tensors[outT][c * per + j] != want {
                            return XCTFail("activation after \(l.name), image \(i), index \(c * per + j): expected \(want) got \(tr.tensors[outT][c * per + j]) (real \(v))")
                        }
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000)
        XCTAssertLessThan(edge, checked / 100)
    }

    func testADCGainMapsTheCalibrationMaximumToFullScaleAndReportsClipping() throws {
        let m = try freeze { $0.adcGainRule = .fullScale }
        for l in m.layers {
            XCTAssertEqual(l.calibrationClipped, 0, "\(l.name): the max maps to full scale, nothing clips")
            let full = Int64((1 << (l.adcBits - 1)) - 1)
            let top = roundingShiftRight(l.accMax * Int64(l.adcMultiplier), 31 - Int(l.adcShift), .halfUp)
            XCTAssertTrue(top == full || top == full - 1, "\(l.name): |acc| max \(l.accMax) -> ADC \(top), full scale \(full)")
            XCTAssertGreaterThan(l.calibrationReadings, 0)
        }
        // the default integer rule: the largest integer gain that keeps the max within full scale
        let d = try freeze()
        for (l, f) in zip(d.layers, m.layers) {
            let full = Int64((1 << (l.adcBits - 1)) - 1)
            XCTAssertLessThanOrEqual(l.accMax, full, "\(l.name): the fixture's accumulators fit 14 bits")
            XCTAssertEqual(l.adcGain, l.adcGain.rounded(), "\(l.name): integer gain, got \(l.adcGain)")
            XCTAssertEqual(l.adcGain, f.adcGain.rounded(.down), "\(l.name): floor of the full-scale gain \(f.adcGain)")
            let g = Int64(l.adcGain)
            XCTAssertTrue(l.accMax * g <= full && l.accMax * (g + 1) > full, "\(l.name): |acc| max \(l.accMax) x \(g), full scale \(full)")
            XCTAssertEqual(l.calibrationClipped, 0, "\(l.name)")
        }
        let p = try freeze { $0.adcPercentile = 50 }
        for l in p.layers {
            // (a layer whose median |acc| is 0 falls back to the max: nothing clips)
            if l.accLevel < l.accMax { XCTAssertGreaterThan(l.clipRate, 0.3, "\(l.name): about half the readings exceed the 50th percentile of |acc|") }
            XCTAssertLessThanOrEqual(l.clipRate, 0.5 + 1e-9, "\(l.name)")
        }
        // fewer ADC bits: coarser codes, still within range
        XCTAssertGreaterThan(p.layers[0].clipRate, 0.3, "conv1")
        let lowBits = try freeze(target: smallTarget(adcBits: 6))
        XCTAssertEqual(lowBits.layers.map(\.adcBits), [6, 6, 6, 6])
        // accumulators beyond a 6-bit ADC's range: gain < 1, the same under both rules
        let lowFull = try freeze(target: smallTarget(adcBits: 6)) { $0.adcGainRule = .fullScale }
        for (l, f) in zip(lowBits.layers, lowFull.layers) where l.accLevel > 31 {
            XCTAssertLessThan(l.adcGain, 1, l.name)
            XCTAssertEqual(l.adcMultiplier, f.adcMultiplier, l.name); XCTAssertEqual(l.adcShift, f.adcShift, l.name)
        }
    }

    func testADCGainRuleTable() {
        // 14-bit ADC: full scale 8191
        let cases: [(Int64, Double, Double)] = [(3255, 2, 8191.0 / 3255), (2222, 3, 8191.0 / 2222), (8191, 1, 1), (4096, 1, 8191.0 / 4096),
                                                (4095, 2, 8191.0 / 4095), (1, 8191, 8191), (8192, 8191.0 / 8192, 8191.0 / 8192),
                                                (100_000, 0.08191, 0.08191), (0, 1, 1)]
        for (level, integer, fullScale) in cases {
            XCTAssertEqual(ADCGainRule.integer.gain(level: level, adcBits: 14), integer, "integer rule, level \(level)")
            XCTAssertEqual(ADCGainRule.fullScale.gain(level: level, adcBits: 14), fullScale, "full-scale rule, level \(level)")
        }
    }

    /// With integer ADC gains (every layer's accumulators fit the ADC) the ADC does not round, so
    /// the integer program and the float pipeline of the frozen graph agree on every value of every
    /// tensor; with the full-scale rule the hardware model's ADC rounding shows up somewhere.
    func testIntegerADCGainsMakeTheIntegerProgramEqualTheFloatPipeline() throws {
        var fullScaleDiffers = 0
        for rule in [ADCGainRule.integer, .fullScale] {
            let m = try freeze(FreezeTests.hwSource) { $0.adcGainRule = rule }
            let engine = try Engine(program: m.program, threads: 1)
            for i in 0..<8 {
                let px = image(FreezeTests.eval, i)
                let ints = engine.trace(pixels: px).tensors, floats = FloatPipeline.run(m.program, pixels: px)
                for (t, (a, f)) in zip(ints, floats).enumerated() {
                    guard let j = a.indices.first(where: { Float(a[$0]) != f[$0] }) else { continue }
                    if rule == .fullScale { fullScaleDiffers += 1; continue }
                    return XCTFail("integer gains, image \(i): tensor \(t) (\(layerName(m.program, tensor: t, m))) index \(j): float pipeline \(f[j]), integer \(a[j])")
                }
            }
        }
        XCTAssertGreaterThan(fullScaleDiffers, 0, "the full-scale rule rounds in the ADC: some tensor must differ from the float pipeline")
    }

    func testOverflowingModelIsRefusedWithTheLayerNamed() throws {
        // 8-bit activations into a 70,000-row single tile with 8-bit weights: 70000 * 255 * 128 > 2^31
        let n = 70_000
        var r = Xoshiro256StarStar(seed: 9)
        let g = [spec("fakequant") { $0.bits = 8; $0.fixedRange = true; $0.range = 1 }, spec("flatten"),
                 spec("linear") { $0.name = "wide"; $0.inFeatures = n; $0.outFeatures = 2 }]
        let wl = SourceWeightLayer(name: "wide", graphIndex: 2, fanOut: 2, fanIn: n, wOn: (0..<(2 * n)).map { _ in Float(r.uniform(-1, 1)) },
                                   wOff: [Float](repeating: 0, count: 2 * n), mask: [UInt8](repeating: 1, count: 2 * n))
        let src = FreezeSource(task: "synthetic", mode: "software", runTarget: nil, seed: 1, epochs: 1, inputShape: [1, 1, n], classes: 2,
                               inputScale: 1.0 / 255, inputOffset: 0, graph: g, weightLayers: [wl], batchNorms: [:], quantizers: [0: (8, 1)])
        let cal = PixelSet(count: 1, shape: TensorShape(c: 1, h: 1, w: n), pixels: [UInt8](repeating: 255, count: n))
        XCTAssertThrowsError(try Freezer.freeze(src, target: smallTarget(rows: 100_000, cols: 64), calibration: cal)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("wide") && s.contains("overflow") && s.contains("70000"), s)
        }
        // 7-bit weights fit (70000 * 255 * 64 < 2^31)
        XCTAssertNoThrow(try Freezer.freeze(src, target: smallTarget(rows: 100_000, cols: 64), calibration: cal, options: { var o = FreezeOptions(); o.weightBits = 7; return o }()))
    }

    func testUnsupportedGraphsAndMismatchesAreNamed() throws {
        var s = FreezeTests.source
        s.graph.insert(spec("softmax"), at: 3)
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("softmax"), "\($0)") }
        // a branch is lowered by what it reads: a ReLU of codes, an addition of maps of two
        // shapes, a node reading a later value are each refused with the node named
        s = FreezeTests.source
        s.graph[4].inputs = [2]
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 4") && "\($0)".contains("ReLU must follow"), "\($0)") }
        s = FreezeTests.source
        s.graph[4] = spec("add") { $0.inputs = [4, 2] }
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 4 (add)") && "\($0)".contains("differ in shape"), "\($0)") }
        s = FreezeTests.source
        s.graph[4].inputs = [6]
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 4") && "\($0)".contains("earlier nodes"), "\($0)") }
        s = FreezeTests.source
        s.graph[11] = spec("globalavgpool") { $0.inputs = [10] }
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 11 (globalavgpool)") && "\($0)".contains("reads quantized codes"), "\($0)") }
        // upsampling reads codes; a concatenation ends at a quantizer and reads maps of one size
        s = FreezeTests.source
        s.graph[7] = spec("upsample") { $0.factor = 2 }
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 7 (upsample)") && "\($0)".contains("reads quantized codes"), "\($0)") }
        s = FreezeTests.source
        s.graph[5] = spec("concat") { $0.inputs = [5, 5] }
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 6 (conv2d conv2)") && "\($0)".contains("a concatenation not yet quantized"), "\($0)") }
        s = FreezeTests.source
        s.graph[9] = spec("concat") { $0.inputs = [9, 5] }
        XCTAssertThrowsError(try freeze(s)) { XCTAssertTrue("\($0)".contains("graph node 9 (concat)") && "\($0)".contains("heights and widths differ"), "\($0)") }
        s = FreezeTests.source
        s.graph[4].inputs = [4]   // its predecessor, written explicitly: a chain
        XCTAssertNoThrow(try freeze(s))
        var t = smallTarget(); t.activationBits["fashion-mnist"] = 6
        XCTAssertThrowsError(try freeze(target: t)) { XCTAssertTrue("\($0)".contains("6-bit"), "\($0)") }
        var hw = FreezeTests.hwSource; hw.runTarget = "pcm-like"
        XCTAssertThrowsError(try freeze(hw)) { XCTAssertTrue("\($0)".contains("pcm-like"), "\($0)") }
        var bad = FreezeTests.source; bad.weightLayers[1].wOn[3] = .nan
        XCTAssertThrowsError(try freeze(bad)) { XCTAssertTrue("\($0)".contains("conv2") && "\($0)".contains("w_on[3]"), "\($0)") }
        XCTAssertThrowsError(try Freezer.freeze(FreezeTests.source, target: smallTarget(),
                                                calibration: PixelSet(count: 1, shape: TensorShape(c: 1, h: 32, w: 32), pixels: [UInt8](repeating: 0, count: 1024)))) {
            XCTAssertTrue("\($0)".contains("(1,32,32)"), "\($0)")
        }
    }

    func testFreezeIsDeterministicWhateverTheThreadCount() throws {
        let a = try freeze { $0.threads = 1 }, b = try freeze { $0.threads = 2 }
        let ea = try Freezer.evaluate(a, on: FreezeTests.eval, threads: 1, traceCount: 20)
        let eb = try Freezer.evaluate(b, on: FreezeTests.eval, threads: 2, traceCount: 20)
        XCTAssertEqual(ea, eb)
        let ba = try Freezer.bundle(a, source: FreezeTests.source, target: smallTarget(), evaluation: ea, options: FreezeOptions(), toolVersion: "t").encode()
        let bb = try Freezer.bundle(b, source: FreezeTests.source, target: smallTarget(), evaluation: eb, options: FreezeOptions(), toolVersion: "t").encode()
        XCTAssertEqual(ba, bb, "identical model file bytes")
    }
}

extension UInt64 { var int64: Int64 { Int64(self) } }

final class FloatEvaluatorTests: XCTestCase {
    func testFloatEvaluatorEqualsFloatPipelineBitForBit() throws {
        let m = try Freezer.freeze(syntheticSource(seed: 31, hardware: true), target: smallTarget(), calibration: syntheticPixels(count: 16, seed: 2))
        let fe = FloatEvaluator(m.program)
        var arena = [Float](repeating: 0, count: fe.arenaCount)
        let set = syntheticPixels(count: 12, seed: 4)
        for i in 0..<set.count {
            let px = image(set, i)
            let want = FloatPipeline.logits(m.program, pixels: px)
            let got = px.withUnsafeBufferPointer { p in arena.withUnsafeMutableBufferPointer { a in Array(fe.logits(pixels: p.baseAddress!, arena: a.baseAddress!)) } }
            for j in want.indices where want[j].bitPattern != got[j].bitPattern {
                XCTFail("image \(i): logit \(j): expected \(want[j]) got \(got[j])")
            }
        }
    }

    /// Padded and strided convolutions, 1x1 heads, concat, upsample, add and global pooling, on
    /// one tile and on several (40 rows per array): the same bits as FloatPipeline, in an arena
    /// shared by lifetime (smaller than all tensors side by side).
    func testFloatEvaluatorEqualsFloatPipelineOnGraphs() throws {
        let px = SamplePrograms.images(3, seed: 9)
        for (name, make) in [("unet", SamplePrograms.tinyUNet), ("resnet", SamplePrograms.tinyResNet)] as [(String, (UInt64, Int, Int, Int, Int, Bool) -> Program)] {
            for rows in [512, 40] {
                let p = make(5, 8, 4, 14, rows, true)
                try p.validate()
                let fe = FloatEvaluator(p)
                XCTAssertLessThan(fe.arenaCount, p.tensors.reduce(0) { $0 + $1.shape.count }, "\(name): the arena is not shared")
                var arena = [Float](repeating: .nan, count: fe.arenaCount)
                for i in 0..<3 {
                    let img = Array(px[(i * 784)..<((i + 1) * 784)])
                    let want = FloatPipeline.logits(p, pixels: img)
                    let got = img.withUnsafeBufferPointer { q in arena.withUnsafeMutableBufferPointer { a in Array(fe.logits(pixels: q.baseAddress!, arena: a.baseAddress!)) } }
                    XCTAssertEqual(want.count, got.count)
                    for j in want.indices where want[j].bitPattern != got[j].bitPattern {
                        XCTFail("\(name), \(rows) rows, image \(i): logit \(j): expected \(want[j]) got \(got[j])"); break
                    }
                }
            }
        }
    }
}

private extension Int {
    /// Bits of the unsigned code range 0...self (self = 2^b - 1).
    var bitWidthNeeded: Int { Int.bitWidth - self.leadingZeroBitCount }
}
