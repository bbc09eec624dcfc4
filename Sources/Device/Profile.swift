// Target profiles: what a hardware target is (array geometry, converters, per-task activation
// precision) and the statistics of its analog memory cells (forming, formed / reset / pristine
// conductance, read noise, drift, stuck cells). Field-by-field documentation with units and
// sources: targets/README.md. The equations: docs/DEVICE.md.
import Foundation

/// A typed error for everything the Device module rejects: it names what is wrong and where
/// (file, field, index).
public struct DeviceError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Shape of a conductance distribution. Both are parameterised by their mean and standard
/// deviation in µS (the numbers a datasheet or a histogram gives); the lognormal's log-space
/// parameters follow analytically: s² = ln(1 + (std/mean)²), mu = ln(mean) - s²/2.
public enum DistributionShape: String, Codable, Sendable, Equatable, CaseIterable {
    case normal
    case lognormal
}

/// A conductance distribution in microsiemens.
public struct ConductanceDistribution: Codable, Sendable, Equatable {
    public var shape: DistributionShape
    /// Mean conductance, µS (> 0).
    public var meanMicroSiemens: Double
    /// Standard deviation, µS (>= 0).
    public var stdMicroSiemens: Double
    /// Draws below this value are clamped to it, µS (>= 0). Only matters for `normal`.
    public var minimumMicroSiemens: Double

    public init(shape: DistributionShape, meanMicroSiemens: Double, stdMicroSiemens: Double,
                minimumMicroSiemens: Double = 0) {
        self.shape = shape
        self.meanMicroSiemens = meanMicroSiemens
        self.stdMicroSiemens = stdMicroSiemens
        self.minimumMicroSiemens = minimumMicroSiemens
    }

    /// Log-space parameters (mu, sigma) of the lognormal with this mean and std.
    public var logParameters: (mu: Double, sigma: Double) {
        let cv = stdMicroSiemens / meanMicroSiemens
        let s2 = log1p(cv * cv)
        return (log(meanMicroSiemens) - s2 / 2, s2.squareRoot())
    }

    func validate(_ field: String) throws {
        guard meanMicroSiemens.isFinite, meanMicroSiemens > 0 else {
            throw DeviceError("\(field).meanMicroSiemens must be a finite number > 0, got \(meanMicroSiemens)")
        }
        guard stdMicroSiemens.isFinite, stdMicroSiemens >= 0 else {
            throw DeviceError("\(field).stdMicroSiemens must be a finite number >= 0, got \(stdMicroSiemens)")
        }
        guard minimumMicroSiemens.isFinite, minimumMicroSiemens >= 0 else {
            throw DeviceError("\(field).minimumMicroSiemens must be a finite number >= 0, got \(minimumMicroSiemens)")
        }
        guard minimumMicroSiemens < meanMicroSiemens else {
            throw DeviceError("\(field).minimumMicroSiemens (\(minimumMicroSiemens)) must be below the mean (\(meanMicroSiemens))")
        }
    }
}

/// Electroforming: a cell's breakdown voltage is normal(mean, std); the cell forms iff its
/// breakdown voltage is below the applied forming voltage, so the expected formed fraction is
/// Phi((formingVoltage - breakdownMean) / breakdownStd).
public struct FormingModel: Codable, Sendable, Equatable {
    /// Applied forming voltage, V (> 0).
    public var formingVoltage: Double
    /// Mean breakdown voltage of the cells, V (> 0).
    public var breakdownMeanVolts: Double
    /// Standard deviation of the breakdown voltage, V (>= 0; 0 = every cell alike).
    public var breakdownStdVolts: Double

    public init(formingVoltage: Double, breakdownMeanVolts: Double, breakdownStdVolts: Double) {
        self.formingVoltage = formingVoltage
        self.breakdownMeanVolts = breakdownMeanVolts
        self.breakdownStdVolts = breakdownStdVolts
    }

