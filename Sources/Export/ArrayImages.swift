// Per physical array: the weight-code image, the conductance-code image (when the model stores
// conductance codes) and the mask image. docs/EXPORT.md section 3.

public enum ArrayImages {
    /// Cells (8-bit lanes) per 64-bit word of the weight and conductance images.
    public static let cellLanes = 8
    public static let cellWordBits = 64
    /// Cells (1-bit lanes) per 32-bit word of the mask image.
    public static let maskLanes = 32
    public static let maskWordBits = 32

    /// Words per array row of the weight/conductance images: `ceil(cols / 8)`.
    public static func cellWordsPerRow(_ cols: Int) -> Int { (cols + cellLanes - 1) / cellLanes }
    /// Words per array row of the mask image: `ceil(cols / 32)`.
    public static func maskWordsPerRow(_ cols: Int) -> Int { (cols + maskLanes - 1) / maskLanes }

    /// Cell bytes of every array, row-major, rows padded to whole words (the image bytes of all
    /// arrays back to back). `value(layer, index, plus)` gives the byte of the G+ (`plus`) or
    /// G- cell of weight `index` of `layer`.
    static func cells(_ l: ExportLayout, _ value: (ExportLayer, Int, Bool) -> UInt8) -> [[UInt8]] {
        let pl = l.placement
        let stride = cellWordsPerRow(pl.arrayCols) * cellLanes
        var out = [[UInt8]](repeating: [UInt8](repeating: 0, count: pl.arrayRows * stride), count: pl.arrayCount)
        l.forEachPair { _, a, row, col, layer, input, output in
            let lay = l.layers[layer]
            let w = output * lay.params.fanIn + input
            out[a][row * stride + col] = value(lay, w, true)
            out[a][row * stride + col + 1] = value(lay, w, false)
        }
        return out
    }

    static func header(_ l: ExportLayout, _ a: Int, _ what: String) -> [String] {
        let pl = l.placement
        let layers = Set(pl.tiles.filter { $0.array == a }.map(\.layer)).sorted()
        return ["rram-edge export: array \(a) of \(pl.arrayCount), \(pl.arrayRows) rows x \(pl.arrayCols) columns: \(what)",
                "layers on this array: \(layers.isEmpty ? "none" : layers.map(String.init).joined(separator: " "))"]
    }

    /// Effective weight codes (Int8, two's complement) on the G+ cell of each pair, 0 on the G- cell
    /// and on unused cells. 64-bit words of 8 lanes; lane j (bits 8j+7..8j) = column 8k+j.
    public static func weights(_ l: ExportLayout) -> [MemoryImage] {
        let cols = l.placement.arrayCols
        return cells(l) { lay, w, plus in plus ? UInt8(bitPattern: lay.params.weights[w]) : 0 }.enumerated().map { a, bytes in
            MemoryImage(wordBits: cellWordBits, depth: bytes.count / 8, bytes: bytes,
                        comments: header(l, a, "effective weight codes (int8, two's complement) on the G+ column of each pair, G- column 0, unused 0")
                            + ["word = row * \(cellWordsPerRow(cols)) + column / 8; lane j = bits 8j+7..8j = column 8*(word % \(cellWordsPerRow(cols))) + j"])
        }
    }

    /// Conductance codes (u8): plane 0 (G+) on the G+ cell, plane 1 (G-) on the G- cell; a
    /// one-plane layer has its codes on the G+ cell and 0 on the G- cell; layers without codes
    /// and unused cells are 0. Nil when the model stores no conductance codes.
    public static func conductances(_ l: ExportLayout) -> [MemoryImage]? {
        guard l.layers.contains(where: { $0.conductance != nil }) else { return nil }
        let cols = l.placement.arrayCols
        return cells(l) { lay, w, plus in
            guard let c = lay.conductance else { return 0 }
            if plus { return c.codes[w] }
            return c.planes == 2 ? c.codes[lay.params.weights.count + w] : 0
        }.enumerated().map { a, bytes in
            MemoryImage(wordBits: cellWordBits, depth: bytes.count / 8, bytes: bytes,
                        comments: header(l, a, "conductance codes (u8): G+ plane on the G+ column, G- plane on the G- column, unused 0")
                            + ["word = row * \(cellWordsPerRow(cols)) + column / 8; lane j = bits 8j+7..8j = column 8*(word % \(cellWordsPerRow(cols))) + j"])
        }
    }

    /// One bit per cell: 1 = the cell belongs to a kept pair (both cells of the pair), 0 = pruned
    /// pair or unused cell. 32-bit words; bit j = column 32k+j.
    public static func masks(_ l: ExportLayout) -> [MemoryImage] {
        let pl = l.placement
        let wpr = maskWordsPerRow(pl.arrayCols)
        var imgs = (0..<pl.arrayCount).map { a in
            MemoryImage(wordBits: maskWordBits, depth: pl.arrayRows * wpr,
                        comments: header(l, a, "mask, 1 bit per cell: 1 = cell of a kept pair, 0 = pruned pair or unused")
                            + ["word = row * \(wpr) + column / 32; bit j = column 32*(word % \(wpr)) + j"])
        }
        l.forEachPair { _, a, row, col, layer, input, output in
            let lay = l.layers[layer]
            guard lay.kept(output * lay.params.fanIn + input) else { return }
            for c in [col, col + 1] {
                imgs[a].bytes[row * wpr * 4 + c / 8] |= 1 << UInt8(c % 8)
            }
        }
        return imgs
    }
}
