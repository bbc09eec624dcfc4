// The rnn op (docs/DATAPATH.md section 15): fast == reference on random layers with saturation
// edges, the reference against a wide-integer (Int128) oracle written from the document only,
// validation bounds, and the paper's spoken-digit CRNN shape end to end.

import XCTest
import FixedPoint
import Randomness
@testable import Kernels

/// Int128 oracle of section 15 (division-and-remainder rounding, comparisons for clamps).
enum RNNOracle {
    static func round(_ x: Int128, _ s: Int, _ rule: RoundingRule) -> Int128 {
        if s == 0 { return x }
        let d = Int128(1) << s
        var q = x / d, r = x % d
        if r < 0 { q -= 1; r += d }
        let twice = 2 * r
        switch rule {
        case .floor: return q
        case .towardZero: return (x < 0 && r != 0) ? q + 1 : q
        case .halfUp: return twice >= d ? q + 1 : q
        case .halfAwayFromZero: return (twice > d || (twice == d && x > 0)) ? q + 1 : q
        case .halfToEven: return (twice > d || (twice == d && q % 2 != 0)) ? q + 1 : q
        }
    }
    static func clamp(_ v: Int128, _ lo: Int128, _ hi: Int128) -> Int128 { v < lo ? lo : (v > hi ? hi : v) }

    /// One matrix on a vector: (digital sum, tile ADC codes).
    static func matrix(_ v: [Int128], _ p: CrossbarParams) -> ([Int128], [[Int128]]) {
        var sums = [Int128](repeating: 0, count: p.outChannels)
        var tiles = [[Int128]](repeating: [Int128](repeating: 0, count: p.outChannels), count: p.tiles.count)
        for o in 0..<p.outChannels {
            for (t, tile) in p.tiles.enumerated() {
                var acc: Int128 = 0
                for r in tile.rowStart..<(tile.rowStart + tile.rowCount) { acc += v[r] * Int128(p.weights[o * p.fanIn + r]) }
                let half = Int128(1) << (tile.bits - 1)
                let code = clamp(round(acc * Int128(tile.multiplier), 31 - Int(tile.shift), tile.rounding), -half, half - 1)
                tiles[t][o] = code
                sums[o] += code
            }
        }
        return (sums, tiles)
    }

    /// The whole layer: output codes and the per-step sub-points.
    static func rnn(_ x: [Int32], steps T: Int, _ p: RNNParams) -> ([Int128], [[Int128]]) {
        let hd = p.hiddenSize, nI = p.inputSize
        let hMax = (Int128(1) << p.hiddenBits) - 1
        var q = [Int128](repeating: 0, count: hd), codeSum = [Int128](repeating: 0, count: hd)
        var last = [Int128](repeating: 0, count: hd)
        var sub: [[Int128]] = []
        for t in 0..<T {
            let v = (0..<nI).map { Int128(x[$0 * T + t]) }
            let (sx, tx) = matrix(v, p.input)
            let (sh, th) = matrix(q, p.recurrent)
            var hidden = [Int128](repeating: 0, count: hd)
            for o in 0..<hd {
                let z = sx[o] * Int128(p.inputMultiplier) + sh[o] * Int128(p.recurrentMultiplier)
                if t < T - 1 {
                    hidden[o] = clamp(round(z, Int(p.stateShift), p.hiddenRounding), 0, hMax)
                    codeSum[o] += hidden[o]
                } else {
                    hidden[o] = z; last[o] = z
                }
            }
            sub += tx + th + [hidden]
            if t < T - 1 { q = hidden }
        }
        let a = p.output
        let out = (0..<hd).map { o -> Int128 in
            let acc = codeSum[o] * (Int128(1) << Int(p.stateShift)) + Swift.max(last[o], 0)
            return clamp(round(acc * Int128(a.multiplier[o]) + Int128(a.offset[o]), Int(a.shift[o]), a.rounding), 0, (Int128(1) << a.outBits) - 1)
        }
        return (out, sub)
    }
}

