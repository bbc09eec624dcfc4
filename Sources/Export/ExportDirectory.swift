// Writing the export directory all or nothing: every file goes into a fresh sibling directory
// `DIR.tmp-<pid>-<random>` (each file itself written atomically and fsync'ed), the directory is
// fsync'ed, then renamed to `DIR`. A failure at any point removes the temporary directory and
// leaves `DIR` as it was. Replacing an earlier export (`replace`): the old directory is renamed
// aside (`DIR.old-...`), the new one renamed in, the old one removed; if the second rename fails
// the old one is renamed back. (Linux has no portable directory exchange in Swift's Glibc, so
// there is a short window in which `DIR` does not exist; it never holds a partial export.)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DataIO

enum ExportDirectory {
    static func errnoText(_ e: Int32) -> String {
        if let c = strerror(e) { return String(cString: c) }
        return "errno \(e)"
    }

    static func normalized(_ dir: String) -> String {
        var d = dir
        while d.count > 1, d.hasSuffix("/") { d.removeLast() }
        return d
    }

    static func parent(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<i])
        return p.isEmpty ? "/" : p
    }

    /// Names in a directory (without "." and ".."), or nil if it cannot be opened.
    static func list(_ dir: String) -> [(name: String, isRegular: Bool)]? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        var out: [(String, Bool)] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: &e.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            out.append((name, fileExists(dir + "/" + name)))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    enum TargetState { case absent, empty, earlierExport }

    /// What `dir` is now; throws when it must not be written (a file, a non-empty directory that
    /// is not an earlier export, or an earlier export without `replace`).
    @discardableResult
    static func checkTarget(_ rawDir: String, replace: Bool) throws(ExportError) -> TargetState {
        let dir = normalized(rawDir)
        guard !dir.isEmpty, dir != "/" else { throw ExportError(.outputExists, "'\(rawDir)' cannot be an export directory") }
        var st = stat()
        if lstat(dir, &st) != 0 {
            let e = errno
            guard e == ENOENT else { throw ExportError(.io, "\(dir): \(errnoText(e))") }
            let p = parent(dir)
            guard directoryExists(p) else { throw ExportError(.io, "\(dir): the parent directory '\(p)' does not exist") }
            return .absent
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw ExportError(.outputExists, "\(dir) exists and is not a directory") }
        guard let entries = list(dir) else { throw ExportError(.io, "\(dir): cannot list: \(errnoText(errno))") }
        if entries.isEmpty { return .empty }
        let isExport: Bool = {
            guard entries.allSatisfy(\.isRegular), let m = try? readFileBytes(dir + "/" + Exporter.manifestName) else { return false }
            return String(decoding: m, as: UTF8.self).contains("\"format\": \"\(Exporter.formatName)\"")
        }()
        guard isExport else {
            throw ExportError(.outputExists, "\(dir) exists, is not empty and does not hold an earlier export (no \(Exporter.manifestName) of format \(Exporter.formatName)); refusing to write into it")
        }
        guard replace else { throw ExportError(.outputExists, "\(dir) holds an earlier export; pass --force to replace it") }
        return .earlierExport
    }

    /// Removes a flat directory we created (regular files only).
    static func removeFlat(_ dir: String) {
        for e in list(dir) ?? [] { unlink(dir + "/" + e.name) }
        rmdir(dir)
    }

    /// `faultAfter` (tests only): throw an injected I/O error after that many files are written.
    static func write(_ files: [ExportFile], to rawDir: String, replace: Bool, faultAfter: Int? = nil) throws(ExportError) {
        let dir = normalized(rawDir)
        let state = try checkTarget(dir, replace: replace)
        var rng = SystemRandomNumberGenerator()
        let tag = "\(getpid())-\(String(rng.next() as UInt64, radix: 16))"
        let tmp = dir + ".tmp-" + tag
        guard mkdir(tmp, 0o755) == 0 else {
            throw ExportError(.io, "cannot create the temporary directory \(tmp): \(errnoText(errno))")
        }
        var installed = false
        defer { if !installed { removeFlat(tmp) } }
        for (k, f) in files.enumerated() {
            if k == faultAfter { throw ExportError(.io, "injected fault after \(k) files") }
            precondition(!f.path.contains("/") && !f.path.isEmpty && !f.path.hasPrefix("."))
            do { try writeFileAtomically(f.bytes, to: tmp + "/" + f.path) } catch {
                throw ExportError(.io, "\(dir)/\(f.path): \(error)")
            }
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        switch state {
        case .absent, .empty:
            // rename(2) replaces an empty directory.
            guard rename(tmp, dir) == 0 else { throw ExportError(.io, "cannot rename \(tmp) to \(dir): \(errnoText(errno))") }
        case .earlierExport:
            let old = dir + ".old-" + tag
            guard rename(dir, old) == 0 else { throw ExportError(.io, "cannot move the earlier export \(dir) aside: \(errnoText(errno))") }
            guard rename(tmp, dir) == 0 else {
                let e = errno
                _ = rename(old, dir)
                throw ExportError(.io, "cannot rename \(tmp) to \(dir): \(errnoText(e))")
            }
            removeFlat(old)
        }
        installed = true
        let pfd = open(parent(dir), O_RDONLY)
        if pfd >= 0 { _ = fsync(pfd); close(pfd) }
    }
}
