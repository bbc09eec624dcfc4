// The commands of edgecli, in pipeline order. Each command's file defines a `static let`
// Command (e.g. `DeviceCommand.command`); add one line here per command.
enum Registry {
    static let all: [Command] = [
        InfoCommand.command,
        DeviceCommand.command,
        PruneCommand.command,
        FreezeCommand.command,
        RunCommand.command,
        InspectCommand.command,
        ExportCommand.command,
        FuzzCommand.command,
        BenchCommand.command,
    ]
}
