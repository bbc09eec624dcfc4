// The u8 x i8 quad kernel's inner loop (DATAPATH.md section 12, "u8 x i8 kernel"; the set-up,
// its weight layout and flush schedule: U8QuadKernel, Sources/Kernels/Fast/FastCrossbarU8.swift),
// and the vector ADC: AVX2 only (`vpmaddubsw`, 32 MACs per instruction), so only the
// CrossbarBlocksAVX2 build compiles them.
//
// The layer's input codes are first copied to bytes (the scratch after the accumulators,
// followed by `inC + 8` zero bytes: the zero row of positions outside the map, and room for the
// over-read of a segment's last partial quad). A segment's rows are visited in steps of 4 rows:
// the 4 input bytes of a pixel are broadcast (`vpbroadcastd`) and multiplied with the step's two
// weight vectors of 8 outputs x 4 rows (zero weights for rows past the end of the segment, so
// the over-read bytes contribute 0). `vpmaddubsw` adds each pair of adjacent products into an
// Int16 lane: `|a*w + a'*w'| <= 2 * maxCode * maxAbsWeight <= 2^15 - 1` (set-up condition), so
// it never saturates. Int16 lanes add one such pair per step over a run of the flush schedule
// (no wrap); a flush (`vpmaddwd` with ones) adds the two pairs of each output into an Int32
// lane, a partial sum of the exact tile product (section 5).
#if RRAM_EDGE_AVX2
import _Builtin_intrinsics.intel
import CrossbarLayout
import FixedPoint

struct QuadAccumulator: BlockAccumulator {
    let layout: BlockLayout
    let w: QuadWeights

    /// Copies the layer input (`inShape.count` Int16 codes, each in 0...255) to bytes at
    /// `scratch + inputOffset`, followed by `inShape.c + 8` zero bytes. Returns the bytes.
    @inline(__always)
    func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<UInt8> {
        let d = (scratch + QuadWeights.inputOffset).assumingMemoryBound(to: UInt8.self)
        let n = layout.inCount
        var i = 0
        // (SIMD32<Int16> -> SIMD32<UInt8> conversion compiles to a very slow sequence; packus
        // of codes 0...255 is exact, and the permute restores the order of the two 128-bit lanes)
        while i &+ 32 <= n {
            let a = UnsafeRawPointer(src + i).loadUnaligned(as: __m256i.self)
            let b = UnsafeRawPointer(src + (i &+ 16)).loadUnaligned(as: __m256i.self)
            let p = _mm256_packus_epi16(a, b)
            UnsafeMutableRawPointer(d + i).storeBytes(of: SIMD4<Int64>(p[0], p[2], p[1], p[3]), as: SIMD4<Int64>.self)
            i &+= 32
        }
        while i < n { d[i] = UInt8(truncatingIfNeeded: src[i]); i &+= 1 }
        for j in 0..<(layout.inC &+ 8) { d[n &+ j] = 0 }
        return UnsafePointer(d)
    }

    /// The u8 input row of segment `sg` for output pixel (oy, ox) (the zero tail outside the map).
    @inline(__always)
    func row(_ src: UnsafePointer<UInt8>, _ sg: UnsafePointer<Int>, _ oy: Int, _ ox: Int) -> UnsafePointer<UInt8> {
        src + (segmentStart(layout, sg, oy, ox) ?? layout.inCount)
    }