    /// Expected fraction of cells that form.
    public var expectedFormedFraction: Double {
        if breakdownStdVolts == 0 { return breakdownMeanVolts < formingVoltage ? 1 : 0 }
        return normalCDF((formingVoltage - breakdownMeanVolts) / breakdownStdVolts)
    }

    func validate(_ field: String) throws {
        guard formingVoltage.isFinite, formingVoltage > 0 else {
            throw DeviceError("\(field).formingVoltage must be a finite number > 0 (V), got \(formingVoltage)")
        }
        guard breakdownMeanVolts.isFinite, breakdownMeanVolts > 0 else {
            throw DeviceError("\(field).breakdownMeanVolts must be a finite number > 0 (V), got \(breakdownMeanVolts)")
        }
        guard breakdownStdVolts.isFinite, breakdownStdVolts >= 0 else {
            throw DeviceError("\(field).breakdownStdVolts must be a finite number >= 0 (V), got \(breakdownStdVolts)")
        }
    }
}

/// Read-to-read noise: read k of a cell with nominal conductance G is
/// G * (1 + relative * z1) + absoluteMicroSiemens * z2 (z1, z2 standard normal), clamped at 0.
public struct ReadNoise: Codable, Sendable, Equatable {
    /// Relative (multiplicative) noise, dimensionless standard deviation (>= 0).
    public var relative: Double
    /// Additive noise, µS standard deviation (>= 0).
    public var absoluteMicroSiemens: Double

    public init(relative: Double, absoluteMicroSiemens: Double) {
        self.relative = relative
        self.absoluteMicroSiemens = absoluteMicroSiemens
    }

    /// Expected standard deviation of the reads of a cell with nominal conductance g (µS).
    public func std(at g: Double) -> Double {
        ((relative * g) * (relative * g) + absoluteMicroSiemens * absoluteMicroSiemens).squareRoot()
    }

    func validate(_ field: String) throws {
        guard relative.isFinite, relative >= 0, relative < 1 else {
            throw DeviceError("\(field).relative must be a finite number in [0, 1), got \(relative)")
        }
        guard absoluteMicroSiemens.isFinite, absoluteMicroSiemens >= 0 else {
            throw DeviceError("\(field).absoluteMicroSiemens must be a finite number >= 0, got \(absoluteMicroSiemens)")
        }
    }
}

/// Conductance drift (phase-change memory): G(t) = G(t0) * (t / t0)^-nu with a per-cell drift
/// exponent nu ~ normal(nuMean, nuStd) clamped at 0, applied to both states.
public struct DriftModel: Codable, Sendable, Equatable {
    /// Mean drift exponent nu (dimensionless, >= 0).
    public var nuMean: Double
    /// Standard deviation of nu across cells (>= 0).
    public var nuStd: Double
    /// Reference time t0 after programming at which the distributions are specified, s (> 0).
    public var t0Seconds: Double
    /// Time after programming at which the array is read, s (>= t0).
    public var readTimeSeconds: Double

    public init(nuMean: Double, nuStd: Double, t0Seconds: Double, readTimeSeconds: Double) {
        self.nuMean = nuMean
        self.nuStd = nuStd
        self.t0Seconds = t0Seconds
        self.readTimeSeconds = readTimeSeconds
    }

    func validate(_ field: String) throws {
        guard nuMean.isFinite, nuMean >= 0, nuMean < 1 else {
            throw DeviceError("\(field).nuMean must be a finite number in [0, 1), got \(nuMean)")
        }
        guard nuStd.isFinite, nuStd >= 0 else { throw DeviceError("\(field).nuStd must be a finite number >= 0, got \(nuStd)") }
        guard t0Seconds.isFinite, t0Seconds > 0 else {
            throw DeviceError("\(field).t0Seconds must be a finite number > 0 (s), got \(t0Seconds)")
        }
        guard readTimeSeconds.isFinite, readTimeSeconds >= t0Seconds else {
            throw DeviceError("\(field).readTimeSeconds must be a finite number >= t0Seconds (\(t0Seconds) s), got \(readTimeSeconds)")
        }
    }
}

