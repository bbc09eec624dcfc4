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

    /// Appends tensors and nodes of a sample program, drawing weights, ADC gains and activation
    /// parameters from one generator (the two samples below share it).
    struct Builder {
        var rng: Generator
        var tensors: [TensorDesc] = []
        var nodes: [Node] = []
        let weightBits: Int, codeBits: Int, adcBits: Int, arrayRows: Int, randomRounding: Bool
        let cmax: Int, rmsW: Double, rmsA: Double

        init(seed: UInt64, weightBits: Int, codeBits: Int, adcBits: Int, arrayRows: Int, randomRounding: Bool) {
            rng = Generator(state: seed)
            self.weightBits = weightBits; self.codeBits = codeBits; self.adcBits = adcBits
            self.arrayRows = arrayRows; self.randomRounding = randomRounding
            cmax = (1 << codeBits) - 1
            rmsW = Double(1 << (weightBits - 1)) / 3.0.squareRoot() * 0.85
            rmsA = Double(cmax) * 0.45
        }

        mutating func add(_ t: TensorDesc) -> Int { tensors.append(t); return tensors.count - 1 }

        /// Random weight codes (~30 % pruned pairs with tiny residual codes, the rest uniform) in
        /// row tiles of at most `arrayRows`, each with a gain that keeps the ADC codes in range.
        mutating func matrix(cin: Int, cout: Int, kh: Int, kw: Int, sh: Int = 1, sw: Int = 1, pad: Int = 0) -> CrossbarParams {
            let wHalf = 1 << (weightBits - 1)
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
                                  padH: pad, padW: pad, weightBits: weightBits, weights: w, weightLSBMicroSiemens: 1, tiles: tiles)
        }

        /// The input quantizer of one-channel pixels: `code = round(pixel * cmax / 256)` (half up).
        mutating func pixelQuant(_ input: Int, _ s: TensorShape) -> Int {
            let o = add(.code(s, bits: codeBits))
            nodes.append(Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: Int32(cmax), shift: 8, offset: 0,
                                                            outBits: codeBits, rounding: .halfUp)), inputs: [input], output: o))
            return o
        }

        /// A crossbar layer and its activation: codes out.
        mutating func convAct(_ input: Int, _ s: TensorShape, cout: Int, k: Int, stride: Int = 1, pad: Int = 0) -> (Int, TensorShape) {
            let m = matrix(cin: s.c, cout: cout, kh: k, kw: k, sh: stride, sw: stride, pad: pad)
            let (c, os) = crossbar(input, s, m)
            return (act(c, os, tiles: m.tiles.count), os)
        }

        /// The real scale (output codes per unit) that spreads the sums of `tiles` tiles over
        /// the output codes, as `act` does.
        mutating func sumScale(tiles: Int) -> Double {
            let std = Double(tiles).squareRoot() * Double(1 << (adcBits - 1)) / 2.5
            return Double(cmax) / (2.0 * std) * (0.5 + rng.uniform())
        }

        /// Per-channel quantizer parameters `scale[c] * 2^24` with offsets around zero.
        mutating func affine(_ scale: [Double]) -> AffineQuantParams {
            let shift = 24
            return AffineQuantParams(multiplier: scale.map { Int32($0 * Double(1 << shift)) }, shift: Array(repeating: Int32(shift), count: scale.count),
                                     offset: scale.map { _ in Int64((rng.uniform() - 0.4) * 2.0 * Double(1 << shift)) }, outBits: codeBits,
                                     rounding: randomRounding ? rng.rule() : .halfUp)
        }

        /// A residual addition of `a` (real scale `sa` per channel) and `b` (`sb`) to codes.
        mutating func residual(_ a: Int, _ sa: [Double], _ b: Int, _ sb: [Double], _ s: TensorShape) -> Int {
            let q = affine(sa)
            let o = add(.code(s, bits: codeBits))
            let second = sb.map { Int32($0 * Double(1 << 24)) }
            nodes.append(Node(.add(AddParams(first: q, secondMultiplier: second)), inputs: [a, b], output: o))
            return o
        }

        mutating func crossbar(_ input: Int, _ s: TensorShape, _ p: CrossbarParams) -> (Int, TensorShape) {
            let os = p.outputShape(for: s)
            let o = add(.sum(os))
            nodes.append(Node(.crossbar(p), inputs: [input], output: o))
            return (o, os)
        }

        /// An activation stage whose random multipliers and offsets spread the sums of `tiles`
        /// tiles over the output codes.
        mutating func act(_ input: Int, _ s: TensorShape, tiles: Int) -> Int {
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

        /// Max-pool 2 of a sum tensor, or of a code tensor of `codeBits` bits.
        mutating func pool(_ input: Int, _ s: TensorShape, codeBits: Int? = nil) -> (Int, TensorShape) {
            let ps = TensorShape(c: s.c, h: s.h / 2, w: s.w / 2)
            let o = add(codeBits.map { .code(ps, bits: $0) } ?? .sum(ps))
            nodes.append(Node(.maxPool(MaxPoolParams(2)), inputs: [input], output: o))
            return (o, ps)
        }
    }

    /// The paper's Fashion-MNIST CNN shape with random weights and gains scaled so that values
    /// use their ranges: u8 28x28 -> maxpool 2 -> `codeBits` DAC codes -> conv 1->64 3x3 -> act
    /// -> conv 64->16 3x3 (fan-in 576: tiles of 512 + 64 rows) -> maxpool 2 -> act -> flatten 400
    /// -> fc 400->128 -> act -> fc 128->10 -> logits. 1,057,024 MACs per image.
    /// `randomRounding`: every ADC and activation draws its rounding rule (tests use it to cover
    /// all rules); otherwise ADCs round half to even and activations half up.
    public static func fashionMNISTCNN(seed: UInt64, weightBits: Int = 8, codeBits: Int = 4, adcBits: Int = 14,
                                       arrayRows: Int = 512, randomRounding: Bool = false) -> Program {
        var b = Builder(seed: seed, weightBits: weightBits, codeBits: codeBits, adcBits: adcBits, arrayRows: arrayRows,
                        randomRounding: randomRounding)
        let x0 = b.add(.code(TensorShape(c: 1, h: 28, w: 28), bits: 8))
        let (x1, _) = b.pool(x0, TensorShape(c: 1, h: 28, w: 28), codeBits: 8)
        let x2 = b.pixelQuant(x1, TensorShape(c: 1, h: 14, w: 14))
        let m1 = b.matrix(cin: 1, cout: 64, kh: 3, kw: 3)
        let (c1, s1) = b.crossbar(x2, TensorShape(c: 1, h: 14, w: 14), m1)
        let a1 = b.act(c1, s1, tiles: m1.tiles.count)
        let m2 = b.matrix(cin: 64, cout: 16, kh: 3, kw: 3)
        let (c2, s2) = b.crossbar(a1, s1, m2)
        let (p2, sp) = b.pool(c2, s2)
        let a2 = b.act(p2, sp, tiles: m2.tiles.count)
        let f = b.add(.code(TensorShape(c: 400, h: 1, w: 1), bits: codeBits))
        b.nodes.append(Node(.flatten, inputs: [a2], output: f))
        let m3 = b.matrix(cin: 400, cout: 128, kh: 1, kw: 1)
        let (c3, s3) = b.crossbar(f, TensorShape(c: 400, h: 1, w: 1), m3)
        let a3 = b.act(c3, s3, tiles: m3.tiles.count)
        let (c4, _) = b.crossbar(a3, s3, b.matrix(cin: 128, cout: 10, kh: 1, kw: 1))
        return Program(tensors: b.tensors, nodes: b.nodes, input: x0, output: c4, arrayRows: arrayRows)
    }

    /// The paper's spoken-digit CRNN shape (DATAPATH.md section 15) with random weights and gains
    /// scaled so that values use their ranges: input `(1, 23, 20)` = the feature DAC codes
    /// (`FeatureEncoding`, 0...7) -> identity input quantizer to 3-bit codes -> conv 1->64 3x2
    /// stride (2,1) -> maxpool 2 (sums) -> act -> conv 64->32 3x2 stride (2,1) -> maxpool 2 -> act
    /// `(32, 1, 4)` -> rnn 32->128 (T = 4) -> fc 128->256 -> act -> fc 256->10 -> logits.
    public static func spokenDigitCRNN(seed: UInt64, weightBits: Int = 8, codeBits: Int = 3, adcBits: Int = 14,
                                       arrayRows: Int = 512, randomRounding: Bool = false) -> Program {
        var b = Builder(seed: seed, weightBits: weightBits, codeBits: codeBits, adcBits: adcBits, arrayRows: arrayRows,
                        randomRounding: randomRounding)
        let cmax = b.cmax
        let x0 = b.add(.code(TensorShape(c: 1, h: 23, w: 20), bits: 8))
        let x1 = b.add(.code(TensorShape(c: 1, h: 23, w: 20), bits: codeBits))
        b.nodes.append(Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: 1, shift: 0, offset: 0,
                                                          outBits: codeBits, rounding: .halfUp)), inputs: [x0], output: x1))
        let m1 = b.matrix(cin: 1, cout: 64, kh: 3, kw: 2, sh: 2, sw: 1)
        let (c1, s1) = b.crossbar(x1, TensorShape(c: 1, h: 23, w: 20), m1)            // (64, 11, 19)
        let (p1, ps1) = b.pool(c1, s1)                                             // (64, 5, 9)
        let a1 = b.act(p1, ps1, tiles: m1.tiles.count)
        let m2 = b.matrix(cin: 64, cout: 32, kh: 3, kw: 2, sh: 2, sw: 1)
        let (c2, s2) = b.crossbar(a1, ps1, m2)                                     // (32, 2, 8)
        let (p2, ps2) = b.pool(c2, s2)                                             // (32, 1, 4)
        let a2 = b.act(p2, ps2, tiles: m2.tiles.count)
        // rnn: combiner scaled so that z / 2^S is a few hidden codes; output ~ the mean
        let hd = 128, steps = ps2.w
        let wi = b.matrix(cin: 32, cout: hd, kh: 1, kw: 1), wh = b.matrix(cin: hd, cout: hd, kh: 1, kw: 1)
        let S = 20
        let std = Double(1 << (adcBits - 1)) / 2.5
        let mx = Int32(Double(cmax) / (2.0 * std) * (0.5 + b.rng.uniform()) * Double(1 << S))
        let mh = Int32(Double(cmax) / (4.0 * std) * (0.5 + b.rng.uniform()) * Double(1 << S) * (b.rng.int(0, 1) == 0 ? 1 : -1))
        let so = 40
        var om: [Int32] = [], osh: [Int32] = [], oof: [Int64] = []
        for _ in 0..<hd {
            om.append(Int32(Double(1 << so) / Double(steps << S) * (0.6 + 0.8 * b.rng.uniform())))
            osh.append(Int32(so)); oof.append(Int64((b.rng.uniform() - 0.5) * Double(1 << so)))
        }
        let rp = RNNParams(input: wi, recurrent: wh, inputMultiplier: mx, recurrentMultiplier: mh, stateShift: Int32(S),
                           hiddenBits: codeBits, hiddenRounding: randomRounding ? b.rng.rule() : .halfUp,
                           output: AffineQuantParams(multiplier: om, shift: osh, offset: oof, outBits: codeBits,
                                                     rounding: randomRounding ? b.rng.rule() : .halfUp))
        let r = b.add(.code(TensorShape(c: hd, h: 1, w: 1), bits: codeBits))
        b.nodes.append(Node(.rnn(rp), inputs: [a2], output: r))
        let m3 = b.matrix(cin: hd, cout: 256, kh: 1, kw: 1)
        let (c3, s3) = b.crossbar(r, TensorShape(c: hd, h: 1, w: 1), m3)
        let a3 = b.act(c3, s3, tiles: m3.tiles.count)
        let m4 = b.matrix(cin: 256, cout: 10, kh: 1, kw: 1)
        let (c4, _) = b.crossbar(a3, s3, m4)
        return Program(tensors: b.tensors, nodes: b.nodes, input: x0, output: c4, arrayRows: arrayRows)
    }

    /// A small U-Net shape (the operations of the paper's DRIVE network) with random weights:
    /// u8 (1,28,28) -> `codeBits` DAC codes -> conv 1->8 3x3 pad 1 -> act (the skip) -> maxpool 2
    /// -> conv 8->16 3x3 pad 1 -> act -> upsample x2 twice, exact (sums) and rounded (codes) ->
    /// concat [skip, exact, rounded] requantized to one scale (40 channels) -> conv 40->8 3x3
    /// pad 1 -> act -> 1x1 head 8->2: per-pixel logits `(2, 28, 28)`.
    public static func tinyUNet(seed: UInt64, weightBits: Int = 8, codeBits: Int = 4, adcBits: Int = 14,
                                arrayRows: Int = 512, randomRounding: Bool = false) -> Program {
        var b = Builder(seed: seed, weightBits: weightBits, codeBits: codeBits, adcBits: adcBits, arrayRows: arrayRows,
                        randomRounding: randomRounding)
        let s0 = TensorShape(c: 1, h: 28, w: 28)
        let x0 = b.add(.code(s0, bits: 8))
        let x1 = b.pixelQuant(x0, s0)
        let (skip, s1) = b.convAct(x1, s0, cout: 8, k: 3, pad: 1)
        let (p1, sp) = b.pool(skip, s1, codeBits: codeBits)
        let (a2, s2) = b.convAct(p1, sp, cout: 16, k: 3, pad: 1)
        let up = UpsampleParams(factorH: 2, factorW: 2, rounding: randomRounding ? b.rng.rule() : .halfUp)
        let su = up.outputShape(for: s2)
        let exact = b.add(.sum(su))
        b.nodes.append(Node(.upsampleBilinear(up), inputs: [a2], output: exact))
        let rounded = b.add(.code(su, bits: codeBits))
        b.nodes.append(Node(.upsampleBilinear(up), inputs: [a2], output: rounded))
        // the exact numerators are the value times (OH-1)(OW-1)
        let den = Double(UpsampleParams.axisDenominator(output: su.h) * UpsampleParams.axisDenominator(output: su.w))
        var scale: [Double] = []
        for _ in 0..<8 { scale.append(0.8 + 0.4 * b.rng.uniform()) }
        for _ in 0..<16 { scale.append((0.8 + 0.4 * b.rng.uniform()) / den) }
        for _ in 0..<16 { scale.append(0.8 + 0.4 * b.rng.uniform()) }
        let sc = TensorShape(c: 40, h: su.h, w: su.w)
        let cat = b.add(.code(sc, bits: codeBits))
        b.nodes.append(Node(.concat(ConcatParams(quant: b.affine(scale))), inputs: [skip, exact, rounded], output: cat))
        let (a3, s3) = b.convAct(cat, sc, cout: 8, k: 3, pad: 1)
        let (head, _) = b.crossbar(a3, s3, b.matrix(cin: 8, cout: 2, kh: 1, kw: 1))
        return Program(tensors: b.tensors, nodes: b.nodes, input: x0, output: head, arrayRows: arrayRows)
    }

    /// A small residual network with random weights: u8 (1,28,28) -> maxpool 2 -> DAC codes ->
    /// stem conv 1->8 3x3 pad 1 -> act -> an identity block (conv-act-conv, add of the sums and
    /// the block input's codes) -> a projection block (conv 8->16 3x3 stride 2 pad 1 - act - conv
    /// 16->16 3x3 pad 1, and a 1x1 stride 2 projection: add of two sums) -> global average pool
    /// -> fc 16->10 -> logits.
    public static func tinyResNet(seed: UInt64, weightBits: Int = 8, codeBits: Int = 4, adcBits: Int = 14,
                                  arrayRows: Int = 512, randomRounding: Bool = false) -> Program {
        var b = Builder(seed: seed, weightBits: weightBits, codeBits: codeBits, adcBits: adcBits, arrayRows: arrayRows,
                        randomRounding: randomRounding)
        let x0 = b.add(.code(TensorShape(c: 1, h: 28, w: 28), bits: 8))
        let (x1, s1) = b.pool(x0, TensorShape(c: 1, h: 28, w: 28), codeBits: 8)
        let x2 = b.pixelQuant(x1, s1)
        let (stem, ss) = b.convAct(x2, s1, cout: 8, k: 3, pad: 1)
        // identity block
        let (h1, _) = b.convAct(stem, ss, cout: 8, k: 3, pad: 1)
        let m1 = b.matrix(cin: 8, cout: 8, kh: 3, kw: 3, pad: 1)
        let (y1, _) = b.crossbar(h1, ss, m1)
        let sa1 = (0..<8).map { _ in b.sumScale(tiles: m1.tiles.count) }
        let blk1 = b.residual(y1, sa1, stem, (0..<8).map { _ in 0.5 + 0.5 * b.rng.uniform() }, ss)
        // projection block
        let (h2, s2) = b.convAct(blk1, ss, cout: 16, k: 3, stride: 2, pad: 1)
        let m2 = b.matrix(cin: 16, cout: 16, kh: 3, kw: 3, pad: 1)
        let (y2, _) = b.crossbar(h2, s2, m2)
        let mp = b.matrix(cin: 8, cout: 16, kh: 1, kw: 1, sh: 2, sw: 2)
        let (z2, _) = b.crossbar(blk1, ss, mp)
        let sa2 = (0..<16).map { _ in b.sumScale(tiles: m2.tiles.count) }
        let sb2 = (0..<16).map { _ in b.sumScale(tiles: mp.tiles.count) * 0.7 }
        let blk2 = b.residual(y2, sa2, z2, sb2, s2)
        // the exact per-channel sums, requantized to the fc's input codes (what freeze makes)
        let g = b.add(.sum(TensorShape(c: 16, h: 1, w: 1)))
        b.nodes.append(Node(.globalAvgPool(GlobalAvgPoolParams(rounding: randomRounding ? b.rng.rule() : .halfUp)), inputs: [blk2], output: g))
        let gs = TensorShape(c: 16, h: 1, w: 1)
        let ga = b.add(.code(gs, bits: codeBits))
        b.nodes.append(Node(.activation(b.affine((0..<16).map { _ in (0.5 + b.rng.uniform()) / Double(s2.h * s2.w) })), inputs: [g], output: ga))
        let (fc, _) = b.crossbar(ga, gs, b.matrix(cin: 16, cout: 10, kh: 1, kw: 1))
        return Program(tensors: b.tensors, nodes: b.nodes, input: x0, output: fc, arrayRows: arrayRows)
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