/// Random rnn programs: input (I, 1, T) 8-bit codes, optionally an identity-clamp input quantizer
/// to `b` bits, then the rnn. Gains drawn log-uniformly so that ADCs, hidden codes and outputs
/// hit both clamps; combiner and output multipliers sometimes exactly at validate()'s bounds.
struct RandomRNN {
    var program: Program
    var params: RNNParams
    var steps: Int
    var maxCode: Int

    init(_ rng: inout Xoshiro256StarStar) {
        let nI = rng.int(1...40), hd = rng.int(1...40), T = rng.int(1...6)
        let arrayRows = rng.int(3...64)
        let quantize = rng.bool()
        let codeBits = quantize ? rng.int(1...8) : 8
        maxCode = (1 << codeBits) - 1
        var tensors = [TensorDesc.code(TensorShape(c: nI, h: 1, w: T), bits: 8)]
        var nodes: [Node] = []
        var cur = 0
        if quantize {
            tensors.append(.code(TensorShape(c: nI, h: 1, w: T), bits: codeBits))
            nodes.append(Node(.inputQuant(AffineQuantParams(channels: nI, multiplier: 1, shift: 0, offset: 0, outBits: codeBits, rounding: .halfUp)),
                              inputs: [0], output: 1))
            cur = 1
        }
        let hb = rng.int(1...8)
        func matrix(_ cin: Int, _ cout: Int, maxIn: Int) -> CrossbarParams {
            let wb = rng.int(2...8), half = 1 << (wb - 1)
            let w = (0..<(cin * cout)).map { _ -> Int8 in
                switch rng.int(0...9) {
                case 0: return Int8(-half)
                case 1: return Int8(half - 1)
                case 2, 3: return Int8(rng.int(-1...1))
                default: return Int8(rng.int(-half...(half - 1)))
                }
            }
            var tiles: [TileADC] = []
            var start = 0
            while start < cin {
                let n = rng.int(1...Swift.min(arrayRows, cin - start))
                let bits = rng.int(2...16)
                let typical = Swift.max(1.0, Double(n).squareRoot() * Double(maxIn) * 0.5 * Double(half) * 0.6)
                let g = Double(1 << (bits - 1)) / typical * Double.pow2(rng.int(-4...3))
                let (m, s) = gainMultiplier(g)
                tiles.append(TileADC(rowStart: start, rowCount: n, multiplier: m, shift: s, rounding: rng.rule(), bits: bits))
                start += n
            }
            return CrossbarParams(inChannels: cin, outChannels: cout, kernelH: 1, kernelW: 1, weightBits: wb, weights: w, tiles: tiles)
        }
        let ih = matrix(nI, hd, maxIn: maxCode), hh = matrix(hd, hd, maxIn: (1 << hb) - 1)
        func bound(_ p: CrossbarParams) -> Int64 { p.tiles.reduce(0) { $0 + (Int64(1) << Int64($1.bits - 1)) } }
        let sxMax = bound(ih), shMax = bound(hh)
        let S = rng.int(0...30)
        // z / 2^S ~ a few hidden codes for a typical sum (~ a quarter of full scale)
        func mult(_ full: Int64, sign: Bool) -> Int64 {
            let typical = Swift.max(1.0, Double(full) / 4)
            let real = Double((1 << hb) - 1) / typical * Double.pow2(rng.int(-3...2)) * Double.pow2(S)
            let m = Swift.min(Int64(Int32.max), Swift.max(0, Int64(real.rounded())))
            return sign && rng.bool() ? -m : m
        }
        var mx = mult(sxMax, sign: rng.int(0...9) == 0), mh = mult(shMax, sign: true)
        // keep |z| <= 2^31 - 1; sometimes exactly at the bound
        let zCap = Int64(Int32.max)
        if mh.magnitude * UInt64(shMax) > UInt64(zCap) / 2 { mh = (mh < 0 ? -1 : 1) * (zCap / 2 / shMax) }
        let mxCap = (zCap - Int64(mh.magnitude) * shMax) / sxMax
        if Int64(mx.magnitude) > mxCap || rng.int(0...19) == 0 { mx = (mx < 0 ? -1 : 1) * mxCap }
        let zMax = Int64(mx.magnitude) * sxMax + Int64(mh.magnitude) * shMax
        let aMax = Int64(T - 1) * Int64((1 << hb) - 1) * (Int64(1) << Int64(S)) + zMax
        // output: A / 2^S / T ~ the mean hidden value, times 2^(outBits - hb) and a random factor
        let ob = rng.int(1...8)
        var om: [Int32] = [], osh: [Int32] = [], oof: [Int64] = []
        for _ in 0..<hd {
            let real = Double.pow2(ob - hb) / Double(T) / Double.pow2(S) * Double.pow2(rng.int(-2...2)) * (0.7 + 0.6 * rng.uniform())
            let so = Swift.max(0, Swift.min(62, 30 - Int(real.exponent)))
            var m = Swift.min(Int64(Int32.max), Int64((real * Double.pow2(so)).rounded()))
            var b = so == 0 ? Int64(rng.int(-1...1)) : Int64(rng.int(-2...2)) * (Int64(1) << Int64(so - 1))
            let cap = Program.affineBound
            if aMax > 0, m > (cap - Swift.abs(b)) / aMax || rng.int(0...29) == 0 {
                m = Swift.min(Int64(Int32.max), (cap - Swift.abs(b)) / aMax)
                if m * aMax + Swift.abs(b) < cap, rng.bool() { b = (b < 0 ? -1 : 1) * (cap - m * aMax) }   // exactly 2^62
            }
            om.append(Int32(m)); osh.append(Int32(so)); oof.append(b)
        }
        params = RNNParams(input: ih, recurrent: hh, inputMultiplier: Int32(mx), recurrentMultiplier: Int32(mh), stateShift: Int32(S),
                           hiddenBits: hb, hiddenRounding: rng.rule(),
                           output: AffineQuantParams(multiplier: om, shift: osh, offset: oof, outBits: ob, rounding: rng.rule()))
        tensors.append(.code(TensorShape(c: hd, h: 1, w: 1), bits: ob))
        nodes.append(Node(.rnn(params), inputs: [cur], output: tensors.count - 1))
        program = Program(tensors: tensors, nodes: nodes, input: 0, output: tensors.count - 1, arrayRows: arrayRows)
        steps = T
    }

