// The narrow fused crossbar kernel (DATAPATH.md section 12, "Crossbar"): a single-tile layer
// with its activation whose accumulator bound `B < 2^15 - 1` (e.g. a first conv layer), so the
// whole tile product and the threshold compares run in Int16 lanes, 16 outputs per vector.

import FixedPoint

/// The narrow fused kernel. Weights `[packed row][out (padded to 16)]` Int16, thresholds
/// `[level][out (padded to 16)]` Int16; windows inside the map are read in place.
public final class NarrowFusedKernel: CrossbarActivationKernel, @unchecked Sendable {
    public let geometry: CrossbarGeometry
    public var name: String { "narrow fused" }
    /// 4 gathered patches (blocks of 4 pixels), and at least the block kernels' 128.
    public var scratchCount: Int { Swift.max(4 * geometry.packedRows, 128) }
    /// Output padding: a multiple of 16 (one SIMD16<Int16> per 16 outputs); a multiple of 64
    /// runs `run64`.
    public let pad: Int
    @usableFromInline let weights: UnsafeMutableRawPointer
    @usableFromInline let thresholds: UnsafeMutableRawPointer
    /// Per packed row, the offset of its input code from the window's top-left corner
    /// `(oy*sh - ph, ox*sw - pw, 0)` in the HWC input (read directly for windows inside the map,
    /// without gathering a patch).
    @usableFromInline let rowOffset: UnsafeMutablePointer<Int>
    /// Per group of 16 outputs the largest of `geometry.channelLevels`, the levels the kernel
    /// compares (the group's later thresholds are above every accumulator it can produce).
    @usableFromInline let groupLevels: UnsafeMutablePointer<Int>

    /// nil unless the geometry is fused and its accumulator bound fits Int16 lanes.
    public init?(_ geo: CrossbarGeometry, _ p: CrossbarParams) {
        guard geo.fusedLevels > 0, geo.fusedBound + 1 <= Int64(Int16.max) else { return nil }
        geometry = geo
        pad = geo.groups * 16
        let rows = geo.tileRows[0], levels = geo.fusedLevels, cout = geo.cout
        groupLevels = .allocate(capacity: geo.groups)
        for g in 0..<geo.groups {
            groupLevels[g] = ((g * 16)..<Swift.min(cout, g * 16 + 16)).map { geo.channelLevels[$0] }.max() ?? 0
        }
        thresholds = .allocate(byteCount: levels * pad * 2, alignment: 16)
        let th = thresholds.bindMemory(to: Int16.self, capacity: levels * pad)
        th.initialize(repeating: Int16.max, count: levels * pad)
        for k in 0..<levels { for o in 0..<cout { th[k * pad + o] = Int16(geo.thresholds[k * pad + o]) } }
        weights = .allocate(byteCount: Swift.max(rows * pad * 2, 16), alignment: 16)
        let w = weights.bindMemory(to: Int16.self, capacity: Swift.max(rows * pad, 8))
        w.initialize(repeating: 0, count: Swift.max(rows * pad, 8))
        rowOffset = .allocate(capacity: Swift.max(1, rows))
        rowOffset.initialize(repeating: 0, count: Swift.max(1, rows))
        for s in 0..<geo.segmentCount {
            let sg = geo.segment(s)
            for c in sg.cLo..<sg.cHi {
                let r = (c * geo.kh + sg.y) * geo.kw + sg.x     // canonical row
                let pr = sg.offset + (c - sg.cLo)               // packed row (one tile, offset 0)
                for o in 0..<cout { w[pr * pad + o] = Int16(p.weights[o * geo.fanIn + r]) }
                rowOffset[pr] = (sg.y * geo.inShape.w + sg.x) * geo.inShape.c + c
            }
        }
    }

    deinit { weights.deallocate(); thresholds.deallocate(); rowOffset.deallocate(); groupLevels.deallocate() }

