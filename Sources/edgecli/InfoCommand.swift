// `edgecli version`: tool version and build facts (also recorded as provenance in model files),
// and the kernel builds this binary runs on this CPU.
import Foundation
import Kernels
import Training

enum ToolInfo {
    static let version = "0.1.0"
}

enum InfoCommand {
    static let command = Command(
        name: "version",
        summary: "print the tool version",
        usage: "usage: edgecli version [--json]",
        run: { args in
            let json = args.flag("json")
            try args.finish()
            let int = IntDispatch.choice, float = FloatDispatch.choice
            if json {
                try printJSON(["tool": "rram-edge", "version": ToolInfo.version,
                               "int_kernels": int.selected.rawValue, "int_kernels_available": int.available.map(\.rawValue),
                               "float_kernels": float.selected.rawValue, "float_kernels_available": float.available.map(\.rawValue)])
            } else {
                print("rram-edge edgecli \(ToolInfo.version)")
                print("integer kernels: \(int.selected.rawValue) (available: \(int.available.map(\.rawValue).joined(separator: ", ")); \(int.key))")
                print("float kernels: \(float.selected.rawValue) (available: \(float.available.map(\.rawValue).joined(separator: ", ")); \(float.key))")
            }
            return 0
        })
}
