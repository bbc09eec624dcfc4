// Loading, resolving and hashing target profiles. A profile is found by name in a `targets/`
// directory (RRAM_EDGE_TARGETS, then walking up from the current directory, then walking up
// from the executable), or given as a path to a JSON file. The built-in copies of the shipped
// profiles are the last resort (and a test keeps them equal to the files in targets/).
import Foundation

extension ConductanceDistribution {
    enum CodingKeys: String, CodingKey, CaseIterable { case shape, meanMicroSiemens, stdMicroSiemens, minimumMicroSiemens }

    /// `minimumMicroSiemens` may be omitted (0).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shape = try c.decode(DistributionShape.self, forKey: .shape)
        meanMicroSiemens = try c.decode(Double.self, forKey: .meanMicroSiemens)
        stdMicroSiemens = try c.decode(Double.self, forKey: .stdMicroSiemens)
        minimumMicroSiemens = try c.decodeIfPresent(Double.self, forKey: .minimumMicroSiemens) ?? 0
    }
}

public enum TargetProfiles {
    public static let defaultName = "rram-40nm-taox"
    /// Environment variable with extra profile directories (colon-separated).
    public static let environmentVariable = "RRAM_EDGE_TARGETS"

    /// Allowed keys per JSON object path (unknown keys are rejected: a misspelt optional field
    /// must not silently fall back to "absent").
    static let allowedKeys: [String: Set<String>] = [
        "": ["name", "description", "technology", "arrayRows", "arrayCols", "weightEncoding", "readVoltage",
             "dacBits", "tiaGainKiloOhm", "adcBits", "digitalBackend", "activationBits", "forming", "formed",
             "reset", "pristine", "readNoise", "drift", "stuckFaults", "sources"],
        "forming": ["formingVoltage", "breakdownMeanVolts", "breakdownStdVolts"],
        "formed": ["shape", "meanMicroSiemens", "stdMicroSiemens", "minimumMicroSiemens"],
        "reset": ["shape", "meanMicroSiemens", "stdMicroSiemens", "minimumMicroSiemens"],
        "pristine": ["shape", "meanMicroSiemens", "stdMicroSiemens", "minimumMicroSiemens"],
        "readNoise": ["relative", "absoluteMicroSiemens"],
        "drift": ["nuMean", "nuStd", "t0Seconds", "readTimeSeconds"],
        "stuckFaults": ["stuckOnFraction", "stuckOffFraction"],
    ]

