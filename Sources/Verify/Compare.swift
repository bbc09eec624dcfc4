// Bit-exact comparison of golden vectors with a recomputation by our kernels or with another
// implementation's dump, plus float-vs-integer agreement per point and argmax agreement.
import DataIO
import Foundation
import Kernels
import ModelFile

/// One mismatching element.
public struct Mismatch: Sendable, Equatable {
    /// The point (layer) name, e.g. `n02_crossbar_tile00`.
    public var layer: String
    public var node: Int?
    public var tile: Int?
    /// Flat index into the point's `[N, C, H, W]` array.
    public var flatIndex: Int
    public var n: Int, c: Int, h: Int, w: Int
    public var expected: Int32
    public var got: Int32

    public var description: String {
        var where_ = ""
        if let node { where_ = " (node \(node)" + (tile.map { ", tile \($0)" } ?? "") + ")" }
        return "layer \(layer)\(where_), flat index \(flatIndex) (n=\(n), c=\(c), h=\(h), w=\(w)): expected \(expected), got \(got)"
    }
}

/// Comparison of one point.
public struct LayerReport: Sendable, Equatable {
    public var point: GoldenPoint
    /// Elements compared (N * C*H*W).
    public var elements: Int
    public var mismatches: Int
    public var firstMismatch: Mismatch?
    /// Elements with a float value (the first K images: K * C*H*W).
    public var floatElements: Int
    /// Float pipeline (golden) vs the integers under test, in LSBs of the point, over the first
    /// K images (0 when K = 0).
    public var floatMaxAbsDiff: Double
    public var floatMeanAbsDiff: Double
}

/// Argmax agreement over the N images.
public struct ArgmaxReport: Sendable, Equatable {
    public var count: Int
    /// The first K images have float values; the float counts below are over those.
    public var floatCount: Int
    /// Predictions (one per image for a classifier, one per output pixel of a per-pixel head)
    /// whose argmax of the logits under test equals the golden integer argmax.
    public var integerMatchesGolden: Int
    /// Predictions (of the first K images) where the float pipeline's argmax equals the argmax of the logits under test.
    public var floatAgreesWithInteger: Int
    /// With labels (classifiers): images the logits under test (of all N) / the float pipeline (of the first K) classify correctly.
    public var integerCorrect: Int?
    public var floatCorrect: Int?
}

public struct VerifyReport: Sendable, Equatable {
    /// `recompute` (our kernels on the model) or `dump` (another implementation's files).
    public var mode: String
    /// The dump directory (dump mode).
    public var dumpDir: String?
    /// SHA-256 of the model file verified with, and the one the golden directory records.
    public var modelSHA256: String
    public var goldenModelSHA256: String
    public var warnings: [String]
    public var count: Int
    /// Images (the first K) with float values in the golden directory.
    public var floatCount: Int
    public var layers: [LayerReport]
    public var argmax: ArgmaxReport

    public var modelMatchesGolden: Bool { modelSHA256 == goldenModelSHA256 }
    /// True when every element of every point matches (warnings do not count).
    public var ok: Bool { layers.allSatisfy { $0.mismatches == 0 } && argmax.integerMatchesGolden == argmax.count }
    /// The first mismatch in program order.
    public var firstMismatch: Mismatch? { layers.first { $0.mismatches > 0 }?.firstMismatch }
    public var mismatchingLayers: Int { layers.filter { $0.mismatches > 0 }.count }
    public var totalMismatches: Int { layers.reduce(0) { $0 + $1.mismatches } }

    static func mismatchObject(_ m: Mismatch) -> [String: Any] {
        ["layer": m.layer, "node": m.node as Any? ?? NSNull(), "tile": m.tile as Any? ?? NSNull(),
         "flatIndex": m.flatIndex, "n": m.n, "c": m.c, "h": m.h, "w": m.w,
         "expected": Int(m.expected), "got": Int(m.got)]
    }