    @inlinable
    public func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>) {
        if pad % 64 == 0 { run64(src: src, dst: dst, patch: scratch) } else { run16(src: src, dst: dst, patch: scratch) }
    }

    /// The narrow fused variant: `|acc| <= B < 2^15 - 1`, so every partial sum of the tile product
    /// fits Int16 lanes (products `|a * w| <= B` too); 16 outputs per vector, blocks of 4 output
    /// pixels (each weight and threshold vector serves 4 pixels); the 4 patches are gathered
    /// first (`patch`: 4 x `tileRows8[0]` Int16).
    @inlinable
    func run16(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, patch: UnsafeMutablePointer<Int16>) {
        let geo = geometry
        let ow = geo.outShape.w, pixels = geo.outShape.h &* ow
        let cout = geo.cout, pad = self.pad
        let w = UnsafeRawPointer(weights), th = UnsafeRawPointer(thresholds)
        let one = SIMD16<Int16>(repeating: 1), zero = SIMD16<Int16>()
        let rows = geo.tileRows[0], stride = geo.tileRows8[0]
        let inH = geo.inShape.h, inW = geo.inShape.w, inC = geo.inShape.c
        let rowOff = rowOffset
        var pix = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            // the block's 4 windows (the tail repeats its last pixel; only nb are stored): read
            // in place when every window lies inside the map, else gathered into patches
            var b0 = UnsafePointer(patch), b1 = b0, b2 = b0, b3 = b0
            var step0 = 1, inside = true
            for i in 0..<4 {
                let q = pix &+ Swift.min(i, nb &- 1), y = q / ow, x = q &- y &* ow
                let iy = y &* geo.sh &- geo.ph, ix = x &* geo.sw &- geo.pw
                if iy < 0 || ix < 0 || iy &+ geo.kh > inH || ix &+ geo.kw > inW { inside = false }
            }
            if inside {
                step0 = 0
                for i in 0..<4 {
                    let q = pix &+ Swift.min(i, nb &- 1), y = q / ow, x = q &- y &* ow
                    let b = src + ((y &* geo.sh &- geo.ph) &* inW &+ (x &* geo.sw &- geo.pw)) &* inC
                    if i == 0 { b0 = b } else if i == 1 { b1 = b } else if i == 2 { b2 = b } else { b3 = b }
                }
            } else {
                for i in 0..<4 {
                    let q = pix &+ Swift.min(i, nb &- 1), y = q / ow
                    Fast.gather(src, geo, patch + i &* stride, y, q &- y &* ow)
                }
                b1 = b0 + stride; b2 = b0 + 2 &* stride; b3 = b0 + 3 &* stride
            }
            var o = 0
            while o < cout {
                var a0 = zero, a1 = zero, a2 = zero, a3 = zero
                var wp = w + o &* 2
                for j in 0..<rows {
                    // row j: in place at offset rowOff[j]; in a patch at offset j
                    let k = step0 == 0 ? rowOff[j] : j
                    let wv = wp.loadUnaligned(as: SIMD16<Int16>.self)
                    a0 &+= SIMD16<Int16>(repeating: b0[k]) &* wv
                    a1 &+= SIMD16<Int16>(repeating: b1[k]) &* wv
                    a2 &+= SIMD16<Int16>(repeating: b2[k]) &* wv
                    a3 &+= SIMD16<Int16>(repeating: b3[k]) &* wv
                    wp += pad &* 2
                }
                var n0 = zero, n1 = zero, n2 = zero, n3 = zero
                var tp = th + o &* 2
                for _ in 0..<groupLevels[o &>> 4] {
                    let tv = tp.loadUnaligned(as: SIMD16<Int16>.self)
                    n0 &+= zero.replacing(with: one, where: a0 .>= tv)
                    n1 &+= zero.replacing(with: one, where: a1 .>= tv)
                    n2 &+= zero.replacing(with: one, where: a2 .>= tv)
                    n3 &+= zero.replacing(with: one, where: a3 .>= tv)
                    tp += pad &* 2
                }
                let lanes = Swift.min(16, cout &- o)
                for i in 0..<nb {
                    let cnt = i == 0 ? n0 : (i == 1 ? n1 : (i == 2 ? n2 : n3))
                    let out = dst + ((pix &+ i) &* cout &+ o)
                    if lanes == 16 {
                        UnsafeMutableRawPointer(out).storeBytes(of: cnt, as: SIMD16<Int16>.self)
                    } else {
                        for l in 0..<lanes { out[l] = cnt[l] }
                    }
                }
                o &+= 16
            }
            pix &+= nb
        }
    }

    /// The narrow fused variant for 64 outputs at a time (`pad` a multiple of 64): blocks
    /// of 2 output pixels; per packed row each input code is broadcast once and serves 4 weight
    /// vectors (64 outputs), 8 Int16 accumulators; then each group of 16 outputs compares its
    /// reachable levels. The same Int16 products and sums as `run16` (exact
    /// for the same reason: `|acc| <= B < 2^15 - 1`).
    @inlinable
    func run64(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, patch: UnsafeMutablePointer<Int16>) {
        let geo = geometry
        let ow = geo.outShape.w, pixels = geo.outShape.h &* ow
        let cout = geo.cout, pad = self.pad
        let w = UnsafeRawPointer(weights), th = UnsafeRawPointer(thresholds)
        let one = SIMD16<Int16>(repeating: 1), zero = SIMD16<Int16>()
        let rows = geo.tileRows[0], stride = geo.tileRows8[0]
        let inH = geo.inShape.h, inW = geo.inShape.w, inC = geo.inShape.c
        let rowOff = rowOffset
        var pix = 0
        while pix < pixels {
            let nb = Swift.min(2, pixels &- pix)
            // the block's 2 windows (a tail repeats its pixel): in place when both lie inside
            // the map, else gathered into patches
            let q0 = pix, q1 = pix &+ nb &- 1
            let y0 = q0 / ow, x0 = q0 &- y0 &* ow, y1 = q1 / ow, x1 = q1 &- y1 &* ow
            let iy0 = y0 &* geo.sh &- geo.ph, ix0 = x0 &* geo.sw &- geo.pw
            let iy1 = y1 &* geo.sh &- geo.ph, ix1 = x1 &* geo.sw &- geo.pw
            var b0 = UnsafePointer(patch), b1 = b0
            var inPlace = false
            if iy0 >= 0 && ix0 >= 0 && iy0 &+ geo.kh <= inH && ix0 &+ geo.kw <= inW &&
               iy1 >= 0 && ix1 >= 0 && iy1 &+ geo.kh <= inH && ix1 &+ geo.kw <= inW {
                inPlace = true
                b0 = src + (iy0 &* inW &+ ix0) &* inC
                b1 = src + (iy1 &* inW &+ ix1) &* inC
            } else {
                Fast.gather(src, geo, patch, y0, x0)
                Fast.gather(src, geo, patch + stride, y1, x1)
                b1 = b0 + stride
            }
            var o = 0
            while o < pad {
                var a0 = zero, a1 = zero, a2 = zero, a3 = zero   // pixel 0, groups 0...3
                var c0 = zero, c1 = zero, c2 = zero, c3 = zero   // pixel 1
                var wp = w + o &* 2
                for j in 0..<rows {
                    let k = inPlace ? rowOff[j] : j
                    let x0 = SIMD16<Int16>(repeating: b0[k]), x1 = SIMD16<Int16>(repeating: b1[k])
                    let w0 = wp.loadUnaligned(as: SIMD16<Int16>.self), w1 = wp.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self)
                    let w2 = wp.loadUnaligned(fromByteOffset: 64, as: SIMD16<Int16>.self), w3 = wp.loadUnaligned(fromByteOffset: 96, as: SIMD16<Int16>.self)
                    a0 &+= x0 &* w0; a1 &+= x0 &* w1; a2 &+= x0 &* w2; a3 &+= x0 &* w3
                    c0 &+= x1 &* w0; c1 &+= x1 &* w1; c2 &+= x1 &* w2; c3 &+= x1 &* w3
                    wp += pad &* 2
                }
                @inline(__always) func levels(_ s0: SIMD16<Int16>, _ s1: SIMD16<Int16>, _ gi: Int) {
                    let og = o &+ gi &* 16
                    let lanes = Swift.min(16, cout &- og)
                    guard lanes > 0 else { return }
                    var n0 = zero, n1 = zero
                    var tp = th + og &* 2
                    for _ in 0..<groupLevels[og &>> 4] {
                        let tv = tp.loadUnaligned(as: SIMD16<Int16>.self)
                        n0 &+= zero.replacing(with: one, where: s0 .>= tv)
                        n1 &+= zero.replacing(with: one, where: s1 .>= tv)
                        tp += pad &* 2
                    }
                    let out0 = dst + (pix &* cout &+ og)
                    if lanes == 16 {
                        UnsafeMutableRawPointer(out0).storeBytes(of: n0, as: SIMD16<Int16>.self)
                        if nb == 2 { UnsafeMutableRawPointer(out0 + cout).storeBytes(of: n1, as: SIMD16<Int16>.self) }
                    } else {
                        for l in 0..<lanes { out0[l] = n0[l] }
                        if nb == 2 { for l in 0..<lanes { out0[cout &+ l] = n1[l] } }
                    }
                }
                levels(a0, c0, 0); levels(a1, c1, 1); levels(a2, c2, 2); levels(a3, c3, 3)
                o &+= 64
            }
            pix &+= nb
        }
    }
}
