import DataIO
import Foundation
import Kernels
import ModelFile
@testable import Verify
import XCTest

/// Golden vectors of a program with an rnn node: per-step points (each step's input- and
/// recurrent-tile ADC codes, hidden codes, the last step's combined accumulator), round trip,
/// and mismatch reports that name the first mismatching step.
final class RNNGoldenTests: XCTestCase {
    func crnnBundle(seed: UInt64) -> ModelBundle {
        let p = SamplePrograms.spokenDigitCRNN(seed: seed)
        let md = ModelMetadata(task: "spoken-digit", targetName: "t", targetHash: String(repeating: "0", count: 64),
                               provenance: Provenance(seed: seed, epochs: 0, dataset: "spoken-digit", floatAccuracy: 0, integerAccuracy: 0, toolVersion: "0"),
                               programming: ProgrammingCounts(maskFlips: p.crossbarLayers.map { _ in 0 }, cellsToReset: 0))
        return ModelBundle(program: p, metadata: md)
    }

    func testPointsNameEveryStep() {
        let p = SamplePrograms.spokenDigitCRNN(seed: 1)
        let names = GoldenLayout.points(for: p).filter { $0.node == 7 }.map(\.name)
        XCTAssertEqual(names, ["n07_rnn_t0_input_tile00", "n07_rnn_t0_recurrent_tile00", "n07_rnn_t0_hidden",
                               "n07_rnn_t1_input_tile00", "n07_rnn_t1_recurrent_tile00", "n07_rnn_t1_hidden",
                               "n07_rnn_t2_input_tile00", "n07_rnn_t2_recurrent_tile00", "n07_rnn_t2_hidden",
                               "n07_rnn_t3_input_tile00", "n07_rnn_t3_recurrent_tile00", "n07_rnn_t3_state", "n07_rnn"])
        let pts = GoldenLayout.points(for: p).filter { $0.node == 7 }
        XCTAssertEqual(pts.map(\.op), ["rnnInputTile", "rnnRecurrentTile", "rnnHidden"] + ["rnnInputTile", "rnnRecurrentTile", "rnnHidden"]
                       + ["rnnInputTile", "rnnRecurrentTile", "rnnHidden"] + ["rnnInputTile", "rnnRecurrentTile", "rnnState", "rnn"])
        XCTAssertEqual(pts.map(\.kind), [.adc, .adc, .code, .adc, .adc, .code, .adc, .adc, .code, .adc, .adc, .sum, .code])
        XCTAssertEqual(pts.map(\.tile), (0..<12).map { Optional($0) } + [nil])
    }

    func testGoldenRoundTripAndStepNamedMismatches() throws {
        let dir = makeTempDir(self)
        let b = crnnBundle(seed: 2)
        let (path, sha) = try writeModel(b, dir, "crnn.rram")
        let x = SamplePrograms.featureCodes(3, seed: 2)
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: x, count: 3, labels: [1, 2, 3])
        try Golden.write(g, to: dir + "/g")
        let r = try GoldenCheck.verify(modelPath: path, goldenDir: dir + "/g")
        XCTAssertTrue(r.ok, r.text())
        XCTAssertEqual(try Golden.read(dir: dir + "/g"), g)
        // the trace's sub-points are what the points hold
        let ref = Reference.run(b.program, pixels: Array(x[0..<460]))
        for (j, p) in g.points.enumerated() where p.node == 7 && p.tile != nil {
            XCTAssertEqual(Array(g.values[j][0..<p.shape.count]), ref.tileADC[7][p.tile!], p.name)
        }
        // step 0, input tiles: the float value is the ideal ADC output, within one code where not saturated
        let j0 = g.index(of: "n07_rnn_t0_input_tile00")!
        for (f, v) in zip(g.floats[j0], g.values[j0]) where Swift.abs(v) < 8191 { XCTAssertLessThanOrEqual(Swift.abs(f - Float(v)), 1) }

        // a changed recurrent weight: the first mismatch is step 1's recurrent tile (step 0 reads h = 0)
        guard case .rnn(let rp) = b.program.nodes[7].op else { return XCTFail() }
        let q0 = ref.tileADC[7][rp.subpointsPerStep - 1]
        let row = try XCTUnwrap(q0.firstIndex { $0 != 0 }, "a nonzero hidden code at step 0")
        let o = 5
        var copy = b
        var rp2 = rp
        let w = rp2.recurrent.weights[o * rp.hiddenSize + row]
        rp2.recurrent.weights[o * rp.hiddenSize + row] = w == 127 ? -128 : 127
        copy.program.nodes[7].op = .rnn(rp2)
        let (path2, _) = try writeModel(copy, dir, "flip.rram")
        let r2 = try GoldenCheck.verify(modelPath: path2, goldenDir: dir + "/g")
        XCTAssertFalse(r2.ok)
        let m = try XCTUnwrap(r2.firstMismatch)
        XCTAssertEqual(m.layer, "n07_rnn_t1_recurrent_tile00", r2.text())
        XCTAssertEqual(m.node, 7)
        XCTAssertEqual(m.c, o)
        XCTAssertTrue(r2.text().contains("FIRST MISMATCH: layer n07_rnn_t1_recurrent_tile00"), r2.text())
        let j = g.index(of: m.layer)!
        XCTAssertTrue(r2.layers[..<j].allSatisfy { $0.mismatches == 0 }, "nothing before step 1 differs")

        // an edited dump value at step 2's hidden codes is named with its step
        let dump = dir + "/dump"
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(g) { try NPY.write(a, to: dump + "/" + name) }
        let p = g.points[g.index(of: "n07_rnn_t2_hidden")!]
        var v = try Golden.integerValues(try NPY.read(path: dump + "/" + p.file), path: "", point: p, count: 3)
        v[130] = v[130] == 0 ? 1 : 0
        try NPY.write(try Golden.integerArray(p, count: 3, values: v), to: dump + "/" + p.file)
        let r3 = try Verifier.compareDump(dir: dump, program: b.program, modelSHA256: sha, golden: g)
        XCTAssertEqual(r3.firstMismatch?.layer, "n07_rnn_t2_hidden")
        XCTAssertEqual(r3.firstMismatch?.n, 1)
        XCTAssertEqual(r3.firstMismatch?.c, 2)
    }
}
