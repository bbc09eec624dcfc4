import XCTest
import Randomness
@testable import FixedPoint

@available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
final class RoundingTests: XCTestCase {
    /// Raw values are part of the model-file format.
    func testRawValuesAreStable() {
        XCTAssertEqual(RoundingRule.allCases.map(\.rawValue), [0, 1, 2, 3, 4])
        XCTAssertEqual(RoundingRule.allCases, [.floor, .towardZero, .halfUp, .halfAwayFromZero, .halfToEven])
    }

    /// Hand-computed table (also in docs/FIXEDPOINT.md): x / 2 and x / 4 for every rule.
    func testHandTable() {
        let halves: [Int64] = [-5, -3, -1, 1, 3, 5]             // -2.5 -1.5 -0.5 0.5 1.5 2.5
        let quarters: [Int64] = [-7, -5, -3, 3, 5, 7]           // -1.75 -1.25 -0.75 0.75 1.25 1.75
        let expectedHalves: [RoundingRule: [Int64]] = [
            .floor: [-3, -2, -1, 0, 1, 2],
            .towardZero: [-2, -1, 0, 0, 1, 2],
            .halfUp: [-2, -1, 0, 1, 2, 3],
            .halfAwayFromZero: [-3, -2, -1, 1, 2, 3],
            .halfToEven: [-2, -2, 0, 0, 2, 2],
        ]
        let expectedQuarters: [RoundingRule: [Int64]] = [
            .floor: [-2, -2, -1, 0, 1, 1],
            .towardZero: [-1, -1, 0, 0, 1, 1],
            .halfUp: [-2, -1, -1, 1, 1, 2],
            .halfAwayFromZero: [-2, -1, -1, 1, 1, 2],
            .halfToEven: [-2, -1, -1, 1, 1, 2],
        ]
        for rule in RoundingRule.allCases {
            XCTAssertEqual(halves.map { roundingShiftRight($0, 1, rule) }, expectedHalves[rule], "\(rule) /2")
            XCTAssertEqual(quarters.map { roundingShiftRight($0, 2, rule) }, expectedQuarters[rule], "\(rule) /4")
            XCTAssertEqual(halves.map { roundingShiftRight(Int32($0), 1, rule) }, expectedHalves[rule]!.map { Int32($0) })
        }
        // Every pair of rules differs on the tie table: a changed tie rule cannot go unnoticed.
        for a in RoundingRule.allCases {
            for b in RoundingRule.allCases where a != b {
                XCTAssertNotEqual(expectedHalves[a], expectedHalves[b], "\(a) vs \(b)")
            }
        }
    }

    /// Ties ±k·2^s + 2^(s-1) and their neighbours, limited to the type's range.
    private func ties(shift s: Int, lo: Int128, hi: Int128, ks: [Int128]) -> [Int128] {
        guard s >= 1 else { return [] }
        let d = Oracle.pow2(s), h = Oracle.pow2(s - 1)
        var out: [Int128] = []
        for k in ks {
            for base in [k * d + h, -k * d + h, -(k * d + h)] {
                for delta: Int128 in [-1, 0, 1] { out.append(base + delta) }
            }
        }
        // Extreme ties: the largest and the smallest representable tie.
        let top = Oracle.floorDivMod(hi, d).q * d + h
        let bottom = Oracle.floorDivMod(lo, d).q * d + h
        for v in [top, top - d, bottom, bottom + d] { for delta: Int128 in [-1, 0, 1] { out.append(v + delta) } }
        return out.filter { $0 >= lo && $0 <= hi }
    }

