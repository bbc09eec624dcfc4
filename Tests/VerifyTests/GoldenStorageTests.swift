import DataIO
import Foundation
import Kernels
import ModelFile
@testable import Verify
import XCTest

/// Golden directory storage (format version 2): aliases, gzip-compressed files, a float subset,
/// and reading version 1 directories.
final class GoldenStorageTests: XCTestCase {
    /// A model whose crossbars have a single row tile each (sum == tile ADC codes) and a flatten.
    func singleTileModel(seed: UInt64) -> ModelBundle {
        ModelSamples.network(input: TensorShape(c: 1, h: 8, w: 8), convs: [(3, 3, 1)], fcs: [6, 4], arrayRows: 4096, seed: seed)
    }

    func manifestObject(_ dir: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try readFileBytes(dir + "/manifest.json"))) as? [String: Any])
    }

    /// Rewrites `dir/manifest.json` with `edit` applied to its text.
    func editManifest(_ dir: String, _ edit: (String) -> String) throws {
        let text = String(decoding: try readFileBytes(dir + "/manifest.json"), as: UTF8.self)
        let edited = edit(text)
        XCTAssertNotEqual(edited, text, "the manifest edit changed nothing")
        try writeFileAtomically(Array(edited.utf8), to: dir + "/manifest.json")
    }

    /// `--compress`: every NPY file is `NAME.npy.gz`, the gunzipped bytes are exactly the plain
    /// directory's files, the gzip header is fixed (no name, time 0, OS 255), the manifest lists
    /// the stored names, sizes and SHA-256 of the stored bytes; reading gives the same set and
    /// verify passes; two writes are byte-identical.
    func testCompressedRoundTripAndDeterminism() throws {
        let dir = makeTempDir(self)
        let b = multiTileModel(seed: 61)
        let (model, sha) = try writeModel(b, dir, "m.rram")
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 3, seed: 4),
                                    count: 3, labels: [0, 1, 2])
        try Golden.write(g, to: dir + "/plain")
        try Golden.write(g, to: dir + "/z1", storage: .init(compress: true))
        try Golden.write(g, to: dir + "/z2", storage: .init(compress: true))
        let plain = try directoryContents(dir + "/plain"), z1 = try directoryContents(dir + "/z1")
        XCTAssertTrue(z1 == (try directoryContents(dir + "/z2")), "byte-identical compressed directories")
        XCTAssertEqual(Set(z1.keys), Set(plain.keys.map { $0 == "manifest.json" ? $0 : $0 + ".gz" }))
        for (name, bytes) in z1 where name != "manifest.json" {
            XCTAssertEqual(Array(bytes.prefix(10)), [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 2, 0xFF], name)
            XCTAssertEqual(try Gzip.decompress(bytes, name: name), plain[String(name.dropLast(3))], name)
        }
        let m = try manifestObject(dir + "/z1")
        let files = try XCTUnwrap(m["files"] as? [[String: Any]])
        XCTAssertEqual(files.count, z1.count - 1)
        for f in files {
            let name = try XCTUnwrap(f["name"] as? String), bytes = try XCTUnwrap(z1[name])
            XCTAssertTrue(name.hasSuffix(".npy.gz"))
            XCTAssertEqual(f["bytes"] as? Int, bytes.count); XCTAssertEqual(f["sha256"] as? String, SHA256.hex(SHA256.hash(bytes)))
        }
        XCTAssertEqual(m["argmax"] as? String, "argmax.npy.gz"); XCTAssertEqual(m["labels"] as? String, "labels.npy.gz")
        let points = try XCTUnwrap(m["points"] as? [[String: Any]])
        XCTAssertEqual(points[0]["file"] as? String, "input.npy.gz"); XCTAssertEqual(points[0]["floatFile"] as? String, "input.float.npy.gz")
        XCTAssertEqual(try Golden.read(dir: dir + "/z1"), g)
        XCTAssertEqual(try Golden.read(dir: dir + "/plain"), g)
        XCTAssertLessThan(z1.values.reduce(0) { $0 + $1.count }, plain.values.reduce(0) { $0 + $1.count })
        let r = try GoldenCheck.verify(modelPath: model, goldenDir: dir + "/z1")
        XCTAssertTrue(r.ok, r.text()); XCTAssertEqual(r.layers.count, g.points.count)
        // a dump may hold NAME.npy.gz instead of NAME.npy
        try FileManager.default.createDirectory(atPath: dir + "/dump", withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(g) { try writeFileAtomically(try Golden.gzip(NPY.encode(a)), to: dir + "/dump/" + name + ".gz") }
        XCTAssertTrue(try Verifier.compareDump(dir: dir + "/dump", program: b.program, modelSHA256: sha, golden: g).ok)
    }

    /// A truncated `.npy.gz`: with the original manifest a checksum error naming the file; with a
    /// manifest recording the truncated bytes a gzip error naming the file; a flipped byte of a
    /// `.gz` file is a checksum error naming it; a truncated `.npy.gz` dump is an error naming it.
    func testCorruptedCompressedFilesAreNamed() throws {
        let dir = makeTempDir(self)
        let b = multiTileModel(seed: 62)
        let g = try Golden.generate(program: b.program, modelSHA256: "m", pixels: samplePixels(b.program, count: 2, seed: 5), count: 2)
        try Golden.write(g, to: dir + "/g", storage: .init(compress: true))
        let victim = g.points[3].file + ".gz", path = dir + "/g/" + victim
        let good = try readFileBytes(path)
        let cut = Array(good.prefix(good.count / 2))
        try writeFileAtomically(cut, to: path)
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .checksum); XCTAssertEqual((e as? VerifyError)?.path, path)
            XCTAssertTrue("\(e)".contains(victim) && "\(e)".contains("does not match the manifest"), "\(e)")
        }
        let oldSum = SHA256.hex(SHA256.hash(good)), newSum = SHA256.hex(SHA256.hash(cut))
        // only the victim's entry of `files` (another file may have the same bytes)
        func entry(_ text: String, _ from: String, _ to: String) -> String {
            text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.contains("{\"name\": \"\(victim)\", \"dtype\"") ? line.replacingOccurrences(of: from, with: to) : String(line)
            }.joined(separator: "\n")
        }
        let goodEntry = "\"bytes\": \(good.count), \"sha256\": \"\(oldSum)\"", cutEntry = "\"bytes\": \(cut.count), \"sha256\": \"\(newSum)\""
        try editManifest(dir + "/g") { entry($0, goodEntry, cutEntry) }
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badArray); XCTAssertEqual((e as? VerifyError)?.path, path)
            XCTAssertTrue("\(e)".contains(victim) && "\(e)".contains("gzip") && "\(e)".contains("truncated"), "\(e)")
        }
        // flip one byte of a .gz file (manifest restored for it): checksum error naming the file
        try writeFileAtomically(good, to: path)
        try editManifest(dir + "/g") { entry($0, cutEntry, goodEntry) }
        XCTAssertEqual(try Golden.read(dir: dir + "/g"), g)
        var flipped = good
        flipped[flipped.count / 2] ^= 0x40
        try writeFileAtomically(flipped, to: path)
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .checksum); XCTAssertEqual((e as? VerifyError)?.path, path)
        }
        // a truncated dump file
        try FileManager.default.createDirectory(atPath: dir + "/dump", withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(g) { try NPY.write(a, to: dir + "/dump/" + name) }
        let dp = dir + "/dump/" + g.points[3].file
        try FileManager.default.removeItem(atPath: dp)
        try writeFileAtomically(cut, to: dp + ".gz")
        XCTAssertThrowsError(try Verifier.compareDump(dir: dir + "/dump", program: b.program, modelSHA256: "m", golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badArray); XCTAssertEqual((e as? VerifyError)?.path, dp + ".gz")
            XCTAssertTrue("\(e)".contains("gzip"), "\(e)")
        }
    }

    /// Points whose values equal an earlier point's are stored once, recorded as aliases in the
    /// manifest (no file), and read back with their values; verify still reports every layer.
    func testAliasesAreStoredOnceAndReportedAsLayers() throws {
        let dir = makeTempDir(self)
        let b = singleTileModel(seed: 63)
        let (model, sha) = try writeModel(b, dir, "m.rram")
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 3, seed: 6), count: 3)
        let al = Golden.aliases(g)
        // every crossbar sum aliases its only tile; the flatten aliases its input
        var expected = 0
        for (j, p) in g.points.enumerated() {
            if p.op == "crossbar" {
                XCTAssertEqual(al[j], j - 1, p.name); XCTAssertEqual(g.points[j - 1].tile, 0); expected += 1
            } else if p.op == "flatten" {
                XCTAssertEqual(al[j].map { g.points[$0].tensor }, b.program.nodes[p.node!].inputs[0], p.name); expected += 1
            }
            if let a = al[j] { XCTAssertEqual(g.values[a], g.values[j]); XCTAssertLessThan(a, j) }
        }
        XCTAssertEqual(al.compactMap { $0 }.count, expected); XCTAssertGreaterThanOrEqual(expected, 4)
        try Golden.write(g, to: dir + "/g")
        let files = try directoryContents(dir + "/g")
        let m = try manifestObject(dir + "/g")
        let points = try XCTUnwrap(m["points"] as? [[String: Any]])
        for (j, p) in g.points.enumerated() {
            if let a = al[j] {
                XCTAssertEqual(points[j]["alias"] as? String, g.points[a].name)
                XCTAssertTrue(points[j]["file"] is NSNull); XCTAssertTrue(points[j]["floatFile"] is NSNull)
                XCTAssertNil(files[p.file]); XCTAssertNil(files[p.floatFile])
            } else {
                XCTAssertTrue(points[j]["alias"] is NSNull); XCTAssertNotNil(files[p.file]); XCTAssertNotNil(files[p.floatFile])
            }
        }
        XCTAssertEqual(try Golden.read(dir: dir + "/g"), g)
        let r = try GoldenCheck.verify(modelPath: model, goldenDir: dir + "/g")
        XCTAssertTrue(r.ok); XCTAssertEqual(r.layers.map(\.point.name), g.points.map(\.name))
        XCTAssertEqual(r.layers.map(\.elements), g.points.map { 3 * $0.shape.count })

        // dumps hold every point, aliases included; an edit of the alias source names it, an
        // edit of the aliased point names that one
        let dump = dir + "/dump"
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(g) { try NPY.write(a, to: dump + "/" + name) }
        XCTAssertTrue(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: sha, golden: g).ok)
        let sum = try XCTUnwrap(g.points.indices.first { g.points[$0].op == "crossbar" }), src = al[sum]!
        for j in [src, sum] {
            let p = g.points[j]
            var v = g.values[j]; v[5] &+= 1
            try NPY.write(try Golden.integerArray(p, count: 3, values: v), to: dump + "/" + p.file)
            let rd = try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: sha, golden: g)
            XCTAssertEqual(rd.firstMismatch?.layer, p.name); XCTAssertEqual(rd.firstMismatch?.flatIndex, 5)
            XCTAssertEqual(rd.firstMismatch?.expected, g.values[j][5]); XCTAssertEqual(rd.firstMismatch?.got, v[5])
            XCTAssertEqual(rd.layers.map(\.mismatches), g.points.indices.map { $0 == j ? 1 : 0 })
            try NPY.write(try Golden.integerArray(p, count: 3, values: g.values[j]), to: dump + "/" + p.file)
        }
        // an aliased point missing from a dump is an error naming its file
        try FileManager.default.removeItem(atPath: dump + "/" + g.points[sum].file)
        XCTAssertThrowsError(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: sha, golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .io); XCTAssertEqual((e as? VerifyError)?.path, dump + "/" + g.points[sum].file)
        }
        // a changed weight: the tile (alias source) is the first mismatch, the aliased sum differs too
        var copy = b
        let node = try XCTUnwrap(g.points[sum].node)
        guard case .crossbar(var cp) = copy.program.nodes[node].op else { return XCTFail() }
        let hi = Int8((1 << (cp.weightBits - 1)) - 1)
        for i in cp.weights.indices { cp.weights[i] = cp.weights[i] == hi ? -hi : hi }
        copy.program.nodes[node].op = .crossbar(cp)
        let rf = try Verifier.recompute(program: copy.program, modelSHA256: "other", golden: try Golden.read(dir: dir + "/g"))
        XCTAssertFalse(rf.ok)
        XCTAssertEqual(rf.firstMismatch?.layer, g.points[src].name)
        XCTAssertGreaterThan(rf.layers[sum].mismatches, 0)
        XCTAssertEqual(rf.layers[sum].mismatches, rf.layers[src].mismatches)

        // a manifest alias that is not an earlier stored point is refused
        let srcName = g.points[src].name, sumName = g.points[sum].name
        try editManifest(dir + "/g") { $0.replacingOccurrences(of: "\"alias\": \"\(srcName)\"", with: "\"alias\": \"\(sumName)\"") }
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badManifest); XCTAssertTrue("\(e)".contains("alias"), "\(e)")
        }
    }

    /// `floatCount` K: float values for the first K images only; verify's float-vs-integer
    /// agreement and the float argmax counts are over those K images and say so.
    func testFloatSubset() throws {
        let dir = makeTempDir(self)
        let b = multiTileModel(seed: 64)
        let (model, sha) = try writeModel(b, dir, "m.rram")
        let px = samplePixels(b.program, count: 5, seed: 7)
        let all = try Golden.generate(program: b.program, modelSHA256: sha, pixels: px, count: 5, labels: [0, 1, 2, 3, 4])
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: px, count: 5, labels: [0, 1, 2, 3, 4], floatCount: 2)
        XCTAssertEqual(g.floatCount, 2); XCTAssertEqual(all.floatCount, 5)
        XCTAssertEqual(g.values, all.values)
        for (j, p) in g.points.enumerated() { XCTAssertEqual(g.floats[j], Array(all.floats[j].prefix(2 * p.shape.count)), p.name) }
        try Golden.write(g, to: dir + "/g", storage: .init(compress: true))
        XCTAssertEqual(try manifestObject(dir + "/g")["floatCount"] as? Int, 2)
        let back = try Golden.read(dir: dir + "/g")
        XCTAssertEqual(back, g)
        let r = try GoldenCheck.verify(modelPath: model, goldenDir: dir + "/g")
        XCTAssertTrue(r.ok); XCTAssertEqual(r.floatCount, 2); XCTAssertEqual(r.argmax.floatCount, 2)
        for (j, l) in r.layers.enumerated() {
            XCTAssertEqual(l.elements, 5 * l.point.shape.count); XCTAssertEqual(l.floatElements, 2 * l.point.shape.count)
            let d = zip(g.floats[j], g.values[j]).map { Swift.abs(Double($0) - Double($1)) }
            XCTAssertEqual(l.floatMaxAbsDiff, d.max() ?? 0)
            XCTAssertEqual(l.floatMeanAbsDiff, d.reduce(0, +) / Double(d.count), accuracy: 1e-9)
        }
        let rAll = try Verifier.recompute(program: b.program, modelSHA256: sha, golden: all)
        XCTAssertLessThanOrEqual(r.argmax.floatAgreesWithInteger, 2)
        XCTAssertEqual(r.argmax.integerMatchesGolden, 5)
        XCTAssertEqual(rAll.argmax.floatCount, 5)
        XCTAssertTrue(r.text().contains("float-vs-integer agreement over the first 2 of 5 images"), r.text())
        XCTAssertTrue(r.text().contains("float == integer \(r.argmax.floatAgreesWithInteger)/2"), r.text())
        let o = r.jsonObject()
        XCTAssertEqual(o["floatCount"] as? Int, 2)
        XCTAssertEqual(((o["layers"] as? [[String: Any]])?.first?["floatVsInteger"] as? [String: Any])?["elements"] as? Int,
                       2 * g.points[0].shape.count)
        // float files hold [K, C, H, W]
        let inF = try Golden.decodeStored(try readFileBytes(dir + "/g/input.float.npy.gz"), path: "input.float.npy.gz", elements: 2 * g.points[0].shape.count)
        XCTAssertEqual(inF.shape, g.points[0].arrayShape(count: 2))
        // K = 0: no float files at all
        let none = try Golden.generate(program: b.program, modelSHA256: sha, pixels: px, count: 5, floatCount: 0)
        try Golden.write(none, to: dir + "/n")
        XCTAssertFalse(try directoryContents(dir + "/n").keys.contains { $0.contains(".float.") })
        let rn = try GoldenCheck.verify(modelPath: model, goldenDir: dir + "/n")
        XCTAssertTrue(rn.ok); XCTAssertEqual(rn.argmax.floatAgreesWithInteger, 0)
        XCTAssertTrue(rn.text().contains("no float values"), rn.text())
        // K out of range
        XCTAssertThrowsError(try Golden.generate(program: b.program, modelSHA256: sha, pixels: px, count: 5, floatCount: 6)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badInput)
        }
        // a manifest floatCount that disagrees with the float files
        try editManifest(dir + "/g") { $0.replacingOccurrences(of: "\"floatCount\": 2,", with: "\"floatCount\": 3,") }
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in XCTAssertEqual((e as? VerifyError)?.kind, .badArray) }
    }

    /// A version 1 directory (every point stored, plain `.npy`, floats for all images, no
    /// `floatCount` or `alias` keys) is still read.
    func testVersion1DirectoriesAreRead() throws {
        let dir = makeTempDir(self)
        let b = singleTileModel(seed: 65)
        let g = try Golden.generate(program: b.program, modelSHA256: "m", pixels: samplePixels(b.program, count: 2, seed: 8), count: 2)
        try FileManager.default.createDirectory(atPath: dir + "/v1", withIntermediateDirectories: false)
        var files: [(String, [UInt8], NPYArray)] = []
        for (j, p) in g.points.enumerated() {
            files.append((p.file, [], try Golden.integerArray(p, count: 2, values: g.values[j])))
            files.append((p.floatFile, [], try NPYArray(shape: p.arrayShape(count: 2), float32: g.floats[j])))
        }
        files.append(("argmax.npy", [], try NPYArray(shape: [2], int32: g.argmax)))
        files = files.map { ($0.0, NPY.encode($0.2), $0.2) }
        for f in files { try writeFileAtomically(f.1, to: dir + "/v1/" + f.0) }
        var s = "{\"format\": \"rram-edge-golden\", \"version\": 1, \"model\": {\"sha256\": \"m\"}, \"count\": 2, "
        s += "\"logits\": \"\(g.points[g.logits].name)\", \"argmax\": \"argmax.npy\", \"labels\": null, \"points\": ["
        s += g.points.map { p in
            "{\"name\": \"\(p.name)\", \"node\": \(p.node.map(String.init) ?? "null"), \"tile\": \(p.tile.map(String.init) ?? "null"), \"op\": \"\(p.op)\", "
            + "\"tensor\": \(p.tensor.map(String.init) ?? "null"), \"kind\": \"\(p.kind.goldenName)\", \"bits\": \(p.bits), "
            + "\"shape\": [\(p.shape.c), \(p.shape.h), \(p.shape.w)], \"file\": \"\(p.file)\", \"floatFile\": \"\(p.floatFile)\"}"
        }.joined(separator: ", ")
        s += "], \"files\": ["
        s += files.map { f in
            "{\"name\": \"\(f.0)\", \"dtype\": \"\(Golden.dtypeName(f.2.dtype))\", \"shape\": [\(f.2.shape.map(String.init).joined(separator: ", "))], "
            + "\"bytes\": \(f.1.count), \"sha256\": \"\(SHA256.hex(SHA256.hash(f.1)))\"}"
        }.joined(separator: ", ")
        s += "]}"
        try writeFileAtomically(Array(s.utf8), to: dir + "/v1/manifest.json")
        XCTAssertEqual(try Golden.read(dir: dir + "/v1"), g)
        // version 1 knows no .npy.gz and no aliases
        try editManifest(dir + "/v1") { $0.replacingOccurrences(of: "\"version\": 1", with: "\"version\": 3") }
        XCTAssertThrowsError(try Golden.read(dir: dir + "/v1")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badManifest); XCTAssertTrue("\(e)".contains("version"), "\(e)")
        }
    }
}
