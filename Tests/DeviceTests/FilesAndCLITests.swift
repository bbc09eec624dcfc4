import XCTest
import DataIO
@testable import Device
#if canImport(FoundationXML)
import FoundationXML
#endif

final class ReadoutFileTests: XCTestCase {
    func testSampleToNPYToImportIsIdentical() throws {
        let dir = TestSupport.tempDir("npy")
        let d = StatisticalDevice(profile: TargetProfiles.rramLowPrecision, seed: 41)
        let s = syntheticReadouts(d, arrays: 2, reads: 2)
        let paths = ReadoutFiles.paths(dir + "/chip.npy")
        XCTAssertEqual(paths.set, dir + "/chip-set.npy")
        XCTAssertEqual(paths.reset, dir + "/chip-reset.npy")
        try ReadoutFiles.write(set: s.set, reset: s.reset, reads: 2, cells: s.cells, paths: paths)
        // The files are plain [reads, cells] float32 NPY arrays.
        let raw = try NPY.read(path: paths.set)
        XCTAssertEqual(raw.shape, [2, s.cells])
        XCTAssertEqual(raw.dtype, .float32)
        let (m, files) = try ReadoutFiles.load(path: dir + "/chip.npy", arrayRows: 128, arrayCols: 128)
        XCTAssertEqual(files, paths.set + " + " + paths.reset)
        for a in 0..<2 {
            for st in CellState.allCases {
                for k in 0..<2 {
                    let model = d.sampleArray(array: a, state: st, read: k).map { Double(Float($0)) }
                    let back = fillArray(source: m, array: a, rows: 128, cols: 128, state: st, read: k, threads: 2)
                    XCTAssertEqual(back, model)  // identical conductances
                }
            }
        }
        // float64 files hold the same values.
        let p64 = ReadoutFiles.paths(dir + "/chip64")
        try ReadoutFiles.write(set: s.set, reset: s.reset, reads: 2, cells: s.cells, paths: p64, float64: true)
        XCTAssertEqual(try NPY.read(path: p64.reset).dtype, .float64)
        let m64 = try ReadoutFiles.load(setPath: p64.set, resetPath: p64.reset, arrayRows: 128, arrayCols: 128)
        XCTAssertEqual(m64.set, m.set)
        XCTAssertEqual(m64.reset, m.reset)
        // One file of shape [2, reads, cells].
        let both = try NPYArray(shape: [2, 2, s.cells], float32: s.set + s.reset)
        try NPY.write(both, to: dir + "/both.npy")
        let (mb, _) = try ReadoutFiles.load(path: dir + "/both.npy", arrayRows: 128, arrayCols: 128)
        XCTAssertEqual(mb.set, m.set)
        XCTAssertEqual(mb.reset, m.reset)
    }

    func testSiemensFilesAndFitFromFiles() throws {
        let dir = TestSupport.tempDir("siemens")
        let d = StatisticalDevice(profile: TargetProfiles.rramLowPrecision, seed: 42)
        let s = syntheticReadouts(d, arrays: 4, reads: 2)
        let inS = ReadoutFiles.paths(dir + "/s")
        try ReadoutFiles.write(set: s.set.map { $0 * 1e-6 }, reset: s.reset.map { $0 * 1e-6 }, reads: 2, cells: s.cells,
                               paths: inS, float64: false)
        let m = try ReadoutFiles.load(setPath: inS.set, resetPath: inS.reset, arrayRows: 128, arrayCols: 128, unit: .siemens)
        XCTAssertEqual(m.conductance(array: 1, row: 2, col: 3, state: .formed, read: 1),
                       d.conductance(array: 1, row: 2, col: 3, state: .formed, read: 1), accuracy: 1e-4)
        let r = try ProfileFitter.fit(m, base: TargetProfiles.rramLowPrecision)
        XCTAssertEqual(r.profile.formed.meanMicroSiemens, 40, accuracy: 1.5)
        XCTAssertEqual(r.profile.reset.meanMicroSiemens, 2, accuracy: 0.1)
    }

