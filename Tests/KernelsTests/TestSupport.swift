import XCTest
import FixedPoint
import Randomness
@testable import Kernels

/// Element-wise `==`; the failure names the stage, the first mismatching index, expected and got.
func assertBitExact<T: Equatable>(_ expected: [T], _ got: [T], stage: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
    guard expected.count == got.count else {
        XCTFail("\(stage): count expected \(expected.count), got \(got.count)", file: file, line: line); return
    }
    for i in 0..<expected.count where expected[i] != got[i] {
        XCTFail("\(stage): index \(i): expected \(expected[i]), got \(got[i])", file: file, line: line)
        return
    }
}

extension Xoshiro256StarStar {
    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + int(below: r.upperBound - r.lowerBound + 1) }
    mutating func int64(_ r: ClosedRange<Int64>) -> Int64 {
        let span = UInt64(bitPattern: r.upperBound &- r.lowerBound)
        if span == .max { return Int64(bitPattern: next()) }
        return r.lowerBound &+ Int64(bitPattern: next() % (span + 1))
    }
    mutating func bool() -> Bool { next() & 1 == 1 }
    mutating func rule() -> RoundingRule { RoundingRule(rawValue: UInt8(int(below: 5)))! }
}

/// A real gain as (multiplier, shift), `multiplier * 2^(shift-31)`, multiplier in [2^30, 2^31).
/// (Written here so the tests do not depend on the freeze code.)
func gainMultiplier(_ g: Double) -> (Int32, Int32) {
    precondition(g > 0)
    var e = Int(g.exponent) + 1
    var q = Int64((g.significand * 0.5 * 2147483648.0).rounded(.toNearestOrAwayFromZero))
    if q == 1 << 31 { q = 1 << 30; e += 1 }
    if e < -31 { return (0, 0) }
    precondition(e <= 30)
    return (Int32(q), Int32(e))
}

/// (C,H,W) -> (H,W,C)
func toHWC(_ x: [Int32], _ s: TensorShape) -> [Int32] {
    var out = [Int32](repeating: 0, count: x.count)
    for c in 0..<s.c { for i in 0..<(s.h * s.w) { out[i * s.c + c] = x[c * s.h * s.w + i] } }
    return out
}
/// (H,W,C) -> (C,H,W)
func toCHW(_ x: [Int32], _ s: TensorShape) -> [Int32] {
    var out = [Int32](repeating: 0, count: x.count)
    for c in 0..<s.c { for i in 0..<(s.h * s.w) { out[c * s.h * s.w + i] = x[i * s.c + c] } }
    return out
}

/// The paper's Fashion-MNIST CNN with random weights and gains scaled so that values use the
/// ranges (some ADC and activation saturation, about half the activations zero).
/// u8 28x28 -> maxpool 2 -> 4-bit codes -> conv 1->64 3x3 -> act 4b -> conv 64->16 3x3 (2 tiles)
/// -> maxpool 2 -> act 4b -> flatten 400 -> fc 400->128 -> act 4b -> fc 128->10 -> logits.
func makeCNN(seed: UInt64, weightBits: Int = 8, adcBits: Int = 14, codeBits: Int = 4) -> Program {
    SamplePrograms.fashionMNISTCNN(seed: seed, weightBits: weightBits, codeBits: codeBits, adcBits: adcBits, randomRounding: true)
}

/// Random 28x28 "images": a bright disc on a noisy dark background (not uniform noise).
func randomImages(_ n: Int, seed: UInt64) -> [UInt8] { SamplePrograms.images(n, seed: seed) }

/// A 16-byte aligned Int16 scratch buffer (the fast crossbar's patch), garbage-filled so that
/// a kernel relying on stale zeros would fail.
final class AlignedPatch {
    let raw: UnsafeMutableRawPointer
    let pointer: UnsafeMutablePointer<Int16>
    init(_ n: Int) {
        raw = .allocate(byteCount: n * 2, alignment: 16)
        pointer = raw.bindMemory(to: Int16.self, capacity: n)
        pointer.initialize(repeating: 0x5A5A, count: n)
    }
    deinit { raw.deallocate() }
}
