// Measured conductance readouts (the layout of the paper's released chip data): two arrays,
// `set` (cells after forming / set) and `reset` (the same cells after reset), each of shape
// [reads, cells], float, in µS. They serve the same `ConductanceSource` interface as the
// statistical model: cell (array, row, col) is readout cell
// ((array * arrayRows + row) * arrayCols + col) mod cells, read k is readout row k mod reads,
// and the nominal (read nil) value is the mean over reads.

/// Units accepted for readouts; values are multiplied by `toMicroSiemens`.
public enum ConductanceUnit: String, Sendable, CaseIterable {
    case microSiemens = "uS"
    case milliSiemens = "mS"
    case siemens = "S"
    case nanoSiemens = "nS"

    public var toMicroSiemens: Double {
        switch self {
        case .microSiemens: return 1
        case .milliSiemens: return 1e3
        case .siemens: return 1e6
        case .nanoSiemens: return 1e-3
        }
    }

    /// Parses "uS", "µS", "us", "S", "mS", "nS".
    public static func parse(_ s: String) throws -> ConductanceUnit {
        switch s {
        case "uS", "us", "µS", "microsiemens": return .microSiemens
        case "mS", "ms", "millisiemens": return .milliSiemens
        case "S", "s", "siemens": return .siemens
        case "nS", "ns", "nanosiemens": return .nanoSiemens
        default: throw DeviceError("unknown conductance unit '\(s)' (use uS, mS, S or nS)")
        }
    }
}

/// Chip readouts served as a conductance source.
public struct MeasuredReadouts: ConductanceSource {
    /// Number of reads in the set / reset arrays.
    public let setReads: Int
    public let resetReads: Int
    /// Number of cells (second dimension of both arrays).
    public let cells: Int
    /// Array geometry used to turn (array, row, col) into a readout cell.
    public let arrayRows: Int
    public let arrayCols: Int
    /// Readouts in µS, [reads, cells] row-major.
    public let set: [Float]
    public let reset: [Float]
    /// Per-cell mean over reads, µS.
    public let setNominal: [Double]
    public let resetNominal: [Double]

    /// `set`/`reset` are [reads, cells] row-major with the given shapes; values are multiplied
    /// by `unit.toMicroSiemens`. `source` names the data in errors (e.g. the file names).
    public init(set: [Float], setShape: [Int], reset: [Float], resetShape: [Int], arrayRows: Int, arrayCols: Int,
                unit: ConductanceUnit = .microSiemens, source: (set: String, reset: String) = ("set", "reset")) throws {
        func check(_ a: [Float], _ shape: [Int], _ name: String) throws -> (reads: Int, cells: Int) {
            guard shape.count == 2 else {
                throw DeviceError("\(name): readouts must have shape [reads, cells], got \(shape.count)-D shape \(shape)")
            }
            guard shape[0] >= 1, shape[1] >= 1 else { throw DeviceError("\(name): readouts need >= 1 read and >= 1 cell, got shape \(shape)") }
            let (n, o) = shape[0].multipliedReportingOverflow(by: shape[1])
            guard !o, n == a.count else { throw DeviceError("\(name): shape \(shape) does not match \(a.count) values") }
            for (i, v) in a.enumerated() where !v.isFinite {
                throw DeviceError("\(name): value at read \(i / shape[1]), cell \(i % shape[1]) is not finite (\(v))")
            }
            return (shape[0], shape[1])
        }
        let s = try check(set, setShape, source.set)
        let r = try check(reset, resetShape, source.reset)
        guard s.cells == r.cells else {
            throw DeviceError("\(source.set) has \(s.cells) cells but \(source.reset) has \(r.cells): set and reset must describe the same cells")
        }
        guard arrayRows >= 1, arrayCols >= 1, !arrayRows.multipliedReportingOverflow(by: arrayCols).overflow else {
            throw DeviceError("readouts: bad array geometry \(arrayRows)x\(arrayCols)")
        }
        let scale = unit.toMicroSiemens
        func scaled(_ a: [Float], _ name: String) throws -> [Float] {
            if scale == 1 { return a }
            let out = a.map { Float(Double($0) * scale) }
            if let i = out.firstIndex(where: { !$0.isFinite }) {
                throw DeviceError("\(name): value \(a[i]) at index \(i) overflows after conversion to µS")
            }
            return out
        }
        self.set = try scaled(set, source.set)
        self.reset = try scaled(reset, source.reset)
        setReads = s.reads; resetReads = r.reads; cells = s.cells
        self.arrayRows = arrayRows; self.arrayCols = arrayCols
        setNominal = Self.means(self.set, reads: s.reads, cells: s.cells)
        resetNominal = Self.means(self.reset, reads: r.reads, cells: r.cells)
    }

