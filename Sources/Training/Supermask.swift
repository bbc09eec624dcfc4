// Supermask ("topology optimization") layers: fixed weights, a learned score per weight, a
// top-k mask per layer with a straight-through gradient to the scores, and hysteresis so that
// few mask bits (= RRAM cells to re-program) flip.
//
// Effective weight: W = mask ? w_on : w_off  (software TO: w_off = 0).
// Forward mask: the top `keep = count - floor(sparsity * count)` entries of |score| in the
// layer; ties broken by index (the lower index wins). Exact radix select on the IEEE bit
// patterns of |score| (monotone for non-negative floats), O(count), no sort.
// Straight-through gradient: dL/ds = dL/dW * (w_on - w_off) * sign(s) (the gradient of the
// edge-popup subnet on |s|; sign(0) = 0).
//
// Hysteresis: every weight remembers s_ref, its score when its mask bit last changed (the
// initial score at the start). When the top-k candidate bit differs from the current bit, the
// bit flips only if |s_ref - s| >= limit * |s_ref|; then s_ref = s. With limit = 0 the mask is
// exactly the top-k. With limit > 0 the number of ones can drift from `keep` (bits that
// would leave the top-k stay, bits that would enter wait): we keep that drift (no forced
// re-balancing, which would cost extra programming operations) and report the actual kept
// fraction per layer in the log.

/// Which score a hysteresis test compares with (see `MaskedWeight.updateMask`).
public enum HysteresisReference: String, Codable, Sendable {
    case lastFlip = "last-flip"
    case previousStep = "previous-step"
}

public final class ByteBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<UInt8>
    public init(count: Int) {
        self.count = count
        ptr = .allocate(capacity: max(count, 1))
        ptr.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { ptr.deallocate() }
    public var array: [UInt8] { Array(UnsafeBufferPointer(start: ptr, count: count)) }
    public func copy(from a: [UInt8]) { precondition(a.count == count); for i in 0..<count { ptr[i] = a[i] } }
}

/// One supermask layer: the fixed weights, the scores and their optimizer state, the mask.
public final class MaskedWeight {
    public let name: String
    public let count: Int
    public let fanIn: Int
    public let sparsity: Double
    public let keep: Int
    /// Normalised weights of a formed (kept) and a reset (pruned) cell pair; nominal reads.
    public let wOn: FloatBuffer
    public let wOff: FloatBuffer
    public let scores: FloatBuffer
    public let scoreGrad: FloatBuffer
    public let velocity: FloatBuffer
    public let sRef: FloatBuffer
    public let mask: ByteBuffer
    let candidate: ByteBuffer
    let keys: UnsafeMutablePointer<UInt32>
    let hist: UnsafeMutablePointer<Int>
    /// Mask bits flipped since the initial programming (cumulative) = programming operations.
    public var flipsTotal = 0
    /// Scale that maps raw weights to the normalised ones (1 for software weights).
    public var scale: Float = 1
    /// The score gradient's stand-in for |w_on - w_off| (`ScoreGradient.sign`): the layer's rms of
    /// the nominal w_on - w_off; 0 = the edge-popup gradient (`ScoreGradient.weight`).
    public private(set) var signGradientScale: Float = 0

    public init(name: String, count: Int, fanIn: Int, sparsity: Double) {
        self.name = name; self.count = count; self.fanIn = fanIn; self.sparsity = sparsity
        keep = count - Int((sparsity * Double(count)).rounded(.down))
        wOn = FloatBuffer(count: count); wOff = FloatBuffer(count: count)
        scores = FloatBuffer(count: count); scoreGrad = FloatBuffer(count: count)
        velocity = FloatBuffer(count: count); sRef = FloatBuffer(count: count)
        mask = ByteBuffer(count: count); candidate = ByteBuffer(count: count)
        keys = .allocate(capacity: max(count, 1))
        hist = .allocate(capacity: 256)
    }
    deinit { keys.deallocate(); hist.deallocate() }

    /// Kaiming-uniform scores as in edge-popup: U(-b, b), b = sqrt(6 / ((1 + a^2) fan_in)), a = sqrt(5).
    public func initScores(rng: inout Xoshiro256StarStar) {
        let b = (6.0 / (6.0 * Double(fanIn))).squareRoot()
        for i in 0..<count { scores[i] = Float(rng.uniform(-b, b)) }
        sRef.copy(from: scores.array)
        topK(into: mask.ptr)
    }

    /// Scales every score by |w_on| / rms(w_on) (1 for signed constants) and recomputes the
    /// mask: the initial top-k then prefers large conductance differences (`--score-init magnitude`).
    public func scaleScoresByWeightMagnitude() {
        var s2 = 0.0
        for i in 0..<count { s2 += Double(wOn[i]) * Double(wOn[i]) }
        let rms = (s2 / Double(max(count, 1))).squareRoot()
        guard rms > 0 else { return }
        for i in 0..<count { scores[i] *= Float(Double(abs(wOn[i])) / rms) }
        sRef.copy(from: scores.array)
        topK(into: mask.ptr)
    }