/// Stuck cells. A stuck-on cell cannot be reset (it keeps its formed conductance in the reset
/// state: a pruned weight that stays connected). A stuck-off cell never conducts like a formed
/// cell (in the formed state it shows its reset conductance: a kept weight that is missing).
public struct StuckFaults: Codable, Sendable, Equatable {
    /// Fraction of formed cells stuck on, in [0, 1].
    public var stuckOnFraction: Double
    /// Fraction of formed cells stuck off, in [0, 1].
    public var stuckOffFraction: Double

    public init(stuckOnFraction: Double, stuckOffFraction: Double) {
        self.stuckOnFraction = stuckOnFraction
        self.stuckOffFraction = stuckOffFraction
    }

    func validate(_ field: String) throws {
        for (n, v) in [("stuckOnFraction", stuckOnFraction), ("stuckOffFraction", stuckOffFraction)] {
            guard v.isFinite, v >= 0, v <= 1 else { throw DeviceError("\(field).\(n) must be a number in [0, 1], got \(v)") }
        }
        guard stuckOnFraction + stuckOffFraction <= 1 else {
            throw DeviceError("\(field): stuckOnFraction + stuckOffFraction must be <= 1")
        }
    }
}

/// A hardware target: geometry, converters, per-task activation precision and cell statistics.
public struct TargetProfile: Codable, Sendable, Equatable {
    /// Profile name (file name without .json).
    public var name: String
    /// One-line human description.
    public var description: String
    /// Memory technology, free text (e.g. "TaOx RRAM, 40 nm").
    public var technology: String
    /// Word lines (inputs) per array.
    public var arrayRows: Int
    /// Bit lines (outputs) per array; a weight uses two (G+, G-).
    public var arrayCols: Int
    /// How a signed weight is encoded; only "differential-columns" (G+ and G- in adjacent
    /// columns, currents subtracted) is defined.
    public var weightEncoding: String
    /// Read voltage at full-scale input, V.
    public var readVoltage: Double
    /// Resolution of the input DAC, bits.
    public var dacBits: Int
    /// Transimpedance of the column TIA, kOhm (V out per mA in).
    public var tiaGainKiloOhm: Double
    /// Resolution of the column ADC, bits.
    public var adcBits: Int
    /// Where activation and pooling run (free text, e.g. "fpga:xilinx-zynq").
    public var digitalBackend: String
    /// Activation precision per task, bits (e.g. "fashion-mnist": 4).
    public var activationBits: [String: Int]
    /// Electroforming model (formed fraction).
    public var forming: FormingModel
    /// Conductance of a formed cell in the formed (low resistance) state.
    public var formed: ConductanceDistribution
    /// Conductance of a formed cell after reset (the off state of a pruned weight).
    public var reset: ConductanceDistribution
    /// Conductance of a cell that did not form (stays pristine in both states).
    public var pristine: ConductanceDistribution
    /// Read-to-read noise.
    public var readNoise: ReadNoise
    /// Optional conductance drift (phase-change memories).
    public var drift: DriftModel?
    /// Optional stuck cells.
    public var stuckFaults: StuckFaults?
    /// Where the numbers come from (citations, "assumed" notes).
    public var sources: [String]

    public init(name: String, description: String, technology: String, arrayRows: Int, arrayCols: Int,
                weightEncoding: String = "differential-columns", readVoltage: Double, dacBits: Int,
                tiaGainKiloOhm: Double, adcBits: Int, digitalBackend: String, activationBits: [String: Int],
                forming: FormingModel, formed: ConductanceDistribution, reset: ConductanceDistribution,
                pristine: ConductanceDistribution, readNoise: ReadNoise, drift: DriftModel? = nil,
                stuckFaults: StuckFaults? = nil, sources: [String] = []) {
        self.name = name; self.description = description; self.technology = technology
        self.arrayRows = arrayRows; self.arrayCols = arrayCols; self.weightEncoding = weightEncoding
        self.readVoltage = readVoltage; self.dacBits = dacBits; self.tiaGainKiloOhm = tiaGainKiloOhm
        self.adcBits = adcBits; self.digitalBackend = digitalBackend; self.activationBits = activationBits
        self.forming = forming; self.formed = formed; self.reset = reset; self.pristine = pristine
        self.readNoise = readNoise; self.drift = drift; self.stuckFaults = stuckFaults; self.sources = sources
    }