    /// Input codes: mostly uniform in 0...maxCode, some all-zero or all-max inputs (saturation).
    func input(_ rng: inout Xoshiro256StarStar) -> [UInt8] {
        let n = params.inputSize * steps
        switch rng.int(0...7) {
        case 0: return [UInt8](repeating: 0, count: n)
        case 1: return [UInt8](repeating: UInt8(maxCode), count: n)
        default: return (0..<n).map { _ in UInt8(rng.int(0...maxCode)) }
        }
    }
}

extension Double { static func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) } }

extension Xoshiro256StarStar {
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

final class RNNTests: XCTestCase {
    /// Fast (engine trace: every tensor, every step's tile ADC codes and hidden values) == the
    /// reference on 1200 random layers; the untraced `infer` path == reference logits.
    func testFastEqualsReferenceOnRandomRNNs() throws {
        var rng = Xoshiro256StarStar(seed: 0x5EED_0009)
        var adcSat = 0, adcIn = 0, hid0 = 0, hidTop = 0, hidMid = 0, out0 = 0, outTop = 0, outMid = 0, zNeg = 0, zPos = 0
        var atZBound = 0, atABound = 0, multiTile = 0
        for k in 0..<1200 {
            let r = RandomRNN(&rng)
            XCTAssertNoThrow(try r.program.validate(), "case \(k)")
            let ranges = try r.program.valueRanges()
            let engine = try Engine(program: r.program)
            let p = r.params
            if p.input.tiles.count > 1 || p.recurrent.tiles.count > 1 { multiTile += 1 }
            _ = ranges
            let sxMax = p.input.tiles.reduce(Int64(0)) { $0 + (Int64(1) << Int64($1.bits - 1)) }
            let shMax = p.recurrent.tiles.reduce(Int64(0)) { $0 + (Int64(1) << Int64($1.bits - 1)) }
            let zMax = Int64(p.inputMultiplier.magnitude) * sxMax + Int64(p.recurrentMultiplier.magnitude) * shMax
            // tight: one more unit of |Mx| would exceed 2^31 - 1 (exact equality is impossible: the
            // tile bounds are even)
            if zMax <= Int64(Int32.max), zMax + sxMax > Int64(Int32.max) { atZBound += 1 }
            let aMax = Int64(r.steps - 1) * Int64((1 << p.hiddenBits) - 1) * (Int64(1) << Int64(p.stateShift)) + zMax
            if p.output.multiplier.indices.contains(where: { aMax * Int64(p.output.multiplier[$0].magnitude) + Swift.abs(p.output.offset[$0]) == Program.affineBound }) { atABound += 1 }
            for _ in 0..<2 {
                let x = r.input(&rng)
                let ref = Reference.run(r.program, pixels: x)
                let fast = engine.trace(pixels: x)
                for t in r.program.tensors.indices { assertBitExact(ref.tensors[t], fast.tensors[t], stage: "case \(k) tensor \(t)") }
                let node = r.program.nodes.count - 1
                XCTAssertEqual(ref.tileADC[node].count, r.steps * p.subpointsPerStep)
                for j in ref.tileADC[node].indices {
                    assertBitExact(ref.tileADC[node][j], fast.tileADC[node][j], stage: "case \(k) step \(j / p.subpointsPerStep) sub-point \(j % p.subpointsPerStep)")
                }
                let logits = engine.inferBatch(x, count: 1).logits
                assertBitExact(ref.tensors[r.program.output], logits, stage: "case \(k) infer")
                // edge statistics
                let per = p.subpointsPerStep
                for (j, v) in ref.tileADC[node].enumerated() {
                    let s = j % per, t = j / per
                    if s < per - 1 {
                        let tile = s < p.input.tiles.count ? p.input.tiles[s] : p.recurrent.tiles[s - p.input.tiles.count]
                        let half = Int32(1 << (tile.bits - 1))
                        for c in v { if c == -half || c == half - 1 { adcSat += 1 } else { adcIn += 1 } }
                    } else if t < r.steps - 1 {
                        let top = Int32((1 << p.hiddenBits) - 1)
                        for c in v { if c == 0 { hid0 += 1 } else if c == top { hidTop += 1 } else { hidMid += 1 } }
                    } else {
                        for c in v { if c < 0 { zNeg += 1 } else if c > 0 { zPos += 1 } }
                    }
                }
                let top = Int32((1 << p.output.outBits) - 1)
                for c in ref.tensors[r.program.output] { if c == 0 { out0 += 1 } else if c == top { outTop += 1 } else { outMid += 1 } }
            }
        }
        for (name, n, min) in [("ADC saturated", adcSat, 1000), ("ADC inside", adcIn, 1000), ("hidden 0", hid0, 1000), ("hidden top", hidTop, 1000),
                               ("hidden between", hidMid, 1000), ("output 0", out0, 1000), ("output top", outTop, 1000),
                               ("output between", outMid, 1000), ("z < 0", zNeg, 1000), ("z > 0", zPos, 1000),
                               ("layers with |z| bound tight at 2^31 - 1", atZBound, 20), ("layers with A M + B bound exactly 2^62", atABound, 20),
                               ("layers with several tiles", multiTile, 200)] {
            XCTAssertGreaterThan(n, min, name)
        }
    }

