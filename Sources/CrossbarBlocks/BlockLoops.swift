// The block loops of a crossbar layer (DATAPATH.md section 12, "Crossbar"): for a block of up
// to 4 output pixels, one tile and one group of 16 outputs, a block accumulator produces the
// exact tile accumulators (`[pixel][16]` Int32 in the scratch); `blockSums` then runs the ADC
// and the digital sum, `blockActivation` the fused thresholds. The two accumulators (the Int16
// pair kernel, PairAccumulator.swift; the u8 x i8 quad kernel, QuadAccumulator.swift) differ only
// in their weight layout and inner loop.
//
// This module is compiled once per instruction set: CrossbarBlocks (the architecture's baseline)
// and, on x86-64, CrossbarBlocksAVX2 (the same files through symbolic links, `-target-cpu
// haswell`, RRAM_EDGE_AVX2: the quad kernel and the vector ADC). The entry points below are not
// inlinable on purpose: each must run the code of the module it is called in. Kernels chooses
// the module per engine (Sources/Kernels/IntDispatch.swift); the builds agree bit for bit.
import CrossbarLayout
import FixedPoint

/// The entry points: one call per layer and image.
public enum BlockLoops {
    /// The Int16 pair kernel's digital sums: `src` HWC input codes (each `<= maxCode` of the
    /// set-up), `dst` HWC digital sums, `scratch` at least 128 Int16 (16-byte aligned),
    /// `tileOut` (optional) the ADC codes `[tile][pixel][cout]`.
    public static func pairSums(_ layout: BlockLayout, _ w: PairWeights, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>,
                                scratch: UnsafeMutableRawPointer, tileOut: UnsafeMutablePointer<Int32>?) {
        blockSums(PairAccumulator(layout: layout, w: w), src: src, dst: dst, scratch: scratch, tileOut: tileOut)
    }

    /// The Int16 pair kernel's fused activation codes (single tile, `layout.fusedLevels > 0`).
    public static func pairActivation(_ layout: BlockLayout, _ w: PairWeights, src: UnsafePointer<Int16>,
                                      dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutableRawPointer) {
        blockActivation(PairAccumulator(layout: layout, w: w), src: src, dst: dst, scratch: scratch)
    }

    #if RRAM_EDGE_AVX2
    /// The u8 x i8 quad kernel's digital sums (as `pairSums`; `scratch`: `quadScratchBytes`).
    public static func quadSums(_ layout: BlockLayout, _ w: QuadWeights, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>,
                                scratch: UnsafeMutableRawPointer, tileOut: UnsafeMutablePointer<Int32>?) {
        blockSums(QuadAccumulator(layout: layout, w: w), src: src, dst: dst, scratch: scratch, tileOut: tileOut)
    }

    /// The u8 x i8 quad kernel's fused activation codes.
    public static func quadActivation(_ layout: BlockLayout, _ w: QuadWeights, src: UnsafePointer<Int16>,
                                      dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutableRawPointer) {
        blockActivation(QuadAccumulator(layout: layout, w: w), src: src, dst: dst, scratch: scratch)
    }
    #endif

    /// Whether this build has the quad kernel and the vector ADC.
    #if RRAM_EDGE_AVX2
    public static let hasQuadKernel = true
    #else
    public static let hasQuadKernel = false
    #endif
}

/// One weight layout's inner loop (the outer loops are shared).
protocol BlockAccumulator {
    associatedtype Code
    var layout: BlockLayout { get }
    /// The layer input in this kernel's form (`src` itself, or a copy in `scratch` after the
    /// accumulators).
    func input(_ src: UnsafePointer<Int16>, _ scratch: UnsafeMutableRawPointer) -> UnsafePointer<Code>
    /// Tile `t`, output group `g`, 4 output pixels at (oy[i], ox[i]): the exact tile
    /// accumulators into `acc` (`[pixel][16]` Int32).
    func accumulate4(_ src: UnsafePointer<Code>, _ t: Int, _ g: Int, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ acc: UnsafeMutableRawPointer)
    /// As `accumulate4` for one output pixel (`acc`: 16 Int32).
    func accumulate1(_ src: UnsafePointer<Code>, _ t: Int, _ g: Int, _ oy: Int, _ ox: Int, _ acc: UnsafeMutableRawPointer)
}

extension BlockAccumulator {
    /// The accumulators of `count` (1...4) output pixels at (oy[i], ox[i]) into `acc`.
    @inline(__always)
    func accumulate(_ src: UnsafePointer<Code>, _ t: Int, _ g: Int, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>, _ count: Int,
                    _ acc: UnsafeMutableRawPointer) {
        if count == 4 {
            accumulate4(src, t, g, oy, ox, acc)
        } else {
            for i in 0..<count { accumulate1(src, t, g, oy[i], ox[i], acc + i &* 64) }
        }
    }
}

