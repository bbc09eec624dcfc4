// Fast crossbar layer (DATAPATH.md sections 5 and 6) on HWC Int32 activations.
//
// Set-up (CrossbarPlan, once): the fan-in of each row tile is re-ordered so that, for each
// kernel position (y, x), the tile's channels form one contiguous run [cLo, cHi) (for fixed
// (y, x) the canonical row r = (c*kh + y)*kw + x grows with c, so a tile's rows at that position
// are a channel interval). Weights are packed as Int16 `[tile][cout chunk of 16][row][16]`.
// Eval (per output pixel): gather the patch (contiguous copies of HWC runs, 0 for padding) into
// Int16, then for each tile and chunk of 16 output channels accumulate
// `patch[r] * w[r][o..o+16]` in Int16 lanes for at most `blockRows` rows (the product bound
// proves no Int16 wrap: blockRows * maxCode * 2^(wb-1) <= 32767), widen into Int32 lanes
// (exact: |acc| bounded by validate()), then the ADC per lane and the digital sum.

import FixedPoint

/// Namespace of the fast kernels.
public enum Fast {}

/// Set-up of one crossbar layer for the fast kernel. Immutable after init.
public final class CrossbarPlan: @unchecked Sendable {
    public let inShape: TensorShape, outShape: TensorShape
    public let kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    public let cout: Int, coutPad: Int, chunks: Int, fanIn: Int, tileCount: Int
    /// Rows accumulated in Int16 lanes before widening.
    public let blockRows: Int
    /// Segments: 5 Ints each (y, x, cLo, cHi, patchOffset), tile after tile.
    @usableFromInline let segments: UnsafeMutablePointer<Int>
    @usableFromInline let segmentCount: Int
    @usableFromInline let tileStart: UnsafeMutablePointer<Int>
    @usableFromInline let tileRows: UnsafeMutablePointer<Int>
    @usableFromInline let adcMult: UnsafeMutablePointer<Int64>
    @usableFromInline let adcShift: UnsafeMutablePointer<ShiftConst>
    @usableFromInline let adcLo: UnsafeMutablePointer<Int64>
    @usableFromInline let adcHi: UnsafeMutablePointer<Int64>
    @usableFromInline let adcRule: UnsafeMutablePointer<RoundingRule>
    @usableFromInline let weights: UnsafeMutablePointer<Int16>

    /// `maxCode`: the largest input code (from `Program.valueRanges()`).
    public init(_ p: CrossbarParams, inShape: TensorShape, maxCode: Int) {
        self.inShape = inShape
        outShape = p.outputShape(for: inShape)
        kh = p.kernelH; kw = p.kernelW; sh = p.strideH; sw = p.strideW; ph = p.padH; pw = p.padW
        cout = p.outChannels
        chunks = (cout + 15) / 16
        coutPad = chunks * 16
        fanIn = p.fanIn
        tileCount = p.tiles.count
        let pmax = Swift.max(1, maxCode * (1 << (p.weightBits - 1)))
        blockRows = Swift.max(1, 32767 / pmax)

        let khw = kh * kw
        var segs: [Int] = []
        for tile in p.tiles {
            let start = tile.rowStart, end = tile.rowStart + tile.rowCount
            var off = start
            for y in 0..<kh {
                for x in 0..<kw {
                    let q = y * kw + x
                    // smallest c with c*khw + q >= bound
                    func firstC(_ bound: Int) -> Int { Swift.min(p.inChannels, Swift.max(0, (bound - q + khw - 1) / khw)) }
                    let cLo = firstC(start), cHi = firstC(end)
                    if cHi > cLo {
                        segs += [y, x, cLo, cHi, off]
                        off += cHi - cLo
                    }
                }
            }
            precondition(off == end, "segment construction")
        }
        segmentCount = segs.count / 5
        segments = .allocate(capacity: Swift.max(1, segs.count))
        for (i, v) in segs.enumerated() { segments[i] = v }

        tileStart = .allocate(capacity: tileCount); tileRows = .allocate(capacity: tileCount)
        adcMult = .allocate(capacity: tileCount); adcShift = .allocate(capacity: tileCount)
        adcLo = .allocate(capacity: tileCount); adcHi = .allocate(capacity: tileCount)
        adcRule = .allocate(capacity: tileCount)
        for (t, tile) in p.tiles.enumerated() {
            tileStart[t] = tile.rowStart; tileRows[t] = tile.rowCount
            adcMult[t] = Int64(tile.multiplier)
            (adcShift + t).initialize(to: ShiftConst(shift: 31 - Int(tile.shift)))
            adcLo[t] = -(Int64(1) << Int64(tile.bits - 1)); adcHi[t] = (Int64(1) << Int64(tile.bits - 1)) - 1
            (adcRule + t).initialize(to: tile.rounding)
        }

        // packed weights [tile][chunk][row][16]
        let wcount = fanIn * coutPad
        weights = .allocate(capacity: Swift.max(1, wcount))
        weights.initialize(repeating: 0, count: Swift.max(1, wcount))
        var s = 0
        for (t, tile) in p.tiles.enumerated() {
            while s < segmentCount && segs[5 * s + 4] < tile.rowStart + tile.rowCount {
                let y = segs[5 * s], x = segs[5 * s + 1], cLo = segs[5 * s + 2], cHi = segs[5 * s + 3], off = segs[5 * s + 4]
                for c in cLo..<cHi {
                    let r = (c * kh + y) * kw + x            // canonical row
                    let pr = off + (c - cLo) - tile.rowStart // packed row within the tile
                    for o in 0..<cout {
                        let k = o / 16, lane = o % 16
                        weights[tile.rowStart * coutPad + k * tile.rowCount * 16 + pr * 16 + lane] = Int16(p.weights[o * fanIn + r])
                    }
                }
                s += 1
            }
            _ = t
        }
    }

