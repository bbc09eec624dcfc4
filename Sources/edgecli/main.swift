// edgecli: the command line of rram-edge. Each command lives in its own file and is
// registered here; `edgecli help` lists them.
import Foundation
import Kernels
import Training

let commands = Registry.all

@MainActor func usage() -> String {
    var s = "usage: edgecli COMMAND [options]\n\ncommands:\n"
    for c in commands { s += "  " + c.name.padding(toLength: 10, withPad: " ", startingAt: 0) + c.summary + "\n" }
    s += "  help      this text; `edgecli help COMMAND` for a command's options\n"
    return s
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let name = argv.first, name != "help", name != "--help", name != "-h" else {
    if argv.count >= 2, let c = commands.first(where: { $0.name == argv[1] }) {
        print(c.usage)
    } else {
        print(usage(), terminator: "")
    }
    exit(argv.isEmpty ? 2 : 0)
}
guard let command = commands.first(where: { $0.name == name }) else {
    printErr("edgecli: unknown command '\(name)'\n" + usage())
    exit(2)
}
for problem in [FloatDispatch.environmentProblem, IntDispatch.environmentProblem].compactMap({ $0 }) {
    printErr("edgecli: error: \(problem)")
    exit(2)
}
var args = Args(command: name, Array(argv.dropFirst()))
if args.flag("help") {
    print(command.usage)
    exit(0)
}
do {
    exit(try command.run(&args))
} catch {
    printErr("edgecli \(name): error: \(error)")
    exit(1)
}
