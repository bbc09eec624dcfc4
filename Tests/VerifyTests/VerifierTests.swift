import DataIO
import Foundation
import Kernels
import ModelFile
@testable import Verify
import XCTest

final class VerifierTests: XCTestCase {
    /// golden then verify on the same model: every layer matches; the JSON report parses and
    /// holds per-layer counts and float-vs-integer agreement.
    func testRoundTripMatchesAndJSON() throws {
        let dir = makeTempDir(self)
        for seed: UInt64 in [1, 2, 3, 4] {
            let b = seed == 4 ? multiTileModel(seed: 4) : ModelSamples.random(seed: seed)
            let (path, sha) = try writeModel(b, dir, "m\(seed).rram")
            let labels = (0..<3).map { Int32($0 % 3) }
            let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 3, seed: seed),
                                        count: 3, labels: labels)
            try Golden.write(g, to: dir + "/g\(seed)")
            let r = try GoldenCheck.verify(modelPath: path, goldenDir: dir + "/g\(seed)")
            XCTAssertTrue(r.ok); XCTAssertNil(r.firstMismatch); XCTAssertEqual(r.warnings, [])
            XCTAssertTrue(r.modelMatchesGolden)
            XCTAssertEqual(r.layers.map(\.point), g.points)
            XCTAssertEqual(r.layers.map(\.mismatches), Array(repeating: 0, count: g.points.count))
            XCTAssertEqual(r.layers.map(\.elements), g.points.map { 3 * $0.shape.count })
            XCTAssertEqual(r.layers[0].floatMaxAbsDiff, 0, "the input is the same in float and integer")
            XCTAssertEqual(r.argmax.integerMatchesGolden, 3)
            XCTAssertNotNil(r.argmax.integerCorrect)
            XCTAssertTrue(r.text().contains("MATCH: all \(g.points.count) layers bit-exact"), r.text())
            // float agreement equals the directly computed |float - int| statistics
            for (j, l) in r.layers.enumerated() {
                let d = zip(g.floats[j], g.values[j]).map { Swift.abs(Double($0) - Double($1)) }
                XCTAssertEqual(l.floatMaxAbsDiff, d.max() ?? 0)
                XCTAssertEqual(l.floatMeanAbsDiff, d.reduce(0, +) / Double(d.count), accuracy: 1e-9)
            }
            let data = try JSONSerialization.data(withJSONObject: r.jsonObject())
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(o["ok"] as? Bool, true)
            let layers = try XCTUnwrap(o["layers"] as? [[String: Any]])
            XCTAssertEqual(layers.count, g.points.count)
            for l in layers {
                XCTAssertEqual(l["mismatches"] as? Int, 0)
                XCTAssertNotNil(l["elements"] as? Int)
                let f = try XCTUnwrap(l["floatVsInteger"] as? [String: Any])
                XCTAssertNotNil(f["maxAbsDiffLSB"] as? Double); XCTAssertNotNil(f["meanAbsDiffLSB"] as? Double)
            }
            XCTAssertTrue(o["firstMismatch"] is NSNull)
        }
    }

    /// Flips weight codes in a copy of the model (decode, change one code, re-encode): verify
    /// fails and names the tile of that crossbar holding the row, at the flipped output channel;
    /// every earlier layer matches; the model hash differs (a warning, not a refusal).
    func testFlippedWeightNamesLayerAndElement() throws {
        let dir = makeTempDir(self)
        let b = livelyModel(seed: 25)
        let (_, sha) = try writeModel(b, dir, "m.rram")
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 2, seed: 7), count: 2)
        try Golden.write(g, to: dir + "/g")
        var checkedNodes = Set<Int>()
        for (k, node) in b.program.nodes.enumerated() {
            guard case .crossbar(let cp) = node.op else { continue }
            var found = false
            // try a few weights spread over the matrix until one flip changes an ADC code
            for idx in stride(from: 0, to: cp.weights.count, by: Swift.max(1, cp.weights.count / 40)) where !found {
                var copy = try ModelBundle.decode(try b.encode())
                guard case .crossbar(var p) = copy.program.nodes[k].op else { return XCTFail() }
                let hi = Int8((1 << (p.weightBits - 1)) - 1), lo = -hi - 1
                p.weights[idx] = p.weights[idx] == hi ? lo : hi
                copy.program.nodes[k].op = .crossbar(p)
                let (path, sha2) = try writeModel(copy, dir, "flip.rram")
                XCTAssertNotEqual(sha, sha2)
                let r = try GoldenCheck.verify(modelPath: path, goldenDir: dir + "/g")
                XCTAssertEqual(r.warnings.count, 1); XCTAssertFalse(r.modelMatchesGolden)
                guard !r.ok else { continue }
                found = true
                let o = idx / cp.fanIn, row = idx % cp.fanIn
                let tile = cp.tiles.firstIndex { row >= $0.rowStart && row < $0.rowStart + $0.rowCount }!
                let m = try XCTUnwrap(r.firstMismatch)
                XCTAssertEqual(m.node, k); XCTAssertEqual(m.tile, tile)
                XCTAssertEqual(m.layer, g.points.first { $0.node == k && $0.tile == tile }!.name)
                XCTAssertEqual(m.c, o, "the flipped weight's output channel")
                let j = g.index(of: m.layer)!
                XCTAssertEqual(m.expected, g.values[j][m.flatIndex])
                XCTAssertNotEqual(m.got, m.expected)
                XCTAssertEqual(m.flatIndex, ((m.n * g.points[j].shape.c + m.c) * g.points[j].shape.h + m.h) * g.points[j].shape.w + m.w)
                XCTAssertTrue(r.layers[..<j].allSatisfy { $0.mismatches == 0 }, "nothing upstream differs")
                // the other tiles of that crossbar are untouched
                for l in r.layers where l.point.node == k && l.point.tile != nil && l.point.tile != tile {
                    XCTAssertEqual(l.mismatches, 0, l.point.name)
                }
                XCTAssertTrue(r.text().contains("FIRST MISMATCH: layer \(m.layer)"), r.text())
                checkedNodes.insert(k)
            }
            XCTAssertTrue(found, "no weight flip of node \(k) changed an ADC code")
        }
        XCTAssertEqual(checkedNodes.count, 3)
    }

    /// Editing one value of a dump: compareDump names the layer, flat index, n/c/h/w, expected and got.
    func testEditedDumpIsNamed() throws {
        let dir = makeTempDir(self)
        let b = multiTileModel(seed: 31)
        let (_, sha) = try writeModel(b, dir, "m.rram")
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 3, seed: 8), count: 3)
        try Golden.write(g, to: dir + "/g")
        let dump = dir + "/dump"
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(g) { try NPY.write(a, to: dump + "/" + name) }
        XCTAssertTrue(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: sha, golden: g).ok)
        for j in [0, 2, g.points.count - 1] {
            let p = g.points[j]
            let a = try NPY.read(path: dump + "/" + p.file)
            var v = try Golden.integerValues(a, path: "", point: p, count: 3)
            let i = v.count - 2
            let old = v[i]
            v[i] = p.kind == .code ? (old == 0 ? 1 : 0) : old &+ 1
            try NPY.write(try Golden.integerArray(p, count: 3, values: v), to: dump + "/" + p.file)
            let r = try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: sha, golden: g)
            XCTAssertFalse(r.ok)
            XCTAssertEqual(r.layers.map(\.mismatches), g.points.indices.map { $0 == j ? 1 : 0 })
            let m = try XCTUnwrap(r.firstMismatch)
            let (n, c, h, w) = p.coordinates(ofFlatIndex: i)
            XCTAssertEqual(m, Mismatch(layer: p.name, node: p.node, tile: p.tile, flatIndex: i, n: n, c: c, h: h, w: w, expected: old, got: v[i]))
            XCTAssertEqual(n, 2)
            let o = try XCTUnwrap(r.jsonObject()["firstMismatch"] as? [String: Any])
            XCTAssertEqual(o["layer"] as? String, p.name); XCTAssertEqual(o["flatIndex"] as? Int, i)
            XCTAssertEqual(o["expected"] as? Int, Int(old)); XCTAssertEqual(o["got"] as? Int, Int(v[i]))
            XCTAssertEqual([o["n"], o["c"], o["h"], o["w"]].map { $0 as? Int }, [n, c, h, w])
            try NPY.write(try Golden.integerArray(p, count: 3, values: g.values[j]), to: dump + "/" + p.file)
        }
    }

    /// A dump with the wrong dtype, the wrong shape, or a missing file is an error naming the file.
    func testBadDumpsAreErrors() throws {
        let dir = makeTempDir(self)
        let b = ModelSamples.random(seed: 41)
        let g = try Golden.generate(program: b.program, modelSHA256: "m", pixels: samplePixels(b.program, count: 2, seed: 9), count: 2)
        let dump = dir + "/dump"
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(g) { try NPY.write(a, to: dump + "/" + name) }
        let p = g.points[1]   // n00_inputQuant: uint8 codes
        let path = dump + "/" + p.file
        try NPY.write(try NPYArray(shape: p.arrayShape(count: 2), int32: g.values[1]), to: path)
        XCTAssertThrowsError(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: "m", golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badArray); XCTAssertEqual((e as? VerifyError)?.path, path)
            XCTAssertTrue("\(e)".contains("dtype <i4, expected |u1"), "\(e)")
        }
        try NPY.write(try NPYArray(shape: [2, p.shape.count], uint8: g.values[1].map { UInt8($0) }), to: path)
        XCTAssertThrowsError(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: "m", golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badArray); XCTAssertTrue("\(e)".contains("shape"), "\(e)")
        }
        try writeFileAtomically(Array("not npy".utf8), to: path)
        XCTAssertThrowsError(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: "m", golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badArray); XCTAssertEqual((e as? VerifyError)?.path, path)
        }
        try FileManager.default.removeItem(atPath: path)
        XCTAssertThrowsError(try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: "m", golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .io); XCTAssertEqual((e as? VerifyError)?.path, path)
        }
        XCTAssertThrowsError(try Verifier.compareDump(dir: dir + "/none", program: b.program, modelSHA256: "m", golden: g))
    }

    /// Golden vectors of a model of another structure are refused (not compared).
    func testOtherStructureIsRefused() throws {
        let a = ModelSamples.random(seed: 51), b = ModelSamples.fashionCNN(seed: 1)
        let g = try Golden.generate(program: a.program, modelSHA256: "a", pixels: samplePixels(a.program, count: 1, seed: 1), count: 1)
        XCTAssertThrowsError(try Verifier.recompute(program: b.program, modelSHA256: "b", golden: g)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .modelMismatch)
        }
    }

    /// Committed golden vectors (`golden/*/manifest.json` in the repository) verify bit for bit
    /// against the `.rram` model file in the repository whose SHA-256 the manifest records.
    func testCommittedGoldenVectors() throws {
        guard let root = repositoryRoot() else { throw XCTSkip("repository root not found from \(#filePath)") }
        let results = try CommittedGolden.check(root: root)
        guard !results.isEmpty else { throw XCTSkip("no committed golden vectors (golden/*/manifest.json) in \(root)") }
        for (d, r) in results {
            guard let r else { XCTFail("\(d): no .rram file in the repository has the model SHA-256 its manifest records"); continue }
            XCTAssertTrue(r.ok, "\(d):\n" + r.text())
        }
        // golden/drive: a crop through the U-Net (every op kind of the paper's network), verified above
        let driveDir = root + "/golden/drive"
        let drive = try Golden.read(dir: driveDir)
        let driveReport = try XCTUnwrap(results.first { $0.0 == driveDir }?.1, "golden/drive is verified against its model")
        XCTAssertTrue(driveReport.ok)
        let driveModel = try XCTUnwrap(CommittedGolden.modelFiles(root: root)[drive.modelSHA256], "the model of \(driveDir)")
        let unet = try ModelBundle.decode(try readFileBytes(driveModel), name: driveModel).program
        let kinds = Set(unet.nodes.map { $0.op.kind })
        for k in [OpKind.inputQuant, .crossbar, .activation, .maxPool, .upsampleBilinear, .concat] {
            XCTAssertTrue(kinds.contains(k), "golden/drive's program has a \(k.name) node")
        }
        let out = unet.tensors[unet.output].shape
        XCTAssertEqual([out.c, out.h, out.w], [2, 48, 48], "two class maps of the 48 x 48 crop")
        XCTAssertEqual(drive.argmaxShape, [drive.count, 48, 48], "a decision per pixel")
        XCTAssertTrue(drive.argmax.contains(1) && drive.argmax.contains(0), "the crop holds vessel and background decisions")

        // golden/fashion-mnist: all 48 images, every point, element by element with ==
        let dir = root + "/golden/fashion-mnist"
        let golden = try Golden.read(dir: dir)
        XCTAssertEqual(golden.count, 48, "golden/fashion-mnist holds 48 images")
        let model = try XCTUnwrap(CommittedGolden.modelFiles(root: root)[golden.modelSHA256], "the model of \(dir)")
        let program = try ModelBundle.decode(try readFileBytes(model), name: model).program
        let input = golden.values[0].map { UInt8(truncatingIfNeeded: $0) }
        let got = try Golden.generate(program: program, modelSHA256: golden.modelSHA256, pixels: input, count: golden.count, floats: false)
        XCTAssertEqual(got.points, golden.points)
        var failures = 0
        for (j, p) in golden.points.enumerated() {
            XCTAssertEqual(got.values[j].count, golden.count * p.shape.count, p.name)
            for i in 0..<Swift.min(got.values[j].count, golden.values[j].count) where got.values[j][i] != golden.values[j][i] {
                failures += 1
                if failures <= 10 {
                    let (n, c, h, w) = p.coordinates(ofFlatIndex: i)
                    XCTFail("\(dir): layer \(p.name), image \(n), flat index \(i) (c=\(c), h=\(h), w=\(w)): expected \(golden.values[j][i]), got \(got.values[j][i])")
                }
            }
        }
        XCTAssertEqual(failures, 0, "mismatching elements in \(dir)")
        XCTAssertEqual(got.argmax, golden.argmax)
    }

    /// golden/ (model, vectors, README) stays within 2,000,000 bytes.
    func testCommittedGoldenSize() throws {
        guard let root = repositoryRoot() else { throw XCTSkip("repository root not found from \(#filePath)") }
        let golden = root + "/golden"
        guard let e = FileManager.default.enumerator(atPath: golden) else { throw XCTSkip("no golden/ in \(root)") }
        var total = 0
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: golden + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
            total += try readFileBytes(golden + "/" + rel).count
        }
        XCTAssertGreaterThan(total, 0)
        XCTAssertLessThanOrEqual(total, 2_000_000, "golden/ holds \(total) bytes")
    }

    /// The committed-golden check itself, on a repository layout in a temporary directory.
    func testCommittedGoldenCheckFindsModelsAndMismatches() throws {
        let root = makeTempDir(self)
        let fm = FileManager.default
        XCTAssertEqual(try CommittedGolden.check(root: root).count, 0)
        try fm.createDirectory(atPath: root + "/models", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/golden", withIntermediateDirectories: true)
        let b = livelyModel(seed: 24)
        let (_, sha) = try writeModel(b, root + "/models", "m.rram")
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 2, seed: 3), count: 2)
        try Golden.write(g, to: root + "/golden/set")
        var res = try CommittedGolden.check(root: root)
        XCTAssertEqual(res.count, 1); XCTAssertEqual(res.first?.1?.ok, true)
        // golden vectors whose model is not in the repository: reported as such
        var g2 = g; g2.modelSHA256 = String(repeating: "0", count: 64)
        try Golden.write(g2, to: root + "/golden/orphan")
        res = try CommittedGolden.check(root: root)
        XCTAssertEqual(res.map { $0.0.hasSuffix("orphan") }, [true, false]); XCTAssertNil(res[0].1)
        // a changed model file with the recorded hash cannot exist; a mismatching golden value can
        try fm.removeItem(atPath: root + "/golden/orphan")
        var g3 = g; g3.values[g3.logits][0] &+= 1
        try Golden.write(g3, to: root + "/golden/set", replace: true)
        res = try CommittedGolden.check(root: root)
        XCTAssertEqual(res.first?.1?.ok, false)
        XCTAssertEqual(res.first?.1?.firstMismatch?.layer, g.points[g.logits].name)
    }
}

