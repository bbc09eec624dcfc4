// TEMPORARY: until DataIO's readFileBytes / writeFileAtomically land on main. Deleted on merge.
import Foundation

func readFileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    try Data(bytes).write(to: URL(fileURLWithPath: tmp))
    guard rename(tmp, path) == 0 else { unlink(tmp); throw CocoaError(.fileWriteUnknown) }
}
