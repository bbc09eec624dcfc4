// The statistical device model: every cell's conductance is a pure function of
// (seed, kind, array, read, index = row * cols + col), drawn with CounterRandom, so a cell's
// value does not depend on the order in which cells are visited or on the thread count.
// Equations: docs/DEVICE.md.
import Dispatch
import Foundation
import Randomness

/// The programmed state of a cell: formed (low-resistance, the weight kept) or reset
/// (off state, the weight pruned).
public enum CellState: UInt8, Sendable, Codable, CaseIterable {
    case formed = 0
    case reset = 1
}

/// Anything that gives a cell's conductance: the statistical model or measured chip readouts.
public protocol ConductanceSource: Sendable {
    /// Conductance in µS of cell (array, row, col) in `state`; `read` nil = nominal noise-free
    /// value, `read` k = the k-th noisy read (k >= 0).
    func conductance(array: Int, row: Int, col: Int, state: CellState, read: Int?) -> Double
}

/// Stream tags of the statistical model (one per kind of draw).
public enum DeviceStream {
    public static let breakdown: UInt64 = 0xB4EA_4D01
    public static let stuck: UInt64 = 0x57C4_0002
    public static let formed: UInt64 = 0xF0E3_0003
    public static let reset: UInt64 = 0x4E5E_0004
    public static let pristine: UInt64 = 0x9415_0005
    public static let drift: UInt64 = 0xD41F_0006
    public static let read: UInt64 = 0x4EAD_0007
}

/// Distribution parameters ready for sampling: lognormal = exp(a + b z), normal = a + b z,
/// both clamped below at `minimum`.
@usableFromInline
struct DrawParams: Sendable {
    @usableFromInline let isLog: Bool
    @usableFromInline let a: Double
    @usableFromInline let b: Double
    @usableFromInline let minimum: Double

    init(_ d: ConductanceDistribution) {
        isLog = d.shape == .lognormal
        if isLog {
            let lp = d.logParameters
            a = lp.mu; b = lp.sigma
        } else {
            a = d.meanMicroSiemens; b = d.stdMicroSiemens
        }
        minimum = d.minimumMicroSiemens
    }

    @inlinable @inline(__always)
    func value(_ z: Double) -> Double {
        let v = isLog ? exp(a + b * z) : a + b * z
        return v < minimum ? minimum : v
    }
}

@usableFromInline
struct ModelParams: Sendable {
    @usableFromInline let cols: Int
    @usableFromInline let vForm: Double
    @usableFromInline let bdMean: Double
    @usableFromInline let bdStd: Double
    @usableFromInline let formed: DrawParams
    @usableFromInline let reset: DrawParams
    @usableFromInline let pristine: DrawParams
    @usableFromInline let noiseRel: Double
    @usableFromInline let noiseAbs: Double
    @usableFromInline let hasDrift: Bool
    @usableFromInline let nuMean: Double
    @usableFromInline let nuStd: Double
    @usableFromInline let logTimeRatio: Double
    @usableFromInline let stuckOn: Double
    @usableFromInline let stuckOff: Double
}

/// The statistical model of a target profile with one seed.
public struct StatisticalDevice: ConductanceSource {
    public let profile: TargetProfile
    public let seed: UInt64
    /// Read time after programming in seconds (drift); nil without a drift model.
    public let timeSeconds: Double?
    @usableFromInline let p: ModelParams

    /// The profile must be valid (`profile.validate()`); `timeSeconds` overrides the profile's
    /// drift read time (ignored without a drift model).
    public init(profile: TargetProfile, seed: UInt64, timeSeconds: Double? = nil) {
        self.profile = profile
        self.seed = seed
        let d = profile.drift
        let t = d.map { timeSeconds ?? $0.readTimeSeconds }
        self.timeSeconds = t
        var logRatio = 0.0
        if let d, let t, t > 0, d.t0Seconds > 0 { logRatio = log(t / d.t0Seconds) }
        p = ModelParams(
            cols: profile.arrayCols,
            vForm: profile.forming.formingVoltage, bdMean: profile.forming.breakdownMeanVolts,
            bdStd: profile.forming.breakdownStdVolts,
            formed: DrawParams(profile.formed), reset: DrawParams(profile.reset), pristine: DrawParams(profile.pristine),
            noiseRel: profile.readNoise.relative, noiseAbs: profile.readNoise.absoluteMicroSiemens,
            hasDrift: d != nil, nuMean: d?.nuMean ?? 0, nuStd: d?.nuStd ?? 0, logTimeRatio: logRatio,
            stuckOn: profile.stuckFaults?.stuckOnFraction ?? 0, stuckOff: profile.stuckFaults?.stuckOffFraction ?? 0)
    }

    /// Validates the profile (and the read time) first: a typed error instead of NaN values.
    public init(validating profile: TargetProfile, seed: UInt64, timeSeconds: Double? = nil) throws {
        try profile.validate()
        if let t = timeSeconds {
            guard let d = profile.drift else {
                throw DeviceError("profile '\(profile.name)': a read time needs a drift model")
            }
            guard t.isFinite, t >= d.t0Seconds else {
                throw DeviceError("profile '\(profile.name)': read time must be a finite number >= t0 (\(d.t0Seconds) s), got \(t)")
            }
        }
        self.init(profile: profile, seed: seed, timeSeconds: timeSeconds)
    }

