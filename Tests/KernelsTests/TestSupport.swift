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
    var rng = Xoshiro256StarStar(seed: seed)
    var tensors: [TensorDesc] = []
    var nodes: [Node] = []
    func add(_ t: TensorDesc) -> Int { tensors.append(t); return tensors.count - 1 }
    let x0 = add(.code(TensorShape(c: 1, h: 28, w: 28), bits: 8))
    let x1 = add(.code(TensorShape(c: 1, h: 14, w: 14), bits: 8))
    nodes.append(Node(.maxPool(MaxPoolParams(2)), inputs: [x0], output: x1))
    let x2 = add(.code(TensorShape(c: 1, h: 14, w: 14), bits: codeBits))
    let cmax = (1 << codeBits) - 1
    nodes.append(Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: Int32(cmax), shift: 8, offset: 0,
                                                    outBits: codeBits, rounding: .halfUp)), inputs: [x1], output: x2))
    let wHalf = 1 << (weightBits - 1)
    func crossbar(_ input: Int, _ inShape: TensorShape, cout: Int, k: Int) -> (Int, TensorShape, Int) {
        let fanIn = inShape.c * k * k
        var w = [Int8](repeating: 0, count: cout * fanIn)
        for i in 0..<w.count {
            // ~30% pruned pairs: tiny residual codes; the rest uniform
            w[i] = rng.int(below: 10) < 3 ? Int8(rng.int(-1...1)) : Int8(rng.int(-wHalf...(wHalf - 1)))
        }
        let rmsW = Double(wHalf) / 3.0.squareRoot() * 0.85
        let rmsA = Double(cmax) * 0.45
        var tiles: [TileADC] = []
        var start = 0
        while start < fanIn {
            let n = min(512, fanIn - start)
            let std = (Double(n)).squareRoot() * rmsA * rmsW
            let g = Double(1 << (adcBits - 1)) / (2.5 * std) * (0.7 + 0.6 * rng.uniform())
            let (m, s) = gainMultiplier(g)
            tiles.append(TileADC(rowStart: start, rowCount: n, multiplier: m, shift: s, rounding: rng.rule(), bits: adcBits))
            start += n
        }
        let p = CrossbarParams(inChannels: inShape.c, outChannels: cout, kernelH: k, kernelW: k,
                               weightBits: weightBits, weights: w, weightLSBMicroSiemens: 0.5, tiles: tiles)
        let os = p.outputShape(for: inShape)
        let o = add(.sum(os))
        nodes.append(Node(.crossbar(p), inputs: [input], output: o))
        return (o, os, tiles.count)
    }
    func act(_ input: Int, _ s: TensorShape, tiles: Int) -> Int {
        let std = Double(tiles).squareRoot() * Double(1 << (adcBits - 1)) / 2.5
        var mul: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
        for _ in 0..<s.c {
            let scale = Double(cmax) / (2.0 * std) * (0.5 + rng.uniform())   // real multiplier
            let shift = 24
            mul.append(Int32(scale * Double(1 << shift)))
            sh.append(Int32(shift))
            off.append(Int64((rng.uniform() - 0.4) * 4.0 * Double(1 << shift)))
        }
        let o = add(.code(s, bits: codeBits))
        nodes.append(Node(.activation(AffineQuantParams(multiplier: mul, shift: sh, offset: off, outBits: codeBits,
                                                         rounding: rng.rule())), inputs: [input], output: o))
        return o
    }
    let (c1, s1, t1) = crossbar(x2, TensorShape(c: 1, h: 14, w: 14), cout: 64, k: 3)   // 64x12x12
    let a1 = act(c1, s1, tiles: t1)
    let (c2, s2, t2) = crossbar(a1, s1, cout: 16, k: 3)                               // 16x10x10, 2 tiles
    let s2p = TensorShape(c: 16, h: 5, w: 5)
    let p2 = add(.sum(s2p))
    nodes.append(Node(.maxPool(MaxPoolParams(2)), inputs: [c2], output: p2))
    _ = s2
    let a2 = act(p2, s2p, tiles: t2)
    let f = add(.code(TensorShape(c: 400, h: 1, w: 1), bits: codeBits))
    nodes.append(Node(.flatten, inputs: [a2], output: f))
    let (c3, s3, t3) = crossbar(f, TensorShape(c: 400, h: 1, w: 1), cout: 128, k: 1)
    let a3 = act(c3, s3, tiles: t3)
    let (c4, _, _) = crossbar(a3, s3, cout: 10, k: 1)
    return Program(tensors: tensors, nodes: nodes, input: x0, output: c4, arrayRows: 512)
}

/// Random 28x28 "images": a few bright blobs on a dark background (not uniform noise).
func randomImages(_ n: Int, seed: UInt64, pixels: Int = 784) -> [UInt8] {
    var rng = Xoshiro256StarStar(seed: seed)
    var out = [UInt8](repeating: 0, count: n * pixels)
    let side = Int(Double(pixels).squareRoot())
    for i in 0..<n {
        let cx = Double(rng.int(6...21)), cy = Double(rng.int(6...21)), r = Double(rng.int(3...9))
        for y in 0..<side { for x in 0..<side {
            let d = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)).squareRoot()
            var v = d < r ? 255.0 * (1 - d / r) + 40 : 0
            v += Double(rng.int(0...30))
            out[i * pixels + y * side + x] = UInt8(min(255, max(0, v)))
        } }
    }
    return out
}

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
