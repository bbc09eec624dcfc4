// The narrow fused crossbar kernel (DATAPATH.md section 12, "Crossbar"): a single-tile layer
// with its activation whose accumulator bound `B < 2^15 - 1` (e.g. a first conv layer), so the
// whole tile product and the threshold compares run in Int16 lanes, 16 outputs per vector. Its
// set-up is here; its loops are in CrossbarBlocks/NarrowLoops.swift (the kernel set's build).

import CrossbarBlocks
import CrossbarLayout
import FixedPoint
#if arch(x86_64)
import CrossbarBlocksAVX2
#endif

/// The narrow fused kernel. Weights `[packed row][out (padded to 16)]` Int16, thresholds
/// `[level][out (padded to 16)]` Int16; windows inside the map are read in place.
public final class NarrowFusedKernel: CrossbarActivationKernel, @unchecked Sendable {
    public let geometry: CrossbarGeometry
    /// The kernel set whose build of the loops runs.
    public let set: IntKernelSet
    public var name: String { "narrow fused" }
    /// 4 gathered patches (blocks of 4 pixels), and at least the block kernels' 128.
    public var scratchCount: Int { Swift.max(4 * geometry.packedRows, 128) }
    /// Output padding: a multiple of 16 (one SIMD16<Int16> per 16 outputs); a multiple of 64
    /// runs `run64`.
    public let pad: Int
    /// The same data, as the loops read it.
    let packed: NarrowWeights
    let weights: UnsafeMutableRawPointer
    let thresholds: UnsafeMutableRawPointer
    /// Per packed row, the offset of its input code from the window's top-left corner
    /// `(oy*sh - ph, ox*sw - pw, 0)` in the HWC input (read directly for windows inside the map,
    /// without gathering a patch).
    let rowOffset: UnsafeMutablePointer<Int>
    /// Per group of 16 outputs the largest of `geometry.channelLevels`, the levels the kernel
    /// compares (the group's later thresholds are above every accumulator it can produce).
    let groupLevels: UnsafeMutablePointer<Int>

    /// nil unless the geometry is fused and its accumulator bound fits Int16 lanes.
    public init?(_ geo: CrossbarGeometry, _ p: CrossbarParams, set: IntKernelSet = IntDispatch.selected) {
        precondition(IntDispatch.available.contains(set), "kernel set \(set) does not run on this CPU")
        guard geo.fusedLevels > 0, geo.fusedBound + 1 <= Int64(Int16.max) else { return nil }
        geometry = geo
        self.set = set
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
        packed = NarrowWeights(weights: weights, thresholds: thresholds, rowOffset: rowOffset, groupLevels: groupLevels,
                               pad: pad, rows: rows, rows8: geo.tileRows8[0])
    }

    deinit { weights.deallocate(); thresholds.deallocate(); rowOffset.deallocate(); groupLevels.deallocate() }

    public func activationCodes(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, scratch: UnsafeMutablePointer<Int16>) {
        #if arch(x86_64)
        if set == .avx2 {
            CrossbarBlocksAVX2.BlockLoops.narrowActivation(geometry.layout, packed, src: src, dst: dst, patch: scratch)
            return
        }
        #endif
        CrossbarBlocks.BlockLoops.narrowActivation(geometry.layout, packed, src: src, dst: dst, patch: scratch)
    }
}
