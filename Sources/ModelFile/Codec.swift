// Encoding and decoding of a ModelBundle: metadata, graph, tensors, placement.
import Device
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
        guard metadata.weightGenerators.isEmpty || metadata.weightGenerators.count == cross.count else {
            throw bad("\(metadata.weightGenerators.count) weight generators for \(cross.count) crossbar layers")
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
            if !metadata.weightGenerators.isEmpty, metadata.weightGenerators[layer] != nil {
                g.u32(none32)   // 1.1: the weights are regenerated from the layer's generator record
            } else {
                g.u32(try addTensor("n\(i).\(prefix)weights", .i8, dims, TensorCodec.bytes(c.weights)))
            }
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
                // docs/FORMAT.md section 6: two crossbar payloads (two crossbar layers), the combiner, the output quantizer
                try crossbarPayload(i, r.input, "")
                try crossbarPayload(i, r.recurrent, "recurrent.")
                g.i32(r.inputMultiplier); g.i32(r.recurrentMultiplier); g.i32(r.stateShift)
                guard (0...255).contains(r.hiddenBits) else { throw bad("node \(i): hiddenBits \(r.hiddenBits)") }
                g.u8(UInt8(r.hiddenBits)); g.u8(r.hiddenRounding.rawValue); g.u16(0)
                try affinePayload(i, r.output)
            case .flatten:
                break
            case .add(let a):
                try affinePayload(i, a.first)
                guard a.secondMultiplier.count == a.first.multiplier.count else { throw bad("node \(i): second multiplier count") }
                g.u32(try addTensor("n\(i).secondMultiplier", .i32, [a.secondMultiplier.count], TensorCodec.bytes(a.secondMultiplier)))
            case .concat(let c):
                try affinePayload(i, c.quant)
            case .upsampleBilinear(let u):
                guard (0...255).contains(u.factorH), (0...255).contains(u.factorW) else { throw bad("node \(i): upsample factors") }
                g.u8(UInt8(u.factorH)); g.u8(UInt8(u.factorW)); g.u8(u.rounding.rawValue); g.u8(0)
            case .globalAvgPool(let q):
                g.u8(q.rounding.rawValue); g.u8(0); g.u16(0)
            }
        }
        // 1.1 weight generators: each must reproduce the program's codes exactly (checked here, so
        // the writer never stores a record the reader would refuse), stored with the CRC-32 of its codes.
        var genRecords: [(layer: Int, generator: WeightGenerator, crc: UInt32, signTensor: UInt32?)] = []
        if !metadata.weightGenerators.isEmpty {
            var device: StatisticalDevice? = nil
            var devPlacement: CrossbarPlacement? = nil
            for (l, gen) in metadata.weightGenerators.enumerated() {
                guard let gen else { continue }
                let x = p.crossbarLayers[l], node = x.node, c = x.params
                guard let mask = metadata.masks.isEmpty ? nil : metadata.masks[l] else {
                    throw bad("crossbar layer \(l) (node \(node)): a weight generator needs the layer's mask")
                }
                if case .statisticalDevice(let seed) = gen {
                    do {
                        if device == nil || device!.seed != seed {
                            device = try WeightGeneration.device(profileJSON: metadata.deviceProfile, targetHash: metadata.targetHash,
                                                                 placement: metadata.placement, seed: seed)
                        }
                    } catch { throw bad("crossbar layer \(l) (node \(node)): \(error.message)") }
                    if devPlacement == nil, let pl = metadata.placement { devPlacement = WeightGeneration.devicePlacement(pl, p) }
                }
                let codes: (on: [Int8], off: [Int8])
                do { codes = try WeightGeneration.codes(gen, layer: l, params: c, placement: devPlacement, device: device) } catch {
                    throw bad("crossbar layer \(l) (node \(node)): \(error.message)")
                }
                guard mask.count == codes.on.count, WeightGeneration.effective(codes.on, codes.off, mask: mask) == c.weights else {
                    throw bad("crossbar layer \(l) (node \(node)): the \(gen.kindName) generator does not reproduce the layer's weight codes")
                }
                var signTensor: UInt32? = nil
                if case .signedConstant(_, .bits(let b)) = gen {
                    signTensor = try addTensor("n\(node).\(x.part == 1 ? "recurrent." : "")signs", .bits, [c.outChannels, c.fanIn], b.bytes)
                }
                genRecords.append((l, gen, WeightGeneration.crc(codes.on, codes.off), signTensor))
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
        let usesGenerators = !metadata.weightGenerators.isEmpty || !metadata.deviceProfile.isEmpty
        if usesGenerators {
            sections.append((.weightGenerators, try GeneratorCodec.encode(profile: metadata.deviceProfile, records: genRecords)))
        }
        sections.append((.tensorData, data))
        // The lowest minor whose features are used: older-format files stay byte-identical.
        let usesGraphOps = p.nodes.contains { $0.op.kind.isGraphOp }
        return Container.assemble(sections, minor: usesGraphOps ? FormatConstants.graphOpsMinor : usesGenerators ? 1 : 0)
    }

    // MARK: decode

    /// Decodes and validates a model file. `name` is used in messages only.
    public static func decode(_ bytes: [UInt8], name: String = "model") throws -> ModelBundle {
        try decode(bytes, name: name, memoryFactor: DecodeBudget.factor)
    }

    /// `memoryFactor`: the decoded-memory budget is `memoryFactor x file size + 1 MiB` (tests lower it).
    static func decode(_ bytes: [UInt8], name: String, memoryFactor: Int) throws -> ModelBundle {
        do { return try decodeUnnamed(bytes, memoryFactor: memoryFactor) } catch var e as ModelFileError {
            e.file = name
            throw e
        }
    }

    static func decodeUnnamed(_ bytes: [UInt8], memoryFactor: Int = DecodeBudget.factor) throws -> ModelBundle {
        let container = try Container.parse(bytes)
        let budget = DecodeBudget(fileLength: bytes.count, factor: memoryFactor)
        let metaSec = container.section(.metadata)!, graphSec = container.section(.graph)!
        let dirSec = container.section(.tensorDirectory)!, dataSec = container.section(.tensorData)!
        let meta = try MetadataCodec.decode(bytes, metaSec, budget: budget)
        let entries = try TensorCodec.decode(bytes, dir: dirSec, data: dataSec, budget: budget)
        var used = [Bool](repeating: false, count: entries.count)
        var genProfile: [UInt8] = [], genRecords: [GeneratorRecord] = []
        let genSec = container.section(.weightGenerators)
        if let genSec { (genProfile, genRecords) = try GeneratorCodec.decode(bytes, genSec, entries, used: &used, budget: budget) }
        var (program, masks, conductances) = try GraphCodec.decode(bytes, graphSec, entries, used: used, budget: budget, minor: container.minor)
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
        if let ps = container.section(.placement) { placement = try PlacementCodec.decode(bytes, ps, program, budget: budget) }
        let targetHash = try str(Keys.targetHash)
        let generators = try resolveGenerators(genRecords, profile: genProfile, section: genSec, graph: graphSec, program: &program,
                                               masks: masks, placement: placement, targetHash: targetHash, budget: budget)

        let md = ModelMetadata(task: try str(Keys.task), targetName: try str(Keys.targetName), targetHash: targetHash,
                               provenance: provenance, programming: ProgrammingCounts(maskFlips: flips, cellsToReset: Int(reset)),
                               placement: placement, masks: masks, conductances: conductances, extra: extra,
                               weightGenerators: generators, deviceProfile: genProfile)
        try validateProgram(program, graphSec)
        return ModelBundle(program: program, metadata: md)
    }
}

