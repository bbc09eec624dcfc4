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

    /// `bits` is the documented chain of mixes (docs/DEVICE.md, "The draws, exactly"), and the
    /// prefix keys reproduce it and `normal`.
    func testCounterBitsAreTheDocumentedMixesAndKeysReuseTheirPrefix() {
        func mix(_ z0: UInt64) -> UInt64 {
            var z = z0
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func oracle(_ seed: UInt64, _ stream: UInt64, _ index: UInt64, _ lane: UInt64) -> UInt64 {
            var h = mix(seed &+ 0x9E37_79B9_7F4A_7C15)
            h = mix(h ^ (stream &* 0xD6E8_FEB8_6659_FD93) ^ 0x5851_F42D_4C95_7F2D)
            h = mix(h ^ (index &* 0xA076_1D64_78BD_642F) ^ 0x1405_7B7E_F767_814F)
            return mix(h ^ (lane &* 0xE703_7ED1_A0B4_28DB) ^ 0x2545_F491_4F6C_DD1D)
        }
        var r = Xoshiro256StarStar(seed: 12)
        for i in 0..<2000 {
            let seed = r.next(), stream = CounterRandom.stream(r.next(), r.next()), index = i < 1000 ? UInt64(i) : r.next()
            let lane = UInt64(i % 4)
            let k = CounterRandom.key(CounterRandom.key(seed: seed, stream: stream), index: index)
            XCTAssertEqual(CounterRandom.bits(seed: seed, stream: stream, index: index, lane: lane), oracle(seed, stream, index, lane), "draw \(i)")
            XCTAssertEqual(CounterRandom.bits(k, lane: lane), oracle(seed, stream, index, lane), "draw \(i) from its key")
            let z = (-2.0 * log(unitDoubleOpenZero(oracle(seed, stream, index, 2 * lane)))).squareRoot()
                * cos(2.0 * Double.pi * unitDouble(oracle(seed, stream, index, 2 * lane + 1)))
            XCTAssertEqual(CounterRandom.normal(seed: seed, stream: stream, index: index, lane: lane).bitPattern, z.bitPattern, "normal \(i)")
            XCTAssertEqual(CounterRandom.normal(k, lane: lane).bitPattern, z.bitPattern, "normal \(i) from its key")
        }
        XCTAssertEqual(CounterRandom.stream(1, 2, 3), mix(mix(mix(mix(1 ^ 0x3C6E_F372_FE94_F82B) ^ 2) ^ 3) ^ 0))
    }

    func testCounterNormalMoments() {
        var m = 0.0, v = 0.0
        let n = 100_000
        for i in 0..<n { let z = CounterRandom.normal(seed: 1, stream: 9, index: UInt64(i)); m += z; v += z * z }
        XCTAssertEqual(m / Double(n), 0, accuracy: 0.015)
        XCTAssertEqual(v / Double(n), 1, accuracy: 0.02)
    }
}
