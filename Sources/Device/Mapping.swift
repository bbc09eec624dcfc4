// Crossbar mapping: places a network's weight matrices on arrays. A layer of fanIn x fanOut
// uses fanIn rows and 2 * fanOut columns (G+ and G- of output o in adjacent columns). A layer
// taller than an array is cut into row tiles (each tile's partial sum is digitised by its own
// ADCs and the partial sums are added digitally); a layer wider than an array is cut into
// column blocks of at most floor(cols / 2) outputs. The blocks are packed onto arrays by
// first-fit decreasing-height shelf packing (docs/DEVICE.md).

/// One weight matrix: `fanIn` inputs (rows) by `fanOut` outputs (differential column pairs).
public struct LayerShape: Codable, Sendable, Equatable {
    public var name: String
    public var fanIn: Int
    public var fanOut: Int
    public init(name: String, fanIn: Int, fanOut: Int) { self.name = name; self.fanIn = fanIn; self.fanOut = fanOut }
}

/// One rectangle of one layer on one array. Input i (inputOffset..<inputOffset+rows) uses row
/// rowOffset + (i - inputOffset); output o (outputOffset..<outputOffset+outputs) uses columns
/// colOffset + 2*(o - outputOffset) (G+) and colOffset + 2*(o - outputOffset) + 1 (G-).
public struct TilePlacement: Codable, Sendable, Equatable {
    public var layer: Int
    public var array: Int
    public var rowOffset: Int
    public var rows: Int
    public var inputOffset: Int
    public var colOffset: Int
    public var outputOffset: Int
    public var outputs: Int

    public init(layer: Int, array: Int, rowOffset: Int, rows: Int, inputOffset: Int, colOffset: Int,
                outputOffset: Int, outputs: Int) {
        self.layer = layer; self.array = array; self.rowOffset = rowOffset; self.rows = rows
        self.inputOffset = inputOffset; self.colOffset = colOffset; self.outputOffset = outputOffset; self.outputs = outputs
    }

    /// Columns used: 2 * outputs.
    public var cols: Int { 2 * outputs }
}

/// Where every weight of a network lives on the arrays.
public struct CrossbarPlacement: Codable, Sendable, Equatable {
    public var arrayRows: Int
    public var arrayCols: Int
    public var layers: [LayerShape]
    public var tiles: [TilePlacement]
    public var arrayCount: Int

    public init(arrayRows: Int, arrayCols: Int, layers: [LayerShape], tiles: [TilePlacement], arrayCount: Int) {
        self.arrayRows = arrayRows; self.arrayCols = arrayCols; self.layers = layers; self.tiles = tiles
        self.arrayCount = arrayCount
    }

    /// The tile holding weight (input, output) of `layer`, or nil.
    public func tile(layer: Int, input: Int, output: Int) -> TilePlacement? {
        tiles.first {
            $0.layer == layer && input >= $0.inputOffset && input - $0.inputOffset < $0.rows
                && output >= $0.outputOffset && output - $0.outputOffset < $0.outputs
        }
    }

    /// The cells of weight (input, output) of `layer`. For a weight that is not placed (an
    /// out-of-range index) every field is -1.
    public func cell(layer: Int, input: Int, output: Int) -> (array: Int, row: Int, colPlus: Int, colMinus: Int) {
        guard let t = tile(layer: layer, input: input, output: output) else { return (-1, -1, -1, -1) }
        // Wrapping arithmetic: an unvalidated (decoded) placement must not trap here.
        let c = t.colOffset &+ 2 &* (output &- t.outputOffset)
        return (t.array, t.rowOffset &+ (input &- t.inputOffset), c, c &+ 1)
    }

    /// Cells used / cells available, per array.
    public func utilisation() -> [Double] {
        guard arrayCount > 0, arrayRows > 0, arrayCols > 0 else { return [] }
        var used = [Double](repeating: 0, count: arrayCount)
        for t in tiles where t.array >= 0 && t.array < arrayCount { used[t.array] += Double(t.rows) * Double(t.cols) }
        let cap = Double(arrayRows) * Double(arrayCols)
        return used.map { $0 / cap }
    }

