import XCTest
@testable import DataIO
#if canImport(Glibc)
import Glibc
#endif

/// Asserts that `body` throws a DataIOError of exactly `kind`; returns the error for more checks.
@discardableResult
func assertDataIOError<T>(_ kind: DataIOError.Kind, file: String? = nil,
                          _ body: () throws -> T,
                          sourceFile: StaticString = #filePath, line: UInt = #line) -> DataIOError? {
    do {
        _ = try body()
        XCTFail("expected \(kind), nothing thrown", file: sourceFile, line: line)
        return nil
    } catch let e as DataIOError {
        XCTAssertEqual(e.kind, kind, "error was: \(e)", file: sourceFile, line: line)
        if let f = file {
            XCTAssertEqual(e.file, f, file: sourceFile, line: line)
            XCTAssertTrue(e.description.contains(f), "description lacks file: \(e)", file: sourceFile, line: line)
        }
        return e
    } catch {
        XCTFail("expected DataIOError \(kind), got \(error)", file: sourceFile, line: line)
        return nil
    }
}

/// Asserts a `.gzip(message)` error whose message contains `fragment`.
func assertGzipError<T>(containing fragment: String, _ body: () throws -> T,
                        sourceFile: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected gzip error, nothing thrown", file: sourceFile, line: line)
    } catch let e as DataIOError {
        guard case .gzip(let m) = e.kind else {
            XCTFail("expected .gzip, got \(e)", file: sourceFile, line: line); return
        }
        XCTAssertTrue(m.contains(fragment), "message '\(m)' lacks '\(fragment)'", file: sourceFile, line: line)
    } catch {
        XCTFail("unexpected \(error)", file: sourceFile, line: line)
    }
}

/// A fresh empty directory under /tmp, removed by the caller's `defer { removeTree(dir) }`.
func makeTempDir() -> String {
    var template = Array("/tmp/dataio-test-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    return String(cString: p!)
}

func listDir(_ dir: String) -> [String] {
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let ent = readdir(d) {
        let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

func removeTree(_ dir: String) {
    for n in listDir(dir) {
        let p = dir + "/" + n
        if directoryExists(p) { removeTree(p) } else { unlink(p) }
    }
    rmdir(dir)
}
