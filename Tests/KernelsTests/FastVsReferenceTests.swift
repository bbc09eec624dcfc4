// Fast kernels == reference kernels, element by element, on >= 1000 random cases per stage,
// with deliberate saturation at the edges (and a check that saturation actually happened).

import XCTest
import CrossbarLayout
import FixedPoint
import Randomness
@testable import Kernels
#if arch(x86_64)
@testable import CrossbarBlocksAVX2
#endif

/// Whether this CPU runs the AVX2 kernel set (the u8 x i8 kernel and the vector ADC).
let cpuRunsAVX2Set = IntDispatch.available.contains(.avx2)

final class FastVsReferenceTests: XCTestCase {

    func testFastRoundingShiftEqualsFixedPoint() {
        var rng = Xoshiro256StarStar(seed: 11)
        var ties = 0
        for i in 0..<20_000 {
            let s = rng.int(0...62)
            let bound = Program.affineBound
            var x = rng.int64(-bound...bound)
            if i % 3 == 0, s > 0 {  // exact ties and neighbours
                x = (x >> Int64(s)) << Int64(s) + (Int64(1) << Int64(s - 1)) + Int64(rng.int(-1...1))
                x = max(-bound, min(bound, x))
            }
            if i % 7 == 0 { x = Int64(rng.int(-40...40)) }
            for rule in RoundingRule.allCases {
                let e = roundingShiftRight(x, s, rule)
                let g = RoundingConst(shift: s, rule: rule).apply(x)
                if e != g { XCTFail("round \(rule) x=\(x) s=\(s): expected \(e), got \(g)"); return }
            }
            if s > 0 && x & ((Int64(1) << Int64(s)) - 1) == Int64(1) << Int64(s - 1) { ties += 1 }
        }
        XCTAssertGreaterThan(ties, 1000, "tie cases exercised")
    }

