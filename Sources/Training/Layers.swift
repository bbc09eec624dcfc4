// The ops of the layer graph. Each op is a separate node with its own forward and backward
// on NCHW Float32 batches (per-sample shapes [C, H, W] or [F]), so later graphs (recurrent,
// U-Net, residual) compose the same nodes. `configure` allocates every buffer an op needs for
// the largest batch; `forward`/`backward` allocate nothing.
import FloatKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A node of the layer graph.
public protocol Layer: AnyObject {
    /// Serializable description (op name and hyper-parameters).
    var spec: LayerSpec { get }
    /// Input per-sample shape -> output per-sample shape; allocates buffers for `maxBatch`.
    func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int]
    /// y = f(x) for `batch` samples. `training` selects batch statistics / range tracking.
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool)
    /// Gradients: dx (nil when no earlier node needs it) from dy; parameter gradients are
    /// overwritten (not accumulated) by every call.
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool)
    /// True when the node has a weight whose gradient is computed in `backward`.
    var hasWeights: Bool { get }
}

/// Serializable op description (the graph of a run directory; see docs/TRAINING.md).
public struct LayerSpec: Codable, Equatable, Sendable {
    public var op: String            // conv2d, linear, maxpool2d, batchnorm, relu, fakequant, flatten, rnn, add, concat, upsample, globalavgpool
    public var name: String? = nil   // weight layers: the supermask layer name
    public var inChannels: Int? = nil, outChannels: Int? = nil
    public var kernelH: Int? = nil, kernelW: Int? = nil, stride: Int? = nil, padding: Int? = nil
    /// conv2d: row / column strides (written always; `stride` is written too when they are equal).
    public var strideH: Int? = nil, strideW: Int? = nil
    /// rnn: hidden units and time steps (steps = the input width, known after configure).
    public var hidden: Int? = nil, steps: Int? = nil
    public var inFeatures: Int? = nil, outFeatures: Int? = nil
    public var channels: Int? = nil, eps: Double? = nil, momentum: Double? = nil
    public var bits: Int? = nil, range: Double? = nil, fixedRange: Bool? = nil
    public var kernel: Int? = nil
    /// upsample: the integer scale factor.
    public var factor: Int? = nil
    /// The values this node reads: 0 is the graph input, k + 1 the output of node k; nil (every
    /// chain, and every node that reads its predecessor) = [its own index], the previous value.
    public var inputs: [Int]? = nil
    public init(op: String) { self.op = op }
}

@inline(__always) func elementCount(_ s: [Int]) -> Int { s.reduce(1, *) }

// MARK: - Convolution

/// 2-D convolution without bias: im2col per block of samples + packed GEMM.
/// Weight layout [Cout, Cin, kh, kw] (PyTorch), fan-in index (c*kh + y)*kw + x.
public final class Conv2d: Layer {
    public let cin: Int, cout: Int, kh: Int, kw: Int, strideH: Int, strideW: Int, pad: Int
    public let name: String
    public let weight: FloatBuffer
    public let weightGrad: FloatBuffer
    public var hasWeights: Bool { true }
    /// Samples per im2col block (fixed: the summation order of weight gradients depends on it).
    public static let block = 16
    var ih = 0, iw = 0, oh = 0, ow = 0
    var partials: FloatBuffer! = nil            // [chunks][count]
    var cols: [FloatBuffer] = [], tmps: [FloatBuffer] = [], wss: [GemmWorkspace] = []
    /// Stride-1 convolutions run on the window kernels (Conv2dWindow.swift); the others, and this
    /// layer when it is set false before `configure`, on im2col + GEMM (the reference path).
    public var useWindow: Bool
    /// Samples per block of the window path's weight gradient (fixed, like `block`).
    public static let windowBlock = 8
    var win = WindowGeometry()
    var winA: FloatBuffer! = nil, winXs: [FloatBuffer] = [], winDYs: [FloatBuffer] = [], winOuts: [FloatBuffer] = []