    /// Checks geometry (tiles inside arrays, no two tiles overlap) and coverage (every weight
    /// of every layer in exactly one tile). All size arithmetic is overflow-checked.
    public func validate() throws {
        guard arrayRows >= 1, arrayCols >= 2 else {
            throw DeviceError("placement: array must have >= 1 row and >= 2 columns, got \(arrayRows)x\(arrayCols)")
        }
        guard arrayCount >= 0 else { throw DeviceError("placement: arrayCount must be >= 0, got \(arrayCount)") }
        for (li, l) in layers.enumerated() {
            guard l.fanIn >= 1, l.fanOut >= 1 else {
                throw DeviceError("placement: layer \(li) ('\(l.name)') needs fanIn >= 1 and fanOut >= 1, got \(l.fanIn)x\(l.fanOut)")
            }
            guard !l.fanIn.multipliedReportingOverflow(by: l.fanOut).overflow else {
                throw DeviceError("placement: layer \(li) ('\(l.name)') fanIn x fanOut overflows")
            }
        }
        var covered = [Int](repeating: 0, count: layers.count)
        for (ti, t) in tiles.enumerated() {
            func bad(_ s: String) -> DeviceError { DeviceError("placement: tile \(ti) (layer \(t.layer), array \(t.array)): \(s)") }
            guard t.layer >= 0, t.layer < layers.count else { throw bad("layer index out of range 0..<\(layers.count)") }
            guard t.array >= 0, t.array < arrayCount else { throw bad("array index out of range 0..<\(arrayCount)") }
            guard t.rows >= 1, t.outputs >= 1 else { throw bad("rows and outputs must be >= 1") }
            let (tc, o1) = t.outputs.multipliedReportingOverflow(by: 2)
            let (rowEnd, o2) = t.rowOffset.addingReportingOverflow(t.rows)
            let (colEnd, o3) = t.colOffset.addingReportingOverflow(o1 ? 0 : tc)
            guard !o1, !o2, !o3, t.rowOffset >= 0, t.colOffset >= 0, rowEnd <= arrayRows, colEnd <= arrayCols else {
                throw bad("rows \(t.rowOffset)+\(t.rows), columns \(t.colOffset)+2*\(t.outputs) exceed the \(arrayRows)x\(arrayCols) array")
            }
            let l = layers[t.layer]
            let (inEnd, o4) = t.inputOffset.addingReportingOverflow(t.rows)
            let (outEnd, o5) = t.outputOffset.addingReportingOverflow(t.outputs)
            guard !o4, !o5, t.inputOffset >= 0, t.outputOffset >= 0, inEnd <= l.fanIn, outEnd <= l.fanOut else {
                throw bad("inputs \(t.inputOffset)+\(t.rows), outputs \(t.outputOffset)+\(t.outputs) exceed the layer's \(l.fanIn)x\(l.fanOut)")
            }
            let (area, o6) = t.rows.multipliedReportingOverflow(by: t.outputs)
            let (sum, o7) = covered[t.layer].addingReportingOverflow(area)
            guard !o6, !o7 else { throw bad("tile area overflows") }
            covered[t.layer] = sum
        }
        // Overlaps: pairwise rectangle tests among the tiles of one array (cell space) and among
        // the tiles of one layer (weight space).
        var byArray = [Int: [Int]](), byLayer = [Int: [Int]]()
        for (i, t) in tiles.enumerated() { byArray[t.array, default: []].append(i); byLayer[t.layer, default: []].append(i) }
        for (_, group) in byArray.sorted(by: { $0.key < $1.key }) {
            for x in group.indices {
                for y in group.indices where y > x {
                    let (i, j) = (group[x], group[y])
                    let a = tiles[i], b = tiles[j]
                    if a.rowOffset < b.rowOffset + b.rows && b.rowOffset < a.rowOffset + a.rows
                        && a.colOffset < b.colOffset + b.cols && b.colOffset < a.colOffset + a.cols {
                        throw DeviceError("placement: tiles \(i) and \(j) share cells on array \(a.array)")
                    }
                }
            }
        }
        for (_, group) in byLayer.sorted(by: { $0.key < $1.key }) {
            for x in group.indices {
                for y in group.indices where y > x {
                    let (i, j) = (group[x], group[y])
                    let a = tiles[i], b = tiles[j]
                    if a.inputOffset < b.inputOffset + b.rows && b.inputOffset < a.inputOffset + a.rows
                        && a.outputOffset < b.outputOffset + b.outputs && b.outputOffset < a.outputOffset + a.outputs {
                        throw DeviceError("placement: tiles \(i) and \(j) hold the same weights of layer \(a.layer)")
                    }
                }
            }
        }
        // Disjoint tiles inside the layer whose areas add up to the layer's area cover it exactly.
        for (li, l) in layers.enumerated() where covered[li] != l.fanIn * l.fanOut {
            throw DeviceError("placement: layer \(li) ('\(l.name)') has \(covered[li]) of \(l.fanIn * l.fanOut) weights placed")
        }
    }
}

