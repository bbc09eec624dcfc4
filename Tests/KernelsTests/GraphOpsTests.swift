// The layer-graph ops (add, concat, upsampleBilinear, globalAvgPool): each fast kernel equals its
// reference kernel bit for bit on >= 1000 random cases with values and parameters at the edges
// validate() allows; random DAG programs and the sample U-Net and residual net give the same
// tensors in the fast engine (fused and traced) and the reference engine; malformed graphs are
// refused with the node named.

import XCTest
import FixedPoint
import Randomness
@testable import Kernels

final class GraphOpsTests: XCTestCase {
    // MARK: random values and parameters

    /// `n` values of a tensor whose magnitude is at most `mag` (`code`: in 0...mag), a quarter
    /// of them at the ends of the range.
    static func values(_ n: Int, mag: Int64, code: Bool, _ rng: inout Xoshiro256StarStar) -> [Int32] {
        (0..<n).map { _ in
            let lo = code ? 0 : -mag
            switch rng.int(below: 8) {
            case 0: return Int32(lo)
            case 1: return Int32(mag)
            default: return Int32(rng.int64(lo...mag))
            }
        }
    }

    /// Per-channel multipliers for inputs of magnitudes `mags` and an offset, with
    /// `sum_j mags[j] |M_j| + |B| <= 2^62`, one channel in eight exactly at the bound.
    static func affineTerms(_ mags: [Int64], channels: Int, outBits: Int, _ rng: inout Xoshiro256StarStar)
        -> (m: [[Int32]], shift: [Int32], offset: [Int64]) {
        var m = [[Int32]](repeating: [], count: mags.count), sh: [Int32] = [], off: [Int64] = []
        let bound = Int64(1) << 62
        for _ in 0..<channels {
            if rng.int(below: 8) == 0 {
                var left = bound
                for j in mags.indices {
                    let cap = min(Int64(Int32.max), left / Int64(mags.count - j) / max(mags[j], 1))
                    let M = rng.int64(0...max(cap, 0))
                    m[j].append(Int32(M) * (rng.bool() ? 1 : -1))
                    left -= M * mags[j]
                }
                sh.append(62); off.append(rng.bool() ? left : -left)
            } else {
                let s = rng.int(0...40)
                for j in mags.indices {
                    let target = Double(1 << outBits) * Double(Int64(1) << Int64(s)) / Double(max(mags[j], 1)) * (0.2 + 2 * rng.uniform())
                    m[j].append(Int32(min(Double(Int32.max), target)) * (rng.int(below: 4) == 0 ? -1 : 1))
                }
                sh.append(Int32(s))
                off.append(Int64((rng.uniform() - 0.4) * Double(1 << outBits) * Double(Int64(1) << Int64(s))))
            }
        }
        return (m, sh, off)
    }

    static func randomShape(_ rng: inout Xoshiro256StarStar, maxC: Int = 9, maxHW: Int = 7) -> TensorShape {
        TensorShape(c: rng.int(1...maxC), h: rng.int(1...maxHW), w: rng.int(1...maxHW))
    }

    // MARK: kernels, fast == reference