    /// `stride` sets both strides; `strideH` / `strideW` (rows / columns) override it.
    public init(name: String, cin: Int, cout: Int, kh: Int, kw: Int, stride: Int = 1, strideH: Int? = nil, strideW: Int? = nil, pad: Int = 0) {
        self.name = name; self.cin = cin; self.cout = cout; self.kh = kh; self.kw = kw
        self.strideH = strideH ?? stride; self.strideW = strideW ?? stride; self.pad = pad
        useWindow = self.strideH == 1 && self.strideW == 1
        weight = FloatBuffer(count: cout * cin * kh * kw)
        weightGrad = FloatBuffer(count: cout * cin * kh * kw)
    }
    public var fanIn: Int { cin * kh * kw }

    public var spec: LayerSpec {
        var s = LayerSpec(op: "conv2d")
        s.name = name; s.inChannels = cin; s.outChannels = cout; s.kernelH = kh; s.kernelW = kw
        // `stride` only when both are equal (older readers take it for both directions)
        s.stride = strideH == strideW ? strideH : nil; s.strideH = strideH; s.strideW = strideW; s.padding = pad
        return s
    }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard input.count == 3, input[0] == cin else { throw TrainingError("conv2d \(name): input \(input) does not have \(cin) channels") }
        ih = input[1]; iw = input[2]
        guard strideH > 0, strideW > 0, pad >= 0 else { throw TrainingError("conv2d \(name): strides \(strideH)x\(strideW) and padding \(pad) must be positive / non-negative") }
        oh = ih + 2 * pad >= kh ? (ih + 2 * pad - kh) / strideH + 1 : 0
        ow = iw + 2 * pad >= kw ? (iw + 2 * pad - kw) / strideW + 1 : 0
        guard oh > 0, ow > 0 else { throw TrainingError("conv2d \(name): kernel larger than input \(input)") }
        partials = FloatBuffer(count: WorkPool.chunks * weight.count)
        useWindow = useWindow && strideH == 1 && strideW == 1
        if useWindow {
            win = WindowGeometry(cin: cin, cout: cout, kh: kh, kw: kw, ih: ih, iw: iw, pad: pad)
            let nb = min(Self.windowBlock, maxBatch)
            let panels = { (m: Int) in (m + Window.mr - 1) / Window.mr * Window.mr }
            winA = FloatBuffer(count: max(panels(cout) * cin, panels(cin) * cout) * kh * kw)   // packed W, or W' of the input gradient
            winXs = (0..<pool.threads).map { _ in FloatBuffer(count: nb * win.xSize) }
            winDYs = (0..<pool.threads).map { _ in FloatBuffer(count: nb * cout * win.dyRow) }
            winOuts = (0..<pool.threads).map { _ in FloatBuffer(count: max(cout * win.yRow, cin * win.dxRow)) }
            cols = []; tmps = []; wss = []
            return [cout, oh, ow]
        }
        let nb = min(Self.block, maxBatch)
        cols = (0..<pool.threads).map { _ in FloatBuffer(count: fanIn * nb * oh * ow) }
        tmps = (0..<pool.threads).map { _ in FloatBuffer(count: cout * nb * oh * ow) }
        wss = (0..<pool.threads).map { _ in GemmWorkspace() }
        return [cout, oh, ow]
    }

    /// col[k, s*OHW + p] for samples s0..<s0+nb.
    @inline(__always)
    func im2col(_ x: UnsafeMutablePointer<Float>, s0: Int, nb: Int, col: UnsafeMutablePointer<Float>) {
        let ohw = oh * ow, n = nb * ohw, isz = cin * ih * iw
        for c in 0..<cin { for ky in 0..<kh { for kx in 0..<kw {
            let row = col + ((c * kh + ky) * kw + kx) * n
            for s in 0..<nb {
                let src = x + (s0 + s) * isz + c * ih * iw
                let dst = row + s * ohw
                for oy in 0..<oh {
                    let iy = oy * strideH - pad + ky
                    let d = dst + oy * ow
                    if iy < 0 || iy >= ih { d.update(repeating: 0, count: ow); continue }
                    let srow = src + iy * iw
                    if strideW == 1 && pad == 0 {
                        d.update(from: srow + kx, count: ow)
                    } else {
                        for ox in 0..<ow {
                            let ix = ox * strideW - pad + kx
                            d[ox] = (ix >= 0 && ix < iw) ? srow[ix] : 0
                        }
                    }
                }
            }
        }}}
    }

    @inline(__always)
    func col2imAdd(_ col: UnsafeMutablePointer<Float>, s0: Int, nb: Int, dx: UnsafeMutablePointer<Float>) {
        let ohw = oh * ow, n = nb * ohw, isz = cin * ih * iw
        for c in 0..<cin { for ky in 0..<kh { for kx in 0..<kw {
            let row = col + ((c * kh + ky) * kw + kx) * n
            for s in 0..<nb {
                let dst = dx + (s0 + s) * isz + c * ih * iw
                let src = row + s * ohw
                for oy in 0..<oh {
                    let iy = oy * strideH - pad + ky
                    if iy < 0 || iy >= ih { continue }
                    let drow = dst + iy * iw
                    let srow = src + oy * ow
                    for ox in 0..<ow {
                        let ix = ox * strideW - pad + kx
                        if ix >= 0 && ix < iw { drow[ix] += srow[ox] }
                    }
                }
            }
        }}}
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        if useWindow { windowForward(x, y, batch: batch, pool: pool); return }
        let ohw = oh * ow, K = fanIn, w = weight.ptr
        let X = SendablePtr(x), Y = SendablePtr(y)
        pool.chunks(batch: batch) { _, r, wk in
            let col = self.cols[wk].ptr, tmp = self.tmps[wk].ptr, ws = self.wss[wk]
            var s0 = r.lowerBound
            while s0 < r.upperBound {
                let nb = min(Self.block, r.upperBound - s0), n = nb * ohw
                self.im2col(X.p, s0: s0, nb: nb, col: col)
                Gemm.multiply(m: self.cout, n: n, k: K, a: w, ars: K, acs: 1, b: col, brs: n, bcs: 1,
                              c: tmp, ldc: n, accumulate: false, ws: ws)
                for s in 0..<nb { for co in 0..<self.cout {
                    (Y.p + ((s0 + s) * self.cout + co) * ohw).update(from: tmp + co * n + s * ohw, count: ohw)
                }}
                s0 += nb
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        if useWindow { windowBackward(x, dy, dx, batch: batch, pool: pool); return }
        let ohw = oh * ow, K = fanIn, w = weight.ptr, wc = weight.count
        let X = SendablePtr(x), DY = SendablePtr(dy), DX = dx.map { SendablePtr($0) }
        let P = SendablePtr(partials.ptr)
        let isz = cin * ih * iw
        pool.chunks(batch: batch) { c, r, wk in
            let col = self.cols[wk].ptr, tmp = self.tmps[wk].ptr, ws = self.wss[wk]
            let part = P.p + c * wc
            var first = true
            if let DX { (DX.p + r.lowerBound * isz).update(repeating: 0, count: r.count * isz) }
            var s0 = r.lowerBound
            while s0 < r.upperBound {
                let nb = min(Self.block, r.upperBound - s0), n = nb * ohw
                for s in 0..<nb { for co in 0..<self.cout {
                    (tmp + co * n + s * ohw).update(from: DY.p + ((s0 + s) * self.cout + co) * ohw, count: ohw)
                }}
                self.im2col(X.p, s0: s0, nb: nb, col: col)
                // dW_chunk (+)= dY[cout, n] x col^T
                Gemm.multiply(m: self.cout, n: K, k: n, a: tmp, ars: n, acs: 1, b: col, brs: 1, bcs: n,
                              c: part, ldc: K, accumulate: !first, ws: ws)
                first = false
                if let DX {
                    // dcol[K, n] = W^T x dY, reusing col
                    Gemm.multiply(m: K, n: n, k: self.cout, a: w, ars: 1, acs: K, b: tmp, brs: n, bcs: 1,
                                  c: col, ldc: n, accumulate: false, ws: ws)
                    self.col2imAdd(col, s0: s0, nb: nb, dx: DX.p)
                }
                s0 += nb
            }
        }
        reducePartials(P.p, chunksUsed: batch, into: weightGrad.ptr, count: wc, pool: pool)
    }
}

/// Sums per-chunk partials in chunk order (deterministic, independent of the thread count).
@inline(__always)
func reducePartials(_ p: UnsafeMutablePointer<Float>, chunksUsed batch: Int, into g: UnsafeMutablePointer<Float>, count: Int, pool: WorkPool) {
    let P = SendablePtr(p), G = SendablePtr(g)
    pool.blocks(count, grain: 4096) { r in
        for i in r {
            var s: Float = 0
            for c in 0..<WorkPool.chunks where !WorkPool.range(c, of: batch).isEmpty { s += P.p[c * count + i] }
            G.p[i] = s
        }
    }
}

// MARK: - Linear

/// Fully connected layer without bias, weight [out, in].
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    public let name: String
    public let weight: FloatBuffer
    public let weightGrad: FloatBuffer
    public var hasWeights: Bool { true }
    var partials: FloatBuffer! = nil
    var wss: [GemmWorkspace] = []

    public init(name: String, inFeatures: Int, outFeatures: Int) {
        self.name = name; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        weight = FloatBuffer(count: inFeatures * outFeatures)
        weightGrad = FloatBuffer(count: inFeatures * outFeatures)
    }
    public var fanIn: Int { inFeatures }

    public var spec: LayerSpec {
        var s = LayerSpec(op: "linear"); s.name = name; s.inFeatures = inFeatures; s.outFeatures = outFeatures
        return s
    }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard elementCount(input) == inFeatures, input.count == 1 else {
            throw TrainingError("linear \(name): input \(input) is not [\(inFeatures)] (flatten first)")
        }
        partials = FloatBuffer(count: WorkPool.chunks * weight.count)
        wss = (0..<pool.threads).map { _ in GemmWorkspace() }
        return [outFeatures]
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let I = inFeatures, O = outFeatures, w = weight.ptr
        let X = SendablePtr(x), Y = SendablePtr(y)
        pool.chunks(batch: batch) { _, r, wk in
            Gemm.multiply(m: r.count, n: O, k: I, a: X.p + r.lowerBound * I, ars: I, acs: 1, b: w, brs: 1, bcs: I,
                          c: Y.p + r.lowerBound * O, ldc: O, accumulate: false, ws: self.wss[wk])
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        let I = inFeatures, O = outFeatures, w = weight.ptr, wc = weight.count
        let X = SendablePtr(x), DY = SendablePtr(dy), DX = dx.map { SendablePtr($0) }, P = SendablePtr(partials.ptr)
        pool.chunks(batch: batch) { c, r, wk in
            let ws = self.wss[wk]
            let n = r.count, s0 = r.lowerBound
            // dW_chunk[o, i] = sum_s dy[s, o] x[s, i]
            Gemm.multiply(m: O, n: I, k: n, a: DY.p + s0 * O, ars: 1, acs: O, b: X.p + s0 * I, brs: I, bcs: 1,
                          c: P.p + c * wc, ldc: I, accumulate: false, ws: ws)
            if let DX {
                Gemm.multiply(m: n, n: I, k: O, a: DY.p + s0 * O, ars: O, acs: 1, b: w, brs: I, bcs: 1,
                              c: DX.p + s0 * I, ldc: I, accumulate: false, ws: ws)
            }
        }
        reducePartials(P.p, chunksUsed: batch, into: weightGrad.ptr, count: wc, pool: pool)
    }
}