extension ModelBundle {
    /// Regenerates the weight codes of every generated layer (records in layer order), checks the
    /// CRC-32 of the regenerated codes and writes `mask ? on : off` into the program. A crossbar
    /// without a weights tensor must have a record, and a record's layer no weights tensor.
    static func resolveGenerators(_ records: [GeneratorRecord], profile: [UInt8], section: SectionEntry?, graph: SectionEntry,
                                  program: inout Program, masks: [PackedMask?], placement: Placement?, targetHash: String,
                                  budget: DecodeBudget) throws -> [WeightGenerator?] {
        let layers = program.crossbarLayers   // an rnn node is two layers (input, recurrent)
        let cross = layers.map(\.node)
        let secName = "weight generators"
        var byLayer = [Int: GeneratorRecord]()
        for r in records {
            guard r.layer < cross.count else {
                throw ModelFileError(.badGraph, section: secName, offset: r.offset, "generator for crossbar layer \(r.layer); the program has \(cross.count)")
            }
            byLayer[r.layer] = r
        }
        var out = [WeightGenerator?](repeating: nil, count: cross.count)
        var device: StatisticalDevice? = nil
        var devPlacement: CrossbarPlacement? = nil
        for (l, node) in cross.enumerated() {
            var c = layers[l].params
            guard let r = byLayer[l] else {
                if c.weights.isEmpty {
                    throw ModelFileError(.badGraph, section: "graph", offset: graph.offset, "node \(node): crossbar layer \(l) has no weights tensor and no weight generator")
                }
                continue
            }
            func fail(_ k: ModelFileError.Kind, _ m: String) -> ModelFileError {
                ModelFileError(k, section: secName, offset: r.offset, "crossbar layer \(l) (node \(node)), \(r.generator.kindName): \(m)")
            }
            guard c.weights.isEmpty else { throw fail(.badGraph, "the layer also stores explicit weight codes (weights are stored once)") }
            let n = c.outChannels * c.fanIn
            guard l < masks.count, let mask = masks[l], mask.count == n else { throw fail(.badGraph, "a generated layer needs its mask") }
            if case .signedConstant(_, .bits(let b)) = r.generator, b.count != n || r.signDims != [c.outChannels, c.fanIn] {
                throw fail(.tensorShapeMismatch, "sign bits \(r.signDims ?? []) (\(b.count)) for a \(c.outChannels) x \(c.fanIn) layer")
            }
            // regenerated on + off codes, then the effective codes
            try budget.charge(3 * n + 3 * DecodeBudget.arrayHeader, "regenerated weights of crossbar layer \(l)", section: secName, offset: r.offset)
            if case .statisticalDevice(let seed) = r.generator {
                do {
                    if device == nil || device!.seed != seed {
                        device = try WeightGeneration.device(profileJSON: profile, targetHash: targetHash, placement: placement, seed: seed)
                    }
                } catch { throw fail(.badGenerator, error.message) }
                if devPlacement == nil, let pl = placement { devPlacement = WeightGeneration.devicePlacement(pl, program) }
            }
            let codes: (on: [Int8], off: [Int8])
            do { codes = try WeightGeneration.codes(r.generator, layer: l, params: c, placement: devPlacement, device: device) } catch {
                throw fail(.badGenerator, error.message)
            }
            let crc = WeightGeneration.crc(codes.on, codes.off)
            guard crc == r.crc else {
                throw fail(.generatedWeightsMismatch, "the regenerated codes have CRC-32 \(hex8(crc)), the file says \(hex8(r.crc)): this toolchain, device model or profile gives other weights than the writer's; refusing to load different weights")
            }
            c.weights = WeightGeneration.effective(codes.on, codes.off, mask: mask)
            switch program.nodes[node].op {
            case .rnn(var rp):
                if layers[l].part == 0 { rp.input = c } else { rp.recurrent = c }
                program.nodes[node].op = .rnn(rp)
            default:
                program.nodes[node].op = .crossbar(c)
            }
            out[l] = r.generator
        }
        return out
    }
}

