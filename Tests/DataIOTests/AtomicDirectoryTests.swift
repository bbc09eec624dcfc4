import XCTest
import Foundation
@testable import DataIO

final class AtomicDirectoryTests: XCTestCase {
    let kind = AtomicDirectory.Kind(what: "test output") { dir in fileExists(dir + "/MARK") }

    func tmp() throws -> String {
        let d = NSTemporaryDirectory() + "atomicdir-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func testWritesAllOrNothingAndReplacesOnlyOwnOutput() throws {
        let root = try tmp(), dir = root + "/out"
        try AtomicDirectory.write([("MARK", [1]), ("a.bin", [1, 2, 3])], to: dir, kind: kind, replace: false)
        XCTAssertEqual(AtomicDirectory.list(dir), ["MARK", "a.bin"])
        XCTAssertEqual(try readFileBytes(dir + "/a.bin"), [1, 2, 3])
        // an earlier output: refused without replace, replaced with it
        XCTAssertThrowsError(try AtomicDirectory.write([("MARK", [2])], to: dir, kind: kind, replace: false)) {
            XCTAssertEqual(($0 as? AtomicDirectoryError)?.kind, .outputExists)
            XCTAssertTrue("\($0)".contains("--force"))
        }
        try AtomicDirectory.write([("MARK", [2])], to: dir + "/", kind: kind, replace: true)
        XCTAssertEqual(AtomicDirectory.list(dir), ["MARK"])
        // an injected fault leaves the earlier output untouched and no temporary directory
        XCTAssertThrowsError(try AtomicDirectory.write([("MARK", [3]), ("b", [4])], to: dir, kind: kind, replace: true, faultAfter: 1)) {
            XCTAssertEqual(($0 as? AtomicDirectoryError)?.kind, .io)
        }
        XCTAssertEqual(try readFileBytes(dir + "/MARK"), [2])
        XCTAssertEqual(AtomicDirectory.list(root), ["out"])
    }

    func testRefusesForeignDirectoriesFilesAndBadNames() throws {
        let root = try tmp()
        try FileManager.default.createDirectory(atPath: root + "/foreign", withIntermediateDirectories: false)
        try writeFileAtomically([0], to: root + "/foreign/notes.txt")
        for (path, replace) in [(root + "/foreign", true), (root + "/foreign/notes.txt", true), ("/", true)] {
            XCTAssertThrowsError(try AtomicDirectory.write([("MARK", [1])], to: path, kind: kind, replace: replace)) {
                XCTAssertEqual(($0 as? AtomicDirectoryError)?.kind, .outputExists, "\(path)")
            }
        }
        XCTAssertEqual(try readFileBytes(root + "/foreign/notes.txt"), [0])
        XCTAssertThrowsError(try AtomicDirectory.write([("MARK", [1])], to: root + "/missing/out", kind: kind, replace: false)) {
            XCTAssertEqual(($0 as? AtomicDirectoryError)?.kind, .io)
        }
        XCTAssertThrowsError(try AtomicDirectory.write([("../x", [1])], to: root + "/out", kind: kind, replace: false)) {
            XCTAssertEqual(($0 as? AtomicDirectoryError)?.kind, .io)
        }
        XCTAssertEqual(AtomicDirectory.list(root), ["foreign"])
    }
}
