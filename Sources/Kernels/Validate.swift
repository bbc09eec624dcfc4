// Program.validate(): shapes, parameter ranges and worst-case accumulator bounds
// (docs/DATAPATH.md section 10). A program that passes cannot make any kernel trap or wrap.

import FixedPoint

/// A closed integer interval bounding every value a tensor can hold.
public struct ValueRange: Sendable, Equatable, Hashable {
    public var lo: Int64
    public var hi: Int64
    public init(_ lo: Int64, _ hi: Int64) { self.lo = lo; self.hi = hi }
    /// Largest magnitude.
    public var magnitude: Int64 { Swift.max(lo == .min ? .max : Swift.abs(lo), Swift.abs(hi)) }
}

extension Program {
    /// Limits of the specification.
    public static let maxCodeBits = 8
    public static let adcBitsRange = 2...16
    public static let weightBitsRange = 2...8
    public static let affineShiftRange: ClosedRange<Int32> = 0...62
    public static let adcShiftRange: ClosedRange<Int32> = -31...30
    /// Bound on `|in * M_c| + |B_c|` of an affine quantizer (2^62: leaves room for the rounding bias).
    public static let affineBound: Int64 = 1 << 62
    /// Most inputs of one node (a concat of at most 16 tensors).
    public static let maxNodeInputs = 16

    /// Checks the whole program; throws the first problem found.
    public func validate() throws(ProgramError) {
        _ = try valueRanges()
    }

