// Writing a flat directory of files all or nothing (export images, golden vectors): the files
// are written into a sibling `DIR.tmp-<pid>-<random>` and renamed into place; an earlier output
// of the same kind is replaced only when asked, with two renames, so that DIR is never partial.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct AtomicDirectoryError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// DIR exists and must not be written (not a directory, foreign content, or an earlier
        /// output without `replace`).
        case outputExists
        /// A system call failed (or a test injected a fault).
        case io
    }
    public let kind: Kind
    /// The path the problem is about.
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

public enum AtomicDirectory {
    /// What DIR is now.
    public enum State: Sendable { case absent, empty, earlierOutput }

    /// `what`: the noun used in messages ("export", "golden directory"); `isEarlierOutput(dir)`:
    /// whether a non-empty DIR holds an earlier output of ours (only then may it be replaced).
    public struct Kind: Sendable {
        public let what: String
        public let isEarlierOutput: @Sendable (String) -> Bool
        public init(what: String, isEarlierOutput: @escaping @Sendable (String) -> Bool) {
            self.what = what; self.isEarlierOutput = isEarlierOutput
        }
    }

    static func errnoText(_ e: Int32) -> String {
        if let c = strerror(e) { return String(cString: c) }
        return "errno \(e)"
    }

    /// `dir` without trailing slashes.
    public static func normalized(_ dir: String) -> String {
        var d = dir
        while d.count > 1, d.hasSuffix("/") { d.removeLast() }
        return d
    }

    static func parent(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<i])
        return p.isEmpty ? "/" : p
    }

    /// Names in a directory (without "." and ".."), sorted, or nil if it cannot be opened.
    public static func list(_ dir: String) -> [String]? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: &e.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    /// Removes a flat directory we created (its files, then itself).
    static func removeFlat(_ dir: String) {
        for e in list(dir) ?? [] { unlink(dir + "/" + e) }
        rmdir(dir)
    }

    /// What `dir` is now; throws when it must not be written: a file, a non-empty directory
    /// that is not an earlier output of `kind`, or an earlier output without `replace`.
    @discardableResult
    public static func check(_ rawDir: String, kind: Kind, replace: Bool) throws(AtomicDirectoryError) -> State {
        let dir = normalized(rawDir)
        guard !dir.isEmpty, dir != "/" else {
            throw AtomicDirectoryError(kind: .outputExists, path: rawDir, message: "cannot be an \(kind.what) directory")
        }
        var st = stat()
        if lstat(dir, &st) != 0 {
            let e = errno
            guard e == ENOENT else { throw AtomicDirectoryError(kind: .io, path: dir, message: errnoText(e)) }
            let p = parent(dir)
            guard directoryExists(p) else {
                throw AtomicDirectoryError(kind: .io, path: dir, message: "the parent directory '\(p)' does not exist")
            }
            return .absent
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw AtomicDirectoryError(kind: .outputExists, path: dir, message: "exists and is not a directory")
        }
        guard let entries = list(dir) else {
            throw AtomicDirectoryError(kind: .io, path: dir, message: "cannot list: \(errnoText(errno))")
        }
        if entries.isEmpty { return .empty }
        guard kind.isEarlierOutput(dir) else {
            throw AtomicDirectoryError(kind: .outputExists, path: dir,
                                       message: "exists, is not empty and does not hold an earlier \(kind.what); refusing to write into it")
        }
        guard replace else {
            throw AtomicDirectoryError(kind: .outputExists, path: dir, message: "holds an earlier \(kind.what); pass --force to replace it")
        }
        return .earlierOutput
    }

    /// Writes `files` (flat names, no "/", not starting with ".") into `dir` all or nothing.
    /// `faultAfter` (tests only): throw an injected I/O error after that many files.
    public static func write(_ files: [(name: String, bytes: [UInt8])], to rawDir: String, kind: Kind, replace: Bool,
                             faultAfter: Int? = nil) throws(AtomicDirectoryError) {
        let dir = normalized(rawDir)
        let state = try check(dir, kind: kind, replace: replace)
        for f in files where f.name.isEmpty || f.name.contains("/") || f.name.hasPrefix(".") {
            throw AtomicDirectoryError(kind: .io, path: dir, message: "invalid file name '\(f.name)'")
        }
        // The temporary name only has to be unique; it never reaches an output.
        var rng = SystemRandomNumberGenerator()
        let tag = "\(getpid())-\(String(rng.next() as UInt64, radix: 16))"
        let tmp = dir + ".tmp-" + tag
        guard mkdir(tmp, 0o755) == 0 else {
            throw AtomicDirectoryError(kind: .io, path: tmp, message: "cannot create the temporary directory: \(errnoText(errno))")
        }
        var installed = false
        defer { if !installed { removeFlat(tmp) } }
        for (k, f) in files.enumerated() {
            if k == faultAfter { throw AtomicDirectoryError(kind: .io, path: tmp, message: "injected fault after \(k) files") }
            do { try writeFileAtomically(f.bytes, to: tmp + "/" + f.name) } catch {
                throw AtomicDirectoryError(kind: .io, path: dir + "/" + f.name, message: "\(error)")
            }
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        switch state {
        case .absent, .empty:
            // rename(2) replaces an empty directory.
            guard rename(tmp, dir) == 0 else {
                throw AtomicDirectoryError(kind: .io, path: dir, message: "cannot rename \(tmp) into place: \(errnoText(errno))")
            }
        case .earlierOutput:
            let old = dir + ".old-" + tag
            guard rename(dir, old) == 0 else {
                throw AtomicDirectoryError(kind: .io, path: dir, message: "cannot move the earlier \(kind.what) aside: \(errnoText(errno))")
            }
            guard rename(tmp, dir) == 0 else {
                let e = errno
                _ = rename(old, dir)
                throw AtomicDirectoryError(kind: .io, path: dir, message: "cannot rename \(tmp) into place: \(errnoText(e))")
            }
            removeFlat(old)
        }
        installed = true
        let pfd = open(parent(dir), O_RDONLY)
        if pfd >= 0 { _ = fsync(pfd); close(pfd) }
    }
}