    func testAddFastEqualsReference() {
        var rng = Xoshiro256StarStar(seed: 601)
        for case_ in 0..<1200 {
            let s = Self.randomShape(&rng)
            let aCode = rng.bool(), bCode = rng.bool()
            let ma: Int64 = aCode ? Int64(rng.int(1...255)) : (rng.bool() ? Int64(Int32.max) : Int64(rng.int(1...100_000)))
            let mb: Int64 = bCode ? Int64(rng.int(1...255)) : (rng.bool() ? Int64(Int32.max) : Int64(rng.int(1...100_000)))
            let outBits = rng.int(1...8)
            let t = Self.affineTerms([ma, mb], channels: s.c, outBits: outBits, &rng)
            let p = AddParams(first: AffineQuantParams(multiplier: t.m[0], shift: t.shift, offset: t.offset, outBits: outBits, rounding: rng.rule()),
                              secondMultiplier: t.m[1])
            let a = Self.values(s.count, mag: ma, code: aCode, &rng), b = Self.values(s.count, mag: mb, code: bCode, &rng)
            let want = Reference.add(a, b, shape: s, p)
            let ha = toHWC(a, s), hb = toHWC(b, s)
            var got = [Int16](repeating: -1, count: s.count)
            let plan = AddPlan(p)
            // the arenas: codes are Int16, sums Int32
            let a16 = ha.map { Int16(truncatingIfNeeded: $0) }, b16 = hb.map { Int16(truncatingIfNeeded: $0) }
            got.withUnsafeMutableBufferPointer { d in
                switch (aCode, bCode) {
                case (true, true): Fast.add(a16, b16, dst: d.baseAddress!, pixels: s.h * s.w, channels: s.c, plan: plan)
                case (true, false): Fast.add(a16, hb, dst: d.baseAddress!, pixels: s.h * s.w, channels: s.c, plan: plan)
                case (false, true): Fast.add(ha, b16, dst: d.baseAddress!, pixels: s.h * s.w, channels: s.c, plan: plan)
                case (false, false): Fast.add(ha, hb, dst: d.baseAddress!, pixels: s.h * s.w, channels: s.c, plan: plan)
                }
            }
            assertBitExact(want, toCHW(got.map { Int32($0) }, s), stage: "add case \(case_) \(s)")
        }
    }

    func testConcatFastEqualsReference() {
        var rng = Xoshiro256StarStar(seed: 602)
        for case_ in 0..<1200 {
            let h = rng.int(1...6), w = rng.int(1...6), n = rng.int(2...4)
            let shapes = (0..<n).map { _ in TensorShape(c: rng.int(1...6), h: h, w: w) }
            let codes = (0..<n).map { _ in rng.bool() }
            let mags: [Int64] = codes.map { $0 ? Int64(rng.int(1...255)) : (rng.bool() ? Int64(Int32.max) : Int64(rng.int(1...50_000))) }
            let outBits = rng.int(1...8)
            var m: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for j in 0..<n {
                let t = Self.affineTerms([mags[j]], channels: shapes[j].c, outBits: outBits, &rng)
                m += t.m[0]; sh += t.shift; off += t.offset
            }
            let p = ConcatParams(quant: AffineQuantParams(multiplier: m, shift: sh, offset: off, outBits: outBits, rounding: rng.rule()))
            let xs = (0..<n).map { Self.values(shapes[$0].count, mag: mags[$0], code: codes[$0], &rng) }
            let want = Reference.concat(xs, shapes: shapes, p)
            let total = shapes.reduce(0) { $0 + $1.c }
            let os = TensorShape(c: total, h: h, w: w)
            var got = [Int16](repeating: -1, count: os.count)
            var first = 0
            for j in 0..<n {
                let plan = AffinePlan(p.quant.channels(first..<(first + shapes[j].c)))
                let hx = toHWC(xs[j], shapes[j])
                got.withUnsafeMutableBufferPointer { d in
                    if codes[j] {
                        Fast.affineQuant(src: hx.map { Int16(truncatingIfNeeded: $0) }, dst: d.baseAddress! + first, pixels: h * w,
                                         channels: shapes[j].c, dstStride: total, plan: plan)
                    } else {
                        Fast.affineQuant(src: hx, dst: d.baseAddress! + first, pixels: h * w, channels: shapes[j].c, dstStride: total, plan: plan)
                    }
                }
                first += shapes[j].c
            }
            assertBitExact(want, toCHW(got.map { Int32($0) }, os), stage: "concat case \(case_) \(shapes)")
        }
    }

