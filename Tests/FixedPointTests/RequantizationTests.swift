import XCTest
import Randomness
@testable import FixedPoint

@available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
final class RequantizationTests: XCTestCase {
    // MARK: gemmlowp primitives

    func testSRDHMAgainstGemmlowpDefinition() {
        var v = Values(seed: 30)
        var pairs: [(Int32, Int32)] = []
        for a in Values.int32Boundaries { for b in Values.int32Boundaries { pairs.append((a, b)) } }
        for _ in 0..<20_000 { pairs.append((v.int32(), v.fullInt32())) }
        // Exact ties: a*b = ±(2k+1)·2^30.
        for k in Int32(0)..<64 { pairs += [(2 * k + 1, 1 << 30), (-(2 * k + 1), 1 << 30), ((2 * k + 1) << 15, 1 << 15)] }
        for (a, b) in pairs {
            XCTAssertEqual(saturatingRoundingDoublingHighMul(a, b), Oracle.srdhm(a, b), "srdhm(\(a), \(b))")
        }
        // Hand values.
        XCTAssertEqual(saturatingRoundingDoublingHighMul(.min, .min), .max)      // the overflow case
        XCTAssertEqual(saturatingRoundingDoublingHighMul(.min, .max), -Int32.max)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(1 << 30, 1 << 30), 1 << 29)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(1 << 15, 1 << 15), 1)    // +0.5 -> 1
        XCTAssertEqual(saturatingRoundingDoublingHighMul(-(1 << 15), 1 << 15), 0) // -0.5 -> 0
        XCTAssertEqual(saturatingRoundingDoublingHighMul(-3 << 15, 1 << 15), -1)  // -1.5 -> -1
    }

    func testRoundingDivideByPOTAgainstGemmlowpDefinition() {
        var v = Values(seed: 31)
        for e in 0...31 {
            var xs = Values.int32Boundaries
            if e >= 1 {
                let h = Int64(1) << (e - 1), d = Int64(1) << e
                for k: Int64 in [0, 1, 2, 3, 4, 9] {
                    for t in [k * d + h, -(k * d + h)] {
                        for delta: Int64 in [-1, 0, 1] where Int64(Int32.min)...Int64(Int32.max) ~= t + delta {
                            xs.append(Int32(t + delta))
                        }
                    }
                }
            }
            for _ in 0..<300 { xs.append(v.int32()) }
            for x in xs {
                XCTAssertEqual(roundingDivideByPOT(x, e), Oracle.roundingDivideByPOT(x, e), "rdbpot(\(x), \(e))")
            }
        }
        XCTAssertEqual(roundingDivideByPOT(-3, 1), -2)      // -1.5 -> -2 (away from zero)
        XCTAssertEqual(roundingDivideByPOT(3, 1), 2)
        XCTAssertEqual(roundingDivideByPOT(-1, 1), -1)
        XCTAssertEqual(roundingDivideByPOT(.min, 31), -1)
        XCTAssertEqual(roundingDivideByPOT(.max, 31), 1)
        // Outside gemmlowp's domain: exact value, no trap.
        for x in Values.int32Boundaries {
            for e in [32, 33, 40, 64, 100, Int.max] {
                XCTAssertEqual(roundingDivideByPOT(x, e), Int32(Oracle.roundDiv(Int128(x), shift: min(e, 100), .halfAwayFromZero)))
            }
        }
    }

    // MARK: QuantizeMultiplier

    private func checkQuantization(_ m: Double, file: StaticString = #filePath, line: UInt = #line) {
        let expected = Oracle.quantizeMultiplier(m)
        let got: QuantizedMultiplier
        do {
            got = try QuantizedMultiplier(real: m)
        } catch {
            if expected != nil { XCTFail("m = \(m) threw \(error)", file: file, line: line) }
            if case .shiftTooLarge(let v, let s) = error { XCTAssertEqual(v, m); XCTAssertGreaterThan(s, 30) } else {
                XCTFail("m = \(m): wrong error \(error)", file: file, line: line)
            }
            return
        }
        guard let (q, s) = expected else { XCTFail("m = \(m) should throw, got \(got)", file: file, line: line); return }
        XCTAssertEqual(got, QuantizedMultiplier(multiplier: q, shift: s), "m = \(m)", file: file, line: line)
        if got.multiplier == 0 { XCTAssertEqual(got.shift, 0); return }
        XCTAssert((1 << 30)..<(Int64(1) << 31) ~= Int64(got.multiplier), file: file, line: line)
        XCTAssert(-31...30 ~= got.shift, file: file, line: line)
        // Exact rational check: |mult·2^(shift-31) - M·2^E| <= 2^(shift-32), ties resolved upward.
        let (M, E) = Oracle.exactDouble(m)
        let a = Int(got.shift) - 32
        let base = min(a, E)
        let approx = 2 * Int128(got.multiplier) * Oracle.pow2(a - base)
        let exact = M * Oracle.pow2(E - base)
        let bound = Oracle.pow2(a - base)
        let err = approx - exact
        XCTAssertLessThanOrEqual(err.magnitude, bound.magnitude, "m = \(m): not the nearest", file: file, line: line)
        if err.magnitude == bound.magnitude { XCTAssertGreaterThan(err, 0, "tie must round away from zero", file: file, line: line) }
    }

    func testQuantizeMultiplierRandomOctaves() {
        var g = Xoshiro256StarStar(seed: 32)
        for _ in 0..<20_000 {
            let significand = 1.0 + g.uniform()                      // [1, 2)
            let exponent = g.int(below: 90) - 60                     // 2^-60 ... 2^29: flush, range, reject
            checkQuantization(Double(sign: .plus, exponent: exponent, significand: significand))
        }
        // Constructed from the bit pattern: exact ties of frac·2^31 (low 22 significand bits =
        // 0x200000), and values just below a power of two (q rounds up to 2^31).
        for i in 0..<4000 {
            let high = UInt64(g.int(below: 1 << 30)) << 22                     // random upper bits
            let fraction: UInt64 = i % 2 == 0 ? (high | (1 << 21)) : ((1 << 52) - 1 - UInt64(g.int(below: 1 << 22)))
            let biased = UInt64(1023 - 45 + g.int(below: 80))                  // 2^-45 ... 2^34
            checkQuantization(Double(bitPattern: biased << 52 | fraction))
        }
        // Log-uniform in 1e-12 ... 1e6 (the range used by real layers).
        for _ in 0..<5000 {
            let e = -40 + g.int(below: 60)
            let m = Double(sign: .plus, exponent: e, significand: 1.0 + g.uniform())
            if m >= 1e-12 && m <= 1e6 { checkQuantization(m) }
        }
    }

    func testQuantizeMultiplierBoundaries() throws {
        func qm(_ m: Double) throws -> QuantizedMultiplier { try QuantizedMultiplier(real: m) }
        XCTAssertEqual(try qm(1.0), QuantizedMultiplier(multiplier: 1 << 30, shift: 1))
        XCTAssertEqual(try qm(0.5), QuantizedMultiplier(multiplier: 1 << 30, shift: 0))
        XCTAssertEqual(try qm(0.75), QuantizedMultiplier(multiplier: 3 << 29, shift: 0))
        // 2^31 round-up: m just below a power of two.
        XCTAssertEqual(try qm(1.0.nextDown), QuantizedMultiplier(multiplier: 1 << 30, shift: 1))
        XCTAssertEqual(try qm(0.5.nextDown), QuantizedMultiplier(multiplier: 1 << 30, shift: 0))
        XCTAssertEqual(try qm(0.5 * (1 - 0x1p-32)), QuantizedMultiplier(multiplier: 1 << 30, shift: 0))  // q = 2^31 - 1/2
        XCTAssertEqual(try qm(0.5 * (1 - 0x1p-31)), QuantizedMultiplier(multiplier: Int32.max, shift: -1)) // q = 2^31 - 1
        // Exact ties in q = frac·2^31 round away from zero (TfLiteRound), not to even.
        XCTAssertEqual(try qm(0.5 + 0x1p-32), QuantizedMultiplier(multiplier: (1 << 30) + 1, shift: 0))     // 2^30 + 1/2
        XCTAssertEqual(try qm(0.5 + 3 * 0x1p-32), QuantizedMultiplier(multiplier: (1 << 30) + 2, shift: 0)) // 2^30 + 3/2
        // Tiny-m flush: shift < -31 -> (0, 0); the round-up can rescue m just below 2^-32.
        XCTAssertEqual(try qm(0x1p-32), QuantizedMultiplier(multiplier: 1 << 30, shift: -31))
        XCTAssertEqual(try qm(0x1p-32.nextDown), QuantizedMultiplier(multiplier: 1 << 30, shift: -31))
        XCTAssertEqual(try qm(0x1p-32 * (1 - 0x1p-22)), .zero)
        XCTAssertEqual(try qm(0x1p-33), .zero)
        XCTAssertEqual(try qm(.leastNonzeroMagnitude), .zero)
        XCTAssertEqual(try qm(.leastNormalMagnitude), .zero)
        XCTAssertEqual(try qm(0), .zero)
        XCTAssertEqual(try qm(-0.0), .zero)
        // Upper bound: shift <= 30, i.e. m < 2^30 - 1/4.
        XCTAssertEqual(try qm(0x1p30 - 0.5), QuantizedMultiplier(multiplier: .max, shift: 30))
        XCTAssertThrowsError(try qm(0x1p30 - 0.25)) { XCTAssertEqual($0 as? QuantizedMultiplierError, .shiftTooLarge(0x1p30 - 0.25, shift: 31)) }
        XCTAssertThrowsError(try qm(0x1p30)) { XCTAssertEqual($0 as? QuantizedMultiplierError, .shiftTooLarge(0x1p30, shift: 31)) }
        XCTAssertThrowsError(try qm(.greatestFiniteMagnitude))
        XCTAssertEqual(try qm(1e6).shift, 20)
        // Invalid inputs.
        XCTAssertThrowsError(try qm(.nan)) { if case .notFinite(let v)? = $0 as? QuantizedMultiplierError { XCTAssert(v.isNaN) } else { XCTFail("\($0)") } }
        XCTAssertThrowsError(try qm(.infinity)) { XCTAssertEqual($0 as? QuantizedMultiplierError, .notFinite(.infinity)) }
        XCTAssertThrowsError(try qm(-.infinity)) { XCTAssertEqual($0 as? QuantizedMultiplierError, .notFinite(-.infinity)) }
        XCTAssertThrowsError(try qm(-1)) { XCTAssertEqual($0 as? QuantizedMultiplierError, .negative(-1)) }
        XCTAssertThrowsError(try qm(-.leastNonzeroMagnitude)) { XCTAssertEqual($0 as? QuantizedMultiplierError, .negative(-.leastNonzeroMagnitude)) }
        XCTAssertTrue(QuantizedMultiplierError.negative(-2).description.contains("negative"))
        // realValue is exact for quantized values.
        XCTAssertEqual(try qm(0.75).realValue, 0.75)
        XCTAssertEqual(try qm(0x1p-32).realValue, 0x1p-32)
    }

    // MARK: requantize

    private func multipliers(_ g: inout Xoshiro256StarStar) -> [Int32] {
        var ms: [Int32] = [0, 1 << 30, (1 << 30) + 1, Int32.max, Int32.max - 1, 3 << 29]
        for _ in 0..<4 { ms.append(Int32((1 << 30) + g.int(below: 1 << 30))) }
        return ms
    }

    func testRequantizeBothModesEveryShift() {
        var v = Values(seed: 33)
        var checked = 0
        for shift in Int32(-31)...30 {
            for mult in multipliers(&v.g) {
                var accs = Values.int32Boundaries
                for _ in 0..<40 { accs.append(v.int32()) }
                // Ties for single rounding with mult = 2^30: acc / 2^(1 - shift) = (2k+1)/2, i.e. acc = (2k+1)·2^(-shift).
                if mult == 1 << 30 && shift <= 0 && shift >= -29 { let h = Int32(1) << Int(-shift); accs += [h, -h, 3 * h, h - 1, h + 1] }
                let m = QuantizedMultiplier(multiplier: mult, shift: shift)
                for acc in accs {
                    let single = requantize(acc, m, mode: .singleRounding)
                    let double = requantize(acc, m, mode: .doubleRounding)
                    let wantSingle = Oracle.singleRounding(Int128(acc), mult, shift)
                    let wantDouble = Oracle.doubleRounding(acc, mult, shift)
                    if single != wantSingle { XCTFail("single acc \(acc) m \(m): \(single) != \(wantSingle)"); return }
                    if double != wantDouble { XCTFail("double acc \(acc) m \(m): \(double) != \(wantDouble)"); return }
                    XCTAssertEqual(requantizeSingleRounding(Int64(acc), m), wantSingle)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 30_000)
    }

    /// Hand-worked examples; the last one shows the two modes differ.
    func testRequantizeHandValues() throws {
        let half = try QuantizedMultiplier(real: 0.5)          // (2^30, 0)
        XCTAssertEqual(requantize(3, half, mode: .singleRounding), 2)     // 1.5 -> 2
        XCTAssertEqual(requantize(-3, half, mode: .singleRounding), -1)   // -1.5 -> -1 (half up)
        XCTAssertEqual(requantize(-3, half, mode: .doubleRounding), -1)   // srdhm: -1.5 -> -1
        XCTAssertEqual(requantize(Int32.max, half, mode: .singleRounding), 1 << 30)
        let quarter = try QuantizedMultiplier(real: 0.25)      // (2^30, -1)
        XCTAssertEqual(requantize(-2, quarter, mode: .singleRounding), 0)   // -0.5 -> 0
        XCTAssertEqual(requantize(-2, quarter, mode: .doubleRounding), -1)  // srdhm -1, then -0.5 -> -1
        let big = try QuantizedMultiplier(real: 1000)
        XCTAssertEqual(requantize(Int32.max, big, mode: .singleRounding), .max)
        XCTAssertEqual(requantize(Int32.min, big, mode: .singleRounding), .min)
        XCTAssertEqual(requantize(7, .zero, mode: .singleRounding), 0)
        XCTAssertEqual(requantize(7, .zero, mode: .doubleRounding), 0)
    }

    /// Hand-made multipliers outside the init(real:) range: documented, exact, never a trap.
    func testRequantizeOutsideContract() {
        var v = Values(seed: 34)
        let shifts: [Int32] = [.min, .min + 1, -200, -129, -128, -100, -64, -63, -40, -33, -32, 31, 32, 33, 40, 63, 64, 100, 128, 129, 200, .max]
        let mults: [Int32] = [.min, .min + 1, -1, -(1 << 30), 1, 2, 12345, 1 << 29, .max]
        for shift in shifts {
            for mult in mults {
                var accs = Values.int32Boundaries
                for _ in 0..<10 { accs.append(v.int32()) }
                let m = QuantizedMultiplier(multiplier: mult, shift: shift)
                for acc in accs {
                    XCTAssertEqual(requantize(acc, m, mode: .singleRounding), Oracle.singleRounding(Int128(acc), mult, shift), "single \(acc) \(m)")
                    XCTAssertEqual(requantize(acc, m, mode: .doubleRounding), Oracle.doubleRounding(acc, mult, shift), "double \(acc) \(m)")
                }
            }
        }
    }

    func testRequantizeInt64Accumulator() {
        var v = Values(seed: 35)
        var checked = 0
        var shifts = Array(Int32(-31)...30)
        shifts += [.min, -200, -96, -66, -65, -64, -63, -33, -32, 31, 32, 40, 64, 200, .max]
        for shift in shifts {
            var mults = multipliers(&v.g)
            mults += [.min, -1, -(1 << 30)]
            for mult in mults {
                var accs = Values.int64Boundaries
                for _ in 0..<30 { accs.append(v.int64()) }
                // Ties for single rounding with mult = 2^30: acc·2^30/2^t = (2k+1)/2, i.e. acc = (2k+1)·2^(t-31).
                let t = 31 - Int(shift)
                if mult == 1 << 30 && t >= 31 && t <= 92 {
                    let h = Int64(1) << (t - 31)
                    accs += [h, -h, 3 * h, -3 * h, h - 1, h + 1]
                }
                let m = QuantizedMultiplier(multiplier: mult, shift: shift)
                for acc in accs {
                    let got = requantizeSingleRounding(acc, m)
                    let want = Oracle.singleRounding(Int128(acc), mult, shift)
                    if got != want { XCTFail("int64 acc \(acc) m \(m): \(got) != \(want)"); return }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 20_000)
        // A 64-bit accumulator beyond Int32 that scales back into range, exactly.
        let m = QuantizedMultiplier(multiplier: 1 << 30, shift: -20)      // 2^-21
        XCTAssertEqual(requantizeSingleRounding(Int64(1) << 40, m), 1 << 19)
        XCTAssertEqual(requantizeSingleRounding(-(Int64(1) << 40) - (1 << 20), m), -(1 << 19))  // -2^19 - 1/2 -> up
        XCTAssertEqual(requantizeSingleRounding(.min, QuantizedMultiplier(multiplier: .min, shift: -64)), 1) // 2^94/2^95 = 1/2 -> 1
    }

    func testModeRawValues() {
        XCTAssertEqual(RequantMode.singleRounding.rawValue, 0)
        XCTAssertEqual(RequantMode.doubleRounding.rawValue, 1)
    }
}
