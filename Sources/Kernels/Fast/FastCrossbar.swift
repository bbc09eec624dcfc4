// Fast crossbar layer (DATAPATH.md sections 5, 6 and 12) on HWC Int16 codes.
//
// A layer's set-up is split in two. `CrossbarGeometry` is what every kernel variant shares:
// the shapes, the *segments* (each row tile's fan-in re-ordered so that, for each kernel
// position (y, x), the tile's channels form one contiguous run [cLo, cHi): for fixed (y, x) the
// canonical row r = (c*kh + y)*kw + x grows with c, so a tile's rows at that position are a
// channel interval), the tiles' ADC constants, and with a fused activation its thresholds. A
// *kernel variant* is one weight layout and the loops that read it, its own type behind
// `CrossbarKernel`:
//
// | type | layout | computes | chosen when |
// |---|---|---|---|
// | `Int16PairKernel` (FastCrossbarBlocked.swift) | rows in pairs, Int16 | sums, fused codes | always possible |
// | `U8QuadKernel` (FastCrossbarU8.swift) | rows in quads, Int8 | sums, fused codes | kernel set `avx2`, `2 * maxCode * maxAbsWeight <= 2^15 - 1` |
// | `NarrowFusedKernel` (FastCrossbarNarrow.swift) | `[row][out]` Int16 | fused codes | fused, accumulator bound `< 2^15 - 1` |
//
// `Fast.crossbarKernel` and `Fast.fusedCrossbarKernel` choose once per node, in the order of
// the last column (the first that applies, from the bottom up); the engine stores the chosen
// kernel in its step. The block kernels' set-up (weight packing) is here; their loops are in
// CrossbarBlocks, compiled once per kernel set (IntDispatch.swift).

import CrossbarLayout
import FixedPoint

/// Namespace of the fast kernels.
public enum Fast {}

/// What every kernel variant of one crossbar layer shares. Immutable after init.
public final class CrossbarGeometry: @unchecked Sendable {
    public let inShape: TensorShape, outShape: TensorShape
    public let kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    public let cout: Int, fanIn: Int, tileCount: Int
    /// The largest input code the kernels were made for (inputs must not exceed it), the largest
    /// |weight|.
    public let maxCode: Int64
    public let maxAbsWeight: Int
    /// Groups of 16 outputs (the block kernels' unit).
    public let groups: Int
    /// Segments: 5 Ints each (y, x, cLo, cHi, packedOffset), tile after tile; `packedOffset` is
    /// the segment's first row in the tile-by-tile packed order with each tile's row count
    /// rounded up to a multiple of 8 (`tileOffset`).
    @usableFromInline let segments: UnsafeMutablePointer<Int>
    @usableFromInline let segmentCount: Int
    /// Per segment: the offset of its first input code from the window's top-left corner
    /// (`(y*W + x)*C + cLo` in the HWC input).
    @usableFromInline let segmentOffset: UnsafeMutablePointer<Int>
    /// Per tile (plus one): the first segment of the tile.
    @usableFromInline let tileSegStart: UnsafeMutablePointer<Int>
    /// Per tile: offset in the packed order, real rows, rows rounded up to 8; their sum.
    @usableFromInline let tileOffset: UnsafeMutablePointer<Int>
    @usableFromInline let tileRows: UnsafeMutablePointer<Int>
    @usableFromInline let tileRows8: UnsafeMutablePointer<Int>
    public let packedRows: Int
    /// Per tile: the ADC (section 6) as integer constants.
    @usableFromInline let adcMult: UnsafeMutablePointer<Int64>
    @usableFromInline let adcRound: UnsafeMutablePointer<RoundingConst>
    @usableFromInline let adcLo: UnsafeMutablePointer<Int64>
    @usableFromInline let adcHi: UnsafeMutablePointer<Int64>
    /// Vector ADC (the AVX2 build of the block loops, CrossbarBlocks/QuadAccumulator.swift): used
    /// when `vectorADC` (every tile exact in Double lanes); per tile the gain as a Double `multiplier * 2^-(31 - shift)` (exact: a
    /// power-of-two scaling) and the rounding rule.
    public let vectorADC: Bool
    @usableFromInline let adcScale: UnsafeMutablePointer<Double>
    @usableFromInline let adcRule: UnsafeMutablePointer<RoundingRule>
    /// `inShape.c` zero codes: the input row of a kernel position outside the map.
    @usableFromInline let zeroRow: UnsafeMutablePointer<Int16>
    /// Fused activation: the number of thresholds per output (0: not fused), and the accumulator
    /// bound `B = rows * maxCode * 2^(weightBits - 1)` of the single tile.
    public let fusedLevels: Int
    public let fusedBound: Int64
    /// Fused thresholds `[level k = 1...][out (padded to 16 * groups)]` Int32:
    /// `T_k[o] = min { acc in [-B, B] : act(adc(acc)) >= k }`, or `B + 1`; the padding
    /// `Int32.max` (never reached).
    @usableFromInline let thresholds: UnsafeMutablePointer<Int32>
    /// Fused plans: per output channel, the levels its accumulator can reach
    /// (`#{k : T_k[o] <= maxCode * (sum of o's positive weights)}`: codes are in `0...maxCode`).
    public let channelLevels: [Int]
    /// The same data as the block loops read it (the memory stays this object's).
    public let layout: BlockLayout

