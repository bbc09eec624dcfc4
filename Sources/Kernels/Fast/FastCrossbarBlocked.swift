// Register-blocked crossbar micro-kernel (DATAPATH.md section 12, "Crossbar").
//
// A tile's rows are visited segment by segment (one kernel position, a channel interval; see
// FastCrossbar.swift) in steps of two rows: the input pair (a[r], a[r+1]) is contiguous in the
// HWC input and is read as one Int32 and broadcast (`vpbroadcastd`); the step's weights are
// packed once per group of 16 output channels as two vectors of 8 outputs x 2 rows
// (`w[o][r], w[o][r+1]` in Int16 lanes 2o, 2o+1). An odd last row of a segment is its own step,
// (a, a) against (w, 0). Positions outside the map read a zero row. The products are exact in
// Int16 lanes (`pmullw`; `|a * w| <= maxCode * maxAbsWeight <= 255 * 128 < 2^15`) and each lane
// adds one product per step, so an Int16 lane is summed for at most
// `chunkRows = floor((2^15 - 1) / (maxCode * maxAbsWeight))` steps and never wraps; then the
// two row parities of each output are added into an Int32 lane (`(x << 16 >> 16) + (x >> 16)`
// on the Int32 view). Every Int32 partial sum is a partial sum of the exact tile product,
// bounded by section 5. Each weight vector serves a block of 4 output pixels (8 Int16
// accumulators of 256 bits in registers; the 4 x 16 Int32 accumulators live in the scratch and
// are only touched by the flushes), each broadcast serves 16 outputs. The tile's 4 x 16
// accumulators then go through the ADC (or the fused activation thresholds).

extension Fast {
    /// The input row pointer of segment `sg` (y, x, cLo, ...) for output pixel (oy, ox).
    @inlinable @inline(__always)
    static func segmentRow(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ sg: UnsafePointer<Int>,
                           _ oy: Int, _ ox: Int) -> UnsafePointer<Int16> {
        let iy = oy &* plan.sh &- plan.ph &+ sg[0]
        let ix = ox &* plan.sw &- plan.pw &+ sg[1]
        if iy >= 0 && iy < plan.inShape.h && ix >= 0 && ix < plan.inShape.w {
            return src + ((iy &* plan.inShape.w &+ ix) &* plan.inShape.c &+ sg[2])
        }
        return UnsafePointer(plan.zeroRow)
    }

    /// Window origins of 4 output pixels: the offsets of their top-left corners
    /// `((oy*sh - ph)*W + (ox*sw - pw))*C` in the HWC input, when all 4 windows lie inside the
    /// map (then a segment's input run starts at `origin + segmentOffset[s]`); nil otherwise.
    @inlinable @inline(__always)
    static func windowOrigins(_ plan: CrossbarPlan, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>) -> SIMD4<Int>? {
        let iy = oy &* plan.sh &- plan.ph, ix = ox &* plan.sw &- plan.pw
        let inside = iy.min() >= 0 && ix.min() >= 0 && iy.max() &+ plan.kh <= plan.inShape.h && ix.max() &+ plan.kw <= plan.inShape.w
        return inside ? (iy &* plan.inShape.w &+ ix) &* plan.inShape.c : nil
    }

