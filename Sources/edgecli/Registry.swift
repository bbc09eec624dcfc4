// The commands of edgecli, in pipeline order. Each command's file defines a `static let`
// Command (e.g. `DeviceCommand.command`); add one line here per command.
enum Registry {
    static let all: [Command] = [
        InfoCommand.command,
        DeviceCommand.command,
        PruneCommand.command,
        FreezeCommand.command,
        RunCommand.command,
        BenchCommand.command,
        InspectCommand.command,
        FuzzCommand.command,
        ExportCommand.command,
        GoldenCommand.command,
        VerifyCommand.command,
    ]
}