    /// The std of the paper's signed-constant weights: sqrt(2) / sqrt(fan_in (1 - sparsity)).
    public var targetStd: Double { 2.0.squareRoot() / (Double(fanIn) * (1 - sparsity)).squareRoot() }

    /// Exact top-`keep` of |score| into `out` (1 = kept); ties: lower index first.
    public func topK(into out: UnsafeMutablePointer<UInt8>) {
        let n = count, s = scores.ptr
        if keep >= n { out.update(repeating: 1, count: n); return }
        if keep <= 0 { out.update(repeating: 0, count: n); return }
        for i in 0..<n { keys[i] = s[i].bitPattern & 0x7FFF_FFFF }
        var prefix: UInt32 = 0, hi: UInt32 = 0
        var need = keep
        var shift: UInt32 = 24
        while true {
            hist.update(repeating: 0, count: 256)
            for i in 0..<n where keys[i] & hi == prefix { hist[Int((keys[i] >> shift) & 255)] += 1 }
            var b = 255
            while need > hist[b] { need -= hist[b]; b -= 1 }
            prefix |= UInt32(b) << shift
            hi |= 255 << shift
            if shift == 0 { break }
            shift -= 8
        }
        // prefix = the keep-th largest key; take all larger keys and the first `need` equal ones.
        for i in 0..<n {
            let k = keys[i]
            if k > prefix { out[i] = 1 } else if k == prefix && need > 0 { out[i] = 1; need -= 1 } else { out[i] = 0 }
        }
    }

    /// Recomputes the mask from the scores with hysteresis `limit` (0 = plain top-k).
    /// Returns the number of flipped bits.
    /// `reference` .lastFlip: s_ref = the score when the bit last changed (default);
    /// .previousStep: s_ref = the score at the previous mask update (a bit flips only if its
    /// score moved by `limit` relative in this very step).
    @discardableResult
    public func updateMask(limit: Float, reference: HysteresisReference = .lastFlip) -> Int {
        topK(into: candidate.ptr)
        let m = mask.ptr, c = candidate.ptr, s = scores.ptr, r = sRef.ptr
        var flips = 0
        if reference == .previousStep {
            for i in 0..<count {
                if m[i] != c[i] && (limit <= 0 || abs(r[i] - s[i]) >= limit * abs(r[i])) { m[i] = c[i]; flips += 1 }
                r[i] = s[i]
            }
        } else {
            for i in 0..<count where m[i] != c[i] {
                if limit <= 0 || abs(r[i] - s[i]) >= limit * abs(r[i]) {
                    m[i] = c[i]; r[i] = s[i]; flips += 1
                }
            }
        }
        flipsTotal += flips
        return flips
    }

    /// Writes mask ? w_on : w_off into `w`.
    public func writeEffective(into w: UnsafeMutablePointer<Float>) {
        let m = mask.ptr, a = wOn.ptr, b = wOff.ptr
        for i in 0..<count { w[i] = m[i] != 0 ? a[i] : b[i] }
    }

    /// Selects the score gradient (see `ScoreGradient`); call after the weights are set. For the
    /// sign gradient the scale is the rms of the nominal w_on - w_off (summed in Double, so for
    /// signed constants ±c with w_off = 0 it is exactly c and both gradients are bit-identical).
    public func setScoreGradient(_ kind: ScoreGradient) {
        guard kind == .sign else { signGradientScale = 0; return }
        var s2 = 0.0
        for i in 0..<count { let d = Double(wOn[i] - wOff[i]); s2 += d * d }
        signGradientScale = Float((s2 / Double(max(count, 1))).squareRoot())
    }

    /// Straight-through score gradient from the gradient of the effective weight:
    /// dL/ds = dL/dW * f * sign(s), f = w_on - w_off (edge-popup) or, with the sign gradient,
    /// f = sign(w_on - w_off) * signGradientScale (sign(0) = 0 in both).
    public func scoreGradient(from dW: UnsafeMutablePointer<Float>) {
        let a = wOn.ptr, b = wOff.ptr, s = scores.ptr, g = scoreGrad.ptr
        let c = signGradientScale
        if c > 0 {
            for i in 0..<count {
                let sg: Float = s[i] > 0 ? 1 : (s[i] < 0 ? -1 : 0)
                let d = a[i] - b[i]
                let f: Float = d > 0 ? c : (d < 0 ? -c : 0)
                g[i] = dW[i] * f * sg
            }
        } else {
            for i in 0..<count {
                let sg: Float = s[i] > 0 ? 1 : (s[i] < 0 ? -1 : 0)
                g[i] = dW[i] * (a[i] - b[i]) * sg
            }
        }
    }

