// Block kernels (DATAPATH.md section 12, "Crossbar"): the shared outer loops, and the
// register-blocked Int16 pair kernel.
//
// A block kernel produces, for a block of up to 4 output pixels, one tile and one group of 16
// outputs, the exact tile accumulators (`[pixel][16]` Int32 in the scratch); `Fast.blockSums`
// then runs the ADC and the digital sum, `Fast.blockActivation` the fused thresholds. The two
// block kernels (`Int16PairKernel` here, `U8QuadKernel` in FastCrossbarU8.swift) differ only in
// their weight layout and inner loop.
//
// `Int16PairKernel`: a tile's rows are visited segment by segment (one kernel position, a
// channel interval; see FastCrossbar.swift) in steps of two rows: the input pair (a[r], a[r+1])
// is contiguous in the HWC input and is read as one Int32 and broadcast (`vpbroadcastd`); the
// step's weights are packed once per group of 16 output channels as two vectors of 8 outputs x
// 2 rows (`w[o][r], w[o][r+1]` in Int16 lanes 2o, 2o+1). An odd last row of a segment is its own
// step, (a, a) against (w, 0). Positions outside the map read a zero row. The products are exact
// in Int16 lanes (`pmullw`; `|a * w| <= maxCode * maxAbsWeight <= 255 * 128 < 2^15`) and each
// lane adds one product per step, so an Int16 lane is summed for at most
// `chunkRows = floor((2^15 - 1) / (maxCode * maxAbsWeight))` steps and never wraps; then the
// two row parities of each output are added into an Int32 lane (`(x << 16 >> 16) + (x >> 16)`
// on the Int32 view). Every Int32 partial sum is a partial sum of the exact tile product,
// bounded by section 5. Each weight vector serves a block of 4 output pixels (8 Int16
// accumulators of 256 bits in registers; the 4 x 16 Int32 accumulators live in the scratch and
// are only touched by the flushes), each broadcast serves 16 outputs.

/// A kernel of 4-pixel blocks: its input form and its accumulators; the outer loops are shared.
public protocol BlockKernel: CrossbarSumsKernel, CrossbarActivationKernel {
    /// The input codes as the inner loop reads them.
    associatedtype Code
    /// The layer input in this kernel's form (`src` itself, or a copy in `scratch` after the
    /// accumulators).
    func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<Code>
    /// Tile `t`, output group `g`, 4 output pixels at (oy[i], ox[i]): the exact tile
    /// accumulators into `acc` (`[pixel][16]` Int32).
    func accumulate4(_ src: UnsafePointer<Code>, _ t: Int, _ g: Int, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer)
    /// As `accumulate4` for one output pixel (`acc`: 16 Int32).
    func accumulate1(_ src: UnsafePointer<Code>, _ t: Int, _ g: Int, _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer)
}

extension BlockKernel {
    /// The accumulators of `count` (1...4) output pixels at (oy[i], ox[i]) into `acc`.
    @inlinable @inline(__always)
    func accumulate(_ src: UnsafePointer<Code>, _ t: Int, _ g: Int, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ count: Int,
                    _ acc: UnsafeMutableRawPointer) {
        if count == 4 {
            accumulate4(src, t, g, oy, ox, acc)
        } else {
            for i in 0..<count { accumulate1(src, t, g, oy[i], ox[i], acc + i &* 64) }
        }
    }
}