// MARK: - Max pooling

/// Max pooling with a square window and stride = window (no padding; trailing rows/columns
/// that do not fill a window are dropped, as in PyTorch). Ties: the first maximum (row-major).
public final class MaxPool2d: Layer {
    public let k: Int
    var c = 0, ih = 0, iw = 0, oh = 0, ow = 0
    var argmax: UnsafeMutablePointer<Int32>? = nil
    var capacity = 0
    public var hasWeights: Bool { false }
    public init(kernel: Int) { k = kernel }
    deinit { argmax?.deallocate() }

    public var spec: LayerSpec { var s = LayerSpec(op: "maxpool2d"); s.kernel = k; return s }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard input.count == 3, input[1] >= k, input[2] >= k, k > 0 else { throw TrainingError("maxpool2d: input \(input) smaller than window \(k)") }
        c = input[0]; ih = input[1]; iw = input[2]; oh = ih / k; ow = iw / k
        argmax?.deallocate()
        capacity = maxBatch * c * oh * ow
        argmax = .allocate(capacity: max(capacity, 1))
        return [c, oh, ow]
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let X = SendablePtr(x), Y = SendablePtr(y)
        let am = argmax!
        let amS = UnsafeSendableInt32(am)
        let planes = batch * c
        pool.blocks(planes, grain: max(1, (planes + 7) / 8)) { pr in
            for p in pr {
                let src = X.p + p * self.ih * self.iw
                let dst = Y.p + p * self.oh * self.ow
                let ai = amS.p + p * self.oh * self.ow
                for oy in 0..<self.oh { for ox in 0..<self.ow {
                    var bi = (oy * self.k) * self.iw + ox * self.k
                    var best = src[bi]
                    for dy in 0..<self.k { for dx in 0..<self.k {
                        let idx = (oy * self.k + dy) * self.iw + ox * self.k + dx
                        let v = src[idx]
                        if v > best { best = v; bi = idx }
                    }}
                    dst[oy * self.ow + ox] = best
                    ai[oy * self.ow + ox] = Int32(bi)
                }}
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        guard let dx else { return }
        let DX = SendablePtr(dx), DY = SendablePtr(dy), amS = UnsafeSendableInt32(argmax!)
        let planes = batch * c
        pool.blocks(planes, grain: max(1, (planes + 7) / 8)) { pr in
            for p in pr {
                let d = DX.p + p * self.ih * self.iw
                d.update(repeating: 0, count: self.ih * self.iw)
                let g = DY.p + p * self.oh * self.ow
                let ai = amS.p + p * self.oh * self.ow
                for o in 0..<(self.oh * self.ow) { d[Int(ai[o])] += g[o] }
            }
        }
    }
}

public struct UnsafeSendableInt32: @unchecked Sendable {
    public let p: UnsafeMutablePointer<Int32>
    public init(_ p: UnsafeMutablePointer<Int32>) { self.p = p }
}

// MARK: - Batch normalization (non-affine)

/// Batch normalization without scale or shift: training normalizes with the batch mean and
/// biased variance and updates running statistics (PyTorch: momentum 0.1, unbiased variance);
/// evaluation uses the running statistics. Works on [C, H, W] (per channel) or [F].
public final class BatchNorm: Layer {
    public let eps: Double
    public let momentum: Double
    public private(set) var channels = 0
    var spatial = 0
    public var runningMean: FloatBuffer! = nil
    public var runningVar: FloatBuffer! = nil
    var invStd: FloatBuffer! = nil
    public var hasWeights: Bool { false }
    public init(eps: Double = 1e-5, momentum: Double = 0.1) { self.eps = eps; self.momentum = momentum }