    func testUpsampleFastEqualsReference() {
        var rng = Xoshiro256StarStar(seed: 603)
        var ties = 0
        for case_ in 0..<1500 {
            let s = Self.randomShape(&rng, maxC: 5, maxHW: 6)
            let big = rng.int(below: 10) == 0
            let p = UpsampleParams(factorH: big ? rng.int(1...16) : rng.int(1...3), factorW: big ? rng.int(1...16) : rng.int(1...3), rounding: rng.rule())
            let os = p.outputShape(for: s)
            let den = Int64(UpsampleParams.axisDenominator(output: os.h) * UpsampleParams.axisDenominator(output: os.w))
            // three forms: codes -> rounded codes, codes -> exact sums, sums -> exact sums (numerators fit Int32)
            let form = rng.int(below: 3)
            let code = form < 2, exact = form > 0
            let mag: Int64 = code ? Int64(rng.int(1...255)) : max(1, Int64(Int32.max) / den)
            let x = Self.values(s.count, mag: mag, code: code, &rng)
            let want = Reference.upsample(x, shape: s, p, exact: exact)
            let plan = UpsamplePlan(p, inShape: s, exact: exact)
            let hx = toHWC(x, s)
            let got: [Int32]
            if exact {
                var d = [Int32](repeating: -7, count: os.count)
                d.withUnsafeMutableBufferPointer { dp in
                    if code { Fast.upsample(src: hx.map { Int16($0) }, dst: dp.baseAddress!, plan: plan) }
                    else { Fast.upsample(src: hx, dst: dp.baseAddress!, plan: plan) }
                }
                got = d
            } else {
                var d = [Int16](repeating: -7, count: os.count)
                d.withUnsafeMutableBufferPointer { dp in Fast.upsample(src: hx.map { Int16($0) }, dst: dp.baseAddress!, plan: plan) }
                got = d.map { Int32($0) }
                // count exact ties of the rounded division (the rules differ only there)
                let nums = Reference.upsample(x, shape: s, p, exact: true)
                ties += nums.filter { 2 * ((Int64($0) % den + den) % den) == den }.count
            }
            assertBitExact(want, toCHW(got, os), stage: "upsample case \(case_) \(s) x\(p.factorH)x\(p.factorW) form \(form)")
            if exact {
                // the exact form is the value times Dy*Dx: corners are copies of the input's corners
                XCTAssertEqual(Int64(want[0]), Int64(x[0]) * den, "upsample case \(case_): top-left corner")
                XCTAssertEqual(Int64(want[os.h * os.w - 1]), Int64(x[s.h * s.w - 1]) * den, "upsample case \(case_): bottom-right corner")
            }
        }
        XCTAssertGreaterThan(ties, 50, "the rounded form meets exact ties")
    }

    func testGlobalAvgPoolFastEqualsReference() {
        var rng = Xoshiro256StarStar(seed: 604)
        for case_ in 0..<1200 {
            let s = Self.randomShape(&rng, maxC: 9, maxHW: 9)
            let code = rng.bool()
            let mag: Int64 = code ? Int64(rng.int(1...255)) : Int64(Int32.max)
            let x = Self.values(s.count, mag: mag, code: code, &rng)
            let p = GlobalAvgPoolParams(rounding: rng.rule())
            let want = Reference.globalAvgPool(x, shape: s, p)
            let hx = toHWC(x, s)
            let got: [Int32]
            if code {
                var d = [Int16](repeating: -1, count: s.c)
                d.withUnsafeMutableBufferPointer { Fast.globalAvgPool(src: hx.map { Int16($0) }, dst: $0.baseAddress!, shape: s, rounding: p.rounding) }
                got = d.map { Int32($0) }
            } else {
                var d = [Int32](repeating: -1, count: s.c)
                d.withUnsafeMutableBufferPointer { Fast.globalAvgPool(src: hx, dst: $0.baseAddress!, shape: s, rounding: p.rounding) }
                got = d
            }
            assertBitExact(want, got, stage: "globalAvgPool case \(case_) \(s)")
            // the exact form (a sum output) of code inputs: the Int32 sum itself
            if code {
                let exact = Reference.globalAvgPool(x, shape: s, p, exact: true)
                var d = [Int32](repeating: -1, count: s.c)
                d.withUnsafeMutableBufferPointer { Fast.globalAvgPool(src: hx.map { Int16($0) }, dst: $0.baseAddress!, shape: s, rounding: p.rounding, exact: true) }
                assertBitExact(exact, d, stage: "globalAvgPool exact case \(case_) \(s)")
                for c in 0..<s.c {
                    let sum = x[(c * s.h * s.w)..<((c + 1) * s.h * s.w)].reduce(Int64(0)) { $0 + Int64($1) }
                    XCTAssertEqual(Int64(exact[c]), sum, "globalAvgPool exact case \(case_) channel \(c)")
                }
            }
            // the mean of values in [lo, hi] lies in [lo, hi]
            for c in 0..<s.c {
                let ch = x[(c * s.h * s.w)..<((c + 1) * s.h * s.w)]
                XCTAssert(want[c] >= ch.min()! && want[c] <= ch.max()!, "globalAvgPool case \(case_) channel \(c): \(want[c]) outside the channel's values")
            }
        }
    }