    /// The reference kernel == the Int128 oracle (every sub-point and the output) on 300 random layers.
    func testReferenceEqualsWideIntegerOracle() throws {
        var rng = Xoshiro256StarStar(seed: 0x0AC1_E009)
        for k in 0..<300 {
            let r = RandomRNN(&rng)
            let x = r.input(&rng)
            let ref = Reference.run(r.program, pixels: x)
            // the rnn's input codes (after the optional identity quantizer)
            let inCodes = ref.tensors[r.program.nodes.last!.inputs[0]]
            let (out, sub) = RNNOracle.rnn(inCodes, steps: r.steps, r.params)
            assertBitExact(out.map { Int64($0) }, ref.tensors[r.program.output].map { Int64($0) }, stage: "case \(k) output")
            let node = r.program.nodes.count - 1
            XCTAssertEqual(sub.count, ref.tileADC[node].count)
            for j in 0..<Swift.min(sub.count, ref.tileADC[node].count) {
                assertBitExact(sub[j].map { Int64($0) }, ref.tileADC[node][j].map { Int64($0) }, stage: "case \(k) sub-point \(j)")
            }
        }
    }

    /// The combiner, hidden quantizer and fused average/output quantizer at their extremes:
    /// `|z|` up to 2^31 - 1, `A * M + B` up to exactly 2^62, every rounding rule, against Int128.
    func testCombineAndAverageArithmeticAtTheBounds() {
        var rng = Xoshiro256StarStar(seed: 0xC0B1_4E00)
        var ties = 0
        for k in 0..<20_000 {
            let S = rng.int(0...62), hb = rng.int(1...8), ob = rng.int(1...8)
            let sxMax = Int64(rng.int(1...(1 << 17))), shMax = Int64(rng.int(1...(1 << 17)))
            let mx = rng.int64(-(Int64(Int32.max) / 2 / sxMax)...(Int64(Int32.max) / 2 / sxMax))
            let mh = rng.int64(-(Int64(Int32.max) / 2 / shMax)...(Int64(Int32.max) / 2 / shMax))
            let sx = Int32(rng.bool() ? (rng.bool() ? sxMax : -sxMax) : rng.int64(-sxMax...sxMax))
            let sh = Int32(rng.bool() ? (rng.bool() ? shMax : -shMax) : rng.int64(-shMax...shMax))
            let out = AffineQuantParams(channels: 1, multiplier: 0, shift: Int32(rng.int(0...62)), offset: 0, outBits: ob, rounding: rng.rule())
            var p = RNNParams(input: CrossbarParams(inChannels: 1, outChannels: 1, kernelH: 1, kernelW: 1, weightBits: 2, weights: [0], tiles: []),
                              recurrent: CrossbarParams(inChannels: 1, outChannels: 1, kernelH: 1, kernelW: 1, weightBits: 2, weights: [0], tiles: []),
                              inputMultiplier: Int32(mx), recurrentMultiplier: Int32(mh), stateShift: Int32(S), hiddenBits: hb,
                              hiddenRounding: rng.rule(), output: out)
            let z = Reference.rnnCombine(sx, sh, p)
            let zo = Int128(sx) * Int128(mx) + Int128(sh) * Int128(mh)
            XCTAssertEqual(Int128(z), zo, "case \(k): z")
            XCTAssertEqual(Int128(Reference.rnnHidden(z, p)), RNNOracle.clamp(RNNOracle.round(zo, S, p.hiddenRounding), 0, (Int128(1) << hb) - 1), "case \(k): hidden")
            // average accumulator: code sum and z at most what (T-1)(2^hb - 1) 2^S + |z| <= 2^62 allows
            let capC = S >= 62 ? 0 : Int64(Int32.max) / Swift.max(1, Int64((1 << hb) - 1))
            let maxSum = S == 0 ? capC : Swift.min(capC, ((Int64(1) << 62) - Int64(z.magnitude)) >> Int64(S))
            let codeSum = rng.int64(0...Swift.max(0, maxSum))
            let a = Reference.rnnAverage(codeSum: codeSum, zLast: z, p)
            let ao = Int128(codeSum) * (Int128(1) << S) + Swift.max(zo, 0)
            XCTAssertEqual(Int128(a), ao, "case \(k): A")
            // output multiplier and offset so that A M + B is at most 2^62 (often exactly)
            let aMag = Swift.max(a, 1)
            let m = Int32(Swift.min(Int64(Int32.max), Program.affineBound / aMag) * (rng.int(0...3) == 0 ? -1 : 1))
            let rest = Program.affineBound - aMag * Int64(m.magnitude)
            let b = rng.bool() ? (rng.bool() ? rest : -rest) : rng.int64(-rest...rest)
            p.output.multiplier = [m]; p.output.offset = [b]
            let got = Reference.affineQuant(a, channel: 0, p.output)
            let want = RNNOracle.clamp(RNNOracle.round(Int128(a) * Int128(m) + Int128(b), Int(p.output.shift[0]), p.output.rounding), 0, (Int128(1) << ob) - 1)
            XCTAssertEqual(Int128(got), want, "case \(k): output")
            let sh0 = Int(p.output.shift[0])
            if sh0 > 0, (Int128(a) * Int128(m) + Int128(b)) % (Int128(1) << sh0) == Int128(1) << (sh0 - 1) { ties += 1 }
        }
        _ = ties
    }

