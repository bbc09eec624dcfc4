// `edgecli inspect MODEL [--json]`: what a model file holds: format, sections, task, target,
// provenance, layers (shapes, bits, sparsity from the masks), arrays, programming counts.
import Foundation
import Kernels
import ModelFile

enum InspectCommand {
    static let command = Command(
        name: "inspect",
        summary: "summarize a model file (layers, bits, sparsity, arrays, sizes)",
        usage: "usage: edgecli inspect MODEL [--json]",
        run: { args in
            let json = args.flag("json")
            let path = try args.requiredPositional("MODEL path")
            try args.finish()
            guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("inspect: cannot read \(path)") }
            let bytes = [UInt8](data)
            let container = try Container.parse(bytes)
            let m = try ModelBundle.decode(bytes, name: path)
            let s = summary(m, container, fileSize: bytes.count)
            if json { try printJSON(s) } else { print(text(s), terminator: "") }
            return 0
        })

    static func shape(_ t: TensorDesc) -> String { "\(t.shape.c)x\(t.shape.h)x\(t.shape.w) \(t.kind)\(t.bits)" }

    static func summary(_ m: ModelBundle, _ c: Container, fileSize: Int) -> [String: Any] {
        let p = m.program
        var layers: [[String: Any]] = []
        var crossbarIndex = 0
        var totalWeights = 0, totalKept = 0, maskedWeights = 0
        for (i, n) in p.nodes.enumerated() {
            var l: [String: Any] = ["node": i, "op": n.op.kind.name,
                                    "inputs": n.inputs.map { shape(p.tensors[$0]) }, "output": shape(p.tensors[n.output]),
                                    "inputTensors": n.inputs, "outputTensor": n.output]
            switch n.op {
            case .inputQuant, .activation, .concat, .add:
                let a = n.op.outputQuantizer!
                l["outBits"] = a.outBits; l["rounding"] = "\(a.rounding)"; l["channels"] = a.multiplier.count
            case .upsampleBilinear(let u):
                l["factor"] = "\(u.factorH)x\(u.factorW)"; l["rounding"] = p.tensors[n.output].kind == .sum ? "exact" : "\(u.rounding)"
            case .globalAvgPool(let g):
                l["rounding"] = p.globalPoolIsExact(n) ? "exact" : "\(g.rounding)"
            case .maxPool(let q):
                l["window"] = "\(q.kh)x\(q.kw)/\(q.sh)x\(q.sw)"
            case .crossbar(let x):
                l["layer"] = crossbarIndex
                l["geometry"] = "\(x.outChannels)x\(x.inChannels)x\(x.kernelH)x\(x.kernelW) stride \(x.strideH)x\(x.strideW) pad \(x.padH)x\(x.padW)"
                l["weights"] = x.weights.count
                l["weightBits"] = x.weightBits
                l["tiles"] = x.tiles.count
                l["adcBits"] = Array(Set(x.tiles.map(\.bits))).sorted()
                totalWeights += x.weights.count
                if crossbarIndex < m.metadata.masks.count, let mask = m.metadata.masks[crossbarIndex] {
                    let kept = mask.ones
                    l["kept"] = kept
                    l["sparsity"] = mask.count == 0 ? 0 : 1 - Double(kept) / Double(mask.count)
                    totalKept += kept; maskedWeights += mask.count
                }
                if crossbarIndex < m.metadata.conductances.count, let g = m.metadata.conductances[crossbarIndex] {
                    l["conductancePlanes"] = g.planes
                }
                if crossbarIndex < m.metadata.programming.maskFlips.count { l["maskFlips"] = m.metadata.programming.maskFlips[crossbarIndex] }
                // how the file stores the codes (the program above holds them resolved either way)
                let gen = crossbarIndex < m.metadata.weightGenerators.count ? m.metadata.weightGenerators[crossbarIndex] : nil
                l["weightStorage"] = gen?.kindName ?? "explicit int8 codes"
                // record sizes of docs/FORMAT.md 8b (a device record shares the section's embedded profile)
                l["weightStoredBytes"] = {
                    switch gen {
                    case nil: return x.weights.count
                    case .signedConstant(_, .bits(let b))?: return 20 + b.bytes.count
                    case .signedConstant(_, .stream)?: return 32
                    case .statisticalDevice?: return 24
                    }
                }()
                crossbarIndex += 1
            case .rnn(let r):
                l["layer"] = crossbarIndex
                l["geometry"] = "rnn \(r.inputSize) -> \(r.hiddenSize) hidden (\(r.hiddenBits)-bit), \(p.tensors[n.inputs[0]].shape.w) steps"
                l["weights"] = r.input.weights.count + r.recurrent.weights.count
                l["tiles"] = r.input.tiles.count + r.recurrent.tiles.count
                l["adcBits"] = Array(Set((r.input.tiles + r.recurrent.tiles).map(\.bits))).sorted()
                l["outBits"] = r.output.outBits
                totalWeights += r.input.weights.count + r.recurrent.weights.count
                var kept = 0, count = 0
                for k in 0..<2 where crossbarIndex + k < m.metadata.masks.count {
                    if let mask = m.metadata.masks[crossbarIndex + k] { kept += mask.ones; count += mask.count }
                }
                if count > 0 {
                    l["kept"] = kept
                    l["sparsity"] = 1 - Double(kept) / Double(count)
                    totalKept += kept; maskedWeights += count
                }
                if crossbarIndex + 1 < m.metadata.programming.maskFlips.count {
                    l["maskFlips"] = m.metadata.programming.maskFlips[crossbarIndex] + m.metadata.programming.maskFlips[crossbarIndex + 1]
                }
                crossbarIndex += 2
            case .flatten:
                break
            }
            layers.append(l)
        }
        let pv = m.metadata.provenance
        var s: [String: Any] = [
            "format": "\(c.major).\(c.minor)",
            "fileBytes": fileSize,
            "sections": c.sections.map { ["kind": $0.name, "offset": $0.offset, "bytes": $0.length, "crc32": String(format: "%08x", $0.crc)] as [String: Any] },
            "task": m.metadata.task,
            "target": ["name": m.metadata.targetName, "sha256": m.metadata.targetHash],
            "provenance": ["seed": pv.seed, "epochs": pv.epochs, "dataset": pv.dataset, "floatAccuracy": pv.floatAccuracy,
                           "integerAccuracy": pv.integerAccuracy, "toolVersion": pv.toolVersion, "created": pv.created ?? NSNull()] as [String: Any],
            "programming": ["maskFlips": m.metadata.programming.maskFlips, "cellsToReset": m.metadata.programming.cellsToReset],
            "layers": layers,
            "crossbarLayers": crossbarIndex,
            "weights": totalWeights,
            "arrayRows": p.arrayRows,
        ]
        if maskedWeights > 0 { s["sparsity"] = 1 - Double(totalKept) / Double(maskedWeights); s["kept"] = totalKept }
        if let pl = m.metadata.placement {
            s["placement"] = ["arrayRows": pl.arrayRows, "arrayCols": pl.arrayCols, "arrayCount": pl.arrayCount,
                              "arraysUsed": pl.arraysUsed, "tiles": pl.tiles.count]
        }
        if !m.metadata.extra.isEmpty { s["extraKeys"] = m.metadata.extra.keys.sorted() }
        return s
    }

    static func text(_ s: [String: Any]) -> String {
        var o = ""
        o += "rram-edge model, format \(s["format"]!), \(s["fileBytes"]!) bytes\n"
        o += "task \(s["task"]!)"
        if let t = s["target"] as? [String: Any] { o += ", target \(t["name"]!) (sha256 \(String(describing: t["sha256"]!).prefix(16))...)" }
        o += "\n"
        if let p = s["provenance"] as? [String: Any] {
            o += "provenance: seed \(p["seed"]!), \(p["epochs"]!) epochs on \(p["dataset"]!), tool \(p["toolVersion"]!)"
            if let c = p["created"] as? String { o += ", created \(c)" }
            o += "\n"
            // a model frozen without evaluation images stores NaN accuracies
            if let f = p["floatAccuracy"] as? Double, let i = p["integerAccuracy"] as? Double, f.isFinite, i.isFinite {
                o += String(format: "accuracy: float %.4f, integer %.4f\n", f, i)
            } else {
                o += "accuracy: not evaluated at freeze\n"
            }
        }
        o += "layers (\(s["crossbarLayers"]!) crossbar, \(s["weights"]!) weights"
        if let sp = s["sparsity"] as? Double { o += String(format: ", sparsity %.2f%%", 100 * sp) }
        o += "):\n"
        for l in s["layers"] as! [[String: Any]] {
            var line = "  [\(l["node"]!)] \(String(describing: l["op"]!).padding(toLength: 11, withPad: " ", startingAt: 0)) "
            line += "\((l["inputs"] as! [String]).joined(separator: ", ")) -> \(l["output"]!)"
            // a node of a graph that reads other than its predecessor's output names its tensors
            if let ins = l["inputTensors"] as? [Int], let node = l["node"] as? Int, ins != [node] {
                line += " (reads t\(ins.map(String.init).joined(separator: ", t")))"
            }
            if let g = l["geometry"] { line += "  \(g), w\(l["weightBits"]!), \(l["tiles"]!) tiles, ADC \(l["adcBits"]!)" }
            if let sp = l["sparsity"] as? Double { line += String(format: ", kept %d (sparsity %.2f%%)", l["kept"] as! Int, 100 * sp) }
            if let f = l["maskFlips"] { line += ", flips \(f)" }
            if let ws = l["weightStorage"] { line += ", weights: \(ws) (\(l["weightStoredBytes"]!) bytes)" }
            if let ob = l["outBits"] { line += "  out \(ob) bits, \(l["rounding"]!)" }
            else if let r = l["rounding"] { line += "  \(l["factor"].map { "x\($0), " } ?? "")\(r)" }
            if let w = l["window"] { line += "  \(w)" }
            o += line + "\n"
        }
        if let pl = s["placement"] as? [String: Any] {
            o += "placement: \(pl["tiles"]!) tiles on \(pl["arraysUsed"]!) of \(pl["arrayCount"]!) arrays of \(pl["arrayRows"]!)x\(pl["arrayCols"]!)\n"
        } else { o += "placement: none\n" }
        if let p = s["programming"] as? [String: Any] { o += "programming: mask flips \(p["maskFlips"]!), cells to reset \(p["cellsToReset"]!)\n" }
        o += "sections:\n"
        for sec in s["sections"] as! [[String: Any]] {
            o += "  \(String(describing: sec["kind"]!).padding(toLength: 17, withPad: " ", startingAt: 0)) \(sec["bytes"]!) bytes at \(sec["offset"]!), crc32 \(sec["crc32"]!)\n"
        }
        if let k = s["extraKeys"] as? [String] { o += "other metadata: \(k.joined(separator: ", "))\n" }
        return o
    }
}