public enum CrossbarMapper {
    /// Most tiles a placement may have (a network needing more is far beyond any target).
    public static let maxTiles = 1 << 16

    /// Places `layers` on arrays of arrayRows x arrayCols cells (deterministic).
    ///
    /// 1. Cut each layer into blocks: row tiles of at most `arrayRows` inputs (the last holds the
    ///    remainder) times column blocks of at most floor(arrayCols / 2) outputs.
    /// 2. Sort blocks by height (descending), ties by (layer, input offset, output offset).
    /// 3. Shelf first-fit: put each block on the first shelf (of the first array, in order) that
    ///    is at least as tall and has room to its right; else open a new shelf below the last
    ///    shelf of the first array with room; else open a new array.
    public static func place(_ layers: [LayerShape], arrayRows: Int, arrayCols: Int) throws -> CrossbarPlacement {
        guard arrayRows >= 1, arrayCols >= 2 else {
            throw DeviceError("mapping: arrays must have >= 1 row and >= 2 columns, got \(arrayRows)x\(arrayCols)")
        }
        let maxOut = arrayCols / 2
        struct Block { var layer: Int; var inputOffset: Int; var rows: Int; var outputOffset: Int; var outputs: Int }
        var blocks: [Block] = []
        var total = 0
        for (li, l) in layers.enumerated() {
            guard l.fanIn >= 1, l.fanOut >= 1 else {
                throw DeviceError("mapping: layer \(li) ('\(l.name)') needs fanIn >= 1 and fanOut >= 1, got \(l.fanIn)x\(l.fanOut)")
            }
            let (w, o) = l.fanIn.multipliedReportingOverflow(by: l.fanOut)
            let (t, o2) = total.addingReportingOverflow(w)
            guard !o, !o2, t <= 1 << 40 else { throw DeviceError("mapping: layer \(li) ('\(l.name)') is too large (\(l.fanIn)x\(l.fanOut))") }
            total = t
            let rowTiles = (l.fanIn - 1) / arrayRows + 1, colBlocks = (l.fanOut - 1) / maxOut + 1
            let (nb, o3) = rowTiles.multipliedReportingOverflow(by: colBlocks)
            guard !o3, blocks.count + nb <= maxTiles else {
                throw DeviceError("mapping: layer \(li) ('\(l.name)') brings the placement over \(maxTiles) tiles on \(arrayRows)x\(arrayCols) arrays")
            }
            var i0 = 0
            while i0 < l.fanIn {
                let r = min(arrayRows, l.fanIn - i0)
                var o0 = 0
                while o0 < l.fanOut {
                    let n = min(maxOut, l.fanOut - o0)
                    blocks.append(Block(layer: li, inputOffset: i0, rows: r, outputOffset: o0, outputs: n))
                    o0 += n
                }
                i0 += r
            }
        }
        let order = blocks.indices.sorted { a, b in
            let x = blocks[a], y = blocks[b]
            if x.rows != y.rows { return x.rows > y.rows }
            if x.layer != y.layer { return x.layer < y.layer }
            if x.inputOffset != y.inputOffset { return x.inputOffset < y.inputOffset }
            return x.outputOffset < y.outputOffset
        }
        struct Shelf { var y: Int; var height: Int; var used: Int }
        var arrays: [[Shelf]] = []
        var tiles: [TilePlacement] = []
        tiles.reserveCapacity(blocks.count)
        for bi in order {
            let b = blocks[bi]
            let w = 2 * b.outputs
            var placed: (array: Int, y: Int, x: Int)?
            search: for a in arrays.indices {
                for s in arrays[a].indices where arrays[a][s].height >= b.rows && arrays[a][s].used + w <= arrayCols {
                    placed = (a, arrays[a][s].y, arrays[a][s].used)
                    arrays[a][s].used += w
                    break search
                }
                let top = arrays[a].last.map { $0.y + $0.height } ?? 0
                if top + b.rows <= arrayRows {
                    arrays[a].append(Shelf(y: top, height: b.rows, used: w))
                    placed = (a, top, 0)
                    break search
                }
            }
            if placed == nil {
                arrays.append([Shelf(y: 0, height: b.rows, used: w)])
                placed = (arrays.count - 1, 0, 0)
            }
            let p = placed!
            tiles.append(TilePlacement(layer: b.layer, array: p.array, rowOffset: p.y, rows: b.rows, inputOffset: b.inputOffset,
                                       colOffset: p.x, outputOffset: b.outputOffset, outputs: b.outputs))
        }
        // Report tiles in (layer, input, output) order: a stable, readable listing.
        tiles.sort { ($0.layer, $0.inputOffset, $0.outputOffset) < ($1.layer, $1.inputOffset, $1.outputOffset) }
        return CrossbarPlacement(arrayRows: arrayRows, arrayCols: arrayCols, layers: layers, tiles: tiles, arrayCount: arrays.count)
    }
}

