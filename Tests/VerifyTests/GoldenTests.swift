import DataIO
import Foundation
import Kernels
import ModelFile
@testable import Verify
import XCTest

final class GoldenTests: XCTestCase {
    func testLayoutOfFashionCNN() {
        let p = ModelSamples.fashionCNN(seed: 3).program
        let pts = GoldenLayout.points(for: p)
        XCTAssertEqual(pts.first?.name, "input")
        XCTAssertEqual(pts.first?.dtype, .uint8)
        XCTAssertEqual(Set(pts.map(\.name)).count, pts.count, "names are unique")
        // every crossbar: its tiles (adc, int16) directly before its sum (int32)
        for (k, n) in p.nodes.enumerated() {
            guard case .crossbar(let c) = n.op else { continue }
            let i = pts.firstIndex { $0.node == k && $0.tile == nil }!
            XCTAssertEqual(pts[i].dtype, .int32)
            for t in 0..<c.tiles.count {
                let tp = pts[i - c.tiles.count + t]
                XCTAssertEqual(tp.tile, t); XCTAssertEqual(tp.node, k); XCTAssertEqual(tp.dtype, .int16)
                XCTAssertEqual(tp.kind, .adc); XCTAssertEqual(tp.bits, c.tiles[t].bits)
            }
        }
        XCTAssertEqual(pts.filter { $0.tile == nil }.count, p.nodes.count + 1)
        XCTAssertEqual(pts.last?.tensor, p.output)
        XCTAssertEqual(pts[1].name, "n00_inputQuant")
        let pt = pts[1]
        let (n, c, h, w) = pt.coordinates(ofFlatIndex: 2 * 784 + 30)
        XCTAssertEqual([n, c, h, w], [2, 0, 1, 2])
    }

    /// Golden values are the engine's trace and the reference engine's, point by point; floats are the float pipeline's.
    func testGenerateMatchesReferenceAndFloatPipeline() throws {
        let b = multiTileModel(seed: 11)
        let px = samplePixels(b.program, count: 3, seed: 1)
        let g = try Golden.generate(program: b.program, modelSHA256: "x", pixels: px, count: 3)
        let per = b.program.tensors[b.program.input].shape.count
        for n in 0..<3 {
            let img = Array(px[(n * per)..<((n + 1) * per)])
            let ref = Reference.run(b.program, pixels: img)
            let fl = FloatPipeline.run(b.program, pixels: img)
            for (j, p) in g.points.enumerated() {
                let m = p.shape.count
                let got = Array(g.values[j][(n * m)..<((n + 1) * m)])
                let want = p.tensor.map { ref.tensors[$0] } ?? ref.tileADC[p.node!][p.tile!]
                XCTAssertEqual(got, want, p.name)
                if let t = p.tensor { XCTAssertEqual(Array(g.floats[j][(n * m)..<((n + 1) * m)]), fl[t], p.name) }
            }
            XCTAssertEqual(Int(g.argmax[n]), argmax(ref.tensors[b.program.output]))
        }
        // tile floats sum (in tile order) to the float pipeline's crossbar sum
        for (j, p) in g.points.enumerated() where p.op == "crossbar" {
            let tiles = g.points.indices.filter { g.points[$0].node == p.node && g.points[$0].tile != nil }
            XCTAssertGreaterThan(tiles.count, 1)
            for i in 0..<g.values[j].count {
                var s: Float = 0
                for t in tiles { s += g.floats[t][i] }
                XCTAssertEqual(s, g.floats[j][i], "\(p.name)[\(i)]")
            }
        }
    }

