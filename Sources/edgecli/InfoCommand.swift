// `edgecli version`: tool version and build facts (also recorded as provenance in model files).
import Foundation

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
            if json { try printJSON(["tool": "rram-edge", "version": ToolInfo.version]) } else { print("rram-edge edgecli \(ToolInfo.version)") }
            return 0
        })
}
