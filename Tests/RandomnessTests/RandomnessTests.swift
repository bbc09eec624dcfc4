import XCTest
@testable import Randomness

final class RandomnessTests: XCTestCase {
    /// Known answers of the reference C implementations.
    func testKnownAnswers() {
        var sm = SplitMix64(seed: 0)
        XCTAssertEqual(sm.next(), 0xE220_A839_7B1D_CDAF)
        var x = Xoshiro256StarStar(seed: 0)
        x.s0 = 1; x.s1 = 2; x.s2 = 3; x.s3 = 4
        XCTAssertEqual([x.next(), x.next(), x.next(), x.next()],
                       [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240])
    }

    func testSameSeedSameStreamDifferentStreamsDiffer() {
        var a = Xoshiro256StarStar(seed: 42), b = Xoshiro256StarStar(seed: 42)
        for _ in 0..<1000 { XCTAssertEqual(a.next(), b.next()) }
        var c = Xoshiro256StarStar(seed: 42, stream: 1), d = Xoshiro256StarStar(seed: 42, stream: 2)
        var same = 0
        for _ in 0..<1000 where c.next() == d.next() { same += 1 }
        XCTAssertEqual(same, 0)
    }

    func testUniformAndNormalMoments() {
        var g = Xoshiro256StarStar(seed: 7)
        let n = 200_000
        var s = 0.0, s2 = 0.0, lo = 1.0, hi = 0.0
        for _ in 0..<n { let u = g.uniform(); s += u; s2 += u * u; lo = min(lo, u); hi = max(hi, u) }
        XCTAssertEqual(s / Double(n), 0.5, accuracy: 0.005)
        XCTAssertEqual(s2 / Double(n) - (s / Double(n)) * (s / Double(n)), 1.0 / 12.0, accuracy: 0.002)
        XCTAssertGreaterThanOrEqual(lo, 0); XCTAssertLessThan(hi, 1)
        var m = 0.0, v = 0.0, m4 = 0.0
        for _ in 0..<n { let z = g.normal(); m += z; v += z * z; m4 += z * z * z * z }
        XCTAssertEqual(m / Double(n), 0, accuracy: 0.01)
        XCTAssertEqual(v / Double(n), 1, accuracy: 0.015)
        XCTAssertEqual(m4 / Double(n), 3, accuracy: 0.08)  // kurtosis of a normal
    }

    func testIntBelowIsUniformAndInRange() {
        var g = Xoshiro256StarStar(seed: 3)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[g.int(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
        for _ in 0..<1000 { XCTAssertEqual(g.int(below: 1), 0) }
    }

    func testShuffleIsPermutationAndDeterministic() {
        var a = Xoshiro256StarStar(seed: 9), b = Xoshiro256StarStar(seed: 9)
        let p = a.permutation(1000), q = b.permutation(1000)
        XCTAssertEqual(p, q)
        XCTAssertEqual(p.sorted(), Array(0..<1000))
        XCTAssertNotEqual(p, Array(0..<1000))
        // every position receives every value about equally often
        var g = Xoshiro256StarStar(seed: 11)
        var first = [Int](repeating: 0, count: 5)
        for _ in 0..<50_000 { first[g.permutation(5)[0]] += 1 }
        for c in first { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
    }

    func testCounterDrawsAreOrderFreeAndKeySensitive() {
        let forward = (0..<1000).map { CounterRandom.bits(seed: 5, stream: 1, index: UInt64($0)) }
        let backward = (0..<1000).reversed().map { CounterRandom.bits(seed: 5, stream: 1, index: UInt64($0)) }
        XCTAssertEqual(forward, backward.reversed())
        XCTAssertEqual(Set(forward).count, 1000)
        // one changed key word flips about half the output bits
        var flips = 0
        for i in 0..<1000 {
            let base = CounterRandom.bits(seed: 5, stream: 1, index: UInt64(i))
            flips += (base ^ CounterRandom.bits(seed: 6, stream: 1, index: UInt64(i))).nonzeroBitCount
            flips += (base ^ CounterRandom.bits(seed: 5, stream: 2, index: UInt64(i))).nonzeroBitCount
            flips += (base ^ CounterRandom.bits(seed: 5, stream: 1, index: UInt64(i), lane: 1)).nonzeroBitCount
        }
        XCTAssertEqual(Double(flips) / 3000.0, 32, accuracy: 1)
        XCTAssertNotEqual(CounterRandom.stream(1, 2, 3), CounterRandom.stream(1, 3, 2))
    }

    func testCounterNormalMoments() {
        var m = 0.0, v = 0.0
        let n = 100_000
        for i in 0..<n { let z = CounterRandom.normal(seed: 1, stream: 9, index: UInt64(i)); m += z; v += z * z }
        XCTAssertEqual(m / Double(n), 0, accuracy: 0.015)
        XCTAssertEqual(v / Double(n), 1, accuracy: 0.02)
    }
}