    /// Validates and returns the worst-case value range of every tensor (nil for tensors not
    /// reachable by construction never happen: every tensor gets a range or validation fails).
    public func valueRanges() throws(ProgramError) -> [ValueRange] {
        let nT = tensors.count
        guard nT > 0 else { throw ProgramError(node: nil, kind: .graph, "no tensors") }
        guard arrayRows >= 1 else { throw ProgramError(node: nil, kind: .parameterOutOfRange, "arrayRows \(arrayRows) < 1") }
        for (i, t) in tensors.enumerated() {
            guard t.shape.c >= 1, t.shape.h >= 1, t.shape.w >= 1 else {
                throw ProgramError(node: nil, kind: .shapeMismatch, "tensor \(i) has empty shape \(t.shape)")
            }
            let (_, o1) = t.shape.c.multipliedReportingOverflow(by: t.shape.h)
            let (n, o2) = (t.shape.c &* t.shape.h).multipliedReportingOverflow(by: t.shape.w)
            guard !o1, !o2, n <= Int(Int32.max) else {
                throw ProgramError(node: nil, kind: .shapeMismatch, "tensor \(i) too large \(t.shape)")
            }
            switch t.kind {
            case .code: guard (1...Program.maxCodeBits).contains(t.bits) else {
                throw ProgramError(node: nil, kind: .parameterOutOfRange, "tensor \(i): code bits \(t.bits) not in 1...8") }
            case .adc: guard Program.adcBitsRange.contains(t.bits) else {
                throw ProgramError(node: nil, kind: .parameterOutOfRange, "tensor \(i): adc bits \(t.bits) not in 2...16") }
            case .sum: guard t.bits == 32 else {
                throw ProgramError(node: nil, kind: .parameterOutOfRange, "tensor \(i): sum bits \(t.bits) != 32") }
            }
        }
        guard (0..<nT).contains(input) else { throw ProgramError(node: nil, kind: .graph, "input tensor \(input) out of range") }
        guard (0..<nT).contains(output) else { throw ProgramError(node: nil, kind: .graph, "output tensor \(output) out of range") }
        guard tensors[input].kind == .code, tensors[input].bits == 8 else {
            throw ProgramError(node: nil, kind: .shapeMismatch, "input tensor must be 8-bit codes (pixels)")
        }

        var range = [ValueRange?](repeating: nil, count: nT)
        range[input] = ValueRange(0, 255)
        // consumers that are max-pools, for the monotonicity rule
        var pooled = [Bool](repeating: false, count: nT)
        for n in nodes { if case .maxPool = n.op, let i = n.inputs.first, (0..<nT).contains(i) { pooled[i] = true } }

        for (k, node) in nodes.enumerated() {
            func fail(_ kind: ProgramError.Kind, _ m: String) -> ProgramError { ProgramError(node: k, kind: kind, m) }
            let counts = node.op.kind.inputCounts
            guard counts.contains(node.inputs.count) else {
                let want = counts.count == 1 ? "\(counts.lowerBound)" : "\(counts.lowerBound)...\(counts.upperBound)"
                throw fail(.graph, "\(node.op.kind.name) needs \(want) inputs, has \(node.inputs.count)")
            }
            var inRanges: [ValueRange] = []
            for i in node.inputs {
                // a tensor produced by a later node (or by this one: a cycle) has no range yet
                guard (0..<nT).contains(i), let r = range[i] else {
                    throw fail(.graph, "input tensor \(i) undefined (dangling, produced by a later node, or a cycle)")
                }
                inRanges.append(r)
            }
            let i = node.inputs[0]
            let inRange = inRanges[0]
            let o = node.output
            guard (0..<nT).contains(o) else { throw fail(.graph, "output tensor \(o) out of range") }
            guard range[o] == nil else { throw fail(.graph, "output tensor \(o) produced twice (or is the input)") }
            let tin = tensors[i], tout = tensors[o]
            let outRange: ValueRange

            switch node.op {
            case .inputQuant(let p), .activation(let p):
                let isInput: Bool
                if case .inputQuant = node.op { isInput = true } else { isInput = false }
                if isInput {
                    guard tin.kind == .code, tin.bits == 8 else { throw fail(.shapeMismatch, "inputQuant reads 8-bit pixels, got \(tin.kind) \(tin.bits) bits") }
                }
                let c = tin.shape.c
                outRange = try Program.checkAffine(p, channels: c, inputs: [(inRange.magnitude, p.multiplier)], out: tout, shape: tin.shape, "", fail)
                for ch in 0..<c where p.multiplier[ch] < 0 && (pooled[i] || pooled[o]) {
                    throw fail(.nonMonotone, "channel \(ch): multiplier \(p.multiplier[ch]) < 0 next to a max-pool (pool and quantizer would not commute)")
                }

            case .maxPool(let p):
                guard p.kh >= 1, p.kw >= 1, p.sh >= 1, p.sw >= 1 else { throw fail(.parameterOutOfRange, "pool window/stride must be >= 1") }
                guard tin.shape.h >= p.kh, tin.shape.w >= p.kw else { throw fail(.shapeMismatch, "pool window \(p.kh)x\(p.kw) larger than input \(tin.shape)") }
                let s = TensorShape(c: tin.shape.c, h: (tin.shape.h - p.kh) / p.sh + 1, w: (tin.shape.w - p.kw) / p.sw + 1)
                guard tout == TensorDesc(shape: s, kind: tin.kind, bits: tin.bits) else {
                    throw fail(.shapeMismatch, "pool output must be \(s) \(tin.kind), is \(tout.shape) \(tout.kind)")
                }
                outRange = inRange

            case .flatten:
                let s = TensorShape(c: tin.shape.count, h: 1, w: 1)
                guard tout == TensorDesc(shape: s, kind: tin.kind, bits: tin.bits) else {
                    throw fail(.shapeMismatch, "flatten output must be \(s) \(tin.kind), is \(tout.shape) \(tout.kind)")
                }
                outRange = inRange

            case .add(let p):
                let tb = tensors[node.inputs[1]]
                guard tb.shape == tin.shape else {
                    throw fail(.shapeMismatch, "add inputs \(node.inputs[0]) \(tin.shape) and \(node.inputs[1]) \(tb.shape) differ in shape")
                }
                let c = tin.shape.c
                guard p.secondMultiplier.count == c else {
                    throw fail(.parameterOutOfRange, "second multiplier count \(p.secondMultiplier.count) != channels \(c)")
                }
                outRange = try Program.checkAffine(p.first, channels: c, inputs: [(inRanges[0].magnitude, p.first.multiplier),
                                                                                  (inRanges[1].magnitude, p.secondMultiplier)],
                                                   out: tout, shape: tin.shape, "", fail)

            case .concat(let p):
                var c = 0
                for (j, t) in node.inputs.enumerated() {
                    let s = tensors[t].shape
                    guard s.h == tin.shape.h, s.w == tin.shape.w else {
                        throw fail(.shapeMismatch, "concat input \(j) (tensor \(t)) is \(s), input 0 is \(tin.shape): heights and widths must agree")
                    }
                    c += s.c
                }
                let q = p.quant
                guard q.multiplier.count == c else {
                    throw fail(.parameterOutOfRange, "per-channel parameter count \(q.multiplier.count) != concatenated channels \(c)")
                }
                // channel-wise: each output channel's bound uses the range of the input it comes from
                var lo: Int64 = .max, hi: Int64 = .min, first = 0
                for (j, t) in node.inputs.enumerated() {
                    let n = tensors[t].shape.c
                    let slice = q.channels(first..<(first + n))
                    let r = try Program.checkAffine(slice, channels: n, inputs: [(inRanges[j].magnitude, slice.multiplier)],
                                                    out: nil, shape: tensors[t].shape, "concat input \(j): ", fail, channelBase: first)
                    lo = Swift.min(lo, r.lo); hi = Swift.max(hi, r.hi)
                    first += n
                }
                let s = TensorShape(c: c, h: tin.shape.h, w: tin.shape.w)
                guard tout == .code(s, bits: q.outBits) else {
                    throw fail(.shapeMismatch, "concat output must be \(s) \(q.outBits)-bit codes, is \(tout.shape) \(tout.kind) \(tout.bits)")
                }
                outRange = ValueRange(lo, hi)

            case .upsampleBilinear(let p):
                let fr = 1...UpsampleParams.maxFactor
                guard fr.contains(p.factorH), fr.contains(p.factorW) else {
                    throw fail(.parameterOutOfRange, "upsample factors \(p.factorH)x\(p.factorW) not in 1...\(UpsampleParams.maxFactor)")
                }
                let s = p.outputShape(for: tin.shape)
                guard s.h <= 1 << 20, s.w <= 1 << 20 else { throw fail(.shapeMismatch, "upsampled map \(s) too large") }
                let den = Int64(UpsampleParams.axisDenominator(output: s.h)) * Int64(UpsampleParams.axisDenominator(output: s.w))
                // the numerator: four non-negative weights summing to Dy*Dx times values within the input's range
                let (nLo, f1) = inRange.lo.multipliedReportingOverflow(by: den)
                let (nHi, f2) = inRange.hi.multipliedReportingOverflow(by: den)
                guard !f1, !f2, nLo >= -Program.affineBound, nHi <= Program.affineBound else {
                    throw fail(.accumulatorOverflow, "upsample numerator: input range \(inRange.lo)...\(inRange.hi) x Dy*Dx \(den) exceeds 2^62")
                }
                switch tout.kind {
                case .sum:
                    guard tout == .sum(s) else { throw fail(.shapeMismatch, "upsample output must be \(s), is \(tout.shape)") }
                    guard nLo >= Int64(Int32.min), nHi <= Int64(Int32.max) else {
                        throw fail(.accumulatorOverflow, "exact upsample numerators \(nLo)...\(nHi) exceed Int32 (use a code output: rounded)")
                    }
                    outRange = ValueRange(nLo, nHi)
                default:
                    guard tout == TensorDesc(shape: s, kind: tin.kind, bits: tin.bits) else {
                        throw fail(.shapeMismatch, "rounded upsample output must be \(s) \(tin.kind) \(tin.bits) bits (the input's), is \(tout.shape) \(tout.kind) \(tout.bits)")
                    }
                    outRange = inRange
                }

            case .globalAvgPool:
                let s = TensorShape(c: tin.shape.c, h: 1, w: 1)
                // the Int64 sum of H*W values (H*W < 2^31, |v| <= 2^31): below 2^62
                let hw = Int64(tin.shape.h * tin.shape.w)
                if tin.kind == .code && tout.kind == .sum {
                    guard tout == .sum(s) else { throw fail(.shapeMismatch, "global average pool sum output must be \(s), is \(tout.shape)") }
                    let lo = inRange.lo * hw, hi = inRange.hi * hw
                    guard lo >= Int64(Int32.min), hi <= Int64(Int32.max) else {
                        throw fail(.accumulatorOverflow, "exact global-pool sums \(lo)...\(hi) exceed Int32 (use a code output: rounded)")
                    }
                    outRange = ValueRange(lo, hi)
                } else {
                    guard tout == TensorDesc(shape: s, kind: tin.kind, bits: tin.bits) else {
                        throw fail(.shapeMismatch, "global average pool output must be \(s) \(tin.kind) (rounded mean) or, of codes, \(s) sums (exact), is \(tout.shape) \(tout.kind)")
                    }
                    outRange = inRange
                }

            case .crossbar(let p):
                guard tin.kind == .code else { throw fail(.shapeMismatch, "crossbar reads codes, got \(tin.kind)") }
                let s = try Program.checkCrossbar(p, inShape: tin.shape, maxCode: inRange.hi, arrayRows: arrayRows, "", fail)
                guard tout == .sum(s.shape) else { throw fail(.shapeMismatch, "crossbar output must be \(s.shape) sums, is \(tout.shape) \(tout.kind)") }
                outRange = s.range

            case .rnn(let r):
                guard tin.kind == .code else { throw fail(.shapeMismatch, "rnn reads codes, got \(tin.kind)") }
                let hd = r.hiddenSize, steps = tin.shape.w
                guard tin.shape.h == 1, tin.shape.c == r.inputSize else {
                    throw fail(.shapeMismatch, "rnn input must be (\(r.inputSize),1,T) codes, is \(tin.shape)")
                }
                for (name, m) in [("input", r.input), ("recurrent", r.recurrent)] {
                    guard m.kernelH == 1, m.kernelW == 1, m.strideH == 1, m.strideW == 1, m.padH == 0, m.padW == 0 else {
                        throw fail(.parameterOutOfRange, "rnn \(name) matrix must be a 1x1 crossbar (stride 1, no padding)")
                    }
                }
                guard r.recurrent.inChannels == hd, r.recurrent.outChannels == hd else {
                    throw fail(.shapeMismatch, "rnn recurrent matrix must be \(hd)x\(hd), is \(r.recurrent.outChannels)x\(r.recurrent.inChannels)")
                }
                guard (1...Program.maxCodeBits).contains(r.hiddenBits) else { throw fail(.parameterOutOfRange, "rnn hiddenBits \(r.hiddenBits) not in 1...8") }
                guard Program.affineShiftRange.contains(r.stateShift) else { throw fail(.parameterOutOfRange, "rnn stateShift \(r.stateShift) not in 0...62") }
                let hMax = (Int64(1) << Int64(r.hiddenBits)) - 1
                let sx = try Program.checkCrossbar(r.input, inShape: TensorShape(c: r.inputSize, h: 1, w: 1), maxCode: inRange.hi,
                                                   arrayRows: arrayRows, "input matrix: ", fail)
                let sh = try Program.checkCrossbar(r.recurrent, inShape: TensorShape(c: hd, h: 1, w: 1), maxCode: hMax,
                                                   arrayRows: arrayRows, "recurrent matrix: ", fail)
                // |z| <= |s_x| |Mx| + |s_h| |Mh| <= 2^31 - 1 (the combined accumulator is an Int32 value)
                let (zx, f1) = sx.range.magnitude.multipliedReportingOverflow(by: Int64(r.inputMultiplier).magnitudeInt64)
                let (zh, f2) = sh.range.magnitude.multipliedReportingOverflow(by: Int64(r.recurrentMultiplier).magnitudeInt64)
                let (zMax, f3) = zx.addingReportingOverflow(zh)
                guard !f1, !f2, !f3, zMax <= Int64(Int32.max) else {
                    throw fail(.accumulatorOverflow, "rnn combined accumulator: |s_x| <= \(sx.range.magnitude) x |\(r.inputMultiplier)| + |s_h| <= \(sh.range.magnitude) x |\(r.recurrentMultiplier)| exceeds 2^31 - 1")
                }
                // code sum (T-1)(2^hb - 1) <= 2^31 - 1 (an Int32); A <= (T-1)(2^hb - 1) 2^S + zMax <= 2^62
                guard Int64(steps - 1) * hMax <= Int64(Int32.max) else {
                    throw fail(.accumulatorOverflow, "rnn hidden code sum: (T-1)=\(steps - 1) x \(hMax) exceeds 2^31 - 1")
                }
                let (c1, g1) = (Int64(steps - 1) * hMax).multipliedReportingOverflow(by: Int64(1) << Int64(r.stateShift))
                let (aMax, g2) = c1.addingReportingOverflow(zMax)
                guard !g1, !g2, aMax <= Program.affineBound else {
                    throw fail(.accumulatorOverflow, "rnn average accumulator: (T-1)=\(steps - 1) x \(hMax) x 2^\(r.stateShift) + \(zMax) exceeds 2^62")
                }
                let q = r.output
                guard q.multiplier.count == hd, q.shift.count == hd, q.offset.count == hd else {
                    throw fail(.parameterOutOfRange, "rnn output: per-channel parameter counts \(q.multiplier.count)/\(q.shift.count)/\(q.offset.count) != hidden size \(hd)")
                }
                guard (1...Program.maxCodeBits).contains(q.outBits) else { throw fail(.parameterOutOfRange, "rnn output outBits \(q.outBits) not in 1...8") }
                guard tout == .code(TensorShape(c: hd, h: 1, w: 1), bits: q.outBits) else {
                    throw fail(.shapeMismatch, "rnn output must be (\(hd),1,1) \(q.outBits)-bit codes, is \(tout.shape) \(tout.kind) \(tout.bits)")
                }
                for ch in 0..<hd {
                    guard Program.affineShiftRange.contains(q.shift[ch]) else {
                        throw fail(.parameterOutOfRange, "rnn output channel \(ch): shift \(q.shift[ch]) not in 0...62")
                    }
                    let (prod, o1) = aMax.multipliedReportingOverflow(by: Int64(q.multiplier[ch]).magnitudeInt64)
                    let (total, o2) = prod.addingReportingOverflow(q.offset[ch].magnitudeInt64)
                    guard !o1, !o2, q.offset[ch] != .min, total <= Program.affineBound else {
                        throw fail(.accumulatorOverflow, "rnn output channel \(ch): |A| <= \(aMax) times |multiplier| \(q.multiplier[ch]) plus |offset| \(q.offset[ch]) exceeds 2^62")
                    }
                }
                outRange = ValueRange(0, (Int64(1) << Int64(q.outBits)) - 1)
            }
            range[o] = outRange
        }
        guard let _ = range[output] else { throw ProgramError(node: nil, kind: .graph, "output tensor \(output) is never produced") }
        var result: [ValueRange] = []
        result.reserveCapacity(nT)
        for (i, r) in range.enumerated() {
            guard let r else { throw ProgramError(node: nil, kind: .graph, "tensor \(i) is never produced") }
            result.append(r)
        }
        return result
    }
}

