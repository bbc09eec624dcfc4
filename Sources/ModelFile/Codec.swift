// Encoding and decoding of a ModelBundle: metadata, graph, tensors, placement.
import FixedPoint
import Kernels

// Graph section record sizes (see docs/FORMAT.md section 6).
private let none32 = UInt32.max

extension ModelBundle {
    // MARK: encode

    /// The file bytes. Deterministic: the same bundle always gives the same bytes.
    public func encode() throws -> [UInt8] {
        let p = program
        let cross = crossbarNodes
        func bad(_ m: String) -> ModelFileError { ModelFileError(.unencodable, section: "writer", offset: 0, m) }
        guard metadata.masks.isEmpty || metadata.masks.count == cross.count else {
            throw bad("\(metadata.masks.count) masks for \(cross.count) crossbar layers")
        }
        guard metadata.conductances.isEmpty || metadata.conductances.count == cross.count else {
            throw bad("\(metadata.conductances.count) conductance entries for \(cross.count) crossbar layers")
        }
        guard metadata.programming.maskFlips.count == cross.count else {
            throw bad("\(metadata.programming.maskFlips.count) mask-flip counts for \(cross.count) crossbar layers")
        }
        if let k = metadata.extra.keys.first(where: { ModelBundle.reservedKeys.contains($0) }) {
            throw bad("extra metadata key '\(k)' is reserved")
        }
        // Never write a file the reader would refuse.
        do { try p.validate() } catch {
            throw ModelFileError(.invalidProgram, section: "writer", offset: 0, "\(error)")
        }
        if let i = metadata.conductances.firstIndex(where: { $0.map { !(1...2).contains($0.planes) } ?? false }) {
            throw bad("conductance codes of crossbar layer \(i): planes must be 1 or 2")
        }
        guard metadata.provenance.epochs >= 0, metadata.programming.cellsToReset >= 0,
              metadata.programming.maskFlips.allSatisfy({ $0 >= 0 }) else {
            throw bad("epochs, cells to reset and mask flips must be non-negative")
        }

        // Metadata.
        var meta = metadata.extra
        meta[Keys.task] = .string(metadata.task)
        meta[Keys.targetName] = .string(metadata.targetName)
        meta[Keys.targetHash] = .string(metadata.targetHash)
        let pv = metadata.provenance
        meta[Keys.seed] = .u64(pv.seed)
        meta[Keys.epochs] = .i64(Int64(pv.epochs))
        meta[Keys.dataset] = .string(pv.dataset)
        meta[Keys.floatAccuracy] = .f64(pv.floatAccuracy)
        meta[Keys.integerAccuracy] = .f64(pv.integerAccuracy)
        meta[Keys.toolVersion] = .string(pv.toolVersion)
        if let c = pv.created { meta[Keys.created] = .string(c) }
        meta[Keys.maskFlips] = .array(metadata.programming.maskFlips.map { .i64(Int64($0)) })
        meta[Keys.cellsToReset] = .i64(Int64(metadata.programming.cellsToReset))
        let metaBytes = try MetadataCodec.encode(meta)

        // Graph + tensors.
        var tensors: [TensorCodec.Pending] = []
        func addTensor(_ name: String, _ dtype: TensorDType, _ dims: [Int], _ data: [UInt8]) throws -> UInt32 {
            guard let n = dtype.byteLength(count: dims.reduce(1, *)), n == data.count else {
                throw bad("tensor \(name): \(data.count) bytes for dims \(dims)")
            }
            tensors.append(.init(name: name, dtype: dtype, dims: dims, data: data))
            return UInt32(tensors.count - 1)
        }
        var g = ByteWriter()
        g.u32(try ByteWriter.u32(p.arrayRows, "arrayRows"))
        g.u32(try ByteWriter.u32(p.input, "input"))
        g.u32(try ByteWriter.u32(p.output, "output"))
        g.u32(try ByteWriter.u32(p.tensors.count, "tensor count"))
        g.u32(try ByteWriter.u32(p.nodes.count, "node count"))
        for t in p.tensors {
            g.u32(try ByteWriter.u32(t.shape.c, "c")); g.u32(try ByteWriter.u32(t.shape.h, "h")); g.u32(try ByteWriter.u32(t.shape.w, "w"))
            g.u8(t.kind.rawValue)
            guard (0...255).contains(t.bits) else { throw bad("tensor bits \(t.bits)") }
            g.u8(UInt8(t.bits)); g.u16(0)
        }
        var layer = 0
        func affinePayload(_ i: Int, _ a: AffineQuantParams) throws {
            guard a.multiplier.count == a.shift.count, a.shift.count == a.offset.count, (0...255).contains(a.outBits) else {
                throw bad("node \(i): per-channel parameter counts differ or outBits \(a.outBits)")
            }
            g.u8(UInt8(a.outBits)); g.u8(a.rounding.rawValue); g.u16(0)
            g.u32(try ByteWriter.u32(a.multiplier.count, "channels"))
            g.u32(try addTensor("n\(i).multiplier", .i32, [a.multiplier.count], TensorCodec.bytes(a.multiplier)))
            g.u32(try addTensor("n\(i).shift", .i32, [a.shift.count], TensorCodec.bytes(a.shift)))
            g.u32(try addTensor("n\(i).offset", .i64, [a.offset.count], TensorCodec.bytes(a.offset)))
        }
        func crossbarPayload(_ i: Int, _ c: CrossbarParams, _ prefix: String) throws {
            for v in [c.inChannels, c.outChannels, c.kernelH, c.kernelW, c.strideH, c.strideW, c.padH, c.padW] {
                g.u32(try ByteWriter.u32(v, "crossbar geometry"))
            }
            guard (0...255).contains(c.weightBits) else { throw bad("node \(i): weightBits \(c.weightBits)") }
            g.u8(UInt8(c.weightBits)); g.u8(0); g.u16(0)
            g.f64(c.weightLSBMicroSiemens)
            let dims = [c.outChannels, c.fanIn]
            g.u32(try addTensor("n\(i).\(prefix)weights", .i8, dims, TensorCodec.bytes(c.weights)))
            if let m = metadata.masks.isEmpty ? nil : metadata.masks[layer] {
                guard m.count == c.outChannels * c.fanIn else { throw bad("node \(i): mask has \(m.count) bits") }
                g.u32(try addTensor("n\(i).\(prefix)mask", .bits, dims, m.bytes))
            } else { g.u32(none32) }
            if let k = metadata.conductances.isEmpty ? nil : metadata.conductances[layer] {
                g.u32(try addTensor("n\(i).\(prefix)conductance", .u8, [k.planes] + dims, k.codes))
            } else { g.u32(none32) }
            g.u32(try ByteWriter.u32(c.tiles.count, "tile count"))
            for t in c.tiles {
                g.u32(try ByteWriter.u32(t.rowStart, "rowStart")); g.u32(try ByteWriter.u32(t.rowCount, "rowCount"))
                g.i32(t.multiplier); g.i32(t.shift)
                guard (0...255).contains(t.bits) else { throw bad("node \(i): ADC bits \(t.bits)") }
                g.u8(t.rounding.rawValue); g.u8(UInt8(t.bits)); g.u16(0)
            }
            layer += 1
        }
        for (i, node) in p.nodes.enumerated() {
            g.u8(node.op.kind.rawValue)
            guard node.inputs.count <= FormatLimits.maxNodeInputs else { throw bad("node \(i): \(node.inputs.count) inputs") }
            g.u8(UInt8(node.inputs.count)); g.u16(0)
            g.u32(try ByteWriter.u32(node.output, "output"))
            for x in node.inputs { g.u32(try ByteWriter.u32(x, "input")) }
            switch node.op {
            case .inputQuant(let a), .activation(let a):
                try affinePayload(i, a)
            case .maxPool(let m):
                for v in [m.kh, m.kw, m.sh, m.sw] { g.u32(try ByteWriter.u32(v, "pool")) }
            case .crossbar(let c):
                try crossbarPayload(i, c, "")
            case .rnn(let r):
                try crossbarPayload(i, r.input, "")
                try crossbarPayload(i, r.recurrent, "recurrent.")
                g.i32(r.inputMultiplier); g.i32(r.recurrentMultiplier); g.i32(r.stateShift)
                guard (0...255).contains(r.hiddenBits) else { throw bad("node \(i): hiddenBits \(r.hiddenBits)") }
                g.u8(UInt8(r.hiddenBits)); g.u8(r.hiddenRounding.rawValue); g.u16(0)
                try affinePayload(i, r.output)
            case .flatten:
                break
            }
        }
        let (dir, data) = try TensorCodec.encode(tensors)

        var sections: [(kind: SectionKind, bytes: [UInt8])] = [(.metadata, metaBytes), (.graph, g.bytes), (.tensorDirectory, dir)]
        if let pl = metadata.placement {
            var w = ByteWriter()
            for v in [pl.arrayRows, pl.arrayCols, pl.arrayCount, pl.tiles.count] { w.u32(try ByteWriter.u32(v, "placement")) }
            for t in pl.tiles {
                for v in [t.layer, t.array, t.rowOffset, t.rows, t.inputOffset, t.colOffset, t.outputOffset, t.outputs] {
                    w.u32(try ByteWriter.u32(v, "placement tile"))
                }
            }
            sections.append((.placement, w.bytes))
        }
        sections.append((.tensorData, data))
        return Container.assemble(sections)
    }

