import DataIO
import FixedPoint
import Kernels
import ModelFile
@testable import Verify
import XCTest

/// Golden vectors of layer graphs: a point per node (add, concat, both upsampling forms, global
/// average pooling included), golden then verify matches, and a change to one graph node's
/// parameter is found at that node's point with everything upstream matching.
final class GraphGoldenTests: XCTestCase {
    func testGraphGoldenRoundTripAndTamperedNodeNamed() throws {
        let dir = makeTempDir(self)
        for (unet, seed) in [(true, UInt64(31)), (false, UInt64(32))] {
            let b = ModelSamples.graph(seed: seed, unet: unet)
            let (path, sha) = try writeModel(b, dir, "m\(seed).rram")
            let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 2, seed: seed), count: 2)
            for k in b.program.nodes.indices {
                XCTAssertTrue(g.points.contains { $0.node == k && $0.tile == nil && $0.tensor == b.program.nodes[k].output }, "node \(k) has a point")
            }
            try Golden.write(g, to: dir + "/g\(seed)")
            let r = try GoldenCheck.verify(modelPath: path, goldenDir: dir + "/g\(seed)")
            XCTAssertTrue(r.ok, r.text())
            XCTAssertEqual(r.layers.count, g.points.count)

            // change one graph op per model: the rounded upsampling's rule (U-Net), the
            // residual addition's second multiplier (residual net)
            var copy = b
            let k: Int
            if unet {
                k = b.program.nodes.indices.first { b.program.nodes[$0].op.kind == .upsampleBilinear && b.program.tensors[b.program.nodes[$0].output].kind == .code }!
                guard case .upsampleBilinear(var u) = b.program.nodes[k].op else { return XCTFail() }
                u.rounding = (u.rounding == .floor || u.rounding == .towardZero) ? .halfUp : .floor
                copy.program.nodes[k].op = .upsampleBilinear(u)
            } else {
                k = b.program.nodes.indices.first { b.program.nodes[$0].op.kind == .add }!
                guard case .add(var a) = b.program.nodes[k].op else { return XCTFail() }
                a.secondMultiplier = a.secondMultiplier.map { $0 / 2 + 1 }
                copy.program.nodes[k].op = .add(a)
            }
            let (p2, _) = try writeModel(copy, dir, "t\(seed).rram")
            let r2 = try GoldenCheck.verify(modelPath: p2, goldenDir: dir + "/g\(seed)")
            XCTAssertFalse(r2.ok)
            let m = try XCTUnwrap(r2.firstMismatch)
            XCTAssertEqual(m.node, k, "the first mismatch is at the changed node")
            XCTAssertEqual(m.layer, g.points.first { $0.node == k && $0.tile == nil }!.name)
            let j = g.index(of: m.layer)!
            XCTAssertTrue(r2.layers[..<j].allSatisfy { $0.mismatches == 0 }, "nothing upstream differs")
        }
    }
}
