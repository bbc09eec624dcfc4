// Writing the export directory all or nothing, through DataIO's `AtomicDirectory`: every file
// goes into a fresh sibling directory `DIR.tmp-<pid>-<random>`, which is fsync'ed and renamed to
// `DIR`. A failure at any point removes the temporary directory and leaves `DIR` as it was.
// Replacing an earlier export (`replace`): the old directory is renamed aside, the new one
// renamed in, the old one removed (there is a short window in which `DIR` does not exist; it
// never holds a partial export).
import DataIO

enum ExportDirectory {
    /// An earlier export: only regular files, with a manifest of our format.
    static let kind = AtomicDirectory.Kind(what: "export") { dir in
        guard let names = AtomicDirectory.list(dir), names.allSatisfy({ fileExists(dir + "/" + $0) }),
              let m = try? readFileBytes(dir + "/" + Exporter.manifestName) else { return false }
        return String(decoding: m, as: UTF8.self).contains("\"format\": \"\(Exporter.formatName)\"")
    }

    static func exportError(_ e: AtomicDirectoryError) -> ExportError {
        ExportError(e.kind == .outputExists ? .outputExists : .io, e.description)
    }

    /// Throws when `dir` must not be written (see `AtomicDirectory.check`).
    static func checkTarget(_ dir: String, replace: Bool) throws(ExportError) {
        do { try AtomicDirectory.check(dir, kind: kind, replace: replace) } catch { throw exportError(error) }
    }

    /// `faultAfter` (tests only): throw an injected I/O error after that many files.
    static func write(_ files: [ExportFile], to dir: String, replace: Bool, faultAfter: Int? = nil) throws(ExportError) {
        do {
            try AtomicDirectory.write(files.map { ($0.path, $0.bytes) }, to: dir, kind: kind, replace: replace, faultAfter: faultAfter)
        } catch { throw exportError(error) }
    }
}
