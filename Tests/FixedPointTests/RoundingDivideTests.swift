import XCTest
import Randomness
@testable import FixedPoint

@available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
final class RoundingDivideTests: XCTestCase {
    /// x / d rounded by `rule` from the definition on (q, r), in Int128 (written from the doc table).
    private func oracle(_ x: Int64, _ d: Int64, _ rule: RoundingRule) -> Int64 {
        let (q, r) = Oracle.floorDivMod(Int128(x), Int128(d))
        let twoR = 2 * r, dd = Int128(d)
        let up: Bool
        switch rule {
        case .floor: up = false
        case .towardZero: up = x < 0 && r != 0
        case .halfUp: up = twoR >= dd
        case .halfAwayFromZero: up = twoR > dd || (twoR == dd && x > 0)
        case .halfToEven: up = twoR > dd || (twoR == dd && q % 2 != 0)
        }
        return Int64(up ? q + 1 : q)
    }

    /// Hand table: x / 3 (no ties) and x / 6 (ties at r = 3) for every rule.
    func testHandTable() {
        let xs: [Int64] = [-9, -8, -7, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 8, 9]
        // x / 6: -1.5 -1.333 -1.167 -0.667 -0.5 -0.333 -0.167 0 0.167 0.333 0.5 0.667 0.833 1.333 1.5
        let want: [RoundingRule: [Int64]] = [
            .floor:            [-2, -2, -2, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 1, 1],
            .towardZero:       [-1, -1, -1,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 1, 1],
            .halfUp:           [-1, -1, -1, -1,  0,  0,  0, 0, 0, 0, 1, 1, 1, 1, 2],
            .halfAwayFromZero: [-2, -1, -1, -1, -1,  0,  0, 0, 0, 0, 1, 1, 1, 1, 2],
            .halfToEven:       [-2, -1, -1, -1,  0,  0,  0, 0, 0, 0, 0, 1, 1, 1, 2],
        ]
        for rule in RoundingRule.allCases {
            XCTAssertEqual(xs.map { roundingDivide($0, by: 6, rule) }, want[rule], "\(rule) /6")
        }
        // an odd divisor has no ties: halfUp, halfAwayFromZero and halfToEven agree
        for x in Int64(-50)...50 {
            let a = roundingDivide(x, by: 7, .halfUp)
            XCTAssertEqual(a, roundingDivide(x, by: 7, .halfAwayFromZero), "\(x)/7")
            XCTAssertEqual(a, roundingDivide(x, by: 7, .halfToEven), "\(x)/7")
        }
    }

    /// A power-of-two divisor gives exactly `roundingShiftRight`, for every shift 1...62.
    func testPowerOfTwoEqualsRoundingShift() {
        var v = Values(seed: 11)
        var checked = 0
        for s in 1...62 {
            let d = Int64(1) << Int64(s)
            var xs = Values.int64Boundaries
            for k: Int64 in [0, 1, 2, 5] { for sign: Int64 in [-1, 1] { for delta: Int64 in [-1, 0, 1] {
                let (kd, o1) = k.multipliedReportingOverflow(by: d)
                let (t, o2) = kd.addingReportingOverflow(d / 2)
                if !o1, !o2 { xs.append(t * sign + delta) }
            } } }
            for _ in 0..<60 { xs.append(v.int64()) }
            for rule in RoundingRule.allCases {
                for x in xs {
                    let got = roundingDivide(x, by: d, rule), want = roundingShiftRight(x, s, rule)
                    if got != want { XCTFail("\(x) / 2^\(s) \(rule): got \(got), roundingShiftRight \(want)"); return }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 20_000)
    }

    /// Random divisors (small, odd, even, huge) and values, including exact ties and Int64 extremes.
    func testRandomAgainstOracle() {
        var v = Values(seed: 12)
        var checked = 0, ties = 0
        for _ in 0..<3000 {
            let d: Int64
            switch v.g.int(below: 4) {
            case 0: d = Int64(v.g.int(below: 20)) + 1
            case 1: d = Int64(v.g.int(below: 1 << 20)) + 1
            case 2: d = Int64.max - Int64(v.g.int(below: 3))
            default: let r = v.int64(); d = r == .min ? .max : Swift.max(1, abs(r))
            }
            var xs = [v.int64(), Int64.min, Int64.max, 0, -1, 1]
            if d % 2 == 0 {
                let (t, o) = (Int64(v.g.int(below: 1000)) - 500).multipliedReportingOverflow(by: d)
                if !o, case let (x, o2) = t.addingReportingOverflow(d / 2), !o2 { xs.append(x); ties += 1 }
            }
            for rule in RoundingRule.allCases {
                for x in xs {
                    let got = roundingDivide(x, by: d, rule), want = oracle(x, d, rule)
                    if got != want { XCTFail("\(x) / \(d) \(rule): got \(got), want \(want)"); return }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 80_000)
        XCTAssertGreaterThan(ties, 300)
    }

    func testNonPositiveDivisorReturnsTheValue() {
        for d: Int64 in [0, -1, .min] { XCTAssertEqual(roundingDivide(17, by: d, .halfUp), 17) }
        XCTAssertEqual(roundingDivide(-17, by: 1, .floor), -17)
    }
}
