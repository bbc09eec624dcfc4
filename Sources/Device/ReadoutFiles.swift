// Readout files on disk (NPY). PENDING: DataIO's NPY reader/writer (merged from main).
import Foundation

public enum ReadoutFiles {
    /// `P-set.npy` and `P-reset.npy` for a path P (a trailing ".npy" of P is dropped).
    public static func paths(_ p: String) -> (set: String, reset: String) {
        let stem = p.hasSuffix(".npy") ? String(p.dropLast(4)) : p
        return (stem + "-set.npy", stem + "-reset.npy")
    }

    /// Atomic write (temporary file + rename).
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else { throw DeviceError("\(path): cannot write") }
        if rename(tmp, path) != 0 { unlink(tmp); throw DeviceError("\(path): cannot rename temporary file") }
    }

    public static func write(set: [Float], reset: [Float], reads: Int, cells: Int, paths: (set: String, reset: String),
                             float64: Bool = false) throws {
        throw DeviceError("NPY output pending DataIO")
    }

    public static func load(setPath: String, resetPath: String, arrayRows: Int, arrayCols: Int,
                            unit: ConductanceUnit = .microSiemens) throws -> MeasuredReadouts {
        throw DeviceError("NPY input pending DataIO")
    }
}