    // MARK: decode

    /// Decodes and validates a model file. `name` is used in messages only.
    public static func decode(_ bytes: [UInt8], name: String = "model") throws -> ModelBundle {
        do { return try decodeUnnamed(bytes) } catch var e as ModelFileError {
            e.file = name
            throw e
        }
    }

    static func decodeUnnamed(_ bytes: [UInt8]) throws -> ModelBundle {
        let container = try Container.parse(bytes)
        let metaSec = container.section(.metadata)!, graphSec = container.section(.graph)!
        let dirSec = container.section(.tensorDirectory)!, dataSec = container.section(.tensorData)!
        let meta = try MetadataCodec.decode(bytes, metaSec)
        let entries = try TensorCodec.decode(bytes, dir: dirSec, data: dataSec)
        var (program, masks, conductances) = try GraphCodec.decode(bytes, graphSec, entries)
        let crossCount = program.crossbarLayers.count
        if masks.allSatisfy({ $0 == nil }) { masks = [] }
        if conductances.allSatisfy({ $0 == nil }) { conductances = [] }

        // Metadata interpretation.
        func m(_ k: String) -> ModelFileError { ModelFileError(.badMetadata, section: "metadata", offset: metaSec.offset, k) }
        func str(_ k: String) throws -> String {
            guard case .string(let s)? = meta[k] else { throw m("'\(k)' missing or not a string") }
            return s
        }
        func i64(_ k: String) throws -> Int64 {
            guard case .i64(let v)? = meta[k] else { throw m("'\(k)' missing or not an i64") }
            return v
        }
        func f64(_ k: String) throws -> Double {
            guard case .f64(let v)? = meta[k] else { throw m("'\(k)' missing or not an f64") }
            return v
        }
        guard case .u64(let seed)? = meta[Keys.seed] else { throw m("'\(Keys.seed)' missing or not a u64") }
        var created: String? = nil
        if meta[Keys.created] != nil { created = try str(Keys.created) }
        guard case .array(let flipValues)? = meta[Keys.maskFlips] else { throw m("'\(Keys.maskFlips)' missing or not an array") }
        var flips: [Int] = []
        flips.reserveCapacity(flipValues.count)
        for v in flipValues {
            guard case .i64(let x) = v, x >= 0 else { throw m("'\(Keys.maskFlips)' must hold non-negative i64") }
            flips.append(Int(x))
        }
        guard flips.count == crossCount else { throw m("'\(Keys.maskFlips)' has \(flips.count) entries for \(crossCount) crossbar layers") }
        let epochs = try i64(Keys.epochs), reset = try i64(Keys.cellsToReset)
        guard epochs >= 0, reset >= 0 else { throw m("epochs and cells_to_reset must be non-negative") }
        let provenance = Provenance(seed: seed, epochs: Int(epochs), dataset: try str(Keys.dataset),
                                    floatAccuracy: try f64(Keys.floatAccuracy), integerAccuracy: try f64(Keys.integerAccuracy),
                                    toolVersion: try str(Keys.toolVersion), created: created)
        var extra = meta
        for k in reservedKeys { extra[k] = nil }

        var placement: Placement? = nil
        if let ps = container.section(.placement) { placement = try PlacementCodec.decode(bytes, ps, program) }

        let md = ModelMetadata(task: try str(Keys.task), targetName: try str(Keys.targetName), targetHash: try str(Keys.targetHash),
                               provenance: provenance, programming: ProgrammingCounts(maskFlips: flips, cellsToReset: Int(reset)),
                               placement: placement, masks: masks, conductances: conductances, extra: extra)
        try validateProgram(program, graphSec)
        return ModelBundle(program: program, metadata: md)
    }
}