enum PlacementCodec {
    static func decode(_ b: [UInt8], _ s: SectionEntry, _ p: Program, budget: DecodeBudget? = nil) throws -> Placement {
        var r = ByteReader(b, from: s.offset, to: s.offset + s.length, section: "placement")
        let rows = try r.count("arrayRows", limit: FormatLimits.maxDim), cols = try r.count("arrayCols", limit: FormatLimits.maxDim)
        let arrays = try r.count("arrayCount", limit: FormatLimits.maxDim)
        let n = try r.count("tile count", limit: min(FormatLimits.maxItems, r.remaining / 32))
        // tiles, their offsets, and the overlap sweep's scratch (events, ranks, Fenwick tree: < 12 words per tile)
        try budget?.charge(n * (MemoryLayout<PlacementTile>.stride + 12 * 8) + 8 * DecodeBudget.arrayHeader, "\(n) placement tiles", section: "placement", offset: r.pos)
        let cross = p.crossbarLayers.map { $0.params }
        var tiles: [PlacementTile] = []
        tiles.reserveCapacity(n)
        var offsets: [Int] = []
        offsets.reserveCapacity(n)
        for i in 0..<n {
            let at = r.pos
            offsets.append(at)
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
        // 1.1 readers: no two tiles share a cell of an array, no two tiles hold the same weight,
        // and the tiles of each layer cover all its weights (then every weight is in exactly one tile).
        func groups(_ key: (PlacementTile) -> Int) -> [[Int]] {
            var d = [Int: [Int]]()
            for i in tiles.indices { d[key(tiles[i]), default: []].append(i) }
            return d.keys.sorted().map { d[$0]! }
        }
        for g in groups({ $0.array }) {
            if let (a, c) = firstOverlap(g.map { (tiles[$0].rowOffset, tiles[$0].rowOffset + tiles[$0].rows,
                                                  tiles[$0].colOffset, tiles[$0].colOffset + 2 * tiles[$0].outputs) }) {
                let (i, j) = (min(g[a], g[c]), max(g[a], g[c]))
                throw ModelFileError(.badPlacement, section: "placement", offset: offsets[j], "tiles \(i) and \(j) share cells of array \(tiles[i].array)")
            }
        }
        var covered = [Int](repeating: 0, count: cross.count)
        for g in groups({ $0.layer }) {
            if let (a, c) = firstOverlap(g.map { (tiles[$0].inputOffset, tiles[$0].inputOffset + tiles[$0].rows,
                                                  tiles[$0].outputOffset, tiles[$0].outputOffset + tiles[$0].outputs) }) {
                let (i, j) = (min(g[a], g[c]), max(g[a], g[c]))
                throw ModelFileError(.badPlacement, section: "placement", offset: offsets[j], "tiles \(i) and \(j) hold the same weights of crossbar layer \(tiles[i].layer)")
            }
            for i in g { covered[tiles[i].layer] += tiles[i].rows * tiles[i].outputs }   // each < 2^48, at most 2^16 of them
        }
        for (l, c) in cross.enumerated() where covered[l] != c.fanIn * c.outChannels {
            throw ModelFileError(.badPlacement, section: "placement", offset: s.offset,
                                 "crossbar layer \(l): the tiles place \(covered[l]) of its \(c.fanIn * c.outChannels) weights (every weight must be in exactly one tile)")
        }
        return Placement(arrayRows: rows, arrayCols: cols, arrayCount: arrays, tiles: tiles)
    }

    /// Indices of two intersecting rectangles `[r0, r1) x [c0, c1)` (all non-empty), or nil.
    /// O(n log n): a sweep over rows keeps the active rectangles' column intervals (pairwise
    /// disjoint, else we are done) in a Fenwick tree over the ranks of the column starts, so a new
    /// interval is checked against its predecessor and successor only.
    static func firstOverlap(_ rects: [(Int, Int, Int, Int)]) -> (Int, Int)? {
        let n = rects.count
        guard n > 1 else { return nil }
        let starts = Array(Set(rects.map { $0.2 })).sorted()
        var rank = [Int: Int](minimumCapacity: starts.count)
        for (k, v) in starts.enumerated() { rank[v] = k + 1 }   // 1-based for the tree
        let m = starts.count
        var tree = [Int](repeating: 0, count: m + 1)
        var owner = [Int](repeating: -1, count: m + 1)           // active rectangle per start rank
        func add(_ k: Int, _ d: Int) { var i = k; while i <= m { tree[i] += d; i += i & (-i) } }
        func prefix(_ k: Int) -> Int { var i = k, s = 0; while i > 0 { s += tree[i]; i -= i & (-i) }; return s }
        func kth(_ k: Int) -> Int {   // smallest rank with prefix >= k
            var pos = 0, rem = k, step = 1
            while step * 2 <= m { step *= 2 }
            while step > 0 {
                if pos + step <= m, tree[pos + step] < rem { pos += step; rem -= tree[pos] }
                step /= 2
            }
            return pos + 1
        }
        // events: (row, 0 = remove before 1 = insert at the same row, rectangle)
        var events: [(Int, Int, Int)] = []
        events.reserveCapacity(2 * n)
        for (i, r) in rects.enumerated() { events.append((r.0, 1, i)); events.append((r.1, 0, i)) }
        events.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        for (_, kind, i) in events {
            let k = rank[rects[i].2]!
            if kind == 0 {
                if owner[k] == i { owner[k] = -1; add(k, -1) }
                continue
            }
            if owner[k] >= 0 { return (owner[k], i) }
            let below = prefix(k - 1)
            if below > 0 {
                let j = owner[kth(below)]
                if rects[j].3 > rects[i].2 { return (j, i) }
            }
            let upto = prefix(k), total = prefix(m)
            if upto < total {
                let j = owner[kth(upto + 1)]
                if rects[j].2 < rects[i].3 { return (j, i) }
            }
            owner[k] = i; add(k, 1)
        }
        return nil
    }
}

/// 8 lower-case hex digits.
func hex8(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: 8 - h.count) + h
}
