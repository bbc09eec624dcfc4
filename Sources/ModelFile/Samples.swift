// Valid model bundles for tests, the fuzzer's seed corpus and size measurements, generated
// from a seed (Randomness's SplitMix64).
import DataIO
import Device
import FixedPoint
import Kernels
import Randomness

public struct SampleRNG: Sendable {
    var base: SplitMix64
    public init(seed: UInt64) { base = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { base.next() }
    /// Uniform in `range` (small ranges; modulo bias is irrelevant here).
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
    public mutating func bool() -> Bool { next() & 1 == 1 }
}

public enum ModelSamples {
    static let roundings = RoundingRule.allCases

    static func affine(_ channels: Int, _ rng: inout SampleRNG) -> AffineQuantParams {
        AffineQuantParams(multiplier: (0..<channels).map { _ in Int32(rng.int(1...(1 << 20))) },
                          shift: (0..<channels).map { _ in Int32(rng.int(8...30)) },
                          offset: (0..<channels).map { _ in Int64(rng.int(-(1 << 20)...(1 << 20))) },
                          outBits: rng.int(1...8), rounding: roundings[rng.int(0...roundings.count - 1)])
    }

    /// A crossbar with random codes; returns params, mask (pruned weights are 0 in the codes).
    static func crossbar(inC: Int, outC: Int, k: Int, pad: Int, arrayRows: Int, _ rng: inout SampleRNG)
        -> (CrossbarParams, PackedMask) {
        let fanIn = inC * k * k
        let wb = rng.int(2...8)
        let half = 1 << (wb - 1)
        var bits = [Bool](repeating: false, count: outC * fanIn)
        var w = [Int8](repeating: 0, count: outC * fanIn)
        for i in w.indices {
            bits[i] = rng.next() % 100 < 30
            if bits[i] { w[i] = Int8(rng.int(-half...(half - 1))) }
        }
        let tiles = CrossbarParams.uniformTiles(fanIn: fanIn, arrayRows: arrayRows, multiplier: Int32(rng.int(1...(1 << 30))),
                                                shift: Int32(rng.int(-8...8)), rounding: roundings[rng.int(0...4)], bits: rng.int(2...16))
        return (CrossbarParams(inChannels: inC, outChannels: outC, kernelH: k, kernelW: k, padH: pad, padW: pad,
                               weightBits: wb, weights: w, weightLSBMicroSiemens: Double(rng.int(1...100)) / 10, tiles: tiles),
                PackedMask(bits))
    }