extension Program {
    /// Checks one crossbar matrix on an input of shape `inShape` whose codes are `<= maxCode`
    /// (sections 5, 6, 10); returns the output shape and the digital sum's range.
    static func checkCrossbar(_ p: CrossbarParams, inShape: TensorShape, maxCode: Int64, arrayRows: Int, _ what: String,
                              _ fail: (ProgramError.Kind, String) -> ProgramError) throws(ProgramError) -> (shape: TensorShape, range: ValueRange) {
        guard p.inChannels >= 1, p.outChannels >= 1, p.kernelH >= 1, p.kernelW >= 1,
              p.strideH >= 1, p.strideW >= 1, p.padH >= 0, p.padW >= 0,
              p.padH < p.kernelH, p.padW < p.kernelW,
              p.inChannels <= 1 << 20, p.outChannels <= 1 << 20, p.kernelH <= 1 << 10, p.kernelW <= 1 << 10 else {
            throw fail(.parameterOutOfRange, what + "bad crossbar geometry (sizes/strides >= 1, 0 <= pad < kernel)")
        }
        guard p.inChannels == inShape.c else { throw fail(.shapeMismatch, what + "crossbar inChannels \(p.inChannels) != input channels \(inShape.c)") }
        guard inShape.h + 2 * p.padH >= p.kernelH, inShape.w + 2 * p.padW >= p.kernelW else {
            throw fail(.shapeMismatch, what + "kernel \(p.kernelH)x\(p.kernelW) larger than padded input \(inShape)")
        }
        let s = p.outputShape(for: inShape)
        guard Program.weightBitsRange.contains(p.weightBits) else { throw fail(.parameterOutOfRange, what + "weightBits \(p.weightBits) not in 2...8") }
        let fanIn = p.fanIn
        let (wc, ow) = p.outChannels.multipliedReportingOverflow(by: fanIn)
        guard !ow, p.weights.count == wc else {
            throw fail(.weightCount, what + "weights.count \(p.weights.count) != outChannels*fanIn \(p.outChannels)*\(fanIn)")
        }
        let wHalf = 1 << (p.weightBits - 1)
        for (j, w) in p.weights.enumerated() where Int(w) < -wHalf || Int(w) >= wHalf {
            throw fail(.weightCount, what + "weight \(j) = \(w) outside \(p.weightBits)-bit range")
        }
        guard !p.tiles.isEmpty else { throw fail(.parameterOutOfRange, what + "no tiles") }
        var next = 0
        var sumLo: Int64 = 0, sumHi: Int64 = 0
        let aMax = maxCode          // codes are >= 0
        for (t, tile) in p.tiles.enumerated() {
            guard tile.rowStart == next, tile.rowCount >= 1 else {
                throw fail(.parameterOutOfRange, what + "tile \(t): rows \(tile.rowStart)+\(tile.rowCount) do not continue at row \(next)")
            }
            guard tile.rowCount <= arrayRows else {
                throw fail(.accumulatorOverflow, what + "tile \(t): \(tile.rowCount) rows > arrayRows \(arrayRows)")
            }
            next += tile.rowCount
            guard next <= fanIn else { throw fail(.parameterOutOfRange, what + "tile \(t) ends at row \(next) > fanIn \(fanIn)") }
            guard tile.multiplier >= 0 else { throw fail(.parameterOutOfRange, what + "tile \(t): ADC multiplier \(tile.multiplier) < 0") }
            guard Program.adcShiftRange.contains(tile.shift) else { throw fail(.parameterOutOfRange, what + "tile \(t): ADC shift \(tile.shift) not in -31...30") }
            guard Program.adcBitsRange.contains(tile.bits) else { throw fail(.parameterOutOfRange, what + "tile \(t): ADC bits \(tile.bits) not in 2...16") }
            // |acc| <= rows * aMax * 2^(wb-1) <= Int32.max (overflow-checked)
            let (x1, f1) = Int64(tile.rowCount).multipliedReportingOverflow(by: aMax)
            let (x2, f2) = x1.multipliedReportingOverflow(by: Int64(wHalf))
            guard !f1, !f2, x2 <= Int64(Int32.max) else {
                throw fail(.accumulatorOverflow, what + "tile \(t): rows \(tile.rowCount) x max code \(aMax) x 2^\(p.weightBits - 1) exceeds Int32")
            }
            sumLo -= Int64(1) << Int64(tile.bits - 1)
            sumHi += (Int64(1) << Int64(tile.bits - 1)) - 1
        }
        guard next == fanIn else { throw fail(.parameterOutOfRange, what + "tiles cover \(next) rows, fanIn is \(fanIn)") }
        guard sumLo >= Int64(Int32.min), sumHi <= Int64(Int32.max) else {
            throw fail(.accumulatorOverflow, what + "digital sum of \(p.tiles.count) tiles exceeds Int32")
        }
        return (s, ValueRange(sumLo, sumHi))
    }
}

