// `edgecli verify MODEL --golden DIR [--against DUMP_DIR] [--json] [--strict-model]`: bit-exact
// comparison of golden vectors with our kernels (default) or another implementation's dump;
// exit 0 only when every element of every layer matches. See docs/GOLDEN.md.
import DataIO
import ModelFile
import Verify

enum VerifyCommand {
    static let command = Command(
        name: "verify",
        summary: "compare golden vectors bit for bit with our kernels or another implementation's dump",
        usage: """
        usage: edgecli verify MODEL --golden DIR [--against DUMP_DIR] [--json] [--strict-model]
          MODEL           the model file to recompute with (and whose layer structure the dump follows)
          --golden        a golden directory (edgecli golden; .npy or .npy.gz files); every file's
                          SHA-256 is checked
          --against       compare this dump directory (one NAME.npy or NAME.npy.gz per point, aliased
                          points included) instead of recomputing with our kernels
          --json          print the report as JSON
          --strict-model  refuse (error) when MODEL is not the model file the golden vectors were
                          made from; by default that is a warning and the comparison runs
        Exit code: 0 when every element matches, 1 on a mismatch or an error.
        Layout: docs/GOLDEN.md.
        """,
        run: { args in
            let goldenDir = try args.required("golden")
            let against = try args.option("against")
            let json = args.flag("json")
            let strict = args.flag("strict-model")
            let path = try args.requiredPositional("MODEL path")
            try args.finish()

            let bytes: [UInt8]
            do { bytes = try readFileBytes(path) } catch { throw CLIError("verify: cannot read the model \(path): \(error)") }
            let bundle: ModelBundle
            do { bundle = try ModelBundle.decode(bytes, name: path) } catch { throw CLIError("\(error)") }
            let sha = SHA256.hex(SHA256.hash(bytes))
            let golden = try Golden.read(dir: goldenDir)
            if strict && golden.modelSHA256 != sha {
                throw CLIError("verify: \(path) (SHA-256 \(sha)) is not the model the golden vectors in \(goldenDir) were made from (SHA-256 \(golden.modelSHA256)); --strict-model refuses")
            }
            let report: VerifyReport
            if let against {
                report = try Verifier.compareDump(dir: against, program: bundle.program, modelSHA256: sha, golden: golden)
            } else {
                report = try Verifier.recompute(program: bundle.program, modelSHA256: sha, golden: golden)
            }
            if json {
                try printJSON(report.jsonObject())
                for w in report.warnings { printErr("warning: \(w)") }
            } else {
                print(report.text(), terminator: "")
            }
            return report.ok ? 0 : 1
        })
}