    /// SGD with momentum and weight decay (PyTorch form): v = mu v + (g + wd s); s -= lr v.
    public func sgdStep(lr: Float, momentum: Float, weightDecay: Float) {
        let s = scores.ptr, g = scoreGrad.ptr, v = velocity.ptr
        for i in 0..<count {
            let d = g[i] + weightDecay * s[i]
            v[i] = momentum * v[i] + d
            s[i] -= lr * v[i]
        }
    }

    /// Adam's second moment (allocated by `useAdam()`; nil under SGD). The first moment is `velocity`.
    public private(set) var secondMoment: FloatBuffer? = nil
    public func useAdam() { if secondMoment == nil { secondMoment = FloatBuffer(count: count) } }
    public static let adamBeta1: Float = 0.9, adamBeta2: Float = 0.999, adamEpsilon: Float = 1e-8

    /// Adam (PyTorch form, weight decay added to the gradient) on the scores, step `t` >= 1:
    /// d = g + wd s; m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
    /// s -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), with b1 0.9, b2 0.999, eps 1e-8.
    public func adamStep(lr: Float, weightDecay: Float, step t: Int) {
        useAdam()
        let s = scores.ptr, g = scoreGrad.ptr, m = velocity.ptr, v = secondMoment!.ptr
        let b1 = Self.adamBeta1, b2 = Self.adamBeta2, eps = Self.adamEpsilon
        let c1 = 1 - Float(pow(Double(b1), Double(t))), c2 = 1 - Float(pow(Double(b2), Double(t)))
        for i in 0..<count {
            let d = g[i] + weightDecay * s[i]
            m[i] = b1 * m[i] + (1 - b1) * d
            v[i] = b2 * v[i] + (1 - b2) * d * d
            s[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
        }
    }

    /// Fraction of ones in the mask.
    public var keptFraction: Double {
        var k = 0
        for i in 0..<count where mask.ptr[i] != 0 { k += 1 }
        return Double(k) / Double(max(count, 1))
    }
}

/// Differential weights of the layers (hardware TO): w_on = G+ - G- of the formed pair,
/// w_off = the same pair after reset (pruned), index o*fanIn + i. `read` nil = the nominal
/// (noise-free) read, k = the k-th noisy read. Units are arbitrary (µS); the trainer
/// normalises per layer.
public protocol DifferentialWeightSource: Sendable {
    func differential(layer: Int, read: Int?) -> (on: [Float], off: [Float])
    /// Read `read` of the programmed pairs only: out[i] = mask[i] != 0 ? on[i] : off[i] (raw
    /// units). The chip in the loop reads only the state each pair is in; sources can make this
    /// much cheaper than a full `differential` read.
    func programmed(layer: Int, read: Int, mask: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>)
}

extension DifferentialWeightSource {
    public func programmed(layer: Int, read: Int, mask: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        let (on, off) = differential(layer: layer, read: read)
        for i in 0..<on.count { out[i] = mask[i] != 0 ? on[i] : off[i] }
    }
}

/// A synthetic differential source for tests and for runs without a device model:
/// w_on ~ N(0, 1) · gain (µS-like), w_off ~ N(0, offStd), read noise N(0, readNoise · |w_on|).
public struct SyntheticDifferentialSource: DifferentialWeightSource {
    public let seed: UInt64
    public let counts: [Int]
    public let gain: Double, offStd: Double, readNoise: Double
    public init(seed: UInt64, counts: [Int], gain: Double = 20, offStd: Double = 0.3, readNoise: Double = 0.02) {
        self.seed = seed; self.counts = counts; self.gain = gain; self.offStd = offStd; self.readNoise = readNoise
    }
    public func differential(layer: Int, read: Int?) -> (on: [Float], off: [Float]) {
        let n = counts[layer]
        var on = [Float](repeating: 0, count: n), off = on
        for i in 0..<n {
            let base = gain * CounterRandom.normal(seed: seed, stream: CounterRandom.stream(0x5359_4E54, UInt64(layer), 0), index: UInt64(i))
            let b0 = offStd * CounterRandom.normal(seed: seed, stream: CounterRandom.stream(0x5359_4E54, UInt64(layer), 1), index: UInt64(i))
            var a = base, b = b0
            if let read {
                let st = CounterRandom.stream(0x5359_4E54, UInt64(layer), 2, UInt64(read))
                a += readNoise * abs(base) * CounterRandom.normal(seed: seed, stream: st, index: UInt64(i), lane: 0)
                b += readNoise * gain * 0.05 * CounterRandom.normal(seed: seed, stream: st, index: UInt64(i), lane: 1)
            }
            on[i] = Float(a); off[i] = Float(b)
        }
        return (on, off)
    }
}

import Randomness

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