    @inline(__always)
    static func quadBroadcast(_ p: UnsafePointer<UInt8>) -> __m256i {
        unsafeBitCast(SIMD8<Int32>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self)), to: __m256i.self)
    }

    /// `a` (u8) x `w` (i8), adjacent products summed into Int16 lanes, added to `acc`.
    @inline(__always)
    static func madd(_ acc: inout SIMD16<Int16>, _ a: __m256i, _ w: __m256i) {
        acc &+= unsafeBitCast(_mm256_maddubs_epi16(a, w), to: SIMD16<Int16>.self)
    }

    /// Int16 lanes (2o, 2o+1) of output o: their sum as Int32 lane o.
    @inline(__always)
    static func widenQuad(_ v: SIMD16<Int16>) -> SIMD8<Int32> {
        unsafeBitCast(_mm256_madd_epi16(unsafeBitCast(v, to: __m256i.self), unsafeBitCast(SIMD16<Int16>(repeating: 1), to: __m256i.self)),
                      to: SIMD8<Int32>.self)
    }

    /// Tile `t`, output group `g`, 4 output pixels: exact tile accumulators into `acc`
    /// (`[pixel][16]` Int32).
    @inline(__always)
    func accumulate4(_ src: UnsafePointer<UInt8>, _ t: Int, _ g: Int,
                            _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer) {
        let geo = layout
        var c0 = SIMD8<Int32>(), d0 = c0, c1 = c0, d1 = c0, c2 = c0, d2 = c0, c3 = c0, d3 = c0
        var s0 = SIMD16<Int16>(), u0 = s0, s1 = s0, u1 = s0, s2 = s0, u2 = s0, s3 = s0, u3 = s0
        var fl = UnsafePointer(w.flush + w.flushStart[t &* geo.groups &+ g])
        var untilFlush = fl[0]
        var wp = w.weights + (w.tileWeightOffset[t] &+ g &* w.tileQuads[t] &* 64)
        let segs = geo.segments
        @inline(__always) func widen() {
            c0 &+= Self.widenQuad(s0); d0 &+= Self.widenQuad(u0); c1 &+= Self.widenQuad(s1); d1 &+= Self.widenQuad(u1)
            c2 &+= Self.widenQuad(s2); d2 &+= Self.widenQuad(u2); c3 &+= Self.widenQuad(s3); d3 &+= Self.widenQuad(u3)
            s0 = SIMD16<Int16>(); u0 = s0; s1 = s0; u1 = s0; s2 = s0; u2 = s0; s3 = s0; u3 = s0
        }
        @inline(__always) func store() {
            acc.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Int32>.self); acc.storeBytes(of: d0, toByteOffset: 32, as: SIMD8<Int32>.self)
            acc.storeBytes(of: c1, toByteOffset: 64, as: SIMD8<Int32>.self); acc.storeBytes(of: d1, toByteOffset: 96, as: SIMD8<Int32>.self)
            acc.storeBytes(of: c2, toByteOffset: 128, as: SIMD8<Int32>.self); acc.storeBytes(of: d2, toByteOffset: 160, as: SIMD8<Int32>.self)
            acc.storeBytes(of: c3, toByteOffset: 192, as: SIMD8<Int32>.self); acc.storeBytes(of: d3, toByteOffset: 224, as: SIMD8<Int32>.self)
        }
        if let origins = windowOrigins(geo, oy, ox) {
            // all 4 windows inside the map: one flat loop per run of the flush schedule, each
            // step's input at `origin + quadStepOffset[step]` (no per-segment bookkeeping)
            let b0 = src + origins[0], b1 = src + origins[1], b2 = src + origins[2], b3 = src + origins[3]
            var so = w.stepOffset + w.stepStart[t]
            var left = w.tileQuads[t]
            while left > 0 {
                let m = fl[0]
                for j in 0..<m {
                    let off = Int(so[j])
                    let w0 = wp.loadUnaligned(fromByteOffset: j &* 64, as: __m256i.self)
                    let w1 = wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: __m256i.self)
                    let x0 = Self.quadBroadcast(b0 + off), x1 = Self.quadBroadcast(b1 + off)
                    Self.madd(&s0, x0, w0); Self.madd(&u0, x0, w1)
                    Self.madd(&s1, x1, w0); Self.madd(&u1, x1, w1)
                    let x2 = Self.quadBroadcast(b2 + off), x3 = Self.quadBroadcast(b3 + off)
                    Self.madd(&s2, x2, w0); Self.madd(&u2, x2, w1)
                    Self.madd(&s3, x3, w0); Self.madd(&u3, x3, w1)
                }
                so += m; wp += m &* 64; left &-= m
                widen(); fl += 1
            }
            store()
            return
        }
        for s in geo.tileSegStart[t]..<geo.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0 = row(src, sg, oy[0], ox[0]), r1 = row(src, sg, oy[1], ox[1])
            var r2 = row(src, sg, oy[2], ox[2]), r3 = row(src, sg, oy[3], ox[3])
            var left = (sg[3] &- sg[2] &+ 3) &>> 2
            while left > 0 {
                let m = Swift.min(left, untilFlush)
                for j in 0..<m {
                    let w0 = wp.loadUnaligned(fromByteOffset: j &* 64, as: __m256i.self)
                    let w1 = wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: __m256i.self)
                    let o = j &* 4
                    let x0 = Self.quadBroadcast(r0 + o), x1 = Self.quadBroadcast(r1 + o)
                    Self.madd(&s0, x0, w0); Self.madd(&u0, x0, w1)
                    Self.madd(&s1, x1, w0); Self.madd(&u1, x1, w1)
                    let x2 = Self.quadBroadcast(r2 + o), x3 = Self.quadBroadcast(r3 + o)
                    Self.madd(&s2, x2, w0); Self.madd(&u2, x2, w1)
                    Self.madd(&s3, x3, w0); Self.madd(&u3, x3, w1)
                }
                wp += m &* 64
                r0 += 4 &* m; r1 += 4 &* m; r2 += 4 &* m; r3 += 4 &* m
                left &-= m
                untilFlush &-= m
                if untilFlush == 0 { widen(); fl += 1; untilFlush = fl[0] }
            }
        }
        widen()
        store()
    }

    /// As `accumulate4` for one output pixel (`acc`: 16 Int32).
    @inline(__always)
    func accumulate1(_ src: UnsafePointer<UInt8>, _ t: Int, _ g: Int,
                            _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        let geo = layout
        var c0 = SIMD8<Int32>(), d0 = c0
        var s0 = SIMD16<Int16>(), u0 = s0, s1 = s0, u1 = s0   // two independent chains
        var fl = UnsafePointer(w.flush + w.flushStart[t &* geo.groups &+ g])
        var untilFlush = fl[0]
        var wp = w.weights + (w.tileWeightOffset[t] &+ g &* w.tileQuads[t] &* 64)
        let segs = geo.segments
        @inline(__always) func widen() {
            c0 &+= Self.widenQuad(s0) &+ Self.widenQuad(s1); d0 &+= Self.widenQuad(u0) &+ Self.widenQuad(u1)
            s0 = SIMD16<Int16>(); u0 = s0; s1 = s0; u1 = s0
        }
        for s in geo.tileSegStart[t]..<geo.tileSegStart[t &+ 1] {
            let sg = UnsafePointer(segs + 5 &* s)
            var r0 = row(src, sg, oy, ox)
            var left = (sg[3] &- sg[2] &+ 3) &>> 2
            while left > 0 {
                // s0/u0 take even steps, s1/u1 odd steps: each lane adds a subset of the run's
                // pairs, within the run's bound
                let m = Swift.min(left, untilFlush)
                var j = 0
                while j &+ 2 <= m {
                    let x = Self.quadBroadcast(r0 + j &* 4), y = Self.quadBroadcast(r0 + (j &* 4 &+ 4))
                    Self.madd(&s0, x, wp.loadUnaligned(fromByteOffset: j &* 64, as: __m256i.self))
                    Self.madd(&u0, x, wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: __m256i.self))
                    Self.madd(&s1, y, wp.loadUnaligned(fromByteOffset: j &* 64 &+ 64, as: __m256i.self))
                    Self.madd(&u1, y, wp.loadUnaligned(fromByteOffset: j &* 64 &+ 96, as: __m256i.self))
                    j &+= 2
                }
                if j < m {
                    let x = Self.quadBroadcast(r0 + j &* 4)
                    Self.madd(&s0, x, wp.loadUnaligned(fromByteOffset: j &* 64, as: __m256i.self))
                    Self.madd(&u0, x, wp.loadUnaligned(fromByteOffset: j &* 64 &+ 32, as: __m256i.self))
                }
                wp += m &* 64
                r0 += 4 &* m
                left &-= m
                untilFlush &-= m
                if untilFlush == 0 { widen(); fl += 1; untilFlush = fl[0] }
            }
        }
        widen()
        acc.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Int32>.self); acc.storeBytes(of: d0, toByteOffset: 32, as: SIMD8<Int32>.self)
    }
}