    public var spec: LayerSpec {
        var s = LayerSpec(op: "batchnorm"); s.channels = channels; s.eps = eps; s.momentum = momentum
        return s
    }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard !input.isEmpty else { throw TrainingError("batchnorm: empty input shape") }
        channels = input[0]; spatial = elementCount(input) / channels
        runningMean = FloatBuffer(count: channels)
        runningVar = FloatBuffer([Float](repeating: 1, count: channels))
        invStd = FloatBuffer(count: channels)
        return input
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let X = SendablePtr(x), Y = SendablePtr(y)
        let C = channels, S = spatial
        let rm = SendablePtr(runningMean.ptr), rv = SendablePtr(runningVar.ptr), inv = SendablePtr(invStd.ptr)
        let eps = self.eps, mom = self.momentum
        pool.run(C) { ch, _ in
            let mean: Double, varB: Double
            if training {
                var s = 0.0, s2 = 0.0
                for n in 0..<batch {
                    let p = X.p + (n * C + ch) * S
                    let (a, a2) = sums(p, p, count: S)
                    s += Double(a); s2 += Double(a2)
                }
                let cnt = Double(batch * S)
                mean = s / cnt
                varB = max(0, s2 / cnt - mean * mean)
                let unbiased = cnt > 1 ? varB * cnt / (cnt - 1) : varB
                rm.p[ch] = Float((1 - mom) * Double(rm.p[ch]) + mom * mean)
                rv.p[ch] = Float((1 - mom) * Double(rv.p[ch]) + mom * unbiased)
            } else {
                mean = Double(rm.p[ch]); varB = Double(rv.p[ch])
            }
            let istd = Float(1 / (varB + eps).squareRoot())
            let m = Float(mean)
            inv.p[ch] = istd
            for n in 0..<batch {
                let p = X.p + (n * C + ch) * S, q = Y.p + (n * C + ch) * S
                for i in 0..<S { q[i] = (p[i] - m) * istd }
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        guard let dx else { return }
        let Y = SendablePtr(y), DY = SendablePtr(dy), DX = SendablePtr(dx), inv = SendablePtr(invStd.ptr)
        let C = channels, S = spatial
        pool.run(C) { ch, _ in
            var sg = 0.0, sgy = 0.0
            for n in 0..<batch {
                let g = DY.p + (n * C + ch) * S, yy = Y.p + (n * C + ch) * S
                let (a, b) = sums(g, yy, count: S)
                sg += Double(a); sgy += Double(b)
            }
            let cnt = Double(batch * S)
            let mg = Float(sg / cnt), mgy = Float(sgy / cnt), istd = inv.p[ch]
            for n in 0..<batch {
                let g = DY.p + (n * C + ch) * S, yy = Y.p + (n * C + ch) * S, d = DX.p + (n * C + ch) * S
                for i in 0..<S { d[i] = istd * (g[i] - mg - yy[i] * mgy) }
            }
        }
    }
}

/// (sum of a[i], sum of a[i] * b[i]) over i < count: eight lanes over the vectors in order,
/// the lanes added in a fixed tree, then the tail in order.
@inline(__always)
func sums(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> (Float, Float) {
    var s = SIMD8<Float>(), d = SIMD8<Float>()
    let nv = count / 8
    for v in 0..<nv {
        let x = UnsafeRawPointer(a + 8 * v).loadUnaligned(as: SIMD8<Float>.self)
        let y = UnsafeRawPointer(b + 8 * v).loadUnaligned(as: SIMD8<Float>.self)
        s += x; d += x * y
    }
    var ts = FloatKernels.WindowKernel.laneSum(s), td = FloatKernels.WindowKernel.laneSum(d)
    for i in (8 * nv)..<count { ts += a[i]; td += a[i] * b[i] }
    return (ts, td)
}

/// max(floor, a[0], ..., a[count - 1]) (exact: the order of a maximum does not matter); eight
/// independent running maxima so that the compiler can keep them in one vector.
@inline(__always)
func maxOf(_ a: UnsafePointer<Float>, count: Int, atLeast floor: Float) -> Float {
    var m0 = floor, m1 = floor, m2 = floor, m3 = floor, m4 = floor, m5 = floor, m6 = floor, m7 = floor
    let nv = count / 8
    for v in 0..<nv {
        let p = a + 8 * v
        m0 = p[0] > m0 ? p[0] : m0; m1 = p[1] > m1 ? p[1] : m1; m2 = p[2] > m2 ? p[2] : m2; m3 = p[3] > m3 ? p[3] : m3
        m4 = p[4] > m4 ? p[4] : m4; m5 = p[5] > m5 ? p[5] : m5; m6 = p[6] > m6 ? p[6] : m6; m7 = p[7] > m7 ? p[7] : m7
    }
    var r = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for i in (8 * nv)..<count { r = max(r, a[i]) }
    return r
}

// MARK: - Element-wise ops

/// Block size of element-wise work (fixed, so results never depend on the thread count).
let elementGrain = 16384

public final class ReLU: Layer {
    var size = 0
    public var hasWeights: Bool { false }
    public init() {}
    public var spec: LayerSpec { LayerSpec(op: "relu") }
    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] { size = elementCount(input); return input }
    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let X = SendablePtr(x), Y = SendablePtr(y)
        pool.blocks(batch * size, grain: elementGrain) { r in for i in r { Y.p[i] = max(X.p[i], 0) } }
    }
    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        guard let dx else { return }
        let X = SendablePtr(x), DY = SendablePtr(dy), DX = SendablePtr(dx)
        pool.blocks(batch * size, grain: elementGrain) { r in for i in r { let g = DY.p[i]; DX.p[i] = X.p[i] > 0 ? g : 0 } }   // g loaded unconditionally: vectorizes
    }
}