    /// Decodes and validates a profile from JSON bytes; `source` names the file in errors.
    public static func decode(_ bytes: [UInt8], source: String) throws -> TargetProfile {
        let data = Data(bytes)
        let top: Any
        do { top = try JSONSerialization.jsonObject(with: data) } catch {
            throw DeviceError("\(source): not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = top as? [String: Any] else { throw DeviceError("\(source): a profile must be a JSON object") }
        for (path, allowed) in allowedKeys.sorted(by: { $0.key < $1.key }) {
            let obj: [String: Any]?
            if path.isEmpty { obj = dict } else { obj = dict[path] as? [String: Any] }
            guard let o = obj else { continue }
            for k in o.keys.sorted() where !allowed.contains(k) {
                throw DeviceError("\(source): unknown field '\(path.isEmpty ? k : path + "." + k)'")
            }
        }
        let p: TargetProfile
        do {
            p = try JSONDecoder().decode(TargetProfile.self, from: data)
        } catch let e as DecodingError {
            throw DeviceError("\(source): \(describe(e))")
        }
        do { try p.validate() } catch let e as DeviceError { throw DeviceError("\(source): \(e.message)") }
        return p
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey], _ last: CodingKey? = nil) -> String {
            let parts = (c + (last.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing field '\(path(ctx.codingPath, k))'"
        case .typeMismatch(let t, let ctx): return "field '\(path(ctx.codingPath))' has the wrong type (expected \(t))"
        case .valueNotFound(let t, let ctx): return "field '\(path(ctx.codingPath))' is null (expected \(t))"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "corrupt data: \(ctx.debugDescription)"
                : "field '\(path(ctx.codingPath))': \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    /// Loads a profile from a JSON file.
    public static func load(path: String) throws -> TargetProfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DeviceError("\(path): cannot read target profile (missing or unreadable)")
        }
        return try decode([UInt8](data), source: path)
    }

    /// Canonical JSON (sorted keys, no escaped slashes).
    public static func canonicalJSON(_ p: TargetProfile, pretty: Bool = false) -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of plain values and finite doubles cannot fail; a NaN (not
        // encodable as JSON) is encoded as a string so the hash still exists.
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return [UInt8]((try? enc.encode(p)) ?? Data())
    }

    /// FNV-1a 64 (offset basis cbf29ce484222325, prime 100000001b3).
    public static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// FNV-1a 64 of the canonical JSON, 16 lowercase hex digits.
    public static func contentHash(_ p: TargetProfile) -> String {
        let h = fnv1a64(canonicalJSON(p))
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// Directories searched for `NAME.json`, in order.
    public static func searchDirectories(environment: [String: String] = ProcessInfo.processInfo.environment,
                                         currentDirectory: String = FileManager.default.currentDirectoryPath,
                                         executablePath: String? = Bundle.main.executablePath) -> [String] {
        var dirs: [String] = []
        if let env = environment[environmentVariable] {
            dirs += env.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        func walkUp(_ start: String) {
            var url = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<64 {
                dirs.append(url.appendingPathComponent("targets").path)
                let parent = url.deletingLastPathComponent()
                if parent.path == url.path { break }
                url = parent
            }
        }
        walkUp(currentDirectory)
        if let exe = executablePath {
            walkUp(URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent().path)
        }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// A profile name (looked up in the search directories, then among the built-ins) or a path
    /// to a JSON file (anything containing "/" or ending in ".json").
    public static func resolve(_ nameOrPath: String) throws -> TargetProfile {
        try resolve(nameOrPath, directories: searchDirectories())
    }

    public static func resolve(_ nameOrPath: String, directories: [String]) throws -> TargetProfile {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") { return try load(path: nameOrPath) }
        let okChars = nameOrPath.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
        guard !nameOrPath.isEmpty, okChars else { throw DeviceError("target '\(nameOrPath)': not a valid profile name") }
        for d in directories {
            let f = d + "/" + nameOrPath + ".json"
            if FileManager.default.fileExists(atPath: f) { return try load(path: f) }
        }
        if let b = builtin.first(where: { $0.name == nameOrPath }) { return b }
        throw DeviceError("target '\(nameOrPath)': no \(nameOrPath).json in \(directories.joined(separator: ", ")) and no built-in profile of that name (built-ins: \(builtin.map(\.name).joined(separator: ", ")))")
    }

    // MARK: built-in copies of targets/*.json

    /// The paper's system: 40 nm TaOx RRAM macro, 512x512, 14-bit ADCs, Zynq FPGA.
    public static let rram40nmTaOx = TargetProfile(
        name: "rram-40nm-taox",
        description: "40 nm TaOx RRAM macro (Li, Wang et al., Nat. Commun. 2026): 512x512 1T1R arrays, differential column pairs, DC-voltage inputs, TIA + 14-bit ADC per column, activation/pooling on a Xilinx Zynq FPGA",
        technology: "TaOx RRAM, 40 nm, 1T1R",
        arrayRows: 512, arrayCols: 512, weightEncoding: "differential-columns",
        readVoltage: 0.2, dacBits: 8, tiaGainKiloOhm: 10, adcBits: 14,
        digitalBackend: "fpga:xilinx-zynq",
        activationBits: ["fashion-mnist": 4, "spoken-digit": 3, "drive": 6],
        forming: FormingModel(formingVoltage: 3.0, breakdownMeanVolts: 2.5, breakdownStdVolts: 0.3),
        formed: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 75, stdMicroSiemens: 25),
        reset: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 1.0, stdMicroSiemens: 0.5),
        pristine: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 0.1, stdMicroSiemens: 0.05),
        readNoise: ReadNoise(relative: 0.02, absoluteMicroSiemens: 0.02),
        drift: nil, stuckFaults: nil,
        sources: [
            "geometry, 14-bit ADC, TIA readout, differential pairs, FPGA, activation bits: Li, Wang et al., Pruning random resistive memory for optimizing analog AI, Nat. Commun. 2026",
            "formed/pristine levels: same group's random-RRAM work (pristine ~10 MOhm = 0.1 uS; formed < 20 kOhm = > 50 uS); spread assumed",
            "forming voltage, breakdown statistics, reset level, read noise, DAC bits, TIA gain, read voltage: assumed typical TaOx values (see targets/README.md)",
        ])

    /// A phase-change-memory-like target with conductance drift, for the generality claim.
    public static let pcmLike = TargetProfile(
        name: "pcm-like",
        description: "Phase-change-memory-like analog array: no forming step, SET/RESET conductances with power-law drift G(t) = G0 (t/t0)^-nu, 256x256 arrays, 8-bit ADCs",
        technology: "phase-change memory (GST-like), generic",
        arrayRows: 256, arrayCols: 256, weightEncoding: "differential-columns",
        readVoltage: 0.2, dacBits: 8, tiaGainKiloOhm: 20, adcBits: 8,
        digitalBackend: "fpga:generic",
        activationBits: ["fashion-mnist": 4, "spoken-digit": 3, "drive": 6],
        forming: FormingModel(formingVoltage: 1.0, breakdownMeanVolts: 0.5, breakdownStdVolts: 0),
        formed: ConductanceDistribution(shape: .normal, meanMicroSiemens: 20, stdMicroSiemens: 4, minimumMicroSiemens: 0.1),
        reset: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 0.2, stdMicroSiemens: 0.1),
        pristine: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 0.2, stdMicroSiemens: 0.1),
        readNoise: ReadNoise(relative: 0.03, absoluteMicroSiemens: 0.02),
        drift: DriftModel(nuMean: 0.05, nuStd: 0.02, t0Seconds: 20, readTimeSeconds: 3600),
        stuckFaults: nil,
        sources: [
            "drift law G(t) = G(t0)(t/t0)^-nu with t0 = 20 s, SET-state conductance up to ~25 uS, ~3% read noise: Joshi et al., Nat. Commun. 11, 2473 (2020); Le Gallo & Sebastian, J. Phys. D 53, 213002 (2020)",
            "nu spread, RESET level, geometry, converters: assumed generic values",
        ])