    /// A JSON-serializable object (JSONSerialization) with everything in the report.
    public func jsonObject() -> [String: Any] {
        var o: [String: Any] = [
            "ok": ok, "mode": mode, "count": count, "floatCount": floatCount, "warnings": warnings,
            "model": ["sha256": modelSHA256, "goldenSha256": goldenModelSHA256, "matches": modelMatchesGolden],
            "mismatchingLayers": mismatchingLayers, "totalMismatches": totalMismatches,
        ]
        if let dumpDir { o["dump"] = dumpDir }
        o["firstMismatch"] = firstMismatch.map { VerifyReport.mismatchObject($0) } ?? NSNull()
        o["layers"] = layers.map { l -> [String: Any] in
            ["name": l.point.name, "node": l.point.node as Any? ?? NSNull(), "tile": l.point.tile as Any? ?? NSNull(),
             "op": l.point.op, "kind": l.point.kind.goldenName, "bits": l.point.bits,
             "shape": [l.point.shape.c, l.point.shape.h, l.point.shape.w],
             "elements": l.elements, "mismatches": l.mismatches,
             "firstMismatch": l.firstMismatch.map { VerifyReport.mismatchObject($0) } ?? NSNull(),
             "floatVsInteger": ["elements": l.floatElements, "maxAbsDiffLSB": VerifyReport.finite(l.floatMaxAbsDiff),
                                "meanAbsDiffLSB": VerifyReport.finite(l.floatMeanAbsDiff)]]
        }
        var a: [String: Any] = ["count": argmax.count, "floatCount": argmax.floatCount, "integerMatchesGolden": argmax.integerMatchesGolden,
                                "floatAgreesWithInteger": argmax.floatAgreesWithInteger]
        a["integerCorrect"] = argmax.integerCorrect ?? NSNull()
        a["floatCorrect"] = argmax.floatCorrect ?? NSNull()
        o["argmax"] = a
        return o
    }

    /// JSON has no infinity or NaN: a non-finite difference is reported as the largest Double.
    static func finite(_ v: Double) -> Double { v.isFinite ? v : .greatestFiniteMagnitude }

    static func fmt(_ v: Double) -> String {
        if v == 0 { return "0" }
        let r = (v * 1000).rounded() / 1000
        return String(r)
    }

    /// The human-readable report.
    public func text() -> String {
        var s = ""
        for w in warnings { s += "warning: \(w)\n" }
        s += mode == "dump" ? "compared the dump \(dumpDir ?? "") with the golden vectors\n"
                            : "recomputed with the Kernels engine and compared with the golden vectors\n"
        s += "\(count) images, \(layers.count) layers (points)\n"
        s += floatCount == 0 ? "float-vs-integer agreement: no float values in the golden directory\n"
            : "float-vs-integer agreement over the first \(floatCount) of \(count) images\n"
        let width = Swift.max(24, (layers.map(\.point.name.count).max() ?? 0) + 2)
        func pad(_ t: String, _ n: Int, left: Bool = false) -> String {
            let p = String(repeating: " ", count: Swift.max(0, n - t.count))
            return left ? t + p : p + t
        }
        s += pad("layer", width, left: true) + pad("elements", 10) + pad("mismatches", 12)
            + pad("float max|d|", 14) + pad("mean|d|", 10) + "  (LSB)\n"
        for l in layers {
            s += pad(l.point.name, width, left: true) + pad(String(l.elements), 10) + pad(String(l.mismatches), 12)
                + pad(VerifyReport.fmt(l.floatMaxAbsDiff), 14) + pad(VerifyReport.fmt(l.floatMeanAbsDiff), 10) + "\n"
        }
        var am = "argmax: integer == golden \(argmax.integerMatchesGolden)/\(argmax.count), float == integer \(argmax.floatAgreesWithInteger)/\(argmax.floatCount)"
        if let ic = argmax.integerCorrect, let fc = argmax.floatCorrect {
            am += "; vs labels: integer \(ic)/\(argmax.count), float \(fc)/\(argmax.floatCount)"
        }
        s += am + "\n"
        let bad = layers.filter { $0.mismatches > 0 }
        if bad.count > 1 {
            s += "first mismatch of each mismatching layer:\n"
            for l in bad { if let m = l.firstMismatch { s += "  \(m.description) (\(l.mismatches) of \(l.elements))\n" } }
        }
        if let m = firstMismatch {
            s += "FIRST MISMATCH: \(m.description)\n"
            s += "MISMATCH: \(mismatchingLayers) of \(layers.count) layers differ, \(totalMismatches) elements\n"
        } else if !ok {
            s += "MISMATCH: argmax differs\n"
        } else {
            s += "MATCH: all \(layers.count) layers bit-exact\n"
        }
        return s
    }
}