    /// Cells per array (rows * cols); nil when it overflows.
    public var cellsPerArray: Int? {
        let (p, o) = arrayRows.multipliedReportingOverflow(by: arrayCols)
        return o ? nil : p
    }

    /// Activation precision of `task`, or an error listing the known tasks.
    public func activationBits(for task: String) throws -> Int {
        guard let b = activationBits[task] else {
            throw DeviceError("profile '\(name)': no activationBits for task '\(task)' (known: \(activationBits.keys.sorted().joined(separator: ", ")))")
        }
        return b
    }

    /// Checks every field; the error names the profile and the field.
    public func validate() throws {
        func fail(_ s: String) -> DeviceError { DeviceError("profile '\(name)': \(s)") }
        guard !name.isEmpty else { throw DeviceError("profile: name must not be empty") }
        guard arrayRows >= 1, arrayRows <= 1 << 20 else { throw fail("arrayRows must be in 1...\(1 << 20), got \(arrayRows)") }
        guard arrayCols >= 2, arrayCols <= 1 << 20 else { throw fail("arrayCols must be in 2...\(1 << 20), got \(arrayCols)") }
        guard arrayRows * arrayCols <= 1 << 26 else {
            throw fail("arrayRows x arrayCols must be at most \(1 << 26) cells per array, got \(arrayRows) x \(arrayCols)")
        }
        guard weightEncoding == "differential-columns" else {
            throw fail("weightEncoding must be \"differential-columns\", got \"\(weightEncoding)\"")
        }
        guard readVoltage.isFinite, readVoltage > 0, readVoltage <= 10 else {
            throw fail("readVoltage must be a finite number in (0, 10] V, got \(readVoltage)")
        }
        guard (1...24).contains(dacBits) else { throw fail("dacBits must be in 1...24, got \(dacBits)") }
        guard tiaGainKiloOhm.isFinite, tiaGainKiloOhm > 0 else {
            throw fail("tiaGainKiloOhm must be a finite number > 0, got \(tiaGainKiloOhm)")
        }
        guard (1...24).contains(adcBits) else { throw fail("adcBits must be in 1...24, got \(adcBits)") }
        for (task, bits) in activationBits.sorted(by: { $0.key < $1.key }) {
            guard !task.isEmpty else { throw fail("activationBits has an empty task name") }
            guard (1...16).contains(bits) else { throw fail("activationBits[\"\(task)\"] must be in 1...16, got \(bits)") }
        }
        do {
            try forming.validate("forming")
            try formed.validate("formed")
            try reset.validate("reset")
            try pristine.validate("pristine")
            try readNoise.validate("readNoise")
            try drift?.validate("drift")
            try stuckFaults?.validate("stuckFaults")
        } catch let e as DeviceError {
            throw fail(e.message)
        }
    }
}

// MARK: - Normal distribution helpers

/// Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2.
public func normalCDF(_ x: Double) -> Double {
    0.5 * erfc(-x / 2.0.squareRoot())
}

/// Inverse of `normalCDF` for p in (0, 1) by bisection (60 steps, ~1e-15 absolute).
public func normalQuantile(_ p: Double) -> Double {
    precondition(p > 0 && p < 1, "normalQuantile needs p in (0, 1)")
    var lo = -40.0, hi = 40.0
    for _ in 0..<200 {
        let mid = (lo + hi) / 2
        if normalCDF(mid) < p { lo = mid } else { hi = mid }
        if hi - lo < 1e-13 { break }
    }
    return (lo + hi) / 2
}
