// Fast crossbar layer (DATAPATH.md sections 5 and 6) on HWC Int16 codes.
//
// Set-up (CrossbarPlan, once): each row tile's fan-in is re-ordered so that, for each kernel
// position (y, x), the tile's channels form one contiguous run [cLo, cHi) (for fixed (y, x) the
// canonical row r = (c*kh + y)*kw + x grows with c, so a tile's rows at that position are a
// channel interval): the *segments* (y, x, cLo, cHi, packed offset). The general kernel (any
// tile count; also the wide fused one) is the register-blocked micro-kernel of
// FastCrossbarBlocked.swift; the narrow fused kernel (Int16 accumulation, e.g. a first conv
// layer) is below. Then the ADC per output and the digital sum (or the fused thresholds).

import FixedPoint

/// Namespace of the fast kernels.
public enum Fast {}

/// Set-up of one crossbar layer for the fast kernel. Immutable after init.
public final class CrossbarPlan: @unchecked Sendable {
    public let inShape: TensorShape, outShape: TensorShape
    public let kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    public let cout: Int, coutPad: Int, fanIn: Int, tileCount: Int
    /// Patch length: the tiles' row counts each rounded up to a multiple of 8.
    public let patchCount: Int
    /// Segments: 5 Ints each (y, x, cLo, cHi, patchOffset), tile after tile.
    @usableFromInline let segments: UnsafeMutablePointer<Int>
    @usableFromInline let segmentCount: Int
    /// Per segment: the offset of its first input code from the window's top-left corner
    /// (`(y*W + x)*C + cLo` in the HWC input).
    @usableFromInline let segmentOffset: UnsafeMutablePointer<Int>
    /// Per tile: offset in the patch, real rows, padded rows.
    @usableFromInline let tileOffset: UnsafeMutablePointer<Int>
    @usableFromInline let tileRows: UnsafeMutablePointer<Int>
    @usableFromInline let tileRows8: UnsafeMutablePointer<Int>
    @usableFromInline let adcMult: UnsafeMutablePointer<Int64>
    @usableFromInline let adcRound: UnsafeMutablePointer<RoundingConst>
    @usableFromInline let adcLo: UnsafeMutablePointer<Int64>
    @usableFromInline let adcHi: UnsafeMutablePointer<Int64>
    /// Fused activation: number of thresholds per output (0: not fused); the thresholds are
    /// stored in the layout of the kernel that uses them (`narrowThresholds`, `blockThresholds`).
    public let fusedLevels: Int
    /// Narrow fused variant (tile bound `B < 2^15 - 1`, e.g. a first conv layer): accumulation
    /// and threshold compares in Int16 lanes, 8 outputs at a time; weights `[row][out (padded
    /// to 16)]`, thresholds `[level][out (padded to 16)]`, both Int16.
    public let isNarrow: Bool
    /// Output padding of the narrow layout: 16 (one SIMD16<Int16> per 16 outputs).
    public let narrowPad: Int
    @usableFromInline let narrowWeights: UnsafeMutableRawPointer
    /// Narrow variant: per packed row, the offset of its input code from the window's top-left
    /// corner `(oy*sh - ph, ox*sw - pw, 0)` in the HWC input (read directly for windows inside
    /// the map, without gathering a patch).
    @usableFromInline let narrowRowOffset: UnsafeMutablePointer<Int>
    @usableFromInline let narrowThresholds: UnsafeMutableRawPointer
    /// Fused plans: per output channel, the levels its accumulator can reach
    /// (`#{k : T_k[o] <= maxCode * (sum of o's positive weights)}`: codes are in `0...maxCode`);
    /// narrow plans: per group of 16 outputs the largest of these, the levels the kernel
    /// compares (the group's later thresholds are above every accumulator it can produce).
    public let channelLevels: [Int]
    @usableFromInline let narrowGroupLevels: UnsafeMutablePointer<Int>
    /// Blocked kernel (FastCrossbarBlocked.swift): groups of 16 outputs; the largest input code
    /// the plan was made for and the largest |weight|; rows summed in Int16 lanes before
    /// widening (`floor((2^15 - 1) / (maxCode * maxAbsWeight))`, at least 1).
    public let groups: Int
    public let maxCode: Int64
    public let maxAbsWeight: Int
    public let chunkRows: Int
    /// Per tile (plus one): the first segment of the tile.
    @usableFromInline let tileSegStart: UnsafeMutablePointer<Int>
    /// Per tile: element offset of the tile's weights in `blockWeights`.
    @usableFromInline let blockTileOffset: UnsafeMutablePointer<Int>
    /// Per tile: row-pair steps (each segment's rows in pairs, an odd last row its own step).
    @usableFromInline let tilePairs: UnsafeMutablePointer<Int>
    /// Int16 `[tile][group][step][8 outputs x 2 rows][2 halves]`: step `j` of a group holds, for
    /// outputs `o = 0..<16` of the group, `w[o][r_j], w[o][r_j + 1]` at Int16 index `2o, 2o + 1`
    /// (0 for outputs >= cout and for the missing second row of an odd last row).
    @usableFromInline let blockWeights: UnsafeMutableRawPointer
    /// Fused thresholds `[level][out (padded to 16)]` Int32 (the padding never stored).
    @usableFromInline let blockThresholds: UnsafeMutableRawPointer
    /// `inShape.c` zero codes: the input row of a kernel position outside the map.
    @usableFromInline let zeroRow: UnsafeMutablePointer<Int16>
    /// u8 x i8 kernel (FastCrossbarU8.swift, AVX2 `vpmaddubsw`, only in builds with
    /// `RRAM_EDGE_AVX2`): used when `Fast.hasU8Kernel`, `maxCode <= 255` and a pair of products
    /// cannot saturate Int16 (`2 * maxCode * maxAbsWeight <= 2^15 - 1`). Steps of 4 rows of a
    /// segment (a last partial quad padded with zero weights); Int16 lanes summed over the runs
    /// of `quadFlush`.
    public let useU8: Bool
    /// Per tile: quad steps, and the byte offset of the tile's weights in `quadWeights`.
    @usableFromInline let tileQuads: UnsafeMutablePointer<Int>
    @usableFromInline let quadTileOffset: UnsafeMutablePointer<Int>
    /// Int8 `[tile][group][quad step][16 outputs][4 rows]` (64 bytes per step and group; 0 for
    /// outputs >= cout and rows past the end of a segment).
    @usableFromInline let quadWeights: UnsafeMutableRawPointer
    /// u8 kernel flush schedule, per tile and group (`quadFlushStart[t * groups + g]` indexes
    /// `quadFlush`): lengths of the runs of quad steps between two flushes of the Int16 lanes
    /// (they add up to the tile's quad steps), then a sentinel. With codes in `0...maxCode`, an
    /// Int16 lane's sum over a run lies in `[maxCode * (sum of its negative weights),
    /// maxCode * (sum of its positive weights)]`; a run ends before the step that would take
    /// that interval out of `[-2^15, 2^15 - 1]`, so the lane's wrapping sum (`vpaddw`) is exact.
    @usableFromInline let quadFlush: UnsafeMutablePointer<Int>
    @usableFromInline let quadFlushStart: UnsafeMutablePointer<Int>
    /// Per quad step of each tile (from `quadStepStart[t]`), the byte offset of its 4 input codes
    /// from the window's top-left corner (`segmentOffset + 4q`): windows inside the map.
    @usableFromInline let quadStepOffset: UnsafeMutablePointer<Int32>
    @usableFromInline let quadStepStart: UnsafeMutablePointer<Int>
    /// Vector ADC (host-tuned builds, FastCrossbarU8.swift): used when `vectorADC`; per tile the
    /// gain as a Double `multiplier * 2^-(31 - shift)` (exact: a power-of-two scaling).
    public let vectorADC: Bool
    @usableFromInline let adcScale: UnsafeMutablePointer<Double>
    @usableFromInline let adcRule: UnsafeMutablePointer<RoundingRule>
    /// Byte offset in the scratch of the layer's input as u8 (after the accumulators), and its
    /// zero tail (`inShape.c + 8` bytes: the zero row, and the over-read of a last partial quad).
    public static let u8ScratchOffset = 256