    deinit {
        segments.deallocate(); tileStart.deallocate(); tileRows.deallocate(); adcMult.deallocate()
        adcShift.deallocate(); adcLo.deallocate(); adcHi.deallocate(); adcRule.deallocate(); weights.deallocate()
    }
}

extension Fast {
    /// One crossbar layer. `src`: HWC input codes (Int32), `dst`: HWC digital sums,
    /// `patch`: scratch of `plan.fanIn` Int16, `tileOut` (optional): ADC codes `[tile][pixel][cout]`.
    @inlinable
    public static func crossbar(src: UnsafePointer<Int32>, dst: UnsafeMutablePointer<Int32>, plan: CrossbarPlan,
                                patch: UnsafeMutablePointer<Int16>, tileOut: UnsafeMutablePointer<Int32>?) {
        let inH = plan.inShape.h, inW = plan.inShape.w, inC = plan.inShape.c
        let oh = plan.outShape.h, ow = plan.outShape.w
        let cout = plan.cout, coutPad = plan.coutPad, pixels = oh &* ow
        let segs = plan.segments
        var pix = 0
        for oy in 0..<oh {
            for ox in 0..<ow {
                // gather the patch in packed order
                for s in 0..<plan.segmentCount {
                    let sg = segs + 5 &* s
                    let iy = oy &* plan.sh &- plan.ph &+ sg[0]
                    let ix = ox &* plan.sw &- plan.pw &+ sg[1]
                    let cLo = sg[2], n = sg[3] &- cLo
                    let d = patch + sg[4]
                    if iy >= 0 && iy < inH && ix >= 0 && ix < inW {
                        let sp = src + ((iy &* inW &+ ix) &* inC &+ cLo)
                        for j in 0..<n { d[j] = Int16(truncatingIfNeeded: sp[j]) }
                    } else {
                        for j in 0..<n { d[j] = 0 }
                    }
                }
                let out = dst + pix &* cout
                for t in 0..<plan.tileCount {
                    let rows = plan.tileRows[t], rs = plan.tileStart[t]
                    let pt = patch + rs
                    let tout = tileOut.map { $0 + (t &* pixels &+ pix) &* cout }
                    for k in 0..<plan.chunks {
                        var wp = UnsafeRawPointer(plan.weights + (rs &* coutPad &+ k &* rows &* 16))
                        var acc = SIMD16<Int32>()
                        var r = 0
                        while r < rows {
                            let end = Swift.min(rows, r &+ plan.blockRows)
                            var a16 = SIMD16<Int16>()
                            while r < end {
                                a16 &+= SIMD16<Int16>(repeating: pt[r]) &* wp.loadUnaligned(as: SIMD16<Int16>.self)
                                wp += 32
                                r &+= 1
                            }
                            acc &+= SIMD16<Int32>(truncatingIfNeeded: a16)
                        }
                        let lanes = Swift.min(16, cout &- k &* 16)
                        adcLanes(acc, lanes: lanes, out: out + k &* 16, first: t == 0,
                                 tileOut: tout.map { $0 + k &* 16 }, plan: plan, tile: t)
                    }
                }
                pix &+= 1
            }
        }
    }

    @inlinable @inline(__always)
    static func adcLanes(_ acc: SIMD16<Int32>, lanes: Int, out: UnsafeMutablePointer<Int32>, first: Bool,
                         tileOut: UnsafeMutablePointer<Int32>?, plan: CrossbarPlan, tile t: Int) {
        switch plan.adcRule[t] {
        case .floor: adcLoop(RoundFloor.self, acc, lanes, out, first, tileOut, plan, t)
        case .towardZero: adcLoop(RoundTowardZero.self, acc, lanes, out, first, tileOut, plan, t)
        case .halfUp: adcLoop(RoundHalfUp.self, acc, lanes, out, first, tileOut, plan, t)
        case .halfAwayFromZero: adcLoop(RoundHalfAway.self, acc, lanes, out, first, tileOut, plan, t)
        case .halfToEven: adcLoop(RoundHalfEven.self, acc, lanes, out, first, tileOut, plan, t)
        }
    }

    @inlinable @inline(__always)
    static func adcLoop<R: RoundPolicy>(_: R.Type, _ acc: SIMD16<Int32>, _ lanes: Int, _ out: UnsafeMutablePointer<Int32>,
                                        _ first: Bool, _ tileOut: UnsafeMutablePointer<Int32>?,
                                        _ plan: CrossbarPlan, _ t: Int) {
        let m = plan.adcMult[t], k = plan.adcShift[t], lo = plan.adcLo[t], hi = plan.adcHi[t]
        for l in 0..<lanes {
            // |acc * m| < 2^62 (validate): no wrap
            let q = R.apply(Int64(acc[l]) &* m, k)
            let code = Int32(truncatingIfNeeded: q < lo ? lo : (q > hi ? hi : q))
            out[l] = first ? code : out[l] &+ code
            if let tileOut { tileOut[l] = code }
        }
    }
}