public final class Flatten: Layer {
    var size = 0
    public var hasWeights: Bool { false }
    public init() {}
    public var spec: LayerSpec { LayerSpec(op: "flatten") }
    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] { size = elementCount(input); return [size] }
    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        y.update(from: x, count: batch * size)
    }
    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        dx?.update(from: dy, count: batch * size)
    }
}

/// How a fake-quantizer chooses its range while training. Evaluation always uses the static
/// range (the one `freeze` uses).
public enum RangeMode: String, Codable, Sendable {
    /// range = EMA of the batch maxima, updated before quantizing the batch (default).
    case ema
    /// range = this batch's max (the EMA is still tracked for evaluation).
    case batch
}

/// Unsigned b-bit activation fake quantization on [0, r]:
/// q = round(clamp(x, 0, r) / r * (2^b - 1)) * r / (2^b - 1), rounding half away from zero.
/// Straight-through gradient: dx = dy where 0 <= x <= r, 0 outside (the clamp's gradient).
/// A fixed range (the input quantizer, r = 1 for pixels/255) is never updated.
public final class FakeQuant: Layer {
    public let bits: Int
    public let fixedRange: Bool
    public var range: Float
    public var rangeMomentum: Float
    public var mode: RangeMode
    public var initialized: Bool
    var usedRange: Float = 1
    var size = 0
    let chunkMax = FloatBuffer(count: WorkPool.chunks)
    public var hasWeights: Bool { false }