    /// The reference upsampling against the definition in real numbers: on small maps, every
    /// exact numerator divided by `Dy*Dx` equals PyTorch's align_corners=True interpolation
    /// `src = o (n-1)/(m-1)` computed in Double (exact here: small integers).
    func testUpsampleMatchesAlignCornersDefinition() {
        var rng = Xoshiro256StarStar(seed: 605)
        for _ in 0..<200 {
            let s = Self.randomShape(&rng, maxC: 2, maxHW: 5)
            let p = UpsampleParams(factorH: rng.int(1...4), factorW: rng.int(1...4), rounding: .floor)
            let os = p.outputShape(for: s)
            let x = Self.values(s.count, mag: 255, code: true, &rng)
            let num = Reference.upsample(x, shape: s, p, exact: true)
            let dy = Double(UpsampleParams.axisDenominator(output: os.h)), dx = Double(UpsampleParams.axisDenominator(output: os.w))
            for c in 0..<s.c { for oy in 0..<os.h { for ox in 0..<os.w {
                let sy = os.h > 1 ? Double(oy) * Double(s.h - 1) / Double(os.h - 1) : 0
                let sx = os.w > 1 ? Double(ox) * Double(s.w - 1) / Double(os.w - 1) : 0
                let y0 = Int(sy), x0 = Int(sx), y1 = min(y0 + 1, s.h - 1), x1 = min(x0 + 1, s.w - 1)
                let fy = sy - Double(y0), fx = sx - Double(x0)
                func v(_ y: Int, _ xx: Int) -> Double { Double(x[(c * s.h + y) * s.w + xx]) }
                let want = (1 - fy) * ((1 - fx) * v(y0, x0) + fx * v(y0, x1)) + fy * ((1 - fx) * v(y1, x0) + fx * v(y1, x1))
                let got = Double(num[(c * os.h + oy) * os.w + ox]) / (dy * dx)
                XCTAssertEqual(got, want, accuracy: 1e-9, "upsample \(s) x\(p.factorH)x\(p.factorW) at (\(c),\(oy),\(ox))")
            } } }
        }
    }

    // MARK: programs

    static func assertEnginesAgree(_ p: Program, images: [UInt8], count: Int, _ what: String,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let engine = try Engine(program: p, threads: 2)
        let n = engine.inputCount, m = engine.outputCount
        let batch = engine.inferBatch(images, count: count, threads: 2)
        for i in 0..<count {
            let px = Array(images[(i * n)..<((i + 1) * n)])
            let ref = Reference.run(p, pixels: px)
            let tr = engine.trace(pixels: px)
            for t in 0..<p.tensors.count {
                assertBitExact(ref.tensors[t], tr.tensors[t], stage: "\(what) image \(i) tensor \(t)", file: file, line: line)
            }
            assertBitExact(ref.tensors[p.output], Array(batch.logits[(i * m)..<((i + 1) * m)]), stage: "\(what) image \(i) fused logits",
                           file: file, line: line)
        }
    }

