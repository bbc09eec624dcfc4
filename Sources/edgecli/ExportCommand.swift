// `edgecli export MODEL --out DIR [--force] [--json]`: FPGA images (.mem/.coe), firmware C
// (model.h, model.c), the chip programming plan and manifest.json; see docs/EXPORT.md.
import DataIO
import Export
import ModelFile

enum ExportCommand {
    static let command = Command(
        name: "export",
        summary: "write FPGA images, firmware C, the chip programming plan and a manifest",
        usage: """
        usage: edgecli export MODEL --out DIR [--force] [--json]
          MODEL     a model file with a crossbar placement (edgecli inspect shows it)
          --out     the export directory; created all at once (a temporary sibling renamed into place)
          --force   replace DIR if it holds an earlier export (never any other directory)
          --json    print the summary as JSON
        Files: docs/EXPORT.md.
        """,
        run: { args in
            let out = try args.required("out")
            let force = args.flag("force")
            let json = args.flag("json")
            let path = try args.requiredPositional("MODEL path")
            try args.finish()
            let bytes: [UInt8]
            do { bytes = try readFileBytes(path) } catch { throw CLIError("export: cannot read the model \(path): \(error)") }
            let bundle: ModelBundle
            do { bundle = try ModelBundle.decode(bytes, name: path) } catch { throw CLIError("\(error)") }
            let options = ExportOptions(modelSHA256: SHA256.hex(SHA256.hash(bytes)), replace: force)
            let summary: ExportSummary
            do { summary = try Exporter.export(bundle, to: out, options: options) } catch {
                throw CLIError("\(error) (model \(path))")
            }
            let total = summary.files.reduce(0) { $0 + $1.bytes.count }
            if json {
                try printJSON(["directory": summary.directory, "files": summary.files.count, "bytes": total,
                               "arrays": summary.arrayCount, "cellsToReset": summary.plan.steps.count,
                               "prunedPairsPerLayer": summary.plan.perLayer.map(\.pruned)])
            } else {
                print("exported \(summary.files.count) files (\(total) bytes) to \(summary.directory): \(summary.arrayCount) arrays, \(summary.plan.steps.count) cells to reset")
            }
            return 0
        })
}
