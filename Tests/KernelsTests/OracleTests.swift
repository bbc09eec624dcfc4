// The reference kernels against an independent wide-integer oracle written here from
// docs/DATAPATH.md only: rounding by explicit floor division and remainder comparison (not bit
// tricks), the convolution over an explicitly zero-padded input, saturation by comparisons.

import XCTest
import CrossbarLayout
import FixedPoint
import Randomness
@testable import Kernels

enum Oracle {
    /// floor(x / 2^s) and the remainder, by division (s in 0...62).
    static func floorDivMod(_ x: Int64, _ s: Int) -> (Int64, Int64) {
        let d = Int64(1) << Int64(s)
        var q = x / d, r = x % d          // truncating
        if r < 0 { q -= 1; r += d }
        return (q, r)
    }
    /// x / 2^s rounded by rule: compare 2r with d.
    static func round(_ x: Int64, _ s: Int, _ rule: RoundingRule) -> Int64 {
        if s == 0 { return x }
        let d = Int64(1) << Int64(s)
        let (q, r) = floorDivMod(x, s)
        let twice = 2 * r               // r < 2^62 so 2r < 2^63
        switch rule {
        case .floor: return q
        case .towardZero: return (x < 0 && r != 0) ? q + 1 : q
        case .halfUp: return twice >= d ? q + 1 : q
        case .halfAwayFromZero: return (twice > d || (twice == d && x > 0)) ? q + 1 : q
        case .halfToEven: return (twice > d || (twice == d && q % 2 != 0)) ? q + 1 : q
        }
    }
    static func clamp(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { v < lo ? lo : (v > hi ? hi : v) }

    static func adc(_ acc: Int64, _ t: TileADC) -> Int64 {
        let half = Int64(1) << Int64(t.bits - 1)
        return clamp(round(acc * Int64(t.multiplier), 31 - Int(t.shift), t.rounding), -half, half - 1)
    }

    /// Convolution over an explicitly padded copy of the input; returns (sums, tile ADC codes).
    static func crossbar(_ x: [Int32], _ s: TensorShape, _ p: CrossbarParams) -> ([Int64], [[Int64]]) {
        let H = s.h + 2 * p.padH, W = s.w + 2 * p.padW
        var padded = [Int64](repeating: 0, count: s.c * H * W)
        for c in 0..<s.c { for y in 0..<s.h { for xx in 0..<s.w {
            padded[(c * H + y + p.padH) * W + xx + p.padW] = Int64(x[(c * s.h + y) * s.w + xx])
        } } }
        let oh = (H - p.kernelH) / p.strideH + 1, ow = (W - p.kernelW) / p.strideW + 1
        var sums = [Int64](repeating: 0, count: p.outChannels * oh * ow)
        var tiles = [[Int64]](repeating: sums, count: p.tiles.count)
        // row -> (c, y, x) by enumeration in canonical order
        var rows: [(Int, Int, Int)] = []
        for c in 0..<p.inChannels { for y in 0..<p.kernelH { for xx in 0..<p.kernelW { rows.append((c, y, xx)) } } }
        for o in 0..<p.outChannels { for oy in 0..<oh { for ox in 0..<ow {
            let idx = (o * oh + oy) * ow + ox
            for (t, tile) in p.tiles.enumerated() {
                var acc: Int64 = 0
                for r in tile.rowStart..<(tile.rowStart + tile.rowCount) {
                    let (c, y, xx) = rows[r]
                    acc += padded[(c * H + oy * p.strideH + y) * W + ox * p.strideW + xx] * Int64(p.weights[o * rows.count + r])
                }
                let a = adc(acc, tile)
                tiles[t][idx] = a
                sums[idx] += a
            }
        } } }
        return (sums, tiles)
    }
}

final class OracleTests: XCTestCase {
    func testRoundingOracleAgreesWithFixedPoint() {
        var rng = Xoshiro256StarStar(seed: 51)
        for _ in 0..<5000 {
            let s = rng.int(0...62)
            let x = rng.bool() ? rng.int64(-(1 << 62)...(1 << 62)) : Int64(rng.int(-64...64))
            for rule in RoundingRule.allCases {
                XCTAssertEqual(roundingShiftRight(x, s, rule), Oracle.round(x, s, rule), "x=\(x) s=\(s) \(rule)")
            }
        }
        // the table of DATAPATH.md section 0 on -2.5, -1.5, -0.5, 0.5, 1.5, 2.5 (s = 1)
        let xs: [Int64] = [-5, -3, -1, 1, 3, 5]
        let table: [RoundingRule: [Int64]] = [
            .floor: [-3, -2, -1, 0, 1, 2], .towardZero: [-2, -1, 0, 0, 1, 2], .halfUp: [-2, -1, 0, 1, 2, 3],
            .halfAwayFromZero: [-3, -2, -1, 1, 2, 3], .halfToEven: [-2, -2, 0, 0, 2, 2]]
        for (rule, want) in table {
            XCTAssertEqual(xs.map { roundingShiftRight($0, 1, rule) }, want, "FixedPoint rule \(rule)")
            XCTAssertEqual(xs.map { Oracle.round($0, 1, rule) }, want, "oracle rule \(rule)")
            XCTAssertEqual(xs.map { RoundingConst(shift: 1, rule: rule).apply($0) }, want, "fast rule \(rule)")
        }
    }