    /// Builds a bundle for a conv stack + fully connected stack.
    /// `convs`: (out channels, kernel, pool); `fcs`: out features.
    public static func network(input: TensorShape, convs: [(Int, Int, Int)], fcs: [Int], arrayRows: Int = 512,
                               conductance: Bool = false, placement: Bool = true, dropSomeMasks: Bool = false, seed: UInt64) -> ModelBundle {
        var rng = SampleRNG(seed: seed)
        var tensors = [TensorDesc.code(input, bits: 8)]
        var nodes: [Node] = []
        var masks: [PackedMask?] = [], conds: [ConductanceCodes?] = []
        var cur = 0
        func add(_ op: Op, _ t: TensorDesc) { tensors.append(t); nodes.append(Node(op, inputs: [cur], output: tensors.count - 1)); cur = tensors.count - 1 }
        var a = affine(input.c, &rng)
        add(.inputQuant(a), .code(input, bits: a.outBits))
        func addCrossbar(_ c: CrossbarParams, _ m: PackedMask) {
            let out = c.outputShape(for: tensors[cur].shape)
            add(.crossbar(c), .sum(out))
            masks.append(dropSomeMasks && rng.int(0...3) == 0 ? nil : m)
            conds.append(conductance ? ConductanceCodes(planes: 2, codes: (0..<(2 * c.weights.count)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) : nil)
            a = affine(out.c, &rng)
            add(.activation(a), .code(out, bits: a.outBits))
        }
        for (outC, k, pool) in convs {
            let s = tensors[cur].shape
            let (c, m) = crossbar(inC: s.c, outC: outC, k: k, pad: 0, arrayRows: arrayRows, &rng)
            addCrossbar(c, m)
            if pool > 1 {
                let t = tensors[cur]
                add(.maxPool(MaxPoolParams(pool)), TensorDesc(shape: TensorShape(c: t.shape.c, h: (t.shape.h - pool) / pool + 1, w: (t.shape.w - pool) / pool + 1), kind: t.kind, bits: t.bits))
            }
        }
        let s = tensors[cur].shape
        if s.h != 1 || s.w != 1 {
            add(.flatten, TensorDesc(shape: TensorShape(c: s.count, h: 1, w: 1), kind: tensors[cur].kind, bits: tensors[cur].bits))
        }
        for (j, outC) in fcs.enumerated() {
            let (c, m) = crossbar(inC: tensors[cur].shape.c, outC: outC, k: 1, pad: 0, arrayRows: arrayRows, &rng)
            if j == fcs.count - 1 {
                add(.crossbar(c), .sum(TensorShape(c: outC, h: 1, w: 1)))
                masks.append(m)
                conds.append(conductance ? ConductanceCodes(planes: 2, codes: (0..<(2 * c.weights.count)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) : nil)
            } else {
                addCrossbar(c, m)
            }
        }
        let program = Program(tensors: tensors, nodes: nodes, input: 0, output: cur, arrayRows: arrayRows)
        var pl: Placement? = nil
        if placement {
            var tiles: [PlacementTile] = []
            let cols = 128
            var layer = 0
            for n in nodes { if case .crossbar(let c) = n.op {
                for t in c.tiles {
                    var o = 0
                    while o < c.outChannels {
                        let k = min(cols / 2, c.outChannels - o)   // two columns (G+, G-) per output
                        tiles.append(PlacementTile(layer: layer, array: tiles.count, rowOffset: 0, rows: t.rowCount, inputOffset: t.rowStart, colOffset: 0, outputOffset: o, outputs: k))
                        o += k
                    }
                }
                layer += 1
            } }
            pl = Placement(arrayRows: arrayRows, arrayCols: cols, arrayCount: tiles.count, tiles: tiles)
        }
        if masks.allSatisfy({ $0 == nil }) { masks = [] }
        let md = ModelMetadata(
            task: ["mnist", "fashion-mnist", "cifar10"][rng.int(0...2)], targetName: "chip-\(rng.int(0...9))",
            targetHash: SHA256Hex.of(Array("target \(seed)".utf8)),
            provenance: Provenance(seed: rng.next(), epochs: rng.int(0...100), dataset: "data/set-\(rng.int(0...99))",
                                   floatAccuracy: Double(rng.int(0...10000)) / 10000, integerAccuracy: Double(rng.int(0...10000)) / 10000,
                                   toolVersion: "0.1.0", created: rng.bool() ? "2026-11-29T00:00:00Z" : nil),
            programming: ProgrammingCounts(maskFlips: nodes.compactMap { n -> Int? in
                if case .crossbar(let c) = n.op { return rng.int(0...c.weights.count) } else { return nil } },
                cellsToReset: rng.int(0...1000)),
            placement: pl, masks: masks, conductances: conductance ? conds : [],
            extra: rng.bool() ? ["user.note": .string("ünïcode ✓"), "user.flags": .array([.bool(true), .bool(false)]), "user.scale": .f64(0.125)] : [:])
        return ModelBundle(program: program, metadata: md)
    }

    /// A small random valid bundle (the fuzzer's seed corpus and round-trip tests).
    public static func random(seed: UInt64) -> ModelBundle {
        var rng = SampleRNG(seed: seed ^ 0xA5A5_5A5A_1234_5678)
        let c = rng.int(1...3), hw = rng.int(6...12)
        var convs: [(Int, Int, Int)] = []
        if rng.int(0...3) != 0 { convs.append((rng.int(1...6), rng.int(1...3), rng.int(1...2))) }
        let fcs = (0..<rng.int(1...2)).map { _ in rng.int(1...12) }
        return network(input: TensorShape(c: c, h: hw, w: hw), convs: convs, fcs: fcs, arrayRows: rng.int(8...64),
                       conductance: rng.int(0...3) == 0, placement: rng.bool(), dropSomeMasks: true, seed: rng.next())
    }

    /// A small recurrent bundle: input `(c, 1, steps)` -> inputQuant -> rnn (`hidden` units: an
    /// input and a recurrent crossbar layer) -> fc `classes` -> logits; masks (the recurrent one
    /// optionally dropped), optional conductances, placement of all three crossbar layers.
    public static func crnn(seed: UInt64, c: Int = 3, steps: Int = 4, hidden: Int = 5, classes: Int = 3, arrayRows: Int = 16,
                            conductance: Bool = false, dropRecurrentMask: Bool = false) -> ModelBundle {
        var rng = SampleRNG(seed: seed)
        let input = TensorShape(c: c, h: 1, w: steps)
        let a = affine(c, &rng)
        let (ih, mi) = crossbar(inC: c, outC: hidden, k: 1, pad: 0, arrayRows: arrayRows, &rng)
        let (hh, mh) = crossbar(inC: hidden, outC: hidden, k: 1, pad: 0, arrayRows: arrayRows, &rng)
        let (fc, mf) = crossbar(inC: hidden, outC: classes, k: 1, pad: 0, arrayRows: arrayRows, &rng)
        let out = AffineQuantParams(multiplier: (0..<hidden).map { _ in Int32(rng.int(1...(1 << 12))) },
                                    shift: (0..<hidden).map { _ in Int32(rng.int(20...40)) },
                                    offset: (0..<hidden).map { _ in Int64(rng.int(-(1 << 20)...(1 << 20))) },
                                    outBits: rng.int(1...8), rounding: roundings[rng.int(0...4)])
        let rp = RNNParams(input: ih, recurrent: hh, inputMultiplier: Int32(rng.int(1...(1 << 12))),
                           recurrentMultiplier: Int32(rng.int(-(1 << 12)...(1 << 12))), stateShift: Int32(rng.int(0...16)),
                           hiddenBits: rng.int(1...8), hiddenRounding: roundings[rng.int(0...4)], output: out)
        let tensors: [TensorDesc] = [.code(input, bits: 8), .code(input, bits: a.outBits), .code(TensorShape(c: hidden, h: 1, w: 1), bits: out.outBits),
                                     .sum(TensorShape(c: classes, h: 1, w: 1))]
        let nodes = [Node(.inputQuant(a), inputs: [0], output: 1), Node(.rnn(rp), inputs: [1], output: 2), Node(.crossbar(fc), inputs: [2], output: 3)]
        let program = Program(tensors: tensors, nodes: nodes, input: 0, output: 3, arrayRows: arrayRows)
        var tiles: [PlacementTile] = []
        for (layer, x) in program.crossbarLayers.enumerated() {
            for t in x.params.tiles {
                tiles.append(PlacementTile(layer: layer, array: tiles.count, rowOffset: 0, rows: t.rowCount, inputOffset: t.rowStart,
                                           colOffset: 0, outputOffset: 0, outputs: x.params.outChannels))
            }
        }
        let mats = [ih, hh, fc]
        let md = ModelMetadata(
            task: "spoken-digit", targetName: "chip-\(rng.int(0...9))", targetHash: SHA256Hex.of(Array("target \(seed)".utf8)),
            provenance: Provenance(seed: rng.next(), epochs: rng.int(0...100), dataset: "spoken-digit",
                                   floatAccuracy: 0.5, integerAccuracy: 0.5, toolVersion: "0.1.0"),
            programming: ProgrammingCounts(maskFlips: mats.map { rng.int(0...$0.weights.count) }, cellsToReset: rng.int(0...1000)),
            placement: Placement(arrayRows: arrayRows, arrayCols: 2 * Swift.max(hidden, classes), arrayCount: tiles.count, tiles: tiles),
            masks: [mi, dropRecurrentMask ? nil : mh, mf],
            conductances: conductance ? mats.map { ConductanceCodes(planes: 2, codes: (0..<(2 * $0.weights.count)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) } : [])
        return ModelBundle(program: program, metadata: md)
    }

    /// A layer-graph bundle (format 1.2): `SamplePrograms.tinyUNet` (concat, exact and rounded
    /// upsampling, per-pixel logits) or `.tinyResNet` (residual additions, global average
    /// pooling), with a mask per crossbar layer (the pruned codes set to 0), optional
    /// conductances and a placement of every tile on its own array.
    public static func graph(seed: UInt64, unet: Bool, conductance: Bool = false) -> ModelBundle {
        var rng = SampleRNG(seed: seed)
        var program = unet ? SamplePrograms.tinyUNet(seed: seed, randomRounding: true) : SamplePrograms.tinyResNet(seed: seed, randomRounding: true)
        var masks: [PackedMask?] = []
        for x in program.crossbarLayers {
            var c = x.params
            let bits = c.weights.indices.map { _ in rng.next() % 100 < 40 }
            for i in c.weights.indices where !bits[i] { c.weights[i] = 0 }
            program.nodes[x.node].op = .crossbar(c)
            masks.append(PackedMask(bits))
        }
        var tiles: [PlacementTile] = []
        for (layer, x) in program.crossbarLayers.enumerated() {
            for t in x.params.tiles {
                tiles.append(PlacementTile(layer: layer, array: tiles.count, rowOffset: 0, rows: t.rowCount, inputOffset: t.rowStart,
                                           colOffset: 0, outputOffset: 0, outputs: x.params.outChannels))
            }
        }
        let cols = 2 * program.crossbarLayers.map(\.params.outChannels).max()!
        let layers = program.crossbarLayers.map(\.params)
        let md = ModelMetadata(
            task: unet ? "drive" : "fashion-mnist-resnet", targetName: "chip-\(rng.int(0...9))", targetHash: SHA256Hex.of(Array("target \(seed)".utf8)),
            provenance: Provenance(seed: rng.next(), epochs: rng.int(0...100), dataset: unet ? "drive" : "fashion-mnist",
                                   floatAccuracy: 0.5, integerAccuracy: 0.5, toolVersion: "0.1.0"),
            programming: ProgrammingCounts(maskFlips: layers.map { rng.int(0...$0.weights.count) }, cellsToReset: rng.int(0...1000)),
            placement: Placement(arrayRows: program.arrayRows, arrayCols: cols, arrayCount: tiles.count, tiles: tiles),
            masks: masks,
            conductances: conductance ? layers.map { ConductanceCodes(planes: 2, codes: (0..<(2 * $0.weights.count)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) } : [])
        return ModelBundle(program: program, metadata: md)
    }

    /// The paper's Fashion-MNIST CNN: conv 64x1x3x3, pool 2, conv 16x64x3x3, pool 2, fc 128x400, fc 10x128.
    public static func fashionCNN(seed: UInt64, conductance: Bool = false) -> ModelBundle {
        network(input: TensorShape(c: 1, h: 28, w: 28), convs: [(64, 3, 2), (16, 3, 2)], fcs: [128, 10],
                conductance: conductance, seed: seed)
    }
}

/// Which weight generator `ModelSamples.generated` gives the crossbar layers (those with a mask).
public enum SampleGenerator: Sendable, CaseIterable {
    /// Software TO: signed constants, signs from a seed stream.
    case signStream
    /// Software TO: signed constants, stored sign bits.
    case signBits
    /// Hardware TO: the statistical device of an embedded profile (the sample's placement is
    /// replaced by `CrossbarMapper.place` on the profile's arrays).
    case device
}

extension ModelSamples {
    /// `bundle` with the weights of every masked crossbar layer replaced by what `kind` generates
    /// (the program then holds exactly the generated codes), and the generators recorded so the
    /// file stores them instead of the codes. Layers without a mask keep explicit codes.
    public static func generated(_ bundle: ModelBundle, _ kind: SampleGenerator, seed: UInt64) -> ModelBundle {
        var b = bundle
        var rng = SampleRNG(seed: seed ^ 0x6E6E_7261_7465_6421)
        let cross = b.crossbarNodes
        var gens = [WeightGenerator?](repeating: nil, count: cross.count)
        var device: StatisticalDevice? = nil
        var devPlacement: CrossbarPlacement? = nil
        if kind == .device {
            var profile = b.program.arrayRows == 512 ? TargetProfiles.rram40nmTaOx : TargetProfiles.rramLowPrecision
            if b.program.arrayRows != 512 { profile.name = "sample-device"; profile.arrayRows = b.program.arrayRows; profile.arrayCols = 128 }
            let shapes = cross.enumerated().compactMap { l, n -> LayerShape? in
                guard case .crossbar(let c) = b.program.nodes[n].op else { return nil }
                return LayerShape(name: "layer\(l)", fanIn: c.fanIn, fanOut: c.outChannels)
            }
            let pl = try! CrossbarMapper.place(shapes, arrayRows: profile.arrayRows, arrayCols: profile.arrayCols)
            b.metadata.placement = Placement(arrayRows: pl.arrayRows, arrayCols: pl.arrayCols, arrayCount: pl.arrayCount,
                                             tiles: pl.tiles.map { PlacementTile(layer: $0.layer, array: $0.array, rowOffset: $0.rowOffset, rows: $0.rows,
                                                                                 inputOffset: $0.inputOffset, colOffset: $0.colOffset,
                                                                                 outputOffset: $0.outputOffset, outputs: $0.outputs) })
            let json = TargetProfiles.canonicalJSON(profile)
            b.metadata.deviceProfile = json
            b.metadata.targetName = profile.name
            b.metadata.targetHash = SHA256Hex.of(json)
            device = StatisticalDevice(profile: profile, seed: rng.next())
            devPlacement = pl
        }
        for (l, n) in cross.enumerated() {
            guard case .crossbar(var c) = b.program.nodes[n].op, l < b.metadata.masks.count, let mask = b.metadata.masks[l] else { continue }
            let count = c.weights.count, top = (1 << (c.weightBits - 1)) - 1
            let g: WeightGenerator
            switch kind {
            case .signStream:
                g = .signedConstant(magnitude: rng.int(1...top), signs: .stream(seed: rng.next(), stream: UInt64(l)))
            case .signBits:
                g = .signedConstant(magnitude: rng.int(1...top), signs: .bits(PackedMask((0..<count).map { _ in rng.bool() })))
            case .device:
                let (on, _) = differentialWeights(placement: devPlacement!, layer: l, source: device!, read: nil)
                let level = Double(on.map { abs($0) }.max() ?? 1)
                c.weightLSBMicroSiemens = level > 0 ? level / Double(top) : 1
                g = .statisticalDevice(seed: device!.seed)
            }
            let codes = try! WeightGeneration.codes(g, layer: l, params: c, placement: devPlacement, device: device)
            c.weights = WeightGeneration.effective(codes.on, codes.off, mask: mask)
            b.program.nodes[n].op = .crossbar(c)
            gens[l] = g
        }
        b.metadata.weightGenerators = gens.allSatisfy { $0 == nil } ? [] : gens
        return b
    }

    /// A random bundle with generated weights of `kind` (the fuzzer's 1.1 seed corpus). For the
    /// statistical device a small network (at most a few hundred weights), so that decoding the
    /// fuzzer's mutants stays cheap even in debug builds.
    public static func randomGenerated(seed: UInt64, kind: SampleGenerator) -> ModelBundle {
        var base = random(seed: seed)
        if kind == .device {
            var rng = SampleRNG(seed: seed ^ 0xDE71CE)
            base = network(input: TensorShape(c: rng.int(1...2), h: 6, w: 6), convs: [(rng.int(1...4), 2, 1)], fcs: [rng.int(2...6)],
                           arrayRows: rng.int(8...32), placement: true, dropSomeMasks: true, seed: rng.next())
        }
        return generated(base, kind, seed: seed)
    }
}

enum SHA256Hex {
    static func of(_ b: [UInt8]) -> String { SHA256.hex(SHA256.hash(b)) }
}