    /// A lower-precision RRAM: smaller arrays, 8-bit ADCs, more noise, fewer cells form, stuck cells.
    public static let rramLowPrecision = TargetProfile(
        name: "rram-lowprec",
        description: "Lower-precision RRAM: 128x128 arrays, 6-bit DAC, 8-bit ADCs, 5% read noise, ~84% forming yield, 0.5% stuck-on and 0.5% stuck-off cells",
        technology: "RRAM (HfOx-like), generic",
        arrayRows: 128, arrayCols: 128, weightEncoding: "differential-columns",
        readVoltage: 0.1, dacBits: 6, tiaGainKiloOhm: 10, adcBits: 8,
        digitalBackend: "mcu:generic",
        activationBits: ["fashion-mnist": 4, "spoken-digit": 3, "drive": 6],
        forming: FormingModel(formingVoltage: 3.0, breakdownMeanVolts: 2.7, breakdownStdVolts: 0.3),
        formed: ConductanceDistribution(shape: .normal, meanMicroSiemens: 40, stdMicroSiemens: 15, minimumMicroSiemens: 1),
        reset: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 2.0, stdMicroSiemens: 1.0),
        pristine: ConductanceDistribution(shape: .lognormal, meanMicroSiemens: 0.1, stdMicroSiemens: 0.05),
        readNoise: ReadNoise(relative: 0.05, absoluteMicroSiemens: 0.1),
        drift: nil,
        stuckFaults: StuckFaults(stuckOnFraction: 0.005, stuckOffFraction: 0.005),
        sources: ["all values assumed to stress the model (a deliberately worse RRAM), see targets/README.md"])

    public static let builtin: [TargetProfile] = [rram40nmTaOx, pcmLike, rramLowPrecision]
}
