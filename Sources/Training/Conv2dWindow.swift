// Conv2d's stride-1 path on the window kernels (FloatKernels/WindowKernel.swift, through
// Training's `Window` dispatch). Forward, weight gradient and input gradient read the padded
// input and the output gradient in place; nothing is unrolled.

/// Buffer geometry of the window path (all counts in floats).
struct WindowGeometry {
    /// Padded input planes: hp x wp, plane = hp * wp.
    var hp = 0, wp = 0, plane = 0
    /// One sample's padded input plus zero slack for the last vector of the last window.
    var xSize = 0
    /// Forward output rows: oh * wp positions (ow valid per wp) in yVec vectors of 8, stride yRow.
    var yVec = 0, yRow = 0
    /// Input-gradient rows over the padded plane: dxVec vectors, stride dxRow.
    var dxVec = 0, dxRow = 0
    /// Output-gradient rows: `margin` zeros, then oh * wp positions (zero in the discarded
    /// columns), zeros up to dyRow.
    var margin = 0, dyRow = 0
    /// Window offsets: xOff[(c * kh + ky) * kw + kx] into the padded input (forward, weight
    /// gradient); dyOff[(co * kh + ky) * kw + kx] into the output-gradient rows (input gradient).
    var xOff: [Int] = [], dyOff: [Int] = []

    init() {}

    init(cin: Int, cout: Int, kh: Int, kw: Int, ih: Int, iw: Int, pad: Int) {
        hp = ih + 2 * pad; wp = iw + 2 * pad; plane = hp * wp
        let oh = hp - kh + 1
        xSize = cin * plane + kw + 8
        yVec = (oh * wp + 7) / 8; yRow = 8 * yVec
        dxVec = (plane + 7) / 8; dxRow = 8 * dxVec
        margin = (kh - 1) * wp + kw - 1
        dyRow = margin + dxRow
        for c in 0..<cin { for ky in 0..<kh { for kx in 0..<kw { xOff.append(c * plane + ky * wp + kx) } } }
        for co in 0..<cout { for ky in 0..<kh { for kx in 0..<kw { dyOff.append(co * dyRow + margin - ky * wp - kx) } } }
    }
}

extension Conv2d {
    /// Copies sample x ([cin, ih, iw]) into the interior of its padded planes; the border and the
    /// slack are zero from allocation and never written.
    @inline(__always)
    func windowFill(_ x: UnsafeMutablePointer<Float>, into xp: UnsafeMutablePointer<Float>) {
        for c in 0..<cin { for iy in 0..<ih {
            (xp + c * win.plane + (iy + pad) * win.wp + pad).update(from: x + (c * ih + iy) * iw, count: iw)
        }}
    }

    func windowForward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, pool: WorkPool) {
        let g = win, K = fanIn, cout = self.cout, oh = self.oh, ow = self.ow
        let A = SendablePtr(winA.ptr), X = SendablePtr(x), Y = SendablePtr(y)
        let w = weight.ptr
        Window.pack(m: cout, k: K, into: A.p) { co, k in w[co * K + k] }
        let isz = cin * ih * iw, ohw = oh * ow
        pool.chunks(batch: batch) { _, r, wk in
            let xp = self.winXs[wk].ptr, out = self.winOuts[wk].ptr
            g.xOff.withUnsafeBufferPointer { off in
                for s in r {
                    self.windowFill(X.p + s * isz, into: xp)
                    Window.product(m: cout, nvec: g.yVec, k: K, a: A.p, off: off.baseAddress!, base: xp, c: out, ldc: g.yRow)
                    for co in 0..<cout { for oy in 0..<oh {
                        (Y.p + (s * cout + co) * ohw + oy * ow).update(from: out + co * g.yRow + oy * g.wp, count: ow)
                    }}
                }
            }
        }
    }

    func windowBackward(_ x: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                        batch: Int, pool: WorkPool) {
        let g = win, K = fanIn, wc = weight.count, cin = self.cin, cout = self.cout, khw = kh * kw
        let oh = self.oh, ow = self.ow, ih = self.ih, iw = self.iw, pad = self.pad
        let A = SendablePtr(winA.ptr), X = SendablePtr(x), DY = SendablePtr(dy), DX = dx.map { SendablePtr($0) }
        let P = SendablePtr(partials.ptr)
        if dx != nil {
            // A'(c, (co, ky, kx)) = W[co, c, ky, kx]
            let w = weight.ptr
            Window.pack(m: cin, k: cout * khw, into: A.p) { c, k2 in
                let co = k2 / khw
                return w[(co * cin + c) * khw + k2 - co * khw]
            }
        }
        let isz = cin * ih * iw, ohw = oh * ow
        pool.chunks(batch: batch) { chunk, r, wk in
            let xs = self.winXs[wk].ptr, dys = self.winDYs[wk].ptr, out = self.winOuts[wk].ptr
            let part = P.p + chunk * wc
            g.xOff.withUnsafeBufferPointer { xOff in g.dyOff.withUnsafeBufferPointer { dyOff in
                var s0 = r.lowerBound
                while s0 < r.upperBound {
                    let nb = min(Self.windowBlock, r.upperBound - s0)
                    for s in 0..<nb {
                        self.windowFill(X.p + (s0 + s) * isz, into: xs + s * g.xSize)
                        let d = dys + s * cout * g.dyRow + g.margin
                        for co in 0..<cout { for oy in 0..<oh {
                            (d + co * g.dyRow + oy * g.wp).update(from: DY.p + ((s0 + s) * cout + co) * ohw + oy * ow, count: ow)
                        }}
                    }
                    // dW_chunk (+)= sum over the block's samples
                    Window.dot(m: cout, k: K, nvec: g.yVec, samples: nb, a: dys + g.margin, aRow: g.dyRow, aStride: cout * g.dyRow,
                               base: xs, bStride: g.xSize, off: xOff.baseAddress!, c: part, ldc: K, add: s0 > r.lowerBound)
                    if let DX {
                        for s in 0..<nb {
                            Window.product(m: cin, nvec: g.dxVec, k: cout * khw, a: A.p, off: dyOff.baseAddress!,
                                           base: dys + s * cout * g.dyRow, c: out, ldc: g.dxRow)
                            for c in 0..<cin { for iy in 0..<ih {
                                (DX.p + (s0 + s) * isz + (c * ih + iy) * iw).update(from: out + c * g.dxRow + (iy + pad) * g.wp + pad, count: iw)
                            }}
                        }
                    }
                    s0 += nb
                }
            }}
        }
        reducePartials(P.p, chunksUsed: batch, into: weightGrad.ptr, count: wc, pool: pool)
    }
}