    func testSampleUNetAndResNetFastEqualsReference() throws {
        for seed in UInt64(1)...3 {
            for rr in [false, true] {
                let u = SamplePrograms.tinyUNet(seed: seed, randomRounding: rr)
                try u.validate()
                try Self.assertEnginesAgree(u, images: SamplePrograms.images(3, seed: seed), count: 3, "tinyUNet seed \(seed)")
                let r = SamplePrograms.tinyResNet(seed: seed, randomRounding: rr)
                try r.validate()
                try Self.assertEnginesAgree(r, images: SamplePrograms.images(3, seed: seed), count: 3, "tinyResNet seed \(seed)")
            }
        }
        // the samples use their ranges: not every activation of the concatenation or the sums is 0 or saturated
        let u = SamplePrograms.tinyUNet(seed: 1)
        let tr = Reference.run(u, pixels: SamplePrograms.images(1, seed: 1))
        let cat = u.nodes.first { $0.op.kind == .concat }!.output
        let levels = Set(tr.tensors[cat])
        XCTAssertGreaterThan(levels.count, 4, "concat output codes \(levels.sorted())")
        XCTAssertEqual(u.tensors[u.output].shape, TensorShape(c: 2, h: 28, w: 28), "per-pixel logits")
    }

    /// A random DAG: branches from any earlier tensor, crossbars with padding, residual additions,
    /// concatenations of codes and sums, upsamplings (exact and rounded), global pools.
    static func randomGraph(_ rng: inout Xoshiro256StarStar) -> Program {
        var tensors: [TensorDesc] = [], nodes: [Node] = []
        let arrayRows = rng.int(4...64)
        func add(_ t: TensorDesc) -> Int { tensors.append(t); return tensors.count - 1 }
        func ranges() -> [ValueRange] {
            try! Program(tensors: tensors, nodes: nodes, input: 0, output: tensors.count - 1, arrayRows: arrayRows).valueRanges()
        }
        let s0 = TensorShape(c: rng.int(1...3), h: rng.int(2...7), w: rng.int(2...7))
        _ = add(.code(s0, bits: 8))
        func quantizer(_ inputs: [Int], channels: Int) -> (AffineQuantParams, [Int32]) {
            let r = ranges()
            let outBits = rng.int(1...8)
            let t = affineTerms(inputs.map { r[$0].magnitude }, channels: channels, outBits: outBits, &rng)
            return (AffineQuantParams(multiplier: t.m[0], shift: t.shift, offset: t.offset, outBits: outBits, rounding: rng.rule()),
                    inputs.count > 1 ? t.m[1] : [])
        }
        do {
            var (q, _) = quantizer([0], channels: s0.c)
            q.multiplier = q.multiplier.map { Swift.abs($0) }
            let o = add(.code(s0, bits: q.outBits))
            nodes.append(Node(.inputQuant(q), inputs: [0], output: o))
        }
        func codeTensors() -> [Int] { tensors.indices.filter { $0 > 0 && tensors[$0].kind == .code } }
        func crossbar(_ i: Int, cout: Int, k: Int, stride: Int, pad: Int) -> Int {
            let s = tensors[i].shape
            let kk = min(k, s.h + 2 * pad, s.w + 2 * pad), pad = min(pad, kk - 1)
            let wb = rng.int(2...8), half = 1 << (wb - 1)
            let fanIn = s.c * kk * kk
            let w = (0..<(cout * fanIn)).map { _ in Int8(rng.int(-half...(half - 1))) }
            let maxCode = ranges()[i].hi
            var tiles: [TileADC] = [], start = 0
            while start < fanIn {
                let n = rng.int(1...min(arrayRows, fanIn - start)), bits = rng.int(2...16)
                let std = Double(n).squareRoot() * Double(max(maxCode, 1)) * 0.5 * Double(half) * 0.6 + 1
                let (m, sh) = gainMultiplier(Double(1 << (bits - 1)) / (std * (0.3 + 2 * rng.uniform())))
                tiles.append(TileADC(rowStart: start, rowCount: n, multiplier: m, shift: max(-31, min(30, sh)), rounding: rng.rule(), bits: bits))
                start += n
            }
            let p = CrossbarParams(inChannels: s.c, outChannels: cout, kernelH: kk, kernelW: kk, strideH: stride, strideW: stride,
                                   padH: pad, padW: pad, weightBits: wb, weights: w, tiles: tiles)
            let o = add(.sum(p.outputShape(for: s)))
            nodes.append(Node(.crossbar(p), inputs: [i], output: o))
            return o
        }
        func activation(_ i: Int) -> Int {
            let (q, _) = quantizer([i], channels: tensors[i].shape.c)
            let o = add(.code(tensors[i].shape, bits: q.outBits))
            nodes.append(Node(.activation(q), inputs: [i], output: o))
            return o
        }
        for _ in 0..<rng.int(3...8) {
            let codes = codeTensors()
            switch rng.int(below: 5) {
            case 0:
                let i = codes[rng.int(below: codes.count)]
                let c = crossbar(i, cout: rng.int(1...6), k: rng.int(1...3), stride: rng.int(1...2), pad: rng.int(0...1))
                if rng.int(below: 3) > 0 { _ = activation(c) }
            case 1:
                // add: a tensor and a same-shape partner (itself, an existing one, or a 1x1 crossbar of a code tensor)
                let a = tensors.indices.filter { $0 > 0 }.randomElement(using: &rng)!
                let sa = tensors[a].shape
                var partners = tensors.indices.filter { $0 > 0 && tensors[$0].shape == sa }
                if let src = codes.first(where: { tensors[$0].shape.h == sa.h && tensors[$0].shape.w == sa.w }), rng.bool() {
                    partners.append(crossbar(src, cout: sa.c, k: 1, stride: 1, pad: 0))
                }
                let b = partners.randomElement(using: &rng)!
                let (q, m2) = quantizer([a, b], channels: sa.c)
                let o = add(.code(sa, bits: q.outBits))
                nodes.append(Node(.add(AddParams(first: q, secondMultiplier: m2)), inputs: [a, b], output: o))
            case 2:
                let a = tensors.indices.filter { $0 > 0 }.randomElement(using: &rng)!
                let sa = tensors[a].shape
                let same = tensors.indices.filter { $0 > 0 && tensors[$0].shape.h == sa.h && tensors[$0].shape.w == sa.w }
                let ins = [a] + (0..<rng.int(1...3)).map { _ in same.randomElement(using: &rng)! }
                let r = ranges()
                let outBits = rng.int(1...8)
                var m: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
                for t in ins {
                    let p = affineTerms([r[t].magnitude], channels: tensors[t].shape.c, outBits: outBits, &rng)
                    m += p.m[0]; sh += p.shift; off += p.offset
                }
                let c = ins.reduce(0) { $0 + tensors[$1].shape.c }
                let o = add(.code(TensorShape(c: c, h: sa.h, w: sa.w), bits: outBits))
                nodes.append(Node(.concat(ConcatParams(quant: AffineQuantParams(multiplier: m, shift: sh, offset: off, outBits: outBits,
                                                                                rounding: rng.rule()))), inputs: ins, output: o))
            case 3:
                let i = codes[rng.int(below: codes.count)]
                let p = UpsampleParams(factorH: rng.int(1...3), factorW: rng.int(1...3), rounding: rng.rule())
                let os = p.outputShape(for: tensors[i].shape)
                let o = add(rng.bool() ? .sum(os) : .code(os, bits: tensors[i].bits))
                nodes.append(Node(.upsampleBilinear(p), inputs: [i], output: o))
            default:
                let i = tensors.indices.filter { $0 > 0 }.randomElement(using: &rng)!
                let t = tensors[i]
                let os = TensorShape(c: t.shape.c, h: 1, w: 1)
                // a code input may keep the exact sum (a sum output) when it fits Int32
                let o = add(t.kind == .code && rng.bool() ? .sum(os) : TensorDesc(shape: os, kind: t.kind, bits: t.bits))
                nodes.append(Node(.globalAvgPool(GlobalAvgPoolParams(rounding: rng.rule())), inputs: [i], output: o))
            }
        }
        return Program(tensors: tensors, nodes: nodes, input: 0, output: tensors.count - 1, arrayRows: arrayRows)
    }