    /// Whether `act` can be fused into this single-tile layer (see `crossbarActivation`):
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
        coutPad = (cout + 3) / 4 * 4
        fanIn = p.fanIn
        tileCount = p.tiles.count

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
        let total4 = total

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

        narrowPad = (cout + 15) / 16 * 16
        var narrow = false
        // fused activation thresholds `[level k = 1...][out (padded to 4)]` (set-up only):
        // T_k[o] = min { acc in [-B, B] : act(adc(acc)) >= k }, or B + 1
        var fusedTh: [Int32] = []
        if let act {
            precondition(CrossbarPlan.canFuse(p, act, maxCode: maxCode), "activation cannot be fused")
            let levels = (1 << act.outBits) - 1
            let bound = Int64(p.tiles[0].rowCount) * maxCode * Int64(1 << (p.weightBits - 1))
            fusedLevels = levels
            fusedTh = [Int32](repeating: Int32(bound + 1), count: levels * coutPad)
            let tile = p.tiles[0]
            for o in 0..<cout {
                func g(_ acc: Int64) -> Int64 {
                    Reference.affineQuant(Int64(Reference.adc(Int32(acc), tile)), channel: o, act)
                }
                for k in 1...levels {
                    var lo = -bound, hi = bound + 1          // invariant: g(hi) >= k or hi == B + 1
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2
                        if g(mid) >= Int64(k) { hi = mid } else { lo = mid + 1 }
                    }
                    fusedTh[(k - 1) * coutPad + o] = Int32(lo)
                }
            }
            narrow = bound + 1 <= Int64(Int16.max)
        } else {
            fusedLevels = 0
        }
        isNarrow = narrow
        let nLevels = fusedLevels, nOut = cout, cp = coutPad, fan = fanIn
        var chLevels = [Int](repeating: 0, count: nLevels > 0 ? nOut : 0)
        if nLevels > 0 {
            let th32 = fusedTh
            for o in 0..<nOut {
                var pos: Int64 = 0
                for r in 0..<fan { pos += Swift.max(0, Int64(p.weights[o * fan + r])) }
                let hiAcc = pos * Swift.max(0, maxCode)
                var n = 0
                for k in 0..<nLevels where Int64(th32[k * cp + o]) <= hiAcc { n += 1 }
                chLevels[o] = n
            }
        }
        channelLevels = chLevels
        let nGroups = Swift.max(1, narrowPad / 16)
        narrowGroupLevels = .allocate(capacity: nGroups)
        for g in 0..<nGroups {
            var m = 0
            for o in (g * 16)..<Swift.min(nOut, g * 16 + 16) { m = Swift.max(m, chLevels.isEmpty ? 0 : chLevels[o]) }
            narrowGroupLevels[g] = m
        }
        if narrow {
            let rows = p.tiles[0].rowCount, levels = fusedLevels
            narrowWeights = .allocate(byteCount: Swift.max(rows * narrowPad * 2, 16), alignment: 16)
            narrowThresholds = .allocate(byteCount: levels * narrowPad * 2, alignment: 16)
            let th32 = fusedTh
            let th16 = narrowThresholds.bindMemory(to: Int16.self, capacity: levels * narrowPad)
            th16.initialize(repeating: Int16.max, count: levels * narrowPad)
            for k in 0..<levels { for o in 0..<cout { th16[k * narrowPad + o] = Int16(th32[k * coutPad + o]) } }
        } else {
            narrowWeights = .allocate(byteCount: 16, alignment: 16)
            narrowThresholds = .allocate(byteCount: 16, alignment: 16)
        }

        // narrow weights [row (packed order)][out (padded to 16)]; per packed row its input
        // offset from the window's top-left corner in the HWC input
        narrowRowOffset = .allocate(capacity: Swift.max(1, narrow ? p.tiles[0].rowCount : 1))
        narrowRowOffset.initialize(repeating: 0, count: Swift.max(1, narrow ? p.tiles[0].rowCount : 1))
        if narrow {
            let tile = p.tiles[0]
            let nw = narrowWeights.bindMemory(to: Int16.self, capacity: tile.rowCount * narrowPad)
            for sidx in 0..<segmentCount {
                let y = segs[5 * sidx], x = segs[5 * sidx + 1], cLo = segs[5 * sidx + 2], cHi = segs[5 * sidx + 3]
                for c in cLo..<cHi {
                    let r = (c * kh + y) * kw + x            // canonical row
                    let pr = segs[5 * sidx + 4] + (c - cLo)  // packed row (one tile, offset 0)
                    for o in 0..<narrowPad { nw[pr * narrowPad + o] = o < cout ? Int16(p.weights[o * fanIn + r]) : 0 }
                    narrowRowOffset[pr] = (y * inShape.w + x) * inShape.c + c
                }
            }
        }

        // blocked kernel: weights [tile][group][step][16 outputs][2 rows]
        groups = Swift.max(1, (cout + 15) / 16)
        self.maxCode = Swift.max(0, maxCode)
        let maxW = p.weights.reduce(0) { Swift.max($0, abs(Int($1))) }
        maxAbsWeight = maxW
        let prodBound = Int(self.maxCode) * maxW            // bound of one product |a * w|
        // steps per Int16 chunk: each lane adds one product per step
        chunkRows = prodBound == 0 ? Int.max / 4 : Swift.max(1, Int(Int16.max) / prodBound)
        blockTileOffset = .allocate(capacity: tileCount)
        tilePairs = .allocate(capacity: tileCount)
        var bcount = 0
        for t in 0..<tileCount {
            var steps = 0
            for sidx in tileSegStart[t]..<tileSegStart[t + 1] { steps += (segs[5 * sidx + 3] - segs[5 * sidx + 2] + 1) / 2 }
            tilePairs[t] = steps
            blockTileOffset[t] = bcount; bcount += groups * steps * 32
        }
        blockWeights = .allocate(byteCount: Swift.max(bcount, 32) * 2, alignment: 32)
        let bw = blockWeights.bindMemory(to: Int16.self, capacity: Swift.max(bcount, 32))
        bw.initialize(repeating: 0, count: Swift.max(bcount, 32))
        for t in 0..<tileCount {
            var step = 0
            for sidx in tileSegStart[t]..<tileSegStart[t + 1] {
                let y = segs[5 * sidx], x = segs[5 * sidx + 1], cLo = segs[5 * sidx + 2], cHi = segs[5 * sidx + 3]
                for c in cLo..<cHi {
                    let r = (c * kh + y) * kw + x
                    let j = step + (c - cLo) / 2, half = (c - cLo) % 2
                    for o in 0..<cout {
                        let g = o / 16
                        bw[blockTileOffset[t] + (g * tilePairs[t] + j) * 32 + (o % 16) * 2 + half] = Int16(p.weights[o * fanIn + r])
                    }
                }
                step += (cHi - cLo + 1) / 2
            }
        }
        let lv = Swift.max(fusedLevels, 1), tstride = groups * 16
        blockThresholds = .allocate(byteCount: lv * tstride * 4, alignment: 32)
        let bt = blockThresholds.bindMemory(to: Int32.self, capacity: lv * tstride)
        bt.initialize(repeating: Int32.max, count: lv * tstride)
        if fusedLevels > 0 {
            let th32 = fusedTh
            for k in 0..<fusedLevels { for o in 0..<cout { bt[k * tstride + o] = th32[k * coutPad + o] } }
        }
        zeroRow = .allocate(capacity: Swift.max(inShape.c, 1))
        zeroRow.initialize(repeating: 0, count: Swift.max(inShape.c, 1))

        // u8 x i8 kernel: weights in quads of rows
        useU8 = Fast.hasU8Kernel && self.maxCode <= 255 && 2 * prodBound <= Int(Int16.max)
        tileQuads = .allocate(capacity: tileCount)
        quadTileOffset = .allocate(capacity: tileCount)
        var qbytes = 0
        for t in 0..<tileCount {
            var steps = 0
            for sidx in tileSegStart[t]..<tileSegStart[t + 1] { steps += (segs[5 * sidx + 3] - segs[5 * sidx + 2] + 3) / 4 }
            tileQuads[t] = steps
            quadTileOffset[t] = qbytes; qbytes += useU8 ? groups * steps * 64 : 0
        }
        quadWeights = .allocate(byteCount: Swift.max(qbytes, 64), alignment: 32)
        let qw = quadWeights.bindMemory(to: Int8.self, capacity: Swift.max(qbytes, 64))
        qw.initialize(repeating: 0, count: Swift.max(qbytes, 64))
        if useU8 {
            for t in 0..<tileCount {
                var step = 0
                for sidx in tileSegStart[t]..<tileSegStart[t + 1] {
                    let y = segs[5 * sidx], x = segs[5 * sidx + 1], cLo = segs[5 * sidx + 2], cHi = segs[5 * sidx + 3]
                    for c in cLo..<cHi {
                        let r = (c * kh + y) * kw + x
                        let j = step + (c - cLo) / 4, k = (c - cLo) % 4
                        for o in 0..<cout {
                            qw[quadTileOffset[t] + ((o / 16) * tileQuads[t] + j) * 64 + (o % 16) * 4 + k] = p.weights[o * fanIn + r]
                        }
                    }
                    step += (cHi - cLo + 3) / 4
                }
            }
        }
        // u8 kernel flush schedule: greedy runs of quad steps per tile and group
        var flush: [Int] = [], flushStart: [Int] = []
        for t in 0..<tileCount {
            for g in 0..<groups {
                flushStart.append(flush.count)
                if useU8 {
                    // per Int16 lane, the largest and smallest sum of the run (codes in 0...maxCode)
                    var hiSum = [Int](repeating: 0, count: 32), loSum = hiSum, run = 0
                    let mc = Int(self.maxCode)
                    for j in 0..<tileQuads[t] {
                        let base = quadTileOffset[t] + (g * tileQuads[t] + j) * 64
                        var hi = [Int](repeating: 0, count: 32), lo = hi
                        for l in 0..<32 {
                            for k in 0..<2 { let w = Int(qw[base + 2 * l + k]); if w > 0 { hi[l] += mc * w } else { lo[l] += mc * w } }
                        }
                        if (0..<32).contains(where: { hiSum[$0] + hi[$0] > Int(Int16.max) || loSum[$0] + lo[$0] < Int(Int16.min) }) {
                            flush.append(run); run = 0
                            for l in 0..<32 { hiSum[l] = 0; loSum[l] = 0 }
                        }
                        for l in 0..<32 { hiSum[l] += hi[l]; loSum[l] += lo[l] }
                        run += 1
                    }
                    if run > 0 { flush.append(run) }
                }
                flush.append(Int.max / 4)   // sentinel
            }
        }
        quadFlush = .allocate(capacity: flush.count)
        for (i, v) in flush.enumerated() { quadFlush[i] = v }
        quadFlushStart = .allocate(capacity: flushStart.count)
        for (i, v) in flushStart.enumerated() { quadFlushStart[i] = v }
        var stepOff: [Int32] = []
        quadStepStart = .allocate(capacity: tileCount)
        for t in 0..<tileCount {
            quadStepStart[t] = stepOff.count
            for sidx in tileSegStart[t]..<tileSegStart[t + 1] {
                let n = segs[5 * sidx + 3] - segs[5 * sidx + 2]
                for q in 0..<((n + 3) / 4) { stepOff.append(Int32(segmentOffset[sidx] + 4 * q)) }
            }
        }
        quadStepOffset = .allocate(capacity: Swift.max(1, stepOff.count))
        for (i, v) in stepOff.enumerated() { quadStepOffset[i] = v }

        // vector ADC: |acc * multiplier| < 2^52 (exact as a Double product) and a right shift
        // <= 52 (the rounding bias below stays exact)
        adcScale = .allocate(capacity: tileCount)
        adcRule = .allocate(capacity: tileCount)
        var vadc = Fast.hasVectorADC
        for (t, tile) in p.tiles.enumerated() {
            let s = 31 - Int(tile.shift)
            adcScale[t] = Double(tile.multiplier) * Double(sign: .plus, exponent: -s, significand: 1)
            (adcRule + t).initialize(to: tile.rounding)
            let accBound = Double(tile.rowCount) * Double(self.maxCode) * Double(maxW)
            if !(s <= 52 && accBound * Double(tile.multiplier) < 0x1p52) { vadc = false }
        }
        vectorADC = vadc

        // scratch: room for 4 patches (the narrow fused kernel gathers blocks of 4 pixels); at
        // least the blocked kernel's accumulator scratch (4 x 16 Int32); the u8 input copy
        let u8Bytes = useU8 ? CrossbarPlan.u8ScratchOffset + inShape.count + inShape.c + 8 : 0
        patchCount = Swift.max(4 * total4, 128, (u8Bytes + 1) / 2)
    }

    deinit {
        tileQuads.deallocate(); quadTileOffset.deallocate(); quadWeights.deallocate()
        quadFlush.deallocate(); quadFlushStart.deallocate(); quadStepOffset.deallocate(); quadStepStart.deallocate(); adcScale.deallocate(); adcRule.deallocate()
        tileSegStart.deallocate(); blockTileOffset.deallocate(); tilePairs.deallocate(); blockWeights.deallocate()
        blockThresholds.deallocate(); zeroRow.deallocate()
        segments.deallocate(); segmentOffset.deallocate(); tileOffset.deallocate(); tileRows.deallocate(); tileRows8.deallocate()
        adcMult.deallocate(); adcRound.deallocate(); adcLo.deallocate(); adcHi.deallocate()
        narrowGroupLevels.deallocate(); narrowWeights.deallocate(); narrowRowOffset.deallocate(); narrowThresholds.deallocate()
    }
}