    public init(bits: Int, fixedRange: Float? = nil, momentum: Float = 0.1, mode: RangeMode = .ema) {
        self.bits = bits
        self.fixedRange = fixedRange != nil
        range = fixedRange ?? 0
        initialized = fixedRange != nil
        rangeMomentum = momentum
        self.mode = mode
    }

    public var spec: LayerSpec {
        var s = LayerSpec(op: "fakequant"); s.bits = bits; s.range = Double(range); s.fixedRange = fixedRange
        return s
    }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard (1...16).contains(bits) else { throw TrainingError("fakequant: bits \(bits) outside 1...16") }
        size = elementCount(input); return input
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let X = SendablePtr(x), Y = SendablePtr(y)
        let per = size
        if training && !fixedRange {
            let CM = SendablePtr(chunkMax.ptr)
            pool.run(WorkPool.chunks) { c, _ in
                let r = WorkPool.range(c, of: batch)
                CM.p[c] = maxOf(X.p + r.lowerBound * per, count: r.count * per, atLeast: 0)
            }
            var bmax: Float = 0
            for c in 0..<WorkPool.chunks { bmax = max(bmax, chunkMax[c]) }
            if !initialized { range = bmax; initialized = true } else { range = (1 - rangeMomentum) * range + rangeMomentum * bmax }
            usedRange = mode == .batch ? bmax : range
        } else {
            usedRange = range
        }
        let r = usedRange
        let levels = Float((1 << bits) - 1)
        if !(r > 0) {
            pool.blocks(batch * per, grain: elementGrain) { rg in for i in rg { Y.p[i] = 0 } }
            return
        }
        let scale = levels / r, step = r / levels
        pool.blocks(batch * per, grain: elementGrain) { rg in
            for i in rg {
                let v = min(max(X.p[i], 0), r)
                Y.p[i] = roundHalfAwayNonNegative(v * scale) * step
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        guard let dx else { return }
        let X = SendablePtr(x), DY = SendablePtr(dy), DX = SendablePtr(dx)
        let r = usedRange
        pool.blocks(batch * size, grain: elementGrain) { rg in
            for i in rg { let v = X.p[i], g = DY.p[i]; DX.p[i] = (v >= 0 && v <= r) ? g : 0 }
        }
    }
}

/// round(x) with ties away from zero for 0 <= x < 2^22, exactly as `x.rounded()`, without a
/// libm call (SSE2 has no rounding instruction): round to nearest-even with the 1.5 * 2^23
/// trick, then move the ties that went down to even one step up.
@inline(__always)
public func roundHalfAwayNonNegative(_ x: Float) -> Float {
    let magic: Float = 12582912   // 1.5 * 2^23
    let t = (x + magic) - magic
    return x - t == 0.5 ? t + 1 : t
}