/// ADC codes (DATAPATH.md section 6) of 4 accumulators of tile `t` in Double lanes
/// (`CrossbarGeometry.vectorADC`): `v = acc * multiplier * 2^-s` is exact (`|acc * multiplier| < 2^52`,
/// scaled by a power of two), the rounding rule is a `vroundpd` of `v` (floor, toward zero,
/// nearest-even under the default MXCSR mode) or of `v + 1/2` / `v + copysign(1/2, v)`
/// (halfUp / halfAwayFromZero; exact because `s <= 52`: the sum is
/// `(acc * multiplier + 2^(s-1)) / 2^s` with a numerator below `2^53`), then the saturation
/// (integers, exact in Double) and a conversion (`vcvttpd2dq`) of an integral value.
@inline(__always)
func adcVector4(_ a: SIMD4<Int32>, _ scale: SIMD4<Double>, _ rule: RoundingRule,
                       _ lo: SIMD4<Double>, _ hi: SIMD4<Double>) -> SIMD4<Int32> {
    let v = _mm256_mul_pd(_mm256_cvtepi32_pd(unsafeBitCast(a, to: __m128i.self)), scale)
    var r: SIMD4<Double>
    switch rule {
    case .floor: r = v.rounded(.down)
    case .towardZero: r = v.rounded(.towardZero)
    case .halfUp: r = (v + 0.5).rounded(.down)
    case .halfAwayFromZero:
        let half = _mm256_or_pd(SIMD4<Double>(repeating: 0.5), _mm256_and_pd(v, SIMD4<Double>(repeating: -0.0)))
        r = (v + half).rounded(.towardZero)
    case .halfToEven: r = v.rounded(.toNearestOrEven)
    }
    r = _mm256_min_pd(_mm256_max_pd(r, lo), hi)
    return unsafeBitCast(_mm256_cvttpd_epi32(r), to: SIMD4<Int32>.self)
}