    /// Whether `act` can be fused into this single-tile layer (see `CrossbarActivationKernel`):
    /// one tile, multipliers >= 0, at most `maxLevels` output levels, thresholds fit Int32.
    public static func canFuse(_ p: CrossbarParams, _ act: AffineQuantParams, maxCode: Int64, maxLevels: Int = 15) -> Bool {
        guard p.tiles.count == 1, act.multiplier.allSatisfy({ $0 >= 0 }), (1 << act.outBits) - 1 <= maxLevels,
              act.multiplier.count == p.outChannels else { return false }
        let bound = Int64(p.tiles[0].rowCount) * maxCode * Int64(1 << (p.weightBits - 1))
        return bound < Int64(Int32.max)
    }

    /// `fusing`: an activation that `canFuse` accepted; `maxCode`: the largest input code.
    public init(_ p: CrossbarParams, inShape: TensorShape, fusing act: AffineQuantParams? = nil, maxCode: Int64 = 255) {
        self.inShape = inShape
        outShape = p.outputShape(for: inShape)
        kh = p.kernelH; kw = p.kernelW; sh = p.strideH; sw = p.strideW; ph = p.padH; pw = p.padW
        cout = p.outChannels
        fanIn = p.fanIn
        tileCount = p.tiles.count
        self.maxCode = Swift.max(0, maxCode)
        maxAbsWeight = p.weights.reduce(0) { Swift.max($0, abs(Int($1))) }
        groups = Swift.max(1, (cout + 15) / 16)

        tileOffset = .allocate(capacity: tileCount); tileRows = .allocate(capacity: tileCount)
        tileRows8 = .allocate(capacity: tileCount)
        adcMult = .allocate(capacity: tileCount); adcRound = .allocate(capacity: tileCount)
        adcLo = .allocate(capacity: tileCount); adcHi = .allocate(capacity: tileCount)
        var total = 0
        for (t, tile) in p.tiles.enumerated() {
            tileOffset[t] = total; tileRows[t] = tile.rowCount; tileRows8[t] = (tile.rowCount + 7) / 8 * 8
            total += tileRows8[t]
            adcMult[t] = Int64(tile.multiplier)
            (adcRound + t).initialize(to: RoundingConst(shift: 31 - Int(tile.shift), rule: tile.rounding))
            adcLo[t] = -(Int64(1) << Int64(tile.bits - 1)); adcHi[t] = (Int64(1) << Int64(tile.bits - 1)) - 1
        }
        packedRows = total

        let khw = kh * kw
        var segs: [Int] = []
        for (t, tile) in p.tiles.enumerated() {
            let start = tile.rowStart, end = tile.rowStart + tile.rowCount
            var off = tileOffset[t]
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
            precondition(off == tileOffset[t] + tile.rowCount, "segment construction")
        }
        segmentCount = segs.count / 5
        tileSegStart = .allocate(capacity: tileCount + 1)
        do {
            var s = 0
            for (t, tile) in p.tiles.enumerated() {
                tileSegStart[t] = s
                while s < segmentCount && segs[5 * s + 4] < tileOffset[t] + tile.rowCount { s += 1 }
            }
            tileSegStart[tileCount] = s
        }
        segments = .allocate(capacity: Swift.max(1, segs.count))
        for (i, v) in segs.enumerated() { segments[i] = v }
        segmentOffset = .allocate(capacity: Swift.max(1, segmentCount))
        for sidx in 0..<Swift.max(1, segmentCount) {
            segmentOffset[sidx] = sidx < segmentCount ? (segs[5 * sidx] * inShape.w + segs[5 * sidx + 1]) * inShape.c + segs[5 * sidx + 2] : 0
        }
        zeroRow = .allocate(capacity: Swift.max(inShape.c, 1))
        zeroRow.initialize(repeating: 0, count: Swift.max(inShape.c, 1))

        // fused activation thresholds, by bisection over the reference ADC and activation
        let tstride = groups * 16
        if let act {
            precondition(CrossbarGeometry.canFuse(p, act, maxCode: maxCode), "activation cannot be fused")
            fusedLevels = (1 << act.outBits) - 1
            fusedBound = Int64(p.tiles[0].rowCount) * maxCode * Int64(1 << (p.weightBits - 1))
        } else {
            fusedLevels = 0; fusedBound = 0
        }
        let levels = fusedLevels, bound = fusedBound
        thresholds = .allocate(capacity: Swift.max(levels, 1) * tstride)
        thresholds.initialize(repeating: Int32.max, count: Swift.max(levels, 1) * tstride)
        var chLevels = [Int](repeating: 0, count: levels > 0 ? cout : 0)
        if let act {
            let tile = p.tiles[0]
            for o in 0..<cout {
                func g(_ acc: Int64) -> Int64 {
                    Reference.affineQuant(Int64(Reference.adc(Int32(acc), tile)), channel: o, act)
                }
                var pos: Int64 = 0
                for r in 0..<fanIn { pos += Swift.max(0, Int64(p.weights[o * fanIn + r])) }
                let hiAcc = pos * self.maxCode
                for k in 1...levels {
                    var lo = -bound, hi = bound + 1          // invariant: g(hi) >= k or hi == B + 1
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2
                        if g(mid) >= Int64(k) { hi = mid } else { lo = mid + 1 }
                    }
                    thresholds[(k - 1) * tstride + o] = Int32(lo)
                    if lo <= hiAcc { chLevels[o] += 1 }
                }
            }
        }
        channelLevels = chLevels

