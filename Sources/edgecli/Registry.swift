// The commands of edgecli, in pipeline order. Each command's file defines a `static let`
// Command (e.g. `DeviceCommand.command`); add one line here per command.
enum Registry {
    static let all: [Command] = [
        PipelineCommand.command,
        DeviceCommand.command,
        PruneCommand.command,
        FreezeCommand.command,
        RunCommand.command,
        InspectCommand.command,
        ExportCommand.command,
        GoldenCommand.command,
        VerifyCommand.command,
        BenchCommand.command,
        FuzzCommand.command,
        InfoCommand.command,
    ]
}
