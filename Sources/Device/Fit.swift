// Fitting a profile's statistical parameters to measured readouts (docs/DEVICE.md, "Fit").
import Foundation

/// What the fit found besides the profile.
public struct FitReport: Codable, Sendable, Equatable {
    public var profile: TargetProfile
    public var cells: Int
    public var setReads: Int
    public var resetReads: Int
    /// Cells whose nominal set conductance is above this are classified formed, µS.
    public var formedThresholdMicroSiemens: Double
    public var formedCells: Int
    public var formedFraction: Double
    /// Formed cells whose nominal reset conductance stays near the formed level (stuck on).
    public var stuckOnCells: Int
    /// True when the read noise was estimated (>= 2 reads); otherwise the base profile's is kept.
    public var readNoiseEstimated: Bool
    /// Notes on what was kept from the base profile.
    public var notes: [String]
}

public enum ProfileFitter {
    /// Fits forming (formed fraction), formed / reset / pristine distributions (shape by maximum
    /// likelihood, mean and std corrected for read noise) and read noise to `readouts`.
    /// Geometry, converters, activation bits, forming voltage and breakdown std come from `base`.
    public static func fit(_ readouts: MeasuredReadouts, base: TargetProfile, name: String? = nil,
                           formedThreshold: Double? = nil, sourceNote: String = "readouts") throws -> FitReport {
        let n = readouts.cells
        var notes: [String] = []
        // 1. Classify formed cells by their nominal set conductance.
        let threshold: Double
        if let t = formedThreshold {
            guard t.isFinite, t > 0 else { throw DeviceError("fit: formed threshold must be a finite number > 0 µS, got \(t)") }
            threshold = t
        } else {
            threshold = otsuThreshold(readouts.setNominal)
        }
        var formedIdx: [Int] = [], pristineIdx: [Int] = []
        for c in 0..<n { if readouts.setNominal[c] > threshold { formedIdx.append(c) } else { pristineIdx.append(c) } }
        guard !formedIdx.isEmpty else {
            throw DeviceError("fit: no cell is above the formed threshold \(threshold) µS; give --formed-threshold")
        }
        // Stuck-on cells: formed cells whose reset value sits in a separate high cluster.
        var stuckOn: [Int] = [], normalFormed: [Int] = []
        // A formed cell is stuck on when its reset value is above the geometric midpoint of the
        // median formed-state and median reset-state values (used only when those are >= 10x apart).
        let medSet = median(formedIdx.map { readouts.setNominal[$0] })
        let medReset = median(formedIdx.map { readouts.resetNominal[$0] })
        let stuckCut = medSet >= 10 * medReset && medReset > 0 ? (medSet * medReset).squareRoot() : Double.infinity
        for c in formedIdx {
            if readouts.resetNominal[c] > stuckCut { stuckOn.append(c) } else { normalFormed.append(c) }
        }
        guard !normalFormed.isEmpty else { throw DeviceError("fit: no formed cell resets") }

        // 2. Read noise: variance of reads around the cell mean = rel^2 G^2 + abs^2 (IRLS).
        var noise = base.readNoise
        var noiseEstimated = false
        var setVar: [Double] = [], resetVar: [Double] = []
        if readouts.setReads >= 2 || readouts.resetReads >= 2 {
            var xs: [Double] = [], vs: [Double] = []
            if readouts.setReads >= 2 {
                setVar = cellVariances(readouts.set, means: readouts.setNominal, reads: readouts.setReads, cells: n)
                xs += readouts.setNominal; vs += setVar
            }
            if readouts.resetReads >= 2 {
                resetVar = cellVariances(readouts.reset, means: readouts.resetNominal, reads: readouts.resetReads, cells: n)
                xs += readouts.resetNominal; vs += resetVar
            }
            noise = fitNoise(means: xs, variances: vs, initial: base.readNoise)
            noiseEstimated = true
        } else {
            notes.append("read noise kept from the base profile (fewer than 2 reads)")
        }
        func noiseVarOfMean(_ c: Int, _ vars: [Double], _ reads: Int, _ g: Double) -> Double {
            // Variance of a K-read mean: the cell's sample variance / K (model value if K < 2).
            if !vars.isEmpty { return vars[c] / Double(reads) }
            return noise.std(at: g) * noise.std(at: g) / Double(reads)
        }

        // 3. Distributions of the nominal values.
        func fitDist(_ idx: [Int], _ nominal: [Double], _ vars: [Double], _ reads: Int, _ what: String,
                     _ fallback: ConductanceDistribution) throws -> ConductanceDistribution {
            if idx.count < 2 {
                notes.append("\(what) distribution kept from the base profile (\(idx.count) cells)")
                return fallback
            }
            let xs = idx.map { nominal[$0] }
            let m = Moments(xs)
            var nv = 0.0
            for c in idx { nv += noiseVarOfMean(c, vars, reads, nominal[c]) }
            nv /= Double(idx.count)
            let v = max(0, m.std * m.std - nv)
            guard m.mean > 0 else { throw DeviceError("fit: mean \(what) conductance is \(m.mean) µS (must be > 0)") }
            return ConductanceDistribution(shape: bestShape(xs, mean: m.mean, std: m.std), meanMicroSiemens: m.mean,
                                           stdMicroSiemens: v.squareRoot(), minimumMicroSiemens: 0)
        }
        let formed = try fitDist(normalFormed, readouts.setNominal, setVar, readouts.setReads, "formed", base.formed)
        let reset = try fitDist(normalFormed, readouts.resetNominal, resetVar, readouts.resetReads, "reset", base.reset)
        let pristine = try fitDist(pristineIdx, readouts.setNominal, setVar, readouts.setReads, "pristine", base.pristine)

        // 4. Forming: only the fraction is identifiable; keep V_form and sigma, solve for mu.
        let fraction = Double(formedIdx.count) / Double(n)
        var forming = base.forming
        let sigma = forming.breakdownStdVolts > 0 ? forming.breakdownStdVolts : 0.1 * forming.formingVoltage
        if fraction >= 1 && forming.breakdownStdVolts == 0 && forming.breakdownMeanVolts < forming.formingVoltage {
            notes.append("every cell formed: forming model kept from the base profile")
        } else {
            let half = 0.5 / Double(n)
            let f = min(max(fraction, half), 1 - half)
            forming.breakdownStdVolts = sigma
            forming.breakdownMeanVolts = forming.formingVoltage - sigma * normalQuantile(f)
            if !(forming.breakdownMeanVolts > 0) {
                // A fraction so high that mu would be <= 0 V: shrink sigma to keep mu positive.
                forming.breakdownStdVolts = forming.formingVoltage / (2 * max(1, normalQuantile(f)))
                forming.breakdownMeanVolts = forming.formingVoltage - forming.breakdownStdVolts * normalQuantile(f)
            }
            notes.append("forming voltage and breakdown std kept from the base profile; breakdown mean solved from the formed fraction")
        }
        var stuck: StuckFaults? = nil
        if !stuckOn.isEmpty {
            stuck = StuckFaults(stuckOnFraction: Double(stuckOn.count) / Double(formedIdx.count), stuckOffFraction: 0)
            notes.append("stuck-off cells are not separable from unformed cells; stuckOffFraction set to 0")
        }
        var p = base
        p.name = name ?? base.name + "-fit"
        p.description = "Fitted to \(sourceNote) (\(n) cells, \(readouts.setReads) set reads, \(readouts.resetReads) reset reads); base profile \(base.name)"
        p.forming = forming
        p.formed = formed; p.reset = reset; p.pristine = pristine
        p.readNoise = noise
        if base.drift != nil { notes.append("drift removed: the fitted distributions already describe the chip at read time") }
        p.drift = nil
        p.stuckFaults = stuck
        p.sources = ["fitted by edgecli device fit from \(sourceNote)"] + base.sources.map { "base (\(base.name)): " + $0 }
        try p.validate()
        return FitReport(profile: p, cells: n, setReads: readouts.setReads, resetReads: readouts.resetReads,
                         formedThresholdMicroSiemens: threshold, formedCells: formedIdx.count, formedFraction: fraction,
                         stuckOnCells: stuckOn.count, readNoiseEstimated: noiseEstimated, notes: notes)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Per-cell unbiased variance across reads.
    static func cellVariances(_ a: [Float], means: [Double], reads: Int, cells: Int) -> [Double] {
        var v = [Double](repeating: 0, count: cells)
        for k in 0..<reads {
            let b = k * cells
            for c in 0..<cells { let d = Double(a[b + c]) - means[c]; v[c] += d * d }
        }
        let inv = 1.0 / Double(reads - 1)
        for c in 0..<cells { v[c] *= inv }
        return v
    }

    /// Weighted least squares of v = a x^2 + b with weights 1 / (a x^2 + b)^2 (iterated), so
    /// the small-conductance cells determine the absolute term and the large ones the relative.
    static func fitNoise(means: [Double], variances: [Double], initial: ReadNoise) -> ReadNoise {
        var a = max(initial.relative * initial.relative, 1e-8)
        var b = max(initial.absoluteMicroSiemens * initial.absoluteMicroSiemens, 1e-10)
        for _ in 0..<8 {
            var s00 = 0.0, s01 = 0.0, s11 = 0.0, t0 = 0.0, t1 = 0.0
            for i in means.indices {
                let x = means[i] * means[i], v = variances[i]
                let pred = a * x + b
                let w = 1 / (pred * pred)
                s00 += w * x * x; s01 += w * x; s11 += w; t0 += w * x * v; t1 += w * v
            }
            let det = s00 * s11 - s01 * s01
            guard det > 0, det.isFinite else { break }
            let na = (t0 * s11 - t1 * s01) / det, nb = (s00 * t1 - s01 * t0) / det
            a = max(na, 1e-12); b = max(nb, 1e-14)
        }
        return ReadNoise(relative: min(a.squareRoot(), 0.99), absoluteMicroSiemens: b.squareRoot())
    }

    /// Normal or lognormal, whichever has the higher maximum likelihood.
    static func bestShape(_ xs: [Double], mean: Double, std: Double) -> DistributionShape {
        guard xs.allSatisfy({ $0 > 0 }), std > 0 else { return .normal }
        let n = Double(xs.count)
        let llNormal = -n / 2 * log(2 * Double.pi * std * std) - n / 2
        let logs = Moments(xs.lazy.map { log($0) })
        guard logs.std > 0 else { return .normal }
        let sumLog = logs.mean * n
        let llLog = -sumLog - n / 2 * log(2 * Double.pi * logs.std * logs.std) - n / 2
        return llLog > llNormal ? .lognormal : .normal
    }

    /// Otsu's threshold on log conductance (1024-bin histogram), placed in the middle of the
    /// run of bins that maximise the between-class variance (the middle of the gap between two
    /// separated clusters). Values are floored at 1% of their mean first, so reads clamped at
    /// 0 (or tiny pristine values) cannot form a cluster of their own. `bimodal` is false when
    /// the two classes' geometric means differ by less than 10x; the threshold is then half
    /// the smallest value.
    public static func otsu(_ values: [Double]) -> (threshold: Double, bimodal: Bool) {
        let mean = values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
        let floor = max(1e-9, 0.01 * mean)
        let logs = values.map { log(max($0, floor)) }
        guard let lo = logs.min(), let hi = logs.max(), hi > lo else { return ((values.min() ?? 0) * 0.5, false) }
        let bins = 1024
        var hist = [Double](repeating: 0, count: bins), sums = [Double](repeating: 0, count: bins)
        let scale = Double(bins) / (hi - lo)
        for v in logs {
            let b = min(bins - 1, Int((v - lo) * scale))
            hist[b] += 1; sums[b] += v
        }
        let total = Double(logs.count), totalSum = sums.reduce(0, +)
        var between = [Double](repeating: -1, count: bins), m0s = between, m1s = between
        var w0 = 0.0, s0 = 0.0, best = -1.0
        for b in 0..<(bins - 1) {
            w0 += hist[b]; s0 += sums[b]
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = s0 / w0, m1 = (totalSum - s0) / w1
            between[b] = w0 * w1 * (m0 - m1) * (m0 - m1)
            m0s[b] = m0; m1s[b] = m1
            best = max(best, between[b])
        }
        guard best > 0, let first = between.firstIndex(where: { $0 >= best * (1 - 1e-9) }) else {
            return (exp(lo) * 0.5, false)
        }
        var last = first
        while last + 1 < bins && between[last + 1] >= best * (1 - 1e-9) { last += 1 }
        if m1s[first] - m0s[first] < log(10.0) { return (exp(lo) * 0.5, false) }
        let cut = lo + (Double(first + last) / 2 + 1) / scale
        return (exp(cut), true)
    }

    /// The formed/unformed threshold of `otsu` (half the smallest value when unimodal).
    public static func otsuThreshold(_ values: [Double]) -> Double { otsu(values).threshold }
}