    func testValidateRNNBoundsAndShapes() throws {
        var rng = Xoshiro256StarStar(seed: 77)
        var r = RandomRNN(&rng)
        while r.steps < 2 { r = RandomRNN(&rng) }
        let node = r.program.nodes.count - 1
        func with(_ f: (inout RNNParams) -> Void) -> Program {
            var q = r.program
            var p = r.params
            f(&p)
            q.nodes[node].op = .rnn(p)
            return q
        }
        func expect(_ prog: Program, _ kind: ProgramError.Kind, _ what: String, line: UInt = #line) {
            do { try prog.validate(); XCTFail("\(what): accepted", line: line) } catch {
                XCTAssertEqual(error.kind, kind, "\(what): \(error)", line: line)
                XCTAssertEqual(error.node, node, what, line: line)
            }
        }
        XCTAssertNoThrow(try r.program.validate())
        let sxMax = r.params.input.tiles.reduce(Int64(0)) { $0 + (Int64(1) << Int64($1.bits - 1)) }
        let shMax = r.params.recurrent.tiles.reduce(Int64(0)) { $0 + (Int64(1) << Int64($1.bits - 1)) }
        // |z| bound: exactly 2^31 - 1 passes (if the output multipliers allow), one more fails
        var atZ = with { $0.recurrentMultiplier = 0; $0.inputMultiplier = Int32(Int64(Int32.max) / sxMax); $0.output.multiplier = $0.output.multiplier.map { _ in 1 }; $0.output.offset = $0.output.offset.map { _ in 0 } }
        XCTAssertNoThrow(try atZ.validate())
        atZ = with { $0.recurrentMultiplier = 1; $0.inputMultiplier = Int32((Int64(Int32.max) - shMax) / sxMax) + 1 }
        expect(atZ, .accumulatorOverflow, "combined accumulator over 2^31 - 1")
        expect(with { $0.stateShift = 62 }, .accumulatorOverflow, "A over 2^62 (T-1 >= 1, 2^62 per code)")
        expect(with { $0.stateShift = 63 }, .parameterOutOfRange, "state shift 63")
        expect(with { $0.hiddenBits = 0 }, .parameterOutOfRange, "hidden bits 0")
        expect(with { $0.hiddenBits = 9 }, .parameterOutOfRange, "hidden bits 9")
        expect(with { $0.output.multiplier[0] = Int32.max; $0.output.offset[0] = 1 << 62 }, .accumulatorOverflow, "output A M + B over 2^62")
        expect(with { $0.output.shift[0] = 63 }, .parameterOutOfRange, "output shift 63")
        expect(with { $0.output.multiplier.removeLast() }, .parameterOutOfRange, "output channel count")
        expect(with { $0.input.kernelW = 2; $0.input.weights += $0.input.weights }, .parameterOutOfRange, "input matrix not 1x1")
        expect(with { $0.recurrent.strideH = 2 }, .parameterOutOfRange, "recurrent stride 2")
        expect(with { $0.input.inChannels += 1 }, .shapeMismatch, "input size != input channels")
        expect(with { $0.input.weights[0] = 127; $0.input.weightBits = 2 }, .weightCount, "weight outside its bits")
        expect(with { $0.recurrent.tiles[0].bits = 17 }, .parameterOutOfRange, "ADC bits 17")
        // a (C, H>1, T) input and a wrong output tensor
        var q = r.program
        q.tensors[q.nodes[node].inputs[0]].shape.h = 2
        q.tensors[0].shape.h = 2
        expect(q, .shapeMismatch, "input height 2")
        q = r.program
        q.tensors[q.output].bits = r.params.output.outBits == 8 ? 7 : r.params.output.outBits + 1
        expect(q, .shapeMismatch, "output bits")
        // hidden code sum over Int32: T-1 = 2^24 steps of 255 with 1 input feature
        let wide = Program(tensors: [.code(TensorShape(c: 1, h: 1, w: (1 << 24) + 1), bits: 8), .code(TensorShape(c: 1, h: 1, w: 1), bits: 1)],
                           nodes: [Node(.rnn(RNNParams(input: CrossbarParams(inChannels: 1, outChannels: 1, kernelH: 1, kernelW: 1, weightBits: 2, weights: [1],
                                                                             tiles: [TileADC(rowStart: 0, rowCount: 1, multiplier: 1, shift: 0, rounding: .floor, bits: 2)]),
                                                       recurrent: CrossbarParams(inChannels: 1, outChannels: 1, kernelH: 1, kernelW: 1, weightBits: 2, weights: [1],
                                                                                 tiles: [TileADC(rowStart: 0, rowCount: 1, multiplier: 1, shift: 0, rounding: .floor, bits: 2)]),
                                                       inputMultiplier: 1, recurrentMultiplier: 1, stateShift: 0, hiddenBits: 8, hiddenRounding: .floor,
                                                       output: AffineQuantParams(channels: 1, multiplier: 1, shift: 0, offset: 0, outBits: 1, rounding: .floor))),
                                        inputs: [0], output: 1)], input: 0, output: 1)
        do { try wide.validate(); XCTFail("code sum over Int32 accepted") } catch { XCTAssertEqual(error.kind, .accumulatorOverflow) }
    }

