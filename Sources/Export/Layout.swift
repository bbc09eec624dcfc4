// The validated view of a model that every export file is built from: the crossbar layers with
// their masks and conductance codes, and the placement checked against the program (every
// weight on exactly one differential pair, no two pairs on one cell, every placed tile equal to
// one row tile of the program, so the chip's ADCs digitise exactly what the program says).
import Kernels
import ModelFile

/// One crossbar layer of the program.
public struct ExportLayer: Sendable, Equatable {
    /// Ordinal in `Program.crossbarLayers` (the placement's and the masks' `layer`).
    public var layer: Int
    /// Node index in the program.
    public var node: Int
    /// Which matrix of the node: 0 (a crossbar node; an rnn node's input matrix `W_ih`) or 1 (an
    /// rnn node's recurrent matrix `W_hh`).
    public var part: Int = 0
    public var params: CrossbarParams
    /// The learned mask (`[out][fanIn]`, true = kept), or nil (every pair kept).
    public var mask: PackedMask?
    /// Conductance codes (`planes x [out][fanIn]`), or nil.
    public var conductance: ConductanceCodes?

    /// True when the pair of weight `index` (`output * fanIn + input`) is kept.
    @inlinable public func kept(_ index: Int) -> Bool { mask.map { $0[index] } ?? true }
    /// Number of pruned pairs (mask bits 0).
    public var pruned: Int { mask.map { $0.count - $0.ones } ?? 0 }
}

/// A validated model ready for export.
public struct ExportLayout: Sendable {
    /// Most cells (all arrays together) an export builds images for: 2^25 (128 arrays of 512x512).
    public static let maxCells = 1 << 25

    public let bundle: ModelBundle
    public let layers: [ExportLayer]
    public let placement: Placement
    /// For each placement tile: the index of the program row tile (`CrossbarParams.tiles`) it holds.
    public let rowTile: [Int]

    public var program: Program { bundle.program }
    public var cellsPerArray: Int { placement.arrayRows * placement.arrayCols }

