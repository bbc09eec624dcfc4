// The Int16 pair kernel's inner loop (DATAPATH.md section 12, "Crossbar"; the set-up and its
// weight layout: Int16PairKernel, Sources/Kernels/Fast/FastCrossbarBlocked.swift). Every build,
// every layer.
//
// A tile's rows are visited segment by segment in steps of two rows: the input pair
// (a[r], a[r+1]) is contiguous in the HWC input and is read as one Int32 and broadcast; the
// step's weights are two vectors of 8 outputs x 2 rows. An odd last row of a segment is its own
// step, (a, a) against (w, 0). Positions outside the map read a zero row. The products are exact
// in Int16 lanes (`|a * w| <= maxCode * maxAbsWeight < 2^15`) and each lane adds one product
// per step for at most `chunkRows` steps, so it never wraps; then the two row parities of each
// output are added into an Int32 lane.
import CrossbarLayout

struct PairAccumulator: BlockAccumulator {
    let layout: BlockLayout
    let w: PairWeights

    @inline(__always)
    func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<Int16> { src }

    /// The input row of segment `sg` for output pixel (oy, ox) (the zero row outside the map).
    @inline(__always)
    func row(_ src: UnsafePointer<Int16>, _ sg: UnsafePointer<Int>, _ oy: Int, _ ox: Int) -> UnsafePointer<Int16> {
        if let start = segmentStart(layout, sg, oy, ox) { return src + start }
        return layout.zeroRow
    }

    /// The input pair (a[r], a[r+1]) at `p` in every Int32 lane: Int16 lanes a, b, a, b, ...
    @inline(__always)
    static func pairBroadcast(_ p: UnsafePointer<Int16>) -> SIMD16<Int16> {
        unsafeBitCast(SIMD8<Int32>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self)), to: SIMD16<Int16>.self)
    }

    /// Int16 lanes (2i, 2i+1) hold the two row parities of output i: their sum as Int32 lane i.
    @inline(__always)
    static func widenPairs(_ v: SIMD16<Int16>) -> SIMD8<Int32> {
        let x = unsafeBitCast(v, to: SIMD8<Int32>.self)
        return ((x &<< 16) &>> 16) &+ (x &>> 16)
    }

    /// Tile `t`, output group `g`, 4 output pixels: the exact tile accumulators, summed in
    /// `acc` as `[pixel][16]` Int32 (zeroed first). Per step one row pair (or a segment's last odd row, as
    /// the pair (a, a) with weights (w, 0)) is multiplied with 8 outputs x 2 rows per vector.
    @inline(__always)
    func accumulate4(_ src: UnsafePointer<Int16>, _ t: Int, _ g: Int,
                            _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer) {
        let geo = layout
        for k in 0..<8 { acc.storeBytes(of: SIMD8<Int32>(), toByteOffset: k &* 32, as: SIMD8<Int32>.self) }
        @inline(__always) func add(_ k: Int, _ v: SIMD16<Int16>) {
            acc.storeBytes(of: acc.loadUnaligned(fromByteOffset: k &* 32, as: SIMD8<Int32>.self) &+ Self.widenPairs(v), toByteOffset: k &* 32, as: SIMD8<Int32>.self)
        }
        var s0 = SIMD16<Int16>(), u0 = SIMD16<Int16>(), s1 = SIMD16<Int16>(), u1 = SIMD16<Int16>()
        var s2 = SIMD16<Int16>(), u2 = SIMD16<Int16>(), s3 = SIMD16<Int16>(), u3 = SIMD16<Int16>()
        let chunk = w.chunkRows
        var pending = 0
        var wp = w.weights + (w.tileWeightOffset[t] &+ g &* w.tilePairs[t] &* 32) &* 2
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
        let origins = windowOrigins(geo, oy, ox)
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
    @inline(__always)
    func accumulate1(_ src: UnsafePointer<Int16>, _ t: Int, _ g: Int,
                            _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        let geo = layout
        var c0 = SIMD8<Int32>(), d0 = SIMD8<Int32>()
        var s0 = SIMD16<Int16>(), u0 = SIMD16<Int16>()
        let chunk = w.chunkRows
        var pending = 0
        var wp = w.weights + (w.tileWeightOffset[t] &+ g &* w.tilePairs[t] &* 32) &* 2
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
