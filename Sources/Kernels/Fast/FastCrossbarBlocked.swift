// Block kernels (DATAPATH.md section 12, "Crossbar"): the register-blocked Int16 pair kernel's
// set-up (its loops: Sources/CrossbarBlocks/PairAccumulator.swift, in the kernel set's build).
//
// A block kernel produces, for a block of up to 4 output pixels, one tile and one group of 16
// outputs, the exact tile accumulators (`[pixel][16]` Int32 in the scratch); the shared block
// loops (CrossbarBlocks/BlockLoops.swift) then run the ADC and the digital sum, or the fused
// thresholds. The two block kernels (`Int16PairKernel` here, `U8QuadKernel` in
// FastCrossbarU8.swift) differ only in their weight layout and inner loop.
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

import CrossbarBlocks
import CrossbarLayout
#if arch(x86_64)
import CrossbarBlocksAVX2
#endif

/// The register-blocked Int16 pair kernel (every kernel set, every layer).
public final class Int16PairKernel: CrossbarSumsKernel, CrossbarActivationKernel, @unchecked Sendable {
    public let geometry: CrossbarGeometry
    /// The kernel set whose build of the loops runs.
    public let set: IntKernelSet
    public var name: String { "int16 pairs" }
    /// The scratch holds the 4 x 16 Int32 accumulators.
    public var scratchCount: Int { 128 }
    /// Rows summed in Int16 lanes before widening: `floor((2^15 - 1) / (maxCode * maxAbsWeight))`,
    /// at least 1.
    public let chunkRows: Int
    /// Per tile: element offset of the tile's weights in `weights`, and its row-pair steps (each
    /// segment's rows in pairs, an odd last row its own step).
    let tileWeightOffset: UnsafeMutablePointer<Int>
    let tilePairs: UnsafeMutablePointer<Int>
    /// Int16 `[tile][group][step][8 outputs x 2 rows][2 halves]`: step `j` of a group holds, for
    /// outputs `o = 0..<16` of the group, `w[o][r_j], w[o][r_j + 1]` at Int16 index `2o, 2o + 1`
    /// (0 for outputs >= cout and for the missing second row of an odd last row).
    let weights: UnsafeMutableRawPointer
    /// The same, as the loops read them.
    let packed: PairWeights

    public init(_ geo: CrossbarGeometry, _ p: CrossbarParams, set: IntKernelSet = IntDispatch.selected) {
        precondition(IntDispatch.available.contains(set), "kernel set \(set) does not run on this CPU")
        geometry = geo
        self.set = set
        let prodBound = Int(geo.maxCode) * geo.maxAbsWeight      // bound of one product |a * w|
        // steps per Int16 chunk: each lane adds one product per step
        chunkRows = prodBound == 0 ? Int.max / 4 : Swift.max(1, Int(Int16.max) / prodBound)
        let packedSteps = geo.packedSteps(rows: 2, p)
        tileWeightOffset = .allocate(capacity: geo.tileCount)
        tilePairs = .allocate(capacity: geo.tileCount)
        for t in 0..<geo.tileCount { tileWeightOffset[t] = packedSteps.offsets[t]; tilePairs[t] = packedSteps.steps[t] }
        let count = Swift.max(packedSteps.weights.count, 32)
        weights = .allocate(byteCount: count * 2, alignment: 32)
        let w = weights.bindMemory(to: Int16.self, capacity: count)
        w.initialize(repeating: 0, count: count)
        for (i, v) in packedSteps.weights.enumerated() { w[i] = Int16(v) }
        packed = PairWeights(weights: weights, tileWeightOffset: tileWeightOffset, tilePairs: tilePairs, chunkRows: chunkRows)
    }

    deinit { tileWeightOffset.deallocate(); tilePairs.deallocate(); weights.deallocate() }

    public func sums(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int32>, scratch: UnsafeMutablePointer<Int16>,
                     tileOut: UnsafeMutablePointer<Int32>?) {
        #if arch(x86_64)
        if set == .avx2 {
            CrossbarBlocksAVX2.BlockLoops.pairSums(geometry.layout, packed, src: src, dst: dst, scratch: scratch, tileOut: tileOut)
            return
        }
        #endif
        CrossbarBlocks.BlockLoops.pairSums(geometry.layout, packed, src: src, dst: dst, scratch: scratch, tileOut: tileOut)
    }

    public func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>) {
        #if arch(x86_64)
        if set == .avx2 {
            CrossbarBlocksAVX2.BlockLoops.pairActivation(geometry.layout, packed, src: src, dst: dst, scratch: scratch)
            return
        }
        #endif
        CrossbarBlocks.BlockLoops.pairActivation(geometry.layout, packed, src: src, dst: dst, scratch: scratch)
    }
}