    /// Golden vectors are cross-checked against the reference engine: a disagreement is an error
    /// naming the point and element, and nothing is produced.
    func testEngineDisagreementIsAnError() throws {
        let b = multiTileModel(seed: 13)
        let px = samplePixels(b.program, count: 2, seed: 5)
        let tileNode = b.program.nodes.firstIndex { $0.op.kind == .crossbar }!
        XCTAssertThrowsError(try Golden.generate(program: b.program, modelSHA256: "m", pixels: px, count: 2, labels: nil,
                                                 floats: false, crossCheck: true,
                                                 tamperReference: { $0.tileADC[tileNode][1][5] &+= 1 })) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .engineDisagreement)
            let name = GoldenLayout.points(for: b.program).first { $0.node == tileNode && $0.tile == 1 }!.name
            XCTAssertTrue("\(e)".contains("\(name), image 0, element 5"), "\(e)")
        }
        XCTAssertNoThrow(try Golden.generate(program: b.program, modelSHA256: "m", pixels: px, count: 2, labels: nil,
                                             floats: false, crossCheck: false, tamperReference: { $0.tileADC[tileNode][1][5] &+= 1 }))
    }

    func testWriteReadRoundTripAndDeterminism() throws {
        let dir = makeTempDir(self)
        let b = ModelSamples.random(seed: 5)
        let px = samplePixels(b.program, count: 4, seed: 2)
        let g = try Golden.generate(program: b.program, modelSHA256: "abc", pixels: px, count: 4, labels: [1, 2, 3, 4, 5])
        XCTAssertEqual(g.labels, [1, 2, 3, 4])
        try Golden.write(g, to: dir + "/a")
        let g2 = try Golden.generate(program: b.program, modelSHA256: "abc", pixels: px, count: 4, labels: [1, 2, 3, 4])
        try Golden.write(g2, to: dir + "/b")
        let a = try directoryContents(dir + "/a"), bb = try directoryContents(dir + "/b")
        XCTAssertTrue(a == bb, "same model and inputs: byte-identical directories")
        let stored = zip(g.points, Golden.aliases(g)).filter { $0.1 == nil }.map(\.0)
        XCTAssertEqual(Set(a.keys), Set(stored.flatMap { [$0.file, $0.floatFile] } + ["manifest.json", "argmax.npy", "labels.npy"]))
        XCTAssertEqual(try Golden.read(dir: dir + "/a"), g)
        // NPY files are plain numpy arrays with the documented dtypes and shapes
        let inp = try NPY.read(path: dir + "/a/input.npy")
        let s = b.program.tensors[b.program.input].shape
        XCTAssertEqual(inp.dtype, .uint8); XCTAssertEqual(inp.shape, [4, s.c, s.h, s.w]); XCTAssertEqual(try inp.uint8s(), px)
        // no temporary siblings left
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["a", "b"])
    }

    func testWriteIsAllOrNothingAndRefusesForeignDirectories() throws {
        let dir = makeTempDir(self)
        let b = ModelSamples.random(seed: 8)
        let g = try Golden.generate(program: b.program, modelSHA256: "m", pixels: samplePixels(b.program, count: 2, seed: 3), count: 2)
        XCTAssertThrowsError(try Golden.write(g, to: dir + "/g", faultAfter: 3)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .io)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "nothing left after a failure")
        try Golden.write(g, to: dir + "/g")
        let before = try directoryContents(dir + "/g")
        XCTAssertThrowsError(try Golden.write(g, to: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .outputExists)
            XCTAssertTrue("\(e)".contains("--force"), "\(e)")
        }
        // a failing replacement keeps the earlier golden vectors
        XCTAssertThrowsError(try Golden.write(g, to: dir + "/g", replace: true, faultAfter: 1))
        XCTAssertTrue(try directoryContents(dir + "/g") == before)
        try Golden.write(g, to: dir + "/g", replace: true)
        XCTAssertTrue(try directoryContents(dir + "/g") == before)
        // a foreign non-empty directory is never replaced
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: false)
        try writeFileAtomically(Array("keep".utf8), to: dir + "/other/file.txt")
        XCTAssertThrowsError(try Golden.write(g, to: dir + "/other", replace: true)) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .outputExists)
        }
        XCTAssertEqual(try readFileBytes(dir + "/other/file.txt"), Array("keep".utf8))
        XCTAssertThrowsError(try Golden.write(g, to: dir + "/missing/parent/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .io)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["g", "other"])
        // an existing empty directory is filled (renamed over)
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: false)
        try Golden.write(g, to: dir + "/empty/")
        XCTAssertTrue(try directoryContents(dir + "/empty") == before)
        // a file in the way
        try writeFileAtomically([1], to: dir + "/afile")
        XCTAssertThrowsError(try Golden.write(g, to: dir + "/afile")) { e in XCTAssertEqual((e as? VerifyError)?.kind, .outputExists) }
    }

    func testManifestTamperingIsAnError() throws {
        let dir = makeTempDir(self)
        let b = ModelSamples.random(seed: 9)
        let g = try Golden.generate(program: b.program, modelSHA256: "m", pixels: samplePixels(b.program, count: 2, seed: 4), count: 2)
        try Golden.write(g, to: dir + "/g")
        let al = Golden.aliases(g)
        let victim = g.points[g.points.indices.filter { al[$0] == nil }.dropFirst().first!].file
        var bytes = try readFileBytes(dir + "/g/" + victim)
        bytes[bytes.count - 1] ^= 1
        try writeFileAtomically(bytes, to: dir + "/g/" + victim)
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            let v = e as? VerifyError
            XCTAssertEqual(v?.kind, .checksum)
            XCTAssertEqual(v?.path, dir + "/g/" + victim)
            XCTAssertTrue("\(e)".contains("does not match the manifest"), "\(e)")
        }
        bytes[bytes.count - 1] ^= 1
        try writeFileAtomically(bytes, to: dir + "/g/" + victim)
        XCTAssertNoThrow(try Golden.read(dir: dir + "/g"))
        // a manifest whose dtype or shape disagrees with the (untouched) file
        let manifest = try readFileBytes(dir + "/g/manifest.json")
        let text = String(decoding: manifest, as: UTF8.self)
        let edited = text.replacingOccurrences(of: "{\"name\": \"input.npy\", \"dtype\": \"uint8\"", with: "{\"name\": \"input.npy\", \"dtype\": \"int16\"")
        XCTAssertNotEqual(edited, text)
        try writeFileAtomically(Array(edited.utf8), to: dir + "/g/manifest.json")
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .badArray); XCTAssertEqual((e as? VerifyError)?.path, dir + "/g/input.npy")
        }
        try writeFileAtomically(manifest, to: dir + "/g/manifest.json")
        XCTAssertNoThrow(try Golden.read(dir: dir + "/g"))
        // a listed file missing
        try FileManager.default.removeItem(atPath: dir + "/g/argmax.npy")
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in
            XCTAssertEqual((e as? VerifyError)?.kind, .io); XCTAssertTrue("\(e)".contains("argmax.npy"))
        }
        // not JSON / wrong format
        try writeFileAtomically(Array("{\"format\": \"other\"}".utf8), to: dir + "/g/manifest.json")
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in XCTAssertEqual((e as? VerifyError)?.kind, .badManifest) }
        try writeFileAtomically(Array("garbage".utf8), to: dir + "/g/manifest.json")
        XCTAssertThrowsError(try Golden.read(dir: dir + "/g")) { e in XCTAssertEqual((e as? VerifyError)?.kind, .badManifest) }
        XCTAssertThrowsError(try Golden.read(dir: dir + "/nope")) { e in XCTAssertEqual((e as? VerifyError)?.kind, .io) }
    }
}