/// ADC codes of the 16 accumulators at `a` (tile `t`).
@inline(__always)
func adcVector16(_ a: UnsafePointer<Int32>, _ geo: BlockLayout, _ t: Int) -> SIMD16<Int32> {
    let scale = SIMD4<Double>(repeating: geo.adcScale[t]), rule = geo.adcRule[t]
    let lo = SIMD4<Double>(repeating: Double(geo.adcLo[t])), hi = SIMD4<Double>(repeating: Double(geo.adcHi[t]))
    let p = UnsafeRawPointer(a)
    let c0 = adcVector4(p.loadUnaligned(as: SIMD4<Int32>.self), scale, rule, lo, hi)
    let c1 = adcVector4(p.loadUnaligned(fromByteOffset: 16, as: SIMD4<Int32>.self), scale, rule, lo, hi)
    let c2 = adcVector4(p.loadUnaligned(fromByteOffset: 32, as: SIMD4<Int32>.self), scale, rule, lo, hi)
    let c3 = adcVector4(p.loadUnaligned(fromByteOffset: 48, as: SIMD4<Int32>.self), scale, rule, lo, hi)
    return SIMD16<Int32>(lowHalf: SIMD8<Int32>(lowHalf: c0, highHalf: c1), highHalf: SIMD8<Int32>(lowHalf: c2, highHalf: c3))
}
#endif