extension Fast {
    /// A block kernel's digital sums (`CrossbarSumsKernel.sums`): per block of 4 output pixels,
    /// tile and group, the kernel's accumulators, then the ADC and the digital sum.
    @inlinable
    static func blockSums<K: BlockKernel>(_ k: K, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>,
                                          scratch: UnsafeMutablePointer<Int16>, tileOut: UnsafeMutablePointer<Int32>?) {
        let geo = k.geometry
        let pixels = geo.outShape.h &* geo.outShape.w
        let cout = geo.cout
        let acc = UnsafeMutableRawPointer(scratch)
        let accI = acc.assumingMemoryBound(to: Int32.self)
        let input = k.input(src, acc)
        var pix = 0, py = 0, px = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            let (oy, ox) = blockCoords(py, px, nb, geo.outShape.w)
            advance(&py, &px, nb, geo.outShape.w)
            for t in 0..<geo.tileCount {
                let m = geo.adcMult[t], rc = geo.adcRound[t], lo = geo.adcLo[t], hi = geo.adcHi[t]
                for g in 0..<geo.groups {
                    k.accumulate(input, t, g, oy, ox, nb, acc)
                    let o0 = g &* 16, lanes = Swift.min(16, cout &- o0)
                    #if arch(x86_64) && RRAM_EDGE_AVX2
                    if geo.vectorADC {
                        for i in 0..<nb {
                            let out = dst + ((pix &+ i) &* cout &+ o0)
                            let codes = adcVector16(accI + i &* 16, geo, t)
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

    /// A block kernel's fused activation codes (`CrossbarActivationKernel.activationCodes`,
    /// single tile): per output the number of thresholds `T_k[o] <= acc`.
    @inlinable
    static func blockActivation<K: BlockKernel>(_ k: K, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>,
                                                scratch: UnsafeMutablePointer<Int16>) {
        let geo = k.geometry
        precondition(geo.fusedLevels > 0 && geo.tileCount == 1, "the kernel is not fused")
        let pixels = geo.outShape.h &* geo.outShape.w
        let cout = geo.cout, levels = geo.fusedLevels, stride = geo.groups &* 16
        let acc = UnsafeMutableRawPointer(scratch)
        let th = UnsafeRawPointer(geo.thresholds)
        let one = SIMD8<Int32>(repeating: 1)
        let input = k.input(src, acc)
        var pix = 0, py = 0, px = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            let (oy, ox) = blockCoords(py, px, nb, geo.outShape.w)
            advance(&py, &px, nb, geo.outShape.w)
            for g in 0..<geo.groups {
                k.accumulate(input, 0, g, oy, ox, nb, acc)
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

/// The register-blocked Int16 pair kernel (every build, every layer).
public final class Int16PairKernel: BlockKernel, @unchecked Sendable {
    public let geometry: CrossbarGeometry
    public var name: String { "int16 pairs" }
    /// The scratch holds the 4 x 16 Int32 accumulators.
    public var scratchCount: Int { 128 }
    /// Rows summed in Int16 lanes before widening: `floor((2^15 - 1) / (maxCode * maxAbsWeight))`,
    /// at least 1.
    public let chunkRows: Int
    /// Per tile: element offset of the tile's weights in `weights`, and its row-pair steps (each
    /// segment's rows in pairs, an odd last row its own step).
    @usableFromInline let tileWeightOffset: UnsafeMutablePointer<Int>
    @usableFromInline let tilePairs: UnsafeMutablePointer<Int>
    /// Int16 `[tile][group][step][8 outputs x 2 rows][2 halves]`: step `j` of a group holds, for
    /// outputs `o = 0..<16` of the group, `w[o][r_j], w[o][r_j + 1]` at Int16 index `2o, 2o + 1`
    /// (0 for outputs >= cout and for the missing second row of an odd last row).
    @usableFromInline let weights: UnsafeMutableRawPointer

    public init(_ geo: CrossbarGeometry, _ p: CrossbarParams) {
        geometry = geo
        let prodBound = Int(geo.maxCode) * geo.maxAbsWeight      // bound of one product |a * w|
        // steps per Int16 chunk: each lane adds one product per step
        chunkRows = prodBound == 0 ? Int.max / 4 : Swift.max(1, Int(Int16.max) / prodBound)
        let packed = geo.packedSteps(rows: 2, p)
        tileWeightOffset = .allocate(capacity: geo.tileCount)
        tilePairs = .allocate(capacity: geo.tileCount)
        for t in 0..<geo.tileCount { tileWeightOffset[t] = packed.offsets[t]; tilePairs[t] = packed.steps[t] }
        let count = Swift.max(packed.weights.count, 32)
        weights = .allocate(byteCount: count * 2, alignment: 32)
        let w = weights.bindMemory(to: Int16.self, capacity: count)
        w.initialize(repeating: 0, count: count)
        for (i, v) in packed.weights.enumerated() { w[i] = Int16(v) }
    }

    deinit { tileWeightOffset.deallocate(); tilePairs.deallocate(); weights.deallocate() }

    @inlinable
    public func sums(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, scratch: UnsafeMutablePointer<Int16>,
                     tileOut: UnsafeMutablePointer<Int32>?) {
        Fast.blockSums(self, src: src, dst: dst, scratch: scratch, tileOut: tileOut)
    }

    @inlinable
    public func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>) {
        Fast.blockActivation(self, src: src, dst: dst, scratch: scratch)
    }

    @inlinable @inline(__always)
    public func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<Int16> { src }

    /// The input row of segment `sg` for output pixel (oy, ox) (the zero row outside the map).
    @inlinable @inline(__always)
    func row(_ src: UnsafePointer<Int16>, _ sg: UnsafePointer<Int>, _ oy: Int, _ ox: Int) -> UnsafePointer<Int16> {
        if let start = Fast.segmentStart(geometry, sg, oy, ox) { return src + start }
        return UnsafePointer(geometry.zeroRow)
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
    public func accumulate4(_ src: UnsafePointer<Int16>, _ t: Int, _ g: Int,
                            _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer) {
        let geo = geometry
        for k in 0..<8 { acc.storeBytes(of: SIMD8<Int32>(), toByteOffset: k &* 32, as: SIMD8<Int32>.self) }
        @inline(__always) func add(_ k: Int, _ v: SIMD16<Int16>) {
            acc.storeBytes(of: acc.loadUnaligned(fromByteOffset: k &* 32, as: SIMD8<Int32>.self) &+ Self.widenPairs(v), toByteOffset: k &* 32, as: SIMD8<Int32>.self)
        }
        var s0 = SIMD16<Int16>(), u0 = SIMD16<Int16>(), s1 = SIMD16<Int16>(), u1 = SIMD16<Int16>()
        var s2 = SIMD16<Int16>(), u2 = SIMD16<Int16>(), s3 = SIMD16<Int16>(), u3 = SIMD16<Int16>()
        let chunk = chunkRows
        var pending = 0
        var wp = UnsafeRawPointer(weights) + (tileWeightOffset[t] &+ g &* tilePairs[t] &* 32) &* 2
        let segs = geo.segments
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
        let origins = Fast.windowOrigins(geo, oy, ox)
        for s in geo.tileSegStart[t]..<geo.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0: UnsafePointer<Int16>, r1: UnsafePointer<Int16>, r2: UnsafePointer<Int16>, r3: UnsafePointer<Int16>
            if let origins {
                let so = geo.segmentOffset[s]
                r0 = src + (origins[0] &+ so); r1 = src + (origins[1] &+ so); r2 = src + (origins[2] &+ so); r3 = src + (origins[3] &+ so)
            } else {
                r0 = row(src, sg, oy[0], ox[0]); r1 = row(src, sg, oy[1], ox[1])
                r2 = row(src, sg, oy[2], ox[2]); r3 = row(src, sg, oy[3], ox[3])
            }
            let n = sg[3] &- sg[2]
            var left = n &>> 1
            while left > 0 {
                let m = Swift.min(left, chunk &- pending)
                for j in 0..<m {
                    let o = j &* 2
                    step(Self.pairBroadcast(r0 + o), Self.pairBroadcast(r1 + o), Self.pairBroadcast(r2 + o), Self.pairBroadcast(r3 + o),
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
    public func accumulate1(_ src: UnsafePointer<Int16>, _ t: Int, _ g: Int,
                            _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        let geo = geometry
        var c0 = SIMD8<Int32>(), d0 = SIMD8<Int32>()
        var s0 = SIMD16<Int16>(), u0 = SIMD16<Int16>()
        let chunk = chunkRows
        var pending = 0
        var wp = UnsafeRawPointer(weights) + (tileWeightOffset[t] &+ g &* tilePairs[t] &* 32) &* 2
        let segs = geo.segments
        for s in geo.tileSegStart[t]..<geo.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0 = row(src, sg, oy, ox)
            let n = sg[3] &- sg[2]
            var left = n &>> 1
            while left > 0 {
                let m = Swift.min(left, chunk &- pending)
                for j in 0..<m {
                    let x = Self.pairBroadcast(r0 + j &* 2)
                    s0 &+= x &* wp.loadUnaligned(fromByteOffset: j &* 64, as: SIMD16<Int16>.self)
                    u0 &+= x &* wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: SIMD16<Int16>.self)
                }
                wp += m &* 64
                r0 += 2 &* m
                left &-= m
                pending &+= m
                if pending == chunk {
                    c0 &+= Self.widenPairs(s0); d0 &+= Self.widenPairs(u0); s0 = SIMD16<Int16>(); u0 = s0; pending = 0
                }
            }
            if n & 1 != 0 {
                let x = SIMD16<Int16>(repeating: r0[0])
                s0 &+= x &* wp.loadUnaligned(as: SIMD16<Int16>.self)
                u0 &+= x &* wp.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self)
                wp += 64
                pending &+= 1
                if pending == chunk {
                    c0 &+= Self.widenPairs(s0); d0 &+= Self.widenPairs(u0); s0 = SIMD16<Int16>(); u0 = s0; pending = 0
                }
            }
        }
        c0 &+= Self.widenPairs(s0); d0 &+= Self.widenPairs(u0)
        acc.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Int32>.self); acc.storeBytes(of: d0, toByteOffset: 32, as: SIMD8<Int32>.self)
    }
}