    /// The paper's spoken-digit CRNN shape: conv 3x2 stride (2,1) twice, pools, rnn over 4 steps.
    func testSpokenDigitCRNNShapeFastEqualsReferenceAndOracle() throws {
        for (seed, wb) in [(UInt64(1), 8), (2, 5)] {
            let p = SamplePrograms.spokenDigitCRNN(seed: seed, weightBits: wb, randomRounding: seed == 2)
            let ranges = try p.valueRanges()
            XCTAssertEqual(ranges.count, p.tensors.count)
            let shapes = p.tensors.map(\.shape)
            XCTAssertTrue(shapes.contains(TensorShape(c: 64, h: 11, w: 19)), "conv1 3x2 stride (2,1) on 23x20")
            XCTAssertTrue(shapes.contains(TensorShape(c: 32, h: 1, w: 4)), "the rnn input")
            let engine = try Engine(program: p)
            let xs = SamplePrograms.featureCodes(20, seed: seed)
            var hiddenSeen = Set<Int32>()
            for i in 0..<20 {
                let x = Array(xs[(i * 460)..<((i + 1) * 460)])
                let ref = Reference.run(p, pixels: x)
                let fast = engine.trace(pixels: x)
                XCTAssertEqual(ref, fast, "image \(i): fast trace != reference trace")
                assertBitExact(ref.tensors[p.output], engine.inferBatch(x, count: 1).logits, stage: "image \(i) infer")
                // the strided non-square convolutions against the padded-input oracle
                for (k, n) in p.nodes.enumerated() {
                    if case .crossbar(let cp) = n.op, cp.kernelH != cp.kernelW {
                        let (sums, tiles) = Oracle.crossbar(ref.tensors[n.inputs[0]], p.tensors[n.inputs[0]].shape, cp)
                        assertBitExact(sums.map { Int32($0) }, ref.tensors[n.output], stage: "image \(i) node \(k) conv sums")
                        for t in tiles.indices { assertBitExact(tiles[t].map { Int32($0) }, ref.tileADC[k][t], stage: "image \(i) node \(k) tile \(t)") }
                    }
                    if case .rnn(let rp) = n.op {
                        let (out, sub) = RNNOracle.rnn(ref.tensors[n.inputs[0]], steps: 4, rp)
                        assertBitExact(out.map { Int32($0) }, ref.tensors[n.output], stage: "image \(i) rnn output")
                        XCTAssertEqual(sub.map { $0.map { Int32($0) } }, ref.tileADC[k], "image \(i) rnn sub-points")
                        for j in 0..<3 { hiddenSeen.formUnion(ref.tileADC[k][j * rp.subpointsPerStep + rp.subpointsPerStep - 1]) }
                    }
                }
            }
            XCTAssertGreaterThan(hiddenSeen.count, 3, "hidden codes use their range")
            let logits = engine.inferBatch(xs, count: 20, threads: 1).logits
            XCTAssertEqual(logits, try Engine(program: p, threads: 2).inferBatch(xs, count: 20, threads: 2).logits, "1 thread == 2 threads")
        }
    }