        // vector ADC: |acc * multiplier| < 2^52 (exact as a Double product) and a right shift
        // <= 52 (the rounding bias stays exact)
        adcScale = .allocate(capacity: tileCount)
        adcRule = .allocate(capacity: tileCount)
        var vadc = true
        for (t, tile) in p.tiles.enumerated() {
            let s = 31 - Int(tile.shift)
            adcScale[t] = Double(tile.multiplier) * Double(sign: .plus, exponent: -s, significand: 1)
            (adcRule + t).initialize(to: tile.rounding)
            let accBound = Double(tile.rowCount) * Double(self.maxCode) * Double(maxAbsWeight)
            if !(s <= 52 && accBound * Double(tile.multiplier) < 0x1p52) { vadc = false }
        }
        vectorADC = vadc
        layout = BlockLayout(inH: inShape.h, inW: inShape.w, inC: inShape.c, outH: outShape.h, outW: outShape.w,
                             kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw, cout: cout, tileCount: tileCount, groups: groups,
                             segments: segments, segmentOffset: segmentOffset, tileSegStart: tileSegStart, segmentCount: segmentCount,
                             adcMult: adcMult, adcRound: adcRound, adcLo: adcLo, adcHi: adcHi,
                             vectorADC: vadc, adcScale: adcScale, adcRule: adcRule,
                             zeroRow: zeroRow, fusedLevels: fusedLevels, thresholds: thresholds)
    }

    /// The segments' fields, for the kernels' set-up: (y, x, cLo, cHi, packedOffset).
    func segment(_ s: Int) -> (y: Int, x: Int, cLo: Int, cHi: Int, offset: Int) {
        (segments[5 * s], segments[5 * s + 1], segments[5 * s + 2], segments[5 * s + 3], segments[5 * s + 4])
    }

    /// The block kernels' weight layout `[tile][group][step][16 outputs][n rows]`: each segment's
    /// rows in steps of `n` (a last partial step padded with zero weights), 0 for outputs
    /// `>= cout`. Returns per tile its steps and the element offset of its weights, and the
    /// packed weights.
    func packedSteps(rows n: Int, _ p: CrossbarParams) -> (steps: [Int], offsets: [Int], weights: [Int8]) {
        var steps = [Int](repeating: 0, count: tileCount), offsets = steps
        var count = 0
        for t in 0..<tileCount {
            for s in tileSegStart[t]..<tileSegStart[t + 1] { let sg = segment(s); steps[t] += (sg.cHi - sg.cLo + n - 1) / n }
            offsets[t] = count; count += groups * steps[t] * 16 * n
        }
        var w = [Int8](repeating: 0, count: count)
        for t in 0..<tileCount {
            var step = 0
            for s in tileSegStart[t]..<tileSegStart[t + 1] {
                let sg = segment(s)
                for c in sg.cLo..<sg.cHi {
                    let r = (c * kh + sg.y) * kw + sg.x
                    let j = step + (c - sg.cLo) / n, k = (c - sg.cLo) % n
                    for o in 0..<cout {
                        w[offsets[t] + ((o / 16) * steps[t] + j) * 16 * n + (o % 16) * n + k] = p.weights[o * fanIn + r]
                    }
                }
                step += (sg.cHi - sg.cLo + n - 1) / n
            }
        }
        return (steps, offsets, w)
    }

    deinit {
        segments.deallocate(); segmentOffset.deallocate(); tileSegStart.deallocate()
        tileOffset.deallocate(); tileRows.deallocate(); tileRows8.deallocate()
        adcMult.deallocate(); adcRound.deallocate(); adcLo.deallocate(); adcHi.deallocate()
        adcScale.deallocate(); adcRule.deallocate(); zeroRow.deallocate(); thresholds.deallocate()
    }
}

