// The hysteresis figures: a run with hysteresis against the same run without.

/// Flips and accuracy of a finished run with hysteresis against its twin without (the same
/// configuration apart from the hysteresis options; `edgecli prune --compare-hysteresis DIR`).
public struct HysteresisComparison: Equatable, Sendable {
    /// Total flips (programming operations) and last-epoch test accuracy of each run.
    public var flipsWith: Int, flipsWithout: Int
    public var accuracyWith: Double, accuracyWithout: Double

    /// 1 - flipsWith / flipsWithout (0.68 = 68 % fewer programming operations).
    public var fewerFlips: Double { flipsWithout > 0 ? 1 - Double(flipsWith) / Double(flipsWithout) : 0 }
    /// Accuracy cost of hysteresis in percentage points (negative: hysteresis was better).
    public var costPoints: Double { 100 * (accuracyWithout - accuracyWith) }

    /// The two runs in either order (the one without hysteresis is the baseline). Both must have
    /// finished all their epochs and differ only in the hysteresis options.
    public init(_ a: RunMeta, _ b: RunMeta) throws {
        try Self.checkTwins(a.config, b.config)
        let (w, wo) = a.config.hysteresis ? (a, b) : (b, a)
        let lastWith = try Self.finalRecord(w), lastWithout = try Self.finalRecord(wo)
        flipsWith = lastWith.flipsTotal; flipsWithout = lastWithout.flipsTotal
        accuracyWith = lastWith.testAccuracy; accuracyWithout = lastWithout.testAccuracy
    }

    /// The last epoch record of a run that has finished all its epochs (throws otherwise).
    public static func finalRecord(_ m: RunMeta) throws -> EpochRecord {
        guard m.epochsDone == m.epochsPlanned, let last = m.history.last, last.epoch == m.epochsDone else {
            throw TrainingError("hysteresis comparison: a run has finished \(m.epochsDone) of its \(m.epochsPlanned) epochs")
        }
        return last
    }

    /// Throws unless exactly one configuration uses hysteresis and the two are equal apart from
    /// the hysteresis options (flag, exempt layers, reference, limits and their schedule).
    public static func checkTwins(_ a: TrainConfig, _ b: TrainConfig) throws {
        guard a.hysteresis != b.hysteresis else {
            throw TrainingError("hysteresis comparison: both runs \(a.hysteresis ? "use" : "lack") hysteresis; one must be run with --no-hysteresis")
        }
        func withoutHysteresisOptions(_ c: TrainConfig) -> TrainConfig {
            var c = c
            c.hysteresis = true; c.hysteresisExempt = nil; c.hysteresisReference = .lastFlip
            c.limitStart = 0; c.limitEnd = 0; c.limitSteps = 1; c.limitSchedule = nil
            return c
        }
        guard withoutHysteresisOptions(a) == withoutHysteresisOptions(b) else {
            throw TrainingError("hysteresis comparison: the runs differ in more than the hysteresis options (task, mode, seed, epochs, learning rate, ... must be equal)")
        }
    }
}