    /// The float rnn: with the ADCs far from saturation the float pipeline's rnn output differs
    /// from the integer one by a few codes at most and agrees on most elements; its sub-points are
    /// the ideal-analog values of the integer ones (within the ADC rounding).
    func testFloatRNNTracksTheIntegerRNN() throws {
        let p = SamplePrograms.spokenDigitCRNN(seed: 3)
        let xs = SamplePrograms.featureCodes(30, seed: 3)
        guard let k = p.nodes.firstIndex(where: { $0.op.kind == .rnn }), case .rnn(let rp) = p.nodes[k].op else { return XCTFail("no rnn") }
        var equal = 0, total = 0, tileClose = 0, tileTotal = 0, agree = 0
        for i in 0..<30 {
            let x = Array(xs[(i * 460)..<((i + 1) * 460)])
            let ref = Reference.run(p, pixels: x)
            let fl = FloatPipeline.run(p, pixels: x)
            let inF = ref.tensors[p.nodes[k].inputs[0]].map { Float($0) }
            let (outF, subF) = FloatPipeline.rnn(inF, shape: p.tensors[p.nodes[k].inputs[0]].shape, rp)
            XCTAssertEqual(subF.count, ref.tileADC[k].count)
            // step 0: same integer input codes, recurrent input 0: tile values within 1 code of the ADC
            for j in 0..<(rp.input.tiles.count) {
                let half = Int32(1 << (rp.input.tiles[j].bits - 1))
                for (a, b) in zip(subF[j], ref.tileADC[k][j]) where b > -half && b < half - 1 {
                    tileTotal += 1; if Swift.abs(a - Float(b)) <= 1 { tileClose += 1 }
                }
            }
            for (a, b) in zip(outF, ref.tensors[p.nodes[k].output]) { total += 1; if a == Float(b) { equal += 1 } }
            if FloatPipeline.argmax(fl[p.output]) == argmax(ref.tensors[p.output]) { agree += 1 }
        }
        XCTAssertEqual(tileClose, tileTotal, "ideal tile values within one ADC code where the ADC does not saturate")
        XCTAssertGreaterThan(tileTotal, 1000)
        XCTAssertGreaterThan(Double(equal) / Double(total), 0.8, "float rnn output == integer on most hidden units (same input codes)")
        XCTAssertGreaterThanOrEqual(agree, 15, "argmax agreement on the random CRNN (sanity)")
    }

