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

/// A per-pixel head (the U-Net's class-logit map): the golden argmax is one class per output
/// pixel, written as [N, H, W], read back, and a changed pixel is reported.
final class PixelArgmaxGoldenTests: XCTestCase {
    func testPerPixelArgmaxIsWrittenReadAndVerified() throws {
        let dir = makeTempDir(self)
        let b = ModelSamples.graph(seed: 33, unet: true)
        let out = b.program.tensors[b.program.output].shape
        XCTAssertGreaterThan(out.h * out.w, 1, "the sample U-Net has a per-pixel output")
        let (path, sha) = try writeModel(b, dir, "u.rram")
        let n = 2
        let px = samplePixels(b.program, count: n, seed: 5)
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: px, count: n)
        XCTAssertEqual(g.argmax.count, n * out.h * out.w)
        XCTAssertEqual(g.argmaxShape, [n, out.h, out.w])
        // each pixel's class from the reference logits, by a plain loop (ties: lowest channel)
        let inN = b.program.tensors[b.program.input].shape.count
        for i in 0..<n {
            let ref = Reference.run(b.program, pixels: Array(px[(i * inN)..<((i + 1) * inN)])).tensors[b.program.output]
            let hw = out.h * out.w
            for p in 0..<hw {
                var best = 0
                for c in 0..<out.c where ref[c * hw + p] > ref[best * hw + p] { best = c }
                XCTAssertEqual(g.argmax[i * hw + p], Int32(best), "image \(i) pixel \(p)")
            }
        }
        try Golden.write(g, to: dir + "/g")
        let back = try Golden.read(dir: dir + "/g")
        XCTAssertEqual(back.argmax, g.argmax)
        var r = try GoldenCheck.verify(modelPath: path, goldenDir: dir + "/g")
        XCTAssertTrue(r.ok, r.text())
        XCTAssertEqual(r.argmax.count, n * out.h * out.w, "agreement counted per pixel")
        // one pixel's class changed in the golden set: the argmax check fails, the layers match
        var bad = g
        bad.argmax[3] = (bad.argmax[3] + 1) % Int32(out.c)
        try Golden.write(bad, to: dir + "/bad")
        r = try GoldenCheck.verify(modelPath: path, goldenDir: dir + "/bad")
        XCTAssertFalse(r.ok)
        XCTAssertEqual(r.argmax.integerMatchesGolden, n * out.h * out.w - 1)
        XCTAssertTrue(r.layers.allSatisfy { $0.mismatches == 0 })
    }

    func testEnginePredictionsArePerPixel() throws {
        let b = ModelSamples.graph(seed: 34, unet: true)
        let e = try Engine(program: b.program, threads: 2)
        let px = samplePixels(b.program, count: 3, seed: 6)
        let (logits, pred) = e.inferBatch(px, count: 3, threads: 2)
        let out = b.program.tensors[b.program.output].shape
        XCTAssertEqual(e.predictionsPerImage, out.h * out.w)
        XCTAssertEqual(pred.count, 3 * out.h * out.w)
        for i in 0..<3 {
            XCTAssertEqual(Array(pred[(i * out.h * out.w)..<((i + 1) * out.h * out.w)]),
                           pixelArgmax(logits[(i * out.count)..<((i + 1) * out.count)], shape: out), "image \(i)")
        }
    }
}