/// A block kernel's digital sums: per block of 4 output pixels, tile and group, the kernel's
/// accumulators, then the ADC and the digital sum.
@inline(__always)
func blockSums<K: BlockAccumulator>(_ k: K, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>,
                                    scratch: UnsafeMutableRawPointer, tileOut: UnsafeMutablePointer<Int32>?) {
    let geo = k.layout
    let pixels = geo.outH &* geo.outW
    let cout = geo.cout
    let acc = scratch
    let accI = acc.assumingMemoryBound(to: Int32.self)
    let input = k.input(src, acc)
    var pix = 0, py = 0, px = 0
    while pix < pixels {
        let nb = Swift.min(4, pixels &- pix)
        let (oy, ox) = blockCoords(py, px, nb, geo.outW)
        advance(&py, &px, nb, geo.outW)
        for t in 0..<geo.tileCount {
            let m = geo.adcMult[t], rc = geo.adcRound[t], lo = geo.adcLo[t], hi = geo.adcHi[t]
            for g in 0..<geo.groups {
                k.accumulate(input, t, g, oy, ox, nb, acc)
                let o0 = g &* 16, lanes = Swift.min(16, cout &- o0)
                #if RRAM_EDGE_AVX2
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

/// A block kernel's fused activation codes (single tile): per output the number of
/// thresholds `T_k[o] <= acc`.
@inline(__always)
func blockActivation<K: BlockAccumulator>(_ k: K, src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>,
                                          scratch: UnsafeMutableRawPointer) {
    let geo = k.layout
    precondition(geo.fusedLevels > 0 && geo.tileCount == 1, "the kernel is not fused")
    let pixels = geo.outH &* geo.outW
    let cout = geo.cout, levels = geo.fusedLevels, stride = geo.groups &* 16
    let acc = scratch
    let th = UnsafeRawPointer(geo.thresholds)
    let one = SIMD8<Int32>(repeating: 1)
    let input = k.input(src, acc)
    var pix = 0, py = 0, px = 0
    while pix < pixels {
        let nb = Swift.min(4, pixels &- pix)
        let (oy, ox) = blockCoords(py, px, nb, geo.outW)
        advance(&py, &px, nb, geo.outW)
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

/// Window origins of 4 output pixels: the offsets of their top-left corners
/// `((oy*sh - ph)*W + (ox*sw - pw))*C` in the HWC input, when all 4 windows lie inside the
/// map (then a segment's input run starts at `origin + segmentOffset[s]`); nil otherwise.
@inline(__always)
func windowOrigins(_ geo: BlockLayout, _ oy: SIMD4<Int>, _ ox: SIMD4<Int>) -> SIMD4<Int>? {
    let iy = oy &* geo.sh &- geo.ph, ix = ox &* geo.sw &- geo.pw
    let inside = iy.min() >= 0 && ix.min() >= 0 && iy.max() &+ geo.kh <= geo.inH && ix.max() &+ geo.kw <= geo.inW
    return inside ? (iy &* geo.inW &+ ix) &* geo.inC : nil
}

/// The offset of segment `sg`'s input run for output pixel (oy, ox), or nil when the kernel
/// position lies outside the map (the run is then zero codes).
@inline(__always)
func segmentStart(_ geo: BlockLayout, _ sg: UnsafePointer<Int>, _ oy: Int, _ ox: Int) -> Int? {
    let iy = oy &* geo.sh &- geo.ph &+ sg[0]
    let ix = ox &* geo.sw &- geo.pw &+ sg[1]
    if iy >= 0 && iy < geo.inH && ix >= 0 && ix < geo.inW {
        return (iy &* geo.inW &+ ix) &* geo.inC &+ sg[2]
    }
    return nil
}

/// One ADC conversion (DATAPATH.md section 6), branch-free: `RoundingConst.apply` then the
/// saturation. `|acc * m| < 2^62` (validate): no wrap.
@inline(__always)
func adcCode(_ acc: Int32, _ m: Int64, _ rc: RoundingConst, _ lo: Int64, _ hi: Int64) -> Int32 {
    let x = Int64(acc) &* m
    let q0 = (x &+ (x > 0 ? rc.biasPos : rc.biasNeg)) &>> rc.shift
    let q = q0 &- ((x & rc.mask) == rc.tieEven ? (q0 & 1) : 0)
    return Int32(truncatingIfNeeded: Swift.min(Swift.max(q, lo), hi))
}

/// Output coordinates of the block of `count` (1...4) pixels starting at (y0, x0) in a map of
/// width `ow` (entries past `count` repeat the last pixel), without divisions.
@inline(__always)
func blockCoords(_ y0: Int, _ x0: Int, _ count: Int, _ ow: Int) -> (SIMD4<Int>, SIMD4<Int>) {
    var oy = SIMD4<Int>(), ox = SIMD4<Int>()
    var y = y0, x = x0
    for i in 0..<4 {
        oy[i] = y; ox[i] = x
        if i &+ 1 < count { x &+= 1; if x == ow { x = 0; y &+= 1 } }
    }
    return (oy, ox)
}

/// (y, x) advanced by `n` (<= 4) pixels in a map of width `ow`.
@inline(__always)
func advance(_ y: inout Int, _ x: inout Int, _ n: Int, _ ow: Int) {
    x &+= n
    while x >= ow { x &-= ow; y &+= 1 }
}