    public var rows: Int { profile.arrayRows }
    public var cols: Int { profile.arrayCols }

    @inlinable @inline(__always)
    func index(_ row: Int, _ col: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: row) &* UInt64(truncatingIfNeeded: p.cols) &+ UInt64(truncatingIfNeeded: col)
    }

    @inlinable @inline(__always)
    func normal(_ tag: UInt64, _ array: Int, _ b: UInt64, _ c: UInt64, _ idx: UInt64, lane: UInt64 = 0) -> Double {
        CounterRandom.normal(seed: seed, stream: CounterRandom.stream(tag, UInt64(truncatingIfNeeded: array), b, c),
                             index: idx, lane: lane)
    }

    /// Did cell (array, row, col) form? (breakdown voltage below the forming voltage)
    @inlinable
    public func isFormed(array: Int, row: Int, col: Int) -> Bool {
        let vbd = p.bdMean + p.bdStd * normal(DeviceStream.breakdown, array, 0, 0, index(row, col))
        return vbd < p.vForm
    }

    /// Stuck state of a formed cell: 0 none, 1 stuck on, 2 stuck off.
    @inlinable
    public func stuckKind(array: Int, row: Int, col: Int) -> Int {
        if p.stuckOn == 0 && p.stuckOff == 0 { return 0 }
        let u = CounterRandom.uniform(seed: seed, stream: CounterRandom.stream(DeviceStream.stuck, UInt64(truncatingIfNeeded: array)),
                                      index: index(row, col))
        if u < p.stuckOn { return 1 }
        if u < p.stuckOn + p.stuckOff { return 2 }
        return 0
    }

    @inlinable
    public func conductance(array: Int, row: Int, col: Int, state: CellState, read: Int?) -> Double {
        let idx = index(row, col)
        var g: Double
        if !isFormed(array: array, row: row, col: col) {
            // A cell that never formed stays pristine whatever is programmed.
            g = p.pristine.value(normal(DeviceStream.pristine, array, 0, 0, idx))
        } else {
            let stuck = stuckKind(array: array, row: row, col: col)
            let useFormed = state == .formed ? stuck != 2 : stuck == 1
            g = useFormed ? p.formed.value(normal(DeviceStream.formed, array, 0, 0, idx))
                          : p.reset.value(normal(DeviceStream.reset, array, 0, 0, idx))
        }
        if p.hasDrift {
            var nu = p.nuMean + p.nuStd * normal(DeviceStream.drift, array, UInt64(state.rawValue), 0, idx)
            if nu < 0 { nu = 0 }
            g *= exp(-nu * p.logTimeRatio)
        }
        guard let k = read else { return g }
        let s = CounterRandom.stream(DeviceStream.read, UInt64(truncatingIfNeeded: array), UInt64(state.rawValue),
                                     UInt64(truncatingIfNeeded: k))
        let z1 = CounterRandom.normal(seed: seed, stream: s, index: idx, lane: 0)
        let z2 = CounterRandom.normal(seed: seed, stream: s, index: idx, lane: 1)
        let r = g * (1 + p.noiseRel * z1) + p.noiseAbs * z2
        return r < 0 ? 0 : r
    }

    /// The formed mask of one array (row-major).
    public func formedMask(array: Int, threads: Int = 1) -> [Bool] {
        var m = [Bool](repeating: false, count: rows * cols)
        let c = cols
        m.withUnsafeMutableBufferPointer { buf in
            let out = SendableBuffer(buf)
            parallelRows(rows, threads: threads) { r in
                for col in 0..<c { out[r * c + col] = isFormed(array: array, row: r, col: col) }
            }
        }
        return m
    }

    /// All conductances of one array (row-major, index row * cols + col), in µS.
    public func sampleArray(array: Int, state: CellState, read: Int?, threads: Int = 1) -> [Double] {
        fillArray(source: self, array: array, rows: rows, cols: cols, state: state, read: read, threads: threads)
    }
}

/// A mutable buffer shared by worker threads that write disjoint indices.
@usableFromInline
struct SendableBuffer<T>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<T>
    @usableFromInline let count: Int
    @usableFromInline init(_ b: UnsafeMutableBufferPointer<T>) { base = b.baseAddress!; count = b.count }
    @inlinable subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}

/// Runs `body(row)` for rows 0..<rows on `threads` workers (contiguous row blocks). The result
/// of a body that writes only its own row is the same whatever the thread count.
@inlinable
public func parallelRows(_ rows: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
    let t = max(1, min(threads, rows))
    if t == 1 {
        for r in 0..<rows { body(r) }
        return
    }
    DispatchQueue.concurrentPerform(iterations: t) { w in
        let lo = rows * w / t, hi = rows * (w + 1) / t
        for r in lo..<hi { body(r) }
    }
}

/// Fills a rows x cols array (row-major) from any conductance source, on `threads` workers.
@inlinable
public func fillArray(source: some ConductanceSource, array: Int, rows: Int, cols: Int, state: CellState,
                      read: Int?, threads: Int = 1) -> [Double] {
    let (n, o) = rows.multipliedReportingOverflow(by: cols)
    guard !o, n > 0, rows > 0 else { return [] }
    var out = [Double](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { buf in
        let b = SendableBuffer(buf)
        parallelRows(rows, threads: threads) { r in
            for c in 0..<cols { b[r * cols + c] = source.conductance(array: array, row: r, col: c, state: state, read: read) }
        }
    }
    return out
}
