// u8 x i8 crossbar kernel (DATAPATH.md section 12, "u8 x i8 kernel"): the set-up (weights in
// quads of rows, Int8, and the flush schedule) of AVX2 `vpmaddubsw` loops (32 MACs per
// instruction) that only the AVX2 build of the block loops has
// (Sources/CrossbarBlocks/QuadAccumulator.swift). An engine of the `portable` kernel set runs the
// Int16 pair kernel of FastCrossbarBlocked.swift instead: `U8QuadKernel.init` returns nil.
//
// The flush schedule bounds the Int16 lanes: with codes in `0...maxCode`, a lane's sum over a
// run lies in `[maxCode * (sum of its negative weights), maxCode * (sum of its positive
// weights)]`; a run ends before the step that would take that interval out of
// `[-2^15, 2^15 - 1]`, so the lane's wrapping sum (`vpaddw`) is exact.

import CrossbarLayout
import FixedPoint
#if arch(x86_64)
import CrossbarBlocksAVX2
#endif

/// The u8 x i8 quad kernel (kernel set `avx2`).
public final class U8QuadKernel: CrossbarSumsKernel, CrossbarActivationKernel, @unchecked Sendable {
    public let geometry: CrossbarGeometry
    public var name: String { "u8 quads" }
    /// Byte offset in the scratch of the layer's input as u8 (after the accumulators); it is
    /// followed by a zero tail of `inShape.c + 8` bytes (the zero row, and the over-read of a
    /// last partial quad).
    public static var inputOffset: Int { QuadWeights.inputOffset }
    public let scratchCount: Int
    /// Per tile: quad steps (4 rows of a segment each, a last partial quad padded with zero
    /// weights), and the byte offset of the tile's weights in `weights`.
    public let tileQuads: UnsafeMutablePointer<Int>
    let tileWeightOffset: UnsafeMutablePointer<Int>
    /// Int8 `[tile][group][quad step][16 outputs][4 rows]` (64 bytes per step and group; 0 for
    /// outputs >= cout and rows past the end of a segment).
    let weights: UnsafeMutableRawPointer
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
    let stepOffset: UnsafeMutablePointer<Int32>
    let stepStart: UnsafeMutablePointer<Int>
    /// The flush sentinel (longer than any run).
    public static var sentinel: Int { QuadWeights.sentinel }
    /// The same, as the loops read them.
    let packed: QuadWeights

    /// nil unless the kernel set is `avx2`, codes fit a byte and a pair of products cannot
    /// saturate Int16 (`2 * maxCode * maxAbsWeight <= 2^15 - 1`).
    public init?(_ geo: CrossbarGeometry, _ p: CrossbarParams, set: IntKernelSet = IntDispatch.selected) {
        precondition(IntDispatch.available.contains(set), "kernel set \(set) does not run on this CPU")
        guard set == .avx2, geo.maxCode <= 255, 2 * Int(geo.maxCode) * geo.maxAbsWeight <= Int(Int16.max) else { return nil }
        geometry = geo
        let tiles = geo.tileCount, groups = geo.groups
        scratchCount = Swift.max(128, (U8QuadKernel.inputOffset + geo.inShape.count + geo.inShape.c + 8 + 1) / 2)
        let steps = geo.packedSteps(rows: 4, p)
        tileQuads = .allocate(capacity: tiles)
        tileWeightOffset = .allocate(capacity: tiles)
        for t in 0..<tiles { tileWeightOffset[t] = steps.offsets[t]; tileQuads[t] = steps.steps[t] }
        let bytes = Swift.max(steps.weights.count, 64)
        weights = .allocate(byteCount: bytes, alignment: 32)
        let qw = weights.bindMemory(to: Int8.self, capacity: bytes)
        qw.initialize(repeating: 0, count: bytes)
        for (i, v) in steps.weights.enumerated() { qw[i] = v }
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
        packed = QuadWeights(weights: weights, tileWeightOffset: tileWeightOffset, tileQuads: tileQuads, flush: flush,
                             flushStart: flushStart, stepOffset: stepOffset, stepStart: stepStart)
    }

    deinit {
        tileQuads.deallocate(); tileWeightOffset.deallocate(); weights.deallocate()
        flush.deallocate(); flushStart.deallocate(); stepOffset.deallocate(); stepStart.deallocate()
    }

    public func sums(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, scratch: UnsafeMutablePointer<Int16>,
                     tileOut: UnsafeMutablePointer<Int32>?) {
        #if arch(x86_64)
        CrossbarBlocksAVX2.BlockLoops.quadSums(geometry.layout, packed, src: src, dst: dst, scratch: scratch, tileOut: tileOut)
        #else
        preconditionFailure("no u8 x i8 kernel on this architecture")
        #endif
    }

    public func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>) {
        #if arch(x86_64)
        CrossbarBlocksAVX2.BlockLoops.quadActivation(geometry.layout, packed, src: src, dst: dst, scratch: scratch)
        #else
        preconditionFailure("no u8 x i8 kernel on this architecture")
        #endif
    }
}