    func testFeatureEncodingIsExactRoundHalfUp() {
        for bits in 1...8 {
            let l = (1 << bits) - 1
            for k in 0..<(2 * l) {
                // x exactly at (k + 1/2) / L when representable, and its float neighbours
                let x = Float((Double(k) + 0.5) / Double(l))
                guard x <= 1 else { continue }
                let want = Int((Double(x) * Double(l) + 0.5).rounded(.down))
                XCTAssertEqual(FeatureEncoding.code(x, bits: bits).map(Int.init), want)
                XCTAssertEqual(FeatureEncoding.code(x.nextDown, bits: bits).map(Int.init), Int((Double(x.nextDown) * Double(l) + 0.5).rounded(.down)))
            }
            XCTAssertEqual(FeatureEncoding.code(0, bits: bits), 0)
            XCTAssertEqual(FeatureEncoding.code(1, bits: bits), UInt8(l))
        }
        // ties of the 3-bit encoder that are exact Float32 values round up: 0.5 / 7 is not
        // representable, 3.5 / 7 = 0.5 is: code 4
        XCTAssertEqual(FeatureEncoding.code(0.5, bits: 3), 4)
        for bad: Float in [.nan, .infinity, -.infinity, -0.0001, 1.0001] { XCTAssertNil(FeatureEncoding.code(bad, bits: 3), "\(bad)") }
    }
}
