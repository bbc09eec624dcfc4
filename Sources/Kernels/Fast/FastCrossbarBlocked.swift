// Register-blocked crossbar micro-kernel (DATAPATH.md section 12, "Crossbar").
//
// Weights are packed once per tile and group of 16 output channels as Int16
// `[tile][group][row (packed order)][16]` (outputs past `cout` have weight 0). For a block of 4
// output pixels, each row's input code is read straight from the HWC input (the row's kernel
// position selects the pixel, its channel is contiguous; positions outside the map read a zero
// buffer), broadcast to 16 Int16 lanes and multiplied with the row's weight vector of 16
// outputs (`pmullw`), each weight vector serving the 4 pixels. The products are exact in Int16
// (`|a * w| <= maxCode * maxAbsW <= 255 * 128 < 2^15`) and are summed in Int16 lanes for at
// most `chunkRows = floor((2^15 - 1) / (maxCode * maxAbsW))` rows, so that every Int16 partial
// sum is bounded by 2^15 - 1 and never wraps; then they are widened and added to Int32
// accumulators (exact: every Int32 partial sum is a partial sum of the tile product, bounded
// by section 5). The tile's 16 x 4 accumulators then go through the ADC (or the fused
// activation thresholds).

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

    @inlinable @inline(__always)
    static func widenAdd(_ acc: inout SIMD8<Int32>, _ acc2: inout SIMD8<Int32>, _ v: SIMD16<Int16>) {
        acc &+= SIMD8<Int32>(truncatingIfNeeded: v.lowHalf)
        acc2 &+= SIMD8<Int32>(truncatingIfNeeded: v.highHalf)
    }

    /// Tile `t`, output group `g`, 4 output pixels: the exact tile accumulators, stored to
    /// `acc` as `[pixel][16]` Int32.
    @inlinable @inline(__always)
    static func accumulate4(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ t: Int, _ g: Int,
                            _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer) {
        var c0 = SIMD8<Int32>(), d0 = SIMD8<Int32>(), c1 = SIMD8<Int32>(), d1 = SIMD8<Int32>()
        var c2 = SIMD8<Int32>(), d2 = SIMD8<Int32>(), c3 = SIMD8<Int32>(), d3 = SIMD8<Int32>()
        var s0 = SIMD16<Int16>(), s1 = SIMD16<Int16>(), s2 = SIMD16<Int16>(), s3 = SIMD16<Int16>()
        let chunk = plan.chunkRows
        var pending = 0
        var wp = UnsafeRawPointer(plan.blockWeights) + (plan.blockTileOffset[t] &+ g &* plan.tileRows[t] &* 16) &* 2
        let segs = plan.segments
        for s in plan.tileSegStart[t]..<plan.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0 = segmentRow(src, plan, sg, oy[0], ox[0]), r1 = segmentRow(src, plan, sg, oy[1], ox[1])
            var r2 = segmentRow(src, plan, sg, oy[2], ox[2]), r3 = segmentRow(src, plan, sg, oy[3], ox[3])
            var left = sg[3] &- sg[2]
            while left > 0 {
                let m = Swift.min(left, chunk &- pending)
                for j in 0..<m {
                    let wv = wp.loadUnaligned(fromByteOffset: j &* 32, as: SIMD16<Int16>.self)
                    s0 &+= SIMD16<Int16>(repeating: r0[j]) &* wv
                    s1 &+= SIMD16<Int16>(repeating: r1[j]) &* wv
                    s2 &+= SIMD16<Int16>(repeating: r2[j]) &* wv
                    s3 &+= SIMD16<Int16>(repeating: r3[j]) &* wv
                }
                wp += m &* 32
                r0 += m; r1 += m; r2 += m; r3 += m
                left &-= m
                pending &+= m
                if pending == chunk {
                    widenAdd(&c0, &d0, s0); widenAdd(&c1, &d1, s1); widenAdd(&c2, &d2, s2); widenAdd(&c3, &d3, s3)
                    s0 = SIMD16<Int16>(); s1 = SIMD16<Int16>(); s2 = SIMD16<Int16>(); s3 = SIMD16<Int16>()
                    pending = 0
                }
            }
        }
        widenAdd(&c0, &d0, s0); widenAdd(&c1, &d1, s1); widenAdd(&c2, &d2, s2); widenAdd(&c3, &d3, s3)
        acc.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Int32>.self); acc.storeBytes(of: d0, toByteOffset: 32, as: SIMD8<Int32>.self)
        acc.storeBytes(of: c1, toByteOffset: 64, as: SIMD8<Int32>.self); acc.storeBytes(of: d1, toByteOffset: 96, as: SIMD8<Int32>.self)
        acc.storeBytes(of: c2, toByteOffset: 128, as: SIMD8<Int32>.self); acc.storeBytes(of: d2, toByteOffset: 160, as: SIMD8<Int32>.self)
        acc.storeBytes(of: c3, toByteOffset: 192, as: SIMD8<Int32>.self); acc.storeBytes(of: d3, toByteOffset: 224, as: SIMD8<Int32>.self)
    }

    /// As `accumulate4` for one output pixel (`acc`: 16 Int32).
    @inlinable @inline(__always)
    static func accumulate1(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ t: Int, _ g: Int,
                            _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        var c0 = SIMD8<Int32>(), d0 = SIMD8<Int32>()
        var s0 = SIMD16<Int16>(), s1 = SIMD16<Int16>()
        let chunk = plan.chunkRows
        var pending = 0
        var wp = UnsafeRawPointer(plan.blockWeights) + (plan.blockTileOffset[t] &+ g &* plan.tileRows[t] &* 16) &* 2
        let segs = plan.segments
        for s in plan.tileSegStart[t]..<plan.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0 = segmentRow(src, plan, sg, oy, ox)
            var left = sg[3] &- sg[2]
            while left > 0 {
                let m = Swift.min(left, chunk &- pending)
                // two independent Int16 sums (even / odd rows): each gets at most `m` rows
                var j = 0
                while j &+ 1 < m {
                    s0 &+= SIMD16<Int16>(repeating: r0[j]) &* wp.loadUnaligned(fromByteOffset: j &* 32, as: SIMD16<Int16>.self)
                    s1 &+= SIMD16<Int16>(repeating: r0[j &+ 1]) &* wp.loadUnaligned(fromByteOffset: j &* 32 &+ 32, as: SIMD16<Int16>.self)
                    j &+= 2
                }
                if j < m { s0 &+= SIMD16<Int16>(repeating: r0[j]) &* wp.loadUnaligned(fromByteOffset: j &* 32, as: SIMD16<Int16>.self) }
                wp += m &* 32
                r0 += m
                left &-= m
                pending &+= m
                if pending == chunk {
                    widenAdd(&c0, &d0, s0); widenAdd(&c0, &d0, s1)
                    s0 = SIMD16<Int16>(); s1 = SIMD16<Int16>()
                    pending = 0
                }
            }
        }
        widenAdd(&c0, &d0, s0); widenAdd(&c0, &d0, s1)
        acc.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Int32>.self); acc.storeBytes(of: d0, toByteOffset: 32, as: SIMD8<Int32>.self)
    }

    /// The tile accumulators of `count` (1...4) consecutive output pixels from `pix`, output
    /// group `g`, into `acc` (`[pixel][16]` Int32).
    @inlinable @inline(__always)
    static func accumulateBlock(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ t: Int, _ g: Int,
                                _ pix: Int, _ count: Int, _ acc: UnsafeMutableRawPointer) {
        let ow = plan.outShape.w
        if count == 4 {
            var oy = SIMD4<Int>(), ox = SIMD4<Int>()
            for i in 0..<4 { let p = pix &+ i; oy[i] = p / ow; ox[i] = p &- oy[i] &* ow }
            accumulate4(src, plan, t, g, oy, ox, acc)
        } else {
            for i in 0..<count {
                let p = pix &+ i, y = p / ow
                accumulate1(src, plan, t, g, y, p &- y &* ow, acc + i &* 64)
            }
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
        var pix = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            for t in 0..<plan.tileCount {
                let m = plan.adcMult[t], rc = plan.adcRound[t], lo = plan.adcLo[t], hi = plan.adcHi[t]
                for g in 0..<plan.groups {
                    accumulateBlock(src, plan, t, g, pix, nb, acc)
                    let o0 = g &* 16, lanes = Swift.min(16, cout &- o0)
                    for i in 0..<nb {
                        let out = dst + ((pix &+ i) &* cout &+ o0)
                        let tIdx = (t &* pixels &+ pix &+ i) &* cout &+ o0
                        let tout = tileOut.map { $0 + tIdx }
                        for l in 0..<lanes {
                            // |acc * m| < 2^62 (validate): no wrap
                            let q = rc.apply(Int64(accI[i &* 16 &+ l]) &* m)
                            let code = Int32(truncatingIfNeeded: q < lo ? lo : (q > hi ? hi : q))
                            out[l] = t == 0 ? code : out[l] &+ code
                            if let tout { tout[l] = code }
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
        var pix = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            for g in 0..<plan.groups {
                accumulateBlock(src, plan, 0, g, pix, nb, acc)
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
