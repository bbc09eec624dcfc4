// A mutation fuzzer for byte-level decoders (the model reader, IDX, NPY). Each iteration is a
// pure function of (seed, iteration), so any finding replays with `--start N --iterations 1`.
import DataIO
import FixedPoint
import Kernels

public struct FuzzMutator: Sendable {
    public static let interesting: [UInt64] = [0, 1, 0xFFFF_FFFF_FFFF_FFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 63,
                                               0x8000_0000, 0xFFFF, 0x7F, 0x80, 0xFF, 64, 63, 65, 0x7FFF_FFFF_FFFF_FFFF]
    /// Offsets where structure lives (header and table fields); mutations aim there half the time.
    public var hotOffsets: [Int]

    public init(hotOffsets: [Int]) { self.hotOffsets = hotOffsets }

    /// Hot offsets of a model file: every header field and every section-table field.
    public static func modelHotOffsets(_ b: [UInt8]) -> [Int] {
        var o = [8, 10, 12, 16, 24, 32, 36, 40, 56, 60]
        if b.count >= 64 {
            let n = min(Int(loadU32(b, 32)), max(0, (b.count - 64) / 32))
            for i in 0..<n { o += [0, 4, 8, 16, 24].map { 64 + 32 * i + $0 }
                // and the first bytes of each section (counts live there)
                let off = loadU64(b, 64 + 32 * i + 8)
                if off < UInt64(b.count) { o += [0, 4, 8, 12, 16, 20].map { Int(off) + $0 } }
            }
        }
        return o
    }

