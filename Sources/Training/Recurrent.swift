// The recurrent node of the spoken-digit CRNN: an Elman RNN without biases whose two weight
// matrices (input->hidden and hidden->hidden) are separate supermasked crossbar layers, with a
// b-bit fake-quantized hidden state. Exact formulas: docs/TRAINING.md ("The RNN node").

/// One supermasked weight matrix of a layer: [fanOut, fanIn] row-major (PyTorch order), and the
/// gradient `backward` writes into `weightGrad` (overwritten by every call).
public struct WeightTensor {
    public let name: String
    public let weight: FloatBuffer
    public let weightGrad: FloatBuffer
    public let fanIn: Int
    public var fanOut: Int { weight.count / fanIn }
}

/// A node whose weights come from supermasks (one or more weight matrices).
public protocol SupermaskedLayer: Layer {
    var maskedWeights: [WeightTensor] { get }
}

/// input [C, 1, T] read as T steps of C features (feature c of step t = x[c, 0, t]);
/// h_{-1} = 0 (so q_{-1} = 0); for t = 0..<T:
///   a_t = W_ih x_t + W_hh q_{t-1},  h_t = ReLU(a_t),
///   q_t = fakequant_b(h_t; r) for t < T-1 (static range r, as `FakeQuant`), q_{T-1} = h_{T-1};
/// output y = (q_0 + ... + q_{T-1}) / T, shape [hidden]. Backward: back-propagation through
/// time with the straight-through gradient of the hidden quantizer (passes where 0 <= h <= r).
/// Training range tracking: before quantizing step t, r = EMA of the batch maximum of h_t
/// (the first step ever sets r), i.e. T - 1 EMA updates per training batch.
public final class RNN: SupermaskedLayer {
    public let name: String
    public let inFeatures: Int, hidden: Int, bits: Int
    /// W_ih [hidden, inFeatures], W_hh [hidden, hidden].
    public let ih: FloatBuffer, ihGrad: FloatBuffer
    public let hh: FloatBuffer, hhGrad: FloatBuffer
    /// Static range of the hidden quantizer (EMA of batch maxima; what evaluation and freeze use).
    public var range: Float
    public var rangeMomentum: Float
    public var mode: RangeMode
    public var initialized: Bool
    /// false disables the hidden quantizer (q_t = h_t): finite-difference tests only.
    public var quantizeHidden = true
    /// Steps expected from the graph description (nil: any width).
    let expectedSteps: Int?
    public private(set) var steps = 0
    var maxBatch = 0
    var pre: FloatBuffer! = nil          // a_t, [T][maxBatch][H]
    var qs: FloatBuffer! = nil           // q_t, [T][maxBatch][H]
    var dq: FloatBuffer! = nil           // [maxBatch][H]
    var da: FloatBuffer! = nil           // [maxBatch][H]
    var dxs: FloatBuffer! = nil          // [maxBatch][C]
    var partIH: FloatBuffer! = nil, partHH: FloatBuffer! = nil   // [chunks][count]
    var usedRanges: FloatBuffer! = nil   // range used at each step of the last forward pass
    var wss: [GemmWorkspace] = []
    let chunkMax = FloatBuffer(count: WorkPool.chunks)
    public var hasWeights: Bool { true }

    public init(name: String, inFeatures: Int, hidden: Int, bits: Int, momentum: Float = 0.1, mode: RangeMode = .ema, steps: Int? = nil) {
        self.name = name; self.inFeatures = inFeatures; self.hidden = hidden; self.bits = bits
        rangeMomentum = momentum; self.mode = mode; range = 0; initialized = false; expectedSteps = steps
        ih = FloatBuffer(count: hidden * inFeatures); ihGrad = FloatBuffer(count: hidden * inFeatures)
        hh = FloatBuffer(count: hidden * hidden); hhGrad = FloatBuffer(count: hidden * hidden)
    }