    func testAffineQuant() {
        var rng = Xoshiro256StarStar(seed: 21)
        var lowClamp = 0, highClamp = 0, inside = 0
        for case_ in 0..<1200 {
            let s = TensorShape(c: rng.int(1...9), h: rng.int(1...5), w: rng.int(1...5))
            let outBits = rng.int(1...8)
            let inMag = Int64(1) << Int64(rng.int(1...31))
            let shiftBase = rng.int(0...40)
            var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<s.c {
                let shift = min(62, max(0, shiftBase + rng.int(-3...3)))
                // multiplier scaled so that |in * M| / 2^shift spans a few output ranges
                let target = Double(1 << outBits) * 3.0 * Double(Int64(1) << Int64(shift)) / Double(inMag)
                let m = max(-Double(Int32.max), min(Double(Int32.max), target * (rng.uniform() * 2 - 0.7)))
                mul.append(Int32(m))
                sh.append(Int32(shift))
                let offMax = Double(1 << outBits) * Double(Int64(1) << Int64(shift))
                off.append(Int64(offMax * (rng.uniform() - 0.3)))
            }
            let p = AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: outBits, rounding: rng.rule())
            var x = [Int32](repeating: 0, count: s.count)
            for i in 0..<x.count { x[i] = Int32(rng.int64(-inMag...(inMag - 1))) }
            let expected = Reference.affineQuant(x, shape: s, p)
            let hwc = toHWC(x, s)
            var got = [Int32](repeating: -7, count: s.count)
            hwc.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                Fast.affineQuant(src: src.baseAddress!, dst: dst.baseAddress!, pixels: s.h * s.w, channels: s.c, plan: AffinePlan(p))
            } }
            assertBitExact(expected, toCHW(got, s), stage: "affine case \(case_)")
            let hi = Int32((1 << outBits) - 1)
            for v in expected { if v == 0 { lowClamp += 1 } else if v == hi { highClamp += 1 } else { inside += 1 } }
        }
        XCTAssertGreaterThan(lowClamp, 1000, "lower clamp (ReLU) exercised")
        XCTAssertGreaterThan(highClamp, 1000, "upper clamp exercised")
        XCTAssertGreaterThan(inside, 1000, "unsaturated values exercised")
    }

    /// The threshold form of the affine quantizer (non-negative multipliers, <= 4 output bits,
    /// channel counts dividing 8 or multiples of 8) == the reference, Int32 and Int16 inputs
    /// spanning the declared input range (its ends included), lengths with a scalar tail.
    func testAffineQuantThresholds() {
        var rng = Xoshiro256StarStar(seed: 22)
        var lowClamp = 0, highClamp = 0, inside = 0, formed = 0
        for case_ in 0..<1200 {
            let c = [1, 2, 4, 8, 16, 24, 3][rng.int(0...6)]
            let s = TensorShape(c: c, h: rng.int(1...6), w: rng.int(1...7))
            let outBits = rng.int(1...4)
            let small = case_ % 2 == 0   // Int16 codes (e.g. pixels) or Int32 sums
            let inMag = small ? Int64(rng.int(1...255)) : Int64(1) << Int64(rng.int(1...30))
            let range = ValueRange(small ? 0 : -inMag, inMag)
            let shiftBase = rng.int(0...40)
            var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<c {
                let shift = min(62, max(0, shiftBase + rng.int(-3...3)))
                let target = Double(1 << outBits) * 3.0 * Double(Int64(1) << Int64(shift)) / Double(inMag)
                let m = min(Double(Int32.max), target * rng.uniform() * 1.3) * (rng.int(below: 20) == 0 ? 0 : 1)
                mul.append(Int32(m))
                sh.append(Int32(shift))
                off.append(Int64(Double(1 << outBits) * Double(Int64(1) << Int64(shift)) * (rng.uniform() - 0.3)))
            }
            let p = AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: outBits, rounding: rng.rule())
            let plan = AffinePlan(p, inputRange: range, channels: c)
            XCTAssertEqual(plan.thresholdRow > 0, c != 3, "threshold form eligibility, case \(case_)")
            guard plan.thresholdRow > 0 else { continue }
            formed += 1
            var x = [Int32](repeating: 0, count: s.count)
            for i in 0..<x.count {
                let u = rng.int(0...9)
                x[i] = u == 0 ? Int32(range.lo) : (u == 1 ? Int32(range.hi) : Int32(rng.int64(range.lo...range.hi)))
            }
            let expected = Reference.affineQuant(x, shape: s, p)
            let hwc = toHWC(x, s)
            var got = [Int16](repeating: -7, count: s.count)
            if small {
                hwc.map { Int16($0) }.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                    Fast.affineQuantThresholds(src: src.baseAddress!, dst: dst.baseAddress!, count: s.count, plan: plan)
                } }
            } else {
                hwc.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                    Fast.affineQuantThresholds(src: src.baseAddress!, dst: dst.baseAddress!, count: s.count, plan: plan)
                } }
            }
            assertBitExact(expected, toCHW(got.map { Int32($0) }, s), stage: "affine thresholds case \(case_)")
            let hi = Int32((1 << outBits) - 1)
            for v in expected { if v == 0 { lowClamp += 1 } else if v == hi { highClamp += 1 } else { inside += 1 } }
        }
        XCTAssertGreaterThan(formed, 1000)
        XCTAssertGreaterThan(lowClamp, 1000); XCTAssertGreaterThan(highClamp, 1000); XCTAssertGreaterThan(inside, 1000)
        // negative multipliers or too many levels: no threshold form
        let neg = AffineQuantParams(multiplier: [-1], shift: [0], offset: [0], outBits: 4, rounding: .floor)
        XCTAssertEqual(AffinePlan(neg, inputRange: ValueRange(0, 255), channels: 1).thresholdRow, 0)
        let wide = AffineQuantParams(multiplier: [1], shift: [0], offset: [0], outBits: 5, rounding: .floor)
        XCTAssertEqual(AffinePlan(wide, inputRange: ValueRange(0, 255), channels: 1).thresholdRow, 0)
    }

    /// 2x2 / stride 2 max-pool of sums fused with a threshold-form activation == the reference
    /// pool then activation (channels 8, 16, 24; odd and even map sizes; the pooled range ends).
    func testMaxPoolThresholds() {
        var rng = Xoshiro256StarStar(seed: 23)
        var low = 0, high = 0, mid = 0
        for case_ in 0..<1000 {
            let c = 8 * rng.int(1...3)
            let s = TensorShape(c: c, h: rng.int(2...11), w: rng.int(2...11))
            let outBits = rng.int(1...4)
            let mag = Int64(1) << Int64(rng.int(1...20))
            let range = ValueRange(-mag, mag)
            var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<c {
                let shift = rng.int(0...30)
                let target = Double(1 << outBits) * 2.0 * Double(Int64(1) << Int64(shift)) / Double(mag)
                mul.append(Int32(min(Double(Int32.max), target * rng.uniform() * 1.5)))
                sh.append(Int32(shift))
                off.append(Int64(Double(1 << outBits) * Double(Int64(1) << Int64(shift)) * (rng.uniform() - 0.3)))
            }
            let act = AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: outBits, rounding: rng.rule())
            let plan = AffinePlan(act, inputRange: range, channels: c)
            XCTAssertEqual(plan.thresholdRow, c)
            var x = [Int32](repeating: 0, count: s.count)
            for i in 0..<x.count { let u = rng.int(0...19); x[i] = u == 0 ? Int32(-mag) : (u == 1 ? Int32(mag) : Int32(rng.int64(-mag...mag))) }
            let pool = MaxPoolParams(kh: 2, kw: 2, sh: 2, sw: 2)
            let pooled = Reference.maxPool(x, shape: s, pool)
            let os = TensorShape(c: c, h: (s.h - 2) / 2 + 1, w: (s.w - 2) / 2 + 1)
            let expected = Reference.affineQuant(pooled, shape: os, act)
            var got = [Int16](repeating: -1, count: os.count)
            toHWC(x, s).withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                Fast.maxPool2x2Thresholds(src: src.baseAddress!, dst: dst.baseAddress!, shape: s, plan: plan)
            } }
            assertBitExact(expected, toCHW(got.map { Int32($0) }, os), stage: "maxPool+thresholds case \(case_)")
            for v in expected { if v == 0 { low += 1 } else if v == (1 << outBits) - 1 { high += 1 } else { mid += 1 } }
        }
        XCTAssertGreaterThan(low, 1000); XCTAssertGreaterThan(high, 1000); XCTAssertGreaterThan(mid, 1000)
    }

    func testMaxPool() {
        var rng = Xoshiro256StarStar(seed: 31)
        for case_ in 0..<1000 {
            let p = MaxPoolParams(kh: rng.int(1...3), kw: rng.int(1...3), sh: rng.int(1...3), sw: rng.int(1...3))
            let s = TensorShape(c: rng.int(1...6), h: rng.int(p.kh...(p.kh + 5)), w: rng.int(p.kw...(p.kw + 5)))
            var x = [Int32](repeating: 0, count: s.count)
            let wide = rng.bool()
            for i in 0..<x.count { x[i] = wide ? Int32(truncatingIfNeeded: rng.next()) : Int32(rng.int(0...15)) }
            let expected = Reference.maxPool(x, shape: s, p)
            let os = TensorShape(c: s.c, h: (s.h - p.kh) / p.sh + 1, w: (s.w - p.kw) / p.sw + 1)
            let hwc = toHWC(x, s)
            var got = [Int32](repeating: 0, count: os.count)
            hwc.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                Fast.maxPool(src: src.baseAddress!, dst: dst.baseAddress!, shape: s, p)
            } }
            assertBitExact(expected, toCHW(got, os), stage: "maxPool case \(case_)")
        }
    }

    /// The specialised 2x2 / stride 2 max-pool (one channel and several), odd and even sizes.
    func testMaxPool2x2() {
        var rng = Xoshiro256StarStar(seed: 32)
        let p = MaxPoolParams(kh: 2, kw: 2, sh: 2, sw: 2)
        for case_ in 0..<1000 {
            let s = TensorShape(c: case_ % 3 == 0 ? 1 : rng.int(1...20), h: rng.int(2...29), w: rng.int(2...29))
            var x = [Int32](repeating: 0, count: s.count)
            let wide = rng.bool()
            for i in 0..<x.count { x[i] = wide ? Int32(truncatingIfNeeded: rng.next()) : Int32(rng.int(0...255)) }
            let expected = Reference.maxPool(x, shape: s, p)
            let os = TensorShape(c: s.c, h: (s.h - 2) / 2 + 1, w: (s.w - 2) / 2 + 1)
            let hwc = toHWC(x, s)
            var got = [Int32](repeating: 0, count: os.count)
            hwc.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                Fast.maxPool(src: src.baseAddress!, dst: dst.baseAddress!, shape: s, p)
            } }
            assertBitExact(expected, toCHW(got, os), stage: "maxPool 2x2 case \(case_)")
            // Int16 codes (the engine's code arena)
            var got16 = [Int16](repeating: 0, count: os.count)
            hwc.map { Int16(truncatingIfNeeded: $0) }.withUnsafeBufferPointer { src in got16.withUnsafeMutableBufferPointer { dst in
                Fast.maxPool(src: src.baseAddress!, dst: dst.baseAddress!, shape: s, p)
            } }
            let expected16 = Reference.maxPool(x.map { Int32(Int16(truncatingIfNeeded: $0)) }, shape: s, p)
            assertBitExact(expected16, toCHW(got16.map { Int32($0) }, os), stage: "maxPool 2x2 Int16 case \(case_)")
        }
    }

    /// A random crossbar layer: geometry, tiles, ADC configurations chosen so some tiles saturate.
    static func randomCrossbar(_ rng: inout Xoshiro256StarStar) -> (CrossbarParams, TensorShape, Int) {
        let kh = rng.int(1...4), kw = rng.int(1...4)
        let cin = rng.int(1...24), cout = rng.int(1...40)
        let sh = rng.int(1...3), sw = rng.int(1...3)
        let ph = rng.int(0...(kh - 1)), pw = rng.int(0...(kw - 1))
        let s = TensorShape(c: cin, h: rng.int(max(1, kh - 2 * ph)...(kh + 4)), w: rng.int(max(1, kw - 2 * pw)...(kw + 4)))
        let codeBits = rng.int(1...8), wb = rng.int(2...8)
        let fanIn = cin * kh * kw
        let half = 1 << (wb - 1)
        var w = [Int8](repeating: 0, count: cout * fanIn)
        for i in 0..<w.count { w[i] = Int8(rng.int(-half...(half - 1))) }
        // random tile boundaries, each tile <= arrayRows rows
        let arrayRows = rng.int(1...max(1, fanIn))
        var tiles: [TileADC] = []
        var start = 0
        while start < fanIn {
            let n = rng.int(1...min(arrayRows, fanIn - start))
            let bits = rng.int(2...16)
            let std = Double(n).squareRoot() * Double((1 << codeBits) - 1) * 0.6 * Double(half) * 0.6 + 1
            // gain so that the ADC range covers 0.3...3 standard deviations: some saturate
            let g = Double(1 << (bits - 1)) / (std * (0.3 + 2.7 * rng.uniform()))
            let (m, sft) = gainMultiplier(max(g, 1e-9))
            tiles.append(TileADC(rowStart: start, rowCount: n, multiplier: m, shift: max(-31, min(30, sft)),
                                 rounding: rng.rule(), bits: bits))
            start += n
        }
        let p = CrossbarParams(inChannels: cin, outChannels: cout, kernelH: kh, kernelW: kw, strideH: sh, strideW: sw,
                               padH: ph, padW: pw, weightBits: wb, weights: w, tiles: tiles)
        return (p, s, codeBits)
    }

    func testCrossbar() {
        var rng = Xoshiro256StarStar(seed: 41)
        var saturated = 0, total = 0, chunked = 0, multiGroup = 0, partialBlock = 0, fullBlock = 0
        var u8Cases = 0, u8Chunked = 0, u8PartialQuad = 0, vectorADCCases = 0
        for case_ in 0..<1000 {
            let (p, s, codeBits) = Self.randomCrossbar(&rng)
            var x = [Int32](repeating: 0, count: s.count)
            for i in 0..<x.count { x[i] = Int32(rng.int(0...((1 << codeBits) - 1))) }
            var expTiles: [[Int32]] = []
            let expected = Reference.crossbar(x, shape: s, p, tileADC: &expTiles)
            let os = p.outputShape(for: s)
            // odd cases: the geometry knows the real code range (longer Int16 chunks, as the engine does)
            let geo = CrossbarGeometry(p, inShape: s, maxCode: case_ % 2 == 1 ? Int64((1 << codeBits) - 1) : 255)
            // the pair kernel in every kernel set's build
            let pairSets = IntDispatch.available.map { Int16PairKernel(geo, p, set: $0) }
            let pairs = pairSets[0]
            if (0..<geo.tileCount).contains(where: { pairs.tilePairs[$0] > pairs.chunkRows }) && pairs.chunkRows > 1 { chunked += 1 }
            if geo.groups > 1 { multiGroup += 1 }
            // u8 x i8 kernel (kernel set avx2): eligible exactly when a pair of products fits Int16
            let pairBound = 2 * Int(geo.maxCode) * geo.maxAbsWeight
            let quads = cpuRunsAVX2Set ? U8QuadKernel(geo, p, set: .avx2) : nil
            XCTAssertNil(U8QuadKernel(geo, p, set: .portable))
            XCTAssertEqual(quads != nil, cpuRunsAVX2Set && pairBound <= Int(Int16.max), "u8 eligibility, case \(case_)")
            XCTAssertEqual(Fast.crossbarKernel(p, inShape: s, maxCode: geo.maxCode, set: IntDispatch.available.last!).name,
                           quads?.name ?? pairs.name, "the chosen kernel, case \(case_)")
            if let quads {
                u8Cases += 1
                // several runs between flushes in some tile's schedule
                if (0..<geo.tileCount).contains(where: { t in (0..<geo.groups).contains { g in
                    quads.flush[quads.flushStart[t * geo.groups + g] + 1] != U8QuadKernel.sentinel } }) { u8Chunked += 1 }
                if p.inChannels % 4 != 0 || p.tiles.count > 1 { u8PartialQuad += 1 }
            }
            if geo.vectorADC && cpuRunsAVX2Set { vectorADCCases += 1 }
            if os.h * os.w % 4 != 0 { partialBlock += 1 }
            if os.h * os.w >= 4 { fullBlock += 1 }
            let hwc = toHWC(x, s).map { Int16($0) }
            // every variant that applies, each against the reference
            var variants: [any CrossbarSumsKernel] = pairSets
            if let quads { variants.append(quads) }
            for kernel in variants {
                var got = [Int32](repeating: 0, count: os.count)
                var tileBuf = [Int32](repeating: 0, count: p.tiles.count * os.count)
                let patch = AlignedPatch(kernel.scratchCount)
                hwc.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                    tileBuf.withUnsafeMutableBufferPointer { tb in
                        kernel.sums(src: src.baseAddress!, dst: dst.baseAddress!, scratch: patch.pointer, tileOut: tb.baseAddress!)
                    }
                } }
                for (t, tile) in p.tiles.enumerated() {
                    let gotTile = toCHW(Array(tileBuf[(t * os.count)..<((t + 1) * os.count)]), os)
                    assertBitExact(expTiles[t], gotTile, stage: "crossbar case \(case_) \(kernel.name) (\(Self.set(kernel))) tile \(t) ADC")
                    let hi = Int32((1 << (tile.bits - 1)) - 1), lo = -hi - 1
                    if kernel === pairs { for v in expTiles[t] { total += 1; if v == hi || v == lo { saturated += 1 } } }
                }
                assertBitExact(expected, toCHW(got, os), stage: "crossbar case \(case_) \(kernel.name) (\(Self.set(kernel))) digital sum")
            }
        }
        XCTAssertGreaterThan(saturated, total / 50, "ADC saturation exercised (\(saturated) of \(total))")
        // blocked kernel paths: several Int16 chunks per tile, several output groups, 4-pixel
        // blocks and single-pixel tails
        XCTAssertGreaterThan(chunked, 100, "Int16 chunk flushes exercised")
        XCTAssertGreaterThan(multiGroup, 200, "more than 16 outputs")
        XCTAssertGreaterThan(partialBlock, 200); XCTAssertGreaterThan(fullBlock, 500)
        XCTAssertLessThan(saturated, total / 2, "most ADC codes unsaturated (\(saturated) of \(total))")
        if cpuRunsAVX2Set {
            XCTAssertGreaterThan(vectorADCCases, 200, "vector ADC exercised")
            // u8 x i8 kernel: several Int16 chunks per tile, segments not a multiple of 4 rows
            XCTAssertGreaterThan(u8Cases, 300, "u8 x i8 kernel exercised")
            XCTAssertGreaterThan(u8Chunked, 50, "u8 Int16 chunk flushes exercised")
            XCTAssertGreaterThan(u8PartialQuad, 200, "partial quads exercised")
        } else {
            XCTAssertEqual(u8Cases, 0)
        }
    }

    /// The kernel set of a kernel variant, for failure messages.
    static func set(_ k: any CrossbarKernel) -> String {
        if let pairs = k as? Int16PairKernel { return pairs.set.rawValue }
        if let narrow = k as? NarrowFusedKernel { return narrow.set.rawValue }
        return k is U8QuadKernel ? "avx2" : "portable"
    }

    #if arch(x86_64)
    /// The vector (Double) ADC == the reference ADC: random gains with a right shift <= 52 and
    /// accumulators with |acc * multiplier| < 2^52, every rounding rule, ties (multipliers
    /// `odd * 2^(s-1)` with odd accumulators), saturation.
    func testVectorADC() throws {
        try XCTSkipUnless(cpuRunsAVX2Set, "this CPU does not run the AVX2 kernel set")
        var rng = Xoshiro256StarStar(seed: 47)
        var ties = 0, saturated = 0, total = 0
        for case_ in 0..<3000 {
            let shift = Int32(rng.int(-21...30)), s = 31 - Int(shift)
            let rule = rng.rule(), bits = rng.int(2...16)
            var m = Int32(rng.int(0...Int(Int32.max)))
            if case_ % 3 == 0 && s - 1 <= 28 { m = Int32(1 << (s - 1)) * Int32(rng.int(0...3) * 2 + 1) }
            if case_ % 50 == 1 { m = 0 }
            let tile = TileADC(rowStart: 0, rowCount: 1, multiplier: m, shift: shift, rounding: rule, bits: bits)
            let accMax = m == 0 ? Int(Int32.max) : min(Int(Int32.max), ((1 << 52) - 1) / Int(m))
            var a = SIMD4<Int32>()
            for k in 0..<4 {
                let mag = min(accMax, 1 << rng.int(0...31))
                a[k] = Int32(rng.int(-mag...mag))
                if case_ % 3 == 0 && rng.bool() { a[k] |= 1 }   // odd: a tie with m = odd * 2^(s-1)
            }
            let scale = Double(m) * Double(sign: .plus, exponent: -s, significand: 1)
            let lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1
            let got = CrossbarBlocksAVX2.adcVector4(a, SIMD4(repeating: scale), rule, SIMD4(repeating: Double(lo)), SIMD4(repeating: Double(hi)))
            for k in 0..<4 {
                let exp = Reference.adc(a[k], tile)
                XCTAssertEqual(got[k], exp, "case \(case_): acc \(a[k]) m \(m) shift \(shift) rule \(rule) bits \(bits)")
                let x = Int64(a[k]) * Int64(m)
                if x & ((Int64(1) << Int64(s)) - 1) == Int64(1) << Int64(s - 1) { ties += 1 }
                if exp == lo || exp == hi { saturated += 1 }
                total += 1
            }
        }
        XCTAssertGreaterThan(ties, 500, "ties exercised")
        XCTAssertGreaterThan(saturated, total / 20); XCTAssertLessThan(saturated, total * 3 / 4)
    }
    #endif

    /// Extremes: full-scale 8-bit codes with most-negative 8-bit weights over 512 rows.
    func testCrossbarExtremeCodes() {
        // (maxCode 15 / 1: the blocked kernel sums 17 / 255 full-scale products in an Int16 lane)
        // (maxCode 127: the u8 x i8 kernel's pair of products is 2 * 127 * 128 = 32512, one step
        // per Int16 chunk; maxCode 128: 32768 does not fit, the Int16 kernel runs)
        for (code, wt, maxCode) in [(255, Int8.min, 255), (255, Int8.max, 255), (1, Int8.min, 255),
                                    (15, Int8.min, 15), (15, Int8.max, 15), (1, Int8.min, 1), (1, Int8.max, 1),
                                    (127, Int8.min, 127), (127, Int8.max, 127), (128, Int8.min, 128)] as [(Int, Int8, Int64)] {
            let fanIn = 1024
            let tiles = CrossbarParams.uniformTiles(fanIn: fanIn, arrayRows: 512, multiplier: Int32.max, shift: 30,
                                                    rounding: .halfToEven, bits: 16)
            let p = CrossbarParams(inChannels: fanIn, outChannels: 3, kernelH: 1, kernelW: 1, weightBits: 8,
                                   weights: [Int8](repeating: wt, count: 3 * fanIn), tiles: tiles)
            let s = TensorShape(c: fanIn, h: 1, w: 1)
            let x = [Int32](repeating: Int32(code), count: fanIn)
            var t: [[Int32]] = []
            let expected = Reference.crossbar(x, shape: s, p, tileADC: &t)
            let geo = CrossbarGeometry(p, inShape: s, maxCode: maxCode)
            let quads = cpuRunsAVX2Set ? U8QuadKernel(geo, p, set: .avx2) : nil
            XCTAssertEqual(quads != nil, cpuRunsAVX2Set && maxCode <= 127)
            var variants: [any CrossbarSumsKernel] = IntDispatch.available.map { Int16PairKernel(geo, p, set: $0) }
            if let quads { variants.append(quads) }
            for kernel in variants {
                var got = [Int32](repeating: 0, count: 3)
                let patch = AlignedPatch(kernel.scratchCount)
                x.map { Int16($0) }.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                    kernel.sums(src: src.baseAddress!, dst: dst.baseAddress!, scratch: patch.pointer, tileOut: nil)
                } }
                assertBitExact(expected, got, stage: "extreme code \(code) weight \(wt), \(kernel.name) (\(Self.set(kernel)))")
            }
            // acc = 512 * code * wt, gain ~ 2^30 * ... saturates at 16 bits
            XCTAssertEqual(t[0][0], wt < 0 ? -32768 : 32767)
        }
    }

    /// The narrow fused kernel for 64 outputs at a time (`pad` a multiple of 64: 49 to 64
    /// and 113 to 128 outputs, padding lanes, map tails of one pixel, padded windows) == the
    /// reference.
    func testFusedNarrow64() throws {
        var rng = Xoshiro256StarStar(seed: 44)
        var cases = 0, partialLanes = 0, oddPixels = 0, padded = 0
        for case_ in 0..<1000 {
            let kh = rng.int(1...3), kw = rng.int(1...3), cin = rng.int(1...3)
            let cout = [64, 128, rng.int(49...64), rng.int(113...128)][rng.int(0...3)]
            let ph = rng.int(0...(kh - 1)), pw = rng.int(0...(kw - 1))
            let s = TensorShape(c: cin, h: rng.int(max(1, kh - 2 * ph)...(kh + 6)), w: rng.int(max(1, kw - 2 * pw)...(kw + 6)))
            let codeBits = rng.int(1...4), wb = rng.int(2...8)
            let half = 1 << (wb - 1)
            let fanIn = cin * kh * kw
            let w = (0..<(cout * fanIn)).map { _ in rng.int(0...1) == 0 ? 0 : Int8(rng.int(-half...(half - 1))) }
            let bits = rng.int(6...14)
            let std = Double(fanIn).squareRoot() * Double((1 << codeBits) - 1) * 0.4 * Double(half) + 1
            let (m, sft) = gainMultiplier(Double(1 << (bits - 1)) / (std * (0.3 + 2.7 * rng.uniform())))
            let tile = TileADC(rowStart: 0, rowCount: fanIn, multiplier: m, shift: max(-31, min(30, sft)), rounding: rng.rule(), bits: bits)
            let p = CrossbarParams(inChannels: cin, outChannels: cout, kernelH: kh, kernelW: kw, strideH: rng.int(1...2), strideW: rng.int(1...2),
                                   padH: ph, padW: pw, weightBits: wb, weights: w, tiles: [tile])
            let outBits = rng.int(1...4)
            var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<cout {
                let shift = rng.int(0...30)
                let real = Double(1 << outBits) / Double(1 << (bits - 1)) * (0.2 + 3.0 * rng.uniform())
                mul.append(Int32(min(Double(Int32.max), real * Double(Int64(1) << Int64(shift)))))
                sh.append(Int32(shift))
                off.append(Int64((rng.uniform() - 0.3) * Double(1 << outBits) * Double(Int64(1) << Int64(shift))))
            }
            let act = AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: outBits, rounding: rng.rule())
            let maxCode = Int64((1 << codeBits) - 1)
            guard CrossbarGeometry.canFuse(p, act, maxCode: maxCode),
                  let narrow = NarrowFusedKernel(CrossbarGeometry(p, inShape: s, fusing: act, maxCode: maxCode), p) else { continue }
            XCTAssertEqual(narrow.pad % 64, 0)
            cases += 1
            if cout % 16 != 0 { partialLanes += 1 }
            let os = p.outputShape(for: s)
            if os.h * os.w % 2 == 1 { oddPixels += 1 }
            if ph > 0 || pw > 0 { padded += 1 }
            let x = (0..<s.count).map { _ in Int32(rng.int(0...Int(maxCode))) }
            var tiles: [[Int32]] = []
            let expected = Reference.affineQuant(Reference.crossbar(x, shape: s, p, tileADC: &tiles), shape: os, act)
            let patch = AlignedPatch(narrow.scratchCount)
            let geo = narrow.geometry
            for set in IntDispatch.available {
                let kernel = try XCTUnwrap(NarrowFusedKernel(geo, p, set: set))
                var got = [Int16](repeating: -1, count: os.count)
                toHWC(x, s).map { Int16($0) }.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                    kernel.activationCodes(src: src.baseAddress!, dst: dst.baseAddress!, scratch: patch.pointer)
                } }
                assertBitExact(expected, toCHW(got.map { Int32($0) }, os), stage: "narrow 64 case \(case_) (\(set))")
            }
        }
        XCTAssertGreaterThan(cases, 400); XCTAssertGreaterThan(partialLanes, 100)
        XCTAssertGreaterThan(oddPixels, 100); XCTAssertGreaterThan(padded, 150)
    }

    /// Fused single-tile crossbar + activation (thresholds) == reference crossbar then activation.
    func testFusedCrossbarActivation() {
        var rng = Xoshiro256StarStar(seed: 43)
        var fusedCases = 0, narrowCases = 0, top = 0, zero = 0, mid = 0, u8Cases = 0, inPlace = 0
        for case_ in 0..<1000 {
            var (p, s, codeBits) = Self.randomCrossbar(&rng)
            // a single tile (merge the random tiles' rows into the first tile's ADC)
            p.tiles = [TileADC(rowStart: 0, rowCount: p.fanIn, multiplier: p.tiles[0].multiplier, shift: p.tiles[0].shift,
                               rounding: p.tiles[0].rounding, bits: p.tiles[0].bits)]
            let outBits = rng.int(1...4)
            let adcRange = Double(1 << (p.tiles[0].bits - 1))
            var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<p.outChannels {
                let shift = rng.int(0...30)
                let real = Double(1 << outBits) / adcRange * (0.2 + 3.0 * rng.uniform()) * (rng.int(below: 20) == 0 ? 0 : 1)
                mul.append(Int32(min(Double(Int32.max), real * Double(Int64(1) << Int64(shift)))))
                sh.append(Int32(shift))
                off.append(Int64((rng.uniform() - 0.3) * Double(1 << outBits) * Double(Int64(1) << Int64(shift))))
            }
            let act = AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: outBits, rounding: rng.rule())
            let maxCode = Int64((1 << codeBits) - 1)
            guard CrossbarGeometry.canFuse(p, act, maxCode: maxCode) else { continue }
            fusedCases += 1
            let x = (0..<s.count).map { _ in Int32(rng.int(0...((1 << codeBits) - 1))) }
            var tiles: [[Int32]] = []
            let os = p.outputShape(for: s)
            let expected = Reference.affineQuant(Reference.crossbar(x, shape: s, p, tileADC: &tiles), shape: os, act)
            let geo = CrossbarGeometry(p, inShape: s, fusing: act, maxCode: maxCode)
            let narrow = NarrowFusedKernel(geo, p), quads = cpuRunsAVX2Set ? U8QuadKernel(geo, p, set: .avx2) : nil
            if narrow != nil {
                narrowCases += 1
                // windows read in place (no padding involved) for at least one block
                if os.h * os.w >= 1 && p.padH == 0 && p.padW == 0 { inPlace += 1 }
            }
            if quads != nil { u8Cases += 1 }
            XCTAssertEqual(Fast.fusedCrossbarKernel(p, inShape: s, fusing: act, maxCode: maxCode, set: IntDispatch.available.last!).name,
                           narrow?.name ?? quads?.name ?? Int16PairKernel(geo, p).name, "the chosen kernel, case \(case_)")
            // every variant that applies, each against the reference
            var variants: [any CrossbarActivationKernel] = IntDispatch.available.map { Int16PairKernel(geo, p, set: $0) }
            if narrow != nil { variants += IntDispatch.available.compactMap { NarrowFusedKernel(geo, p, set: $0) } }
            if let quads { variants.append(quads) }
            for kernel in variants {
                let patch = AlignedPatch(kernel.scratchCount)
                var got = [Int16](repeating: -1, count: os.count)
                toHWC(x, s).map { Int16($0) }.withUnsafeBufferPointer { src in got.withUnsafeMutableBufferPointer { dst in
                    kernel.activationCodes(src: src.baseAddress!, dst: dst.baseAddress!, scratch: patch.pointer)
                } }
                assertBitExact(expected, toCHW(got.map { Int32($0) }, os), stage: "fused crossbar+activation case \(case_), \(kernel.name) (\(Self.set(kernel)))")
            }
            for v in expected { if v == 0 { zero += 1 } else if v == (1 << outBits) - 1 { top += 1 } else { mid += 1 } }
        }
        XCTAssertGreaterThan(fusedCases, 900)
        XCTAssertGreaterThan(narrowCases, 200, "narrow (Int16) variant exercised")
        XCTAssertGreaterThan(fusedCases - narrowCases, 200, "layers too wide for the narrow kernel")
        XCTAssertGreaterThan(top, 500); XCTAssertGreaterThan(zero, 500); XCTAssertGreaterThan(mid, 500)
        XCTAssertGreaterThan(inPlace, 30, "narrow windows read in place")
        if cpuRunsAVX2Set { XCTAssertGreaterThan(u8Cases, 100, "wide fused u8 x i8 kernel exercised") }
    }
}
