// Sample programs with random weights, for benchmarks and smoke tests before any trained model
// exists (e.g. `edgecli bench infer` without a model file). Deterministic in the seed.

import FixedPoint

public enum SamplePrograms {
    /// SplitMix64: a tiny self-contained generator (Kernels does not depend on Randomness).
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
        mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }
        mutating func rule() -> RoundingRule { RoundingRule(rawValue: UInt8(int(0, 4)))! }
    }

    /// The paper's Fashion-MNIST CNN shape with random weights and gains scaled so that values
    /// use their ranges: u8 28x28 -> maxpool 2 -> `codeBits` DAC codes -> conv 1->64 3x3 -> act
    /// -> conv 64->16 3x3 (fan-in 576: tiles of 512 + 64 rows) -> maxpool 2 -> act -> flatten 400
    /// -> fc 400->128 -> act -> fc 128->10 -> logits. 1,057,024 MACs per image.
    /// `randomRounding`: every ADC and activation draws its rounding rule (tests use it to cover
    /// all rules); otherwise ADCs round half to even and activations half up.
    public static func fashionMNISTCNN(seed: UInt64, weightBits: Int = 8, codeBits: Int = 4, adcBits: Int = 14,
                                       arrayRows: Int = 512, randomRounding: Bool = false) -> Program {
        var rng = Generator(state: seed)
        var tensors: [TensorDesc] = []
        var nodes: [Node] = []
        func add(_ t: TensorDesc) -> Int { tensors.append(t); return tensors.count - 1 }
        let cmax = (1 << codeBits) - 1
        let x0 = add(.code(TensorShape(c: 1, h: 28, w: 28), bits: 8))
        let x1 = add(.code(TensorShape(c: 1, h: 14, w: 14), bits: 8))
        nodes.append(Node(.maxPool(MaxPoolParams(2)), inputs: [x0], output: x1))
        let x2 = add(.code(TensorShape(c: 1, h: 14, w: 14), bits: codeBits))
        nodes.append(Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: Int32(cmax), shift: 8, offset: 0,
                                                        outBits: codeBits, rounding: .halfUp)), inputs: [x1], output: x2))
        let wHalf = 1 << (weightBits - 1)
        func crossbar(_ input: Int, _ s: TensorShape, cout: Int, k: Int) -> (Int, TensorShape, Int) {
            let fanIn = s.c * k * k
            var w = [Int8](repeating: 0, count: cout * fanIn)
            for i in 0..<w.count {
                // ~30% pruned pairs with tiny residual codes, the rest uniform
                w[i] = rng.int(0, 9) < 3 ? Int8(rng.int(-1, 1)) : Int8(rng.int(-wHalf, wHalf - 1))
            }
            let rmsW = Double(wHalf) / 3.0.squareRoot() * 0.85, rmsA = Double(cmax) * 0.45
            var tiles: [TileADC] = []
            var start = 0
            while start < fanIn {
                let n = Swift.min(arrayRows, fanIn - start)
                let g = Double(1 << (adcBits - 1)) / (2.5 * Double(n).squareRoot() * rmsA * rmsW) * (0.7 + 0.6 * rng.uniform())
                let q = (try? QuantizedMultiplier(real: g)) ?? .zero
                tiles.append(TileADC(rowStart: start, rowCount: n, gain: q, rounding: randomRounding ? rng.rule() : .halfToEven, bits: adcBits))
                start += n
            }
            let p = CrossbarParams(inChannels: s.c, outChannels: cout, kernelH: k, kernelW: k, weightBits: weightBits,
                                   weights: w, weightLSBMicroSiemens: 1, tiles: tiles)
            let os = p.outputShape(for: s)
            let o = add(.sum(os))
            nodes.append(Node(.crossbar(p), inputs: [input], output: o))
            return (o, os, tiles.count)
        }
        func act(_ input: Int, _ s: TensorShape, tiles: Int) -> Int {
            let std = Double(tiles).squareRoot() * Double(1 << (adcBits - 1)) / 2.5
            let shift = 24
            var m: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<s.c {
                m.append(Int32(Double(cmax) / (2.0 * std) * (0.5 + rng.uniform()) * Double(1 << shift)))
                sh.append(Int32(shift))
                off.append(Int64((rng.uniform() - 0.4) * 4.0 * Double(1 << shift)))
            }
            let o = add(.code(s, bits: codeBits))
            nodes.append(Node(.activation(AffineQuantParams(multiplier: m, shift: sh, offset: off, outBits: codeBits,
                                                             rounding: randomRounding ? rng.rule() : .halfUp)), inputs: [input], output: o))
            return o
        }
        let (c1, s1, t1) = crossbar(x2, TensorShape(c: 1, h: 14, w: 14), cout: 64, k: 3)
        let a1 = act(c1, s1, tiles: t1)
        let (c2, _, t2) = crossbar(a1, s1, cout: 16, k: 3)
        let sp = TensorShape(c: 16, h: 5, w: 5)
        let p2 = add(.sum(sp))
        nodes.append(Node(.maxPool(MaxPoolParams(2)), inputs: [c2], output: p2))
        let a2 = act(p2, sp, tiles: t2)
        let f = add(.code(TensorShape(c: 400, h: 1, w: 1), bits: codeBits))
        nodes.append(Node(.flatten, inputs: [a2], output: f))
        let (c3, s3, t3) = crossbar(f, TensorShape(c: 400, h: 1, w: 1), cout: 128, k: 1)
        let a3 = act(c3, s3, tiles: t3)
        let (c4, _, _) = crossbar(a3, s3, cout: 10, k: 1)
        return Program(tensors: tensors, nodes: nodes, input: x0, output: c4, arrayRows: arrayRows)
    }

    /// `count` deterministic 28x28 test images (a bright disc on a noisy dark background).
    public static func images(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = Generator(state: seed ^ 0x5DEE_CE66_D1CE_4E5B)
        var out = [UInt8](repeating: 0, count: count * 784)
        for i in 0..<count {
            let cx = Double(rng.int(6, 21)), cy = Double(rng.int(6, 21)), r = Double(rng.int(3, 9))
            for y in 0..<28 {
                for x in 0..<28 {
                    let d = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)).squareRoot()
                    let v = (d < r ? 255.0 * (1 - d / r) + 40 : 0) + Double(rng.int(0, 30))
                    out[i * 784 + y * 28 + x] = UInt8(Swift.min(255, Swift.max(0, v)))
                }
            }
        }
        return out
    }
}
