import XCTest
@testable import Device

final class ProfileTests: XCTestCase {
    let root = TestSupport.packageRoot

    func testShippedProfilesAreValidAndEqualTheBuiltIns() throws {
        for b in TargetProfiles.builtin {
            XCTAssertNoThrow(try b.validate(), b.name)
            let file = try TargetProfiles.load(path: root + "/targets/\(b.name).json")
            XCTAssertEqual(file, b, "targets/\(b.name).json differs from the built-in copy")
            XCTAssertEqual(TargetProfiles.contentHash(file), TargetProfiles.contentHash(b))
        }
        // Every profile in targets/ loads and validates.
        let files = try FileManager.default.contentsOfDirectory(atPath: root + "/targets").filter { $0.hasSuffix(".json") }
        XCTAssertGreaterThanOrEqual(files.count, 3)
        for f in files {
            let p = try TargetProfiles.load(path: root + "/targets/" + f)
            XCTAssertEqual(p.name + ".json", f, "profile name must match its file name")
        }
    }

    /// The paper's system, as the brief states it.
    func testDefaultProfileIsThePapersSystem() throws {
        XCTAssertEqual(TargetProfiles.defaultName, "rram-40nm-taox")
        let p = try TargetProfiles.resolve(TargetProfiles.defaultName)
        XCTAssertEqual(p.arrayRows, 512)
        XCTAssertEqual(p.arrayCols, 512)
        XCTAssertEqual(p.arrayRows * p.arrayCols, 262_144)  // 256K cells per macro
        XCTAssertEqual(p.adcBits, 14)
        XCTAssertEqual(p.weightEncoding, "differential-columns")
        XCTAssertEqual(p.activationBits, ["fashion-mnist": 4, "spoken-digit": 3, "drive": 6])
        XCTAssertTrue(p.digitalBackend.contains("zynq"))
        // Physically plausible levels from the group's random-RRAM work: pristine ~0.1 µS,
        // formed > 50 µS (< 20 kOhm), reset around 1 µS.
        XCTAssertEqual(p.pristine.meanMicroSiemens, 0.1, accuracy: 0.05)
        XCTAssertGreaterThan(p.formed.meanMicroSiemens, 50)
        XCTAssertEqual(p.reset.meanMicroSiemens, 1, accuracy: 0.5)
        // Another technology with drift exists.
        let pcm = try TargetProfiles.resolve("pcm-like")
        XCTAssertNotNil(pcm.drift)
        XCTAssertNotEqual(pcm.technology, p.technology)
    }

    func testNormalCDFAndQuantileKnownValues() {
        // Table values of the standard normal distribution.
        XCTAssertEqual(normalCDF(0), 0.5, accuracy: 1e-15)
        XCTAssertEqual(normalCDF(1), 0.841_344_746_068_543, accuracy: 1e-12)
        XCTAssertEqual(normalCDF(-1.96), 0.024_997_895_148_220, accuracy: 1e-12)
        XCTAssertEqual(normalQuantile(0.975), 1.959_963_984_540_054, accuracy: 1e-9)
        XCTAssertEqual(normalQuantile(0.001), -3.090_232_306_167_813, accuracy: 1e-9)
        // Formed fraction = Phi((V_form - mu) / sigma): V_form 3, mu 2.7, sigma 0.3 -> Phi(1).
        let f = FormingModel(formingVoltage: 3, breakdownMeanVolts: 2.7, breakdownStdVolts: 0.3)
        XCTAssertEqual(f.expectedFormedFraction, 0.841_344_746_068_543, accuracy: 1e-12)
        XCTAssertEqual(FormingModel(formingVoltage: 1, breakdownMeanVolts: 0.5, breakdownStdVolts: 0).expectedFormedFraction, 1)
        XCTAssertEqual(FormingModel(formingVoltage: 1, breakdownMeanVolts: 1.5, breakdownStdVolts: 0).expectedFormedFraction, 0)
    }

