// u8 x i8 crossbar micro-kernel (DATAPATH.md section 12, "u8 x i8 kernel"): AVX2 `vpmaddubsw`
// (32 MACs per instruction), compiled only in host-tuned builds that define RRAM_EDGE_AVX2
// (`-Xswiftc -target-cpu -Xswiftc native -Xswiftc -DRRAM_EDGE_AVX2`; the compiler cannot lower
// these intrinsics without AVX2, so the default, portable build never sees them and runs the
// Int16 pair kernel of FastCrossbarBlocked.swift: `U8QuadKernel.init` returns nil).
//
// The layer's input codes are first copied to bytes (the scratch after the accumulators,
// followed by `inShape.c + 8` zero bytes: the zero row of positions outside the map, and room
// for the over-read of a segment's last partial quad). A segment's rows are visited in steps of
// 4 rows: the 4 input bytes of a pixel are broadcast (`vpbroadcastd`) and multiplied with the
// step's two weight vectors of 8 outputs x 4 rows (Int8, `[16 outputs][4 rows]`; zero weights
// for rows past the end of the segment, so the over-read bytes contribute 0). `vpmaddubsw` adds
// each pair of adjacent products into an Int16 lane: `|a*w + a'*w'| <= 2 * maxCode * maxAbsWeight
// <= 2^15 - 1` (plan condition), so it never saturates. Int16 lanes add one such pair per step
// over a run of the flush schedule (`quadFlush`: no wrap); a flush (`vpmaddwd` with ones) adds the two pairs of
// each output into an Int32 lane, a partial sum of the exact tile product (section 5).

import FixedPoint

extension Fast {
    #if arch(x86_64) && RRAM_EDGE_AVX2
    /// Whether this build has the u8 x i8 kernel.
    public static let hasU8Kernel = true
    /// Whether this build has the vector (Double) ADC.
    public static let hasVectorADC = true
    #else
    public static let hasU8Kernel = false
    public static let hasVectorADC = false
    #endif
}

#if arch(x86_64) && RRAM_EDGE_AVX2
import _Builtin_intrinsics.intel
#endif

/// The u8 x i8 quad kernel (builds with `Fast.hasU8Kernel`).
public final class U8QuadKernel: BlockKernel, @unchecked Sendable {
    public let geometry: CrossbarGeometry
    public var name: String { "u8 quads" }
    /// Byte offset in the scratch of the layer's input as u8 (after the accumulators); it is
    /// followed by a zero tail of `inShape.c + 8` bytes (the zero row, and the over-read of a
    /// last partial quad).
    public static let inputOffset = 256
    public let scratchCount: Int
    /// Per tile: quad steps (4 rows of a segment each, a last partial quad padded with zero
    /// weights), and the byte offset of the tile's weights in `weights`.
    public let tileQuads: UnsafeMutablePointer<Int>
    @usableFromInline let tileWeightOffset: UnsafeMutablePointer<Int>
    /// Int8 `[tile][group][quad step][16 outputs][4 rows]` (64 bytes per step and group; 0 for
    /// outputs >= cout and rows past the end of a segment).
    @usableFromInline let weights: UnsafeMutableRawPointer
    /// Flush schedule, per tile and group (`flushStart[t * groups + g]` indexes `flush`): lengths
    /// of the runs of quad steps between two flushes of the Int16 lanes (they add up to the
    /// tile's quad steps), then a sentinel. With codes in `0...maxCode`, an Int16 lane's sum over
    /// a run lies in `[maxCode * (sum of its negative weights), maxCode * (sum of its positive
    /// weights)]`; a run ends before the step that would take that interval out of
    /// `[-2^15, 2^15 - 1]`, so the lane's wrapping sum (`vpaddw`) is exact.
    public let flush: UnsafeMutablePointer<Int>
    public let flushStart: UnsafeMutablePointer<Int>
    /// Per quad step of each tile (from `stepStart[t]`), the byte offset of its 4 input codes
    /// from the window's top-left corner (`segmentOffset + 4q`): windows inside the map.
    @usableFromInline let stepOffset: UnsafeMutablePointer<Int32>
    @usableFromInline let stepStart: UnsafeMutablePointer<Int>
    /// The flush sentinel (longer than any run).
    public static let sentinel = Int.max / 4

