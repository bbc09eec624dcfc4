// The narrow fused kernel's loops (DATAPATH.md section 12, "Crossbar"; the set-up and its
// layout: NarrowFusedKernel, Sources/Kernels/Fast/FastCrossbarNarrow.swift). Every kernel set.
import CrossbarLayout

extension BlockLoops {
    /// The narrow fused kernel's activation codes: `patch` at least 4 x `nw.rows8` Int16
    /// (16-byte aligned); 64 outputs at a time when `nw.pad` is a multiple of 64.
    public static func narrowActivation(_ layout: BlockLayout, _ nw: NarrowWeights, src: UnsafePointer<Int16>,
                                        dst: UnsafeMutablePointer<Int16>, patch: UnsafeMutablePointer<Int16>) {
        if nw.pad % 64 == 0 { run64(layout, nw, src: src, dst: dst, patch: patch) } else { run16(layout, nw, src: src, dst: dst, patch: patch) }
    }

    /// The narrow fused variant: `|acc| <= B < 2^15 - 1`, so every partial sum of the tile product
    /// fits Int16 lanes (products `|a * w| <= B` too); 16 outputs per vector, blocks of 4 output
    /// pixels (each weight and threshold vector serves 4 pixels); the 4 patches are gathered
    /// first (`patch`: 4 x `tileRows8[0]` Int16).
    @inline(__always)
    static func run16(_ geo: BlockLayout, _ nw: NarrowWeights, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, patch: UnsafeMutablePointer<Int16>) {
        let ow = geo.outW, pixels = geo.outH &* ow
        let cout = geo.cout, pad = nw.pad
        let w = nw.weights, th = nw.thresholds
        let one = SIMD16<Int16>(repeating: 1), zero = SIMD16<Int16>()
        let rows = nw.rows, stride = nw.rows8
        let inH = geo.inH, inW = geo.inW, inC = geo.inC
        let rowOff = nw.rowOffset, groupLevels = nw.groupLevels
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
                    gather(src, geo, patch + i &* stride, y, q &- y &* ow)
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
    @inline(__always)
    static func run64(_ geo: BlockLayout, _ nw: NarrowWeights, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, patch: UnsafeMutablePointer<Int16>) {
        let ow = geo.outW, pixels = geo.outH &* ow
        let cout = geo.cout, pad = nw.pad
        let w = nw.weights, th = nw.thresholds
        let one = SIMD16<Int16>(repeating: 1), zero = SIMD16<Int16>()
        let rows = nw.rows, stride = nw.rows8
        let inH = geo.inH, inW = geo.inW, inC = geo.inC
        let rowOff = nw.rowOffset, groupLevels = nw.groupLevels
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
                gather(src, geo, patch, y0, x0)
                gather(src, geo, patch + stride, y1, x1)
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

    /// Gathers the patch of output pixel (oy, ox) in packed order. The row padding of each tile
    /// is left as is: its weights are 0, so whatever the scratch holds there contributes 0.
    @inline(__always)
    static func gather(_ src: UnsafePointer<Int16>, _ geo: BlockLayout, _ patch: UnsafeMutablePointer<Int16>,
                       _ oy: Int, _ ox: Int) {
        let inH = geo.inH, inW = geo.inW, inC = geo.inC
        let segs = geo.segments
        for s in 0..<geo.segmentCount {
            let sg = segs + 5 &* s
            let iy = oy &* geo.sh &- geo.ph &+ sg[0]
            let ix = ox &* geo.sw &- geo.pw &+ sg[1]
            let cLo = sg[2], n = sg[3] &- cLo
            let d = patch + sg[4]
            if iy >= 0 && iy < inH && ix >= 0 && ix < inW {
                let sp = src + ((iy &* inW &+ ix) &* inC &+ cLo)
                // explicit 8-lane copy + scalar tail (short runs: a libc memmove call costs more)
                var j = 0
                while j &+ 8 <= n {
                    UnsafeMutableRawPointer(d + j).storeBytes(of: UnsafeRawPointer(sp + j).loadUnaligned(as: SIMD8<Int16>.self),
                                                              as: SIMD8<Int16>.self)
                    j &+= 8
                }
                while j < n { d[j] = sp[j]; j &+= 1 }
            } else {
                for j in 0..<n { d[j] = 0 }
            }
        }
    }
}