    /// Checks the model and its placement; throws `ExportError` naming the first problem.
    public init(_ bundle: ModelBundle) throws(ExportError) {
        self.bundle = bundle
        let p = bundle.program
        do { try p.validate() } catch { throw ExportError(.invalidModel, "invalid program: \(error)") }
        let md = bundle.metadata
        var layers: [ExportLayer] = []
        for x in p.crossbarLayers {
            layers.append(ExportLayer(layer: layers.count, node: x.node, part: x.part, params: x.params, mask: nil, conductance: nil))
        }
        guard md.masks.isEmpty || md.masks.count == layers.count else {
            throw ExportError(.invalidModel, "\(md.masks.count) masks for \(layers.count) crossbar layers")
        }
        guard md.conductances.isEmpty || md.conductances.count == layers.count else {
            throw ExportError(.invalidModel, "\(md.conductances.count) conductance entries for \(layers.count) crossbar layers")
        }
        for l in layers.indices {
            let n = layers[l].params.weights.count
            if !md.masks.isEmpty, let m = md.masks[l] {
                guard m.count == n, m.bytes.count == (n + 7) / 8 else {
                    throw ExportError(.invalidModel, "crossbar layer \(l) (node \(layers[l].node)): mask has \(m.count) bits in \(m.bytes.count) bytes for \(n) weights")
                }
                layers[l].mask = m
            }
            if !md.conductances.isEmpty, let c = md.conductances[l] {
                guard c.planes == 1 || c.planes == 2, c.codes.count == c.planes * n else {
                    throw ExportError(.invalidModel, "crossbar layer \(l) (node \(layers[l].node)): \(c.codes.count) conductance codes in \(c.planes) planes for \(n) weights")
                }
                layers[l].conductance = c
            }
        }
        guard !layers.isEmpty else { throw ExportError(.invalidModel, "the program has no crossbar layer: nothing to put on arrays") }
        self.layers = layers

        guard let pl = md.placement else {
            throw ExportError(.noPlacement, "the model has no crossbar placement (which array, row and column holds each weight); freeze it with a target so the placement is stored")
        }
        self.placement = pl
        func bad(_ s: String) -> ExportError { ExportError(.badPlacement, "placement: \(s)") }
        guard pl.arrayRows >= 1, pl.arrayCols >= 2, pl.arrayCount >= 1 else {
            throw bad("arrays must have >= 1 row and >= 2 columns and there must be >= 1 array, got \(pl.arrayCount) arrays of \(pl.arrayRows)x\(pl.arrayCols)")
        }
        let (perArray, o1) = pl.arrayRows.multipliedReportingOverflow(by: pl.arrayCols)
        let (cells, o2) = perArray.multipliedReportingOverflow(by: pl.arrayCount)
        guard !o1, !o2, cells <= Self.maxCells else {
            throw ExportError(.tooLarge, "\(pl.arrayCount) arrays of \(pl.arrayRows)x\(pl.arrayCols) cells exceed the export limit of \(Self.maxCells) cells")
        }
        var occupied = [Bool](repeating: false, count: cells)
        var covered = layers.map { [Bool](repeating: false, count: $0.params.weights.count) }
        var rowTile: [Int] = []
        for (ti, t) in pl.tiles.enumerated() {
            func tbad(_ s: String) -> ExportError { bad("tile \(ti) (layer \(t.layer), array \(t.array)): \(s)") }
            guard t.layer >= 0, t.layer < layers.count else { throw tbad("layer out of range 0..<\(layers.count)") }
            guard t.array >= 0, t.array < pl.arrayCount else { throw tbad("array out of range 0..<\(pl.arrayCount)") }
            guard t.rows >= 1, t.outputs >= 1, t.rowOffset >= 0, t.colOffset >= 0, t.inputOffset >= 0, t.outputOffset >= 0 else {
                throw tbad("negative offset or empty tile")
            }
            // Subtractions of bounded sizes: no overflow whatever the offsets.
            guard t.rows <= pl.arrayRows, t.outputs <= pl.arrayCols, t.rowOffset <= pl.arrayRows - t.rows,
                  t.colOffset <= pl.arrayCols - 2 * t.outputs else {
                throw tbad("rows \(t.rowOffset)+\(t.rows), columns \(t.colOffset)+2*\(t.outputs) exceed the \(pl.arrayRows)x\(pl.arrayCols) array")
            }
            let c = layers[t.layer].params
            guard t.inputOffset <= c.fanIn - t.rows, t.outputOffset <= c.outChannels - t.outputs else {
                throw tbad("inputs \(t.inputOffset)+\(t.rows), outputs \(t.outputOffset)+\(t.outputs) exceed the layer's \(c.fanIn) inputs x \(c.outChannels) outputs")
            }
            guard let rt = c.tiles.firstIndex(where: { $0.rowStart == t.inputOffset && $0.rowCount == t.rows }) else {
                throw tbad("fan-in rows \(t.inputOffset)..<\(t.inputOffset + t.rows) are not one row tile of the program (its ADCs would digitise a different partial sum); program row tiles: \(c.tiles.map { "\($0.rowStart)..<\($0.rowStart + $0.rowCount)" }.joined(separator: ", "))")
            }
            rowTile.append(rt)
            let base = t.array * perArray
            for i in 0..<t.rows {
                let rowBase = base + (t.rowOffset + i) * pl.arrayCols + t.colOffset
                for o in 0..<t.outputs {
                    let cell = rowBase + 2 * o
                    guard !occupied[cell], !occupied[cell + 1] else {
                        throw tbad("shares cells with another tile at row \(t.rowOffset + i), column \(t.colOffset + 2 * o)")
                    }
                    occupied[cell] = true; occupied[cell + 1] = true
                    let w = (t.outputOffset + o) * c.fanIn + t.inputOffset + i
                    guard !covered[t.layer][w] else {
                        throw tbad("weight (input \(t.inputOffset + i), output \(t.outputOffset + o)) is placed twice")
                    }
                    covered[t.layer][w] = true
                }
            }
        }
        for l in layers.indices {
            if let miss = covered[l].firstIndex(of: false) {
                let fanIn = layers[l].params.fanIn
                throw bad("crossbar layer \(l) (node \(layers[l].node)): weight (input \(miss % fanIn), output \(miss / fanIn)) is not placed")
            }
        }
        self.rowTile = rowTile
    }

    /// Calls `body(tile, array, row, colPlus, layer, input, output)` for every placed pair, in
    /// placement-tile order, rows then outputs.
    func forEachPair(_ body: (_ tile: Int, _ array: Int, _ row: Int, _ colPlus: Int, _ layer: Int, _ input: Int, _ output: Int) -> Void) {
        for (ti, t) in placement.tiles.enumerated() {
            for i in 0..<t.rows {
                for o in 0..<t.outputs {
                    body(ti, t.array, t.rowOffset + i, t.colOffset + 2 * o, t.layer, t.inputOffset + i, t.outputOffset + o)
                }
            }
        }
    }
}