    /// nil unless this build has the kernel, codes fit a byte and a pair of products cannot
    /// saturate Int16 (`2 * maxCode * maxAbsWeight <= 2^15 - 1`).
    public init?(_ geo: CrossbarGeometry, _ p: CrossbarParams) {
        guard Fast.hasU8Kernel, geo.maxCode <= 255, 2 * Int(geo.maxCode) * geo.maxAbsWeight <= Int(Int16.max) else { return nil }
        geometry = geo
        let tiles = geo.tileCount, groups = geo.groups
        scratchCount = Swift.max(128, (U8QuadKernel.inputOffset + geo.inShape.count + geo.inShape.c + 8 + 1) / 2)
        let packed = geo.packedSteps(rows: 4, p)
        tileQuads = .allocate(capacity: tiles)
        tileWeightOffset = .allocate(capacity: tiles)
        for t in 0..<tiles { tileWeightOffset[t] = packed.offsets[t]; tileQuads[t] = packed.steps[t] }
        let bytes = Swift.max(packed.weights.count, 64)
        weights = .allocate(byteCount: bytes, alignment: 32)
        let qw = weights.bindMemory(to: Int8.self, capacity: bytes)
        qw.initialize(repeating: 0, count: bytes)
        for (i, v) in packed.weights.enumerated() { qw[i] = v }
        // greedy runs of quad steps per tile and group
        var runs: [Int] = [], runStart: [Int] = []
        let mc = Int(geo.maxCode)
        for t in 0..<tiles {
            for g in 0..<groups {
                runStart.append(runs.count)
                // per Int16 lane, the largest and smallest sum of the run (codes in 0...maxCode)
                var hiSum = [Int](repeating: 0, count: 32), loSum = hiSum, run = 0
                for j in 0..<tileQuads[t] {
                    let base = tileWeightOffset[t] + (g * tileQuads[t] + j) * 64
                    var hi = [Int](repeating: 0, count: 32), lo = hi
                    for l in 0..<32 {
                        for k in 0..<2 { let w = Int(qw[base + 2 * l + k]); if w > 0 { hi[l] += mc * w } else { lo[l] += mc * w } }
                    }
                    if (0..<32).contains(where: { hiSum[$0] + hi[$0] > Int(Int16.max) || loSum[$0] + lo[$0] < Int(Int16.min) }) {
                        runs.append(run); run = 0
                        for l in 0..<32 { hiSum[l] = 0; loSum[l] = 0 }
                    }
                    for l in 0..<32 { hiSum[l] += hi[l]; loSum[l] += lo[l] }
                    run += 1
                }
                if run > 0 { runs.append(run) }
                runs.append(U8QuadKernel.sentinel)
            }
        }
        flush = .allocate(capacity: runs.count)
        for (i, v) in runs.enumerated() { flush[i] = v }
        flushStart = .allocate(capacity: runStart.count)
        for (i, v) in runStart.enumerated() { flushStart[i] = v }
        var offsets: [Int32] = []
        stepStart = .allocate(capacity: tiles)
        for t in 0..<tiles {
            stepStart[t] = offsets.count
            for s in geo.tileSegStart[t]..<geo.tileSegStart[t + 1] {
                let sg = geo.segment(s)
                for q in 0..<((sg.cHi - sg.cLo + 3) / 4) { offsets.append(Int32(geo.segmentOffset[s] + 4 * q)) }
            }
        }
        stepOffset = .allocate(capacity: Swift.max(1, offsets.count))
        for (i, v) in offsets.enumerated() { stepOffset[i] = v }
    }