/// Differential weights of one layer in µS, index o * fanIn + i (PyTorch weight order; a conv's
/// fan-in index i = (c * kh + y) * kw + x): on = G+_formed - G-_formed (the pair kept),
/// off = G+_reset - G-_reset (the pair pruned). `read` nil = nominal, k = k-th read.
/// An out-of-range layer index gives empty arrays.
@inlinable
public func differentialWeights(placement: CrossbarPlacement, layer: Int, source: some ConductanceSource,
                                read: Int?, threads: Int = 1) -> (on: [Float], off: [Float]) {
    guard layer >= 0, layer < placement.layers.count else { return ([], []) }
    let l = placement.layers[layer]
    let (n, o) = l.fanIn.multipliedReportingOverflow(by: l.fanOut)
    guard !o, n > 0 else { return ([], []) }
    // Tiles of this layer that lie inside it (an unvalidated placement must not trap).
    let tiles = placement.tiles.filter { t in
        t.layer == layer && t.rows >= 0 && t.outputs >= 0 && t.inputOffset >= 0 && t.outputOffset >= 0
            && t.rows <= l.fanIn - t.inputOffset && t.outputs <= l.fanOut - t.outputOffset
            && t.colOffset >= 0 && t.colOffset <= Int.max / 2 - t.outputs && t.rowOffset >= 0 && t.rowOffset <= Int.max - t.rows
    }
    var on = [Float](repeating: 0, count: n), off = [Float](repeating: 0, count: n)
    let fanIn = l.fanIn
    on.withUnsafeMutableBufferPointer { onBuf in
        off.withUnsafeMutableBufferPointer { offBuf in
            let onB = SendableBuffer(onBuf), offB = SendableBuffer(offBuf)
            // One output per task: outputs write disjoint index ranges o * fanIn + i.
            parallelRows(l.fanOut, threads: threads) { out in
                for t in tiles where out >= t.outputOffset && out - t.outputOffset < t.outputs {
                    let cp = t.colOffset + 2 * (out - t.outputOffset)
                    for ii in 0..<t.rows {
                        let r = t.rowOffset + ii, k = out * fanIn + t.inputOffset + ii
                        let gpOn = source.conductance(array: t.array, row: r, col: cp, state: .formed, read: read)
                        let gmOn = source.conductance(array: t.array, row: r, col: cp + 1, state: .formed, read: read)
                        let gpOff = source.conductance(array: t.array, row: r, col: cp, state: .reset, read: read)
                        let gmOff = source.conductance(array: t.array, row: r, col: cp + 1, state: .reset, read: read)
                        onB[k] = Float(gpOn - gmOn)
                        offB[k] = Float(gpOff - gmOff)
                    }
                }
            }
        }
    }
    return (on, off)
}