    /// The input pair (a[r], a[r+1]) at `p` in every Int32 lane: Int16 lanes a, b, a, b, ...
    @inlinable @inline(__always)
    static func pairBroadcast(_ p: UnsafePointer<Int16>) -> SIMD16<Int16> {
        unsafeBitCast(SIMD8<Int32>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self)), to: SIMD16<Int16>.self)
    }

    /// Int16 lanes (2i, 2i+1) hold the two row parities of output i: their sum as Int32 lane i.
    @inlinable @inline(__always)
    static func widenPairs(_ v: SIMD16<Int16>) -> SIMD8<Int32> {
        let x = unsafeBitCast(v, to: SIMD8<Int32>.self)
        return ((x &<< 16) &>> 16) &+ (x &>> 16)
    }

    /// Tile `t`, output group `g`, 4 output pixels: the exact tile accumulators, summed in
    /// `acc` as `[pixel][16]` Int32 (zeroed first). Per step one row pair (or a segment's last odd row, as
    /// the pair (a, a) with weights (w, 0)) is multiplied with 8 outputs x 2 rows per vector.
    @inlinable @inline(__always)
    static func accumulate4(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ t: Int, _ g: Int,
                            _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer) {
        for k in 0..<8 { acc.storeBytes(of: SIMD8<Int32>(), toByteOffset: k &* 32, as: SIMD8<Int32>.self) }
        @inline(__always) func add(_ k: Int, _ v: SIMD16<Int16>) {
            acc.storeBytes(of: acc.loadUnaligned(fromByteOffset: k &* 32, as: SIMD8<Int32>.self) &+ widenPairs(v), toByteOffset: k &* 32, as: SIMD8<Int32>.self)
        }
        var s0 = SIMD16<Int16>(), u0 = SIMD16<Int16>(), s1 = SIMD16<Int16>(), u1 = SIMD16<Int16>()
        var s2 = SIMD16<Int16>(), u2 = SIMD16<Int16>(), s3 = SIMD16<Int16>(), u3 = SIMD16<Int16>()
        let chunk = plan.chunkRows
        var pending = 0
        var wp = UnsafeRawPointer(plan.blockWeights) + (plan.blockTileOffset[t] &+ g &* plan.tilePairs[t] &* 32) &* 2
        let segs = plan.segments
        @inline(__always) func flush() {
            add(0, s0); add(1, u0); add(2, s1); add(3, u1); add(4, s2); add(5, u2); add(6, s3); add(7, u3)
            s0 = SIMD16<Int16>(); u0 = s0; s1 = s0; u1 = s0; s2 = s0; u2 = s0; s3 = s0; u3 = s0
            pending = 0
        }
        @inline(__always) func step(_ x0: SIMD16<Int16>, _ x1: SIMD16<Int16>, _ x2: SIMD16<Int16>, _ x3: SIMD16<Int16>,
                                    _ w0: SIMD16<Int16>, _ w1: SIMD16<Int16>) {
            s0 &+= x0 &* w0; u0 &+= x0 &* w1
            s1 &+= x1 &* w0; u1 &+= x1 &* w1
            s2 &+= x2 &* w0; u2 &+= x2 &* w1
            s3 &+= x3 &* w0; u3 &+= x3 &* w1
        }
        let origins = windowOrigins(plan, oy, ox)
        for s in plan.tileSegStart[t]..<plan.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0: UnsafePointer<Int16>, r1: UnsafePointer<Int16>, r2: UnsafePointer<Int16>, r3: UnsafePointer<Int16>
            if let origins {
                let so = plan.segmentOffset[s]
                r0 = src + (origins[0] &+ so); r1 = src + (origins[1] &+ so); r2 = src + (origins[2] &+ so); r3 = src + (origins[3] &+ so)
            } else {
                r0 = segmentRow(src, plan, sg, oy[0], ox[0]); r1 = segmentRow(src, plan, sg, oy[1], ox[1])
                r2 = segmentRow(src, plan, sg, oy[2], ox[2]); r3 = segmentRow(src, plan, sg, oy[3], ox[3])
            }
            let n = sg[3] &- sg[2]
            var left = n &>> 1
            while left > 0 {
                let m = Swift.min(left, chunk &- pending)
                for j in 0..<m {
                    let o = j &* 2
                    step(pairBroadcast(r0 + o), pairBroadcast(r1 + o), pairBroadcast(r2 + o), pairBroadcast(r3 + o),
                         wp.loadUnaligned(fromByteOffset: j &* 64, as: SIMD16<Int16>.self),
                         wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: SIMD16<Int16>.self))
                }
                wp += m &* 64
                r0 += 2 &* m; r1 += 2 &* m; r2 += 2 &* m; r3 += 2 &* m
                left &-= m
                pending &+= m
                if pending == chunk { flush() }
            }
            if n & 1 != 0 {
                step(SIMD16<Int16>(repeating: r0[0]), SIMD16<Int16>(repeating: r1[0]),
                     SIMD16<Int16>(repeating: r2[0]), SIMD16<Int16>(repeating: r3[0]),
                     wp.loadUnaligned(as: SIMD16<Int16>.self), wp.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self))
                wp += 64
                pending &+= 1
                if pending == chunk { flush() }
            }
        }
        flush()
    }

    /// As `accumulate4` for one output pixel (`acc`: 16 Int32).
    @inlinable @inline(__always)
    static func accumulate1(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ t: Int, _ g: Int,
                            _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        var c0 = SIMD8<Int32>(), d0 = SIMD8<Int32>()
        var s0 = SIMD16<Int16>(), u0 = SIMD16<Int16>()
        let chunk = plan.chunkRows
        var pending = 0
        var wp = UnsafeRawPointer(plan.blockWeights) + (plan.blockTileOffset[t] &+ g &* plan.tilePairs[t] &* 32) &* 2
        let segs = plan.segments
        for s in plan.tileSegStart[t]..<plan.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0 = segmentRow(src, plan, sg, oy, ox)
            let n = sg[3] &- sg[2]
            var left = n &>> 1
            while left > 0 {
                let m = Swift.min(left, chunk &- pending)
                for j in 0..<m {
                    let x = pairBroadcast(r0 + j &* 2)
                    s0 &+= x &* wp.loadUnaligned(fromByteOffset: j &* 64, as: SIMD16<Int16>.self)
                    u0 &+= x &* wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: SIMD16<Int16>.self)
                }
                wp += m &* 64
                r0 += 2 &* m
                left &-= m
                pending &+= m
                if pending == chunk {
                    c0 &+= widenPairs(s0); d0 &+= widenPairs(u0); s0 = SIMD16<Int16>(); u0 = s0; pending = 0
                }
            }
            if n & 1 != 0 {
                let x = SIMD16<Int16>(repeating: r0[0])
                s0 &+= x &* wp.loadUnaligned(as: SIMD16<Int16>.self)
                u0 &+= x &* wp.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self)
                wp += 64
                pending &+= 1
                if pending == chunk {
                    c0 &+= widenPairs(s0); d0 &+= widenPairs(u0); s0 = SIMD16<Int16>(); u0 = s0; pending = 0
                }
            }
        }
        c0 &+= widenPairs(s0); d0 &+= widenPairs(u0)
        acc.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Int32>.self); acc.storeBytes(of: d0, toByteOffset: 32, as: SIMD8<Int32>.self)
    }

    /// One ADC conversion (DATAPATH.md section 6), branch-free: `RoundingConst.apply` then the
    /// saturation. `|acc * m| < 2^62` (validate): no wrap.
    @inlinable @inline(__always)
    static func adcCode(_ acc: Int32, _ m: Int64, _ rc: RoundingConst, _ lo: Int64, _ hi: Int64) -> Int32 {
        let x = Int64(acc) &* m
        let q0 = (x &+ (x > 0 ? rc.biasPos : rc.biasNeg)) &>> rc.shift
        let q = q0 &- ((x & rc.mask) == rc.tieEven ? (q0 & 1) : 0)
        return Int32(truncatingIfNeeded: Swift.min(Swift.max(q, lo), hi))
    }

    /// Output coordinates of the block of `count` (1...4) pixels starting at (y0, x0) in a map of
    /// width `ow` (entries past `count` repeat the last pixel), without divisions.
    @inlinable @inline(__always)
    static func blockCoords(_ y0: Int, _ x0: Int, _ count: Int, _ ow: Int) -> (SIMD4<Int>, SIMD4<Int>) {
        var oy = SIMD4<Int>(), ox = SIMD4<Int>()
        var y = y0, x = x0
        for i in 0..<4 {
            oy[i] = y; ox[i] = x
            if i &+ 1 < count { x &+= 1; if x == ow { x = 0; y &+= 1 } }
        }
        return (oy, ox)
    }

    /// (y, x) advanced by `n` (<= 4) pixels in a map of width `ow`.
    @inlinable @inline(__always)
    static func advance(_ y: inout Int, _ x: inout Int, _ n: Int, _ ow: Int) {
        x &+= n
        while x >= ow { x &-= ow; y &+= 1 }
    }

    /// The tile accumulators of `count` (1...4) output pixels at (oy[i], ox[i]), output group
    /// `g`, into `acc` (`[pixel][16]` Int32).
    @inlinable @inline(__always)
    static func accumulateBlock(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ t: Int, _ g: Int,
                                _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ count: Int, _ acc: UnsafeMutableRawPointer) {
        if count == 4 {
            accumulate4(src, plan, t, g, oy, ox, acc)
        } else {
            for i in 0..<count { accumulate1(src, plan, t, g, oy[i], ox[i], acc + i &* 64) }
        }
    }

    /// One crossbar layer, blocked kernel. `src`: HWC input codes (Int16, each `<= plan.maxCode`),
    /// `dst`: HWC digital sums, `scratch`: `plan.patchCount` Int16 (16-byte aligned),
    /// `tileOut` (optional): ADC codes `[tile][pixel][cout]`.
    @inlinable
    static func crossbarBlocked(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, plan: CrossbarPlan,
                                scratch: UnsafeMutablePointer<Int16>, tileOut: UnsafeMutablePointer<Int32>?) {
        let pixels = plan.outShape.h &* plan.outShape.w
        let cout = plan.cout
        let acc = UnsafeMutableRawPointer(scratch)
        let accI = acc.assumingMemoryBound(to: Int32.self)
        #if arch(x86_64) && RRAM_EDGE_AVX2
        let src8 = plan.useU8 ? UnsafePointer(prepareU8(src, plan, acc)) : nil
        #endif
        var pix = 0, py = 0, px = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            let (oy, ox) = blockCoords(py, px, nb, plan.outShape.w)
            advance(&py, &px, nb, plan.outShape.w)
            for t in 0..<plan.tileCount {
                let m = plan.adcMult[t], rc = plan.adcRound[t], lo = plan.adcLo[t], hi = plan.adcHi[t]
                for g in 0..<plan.groups {
                    #if arch(x86_64) && RRAM_EDGE_AVX2
                    if let src8 { accumulateBlockU8(src8, plan, t, g, oy, ox, nb, acc) } else { accumulateBlock(src, plan, t, g, oy, ox, nb, acc) }
                    #else
                    accumulateBlock(src, plan, t, g, oy, ox, nb, acc)
                    #endif
                    let o0 = g &* 16, lanes = Swift.min(16, cout &- o0)
                    #if arch(x86_64) && RRAM_EDGE_AVX2
                    if plan.vectorADC {
                        for i in 0..<nb {
                            let out = dst + ((pix &+ i) &* cout &+ o0)
                            let codes = adcVector16(accI + i &* 16, plan, t)
                            if let tileOut {
                                let tout = tileOut + ((t &* pixels &+ pix &+ i) &* cout &+ o0)
                                for l in 0..<lanes { tout[l] = codes[l] }
                            }
                            if lanes == 16 {
                                let o = UnsafeMutableRawPointer(out)
                                if t == 0 { o.storeBytes(of: codes, as: SIMD16<Int32>.self) }
                                else { o.storeBytes(of: o.loadUnaligned(as: SIMD16<Int32>.self) &+ codes, as: SIMD16<Int32>.self) }
                            } else if t == 0 {
                                for l in 0..<lanes { out[l] = codes[l] }
                            } else {
                                for l in 0..<lanes { out[l] &+= codes[l] }
                            }
                        }
                        continue
                    }
                    #endif
                    for i in 0..<nb {
                        let out = dst + ((pix &+ i) &* cout &+ o0)
                        let a = accI + i &* 16
                        if let tileOut {
                            let tout = tileOut + ((t &* pixels &+ pix &+ i) &* cout &+ o0)
                            for l in 0..<lanes { tout[l] = adcCode(a[l], m, rc, lo, hi) }
                        }
                        if t == 0 {
                            for l in 0..<lanes { out[l] = adcCode(a[l], m, rc, lo, hi) }
                        } else {
                            for l in 0..<lanes { out[l] &+= adcCode(a[l], m, rc, lo, hi) }
                        }
                    }
                }
            }
            pix &+= nb
        }
    }

    /// The wide fused crossbar + activation, blocked kernel (single tile): per output the
    /// number of thresholds `T_k[o] <= acc`.
    @inlinable
    static func crossbarActivationBlocked(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, plan: CrossbarPlan,
                                          scratch: UnsafeMutablePointer<Int16>) {
        let pixels = plan.outShape.h &* plan.outShape.w
        let cout = plan.cout, levels = plan.fusedLevels, stride = plan.groups &* 16
        let acc = UnsafeMutableRawPointer(scratch)
        let th = UnsafeRawPointer(plan.blockThresholds)
        let one = SIMD8<Int32>(repeating: 1)
        #if arch(x86_64) && RRAM_EDGE_AVX2
        let src8 = plan.useU8 ? UnsafePointer(prepareU8(src, plan, acc)) : nil
        #endif
        var pix = 0, py = 0, px = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            let (oy, ox) = blockCoords(py, px, nb, plan.outShape.w)
            advance(&py, &px, nb, plan.outShape.w)
            for g in 0..<plan.groups {
                #if arch(x86_64) && RRAM_EDGE_AVX2
                if let src8 { accumulateBlockU8(src8, plan, 0, g, oy, ox, nb, acc) } else { accumulateBlock(src, plan, 0, g, oy, ox, nb, acc) }
                #else
                accumulateBlock(src, plan, 0, g, oy, ox, nb, acc)
                #endif
                let o0 = g &* 16, lanes = Swift.min(16, cout &- o0)
                for i in 0..<nb {
                    let a0 = acc.loadUnaligned(fromByteOffset: i &* 64, as: SIMD8<Int32>.self)
                    let a1 = acc.loadUnaligned(fromByteOffset: i &* 64 &+ 32, as: SIMD8<Int32>.self)
                    var n0 = SIMD8<Int32>(), n1 = SIMD8<Int32>()
                    var tp = th + o0 &* 4
                    for _ in 0..<levels {
                        n0 &+= SIMD8<Int32>().replacing(with: one, where: a0 .>= tp.loadUnaligned(as: SIMD8<Int32>.self))
                        n1 &+= SIMD8<Int32>().replacing(with: one, where: a1 .>= tp.loadUnaligned(fromByteOffset: 32, as: SIMD8<Int32>.self))
                        tp += stride &* 4
                    }
                    let out = dst + ((pix &+ i) &* cout &+ o0)
                    if lanes == 16 {
                        UnsafeMutableRawPointer(out).storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: n0), as: SIMD8<Int16>.self)
                        UnsafeMutableRawPointer(out + 8).storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: n1), as: SIMD8<Int16>.self)
                    } else {
                        for l in 0..<lanes { out[l] = Int16(truncatingIfNeeded: l < 8 ? n0[l] : n1[l &- 8]) }
                    }
                }
            }
            pix &+= nb
        }
    }
}
