// `edgecli device`: sample the statistical model of a target, fit a profile to chip readouts,
// show a profile, place a network's layers on crossbar arrays. See docs/DEVICE.md.
import DataIO
import Device
import Foundation

enum DeviceCommand {
    static let usageText = """
    usage: edgecli device SUBCOMMAND [options]

      sample  --target T --seed S [--arrays N] [--reads K] [--threads N] [--time SECONDS]
              [--out readouts.npy [--float64]] [--svg hist.svg] [--json]
          Sample N arrays of the target's statistical model; print formed fraction, mean/std of
          formed, reset and pristine conductance (µS) and read noise. --out P writes
          P-set.npy and P-reset.npy (a trailing .npy of P is dropped), each [K, N*rows*cols]
          float32 µS (float64 with --float64; K >= 1, default K = 1 when --out is given);
          cell index = (array*rows + row)*cols + col. --svg writes a histogram.
      fit     [READOUTS | --set S.npy --reset R.npy] [--unit uS|mS|S|nS] [--base T]
              [--name NAME] [--formed-threshold uS] [--out profile.json] [--json]
          Fit a profile's statistics to readouts ([reads, cells] float arrays, µS by default).
          READOUTS is one file of shape [2, reads, cells] (set, reset) if it exists, else
          READOUTS-set.npy + READOUTS-reset.npy (what `sample --out READOUTS` writes). Geometry,
          converters and forming voltage come from --base (default rram-40nm-taox).
      show    [--target T] [--json]
          Print a resolved profile, where it came from and its content hash.
      place   --layers NAME:FANINxFANOUT,... [--target T | --rows R --cols C] [--out placement.json] [--json]
          Place weight matrices on arrays (differential column pairs, row tiles, shelf packing).

    --target is a profile name (searched in $RRAM_EDGE_TARGETS, then targets/ walking up from
    the current directory and from the executable; built-ins last) or a path to a JSON file.
    """

    static let command = Command(
        name: "device",
        summary: "device model: sample, fit readouts, show a profile, place layers",
        usage: usageText,
        run: { args in
            guard let sub = args.positional() else { throw CLIError("device: missing subcommand (sample, fit, show, place)") }
            switch sub {
            case "sample": return try sample(&args)
            case "fit": return try fit(&args)
            case "show": return try show(&args)
            case "place": return try place(&args)
            default: throw CLIError("device: unknown subcommand '\(sub)' (sample, fit, show, place)")
            }
        })