    func testInt64EveryRuleEveryShift() {
        var v = Values(seed: 1)
        var checked = 0
        for s in 0...63 {
            var xs = Values.int64Boundaries
            let ks: [Int128] = [0, 1, 2, 3, 7, Int128(v.g.int(below: 1 << 20))]
            xs += ties(shift: s, lo: Int128(Int64.min), hi: Int128(Int64.max), ks: ks).map { Int64($0) }
            for _ in 0..<120 { xs.append(v.int64()) }
            for rule in RoundingRule.allCases {
                for x in xs {
                    let got = roundingShiftRight(x, s, rule)
                    let want = Oracle.roundingShiftRight64(x, s, rule)
                    if got != want { XCTFail("Int64 \(x) >> \(s) \(rule): got \(got), want \(want)"); return }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 50_000)
    }

    func testInt32EveryRuleEveryShift() {
        var v = Values(seed: 2)
        var checked = 0
        for s in 0...40 {                                   // contract 0...31, plus exact extension
            var xs = Values.int32Boundaries
            let ks: [Int128] = [0, 1, 2, 3, 5, Int128(v.g.int(below: 1 << 10))]
            xs += ties(shift: s, lo: Int128(Int32.min), hi: Int128(Int32.max), ks: ks).map { Int32($0) }
            for _ in 0..<120 { xs.append(v.int32()) }
            for rule in RoundingRule.allCases {
                for x in xs {
                    let got = roundingShiftRight(x, s, rule)
                    let want = Oracle.roundingShiftRight32(x, s, rule)
                    if got != want { XCTFail("Int32 \(x) >> \(s) \(rule): got \(got), want \(want)"); return }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 30_000)
    }

    /// Outside the 0...63 contract: exact rounding for large shifts, saturating left shift for
    /// negative ones; never a trap.
    func testInt64ShiftsOutsideContract() {
        var v = Values(seed: 3)
        var shifts = Array(64...130) + Array(-70 ... -1)
        shifts += [Int.max, Int.max - 1, Int.min, Int.min + 1, 1 << 40, -(1 << 40)]
        for s in shifts {
            var xs = Values.int64Boundaries + [Int64.min / 2, Int64.min / 2 - 1, Int64.max / 2 + 1]
            for _ in 0..<40 { xs.append(v.int64()) }
            for rule in RoundingRule.allCases {
                for x in xs {
                    XCTAssertEqual(roundingShiftRight(x, s, rule), Oracle.roundingShiftRight64(x, s, rule),
                                   "\(x) >> \(s) \(rule)")
                }
            }
        }
        // The one exact tie beyond 63: Int64.min / 2^64 = -1/2.
        XCTAssertEqual(roundingShiftRight(Int64.min, 64, .halfAwayFromZero), -1)
        XCTAssertEqual(roundingShiftRight(Int64.min, 64, .halfToEven), 0)
        XCTAssertEqual(roundingShiftRight(Int64.min, 64, .halfUp), 0)
        XCTAssertEqual(roundingShiftRight(Int64.min, 65, .halfAwayFromZero), 0)
        XCTAssertEqual(roundingShiftRight(Int64.min, 64, .floor), -1)
    }

    func testInt32ShiftsOutsideContract() {
        var v = Values(seed: 4)
        for s in Array(-40 ... -1) + [Int.min, Int.max] {
            var xs = Values.int32Boundaries
            for _ in 0..<40 { xs.append(v.int32()) }
            for rule in RoundingRule.allCases {
                for x in xs {
                    XCTAssertEqual(roundingShiftRight(x, s, rule), Oracle.roundingShiftRight32(x, s, rule),
                                   "\(x) >> \(s) \(rule)")
                }
            }
        }
        XCTAssertEqual(roundingShiftRight(Int32.min, 32, .halfAwayFromZero), -1)
        XCTAssertEqual(roundingShiftRight(Int32(1), -31, .floor), Int32.max)
        XCTAssertEqual(roundingShiftRight(Int32(-1), -31, .floor), Int32.min)
    }

    /// Rounding at the extremes where a naive "add bias then shift" overflows.
    func testNoOverflowAtExtremes() {
        XCTAssertEqual(roundingShiftRight(Int64.max, 1, .halfUp), Int64(1) << 62)
        XCTAssertEqual(roundingShiftRight(Int64.max, 63, .halfUp), 1)
        XCTAssertEqual(roundingShiftRight(Int64.max, 63, .floor), 0)
        XCTAssertEqual(roundingShiftRight(Int64.min, 63, .halfToEven), -1)
        XCTAssertEqual(roundingShiftRight(Int64.min, 0, .halfUp), Int64.min)
        XCTAssertEqual(roundingShiftRight(Int64.min + 1, 63, .towardZero), 0)
        XCTAssertEqual(roundingShiftRight(Int32.max, 1, .halfAwayFromZero), Int32(1) << 30)
        XCTAssertEqual(roundingShiftRight(Int32.min, 31, .towardZero), -1)
    }

    func testSaturatingShiftLeft() {
        var v = Values(seed: 5)
        for n in -3...70 {
            var xs = Values.int64Boundaries
            for _ in 0..<30 { xs.append(v.int64()) }
            for x in xs {
                let want: Int64
                if n <= 0 { want = x } else if x == 0 { want = 0 } else if n >= 64 { want = x < 0 ? .min : .max } else {
                    want = Int64(Oracle.clamp(Int128(x) * Oracle.pow2(n), Int128(Int64.min), Int128(Int64.max)))
                }
                XCTAssertEqual(saturatingShiftLeft(x, n), want, "\(x) << \(n)")
            }
        }
    }
}