extension Program {
    /// Checks an affine requantization of `channels` channels reading one or more inputs
    /// (`inputs`: each input's largest magnitude and its per-channel multipliers): shift range,
    /// outBits, `sum_j max|in_j| |M_j[c]| + |B_c| <= 2^62`; and, when `out` is given, that the
    /// output tensor is `shape` codes of `outBits`. Returns the output range `[0, 2^outBits - 1]`.
    static func checkAffine(_ p: AffineQuantParams, channels c: Int, inputs: [(Int64, [Int32])], out: TensorDesc?, shape: TensorShape,
                            _ what: String, _ fail: (ProgramError.Kind, String) -> ProgramError,
                            channelBase: Int = 0) throws(ProgramError) -> ValueRange {
        guard p.multiplier.count == c, p.shift.count == c, p.offset.count == c else {
            throw fail(.parameterOutOfRange, what + "per-channel parameter counts \(p.multiplier.count)/\(p.shift.count)/\(p.offset.count) != channels \(c)")
        }
        guard (1...Program.maxCodeBits).contains(p.outBits) else { throw fail(.parameterOutOfRange, what + "outBits \(p.outBits) not in 1...8") }
        if let out, out != .code(shape, bits: p.outBits) {
            throw fail(.shapeMismatch, what + "output must be \(shape) \(p.outBits)-bit codes, is \(out.shape) \(out.kind) \(out.bits)")
        }
        for ch in 0..<c {
            guard Program.affineShiftRange.contains(p.shift[ch]) else {
                throw fail(.parameterOutOfRange, what + "channel \(channelBase + ch): shift \(p.shift[ch]) not in 0...62")
            }
            guard p.offset[ch] != .min else { throw fail(.accumulatorOverflow, what + "channel \(channelBase + ch): offset Int64.min") }
            var total = p.offset[ch].magnitudeInt64
            var terms = ""
            for (mag, m) in inputs {
                let (prod, o1) = mag.multipliedReportingOverflow(by: Int64(m[ch]).magnitudeInt64)
                let (t, o2) = total.addingReportingOverflow(prod)
                terms += "|input| <= \(mag) times |multiplier| \(m[ch]) plus "
                guard !o1, !o2 else { total = .max; break }
                total = t
            }
            guard total <= Program.affineBound else {
                throw fail(.accumulatorOverflow, what + "channel \(channelBase + ch): \(terms)|offset| \(p.offset[ch]) exceeds 2^62")
            }
        }
        return ValueRange(0, (Int64(1) << Int64(p.outBits)) - 1)
    }
}

extension Int64 {
    @usableFromInline var magnitudeInt64: Int64 { self == .min ? .max : Swift.abs(self) }
}