public enum Verifier {
    /// Throws `.modelMismatch` naming the first point where the program's layout differs from the golden one.
    public static func checkLayout(program: Program, golden: GoldenSet) throws {
        let want = GoldenLayout.points(for: program)
        for (k, p) in want.enumerated() {
            guard k < golden.points.count else {
                throw VerifyError(.modelMismatch, path: "", "the golden vectors end at \(golden.points.count) points; the model has \(want.count) (first missing: \(p.name))")
            }
            let g = golden.points[k]
            guard g == p else {
                throw VerifyError(.modelMismatch, path: "", "point \(k): the model has \(p.name) \(p.kind.goldenName) \(p.bits) bits \(p.shape), the golden vectors \(g.name) \(g.kind.goldenName) \(g.bits) bits \(g.shape): they belong to a model of another structure")
            }
        }
        guard want.count == golden.points.count else {
            throw VerifyError(.modelMismatch, path: "", "the golden vectors have \(golden.points.count) points; the model has \(want.count)")
        }
        guard golden.points[golden.logits].tensor == program.output else {
            throw VerifyError(.modelMismatch, path: "", "the golden logits \(golden.points[golden.logits].name) are not the model's output tensor")
        }
    }

    static func modelWarnings(_ modelSHA256: String, _ golden: GoldenSet) -> [String] {
        modelSHA256 == golden.modelSHA256 ? [] :
            ["the model file (SHA-256 \(modelSHA256)) is not the one the golden vectors were made from (SHA-256 \(golden.modelSHA256))"]
    }

    /// Recomputes every point with the Kernels engine on the golden inputs and compares.
    public static func recompute(program: Program, modelSHA256: String, golden: GoldenSet) throws -> VerifyReport {
        try checkLayout(program: program, golden: golden)
        let input = golden.values[0].map { UInt8(truncatingIfNeeded: $0) }
        let got = try Golden.generate(program: program, modelSHA256: modelSHA256, pixels: input, count: golden.count, floats: false)
        return compare(golden: golden, got: got.values, mode: "recompute", dumpDir: nil,
                       modelSHA256: modelSHA256, warnings: modelWarnings(modelSHA256, golden))
    }

    /// Compares another implementation's dump directory (files named and typed as the golden
    /// integer files, docs/GOLDEN.md section 4) with the golden vectors.
    public static func compareDump(dir rawDir: String, program: Program, modelSHA256: String, golden: GoldenSet) throws -> VerifyReport {
        try checkLayout(program: program, golden: golden)
        let dir = AtomicDirectory.normalized(rawDir)
        guard directoryExists(dir) else { throw VerifyError(.io, path: dir, "dump directory does not exist") }
        var got: [[Int32]] = []
        for p in golden.points {
            // NAME.npy, or NAME.npy.gz when there is no NAME.npy
            let plain = dir + "/" + p.file, gz = plain + ".gz"
            let path = !fileExists(plain) && fileExists(gz) ? gz : plain
            let bytes: [UInt8]
            do { bytes = try readFileBytes(path) } catch {
                throw VerifyError(.io, path: path, "dump of point \(p.name) cannot be read (every point of the golden manifest, aliases included, must be dumped): \(error)")
            }
            got.append(try Golden.readIntegerArray(bytes, path: path, point: p, count: golden.count))
        }
        return compare(golden: golden, got: got, mode: "dump", dumpDir: dir, modelSHA256: modelSHA256,
                       warnings: modelWarnings(modelSHA256, golden))
    }