    deinit {
        tileQuads.deallocate(); tileWeightOffset.deallocate(); weights.deallocate()
        flush.deallocate(); flushStart.deallocate(); stepOffset.deallocate(); stepStart.deallocate()
    }

    @inlinable
    public func sums(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, scratch: UnsafeMutablePointer<Int16>,
                     tileOut: UnsafeMutablePointer<Int32>?) {
        Fast.blockSums(self, src: src, dst: dst, scratch: scratch, tileOut: tileOut)
    }

    @inlinable
    public func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>) {
        Fast.blockActivation(self, src: src, dst: dst, scratch: scratch)
    }

    #if arch(x86_64) && RRAM_EDGE_AVX2
    /// Copies the layer input (`inShape.count` Int16 codes, each in 0...255) to bytes at
    /// `scratch + inputOffset`, followed by `inShape.c + 8` zero bytes. Returns the bytes.
    @inlinable @inline(__always)
    public func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<UInt8> {
        let d = (scratch + U8QuadKernel.inputOffset).assumingMemoryBound(to: UInt8.self)
        let n = geometry.inShape.count
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
        for j in 0..<(geometry.inShape.c &+ 8) { d[n &+ j] = 0 }
        return UnsafePointer(d)
    }

    /// The u8 input row of segment `sg` for output pixel (oy, ox) (the zero tail outside the map).
    @inlinable @inline(__always)
    func row(_ src: UnsafePointer<UInt8>, _ sg: UnsafePointer<Int>, _ oy: Int, _ ox: Int) -> UnsafePointer<UInt8> {
        src + (Fast.segmentStart(geometry, sg, oy, ox) ?? geometry.inShape.count)
    }

    @inlinable @inline(__always)
    static func quadBroadcast(_ p: UnsafePointer<UInt8>) -> __m256i {
        unsafeBitCast(SIMD8<Int32>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self)), to: __m256i.self)
    }

    /// `a` (u8) x `w` (i8), adjacent products summed into Int16 lanes, added to `acc`.
    @inlinable @inline(__always)
    static func madd(_ acc: inout SIMD16<Int16>, _ a: __m256i, _ w: __m256i) {
        acc &+= unsafeBitCast(_mm256_maddubs_epi16(a, w), to: SIMD16<Int16>.self)
    }

    /// Int16 lanes (2o, 2o+1) of output o: their sum as Int32 lane o.
    @inlinable @inline(__always)
    static func widenQuad(_ v: SIMD16<Int16>) -> SIMD8<Int32> {
        unsafeBitCast(_mm256_madd_epi16(unsafeBitCast(v, to: __m256i.self), unsafeBitCast(SIMD16<Int16>(repeating: 1), to: __m256i.self)),
                      to: SIMD8<Int32>.self)
    }

    /// Tile `t`, output group `g`, 4 output pixels: exact tile accumulators into `acc`
    /// (`[pixel][16]` Int32).
    @inlinable @inline(__always)
    public func accumulate4(_ src: UnsafePointer<UInt8>, _ t: Int, _ g: Int,
                            _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer) {
        let geo = geometry
        var c0 = SIMD8<Int32>(), d0 = c0, c1 = c0, d1 = c0, c2 = c0, d2 = c0, c3 = c0, d3 = c0
        var s0 = SIMD16<Int16>(), u0 = s0, s1 = s0, u1 = s0, s2 = s0, u2 = s0, s3 = s0, u3 = s0
        var fl = UnsafePointer(flush + flushStart[t &* geo.groups &+ g])
        var untilFlush = fl[0]
        var wp = UnsafeRawPointer(weights) + (tileWeightOffset[t] &+ g &* tileQuads[t] &* 64)
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
        if let origins = Fast.windowOrigins(geo, oy, ox) {
            // all 4 windows inside the map: one flat loop per run of the flush schedule, each
            // step's input at `origin + quadStepOffset[step]` (no per-segment bookkeeping)
            let b0 = src + origins[0], b1 = src + origins[1], b2 = src + origins[2], b3 = src + origins[3]
            var so = UnsafePointer(stepOffset + stepStart[t])
            var left = tileQuads[t]
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
    @inlinable @inline(__always)
    public func accumulate1(_ src: UnsafePointer<UInt8>, _ t: Int, _ g: Int,
                            _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        let geo = geometry
        var c0 = SIMD8<Int32>(), d0 = c0
        var s0 = SIMD16<Int16>(), u0 = s0, s1 = s0, u1 = s0   // two independent chains
        var fl = UnsafePointer(flush + flushStart[t &* geo.groups &+ g])
        var untilFlush = fl[0]
        var wp = UnsafeRawPointer(weights) + (tileWeightOffset[t] &+ g &* tileQuads[t] &* 64)
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
    #else
    public func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<UInt8> {
        preconditionFailure("this build has no u8 x i8 kernel")
    }
    public func accumulate4(_ src: UnsafePointer<UInt8>, _ t: Int, _ g: Int, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>,
                            _ acc: UnsafeMutableRawPointer) {
        preconditionFailure("this build has no u8 x i8 kernel")
    }
    public func accumulate1(_ src: UnsafePointer<UInt8>, _ t: Int, _ g: Int, _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer) {
        preconditionFailure("this build has no u8 x i8 kernel")
    }
    #endif
}

#if arch(x86_64) && RRAM_EDGE_AVX2
extension Fast {
    /// ADC codes (DATAPATH.md section 6) of 4 accumulators of tile `t` in Double lanes
    /// (`CrossbarGeometry.vectorADC`): `v = acc * multiplier * 2^-s` is exact (`|acc * multiplier| < 2^52`,
    /// scaled by a power of two), the rounding rule is a `vroundpd` of `v` (floor, toward zero,
    /// nearest-even under the default MXCSR mode) or of `v + 1/2` / `v + copysign(1/2, v)`
    /// (halfUp / halfAwayFromZero; exact because `s <= 52`: the sum is
    /// `(acc * multiplier + 2^(s-1)) / 2^s` with a numerator below `2^53`), then the saturation
    /// (integers, exact in Double) and a conversion (`vcvttpd2dq`) of an integral value.
    @inlinable @inline(__always)
    static func adcVector4(_ a: SIMD4<Int32>, _ scale: SIMD4<Double>, _ rule: RoundingRule,
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
    @inlinable @inline(__always)
    static func adcVector16(_ a: UnsafePointer<Int32>, _ geo: CrossbarGeometry, _ t: Int) -> SIMD16<Int32> {
        let scale = SIMD4<Double>(repeating: geo.adcScale[t]), rule = geo.adcRule[t]
        let lo = SIMD4<Double>(repeating: Double(geo.adcLo[t])), hi = SIMD4<Double>(repeating: Double(geo.adcHi[t]))
        let p = UnsafeRawPointer(a)
        let c0 = adcVector4(p.loadUnaligned(as: SIMD4<Int32>.self), scale, rule, lo, hi)
        let c1 = adcVector4(p.loadUnaligned(fromByteOffset: 16, as: SIMD4<Int32>.self), scale, rule, lo, hi)
        let c2 = adcVector4(p.loadUnaligned(fromByteOffset: 32, as: SIMD4<Int32>.self), scale, rule, lo, hi)
        let c3 = adcVector4(p.loadUnaligned(fromByteOffset: 48, as: SIMD4<Int32>.self), scale, rule, lo, hi)
        return SIMD16<Int32>(lowHalf: SIMD8<Int32>(lowHalf: c0, highHalf: c1), highHalf: SIMD8<Int32>(lowHalf: c2, highHalf: c3))
    }
}
#endif
