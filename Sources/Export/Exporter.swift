// `Exporter.files(for:)` builds every export file in memory (deterministic: the same model gives
// the same bytes); `Exporter.export(_:to:)` writes them as one directory, all or nothing.
// docs/EXPORT.md lists the files.
import Kernels
import DataIO
import ModelFile

/// One output file: a path relative to the export directory (no subdirectories) and its bytes.
public struct ExportFile: Sendable, Equatable {
    public var path: String
    public var bytes: [UInt8]
    public init(path: String, bytes: [UInt8]) { self.path = path; self.bytes = bytes }
}

public struct ExportOptions: Sendable, Equatable {
    /// SHA-256 (hex) of the model file the bundle was read from; recorded in the manifest.
    public var modelSHA256: String?
    /// Replace an existing export directory (one that holds a `manifest.json` of an export).
    public var replace: Bool
    public init(modelSHA256: String? = nil, replace: Bool = false) { self.modelSHA256 = modelSHA256; self.replace = replace }
}

/// What was written.
public struct ExportSummary: Sendable, Equatable {
    public var directory: String
    public var files: [ExportFile]
    public var plan: ProgrammingPlan
    public var arrayCount: Int
}

public enum Exporter {
    public static let manifestName = "manifest.json"
    public static let formatName = "rram-edge-export"
    public static let formatVersion = 1

    /// Every file of the export, `manifest.json` last. Throws `ExportError` for a model that
    /// cannot be exported (no placement, inconsistent placement, invalid program).
    public static func files(for bundle: ModelBundle, options: ExportOptions = ExportOptions()) throws(ExportError) -> (files: [ExportFile], plan: ProgrammingPlan, layout: ExportLayout) {
        let l = try ExportLayout(bundle)
        var files: [ExportFile] = []
        func add(_ path: String, _ bytes: [UInt8]) { files.append(ExportFile(path: path, bytes: bytes)) }
        for (a, img) in ArrayImages.weights(l).enumerated() {
            add("array\(a).weights.mem", img.mem()); add("array\(a).weights.coe", img.coe())
        }
        if let cond = ArrayImages.conductances(l) {
            for (a, img) in cond.enumerated() {
                add("array\(a).conductance.mem", img.mem()); add("array\(a).conductance.coe", img.coe())
            }
        }
        for (a, img) in ArrayImages.masks(l).enumerated() {
            add("array\(a).mask.mem", img.mem()); add("array\(a).mask.coe", img.coe())
        }
        let rom = RequantROM.image(l.program)
        add("requant.mem", rom.mem()); add("requant.coe", rom.coe())
        add("requant_index.csv", RequantROM.indexCSV(l.program))
        add(CSource.headerName, CSource.header(l))
        add(CSource.sourceName, CSource.source(l))
        let plan = ProgrammingPlan(l)
        add("plan.csv", plan.csv())
        add("plan_summary.csv", plan.summaryCSV(l))
        files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
        add(manifestName, manifest(l, files, options))
        return (files, plan, l)
    }

    /// Builds the export and writes it to `directory` (see `ExportDirectory.write`).
    public static func export(_ bundle: ModelBundle, to directory: String, options: ExportOptions = ExportOptions()) throws(ExportError) -> ExportSummary {
        try ExportDirectory.checkTarget(directory, replace: options.replace)
        let (files, plan, l) = try files(for: bundle, options: options)
        try ExportDirectory.write(files, to: directory, replace: options.replace)
        return ExportSummary(directory: directory, files: files, plan: plan, arrayCount: l.placement.arrayCount)
    }

    // MARK: manifest

    /// What a crossbar layer is in its node (manifest `layers[].matrix`): "crossbar" for a
    /// crossbar node, "rnn.input" (`W_ih`) or "rnn.recurrent" (`W_hh`) for an rnn node's matrices.
    static func matrixName(_ lay: ExportLayer, _ program: Program) -> String {
        guard program.nodes[lay.node].op.kind == .rnn else { return "crossbar" }
        return lay.part == 0 ? "rnn.input" : "rnn.recurrent"
    }

    static func manifest(_ l: ExportLayout, _ files: [ExportFile], _ o: ExportOptions) -> [UInt8] {
        let md = l.bundle.metadata, pl = l.placement
        let rom = RequantROM.entries(l.program).entries.count
        var s = "{\n"
        s += "  \"format\": \(jsonStringLiteral(formatName)),\n"
        s += "  \"version\": \(formatVersion),\n"
        s += "  \"model\": {\n"
        s += "    \"task\": \(jsonStringLiteral(md.task)),\n"
        s += "    \"target\": \(jsonStringLiteral(md.targetName)),\n"
        s += "    \"targetSha256\": \(jsonStringLiteral(md.targetHash)),\n"
        s += "    \"modelSha256\": \(o.modelSHA256.map(jsonStringLiteral) ?? "null")\n"
        s += "  },\n"
        s += "  \"arrays\": { \"rows\": \(pl.arrayRows), \"cols\": \(pl.arrayCols), \"count\": \(pl.arrayCount) },\n"
        s += "  \"images\": {\n"
        s += "    \"weights\": { \"wordBits\": \(ArrayImages.cellWordBits), \"lanes\": \(ArrayImages.cellLanes), \"laneBits\": 8, \"depth\": \(pl.arrayRows * ArrayImages.cellWordsPerRow(pl.arrayCols)), \"conductance\": \(l.layers.contains { $0.conductance != nil }) },\n"
        s += "    \"masks\": { \"wordBits\": \(ArrayImages.maskWordBits), \"lanes\": \(ArrayImages.maskLanes), \"laneBits\": 1, \"depth\": \(pl.arrayRows * ArrayImages.maskWordsPerRow(pl.arrayCols)) },\n"
        s += "    \"requant\": { \"wordBits\": \(RequantROM.wordBits), \"entries\": \(rom), \"depth\": \(max(1, rom)) }\n"
        s += "  },\n"
        s += "  \"layers\": [\n"
        s += l.layers.map { lay in
            "    { \"layer\": \(lay.layer), \"node\": \(lay.node), \"matrix\": \(jsonStringLiteral(matrixName(lay, l.program))), \"outputs\": \(lay.params.outChannels), \"fanIn\": \(lay.params.fanIn), \"weightBits\": \(lay.params.weightBits), \"pruned\": \(lay.pruned), \"mask\": \(lay.mask != nil), \"conductancePlanes\": \(lay.conductance?.planes ?? 0) }"
        }.joined(separator: ",\n") + "\n"
        s += "  ],\n"
        s += "  \"files\": [\n"
        s += files.map { f in
            "    { \"path\": \(jsonStringLiteral(f.path)), \"bytes\": \(f.bytes.count), \"sha256\": \(jsonStringLiteral(SHA256.hex(SHA256.hash(f.bytes)))) }"
        }.joined(separator: ",\n") + "\n"
        s += "  ]\n}\n"
        return Array(s.utf8)
    }
}