/// A fast crossbar kernel variant: one weight layout and the loops that read it (the table at
/// the top of this file). Equal bit for bit to `Reference.crossbar` (and, fused, to the
/// reference activation of its ADC codes) for inputs in `0...geometry.maxCode`.
public protocol CrossbarKernel: AnyObject, Sendable {
    var geometry: CrossbarGeometry { get }
    /// The variant's name in profiles and benchmark output.
    var name: String { get }
    /// Int16 elements of 16-byte aligned scratch one call needs.
    var scratchCount: Int { get }
}

/// A variant that writes a layer's digital sums. `src`: HWC input codes (Int16, each
/// `<= geometry.maxCode`), `dst`: HWC digital sums, `scratch`: `scratchCount` Int16,
/// `tileOut` (optional): the ADC codes `[tile][pixel][cout]`.
public protocol CrossbarSumsKernel: CrossbarKernel {
    func sums(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, scratch: UnsafeMutablePointer<Int16>,
              tileOut: UnsafeMutablePointer<Int32>?)
}

/// A variant of a single-tile layer fused with the activation that follows it (geometry made
/// with `fusing:`): `dst` receives the activation codes (HWC) directly. Exact because
/// `act(adc(acc))` is non-decreasing in `acc` (ADC gain >= 0, activation multipliers >= 0), so
/// it equals the number of thresholds `T_k[o]` (k = 1...2^b - 1) with `acc >= T_k[o]`.
public protocol CrossbarActivationKernel: CrossbarKernel {
    func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>)
}

extension Fast {
    /// The sums kernel of a crossbar node: the u8 x i8 kernel where the kernel set has it and
    /// the layer is eligible, else the Int16 pair kernel.
    public static func crossbarKernel(_ p: CrossbarParams, inShape: TensorShape, maxCode: Int64 = 255,
                                      set: IntKernelSet = IntDispatch.selected) -> any CrossbarSumsKernel {
        let geo = CrossbarGeometry(p, inShape: inShape, maxCode: maxCode)
        return U8QuadKernel(geo, p, set: set) ?? Int16PairKernel(geo, p, set: set)
    }

    /// The fused kernel of a crossbar node and the activation `act` after it
    /// (`CrossbarGeometry.canFuse` must hold): the narrow kernel when the accumulator bound fits
    /// Int16 lanes, else as `crossbarKernel`.
    public static func fusedCrossbarKernel(_ p: CrossbarParams, inShape: TensorShape, fusing act: AffineQuantParams,
                                           maxCode: Int64 = 255, set: IntKernelSet = IntDispatch.selected) -> any CrossbarActivationKernel {
        let geo = CrossbarGeometry(p, inShape: inShape, fusing: act, maxCode: maxCode)
        if let k = NarrowFusedKernel(geo, p, set: set) { return k }
        return U8QuadKernel(geo, p, set: set) ?? Int16PairKernel(geo, p, set: set)
    }
}