    static func means(_ a: [Float], reads: Int, cells: Int) -> [Double] {
        var m = [Double](repeating: 0, count: cells)
        for k in 0..<reads {
            let base = k * cells
            for c in 0..<cells { m[c] += Double(a[base + c]) }
        }
        let inv = 1.0 / Double(reads)
        for c in 0..<cells { m[c] *= inv }
        return m
    }

    /// Readout cell of (array, row, col): ((array * arrayRows + row) * arrayCols + col) mod cells.
    @inlinable
    public func cellIndex(array: Int, row: Int, col: Int) -> Int {
        let lin = (array &* arrayRows &+ row) &* arrayCols &+ col
        let m = lin % cells
        return m < 0 ? m + cells : m
    }

    @inlinable
    public func conductance(array: Int, row: Int, col: Int, state: CellState, read: Int?) -> Double {
        let c = cellIndex(array: array, row: row, col: col)
        switch (state, read) {
        case (.formed, nil): return setNominal[c]
        case (.reset, nil): return resetNominal[c]
        case (.formed, let k?):
            let kk = ((k % setReads) + setReads) % setReads
            return Double(set[kk * cells + c])
        case (.reset, let k?):
            let kk = ((k % resetReads) + resetReads) % resetReads
            return Double(reset[kk * cells + c])
        }
    }
}

// MARK: - Summary statistics

/// Mean and standard deviation (population) of a sample.
public struct Moments: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var std: Double

    public init(count: Int, mean: Double, std: Double) { self.count = count; self.mean = mean; self.std = std }

    /// Two-pass moments of the values.
    public init<S: Sequence>(_ values: S) where S.Element == Double {
        var n = 0, s = 0.0
        for v in values { n += 1; s += v }
        let m = n > 0 ? s / Double(n) : 0
        var q = 0.0
        for v in values { q += (v - m) * (v - m) }
        count = n; mean = m; std = n > 0 ? (q / Double(n)).squareRoot() : 0
    }
}

/// Statistics of a sampled statistical device (what `edgecli device sample` prints).
public struct SampleStatistics: Codable, Sendable, Equatable {
    public var cells: Int
    public var formedFraction: Double
    public var expectedFormedFraction: Double
    /// Nominal formed-state conductance of formed cells, µS.
    public var formed: Moments
    /// Nominal reset-state conductance of formed cells, µS.
    public var reset: Moments
    /// Nominal conductance of cells that did not form, µS.
    public var pristine: Moments
    /// Std of (read - nominal) over formed cells in the formed state, µS (nil without reads).
    public var formedReadNoise: Double?
    /// The same expected from the profile: sqrt(rel^2 E[G^2] + abs^2) with the sample's E[G^2].
    public var expectedFormedReadNoise: Double?

    /// Statistics of arrays 0..<arrays of `device`, with `reads` noisy reads (0 = none).
    public init(device: StatisticalDevice, arrays: Int, reads: Int, threads: Int = 1) {
        var fo: [Double] = [], re: [Double] = [], pr: [Double] = []
        var noiseSq = 0.0, noiseN = 0, g2 = 0.0
        let rows = device.rows, cols = device.cols
        for a in 0..<arrays {
            let mask = device.formedMask(array: a, threads: threads)
            let f = device.sampleArray(array: a, state: .formed, read: nil, threads: threads)
            let r = device.sampleArray(array: a, state: .reset, read: nil, threads: threads)
            for i in 0..<(rows * cols) {
                if mask[i] { fo.append(f[i]); re.append(r[i]); g2 += f[i] * f[i] } else { pr.append(f[i]) }
            }
            for k in 0..<max(0, reads) {
                let rk = device.sampleArray(array: a, state: .formed, read: k, threads: threads)
                for i in 0..<(rows * cols) where mask[i] {
                    let d = rk[i] - f[i]
                    noiseSq += d * d; noiseN += 1
                }
            }
        }
        cells = arrays * rows * cols
        formedFraction = cells > 0 ? Double(fo.count) / Double(cells) : 0
        expectedFormedFraction = device.profile.forming.expectedFormedFraction
        formed = Moments(fo); reset = Moments(re); pristine = Moments(pr)
        if noiseN > 0 {
            formedReadNoise = (noiseSq / Double(noiseN)).squareRoot()
            let n = device.profile.readNoise
            let eg2 = fo.isEmpty ? 0 : g2 / Double(fo.count)
            expectedFormedReadNoise = (n.relative * n.relative * eg2 + n.absoluteMicroSiemens * n.absoluteMicroSiemens).squareRoot()
        }
    }
}
