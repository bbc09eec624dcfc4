// The export directory as a whole: manifest (sizes, SHA-256, file list), determinism, errors
// that leave nothing behind, replacing an earlier export, and the edgecli command.
import XCTest
import DataIO
@testable import Export
import Foundation
import Kernels
import ModelFile

final class DirectoryTests: XCTestCase {
    func manifest(_ dir: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try readFileBytes(dir + "/manifest.json"))) as? [String: Any])
    }

    func testManifestListsEveryFileWithSizeAndSHA256() throws {
        for name in ["fashion", "small"] {
            let f = fixture(name)
            let m = try manifest(f.dir)
            XCTAssertEqual(m["format"] as? String, "rram-edge-export")
            let model = try XCTUnwrap(m["model"] as? [String: Any])
            XCTAssertEqual(model["task"] as? String, f.bundle.metadata.task, "quotes and UTF-8 survive the JSON escaping")
            XCTAssert(model["modelSha256"] is NSNull, "no model file hash when exporting a bundle from memory")
            let files = try XCTUnwrap(m["files"] as? [[String: Any]])
            let listed = files.compactMap { $0["path"] as? String }
            XCTAssertEqual(Set(listed + ["manifest.json"]), Set(listDir(f.dir)), "manifest lists exactly the other files")
            XCTAssertEqual(listed.count, Set(listed).count)
            let sha = tool("sha256sum")
            for e in files {
                let path = f.dir + "/" + (e["path"] as! String)
                let bytes = try readFileBytes(path)
                XCTAssertEqual(e["bytes"] as? Int, bytes.count, path)
                XCTAssertEqual(e["sha256"] as? String, SHA256.hex(SHA256.hash(bytes)), path)
                if let sha {   // and with an independent implementation when present
                    let r = try runTool(sha, [path])
                    XCTAssertEqual(r.out.split(separator: " ").first.map(String.init), e["sha256"] as? String, path)
                }
            }
            let arrays = try XCTUnwrap(m["arrays"] as? [String: Int])
            XCTAssertEqual(arrays["count"], f.bundle.metadata.placement!.arrayCount)
            let per = f.bundle.metadata.placement!.arrayCount
            let expectedFiles = per * (name == "small" ? 6 : 4) + 7   // + requant x3, model.h/.c, plan x2
            XCTAssertEqual(listed.count, expectedFiles)
        }
    }

    /// Every manifest layer says which matrix it is; an rnn node's two layers are named.
    func testManifestNamesTheMatrixOfEveryLayer() throws {
        for name in ["fashion", "crnn"] {
            let f = fixture(name)
            let layers = try XCTUnwrap(try manifest(f.dir)["layers"] as? [[String: Any]])
            XCTAssertEqual(layers.count, f.bundle.program.crossbarLayers.count, name)
            var expected: [String] = []
            for n in f.bundle.program.nodes {
                switch n.op.kind {
                case .crossbar: expected.append("crossbar")
                case .rnn: expected += ["rnn.input", "rnn.recurrent"]
                default: break
                }
            }
            XCTAssertEqual(layers.compactMap { $0["matrix"] as? String }, expected, name)
            if name == "crnn" { XCTAssert(expected.contains("rnn.recurrent"), "the crnn fixture has an rnn node") }
        }
    }

    func testExportingTwiceGivesIdenticalBytes() throws {
        let b = generate(smallSpec(), seed: 99)
        let parent = tempDir("twice")
        defer { removeTree(parent) }
        _ = try Exporter.export(b, to: parent + "/a")
        _ = try Exporter.export(b, to: parent + "/b")
        let names = listDir(parent + "/a")
        XCTAssertEqual(names, listDir(parent + "/b"))
        XCTAssertGreaterThan(names.count, 10)
        for n in names { XCTAssertEqual(try readFileBytes(parent + "/a/" + n), try readFileBytes(parent + "/b/" + n), n) }
        // Through the model file too (encode, decode, export in memory).
        let decoded = try ModelBundle.decode(try b.encode())
        let again = try Exporter.files(for: decoded).files
        for f in again { XCTAssertEqual(f.bytes, try readFileBytes(parent + "/a/" + f.path), f.path) }
        // And a different model gives different images.
        let other = try Exporter.files(for: generate(smallSpec(), seed: 100)).files
        XCTAssertNotEqual(other.first { $0.path == "array0.weights.mem" }?.bytes, try readFileBytes(parent + "/a/array0.weights.mem"))
    }

    func assertFails(_ b: ModelBundle, _ kind: ExportError.Kind, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        let parent = tempDir("fail")
        defer { removeTree(parent) }
        do {
            _ = try Exporter.export(b, to: parent + "/out")
            XCTFail("exported a bad model", file: file, line: line)
        } catch {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            XCTAssert(error.message.contains(needle), "'\(error.message)' does not mention '\(needle)'", file: file, line: line)
        }
        XCTAssertEqual(listDir(parent), [], "nothing written", file: file, line: line)
    }

    func testMissingPlacementIsAClearErrorAndWritesNothing() {
        var s = smallSpec(); s.placement = false
        assertFails(generate(s, seed: 1), .noPlacement, "no crossbar placement")
    }

    func testInconsistentPlacementsAreRejected() {
        let b = generate(smallSpec(), seed: 2)
        let pl = b.metadata.placement!
        func with(_ edit: (inout Placement) -> Void) -> ModelBundle {
            var c = b; edit(&c.metadata.placement!); return c
        }
        // Columns: a pair takes two columns.
        assertFails(with { $0.tiles[0].colOffset = pl.arrayCols - 2 * $0.tiles[0].outputs + 1 }, .badPlacement, "exceed")
        // Two tiles on the same cells.
        assertFails(with { p in
            let i = p.tiles.indices.first { p.tiles[$0].array == p.tiles[0].array && $0 != 0 }!
            p.tiles[i].rowOffset = p.tiles[0].rowOffset; p.tiles[i].colOffset = p.tiles[0].colOffset
        }, .badPlacement, "shares cells")
        // A weight not placed.
        assertFails(with { $0.tiles.removeLast() }, .badPlacement, "not placed")
        // Rows that are not one of the program's row tiles (layer 1 has tiles 20, 20, 5).
        assertFails(with { p in
            let i = p.tiles.firstIndex { $0.layer == 1 && $0.rows == 20 }!
            p.tiles[i].rows = 10
        }, .badPlacement, "not one row tile")
        assertFails(with { $0.tiles[0].array = $0.arrayCount }, .badPlacement, "array out of range")
        assertFails(with { $0.tiles[0].rowOffset = .max }, .badPlacement, "exceed")
        assertFails(with { $0.tiles[0].colOffset = .max - 1 }, .badPlacement, "exceed")
        assertFails(with { $0.tiles[0].inputOffset = .max }, .badPlacement, "exceed the layer")
        assertFails(with { $0.tiles[0].layer = 7 }, .badPlacement, "layer out of range")
        assertFails(with { $0.arrayRows = 1 << 20; $0.arrayCols = 1 << 20 }, .tooLarge, "exceed the export limit")
        var m = b; m.metadata.masks[0] = PackedMask(count: 3, bytes: [0])
        assertFails(m, .invalidModel, "mask has 3 bits")
    }

    func testOutputDirectoryRules() throws {
        let b = generate(smallSpec(), seed: 3)
        let parent = tempDir("dirs")
        defer { removeTree(parent) }
        // Parent missing.
        XCTAssertThrowsError(try Exporter.export(b, to: parent + "/no/such/out")) { XCTAssertEqual(($0 as! ExportError).kind, .io) }
        // A file in the way.
        try writeFileAtomically([1, 2, 3], to: parent + "/file")
        XCTAssertThrowsError(try Exporter.export(b, to: parent + "/file", options: ExportOptions(replace: true))) {
            XCTAssertEqual(($0 as! ExportError).kind, .outputExists)
        }
        XCTAssertEqual(try readFileBytes(parent + "/file"), [1, 2, 3])
        // A directory with other content is never touched, even with replace.
        try FileManager.default.createDirectory(atPath: parent + "/mine", withIntermediateDirectories: false)
        try writeFileAtomically([7], to: parent + "/mine/notes.txt")
        XCTAssertThrowsError(try Exporter.export(b, to: parent + "/mine", options: ExportOptions(replace: true))) {
            XCTAssertEqual(($0 as! ExportError).kind, .outputExists)
        }
        XCTAssertEqual(listDir(parent + "/mine"), ["notes.txt"])
        // An empty directory is filled; an earlier export needs replace, and is then replaced whole.
        try FileManager.default.createDirectory(atPath: parent + "/empty", withIntermediateDirectories: false)
        _ = try Exporter.export(b, to: parent + "/empty")
        XCTAssert(fileExists(parent + "/empty/manifest.json"))
        XCTAssertThrowsError(try Exporter.export(b, to: parent + "/empty")) { XCTAssertEqual(($0 as! ExportError).kind, .outputExists) }
        let other = generate(smallSpec(), seed: 4)
        _ = try Exporter.export(other, to: parent + "/empty/", options: ExportOptions(replace: true))
        let fresh = try Exporter.files(for: other).files
        XCTAssertEqual(listDir(parent + "/empty"), fresh.map(\.path).sorted())
        for f in fresh { XCTAssertEqual(try readFileBytes(parent + "/empty/" + f.path), f.bytes, f.path) }
        // No temporary or old directories are left next to the exports.
        XCTAssertEqual(listDir(parent), ["empty", "file", "mine"])
        // An unwritable parent (skipped as root, who can write anywhere).
        if getuid() != 0 {
            try FileManager.default.createDirectory(atPath: parent + "/ro", withIntermediateDirectories: false)
            chmod(parent + "/ro", 0o555)
            defer { chmod(parent + "/ro", 0o755) }
            XCTAssertThrowsError(try Exporter.export(b, to: parent + "/ro/out")) { XCTAssertEqual(($0 as! ExportError).kind, .io) }
            XCTAssertEqual(listDir(parent + "/ro"), [])
        }
    }

    // MARK: the command line

    func edgecli() throws -> String {
        // The test bundle sits in the build directory next to the edgecli executable.
        let url = Bundle(for: DirectoryTests.self).bundleURL
        let candidates = [url.path + "/edgecli", url.deletingLastPathComponent().path + "/edgecli"]
        guard let p = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("edgecli not built next to the tests (\(candidates))")
        }
        return p
    }

    func testCommandLine() throws {
        let exe = try edgecli()
        let parent = tempDir("cli")
        defer { removeTree(parent) }
        let b = generate(smallSpec(), seed: 8)
        try b.write(to: parent + "/m.rram")
        let ok = try runTool(exe, ["export", parent + "/m.rram", "--out", parent + "/out", "--json"])
        XCTAssertEqual(ok.status, 0, ok.err)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(ok.out.utf8)) as? [String: Any])
        let plan = try Exporter.files(for: b).plan
        XCTAssertEqual(j["cellsToReset"] as? Int, plan.steps.count)
        // The manifest records the model file's hash.
        let m = try manifest(parent + "/out")
        XCTAssertEqual((m["model"] as? [String: Any])?["modelSha256"] as? String, SHA256.hex(SHA256.hash(try readFileBytes(parent + "/m.rram"))))
        // Errors: non-zero exit, a message on stderr, nothing written.
        var s = smallSpec(); s.placement = false
        try generate(s, seed: 8).write(to: parent + "/np.rram")
        let cases: [([String], String)] = [
            (["export", parent + "/missing.rram", "--out", parent + "/o1"], "cannot read"),
            (["export", parent + "/np.rram", "--out", parent + "/o2"], "no crossbar placement"),
            (["export", parent + "/m.rram", "--out", parent + "/o3", "--bogus"], "unknown option '--bogus'"),
            (["export", parent + "/m.rram"], "--out"),
            (["export", parent + "/m.rram", "--out", parent + "/nodir/o4"], "does not exist"),
            (["export", parent + "/m.rram", "--out", parent + "/out"], "--force"),
        ]
        for (args, needle) in cases {
            let r = try runTool(exe, args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssert(r.err.contains(needle), "stderr '\(r.err)' lacks '\(needle)'")
        }
        XCTAssertEqual(listDir(parent), ["m.rram", "np.rram", "out"])
        let forced = try runTool(exe, ["export", parent + "/m.rram", "--out", parent + "/out", "--force"])
        XCTAssertEqual(forced.status, 0, forced.err)
    }
}

final class FaultTests: XCTestCase {
    func testAFailureMidwayLeavesNoTraceAndKeepsTheEarlierExport() throws {
        let b = generate(smallSpec(), seed: 21)
        let files = try Exporter.files(for: b).files
        let parent = tempDir("fault")
        defer { removeTree(parent) }
        // New directory: nothing appears.
        XCTAssertThrowsError(try ExportDirectory.write(files, to: parent + "/out", replace: false, faultAfter: 5)) {
            XCTAssert("\($0)".contains("injected"))
        }
        XCTAssertEqual(listDir(parent), [])
        // Over an earlier export: the earlier files stay exactly as they were.
        let old = try Exporter.files(for: generate(smallSpec(), seed: 22)).files
        try ExportDirectory.write(old, to: parent + "/out", replace: false)
        XCTAssertThrowsError(try ExportDirectory.write(files, to: parent + "/out", replace: true, faultAfter: files.count - 1))
        XCTAssertEqual(listDir(parent), ["out"])
        XCTAssertEqual(listDir(parent + "/out"), old.map(\.path).sorted())
        for f in old { XCTAssertEqual(try readFileBytes(parent + "/out/" + f.path), f.bytes) }
    }
}