    func testRandomGraphsFastEqualsReference() throws {
        var rng = Xoshiro256StarStar(seed: 606)
        var kinds: [OpKind: Int] = [:], multiReaders = 0
        for case_ in 0..<300 {
            let p = Self.randomGraph(&rng)
            do { try p.validate() } catch { XCTFail("random graph \(case_) should be valid: \(error)"); continue }
            for n in p.nodes { kinds[n.op.kind, default: 0] += 1 }
            var readers = [Int](repeating: 0, count: p.tensors.count)
            for n in p.nodes { for i in n.inputs { readers[i] += 1 } }
            multiReaders += readers.filter { $0 > 1 }.count
            let n = p.tensors[0].shape.count
            let images = (0..<(2 * n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try Self.assertEnginesAgree(p, images: images, count: 2, "random graph \(case_)")
        }
        for k in [OpKind.add, .concat, .upsampleBilinear, .globalAvgPool, .crossbar, .activation] {
            XCTAssertGreaterThan(kinds[k, default: 0], 50, "\(k.name) nodes in the random graphs")
        }
        XCTAssertGreaterThan(multiReaders, 100, "tensors read by more than one node")
    }

    // MARK: validation

    /// A valid base graph: pixels -> inputQuant a -> crossbar 1x1 s -> add(s, a) -> concat(a, add) -> upsample -> pool.
    static func base() -> Program {
        let s = TensorShape(c: 2, h: 3, w: 3)
        let q = AffineQuantParams(channels: 2, multiplier: 1, shift: 4, offset: 0, outBits: 4, rounding: .floor)
        let x = CrossbarParams(inChannels: 2, outChannels: 2, kernelH: 1, kernelW: 1, weightBits: 4, weights: [1, -1, 2, 3],
                               tiles: CrossbarParams.uniformTiles(fanIn: 2, arrayRows: 8, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 8))
        let a = AddParams(first: q, secondMultiplier: [1, 1])
        let cq = AffineQuantParams(channels: 4, multiplier: 1, shift: 0, offset: 0, outBits: 4, rounding: .floor)
        return Program(tensors: [.code(s, bits: 8), .code(s, bits: 4), .sum(s), .code(s, bits: 4), .code(TensorShape(c: 4, h: 3, w: 3), bits: 4),
                                 .code(TensorShape(c: 4, h: 6, w: 6), bits: 4), .code(TensorShape(c: 4, h: 1, w: 1), bits: 4)],
                       nodes: [Node(.inputQuant(q), inputs: [0], output: 1), Node(.crossbar(x), inputs: [1], output: 2),
                               Node(.add(a), inputs: [2, 1], output: 3), Node(.concat(ConcatParams(quant: cq)), inputs: [1, 3], output: 4),
                               Node(.upsampleBilinear(UpsampleParams(factorH: 2, factorW: 2, rounding: .halfUp)), inputs: [4], output: 5),
                               Node(.globalAvgPool(GlobalAvgPoolParams(rounding: .halfToEven)), inputs: [5], output: 6)],
                       input: 0, output: 6, arrayRows: 8)
    }

    func assertRefused(_ p: Program, node: Int, _ kind: ProgramError.Kind, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        do { try p.validate(); XCTFail("accepted; expected \(kind) at node \(node)", file: file, line: line) } catch {
            XCTAssertEqual(error.node, node, "\(error)", file: file, line: line)
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            XCTAssert(error.message.contains(text), "'\(error.message)' does not say '\(text)'", file: file, line: line)
        }
    }

    func testMalformedGraphsRefusedWithTheNodeNamed() throws {
        try Self.base().validate()
        var p = Self.base()
        p.nodes[2].inputs = [2, 3]                       // reads its own output: a cycle
        assertRefused(p, node: 2, .graph, "cycle")
        p = Self.base()
        p.nodes[1].inputs = [4]                          // reads a tensor produced later
        assertRefused(p, node: 1, .graph, "later node")
        p = Self.base()
        p.nodes.swapAt(2, 3)                             // concat before the add it reads
        assertRefused(p, node: 2, .graph, "input tensor 3 undefined")
        p = Self.base()
        p.nodes[2].inputs = [2]                          // add with one input
        assertRefused(p, node: 2, .graph, "add needs 2 inputs")
        p = Self.base()
        p.nodes[3].inputs = [1, 3] + Array(repeating: 1, count: 15)   // 17 inputs
        assertRefused(p, node: 3, .graph, "concat needs 2...16 inputs")
        p = Self.base()
        p.nodes[2].inputs = [2, 0]                       // add reads the (2,3,3) pixels: same shape, allowed
        try p.validate()
        p = Self.base()
        p.tensors.append(.code(TensorShape(c: 2, h: 2, w: 3), bits: 4))
        p.nodes.insert(Node(.maxPool(MaxPoolParams(kh: 2, kw: 1, sh: 1, sw: 1)), inputs: [1], output: 7), at: 1)
        p.nodes[3].inputs = [2, 7]                       // add of (2,3,3) and (2,2,3)
        assertRefused(p, node: 3, .shapeMismatch, "differ in shape")
        p = Self.base()
        p.tensors.append(.code(TensorShape(c: 2, h: 2, w: 3), bits: 4))
        p.nodes.insert(Node(.maxPool(MaxPoolParams(kh: 2, kw: 1, sh: 1, sw: 1)), inputs: [1], output: 7), at: 1)
        p.nodes[4].inputs = [7, 3]                       // concat of (2,2,3) and (2,3,3)
        assertRefused(p, node: 4, .shapeMismatch, "heights and widths must agree")
        for f in [0, 17] {
            p = Self.base()
            p.nodes[4] = Node(.upsampleBilinear(UpsampleParams(factorH: 2, factorW: f, rounding: .floor)), inputs: [4], output: 5)
            assertRefused(p, node: 4, .parameterOutOfRange, "not in 1...16")
        }
        p = Self.base()
        p.tensors[5] = .sum(TensorShape(c: 4, h: 6, w: 6))   // exact form: fine
        p.tensors[6] = .sum(TensorShape(c: 4, h: 1, w: 1))
        try p.validate()
        p = Self.base()
        p.tensors[6] = .code(TensorShape(c: 4, h: 1, w: 1), bits: 3)  // a pool keeps its input's bits
        assertRefused(p, node: 5, .shapeMismatch, "global average pool output")
        p = Self.base()
        if case .add(var a) = p.nodes[2].op {
            a.secondMultiplier = [Int32.max, 1]
            a.first.offset = [Int64(1) << 62, 0]                   // |B| alone at the bound: the products exceed it
            p.nodes[2] = Node(.add(a), inputs: [2, 1], output: 3)
        }
        assertRefused(p, node: 2, .accumulatorOverflow, "channel 0")
    }
}