extension Fast {
    /// Gathers the patch of output pixel (oy, ox) in packed order. The row padding of each tile
    /// is left as is: its weights are 0, so whatever the scratch holds there contributes 0.
    @inlinable @inline(__always)
    static func gather(_ src: UnsafePointer<Int16>, _ plan: CrossbarPlan, _ patch: UnsafeMutablePointer<Int16>,
                       _ oy: Int, _ ox: Int) {
        let inH = plan.inShape.h, inW = plan.inShape.w, inC = plan.inShape.c
        let segs = plan.segments
        for s in 0..<plan.segmentCount {
            let sg = segs + 5 &* s
            let iy = oy &* plan.sh &- plan.ph &+ sg[0]
            let ix = ox &* plan.sw &- plan.pw &+ sg[1]
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

    /// One crossbar layer. `src`: HWC input codes (Int16), `dst`: HWC digital sums,
    /// `patch`: 16-byte aligned scratch of `plan.patchCount` Int16,
    /// `tileOut` (optional): ADC codes `[tile][pixel][cout]`.
    /// Input codes must not exceed `plan.maxCode`. Runs the blocked kernel
    /// (FastCrossbarBlocked.swift); `patch` is its accumulator scratch.
    @inlinable
    public static func crossbar(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, plan: CrossbarPlan,
                                patch: UnsafeMutablePointer<Int16>, tileOut: UnsafeMutablePointer<Int32>?) {
        crossbarBlocked(src: src, dst: dst, plan: plan, scratch: patch, tileOut: tileOut)
    }

    /// A single-tile crossbar layer fused with the activation that follows it (plan made with
    /// `fusing:`): `dst` receives the activation codes (HWC) directly. Exact because
    /// `act(adc(acc))` is non-decreasing in `acc` (ADC gain >= 0, activation multipliers >= 0),
    /// so it equals the number of thresholds `T_k[o]` (k = 1...2^b - 1) with `acc >= T_k[o]`.
    @inlinable
    public static func crossbarActivation(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, plan: CrossbarPlan,
                                          patch: UnsafeMutablePointer<Int16>) {
        precondition(plan.fusedLevels > 0 && plan.tileCount == 1, "plan is not fused")
        if plan.isNarrow {
            if plan.narrowPad % 64 == 0 { crossbarActivationNarrow64(src: src, dst: dst, plan: plan, patch: patch) }
            else { crossbarActivationNarrow(src: src, dst: dst, plan: plan, patch: patch) }
            return
        }
        crossbarActivationBlocked(src: src, dst: dst, plan: plan, scratch: patch)
    }

    /// The narrow fused variant: `|acc| <= B < 2^15 - 1`, so every partial sum of the tile product
    /// fits Int16 lanes (products `|a * w| <= B` too); 16 outputs per vector, blocks of 4 output
    /// pixels (each weight and threshold vector serves 4 pixels); the 4 patches are gathered
    /// first (`patch`: 4 x `tileRows8[0]` Int16).
    @inlinable
    static func crossbarActivationNarrow(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, plan: CrossbarPlan,
                                         patch: UnsafeMutablePointer<Int16>) {
        let ow = plan.outShape.w, pixels = plan.outShape.h &* ow
        let cout = plan.cout, pad = plan.narrowPad
        let w = UnsafeRawPointer(plan.narrowWeights), th = UnsafeRawPointer(plan.narrowThresholds)
        let one = SIMD16<Int16>(repeating: 1), zero = SIMD16<Int16>()
        let rows = plan.tileRows[0], stride = plan.tileRows8[0]
        let inH = plan.inShape.h, inW = plan.inShape.w, inC = plan.inShape.c
        let rowOff = plan.narrowRowOffset
        var pix = 0
        while pix < pixels {
            let nb = Swift.min(4, pixels &- pix)
            // the block's 4 windows (the tail repeats its last pixel; only nb are stored): read
            // in place when every window lies inside the map, else gathered into patches
            var b0 = UnsafePointer(patch), b1 = b0, b2 = b0, b3 = b0
            var step0 = 1, inside = true
            for i in 0..<4 {
                let q = pix &+ Swift.min(i, nb &- 1), y = q / ow, x = q &- y &* ow
                let iy = y &* plan.sh &- plan.ph, ix = x &* plan.sw &- plan.pw
                if iy < 0 || ix < 0 || iy &+ plan.kh > inH || ix &+ plan.kw > inW { inside = false }
            }
            if inside {
                step0 = 0
                for i in 0..<4 {
                    let q = pix &+ Swift.min(i, nb &- 1), y = q / ow, x = q &- y &* ow
                    let b = src + ((y &* plan.sh &- plan.ph) &* inW &+ (x &* plan.sw &- plan.pw)) &* inC
                    if i == 0 { b0 = b } else if i == 1 { b1 = b } else if i == 2 { b2 = b } else { b3 = b }
                }
            } else {
                for i in 0..<4 {
                    let q = pix &+ Swift.min(i, nb &- 1), y = q / ow
                    gather(src, plan, patch + i &* stride, y, q &- y &* ow)
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
                for _ in 0..<plan.narrowGroupLevels[o &>> 4] {
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

    /// The narrow fused variant for 64 outputs at a time (`narrowPad` a multiple of 64): blocks
    /// of 2 output pixels; per packed row each input code is broadcast once and serves 4 weight
    /// vectors (64 outputs), 8 Int16 accumulators; then each group of 16 outputs compares its
    /// reachable levels. The same Int16 products and sums as `crossbarActivationNarrow` (exact
    /// for the same reason: `|acc| <= B < 2^15 - 1`).
    @inlinable
    static func crossbarActivationNarrow64(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, plan: CrossbarPlan,
                                           patch: UnsafeMutablePointer<Int16>) {
        let ow = plan.outShape.w, pixels = plan.outShape.h &* ow
        let cout = plan.cout, pad = plan.narrowPad
        let w = UnsafeRawPointer(plan.narrowWeights), th = UnsafeRawPointer(plan.narrowThresholds)
        let one = SIMD16<Int16>(repeating: 1), zero = SIMD16<Int16>()
        let rows = plan.tileRows[0], stride = plan.tileRows8[0]
        let inH = plan.inShape.h, inW = plan.inShape.w, inC = plan.inShape.c
        let rowOff = plan.narrowRowOffset
        var pix = 0
        while pix < pixels {
            let nb = Swift.min(2, pixels &- pix)
            // the block's 2 windows (a tail repeats its pixel): in place when both lie inside
            // the map, else gathered into patches
            let q0 = pix, q1 = pix &+ nb &- 1
            let y0 = q0 / ow, x0 = q0 &- y0 &* ow, y1 = q1 / ow, x1 = q1 &- y1 &* ow
            let iy0 = y0 &* plan.sh &- plan.ph, ix0 = x0 &* plan.sw &- plan.pw
            let iy1 = y1 &* plan.sh &- plan.ph, ix1 = x1 &* plan.sw &- plan.pw
            var b0 = UnsafePointer(patch), b1 = b0
            var inPlace = false
            if iy0 >= 0 && ix0 >= 0 && iy0 &+ plan.kh <= inH && ix0 &+ plan.kw <= inW &&
               iy1 >= 0 && ix1 >= 0 && iy1 &+ plan.kh <= inH && ix1 &+ plan.kw <= inW {
                inPlace = true
                b0 = src + (iy0 &* inW &+ ix0) &* inC
                b1 = src + (iy1 &* inW &+ ix1) &* inC
            } else {
                gather(src, plan, patch, y0, x0)
                gather(src, plan, patch + stride, y1, x1)
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
                    for _ in 0..<plan.narrowGroupLevels[og &>> 4] {
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