    public var maskedWeights: [WeightTensor] {
        [WeightTensor(name: name + ".ih", weight: ih, weightGrad: ihGrad, fanIn: inFeatures),
         WeightTensor(name: name + ".hh", weight: hh, weightGrad: hhGrad, fanIn: hidden)]
    }

    public var spec: LayerSpec {
        var s = LayerSpec(op: "rnn"); s.name = name; s.inFeatures = inFeatures; s.hidden = hidden; s.bits = bits
        s.range = Double(range); s.fixedRange = false; s.steps = steps > 0 ? steps : expectedSteps
        return s
    }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard input.count == 3, input[0] == inFeatures, input[1] == 1, input[2] >= 1 else {
            throw TrainingError("rnn \(name): input \(input) is not [\(inFeatures), 1, T] (T steps of \(inFeatures) features)")
        }
        guard (1...16).contains(bits) else { throw TrainingError("rnn \(name): bits \(bits) outside 1...16") }
        if let e = expectedSteps, e != input[2] { throw TrainingError("rnn \(name): the graph says \(e) steps, the input has \(input[2])") }
        steps = input[2]; self.maxBatch = maxBatch
        let n = steps * maxBatch * hidden
        pre = FloatBuffer(count: n); qs = FloatBuffer(count: n)
        dq = FloatBuffer(count: maxBatch * hidden); da = FloatBuffer(count: maxBatch * hidden)
        dxs = FloatBuffer(count: maxBatch * inFeatures)
        partIH = FloatBuffer(count: WorkPool.chunks * ih.count); partHH = FloatBuffer(count: WorkPool.chunks * hh.count)
        usedRanges = FloatBuffer(count: steps)
        wss = (0..<pool.threads).map { _ in GemmWorkspace() }
        return [hidden]
    }

    /// Whether step t is quantized (every step but the last, unless disabled).
    @inline(__always) func quantized(_ t: Int) -> Bool { quantizeHidden && t < steps - 1 }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let T = steps, H = hidden, C = inFeatures, MB = maxBatch
        let X = SendablePtr(x), Y = SendablePtr(y), PRE = SendablePtr(pre.ptr), Q = SendablePtr(qs.ptr), CM = SendablePtr(chunkMax.ptr)
        let wih = ih.ptr, whh = hh.ptr
        let levels = Float((1 << bits) - 1)
        for t in 0..<T {
            chunkMax.zero()
            pool.chunks(batch: batch) { c, r, wk in
                let n = r.count, s0 = r.lowerBound, ws = self.wss[wk]
                let a = PRE.p + t * MB * H + s0 * H
                // a_t = x_t W_ih^T (+ q_{t-1} W_hh^T)
                Gemm.multiply(m: n, n: H, k: C, a: X.p + s0 * C * T + t, ars: C * T, acs: T, b: wih, brs: 1, bcs: C,
                              c: a, ldc: H, accumulate: false, ws: ws)
                if t > 0 {
                    Gemm.multiply(m: n, n: H, k: H, a: Q.p + (t - 1) * MB * H + s0 * H, ars: H, acs: 1, b: whh, brs: 1, bcs: H,
                                  c: a, ldc: H, accumulate: true, ws: ws)
                }
                let q = Q.p + t * MB * H + s0 * H
                var m: Float = 0
                for i in 0..<(n * H) { let v = max(a[i], 0); q[i] = v; m = max(m, v) }
                CM.p[c] = m
            }
            guard quantized(t) else { usedRanges[t] = .infinity; continue }
            var bmax: Float = 0
            for c in 0..<WorkPool.chunks { bmax = max(bmax, chunkMax[c]) }
            let r: Float
            if training {
                if !initialized { range = bmax; initialized = true } else { range = (1 - rangeMomentum) * range + rangeMomentum * bmax }
                r = mode == .batch ? bmax : range
            } else {
                r = range
            }
            usedRanges[t] = r
            let scale = levels / r, step = r / levels
            pool.chunks(batch: batch) { _, rg, _ in
                let q = Q.p + t * MB * H + rg.lowerBound * H
                if !(r > 0) { q.update(repeating: 0, count: rg.count * H); return }
                for i in 0..<(rg.count * H) { q[i] = roundHalfAwayNonNegative(min(q[i], r) * scale) * step }
            }
        }
        let fT = Float(T)
        pool.chunks(batch: batch) { _, rg, _ in
            for i in (rg.lowerBound * H)..<(rg.upperBound * H) {
                var s: Float = 0
                for t in 0..<T { s += Q.p[t * MB * H + i] }
                Y.p[i] = s / fT
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        let T = steps, H = hidden, C = inFeatures, MB = maxBatch
        let X = SendablePtr(x), DY = SendablePtr(dy), DX = dx.map { SendablePtr($0) }
        let PRE = SendablePtr(pre.ptr), Q = SendablePtr(qs.ptr), DQ = SendablePtr(dq.ptr), DA = SendablePtr(da.ptr), DXS = SendablePtr(dxs.ptr)
        let PIH = SendablePtr(partIH.ptr), PHH = SendablePtr(partHH.ptr), UR = SendablePtr(usedRanges.ptr)
        let wih = ih.ptr, whh = hh.ptr, nih = ih.count, nhh = hh.count
        let invT = 1 / Float(T)
        pool.chunks(batch: batch) { c, r, wk in
            let n = r.count, s0 = r.lowerBound, ws = self.wss[wk]
            let dqc = DQ.p + s0 * H, dac = DA.p + s0 * H, g = DY.p + s0 * H
            for i in 0..<(n * H) { dqc[i] = g[i] * invT }
            var firstHH = true
            for t in stride(from: T - 1, through: 0, by: -1) {
                let a = PRE.p + t * MB * H + s0 * H
                let lim = UR.p[t]
                for i in 0..<(n * H) { let v = a[i]; dac[i] = (v > 0 && v <= lim) ? dqc[i] : 0 }
                // dW_ih (+)= da_t^T x_t
                Gemm.multiply(m: H, n: C, k: n, a: dac, ars: 1, acs: H, b: X.p + s0 * C * T + t, brs: C * T, bcs: T,
                              c: PIH.p + c * nih, ldc: C, accumulate: t != T - 1, ws: ws)
                if t > 0 {
                    // dW_hh (+)= da_t^T q_{t-1}
                    Gemm.multiply(m: H, n: H, k: n, a: dac, ars: 1, acs: H, b: Q.p + (t - 1) * MB * H + s0 * H, brs: H, bcs: 1,
                                  c: PHH.p + c * nhh, ldc: H, accumulate: !firstHH, ws: ws)
                    firstHH = false
                }
                if let DX {
                    // dx_t = da_t W_ih, scattered to x[c, 0, t]
                    let d = DXS.p + s0 * C
                    Gemm.multiply(m: n, n: C, k: H, a: dac, ars: H, acs: 1, b: wih, brs: C, bcs: 1, c: d, ldc: C, accumulate: false, ws: ws)
                    for s in 0..<n { for ch in 0..<C { DX.p[(s0 + s) * C * T + ch * T + t] = d[s * C + ch] } }
                }
                if t > 0 {
                    // dq_{t-1} = dy / T + da_t W_hh
                    for i in 0..<(n * H) { dqc[i] = g[i] * invT }
                    Gemm.multiply(m: n, n: H, k: H, a: dac, ars: H, acs: 1, b: whh, brs: H, bcs: 1, c: dqc, ldc: H, accumulate: true, ws: ws)
                }
            }
            if firstHH { (PHH.p + c * nhh).update(repeating: 0, count: nhh) }
        }
        reducePartials(PIH.p, chunksUsed: batch, into: ihGrad.ptr, count: nih, pool: pool)
        reducePartials(PHH.p, chunksUsed: batch, into: hhGrad.ptr, count: nhh, pool: pool)
    }
}