    /// Compares values under test (per point, same layout as `golden.values`) with the golden ones.
    /// `got` must have the golden shapes (recompute and compareDump guarantee it; a caller passing
    /// other shapes is a programming error).
    public static func compare(golden: GoldenSet, got: [[Int32]], mode: String, dumpDir: String?,
                               modelSHA256: String, warnings: [String]) -> VerifyReport {
        precondition(got.count == golden.values.count && zip(got, golden.values).allSatisfy { $0.count == $1.count }
                     && zip(golden.floats, golden.points).allSatisfy { $0.count == golden.floatCount * $1.shape.count },
                     "Verifier.compare: values under test do not have the golden shapes")
        var layers: [LayerReport] = []
        for (j, p) in golden.points.enumerated() {
            let e = golden.values[j], g = got[j], f = golden.floats[j]
            var mism = 0
            var first: Mismatch? = nil
            var maxD = 0.0, sumD = 0.0
            for i in 0..<e.count {
                if e[i] != g[i] {
                    mism += 1
                    if first == nil {
                        let (n, c, h, w) = p.coordinates(ofFlatIndex: i)
                        first = Mismatch(layer: p.name, node: p.node, tile: p.tile, flatIndex: i, n: n, c: c, h: h, w: w,
                                         expected: e[i], got: g[i])
                    }
                }
                if i < f.count {
                    let d = Swift.abs(Double(f[i]) - Double(g[i]))
                    maxD = Swift.max(maxD, d.isNaN ? .infinity : d)
                    sumD += d.isNaN ? .infinity : d
                }
            }
            layers.append(LayerReport(point: p, elements: e.count, mismatches: mism, firstMismatch: first, floatElements: f.count,
                                      floatMaxAbsDiff: maxD, floatMeanAbsDiff: f.isEmpty ? 0 : sumD / Double(f.count)))
        }
        // counted per prediction: per image for a classifier, per output pixel otherwise (labels
        // are per image, so correctness is counted for classifiers only)
        let ls = golden.points[golden.logits].shape, per = ls.count, ppi = golden.pixelsPerImage
        let labels = ppi == 1 ? golden.labels : nil
        var am = ArgmaxReport(count: golden.count * ppi, floatCount: golden.floatCount * ppi, integerMatchesGolden: 0, floatAgreesWithInteger: 0,
                              integerCorrect: labels == nil ? nil : 0, floatCorrect: labels == nil ? nil : 0)
        for n in 0..<golden.count {
            let gi = pixelArgmax(got[golden.logits][(n * per)..<((n + 1) * per)], shape: ls)
            let fi = n < golden.floatCount ? pixelArgmax(golden.floats[golden.logits][(n * per)..<((n + 1) * per)], shape: ls) : nil
            for p in 0..<ppi {
                if gi[p] == golden.argmax[n * ppi + p] { am.integerMatchesGolden += 1 }
                if let fi, fi[p] == gi[p] { am.floatAgreesWithInteger += 1 }
            }
            if let l = labels {
                if gi[0] == l[n] { am.integerCorrect! += 1 }
                if let fi, fi[0] == l[n] { am.floatCorrect! += 1 }
            }
        }
        return VerifyReport(mode: mode, dumpDir: dumpDir, modelSHA256: modelSHA256, goldenModelSHA256: golden.modelSHA256,
                            warnings: warnings, count: golden.count, floatCount: golden.floatCount, layers: layers, argmax: am)
    }
}

/// Checking committed golden vectors (tests, CI).
public enum GoldenCheck {
    /// Reads the model file and the golden directory (checksums checked) and recomputes.
    public static func verify(modelPath: String, goldenDir: String) throws -> VerifyReport {
        let bytes: [UInt8]
        do { bytes = try readFileBytes(modelPath) } catch { throw VerifyError(.io, path: modelPath, "cannot read the model: \(error)") }
        let bundle: ModelBundle
        do { bundle = try ModelBundle.decode(bytes, name: modelPath) } catch {
            throw VerifyError(.badInput, path: modelPath, "not a valid model file: \(error)")
        }
        let golden = try Golden.read(dir: goldenDir)
        return try Verifier.recompute(program: bundle.program, modelSHA256: SHA256.hex(SHA256.hash(bytes)), golden: golden)
    }
}
