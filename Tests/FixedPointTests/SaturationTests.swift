import XCTest
import Randomness
@testable import FixedPoint

@available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
final class SaturationTests: XCTestCase {
    private func c32(_ v: Int128) -> Int32 { Int32(Oracle.clamp(v, Int128(Int32.min), Int128(Int32.max))) }
    private func c64(_ v: Int128) -> Int64 { Int64(Oracle.clamp(v, Int128(Int64.min), Int128(Int64.max))) }

    private func pairs32(seed: UInt64) -> [(Int32, Int32)] {
        var v = Values(seed: seed)
        var out: [(Int32, Int32)] = []
        for a in Values.int32Boundaries { for b in Values.int32Boundaries { out.append((a, b)) } }
        for _ in 0..<5000 { out.append((v.int32(), v.int32())) }
        return out
    }

    private func pairs64(seed: UInt64) -> [(Int64, Int64)] {
        var v = Values(seed: seed)
        var out: [(Int64, Int64)] = []
        for a in Values.int64Boundaries { for b in Values.int64Boundaries { out.append((a, b)) } }
        for _ in 0..<5000 { out.append((v.int64(), v.int64())) }
        return out
    }

    func testInt32AddSubtractMultiply() {
        var saturatedSeen = 0
        for (a, b) in pairs32(seed: 10) {
            let (A, B) = (Int128(a), Int128(b))
            XCTAssertEqual(saturatingAdd(a, b), c32(A + B), "\(a) + \(b)")
            XCTAssertEqual(saturatingSubtract(a, b), c32(A - B), "\(a) - \(b)")
            XCTAssertEqual(saturatingMultiply(a, b), c32(A * B), "\(a) * \(b)")
            if c32(A * B) != Int32(truncatingIfNeeded: A * B) { saturatedSeen += 1 }
        }
        XCTAssertGreaterThan(saturatedSeen, 100)       // the saturating branch really was exercised
    }

    func testInt64AddSubtractMultiply() {
        var saturatedSeen = 0
        for (a, b) in pairs64(seed: 11) {
            let (A, B) = (Int128(a), Int128(b))
            XCTAssertEqual(saturatingAdd(a, b), c64(A + B), "\(a) + \(b)")
            XCTAssertEqual(saturatingSubtract(a, b), c64(A - B), "\(a) - \(b)")
            XCTAssertEqual(saturatingMultiply(a, b), c64(A * B), "\(a) * \(b)")
            if c64(A + B) != Int64(truncatingIfNeeded: A + B) { saturatedSeen += 1 }
            if c64(A * B) != Int64(truncatingIfNeeded: A * B) { saturatedSeen += 1 }
        }
        XCTAssertGreaterThan(saturatedSeen, 100)
    }

    private func edgeValues(_ n: Int, _ v: inout Values) -> [Int64] {
        var xs = Values.int64Boundaries
        for e in [n - 1, n] where e >= 0 && e <= 126 {
            for base in [Oracle.pow2(e), -Oracle.pow2(e)] {
                for d: Int128 in [-2, -1, 0, 1, 2] {
                    let x = base + d
                    if x >= Int128(Int64.min) && x <= Int128(Int64.max) { xs.append(Int64(x)) }
                }
            }
        }
        for _ in 0..<60 { xs.append(v.int64()) }
        return xs
    }

    func testSaturateSignedEveryWidth() {
        var v = Values(seed: 12)
        for n in 1...64 {
            let lo = -Oracle.pow2(n - 1), hi = Oracle.pow2(n - 1) - 1
            for x in edgeValues(n, &v) {
                XCTAssertEqual(saturate(x, signedBits: n), Int64(Oracle.clamp(Int128(x), lo, hi)), "\(x) s\(n)")
                if n <= 32 {
                    let x32 = Int32(clamping: x)
                    XCTAssertEqual(saturate(x32, signedBits: n), Int32(Oracle.clamp(Int128(x32), lo, hi)), "\(x32) s\(n)")
                }
            }
        }
    }

    func testSaturateUnsignedEveryWidth() {
        var v = Values(seed: 13)
        for n in 0...63 {
            let hi = Oracle.pow2(n) - 1
            for x in edgeValues(n, &v) {
                XCTAssertEqual(saturate(x, unsignedBits: n), Int64(Oracle.clamp(Int128(x), 0, hi)), "\(x) u\(n)")
                if n <= 31 {
                    let x32 = Int32(clamping: x)
                    XCTAssertEqual(saturate(x32, unsignedBits: n), Int32(Oracle.clamp(Int128(x32), 0, hi)), "\(x32) u\(n)")
                }
            }
        }
    }

    /// Documented clamping of out-of-range widths (no trap).
    func testSaturateWidthOutsideContract() {
        for x in Values.int64Boundaries {
            for n in [0, -1, -64, Int.min] {
                XCTAssertEqual(saturate(x, signedBits: n), Int64(Oracle.clamp(Int128(x), -1, 0)))
                XCTAssertEqual(saturate(x, unsignedBits: n), 0)
                XCTAssertEqual(saturate(Int32(clamping: x), signedBits: n), Int32(Oracle.clamp(Int128(x), -1, 0)))
            }
            for n in [65, 1000, Int.max] {
                XCTAssertEqual(saturate(x, signedBits: n), x)
                XCTAssertEqual(saturate(x, unsignedBits: n), Int64(Oracle.clamp(Int128(x), 0, Int128(Int64.max))))
                XCTAssertEqual(saturate(Int32(clamping: x), signedBits: n), Int32(clamping: x))
                XCTAssertEqual(saturate(Int32(clamping: x), unsignedBits: n),
                               Int32(Oracle.clamp(Int128(x), 0, Int128(Int32.max))))
            }
        }
    }

    private func checkNarrow<T: FixedWidthInteger>(_: T.Type, seed: UInt64) {
        var v = Values(seed: seed)
        let lo = Int128(T.min), hi = Int128(T.max)
        var xs = Values.int64Boundaries
        for e in [Int128(T.min), Int128(T.max)] { for d: Int128 in [-1, 0, 1] where e + d >= Int128(Int64.min) && e + d <= Int128(Int64.max) { xs.append(Int64(e + d)) } }
        for _ in 0..<500 { xs.append(v.int64()) }
        for x in xs {
            XCTAssertEqual(Int128(saturatingNarrow(x, to: T.self)), Oracle.clamp(Int128(x), lo, hi), "\(x) -> \(T.self)")
            let x32 = Int32(clamping: x)
            XCTAssertEqual(Int128(saturatingNarrow(x32, to: T.self)), Oracle.clamp(Int128(x32), lo, hi), "\(x32) -> \(T.self)")
        }
    }

    func testNarrowingToNamedTypes() {
        checkNarrow(Int32.self, seed: 20)
        checkNarrow(Int16.self, seed: 21)
        checkNarrow(Int8.self, seed: 22)
        checkNarrow(UInt8.self, seed: 23)
        checkNarrow(UInt16.self, seed: 24)
        checkNarrow(UInt32.self, seed: 25)
        checkNarrow(Int64.self, seed: 26)
        checkNarrow(UInt64.self, seed: 27)
        XCTAssertEqual(saturatingNarrow(Int64(300), to: UInt8.self), 255)
        XCTAssertEqual(saturatingNarrow(Int64(-1), to: UInt8.self), 0)
        XCTAssertEqual(saturatingNarrow(Int64(-129), to: Int8.self), -128)
        XCTAssertEqual(saturatingNarrow(Int64.max, to: Int32.self), Int32.max)
    }
}