    /// Applies 1...4 random mutations.
    public func mutate(_ input: [UInt8], _ rng: inout SampleRNG) -> [UInt8] {
        var b = input
        for _ in 0..<rng.int(1...4) {
            let offset: Int = {
                if !hotOffsets.isEmpty, rng.bool() { return hotOffsets[rng.int(0...hotOffsets.count - 1)] + rng.int(0...3) }
                return b.isEmpty ? 0 : rng.int(0...b.count - 1)
            }()
            switch rng.int(0...9) {
            case 0, 1:  // bit flip
                if offset < b.count { b[offset] ^= 1 << UInt8(rng.int(0...7)) }
            case 2:     // byte set 0 / 0xFF / random
                if offset < b.count { b[offset] = [0, 0xFF, UInt8(truncatingIfNeeded: rng.next())][rng.int(0...2)] }
            case 3:     // truncation
                if !b.isEmpty { b.removeLast(rng.int(1...b.count)) }
            case 4:     // extension
                b += (0..<rng.int(1...128)).map { _ in rng.bool() ? 0 : UInt8(truncatingIfNeeded: rng.next()) }
            case 5:     // chunk duplication
                if b.count > 1 {
                    let s = rng.int(0...b.count - 1), n = rng.int(1...min(256, b.count - s))
                    let chunk = Array(b[s..<(s + n)])
                    b.insert(contentsOf: chunk, at: rng.int(0...b.count))
                }
            case 6:     // chunk deletion
                if b.count > 1 {
                    let s = rng.int(0...b.count - 1), n = rng.int(1...min(256, b.count - s))
                    b.removeSubrange(s..<(s + n))
                }
            default:    // interesting integer, 1/2/4/8 bytes LE
                let v = FuzzMutator.interesting[rng.int(0...FuzzMutator.interesting.count - 1)]
                let width = [1, 2, 4, 8][rng.int(0...3)]
                for k in 0..<width where offset + k < b.count { b[offset + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            }
        }
        return b
    }
}

/// Statistics of a campaign.
public struct FuzzReport: Sendable {
    public var iterations = 0
    public var successes = 0
    public var errorsByKind: [String: Int] = [:]
    public var slowestNanoseconds: Int64 = 0
    public var slowestIteration = -1
    public var overBudget = 0
    public init() {}
}

public enum Fuzzer {
    /// One iteration's input: a mutation of a corpus file, with CRCs recomputed half the time
    /// (model target) so the checks behind the checksums are reached.
    public static func input(corpus: [[UInt8]], seed: UInt64, iteration: Int, recomputeCRC: Bool) -> [UInt8] {
        var rng = SampleRNG(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(iteration))
        _ = rng.next()
        let base = corpus[rng.int(0...corpus.count - 1)]
        // Section-aware mode: mutate one section's payload (any mutation, length changes included)
        // and reassemble a well-formed container around it, so deep checks see every mutation kind.
        if recomputeCRC, rng.int(0...2) == 0, let c = try? Container.parse(base), !c.sections.isEmpty {
            var secs = c.sections.map { (kind: $0.kind, flags: $0.flags, bytes: Array(base[$0.offset..<($0.offset + $0.length)])) }
            let i = rng.int(0...secs.count - 1)
            let p = secs[i].bytes
            let hot = Array(0..<min(p.count, 32)) + [max(0, p.count - 8)]
            secs[i].bytes = FuzzMutator(hotOffsets: hot).mutate(p, &rng)
            return Container.assembleRaw(secs, major: c.major, minor: c.minor)
        }
        var b = FuzzMutator(hotOffsets: recomputeCRC ? FuzzMutator.modelHotOffsets(base) : []).mutate(base, &rng)
        if recomputeCRC, rng.int(0...3) != 0 {
            // Repair the file length too (most of the time) so length-changing mutations get past the header.
            if b.count >= 64, rng.int(0...3) != 0 { ByteWriter.patchU64(&b, at: 16, UInt64(b.count)) }
            Container.recomputeChecksums(&b)
        }
        return b
    }

    /// Runs `iterations` decodes starting at `start`; `decode` throws on rejection, returns on success.
    /// `classify` names an error's kind. `onIteration` is called before each decode (watchdogs).
    public static func run(corpus: [[UInt8]], seed: UInt64, start: Int = 0, iterations: Int, recomputeCRC: Bool,
                           budgetNanoseconds: Int64 = 1_000_000_000,
                           onIteration: (Int) -> Void = { _ in },
                           decode: ([UInt8]) throws -> Void, classify: (Error) -> String) -> FuzzReport {
        var report = FuzzReport()
        let clock = ContinuousClock()
        for it in start..<(start + iterations) {
            let b = input(corpus: corpus, seed: seed, iteration: it, recomputeCRC: recomputeCRC)
            onIteration(it)
            let t0 = clock.now
            do { try decode(b); report.successes += 1 } catch { report.errorsByKind[classify(error), default: 0] += 1 }
            let d = clock.now - t0
            let ns = d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
            if ns > report.slowestNanoseconds { report.slowestNanoseconds = ns; report.slowestIteration = it }
            if ns > budgetNanoseconds { report.overBudget += 1 }
            report.iterations += 1
        }
        return report
    }

    /// The model reader's seed corpus: `count` random valid files.
    public static func modelCorpus(count: Int, seed: UInt64) throws -> [[UInt8]] {
        // of every four files: a random CNN-like program, one with 1.1 weight generators (the kinds
        // in turn: signs from a seed, sign bits, statistical device), a small CRNN (the rnn record,
        // op 9, with conductances in every other one), a 1.2 layer graph (a small U-Net or residual
        // net in turn: ops 6, 7, 8, 10)
        try (0..<count).map { i in
            let s = seed &+ UInt64(i)
            switch i % 4 {
            case 1: return try ModelSamples.randomGenerated(seed: s, kind: SampleGenerator.allCases[(i / 4) % 3]).encode()
            case 2: return try ModelSamples.crnn(seed: s, conductance: (i / 4) % 2 == 1).encode()
            case 3: return try ModelSamples.graph(seed: s, unet: (i / 4) % 2 == 0).encode()
            default: return try ModelSamples.random(seed: s).encode()
            }
        }
    }
}