enum PlacementCodec {
    static func decode(_ b: [UInt8], _ s: SectionEntry, _ p: Program) throws -> Placement {
        var r = ByteReader(b, from: s.offset, to: s.offset + s.length, section: "placement")
        let rows = try r.count("arrayRows", limit: FormatLimits.maxDim), cols = try r.count("arrayCols", limit: FormatLimits.maxDim)
        let arrays = try r.count("arrayCount", limit: FormatLimits.maxDim)
        let n = try r.count("tile count", limit: min(FormatLimits.maxItems, r.remaining / 32))
        let cross = p.crossbarLayers.map { $0.params }
        var tiles: [PlacementTile] = []
        tiles.reserveCapacity(n)
        for i in 0..<n {
            let at = r.pos
            var v = [Int](repeating: 0, count: 8)
            for k in 0..<8 { v[k] = Int(try r.u32("tile field")) }
            let t = PlacementTile(layer: v[0], array: v[1], rowOffset: v[2], rows: v[3], inputOffset: v[4], colOffset: v[5], outputOffset: v[6], outputs: v[7])
            func fail(_ m: String) -> ModelFileError { r.error(.badPlacement, "tile \(i): \(m)", at: at) }
            guard t.layer < cross.count else { throw fail("layer \(t.layer), the program has \(cross.count) crossbar layers") }
            guard t.array < arrays else { throw fail("array \(t.array) of \(arrays)") }
            guard t.rows >= 1, t.outputs >= 1 else { throw fail("empty tile") }
            guard t.rowOffset + t.rows <= rows else { throw fail("rows \(t.rowOffset)+\(t.rows) exceed the array's \(rows)") }
            // Two columns per output: the differential pair (G+ at colOffset + 2k, G- at colOffset + 2k + 1).
            guard t.colOffset + 2 * t.outputs <= cols else { throw fail("columns \(t.colOffset)+2x\(t.outputs) exceed the array's \(cols)") }
            let c = cross[t.layer]
            guard t.inputOffset + t.rows <= c.fanIn else { throw fail("fan-in rows \(t.inputOffset)+\(t.rows) exceed the layer's \(c.fanIn)") }
            guard t.outputOffset + t.outputs <= c.outChannels else { throw fail("outputs \(t.outputOffset)+\(t.outputs) exceed the layer's \(c.outChannels)") }
            tiles.append(t)
        }
        if r.remaining != 0 { throw r.error(.badPlacement, "\(r.remaining) unread bytes after the tiles") }
        return Placement(arrayRows: rows, arrayCols: cols, arrayCount: arrays, tiles: tiles)
    }
}