    func testLognormalParametersAreAnalytic() {
        let d = ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 75, stdMicroSiemens: 25)
        let (mu, s) = d.logParameters
        // mean = exp(mu + s^2/2), var = (exp(s^2) - 1) exp(2 mu + s^2)
        XCTAssertEqual(exp(mu + s * s / 2), 75, accuracy: 1e-9)
        XCTAssertEqual(((exp(s * s) - 1) * exp(2 * mu + s * s)).squareRoot(), 25, accuracy: 1e-9)
    }

    func testFNVKnownAnswerAndHashProperties() throws {
        // FNV-1a 64 of the empty string is the offset basis; of "a" it is af63dc4c8601ec8c.
        XCTAssertEqual(TargetProfiles.fnv1a64([]), 0xCBF2_9CE4_8422_2325)
        XCTAssertEqual(TargetProfiles.fnv1a64(Array("a".utf8)), 0xAF63_DC4C_8601_EC8C)
        let p = TargetProfiles.rram40nmTaOx
        let h = TargetProfiles.contentHash(p)
        XCTAssertEqual(h.count, 16)
        XCTAssertTrue(h.allSatisfy { $0.isHexDigit })
        var q = p
        q.formed.stdMicroSiemens += 1
        XCTAssertNotEqual(TargetProfiles.contentHash(q), h)
        // Key order in the file does not matter (canonical JSON has sorted keys).
        let dir = TestSupport.tempDir("hash")
        let text = String(decoding: TargetProfiles.canonicalJSON(p, pretty: true), as: UTF8.self)
        let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        let reordered = try JSONSerialization.data(withJSONObject: obj, options: [])  // unsorted order
        try reordered.write(to: URL(fileURLWithPath: dir + "/x.json"))
        XCTAssertEqual(TargetProfiles.contentHash(try TargetProfiles.load(path: dir + "/x.json")), h)
    }

    // MARK: bad profiles

    func jsonObject(_ p: TargetProfile = TargetProfiles.rram40nmTaOx) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(TargetProfiles.canonicalJSON(p))) as! [String: Any]
    }

    func loadError(_ obj: Any, file: String = "bad.json") -> String? {
        let dir = TestSupport.tempDir("bad")
        let path = dir + "/" + file
        let data = (obj as? Data) ?? (try! JSONSerialization.data(withJSONObject: obj))
        try! data.write(to: URL(fileURLWithPath: path))
        do {
            _ = try TargetProfiles.load(path: path)
            return nil
        } catch {
            XCTAssertTrue(error is DeviceError, "typed error expected, got \(type(of: error))")
            XCTAssertTrue("\(error)".contains(path), "error must name the file: \(error)")
            return "\(error)"
        }
    }

    func testMissingFieldIsNamed() throws {
        var o = try jsonObject()
        var formed = o["formed"] as! [String: Any]
        formed.removeValue(forKey: "stdMicroSiemens")
        o["formed"] = formed
        let e = try XCTUnwrap(loadError(o))
        XCTAssertTrue(e.contains("missing field 'formed.stdMicroSiemens'"), e)
        var o2 = try jsonObject()
        o2.removeValue(forKey: "adcBits")
        XCTAssertTrue(try XCTUnwrap(loadError(o2)).contains("'adcBits'"))
    }

    func testNegativeStdWrongTypeUnknownFieldBadJSON() throws {
        var o = try jsonObject()
        var reset = o["reset"] as! [String: Any]
        reset["stdMicroSiemens"] = -0.5
        o["reset"] = reset
        let e = try XCTUnwrap(loadError(o))
        XCTAssertTrue(e.contains("reset.stdMicroSiemens"), e)
        XCTAssertTrue(e.contains(">= 0"), e)

        var o2 = try jsonObject()
        o2["arrayRows"] = "512"
        XCTAssertTrue(try XCTUnwrap(loadError(o2)).contains("arrayRows"))

        var o3 = try jsonObject()
        var noise = o3["readNoise"] as! [String: Any]
        noise["relativ"] = 0.1
        o3["readNoise"] = noise
        XCTAssertTrue(try XCTUnwrap(loadError(o3)).contains("unknown field 'readNoise.relativ'"))

        XCTAssertTrue(try XCTUnwrap(loadError(Data("{\"name\": ".utf8))).contains("not valid JSON"))
        XCTAssertTrue(try XCTUnwrap(loadError(Data("[1, 2]".utf8))).contains("JSON object"))
        // NaN is not JSON; a string where a number belongs is a type error.
        var o4 = try jsonObject()
        var forming = o4["forming"] as! [String: Any]
        forming["breakdownStdVolts"] = "NaN"
        o4["forming"] = forming
        XCTAssertTrue(try XCTUnwrap(loadError(o4)).contains("forming.breakdownStdVolts"))

        var o5 = try jsonObject()
        o5["activationBits"] = ["fashion-mnist": 0]
        XCTAssertTrue(try XCTUnwrap(loadError(o5)).contains("activationBits[\"fashion-mnist\"]"))
    }

    func testValidateRejectsEveryBadValueInMemory() {
        func fails(_ edit: (inout TargetProfile) -> Void, _ needle: String, line: UInt = #line) {
            var p = TargetProfiles.rram40nmTaOx
            edit(&p)
            XCTAssertThrowsError(try p.validate(), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e) should mention \(needle)", line: line)
            }
        }
        fails({ $0.formed.meanMicroSiemens = .nan }, "formed.meanMicroSiemens")
        fails({ $0.formed.stdMicroSiemens = -1 }, "formed.stdMicroSiemens")
        fails({ $0.pristine.minimumMicroSiemens = 1 }, "pristine.minimumMicroSiemens")
        fails({ $0.readNoise.relative = .infinity }, "readNoise.relative")
        fails({ $0.readNoise.absoluteMicroSiemens = -0.1 }, "readNoise.absoluteMicroSiemens")
        fails({ $0.forming.breakdownStdVolts = -0.1 }, "forming.breakdownStdVolts")
        fails({ $0.arrayCols = 1 }, "arrayCols")
        fails({ $0.arrayRows = 0 }, "arrayRows")
        fails({ $0.adcBits = 0 }, "adcBits")
        fails({ $0.weightEncoding = "single" }, "weightEncoding")
        fails({ $0.drift = DriftModel(nuMean: 0.1, nuStd: 0, t0Seconds: 10, readTimeSeconds: 1) }, "drift.readTimeSeconds")
        fails({ $0.stuckFaults = StuckFaults(stuckOnFraction: 0.7, stuckOffFraction: 0.7) }, "stuckFaults")
        fails({ $0.name = "" }, "name")
    }

    func testActivationBitsLookupAndValidatingInit() throws {
        let p = TargetProfiles.rram40nmTaOx
        XCTAssertEqual(try p.activationBits(for: "drive"), 6)
        XCTAssertThrowsError(try p.activationBits(for: "imagenet")) { e in
            XCTAssertTrue("\(e)".contains("imagenet") && "\(e)".contains("fashion-mnist"))
        }
        var bad = p
        bad.reset.stdMicroSiemens = -1
        XCTAssertThrowsError(try StatisticalDevice(validating: bad, seed: 1)) { XCTAssertTrue("\($0)".contains("reset.stdMicroSiemens")) }
        XCTAssertThrowsError(try StatisticalDevice(validating: p, seed: 1, timeSeconds: 10)) { XCTAssertTrue("\($0)".contains("drift")) }
        XCTAssertThrowsError(try StatisticalDevice(validating: TargetProfiles.pcmLike, seed: 1, timeSeconds: .nan))
        XCTAssertThrowsError(try StatisticalDevice(validating: TargetProfiles.pcmLike, seed: 1, timeSeconds: 1))  // < t0 = 20 s
        XCTAssertEqual(try StatisticalDevice(validating: TargetProfiles.pcmLike, seed: 1, timeSeconds: 60).timeSeconds, 60)
    }

    // MARK: resolution

    func testResolveByNameInDirectoriesEnvAndPathAndBuiltIn() throws {
        let dir = TestSupport.tempDir("resolve")
        var custom = TargetProfiles.rram40nmTaOx
        custom.name = "my-chip"
        custom.arrayRows = 256
        try Data(TargetProfiles.canonicalJSON(custom)).write(to: URL(fileURLWithPath: dir + "/my-chip.json"))
        XCTAssertEqual(try TargetProfiles.resolve("my-chip", directories: [dir]).arrayRows, 256)
        XCTAssertEqual(try TargetProfiles.resolve(dir + "/my-chip.json").arrayRows, 256)
        // The environment variable's directories come first.
        let dirs = TargetProfiles.searchDirectories(environment: [TargetProfiles.environmentVariable: dir + ":/nonexistent"],
                                                    currentDirectory: "/a/b", executablePath: "/c/bin/edgecli")
        XCTAssertEqual(Array(dirs.prefix(4)), [dir, "/nonexistent", "/a/b/targets", "/a/targets"])
        XCTAssertTrue(dirs.contains("/c/bin/targets"))
        XCTAssertTrue(dirs.contains("/c/targets"))
        // Walking up from the package's test directory finds the shipped targets/.
        let walk = TargetProfiles.searchDirectories(environment: [:], currentDirectory: root + "/Tests/DeviceTests", executablePath: nil)
        XCTAssertTrue(walk.contains(root + "/targets"))
        // Built-ins when no file is found.
        XCTAssertEqual(try TargetProfiles.resolve("pcm-like", directories: []), TargetProfiles.pcmLike)
        XCTAssertThrowsError(try TargetProfiles.resolve("no-such-chip", directories: [dir])) { e in
            XCTAssertTrue("\(e)".contains("no-such-chip"))
            XCTAssertTrue("\(e)".contains(dir))
        }
        XCTAssertThrowsError(try TargetProfiles.resolve(dir + "/missing.json")) { e in XCTAssertTrue("\(e)".contains("missing.json")) }
        XCTAssertThrowsError(try TargetProfiles.resolve("bad name!", directories: []))
    }
}
