import DataIO
import Foundation
import Kernels
import ModelFile
@testable import Verify
import XCTest

/// The acceptance tests once more, through the built `.build/debug/edgecli` binary.
final class CLITests: XCTestCase {
    struct Run { var code: Int32; var out: String; var err: String }

    func edgecli(_ args: [String], environment: [String: String] = [:]) throws -> Run {
        let root = try XCTUnwrap(repositoryRoot())
        let bin = root + "/.build/debug/edgecli"
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            XCTFail("\(bin) is not built (swift build)"); return Run(code: -1, out: "", err: "")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        try p.run()
        let od = o.fileHandleForReading.readDataToEndOfFile(), ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, "edgecli \(args) must exit, never trap")
        return Run(code: p.terminationStatus, out: String(decoding: od, as: UTF8.self), err: String(decoding: ed, as: UTF8.self))
    }

    /// RRAM_EDGE_FLOAT_KERNELS (Training/FloatDispatch.swift): a wrong value stops every command
    /// with exit 2 and a message naming the variable and the choices; `portable` is always valid.
    func testFloatKernelVariableIsValidated() throws {
        var r = try edgecli(["bench", "--help"], environment: ["RRAM_EDGE_FLOAT_KERNELS": "avx512"])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("RRAM_EDGE_FLOAT_KERNELS='avx512'") && r.err.contains("portable"), r.err)
        r = try edgecli(["bench", "--help"], environment: ["RRAM_EDGE_FLOAT_KERNELS": "portable"])
        XCTAssertEqual(r.code, 0, r.err)
    }

    /// RRAM_EDGE_INT_KERNELS (Kernels/IntDispatch.swift): the same rule; `edgecli version` names
    /// the set in use and the sets available.
    func testIntKernelVariableIsValidatedAndNamed() throws {
        var r = try edgecli(["version"], environment: ["RRAM_EDGE_INT_KERNELS": "vnni"])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("RRAM_EDGE_INT_KERNELS='vnni'") && r.err.contains("portable, avx2"), r.err)
        for set in IntDispatch.available {
            r = try edgecli(["version", "--json"], environment: ["RRAM_EDGE_INT_KERNELS": set.rawValue])
            XCTAssertEqual(r.code, 0, r.err)
            XCTAssertTrue(r.out.contains("\"int_kernels\":\"\(set.rawValue)\""), r.out)
        }
        if !IntDispatch.available.contains(.avx2) {
            r = try edgecli(["version"], environment: ["RRAM_EDGE_INT_KERNELS": "avx2"])
            XCTAssertEqual(r.code, 2, r.err)
            XCTAssertTrue(r.err.contains("has only portable"), r.err)
        }
    }

    /// `bench peak`: one figure per available kernel set, each naming its instruction; a bad
    /// duration is an error.
    func testBenchPeakCoversEveryKernelSet() throws {
        var r = try edgecli(["bench", "peak", "--seconds", "0.05", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let results = try XCTUnwrap(obj["results"] as? [[String: Any]])
        XCTAssertEqual(results.compactMap { $0["int_kernels"] as? String }, IntDispatch.available.map(\.rawValue))
        for res in results {
            XCTAssertGreaterThan(res["gmac_per_s"] as? Double ?? 0, 0, "\(res)")
            XCTAssertFalse((res["instruction"] as? String ?? "").isEmpty)
        }
        r = try edgecli(["bench", "peak", "--seconds", "-1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.err.contains("--seconds"), r.err)
    }

    /// `prune --hysteresis-exempt`: names are checked against the task's masked layers before any
    /// data is read or the run directory is made.
    func testPruneChecksHysteresisExemptLayers() throws {
        let out = makeTempDir(self) + "/run"
        var r = try edgecli(["prune", "--mode", "hardware", "--out", out, "--hysteresis-exempt", "conv1,conv9"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.err.contains("'conv9'") && r.err.contains("conv1, conv2, fc1, fc2"), r.err)
        r = try edgecli(["prune", "--mode", "hardware", "--out", out, "--hysteresis-exempt", "conv1,"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.err.contains("--hysteresis-exempt"), r.err)
        r = try edgecli(["prune", "--mode", "hardware", "--out", out, "--hysteresis-exempt", "conv1,conv1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.err.contains("twice"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// `prune --compare-hysteresis DIR`: a run without hysteresis compared with its finished twin
    /// (spoken-digit, 60 training samples); the figures agree with both runs' own summaries.
    func testPruneComparesHysteresisTwins() throws {
        guard let shared = Datasets.sharedDataDir(), FileManager.default.fileExists(atPath: shared + "/spoken-digit") else {
            throw XCTSkip("shared/data/spoken-digit not found next to the package (see ../shared/data/README.md)")
        }
        let dir = makeTempDir(self)
        let common = ["prune", "--task", "spoken-digit", "--mode", "software", "--epochs", "1", "--limit-train", "60",
                      "--data", shared + "/spoken-digit", "--threads", "2", "--json"]
        let a = try edgecli(common + ["--out", dir + "/with"])
        XCTAssertEqual(a.code, 0, a.err)
        var r = try edgecli(common + ["--out", dir + "/bad", "--compare-hysteresis", dir + "/with"])
        XCTAssertNotEqual(r.code, 0); XCTAssertTrue(r.err.contains("both runs use hysteresis"), r.err)
        r = try edgecli(common + ["--out", dir + "/bad", "--no-hysteresis", "--seed", "2", "--compare-hysteresis", dir + "/with"])
        XCTAssertNotEqual(r.code, 0); XCTAssertTrue(r.err.contains("more than the hysteresis options"), r.err)
        r = try edgecli(common + ["--out", dir + "/bad", "--no-hysteresis", "--compare-hysteresis", dir + "/missing"])
        XCTAssertNotEqual(r.code, 0); XCTAssertTrue(r.err.contains("no checkpoint"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad"), "a refused comparison writes nothing")
        let b = try edgecli(common + ["--out", dir + "/without", "--no-hysteresis", "--compare-hysteresis", dir + "/with"])
        XCTAssertEqual(b.code, 0, b.err)
        func object(_ text: String) throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        }
        let sa = try object(a.out), sb = try object(b.out)
        let c = try XCTUnwrap(sb["hysteresis_comparison"] as? [String: Any])
        let fw = try XCTUnwrap(sa["flips_total"] as? Int), fo = try XCTUnwrap(sb["flips_total"] as? Int)
        let aw = try XCTUnwrap(sa["test_accuracy"] as? Double), ao = try XCTUnwrap(sb["test_accuracy"] as? Double)
        XCTAssertEqual(c["twin_run"] as? String, dir + "/with")
        XCTAssertEqual(c["flips_with"] as? Int, fw); XCTAssertEqual(c["flips_without"] as? Int, fo)
        XCTAssertEqual(c["test_accuracy_with"] as? Double, aw); XCTAssertEqual(c["test_accuracy_without"] as? Double, ao)
        XCTAssertEqual(try XCTUnwrap(c["fewer_flips"] as? Double), 1 - Double(fw) / Double(fo), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(c["cost_points"] as? Double), 100 * (ao - aw), accuracy: 1e-9)
        let stored = try object(String(contentsOfFile: dir + "/without/summary.json", encoding: .utf8))
        XCTAssertNotNil(stored["hysteresis_comparison"], "the run directory's summary holds the comparison")
    }

    func testGoldenAndVerifyThroughTheBinary() throws {
        let dir = makeTempDir(self)
        let b = livelyModel(seed: 25)
        let (model, _) = try writeModel(b, dir, "m.rram")
        let s = b.program.tensors[b.program.input].shape
        let px = samplePixels(b.program, count: 5, seed: 12)
        try IDX.write(try IDXArray(shape: [5, s.c, s.h, s.w], element: .uint8(px)), to: dir + "/images.idx", gzip: false)
        try NPY.write(try NPYArray(shape: [5], int32: [0, 1, 2, 3, 4]), to: dir + "/labels.npy")

        // golden: exit 0, deterministic, refuses to overwrite without --force
        var r = try edgecli(["golden", model, "--input", dir + "/images.idx", "--count", "3", "--labels", dir + "/labels.npy", "--out", dir + "/g"])
        XCTAssertEqual(r.code, 0, r.err)
        r = try edgecli(["golden", model, "--input", dir + "/images.idx", "--count", "3", "--labels", dir + "/labels.npy", "--out", dir + "/g2", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(try directoryContents(dir + "/g") == directoryContents(dir + "/g2"), "byte-identical golden directories")
        let golden = try Golden.read(dir: dir + "/g")
        XCTAssertEqual(golden.count, 3); XCTAssertEqual(golden.labels, [0, 1, 2])
        XCTAssertEqual(golden.values[0].map { UInt8($0) }, Array(px.prefix(3 * s.count)))
        r = try edgecli(["golden", model, "--input", dir + "/images.idx", "--out", dir + "/g"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("--force"), r.err)

        // round trip: exit 0, text and JSON
        r = try edgecli(["verify", model, "--golden", dir + "/g"])
        XCTAssertEqual(r.code, 0, r.out + r.err); XCTAssertTrue(r.out.contains("MATCH: all \(golden.points.count) layers bit-exact"), r.out)
        r = try edgecli(["verify", model, "--golden", dir + "/g", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        XCTAssertEqual(o["ok"] as? Bool, true)
        let layers = try XCTUnwrap(o["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["name"] as? String }, golden.points.map(\.name))
        XCTAssertEqual(layers.map { $0["mismatches"] as? Int }, golden.points.map { _ in 0 })
        XCTAssertTrue(layers.allSatisfy { ($0["floatVsInteger"] as? [String: Any])?["meanAbsDiffLSB"] is Double })
        XCTAssertEqual((o["argmax"] as? [String: Any])?["integerMatchesGolden"] as? Int, 3)

        // a flipped weight code in a copy of the model: exit 1, names the tile layer; hash warning
        var copy = try ModelBundle.decode(try readFileBytes(model))
        let k = b.program.nodes.firstIndex { $0.op.kind == .crossbar }!
        guard case .crossbar(var p) = copy.program.nodes[k].op else { return XCTFail() }
        let hi = Int8((1 << (p.weightBits - 1)) - 1)
        var flipped = -1
        for i in p.weights.indices where p.weights[i] == 0 { p.weights[i] = hi; flipped = i; break }
        copy.program.nodes[k].op = .crossbar(p)
        let (flip, _) = try writeModel(copy, dir, "flip.rram")
        let row = flipped % p.fanIn
        let tile = p.tiles.firstIndex { row >= $0.rowStart && row < $0.rowStart + $0.rowCount }!
        let tileName = golden.points.first { $0.node == k && $0.tile == tile }!.name
        r = try edgecli(["verify", flip, "--golden", dir + "/g", "--json"])
        XCTAssertEqual(r.code, 1, r.err)
        let fo = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        XCTAssertEqual(fo["ok"] as? Bool, false)
        let fm = try XCTUnwrap(fo["firstMismatch"] as? [String: Any])
        XCTAssertEqual(fm["layer"] as? String, tileName)
        XCTAssertEqual(fm["c"] as? Int, flipped / p.fanIn)
        XCTAssertEqual((fo["model"] as? [String: Any])?["matches"] as? Bool, false)
        XCTAssertEqual((fo["warnings"] as? [String])?.count, 1)
        XCTAssertTrue(r.err.contains("warning: the model file"), r.err)
        r = try edgecli(["verify", flip, "--golden", dir + "/g"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.out.contains("FIRST MISMATCH: layer \(tileName) (node \(k), tile \(tile))"), r.out)
        r = try edgecli(["verify", flip, "--golden", dir + "/g", "--strict-model"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("--strict-model"), r.err); XCTAssertEqual(r.out, "")

        // an edited dump: --against names layer, flat index, n/c/h/w, expected and got
        let dump = dir + "/dump"
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: false)
        for (name, a) in try Golden.dumpArrays(golden) { try NPY.write(a, to: dump + "/" + name) }
        r = try edgecli(["verify", model, "--golden", dir + "/g", "--against", dump])
        XCTAssertEqual(r.code, 0, r.out + r.err)
        let j = golden.logits - 1
        let pt = golden.points[j]
        var v = golden.values[j]
        let i = v.count - 1
        v[i] = pt.kind == .code ? (v[i] == 0 ? 1 : 0) : v[i] &- 3
        try NPY.write(try Golden.integerArray(pt, count: 3, values: v), to: dump + "/" + pt.file)
        let (n, c, h, w) = pt.coordinates(ofFlatIndex: i)
        r = try edgecli(["verify", model, "--golden", dir + "/g", "--against", dump])
        XCTAssertEqual(r.code, 1)
        let node = pt.node.map { " (node \($0)" + (pt.tile.map { ", tile \($0)" } ?? "") + ")" } ?? ""
        XCTAssertTrue(r.out.contains("FIRST MISMATCH: layer \(pt.name)\(node), flat index \(i) (n=\(n), c=\(c), h=\(h), w=\(w)): expected \(golden.values[j][i]), got \(v[i])"), r.out)
        try NPY.write(try NPYArray(shape: [3, pt.shape.count], int64: v.map { Int64($0) }), to: dump + "/" + pt.file)
        r = try edgecli(["verify", model, "--golden", dir + "/g", "--against", dump])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains(pt.file) && r.err.contains("dtype"), r.err)

        // manifest tampering, unknown options, missing files, images that do not fit
        var bytes = try readFileBytes(dir + "/g/" + golden.points[1].file)
        bytes[bytes.count - 1] ^= 0x10
        try writeFileAtomically(bytes, to: dir + "/g/" + golden.points[1].file)
        r = try edgecli(["verify", model, "--golden", dir + "/g"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains(golden.points[1].file) && r.err.contains("does not match the manifest"), r.err)
        r = try edgecli(["verify", model, "--golden", dir + "/g2", "--bogus"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("unknown option '--bogus'"), r.err)
        r = try edgecli(["golden", model, "--input", dir + "/images.idx", "--out", dir + "/g3", "--frobnicate", "1"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("unknown option '--frobnicate'"), r.err)
        r = try edgecli(["verify", dir + "/none.rram", "--golden", dir + "/g2"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("none.rram"), r.err)
        r = try edgecli(["verify", model, "--golden", dir + "/nodir"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("nodir"), r.err)
        try NPY.write(try NPYArray(shape: [2, 10], uint8: [UInt8](repeating: 1, count: 20)), to: dir + "/bad.npy")
        r = try edgecli(["golden", model, "--input", dir + "/bad.npy", "--out", dir + "/g3"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("bad.npy"), r.err)
        try NPY.write(try NPYArray(shape: [5, s.h, s.w, s.c], uint8: px), to: dir + "/hwc.npy")
        r = try edgecli(["golden", model, "--input", dir + "/hwc.npy", "--out", dir + "/g3"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("(C,H,W) order"), r.err)
        try NPY.write(try NPYArray(shape: [5, s.count], uint8: px), to: dir + "/flat.npy")
        r = try edgecli(["golden", model, "--input", dir + "/flat.npy", "--count", "3", "--labels", dir + "/labels.npy", "--out", dir + "/g4"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(try directoryContents(dir + "/g4") == directoryContents(dir + "/g2"), "NPY [M, C*H*W] and IDX [M, C, H, W] give the same golden vectors")
        r = try edgecli(["golden", model, "--input", dir + "/images.idx", "--count", "6", "--out", dir + "/g3"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("--count"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/g3"), "no output on error")
        // --compress and --float-count: a deterministic compressed directory that verifies; K > N is refused
        let zArgs = ["golden", model, "--input", dir + "/images.idx", "--count", "4", "--float-count", "2", "--compress", "--json"]
        r = try edgecli(zArgs + ["--out", dir + "/z1"])
        XCTAssertEqual(r.code, 0, r.err)
        let zo = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        XCTAssertEqual(zo["floatCount"] as? Int, 2); XCTAssertEqual(zo["compressed"] as? Bool, true)
        XCTAssertEqual(zo["aliases"] as? Int, Golden.aliases(try Golden.read(dir: dir + "/z1")).compactMap { $0 }.count)
        r = try edgecli(zArgs + ["--out", dir + "/z2"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(try directoryContents(dir + "/z1") == directoryContents(dir + "/z2"), "byte-identical compressed directories")
        XCTAssertTrue(try directoryContents(dir + "/z1").keys.allSatisfy { $0 == "manifest.json" || $0.hasSuffix(".npy.gz") })
        r = try edgecli(["verify", model, "--golden", dir + "/z1"])
        XCTAssertEqual(r.code, 0, r.out + r.err); XCTAssertTrue(r.out.contains("over the first 2 of 4 images"), r.out)
        r = try edgecli(["golden", model, "--input", dir + "/images.idx", "--count", "3", "--float-count", "4", "--out", dir + "/g3"])
        XCTAssertEqual(r.code, 1); XCTAssertTrue(r.err.contains("--float-count"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/g3"), "no output on error")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.contains(".tmp-") })
    }

    /// The C writer documented in docs/GOLDEN.md section 4, compiled with gcc: a dump written
    /// with it verifies; one changed value is named.
    func testDocumentedCWriterDumpVerifies() throws {
        guard let gcc = ["/usr/bin/gcc", "/usr/local/bin/gcc", "/usr/bin/cc"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no C compiler: the documented C writer is not compiled")
        }
        let root = try XCTUnwrap(repositoryRoot())
        let doc = String(decoding: try readFileBytes(root + "/docs/GOLDEN.md"), as: UTF8.self)
        let start = try XCTUnwrap(doc.range(of: "<!-- npy_write -->\n```c\n"))
        let end = try XCTUnwrap(doc.range(of: "\n```", range: start.upperBound..<doc.endIndex))
        let dir = makeTempDir(self)
        let main = String(doc[start.upperBound..<end.lowerBound]) + """

        #include <stdlib.h>
        int main(int argc, char **argv) {   /* OUT DESCR N C H W RAW */
            if (argc != 8) return 2;
            FILE *f = fopen(argv[7], "rb"); if (!f) return 3;
            static unsigned char buf[1 << 20]; size_t n = fread(buf, 1, sizeof buf, f); fclose(f);
            return npy_write(argv[1], argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), buf, n) ? 4 : 0;
        }

        """
        try writeFileAtomically(Array(main.utf8), to: dir + "/w.c")
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: gcc)
        cc.arguments = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", dir + "/w", dir + "/w.c"]
        try cc.run(); cc.waitUntilExit()
        XCTAssertEqual(cc.terminationStatus, 0, "the documented C does not compile")

        let b = livelyModel(seed: 24)
        let (_, sha) = try writeModel(b, dir, "m.rram")
        let g = try Golden.generate(program: b.program, modelSHA256: sha, pixels: samplePixels(b.program, count: 2, seed: 6), count: 2)
        try FileManager.default.createDirectory(atPath: dir + "/dump", withIntermediateDirectories: false)
        func dump(_ j: Int, _ values: [Int32]) throws {
            let p = g.points[j]
            let raw = try Golden.integerArray(p, count: 2, values: values).data   // little-endian payload
            try writeFileAtomically(raw, to: dir + "/raw")
            let w = Process()
            w.executableURL = URL(fileURLWithPath: dir + "/w")
            w.arguments = [dir + "/dump/" + p.file, p.dtype.rawValue, "2", "\(p.shape.c)", "\(p.shape.h)", "\(p.shape.w)", dir + "/raw"]
            try w.run(); w.waitUntilExit()
            XCTAssertEqual(w.terminationStatus, 0)
        }
        for j in g.points.indices { try dump(j, g.values[j]) }
        XCTAssertTrue(try Verifier.compareDump(dir: dir + "/dump", program: b.program, modelSHA256: sha, golden: g).ok)
        var v = g.values[g.logits]; v[3] &+= 7
        try dump(g.logits, v)
        let r = try Verifier.compareDump(dir: dir + "/dump", program: b.program, modelSHA256: sha, golden: g)
        XCTAssertEqual(r.firstMismatch?.layer, g.points[g.logits].name); XCTAssertEqual(r.firstMismatch?.flatIndex, 3)
        XCTAssertEqual(r.firstMismatch?.got, g.values[g.logits][3] &+ 7); XCTAssertEqual(r.totalMismatches, 1)
    }
}
