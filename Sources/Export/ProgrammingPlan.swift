// The chip programming plan: both cells of every pruned pair (mask bit 0), to be reset to the
// off state, in (array, row, column) order. docs/EXPORT.md section 5.

public struct ProgrammingPlan: Sendable, Equatable {
    /// One cell to reset.
    public struct Step: Sendable, Equatable {
        public var array: Int, row: Int, col: Int
        public var layer: Int, input: Int, output: Int
        /// True for the G+ cell (column `colOffset + 2*(o - outputOffset)`), false for G- (+1).
        public var plus: Bool
    }
    /// Counts for one layer or one array.
    public struct Count: Sendable, Equatable {
        /// Placed differential pairs.
        public var pairs: Int
        /// Pruned pairs (mask bit 0).
        public var pruned: Int
        /// Cells to reset: `2 * pruned`.
        public var cells: Int { 2 * pruned }
    }

    public var steps: [Step]
    public var perLayer: [Count]
    public var perArray: [Count]

    public init(_ l: ExportLayout) {
        let pl = l.placement
        var keyed: [(key: Int, step: Step)] = []
        var perLayer = l.layers.map { Count(pairs: $0.params.weights.count, pruned: 0) }
        var perArray = [Count](repeating: Count(pairs: 0, pruned: 0), count: pl.arrayCount)
        l.forEachPair { _, a, row, col, layer, input, output in
            perArray[a].pairs += 1
            let lay = l.layers[layer]
            guard !lay.kept(output * lay.params.fanIn + input) else { return }
            perLayer[layer].pruned += 1
            perArray[a].pruned += 1
            let key = (a * pl.arrayRows + row) * pl.arrayCols + col
            keyed.append((key, Step(array: a, row: row, col: col, layer: layer, input: input, output: output, plus: true)))
            keyed.append((key + 1, Step(array: a, row: row, col: col + 1, layer: layer, input: input, output: output, plus: false)))
        }
        keyed.sort { $0.key < $1.key }   // keys are distinct (no two pairs share a cell)
        steps = keyed.map(\.step)
        self.perLayer = perLayer
        self.perArray = perArray
    }

    /// `step,array,row,col,layer,input,output,polarity`, steps numbered from 0, polarity `+` / `-`.
    public func csv() -> [UInt8] {
        var out = Array("step,array,row,col,layer,input,output,polarity\n".utf8)
        out.reserveCapacity(steps.count * 28 + 64)
        for (i, s) in steps.enumerated() {
            out.append(contentsOf: Array("\(i),\(s.array),\(s.row),\(s.col),\(s.layer),\(s.input),\(s.output),\(s.plus ? "+" : "-")\n".utf8))
        }
        return out
    }

    /// `scope,index,node,pairs,pruned_pairs,cells_to_reset`: one line per crossbar layer
    /// (`layer`, node index), per array (`array`, node empty) and the total (`total`).
    public func summaryCSV(_ l: ExportLayout) -> [UInt8] {
        var s = "scope,index,node,pairs,pruned_pairs,cells_to_reset\n"
        for (i, c) in perLayer.enumerated() { s += "layer,\(i),\(l.layers[i].node),\(c.pairs),\(c.pruned),\(c.cells)\n" }
        for (a, c) in perArray.enumerated() { s += "array,\(a),,\(c.pairs),\(c.pruned),\(c.cells)\n" }
        let pairs = perLayer.reduce(0) { $0 + $1.pairs }, pruned = perLayer.reduce(0) { $0 + $1.pruned }
        s += "total,,,\(pairs),\(pruned),\(2 * pruned)\n"
        return Array(s.utf8)
    }
}
