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

    /// The paper's spoken-digit CRNN shape (DATAPATH.md section 15) with random weights and gains
    /// scaled so that values use their ranges: input `(1, 23, 20)` = the feature DAC codes
    /// (`FeatureEncoding`, 0...7) -> identity input quantizer to 3-bit codes -> conv 1->64 3x2
    /// stride (2,1) -> maxpool 2 (sums) -> act -> conv 64->32 3x2 stride (2,1) -> maxpool 2 -> act
    /// `(32, 1, 4)` -> rnn 32->128 (T = 4) -> fc 128->256 -> act -> fc 256->10 -> logits.
    public static func spokenDigitCRNN(seed: UInt64, weightBits: Int = 8, codeBits: Int = 3, adcBits: Int = 14,
                                       arrayRows: Int = 512, randomRounding: Bool = false) -> Program {
        var rng = Generator(state: seed)
        var tensors: [TensorDesc] = []
        var nodes: [Node] = []
        func add(_ t: TensorDesc) -> Int { tensors.append(t); return tensors.count - 1 }
        let cmax = (1 << codeBits) - 1
        let x0 = add(.code(TensorShape(c: 1, h: 23, w: 20), bits: 8))
        let x1 = add(.code(TensorShape(c: 1, h: 23, w: 20), bits: codeBits))
        nodes.append(Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: 1, shift: 0, offset: 0,
                                                        outBits: codeBits, rounding: .halfUp)), inputs: [x0], output: x1))
        let wHalf = 1 << (weightBits - 1)
        let rmsW = Double(wHalf) / 3.0.squareRoot() * 0.85, rmsA = Double(cmax) * 0.45
        func matrix(cin: Int, cout: Int, kh: Int, kw: Int, sh: Int = 1, sw: Int = 1) -> CrossbarParams {
            let fanIn = cin * kh * kw
            var w = [Int8](repeating: 0, count: cout * fanIn)
            for i in 0..<w.count { w[i] = rng.int(0, 9) < 3 ? Int8(rng.int(-1, 1)) : Int8(rng.int(-wHalf, wHalf - 1)) }
            var tiles: [TileADC] = []
            var start = 0
            while start < fanIn {
                let n = Swift.min(arrayRows, fanIn - start)
                let g = Double(1 << (adcBits - 1)) / (2.5 * Double(n).squareRoot() * rmsA * rmsW) * (0.7 + 0.6 * rng.uniform())
                let q = (try? QuantizedMultiplier(real: g)) ?? .zero
                tiles.append(TileADC(rowStart: start, rowCount: n, gain: q, rounding: randomRounding ? rng.rule() : .halfToEven, bits: adcBits))
                start += n
            }
            return CrossbarParams(inChannels: cin, outChannels: cout, kernelH: kh, kernelW: kw, strideH: sh, strideW: sw,
                                  weightBits: weightBits, weights: w, weightLSBMicroSiemens: 1, tiles: tiles)
        }
        func crossbar(_ input: Int, _ s: TensorShape, _ p: CrossbarParams) -> (Int, TensorShape) {
            let os = p.outputShape(for: s)
            let o = add(.sum(os))
            nodes.append(Node(.crossbar(p), inputs: [input], output: o))
            return (o, os)
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
        func pool(_ input: Int, _ s: TensorShape) -> (Int, TensorShape) {
            let ps = TensorShape(c: s.c, h: s.h / 2, w: s.w / 2)
            let o = add(.sum(ps))
            nodes.append(Node(.maxPool(MaxPoolParams(2)), inputs: [input], output: o))
            return (o, ps)
        }
        let m1 = matrix(cin: 1, cout: 64, kh: 3, kw: 2, sh: 2, sw: 1)
        let (c1, s1) = crossbar(x1, TensorShape(c: 1, h: 23, w: 20), m1)          // (64, 11, 19)
        let (p1, ps1) = pool(c1, s1)                                             // (64, 5, 9)
        let a1 = act(p1, ps1, tiles: m1.tiles.count)
        let m2 = matrix(cin: 64, cout: 32, kh: 3, kw: 2, sh: 2, sw: 1)
        let (c2, s2) = crossbar(a1, ps1, m2)                                     // (32, 2, 8)
        let (p2, ps2) = pool(c2, s2)                                             // (32, 1, 4)
        let a2 = act(p2, ps2, tiles: m2.tiles.count)
        // rnn: combiner scaled so that z / 2^S is a few hidden codes; output ~ the mean
        let hd = 128, steps = ps2.w
        let wi = matrix(cin: 32, cout: hd, kh: 1, kw: 1), wh = matrix(cin: hd, cout: hd, kh: 1, kw: 1)
        let S = 20
        let std = Double(1 << (adcBits - 1)) / 2.5
        let mx = Int32(Double(cmax) / (2.0 * std) * (0.5 + rng.uniform()) * Double(1 << S))
        let mh = Int32(Double(cmax) / (4.0 * std) * (0.5 + rng.uniform()) * Double(1 << S) * (rng.int(0, 1) == 0 ? 1 : -1))
        let so = 40
        var om: [Int32] = [], osh: [Int32] = [], oof: [Int64] = []
        for _ in 0..<hd {
            om.append(Int32(Double(1 << so) / Double(steps << S) * (0.6 + 0.8 * rng.uniform())))
            osh.append(Int32(so)); oof.append(Int64((rng.uniform() - 0.5) * Double(1 << so)))
        }
        let rp = RNNParams(input: wi, recurrent: wh, inputMultiplier: mx, recurrentMultiplier: mh, stateShift: Int32(S),
                           hiddenBits: codeBits, hiddenRounding: randomRounding ? rng.rule() : .halfUp,
                           output: AffineQuantParams(multiplier: om, shift: osh, offset: oof, outBits: codeBits,
                                                     rounding: randomRounding ? rng.rule() : .halfUp))
        let r = add(.code(TensorShape(c: hd, h: 1, w: 1), bits: codeBits))
        nodes.append(Node(.rnn(rp), inputs: [a2], output: r))
        let m3 = matrix(cin: hd, cout: 256, kh: 1, kw: 1)
        let (c3, s3) = crossbar(r, TensorShape(c: hd, h: 1, w: 1), m3)
        let a3 = act(c3, s3, tiles: m3.tiles.count)
        let m4 = matrix(cin: 256, cout: 10, kh: 1, kw: 1)
        let (c4, _) = crossbar(a3, s3, m4)
        return Program(tensors: tensors, nodes: nodes, input: x0, output: c4, arrayRows: arrayRows)
    }

    /// `count` deterministic spoken-digit-like inputs `(1, 23, 20)` as feature DAC codes 0...7
    /// (`FeatureEncoding.encode` of smooth random features in [0, 1]).
    public static func featureCodes(_ count: Int, seed: UInt64, bits: Int = 3) -> [UInt8] {
        var rng = Generator(state: seed ^ 0x1234_5678_9ABC_DEF1)
        var out = [UInt8](repeating: 0, count: count * 460)
        for i in 0..<count {
            let f0 = rng.uniform() * 20, a = rng.uniform()
            for y in 0..<23 { for x in 0..<20 {
                let d = Double(y) - f0 - Double(x) * 0.3
                let v = Float(Swift.min(1, Swift.max(0, a * (1 - d * d / 40) + 0.2 * rng.uniform())))
                out[i * 460 + y * 20 + x] = FeatureEncoding.code(v, bits: bits) ?? 0
            } }
        }
        return out
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