/// Signed weight code of a differential value `g` (µS, as `differentialWeights` returns it) with
/// step `lsb` µS: `clamp(round_halfAway(Double(g) / lsb), -top, top)`; a non-finite quotient
/// (never produced by a valid profile) gives 0 for NaN and the clamp for ±inf, so this never traps.
@inlinable @inline(__always)
public func differentialCode(_ g: Float, lsb: Double, top: Double) -> Int8 {
    let v = (Double(g) / lsb).rounded(.toNearestOrAwayFromZero)
    if v.isNaN { return 0 }
    return Int8(Swift.min(Swift.max(v, -top), top))
}

/// Quantized differential weights of one layer: `differentialCode` of every (on, off) value of
/// `differentialWeights(placement:layer:source:read:)` — the same conductances, the same Float
/// difference — computed one weight at a time (no Float arrays), index o * fanIn + i.
/// `bits` 2...8 (top = 2^(bits-1) - 1). Weights outside every tile get code 0. Used by freeze to
/// make hardware-TO weight codes and by the model reader to regenerate them (docs/FORMAT.md).
/// nil for an out-of-range layer, bits outside 2...8, or a non-positive/non-finite LSB.
public func differentialCodes(placement: CrossbarPlacement, layer: Int, source: some ConductanceSource,
                              read: Int? = nil, lsbMicroSiemens lsb: Double, bits: Int) -> (on: [Int8], off: [Int8])? {
    guard layer >= 0, layer < placement.layers.count, (2...8).contains(bits), lsb.isFinite, lsb > 0 else { return nil }
    let l = placement.layers[layer]
    let (n, o) = l.fanIn.multipliedReportingOverflow(by: l.fanOut)
    guard !o, n > 0, l.fanIn > 0 else { return nil }
    let top = Double((1 << (bits - 1)) - 1)
    let tiles = placement.tiles.filter { t in
        t.layer == layer && t.rows >= 0 && t.outputs >= 0 && t.inputOffset >= 0 && t.outputOffset >= 0
            && t.rows <= l.fanIn - t.inputOffset && t.outputs <= l.fanOut - t.outputOffset
            && t.colOffset >= 0 && t.colOffset <= Int.max / 2 - t.outputs && t.rowOffset >= 0 && t.rowOffset <= Int.max - t.rows
    }
    var on = [Int8](repeating: 0, count: n), off = [Int8](repeating: 0, count: n)
    for t in tiles {
        for out in t.outputOffset..<(t.outputOffset + t.outputs) {
            let cp = t.colOffset + 2 * (out - t.outputOffset)
            for ii in 0..<t.rows {
                let r = t.rowOffset + ii, k = out * l.fanIn + t.inputOffset + ii
                let gpOn = source.conductance(array: t.array, row: r, col: cp, state: .formed, read: read)
                let gmOn = source.conductance(array: t.array, row: r, col: cp + 1, state: .formed, read: read)
                let gpOff = source.conductance(array: t.array, row: r, col: cp, state: .reset, read: read)
                let gmOff = source.conductance(array: t.array, row: r, col: cp + 1, state: .reset, read: read)
                on[k] = differentialCode(Float(gpOn - gmOn), lsb: lsb, top: top)
                off[k] = differentialCode(Float(gpOff - gmOff), lsb: lsb, top: top)
            }
        }
    }
    return (on, off)
}