    func testBadReadoutFiles() throws {
        let dir = TestSupport.tempDir("badnpy")
        func err(_ set: NPYArray, _ reset: NPYArray) throws -> String {
            try NPY.write(set, to: dir + "/x-set.npy")
            try NPY.write(reset, to: dir + "/x-reset.npy")
            do { _ = try ReadoutFiles.load(path: dir + "/x", arrayRows: 2, arrayCols: 2); return "" } catch {
                XCTAssertTrue(error is DeviceError)
                return "\(error)"
            }
        }
        let good = try NPYArray(shape: [2, 3], float32: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try err(good, good), "")
        // Wrong shape, NaN, wrong dtype, cell count mismatch: each names the file.
        var e = try err(try NPYArray(shape: [6], float32: [1, 2, 3, 4, 5, 6]), good)
        XCTAssertTrue(e.contains("x-set.npy") && e.contains("shape [reads, cells]"), e)
        e = try err(good, try NPYArray(shape: [2, 3], float32: [1, 2, .nan, 4, 5, 6]))
        XCTAssertTrue(e.contains("x-reset.npy") && e.contains("read 0, cell 2") && e.contains("not finite"), e)
        e = try err(try NPYArray(shape: [2, 3], int32: [1, 2, 3, 4, 5, 6]), good)
        XCTAssertTrue(e.contains("x-set.npy") && e.contains("float32 or float64"), e)
        e = try err(good, try NPYArray(shape: [3, 2], float32: [1, 2, 3, 4, 5, 6]))
        XCTAssertTrue(e.contains("same cells"), e)
        // Not an NPY file at all / truncated: DataIO's error, naming the file.
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir + "/x-set.npy"))
        do { _ = try ReadoutFiles.load(path: dir + "/x", arrayRows: 2, arrayCols: 2); XCTFail("accepted garbage") } catch {
            XCTAssertTrue("\(error)".contains("x-set.npy"), "\(error)")
        }
        // A single file that is not [2, reads, cells].
        try NPY.write(good, to: dir + "/single.npy")
        XCTAssertThrowsError(try ReadoutFiles.load(path: dir + "/single.npy", arrayRows: 2, arrayCols: 2)) {
            XCTAssertTrue("\($0)".contains("[2, reads, cells]"))
        }
        XCTAssertThrowsError(try ReadoutFiles.load(path: dir + "/none.npy", arrayRows: 2, arrayCols: 2)) {
            XCTAssertTrue("\($0)".contains("none-set.npy"))
        }
    }
}

final class HistogramSVGTests: XCTestCase {
    func testCountsUseLogBins() {
        // Decades -1..<2, 1 bin per decade: 0.5 -> bin 0, 5 -> bin 1, 50 -> bin 2; out of range clamps.
        XCTAssertEqual(HistogramSVG.counts([0.5, 5, 50, 0.001, 1e6, 0], loDecade: -1, hiDecade: 2, bins: 3), [3, 1, 2])
        XCTAssertEqual(HistogramSVG.counts([1, 9.99, 10], loDecade: 0, hiDecade: 2, bins: 4), [1, 1, 1, 0])
    }

    func testSVGIsWellFormedWithAxesLabelsAndLegend() throws {
        let doc = HistogramSVG.render(title: "a <b> & c", series: [
            HistogramSeries(label: "formed", color: "#d62728", values: [50, 60, 70, 80]),
            HistogramSeries(label: "reset", color: "#1f77b4", values: [0.5, 1, 1.5]),
        ])
        var texts: [String] = []
        final class Collector: NSObject, XMLParserDelegate {
            var texts: [String] = [], current = "", inText = false, elements = 0
            func parser(_ parser: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                elements += 1
                if e == "text" { inText = true; current = "" }
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { current += string } }
            func parser(_ parser: XMLParser, didEndElement e: String, namespaceURI: String?, qualifiedName: String?) {
                if e == "text" { texts.append(current); inText = false }
            }
        }
        let parser = XMLParser(data: Data(doc.utf8))
        let c = Collector()
        parser.delegate = c
        XCTAssertTrue(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        texts = c.texts
        XCTAssertTrue(texts.contains("a <b> & c"))  // escaped and decoded back
        XCTAssertTrue(texts.contains("Conductance (µS, log scale)"))
        XCTAssertTrue(texts.contains { $0.hasPrefix("Cells per bin") })
        XCTAssertTrue(texts.contains("formed (n = 4)"))
        XCTAssertTrue(texts.contains("reset (n = 3)"))
        for decade in ["0.1", "1", "10", "100"] { XCTAssertTrue(texts.contains(decade), "missing tick \(decade)") }
        XCTAssertEqual(doc.components(separatedBy: "<polygon").count - 1, 2)
    }
}

/// The edgecli binary built next to the tests (swift test builds every product).
final class DeviceCLITests: XCTestCase {
    var edgecli: String {
        ProcessInfo.processInfo.environment["EDGECLI"] ?? TestSupport.packageRoot + "/.build/debug/edgecli"
    }