    static func encodeJSON<T: Encodable>(_ v: T, pretty: Bool = false) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(v), as: UTF8.self)
    }

    static func f(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)g", x) }

    // MARK: sample

    struct SampleOutput: Encodable {
        var target: String
        var profileHash: String
        var seed: UInt64
        var arrays: Int
        var reads: Int
        var statistics: SampleStatistics
        var expected: Expected
        var files: [String]
        struct Expected: Encodable {
            var formedMeanMicroSiemens: Double
            var formedStdMicroSiemens: Double
            var resetMeanMicroSiemens: Double
            var resetStdMicroSiemens: Double
            var pristineMeanMicroSiemens: Double
            var driftFactorAtReadTime: Double?
        }
    }

    static func sample(_ args: inout Args) throws -> Int32 {
        let target = try args.option("target") ?? TargetProfiles.defaultName
        let seed = try args.uint64("seed", default: 1)
        let arrays = try args.int("arrays", default: 1, range: 1...4096)
        let out = try args.option("out")
        let reads = try args.int("reads", default: out == nil ? 0 : 1, range: 0...100_000)
        let threads = try args.int("threads", default: 2, range: 1...256)
        let timeOpt = try args.option("time")
        let float64 = args.flag("float64")
        let svg = try args.option("svg")
        let json = args.flag("json")
        try args.finish()
        if out != nil && reads < 1 { throw CLIError("device sample: --out needs --reads >= 1") }
        var time: Double? = nil
        if let t = timeOpt {
            guard let v = Double(t), v.isFinite, v > 0 else { throw CLIError("device sample: --time must be a finite number > 0 (s), got '\(t)'") }
            time = v
        }
        let profile = try TargetProfiles.resolve(target)
        if time != nil && profile.drift == nil { throw CLIError("device sample: --time needs a target with a drift model ('\(profile.name)' has none)") }
        let device = try StatisticalDevice(validating: profile, seed: seed, timeSeconds: time)
        let perArray = profile.arrayRows * profile.arrayCols
        let (cells, o1) = perArray.multipliedReportingOverflow(by: arrays)
        let (values, o2) = cells.multipliedReportingOverflow(by: max(reads, 1))
        // Statistics keep every nominal value in memory (and --out every read): cap at 2^27 values.
        guard !o1, !o2, values <= 1 << 27 else {
            throw CLIError("device sample: \(arrays) arrays x \(reads) reads of \(perArray) cells is too large (limit 2^27 values)")
        }
        let stats = SampleStatistics(device: device, arrays: arrays, reads: reads, threads: threads)
        var files: [String] = []
        if let out {
            let paths = ReadoutFiles.paths(out)
            var set = [Float](repeating: 0, count: reads * cells), reset = set
            for a in 0..<arrays {
                for k in 0..<reads {
                    let fs = device.sampleArray(array: a, state: .formed, read: k, threads: threads)
                    let rs = device.sampleArray(array: a, state: .reset, read: k, threads: threads)
                    let base = k * cells + a * perArray
                    for i in 0..<perArray { set[base + i] = Float(fs[i]); reset[base + i] = Float(rs[i]) }
                }
            }
            try ReadoutFiles.write(set: set, reset: reset, reads: reads, cells: cells, paths: paths, float64: float64)
            files += [paths.set, paths.reset]
        }
        if let svg {
            var fo: [Double] = [], re: [Double] = [], pr: [Double] = []
            for a in 0..<arrays {
                let mask = device.formedMask(array: a, threads: threads)
                let fs = device.sampleArray(array: a, state: .formed, read: nil, threads: threads)
                let rs = device.sampleArray(array: a, state: .reset, read: nil, threads: threads)
                for i in 0..<perArray { if mask[i] { fo.append(fs[i]); re.append(rs[i]) } else { pr.append(fs[i]) } }
            }
            let doc = HistogramSVG.render(
                title: "\(profile.name), seed \(seed): \(arrays) array(s) of \(profile.arrayRows)x\(profile.arrayCols), nominal conductance",
                series: [HistogramSeries(label: "formed cells, formed state", color: "#d62728", values: fo),
                         HistogramSeries(label: "formed cells, reset (off) state", color: "#1f77b4", values: re),
                         HistogramSeries(label: "cells that did not form (pristine)", color: "#7f7f7f", values: pr)])
            try writeFileAtomically(Array(doc.utf8), to: svg)
            files.append(svg)
        }
        let drift = profile.drift.map { d in exp(-d.nuMean * log((time ?? d.readTimeSeconds) / d.t0Seconds)) }
        let result = SampleOutput(
            target: profile.name, profileHash: TargetProfiles.contentHash(profile), seed: seed, arrays: arrays, reads: reads,
            statistics: stats,
            expected: .init(formedMeanMicroSiemens: profile.formed.meanMicroSiemens, formedStdMicroSiemens: profile.formed.stdMicroSiemens,
                            resetMeanMicroSiemens: profile.reset.meanMicroSiemens, resetStdMicroSiemens: profile.reset.stdMicroSiemens,
                            pristineMeanMicroSiemens: profile.pristine.meanMicroSiemens, driftFactorAtReadTime: drift),
            files: files)
        if json {
            print(try encodeJSON(result))
        } else {
            print("target \(profile.name) (hash \(result.profileHash)), seed \(seed), \(arrays) array(s) of \(profile.arrayRows)x\(profile.arrayCols) = \(cells) cells")
            print("formed fraction      \(f(stats.formedFraction)) (expected \(f(stats.expectedFormedFraction)))")
            print("formed   [µS]  mean \(f(stats.formed.mean))  std \(f(stats.formed.std))  (profile \(f(profile.formed.meanMicroSiemens)) / \(f(profile.formed.stdMicroSiemens)), \(profile.formed.shape.rawValue))")
            print("reset    [µS]  mean \(f(stats.reset.mean))  std \(f(stats.reset.std))  (profile \(f(profile.reset.meanMicroSiemens)) / \(f(profile.reset.stdMicroSiemens)), \(profile.reset.shape.rawValue))")
            print("pristine [µS]  mean \(f(stats.pristine.mean))  std \(f(stats.pristine.std))  (\(stats.pristine.count) cells)")
            if let d = drift { print("drift: formed/reset means scaled by ~\(f(d)) at read time (nu mean \(profile.drift!.nuMean))") }
            if let n = stats.formedReadNoise, let e = stats.expectedFormedReadNoise {
                print("read noise, formed cells [µS]  \(f(n)) over \(reads) read(s) (expected \(f(e)): relative \(profile.readNoise.relative), absolute \(profile.readNoise.absoluteMicroSiemens) µS)")
            } else {
                print("read noise: relative \(profile.readNoise.relative), absolute \(profile.readNoise.absoluteMicroSiemens) µS (use --reads K to measure)")
            }
            for file in files { print("wrote \(file)") }
        }
        return 0
    }

    // MARK: fit

    static func fit(_ args: inout Args) throws -> Int32 {
        let setOpt = try args.option("set"), resetOpt = try args.option("reset")
        let unit = try ConductanceUnit.parse(try args.option("unit") ?? "uS")
        let baseName = try args.option("base") ?? TargetProfiles.defaultName
        let name = try args.option("name")
        let thrOpt = try args.option("formed-threshold")
        let out = try args.option("out")
        let json = args.flag("json")
        let positional = args.positional()
        try args.finish()
        var threshold: Double? = nil
        if let t = thrOpt {
            guard let v = Double(t), v.isFinite, v > 0 else { throw CLIError("device fit: --formed-threshold must be a number > 0 (µS), got '\(t)'") }
            threshold = v
        }
        if let n = name, n.isEmpty || n.contains("/") { throw CLIError("device fit: --name must be a non-empty name without '/'") }
        let base = try TargetProfiles.resolve(baseName)
        let readouts: MeasuredReadouts, files: String
        switch (positional, setOpt, resetOpt) {
        case (let p?, nil, nil):
            (readouts, files) = try ReadoutFiles.load(path: p, arrayRows: base.arrayRows, arrayCols: base.arrayCols, unit: unit)
        case (nil, let s?, let r?):
            readouts = try ReadoutFiles.load(setPath: s, resetPath: r, arrayRows: base.arrayRows, arrayCols: base.arrayCols, unit: unit)
            files = s + " + " + r
        case (nil, _, _): throw CLIError("device fit: give READOUTS.npy or both --set S.npy and --reset R.npy")
        default: throw CLIError("device fit: give either READOUTS.npy or --set/--reset, not both")
        }
        let report = try ProfileFitter.fit(readouts, base: base, name: name, formedThreshold: threshold, sourceNote: files)
        if let out {
            try writeFileAtomically(TargetProfiles.canonicalJSON(report.profile, pretty: true) + Array("\n".utf8), to: out)
        }
        if json {
            print(try encodeJSON(report))
        } else {
            let p = report.profile
            print("fitted \(report.cells) cells (\(report.setReads) set / \(report.resetReads) reset reads) -> profile '\(p.name)' (hash \(TargetProfiles.contentHash(p)))")
            print("formed fraction  \(f(report.formedFraction)) (threshold \(f(report.formedThresholdMicroSiemens)) µS) -> breakdown mean \(f(p.forming.breakdownMeanVolts)) V, std \(f(p.forming.breakdownStdVolts)) V at forming \(f(p.forming.formingVoltage)) V")
            for (label, d) in [("formed", p.formed), ("reset", p.reset), ("pristine", p.pristine)] {
                print("\(label.padding(toLength: 9, withPad: " ", startingAt: 0)) \(d.shape.rawValue) mean \(f(d.meanMicroSiemens)) µS std \(f(d.stdMicroSiemens)) µS")
            }
            print("read noise relative \(f(p.readNoise.relative)), absolute \(f(p.readNoise.absoluteMicroSiemens)) µS\(report.readNoiseEstimated ? "" : " (from base)")")
            if report.stuckOnCells > 0 { print("stuck-on cells \(report.stuckOnCells)") }
            for n in report.notes { print("note: \(n)") }
            if let out { print("wrote \(out)") }
        }
        return 0
    }

    // MARK: show

    static func show(_ args: inout Args) throws -> Int32 {
        let target = try args.option("target") ?? TargetProfiles.defaultName
        let json = args.flag("json")
        try args.finish()
        let p = try TargetProfiles.resolve(target)
        if json {
            print(String(decoding: TargetProfiles.canonicalJSON(p, pretty: true), as: UTF8.self))
        } else {
            print("\(p.name): \(p.description)")
            print("hash \(TargetProfiles.contentHash(p))")
            print("arrays \(p.arrayRows)x\(p.arrayCols), \(p.weightEncoding), read \(p.readVoltage) V, DAC \(p.dacBits) bit, TIA \(p.tiaGainKiloOhm) kOhm, ADC \(p.adcBits) bit, backend \(p.digitalBackend)")
            print("activation bits " + p.activationBits.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            print("expected formed fraction \(f(p.forming.expectedFormedFraction))")
        }
        return 0
    }

    // MARK: place

    static func parseLayers(_ s: String) throws -> [LayerShape] {
        var layers: [LayerShape] = []
        for (i, item) in s.split(separator: ",").enumerated() {
            let parts = item.split(separator: ":", maxSplits: 1)
            let name = parts.count == 2 ? String(parts[0]) : "layer\(i)"
            let dims = (parts.count == 2 ? parts[1] : parts[0]).split(separator: "x")
            guard dims.count == 2, let fi = Int(dims[0]), let fo = Int(dims[1]), fi >= 1, fo >= 1 else {
                throw CLIError("device place: layer \(i) '\(item)' must be NAME:FANINxFANOUT with positive integers")
            }
            layers.append(LayerShape(name: name, fanIn: fi, fanOut: fo))
        }
        guard !layers.isEmpty else { throw CLIError("device place: --layers is empty") }
        return layers
    }

    static func place(_ args: inout Args) throws -> Int32 {
        let layersText = try args.required("layers")
        let target = try args.option("target")
        let rowsOpt = try args.option("rows"), colsOpt = try args.option("cols")
        let out = try args.option("out")
        let json = args.flag("json")
        try args.finish()
        let layers = try parseLayers(layersText)
        var rows: Int, cols: Int
        if let r = rowsOpt, let c = colsOpt {
            guard target == nil else { throw CLIError("device place: give --target or --rows/--cols, not both") }
            guard let ri = Int(r), let ci = Int(c), ri >= 1, ci >= 2 else {
                throw CLIError("device place: --rows must be >= 1 and --cols >= 2 integers")
            }
            rows = ri; cols = ci
        } else if rowsOpt != nil || colsOpt != nil {
            throw CLIError("device place: give both --rows and --cols")
        } else {
            let p = try TargetProfiles.resolve(target ?? TargetProfiles.defaultName)
            rows = p.arrayRows; cols = p.arrayCols
        }
        let placement = try CrossbarMapper.place(layers, arrayRows: rows, arrayCols: cols)
        try placement.validate()
        if let out { try writeFileAtomically(Array((try encodeJSON(placement, pretty: true) + "\n").utf8), to: out) }
        if json {
            print(try encodeJSON(placement))
        } else {
            print("\(layers.count) layer(s) on \(placement.arrayCount) array(s) of \(rows)x\(cols)")
            for t in placement.tiles {
                let l = layers[t.layer]
                print("  \(l.name): inputs \(t.inputOffset)..<\(t.inputOffset + t.rows) outputs \(t.outputOffset)..<\(t.outputOffset + t.outputs) -> array \(t.array) rows \(t.rowOffset)..<\(t.rowOffset + t.rows) cols \(t.colOffset)..<\(t.colOffset + t.cols)")
            }
            for (a, u) in placement.utilisation().enumerated() { print("  array \(a): utilisation \(String(format: "%.1f", u * 100))%") }
            if let out { print("wrote \(out)") }
        }
        return 0
    }
}