enum CommittedGolden {
    /// Verifies every `root/golden/*/manifest.json` directory against the `.rram` file under
    /// `root` with the recorded model SHA-256 (nil report: no such model file).
    static func check(root: String) throws -> [(String, VerifyReport?)] {
        let fm = FileManager.default
        let dirs = ((try? fm.contentsOfDirectory(atPath: root + "/golden")) ?? []).sorted()
            .map { root + "/golden/" + $0 }.filter { fm.fileExists(atPath: $0 + "/manifest.json") }
        if dirs.isEmpty { return [] }
        let models = modelFiles(root: root)
        return try dirs.map { d in
            let golden = try Golden.read(dir: d)
            guard let model = models[golden.modelSHA256] else { return (d, nil) }
            return (d, try GoldenCheck.verify(modelPath: model, goldenDir: d))
        }
    }

    /// SHA-256 -> path of every `.rram` file under `root` (not under .build or .git).
    static func modelFiles(root: String) -> [String: String] {
        var out: [String: String] = [:]
        guard let e = FileManager.default.enumerator(atPath: root) else { return out }
        while let rel = e.nextObject() as? String {
            if rel.hasPrefix(".build") || rel.hasPrefix(".git") || rel.contains("/.build") { e.skipDescendants(); continue }
            guard rel.hasSuffix(".rram"), let b = try? readFileBytes(root + "/" + rel) else { continue }
            out[SHA256.hex(SHA256.hash(b))] = root + "/" + rel
        }
        return out
    }
}