    func testReferenceCrossbarAgainstOracle() {
        var rng = Xoshiro256StarStar(seed: 61)
        for case_ in 0..<300 {
            let (p, s, codeBits) = FastVsReferenceTests.randomCrossbar(&rng)
            var x = [Int32](repeating: 0, count: s.count)
            for i in 0..<x.count { x[i] = Int32(rng.int(0...((1 << codeBits) - 1))) }
            var tiles: [[Int32]] = []
            let got = Reference.crossbar(x, shape: s, p, tileADC: &tiles)
            let (want, wantTiles) = Oracle.crossbar(x, s, p)
            assertBitExact(want, got.map { Int64($0) }, stage: "oracle crossbar case \(case_) sum")
            for t in 0..<tiles.count {
                assertBitExact(wantTiles[t], tiles[t].map { Int64($0) }, stage: "oracle crossbar case \(case_) tile \(t)")
            }
        }
    }

    func testReferenceAffineAndPoolAgainstOracle() {
        var rng = Xoshiro256StarStar(seed: 71)
        for case_ in 0..<300 {
            let s = TensorShape(c: rng.int(1...4), h: rng.int(2...6), w: rng.int(2...6))
            let bits = rng.int(1...8)
            var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<s.c {
                mul.append(Int32(rng.int(-100_000...100_000))); sh.append(Int32(rng.int(0...20)))
                off.append(Int64(rng.int(-2_000_000...2_000_000)))
            }
            let p = AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: bits, rounding: rng.rule())
            var x = [Int32](repeating: 0, count: s.count)
            for i in 0..<x.count { x[i] = Int32(rng.int(-30_000...30_000)) }
            let got = Reference.affineQuant(x, shape: s, p)
            var want: [Int64] = []
            for c in 0..<s.c { for i in 0..<(s.h * s.w) {
                let v = Int64(x[c * s.h * s.w + i]) * Int64(mul[c]) + off[c]
                want.append(Oracle.clamp(Oracle.round(v, Int(sh[c]), p.rounding), 0, (1 << Int64(bits)) - 1))
            } }
            assertBitExact(want, got.map { Int64($0) }, stage: "oracle affine case \(case_)")

            let pp = MaxPoolParams(kh: 2, kw: rng.int(1...2), sh: rng.int(1...2), sw: 2)
            let pooled = Reference.maxPool(x, shape: s, pp)
            let oh = (s.h - 2) / pp.sh + 1, ow = (s.w - pp.kw) / 2 + 1
            var wantPool: [Int32] = []
            for c in 0..<s.c { for oy in 0..<oh { for ox in 0..<ow {
                var window: [Int32] = []
                for dy in 0..<2 { for dx in 0..<pp.kw { window.append(x[(c * s.h + oy * pp.sh + dy) * s.w + ox * 2 + dx]) } }
                wantPool.append(window.max()!)
            } } }
            assertBitExact(wantPool, pooled, stage: "oracle maxPool case \(case_)")
        }
    }

    /// DATAPATH.md section 3: pooling pixels then quantizing == quantizing then pooling when the
    /// multiplier is >= 0; with a negative multiplier it fails (which is why validate() rejects it).
    func testPoolCommutesWithMonotoneQuantizer() {
        var rng = Xoshiro256StarStar(seed: 81)
        var counterexample = false
        for _ in 0..<300 {
            let s = TensorShape(c: 1, h: 6, w: 6)
            let x = (0..<36).map { _ in Int32(rng.int(0...255)) }
            let neg = rng.bool()
            let m = Int32(rng.int(1...40)) * (neg ? -1 : 1)
            let p = AffineQuantParams(channels: 1, multiplier: m, shift: Int32(rng.int(0...9)),
                                      offset: neg ? 255 * 40 : Int64(rng.int(-100...100)), outBits: 4, rounding: rng.rule())
            let a = Reference.affineQuant(Reference.maxPool(x, shape: s, MaxPoolParams(2)), shape: TensorShape(c: 1, h: 3, w: 3), p)
            let b = Reference.maxPool(Reference.affineQuant(x, shape: s, p), shape: s, MaxPoolParams(2))
            if !neg { assertBitExact(a, b, stage: "pool/quantize commute") } else if a != b { counterexample = true }
        }
        XCTAssertTrue(counterexample, "a negative multiplier breaks the commutation")
    }

    /// DATAPATH.md section 6: with halfUp, the ADC equals FixedPoint's single-rounding requantize
    /// followed by the n-bit saturation.
    func testADCHalfUpEqualsSingleRoundingRequantize() {
        var rng = Xoshiro256StarStar(seed: 111)
        for _ in 0..<20_000 {
            let acc = Int32(truncatingIfNeeded: rng.int64(-(1 << 31)...((1 << 31) - 1)))
            let tile = TileADC(rowStart: 0, rowCount: 1, multiplier: Int32(rng.int(0...Int(Int32.max))),
                               shift: Int32(rng.int(-31...30)), rounding: .halfUp, bits: rng.int(2...16))
            let viaRequant = Int32(saturate(Int64(requantize(acc, tile.gain, mode: .singleRounding)), signedBits: tile.bits))
            XCTAssertEqual(Reference.adc(acc, tile), viaRequant, "acc \(acc) \(tile)")
            XCTAssertEqual(Int64(Reference.adc(acc, tile)), Oracle.adc(Int64(acc), tile))
        }
    }
}