    func run(_ args: [String], cwd: String? = nil, env: [String: String] = [:]) throws -> (code: Int32, out: String, err: String) {
        guard FileManager.default.isExecutableFile(atPath: edgecli) else {
            XCTFail("edgecli not found at \(edgecli) (run `swift build` or set EDGECLI)")
            return (-1, "", "")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: edgecli)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        try p.run()
        let od = o.fileHandleForReading.readDataToEndOfFile(), ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }

    func testSampleFitRoundTripThroughTheCommandLine() throws {
        let dir = TestSupport.tempDir("cli")
        let r = try run(["device", "sample", "--target", "rram-lowprec", "--seed", "3", "--arrays", "4", "--reads", "3",
                         "--out", dir + "/ro.npy", "--svg", dir + "/h.svg", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        let stats = obj["statistics"] as! [String: Any]
        XCTAssertEqual(stats["formedFraction"] as! Double, normalCDF(1), accuracy: 0.01)
        XCTAssertEqual(stats["cells"] as! Int, 4 * 128 * 128)
        for f in ["/ro-set.npy", "/ro-reset.npy", "/h.svg"] { XCTAssertTrue(FileManager.default.fileExists(atPath: dir + f), f) }
        XCTAssertEqual(try NPY.read(path: dir + "/ro-set.npy").shape, [3, 4 * 128 * 128])
        let fit = try run(["device", "fit", dir + "/ro.npy", "--base", "rram-lowprec", "--name", "mychip", "--out", dir + "/mychip.json"])
        XCTAssertEqual(fit.code, 0, fit.err)
        let p = try TargetProfiles.load(path: dir + "/mychip.json")
        XCTAssertEqual(p.name, "mychip")
        XCTAssertEqual(p.formed.meanMicroSiemens, 40, accuracy: 2)
        // The fitted profile is usable as a target by path and, via RRAM_EDGE_TARGETS, by name.
        XCTAssertEqual(try run(["device", "show", "--target", dir + "/mychip.json"]).code, 0)
        let byName = try run(["device", "show", "--target", "mychip"], env: ["RRAM_EDGE_TARGETS": dir])
        XCTAssertEqual(byName.code, 0, byName.err)
        XCTAssertTrue(byName.out.contains(TargetProfiles.contentHash(p)))
    }

    func testBadInputsExitNonZeroWithAMessage() throws {
        let dir = TestSupport.tempDir("clibad")
        var bad = try JSONSerialization.jsonObject(with: Data(TargetProfiles.canonicalJSON(TargetProfiles.rram40nmTaOx))) as! [String: Any]
        var formed = bad["formed"] as! [String: Any]
        formed["stdMicroSiemens"] = -3
        bad["formed"] = formed
        try JSONSerialization.data(withJSONObject: bad).write(to: URL(fileURLWithPath: dir + "/neg.json"))
        let cases: [([String], String)] = [
            (["device", "sample", "--target", dir + "/neg.json"], "formed.stdMicroSiemens"),
            (["device", "sample", "--target", "no-such-target"], "no-such-target"),
            (["device", "sample", "--bogus"], "unknown option '--bogus'"),
            (["device", "sample", "--seed", "-4"], "--seed"),
            (["device", "sample", "--arrays", "0"], "--arrays"),
            (["device", "sample", "--target", "rram-40nm-taox", "--time", "100"], "drift"),
            (["device", "fit", dir + "/missing.npy"], "missing-set.npy"),
            (["device", "fit", "--set", dir + "/a.npy"], "--reset"),
            (["device", "place", "--layers", "fc:0x3"], "positive integers"),
            (["device", "frobnicate"], "unknown subcommand"),
        ]
        for (args, needle) in cases {
            let r = try run(args)
            XCTAssertNotEqual(r.code, 0, args.joined(separator: " "))
            XCTAssertTrue(r.err.contains(needle), "\(args): stderr '\(r.err)' should mention \(needle)")
            XCTAssertFalse(r.err.contains("Fatal error"), r.err)
        }
    }

    func testPlaceCommandPrintsAValidPlacement() throws {
        let r = try run(["device", "place", "--layers", "conv1:9x64,conv2:576x16,fc1:400x128,fc2:128x10", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let p = try JSONDecoder().decode(CrossbarPlacement.self, from: Data(r.out.utf8))
        XCTAssertNoThrow(try p.validate())
        XCTAssertEqual(p.arrayRows, 512)
        XCTAssertEqual(p.tiles.filter { $0.layer == 1 }.count, 2)
    }
}
