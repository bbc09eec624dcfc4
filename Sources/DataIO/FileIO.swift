#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

private func errnoString(_ e: Int32) -> String {
    if let c = strerror(e) { return String(cString: c) }
    return "errno \(e)"
}

/// Reads a whole file. Errors name the path: `.fileNotFound`, or `.io(reason)`.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    var fd: Int32
    repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
    if fd < 0 {
        let e = errno
        if e == ENOENT || e == ENOTDIR { throw DataIOError(.fileNotFound, file: path) }
        throw DataIOError(.io("cannot open: \(errnoString(e))"), file: path)
    }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw DataIOError(.io("cannot stat: \(errnoString(errno))"), file: path) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw DataIOError(.io("is a directory"), file: path) }
    var out: [UInt8] = []
    if st.st_size > 0 { out.reserveCapacity(Int(st.st_size)) }
    let chunkSize = 1 << 20
    var chunk = [UInt8](repeating: 0, count: chunkSize)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, chunkSize) }
        if n < 0 {
            if errno == EINTR { continue }
            throw DataIOError(.io("read failed: \(errnoString(errno))"), file: path, offset: out.count)
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

/// Splits `path` into (directory, base name); the directory is "." for a bare name.
func splitPath(_ path: String) -> (dir: String, base: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let dir = String(path[..<slash])
    return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// fsync'ed and renamed over `path`. Readers see the old file or the new one, never half of
/// one; on any failure the temporary file is removed and `path` is untouched.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let (dir, base) = splitPath(path)
    if base.isEmpty { throw DataIOError(.io("path names a directory, not a file"), file: path) }
    var rng = SystemRandomNumberGenerator()
    let tag = String(rng.next() as UInt64, radix: 16)
    let tmp = (dir == "/" ? "" : dir) + "/.\(base).tmp-\(getpid())-\(tag)"
    var fd: Int32
    repeat { fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) } while fd < 0 && errno == EINTR
    if fd < 0 {
        let e = errno
        throw DataIOError(.io("cannot create temporary file in '\(dir)': \(errnoString(e))"), file: path)
    }
    var ok = false
    defer {
        if !ok { unlink(tmp) }
    }
    do {
        var written = 0
        try bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DataIOError(.io("write failed: \(errnoString(errno))"), file: path, offset: written)
                }
                written += n
            }
        }
        if fsync(fd) != 0 {
            throw DataIOError(.io("fsync failed: \(errnoString(errno))"), file: path)
        }
    } catch {
        close(fd)
        throw error
    }
    if close(fd) != 0 { throw DataIOError(.io("close failed: \(errnoString(errno))"), file: path) }
    if rename(tmp, path) != 0 {
        throw DataIOError(.io("cannot rename temporary file into place: \(errnoString(errno))"), file: path)
    }
    ok = true
    // Make the rename durable; failure here does not un-write the file, so it is ignored.
    let dfd = open(dir, O_RDONLY | O_CLOEXEC)
    if dfd >= 0 { _ = fsync(dfd); close(dfd) }
}

/// True when `path` exists and is a regular file.
public func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}

/// True when `path` exists and is a directory.
public func directoryExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}
