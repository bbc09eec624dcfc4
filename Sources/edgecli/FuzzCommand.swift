// `edgecli fuzz`: a mutation-fuzzing campaign against a decoder (the model reader; IDX/NPY
// once DataIO provides them). Runs in-process so that a trap kills the process visibly: a
// signal handler then prints the iteration, which replays with `--start N --iterations 1`.
// A watchdog thread reports an iteration that runs longer than --hang-seconds as a hang.
import Foundation
import Synchronization
import ModelFile
import DataIO

/// The iteration in progress and when it started (ns since the campaign's start), for the
/// crash handler and the watchdog.
let fuzzCurrentIteration = Atomic<Int>(-1)
let fuzzIterationStart = Atomic<Int64>(0)
nonisolated(unsafe) var fuzzCrashBuffer = [UInt8](repeating: 0, count: 128)

enum FuzzCommand {
    static let command = Command(
        name: "fuzz",
        summary: "mutation-fuzz a decoder (model reader, IDX, NPY); reports errors, crashes, hangs",
        usage: """
        usage: edgecli fuzz [--target model|idx|npy] [--iterations N] [--seed S] [--start K] [--corpus N]
                            [--no-crc-repair] [--budget-ms MS] [--hang-seconds S] [--json]
                            [--write-corpus DIR] [--save-input FILE] [--supervise [--chunk N]]
          Each iteration mutates one seed-corpus file (bit flips, byte sets, truncation, extension,
          chunk duplication/deletion, interesting integers at random offsets and at header/table
          fields); for the model target CRCs are recomputed on 3/4 of the inputs so deeper checks
          are reached. Iteration i is a pure function of (seed, i): replay with --start i --iterations 1
          (--save-input FILE writes that input). --write-corpus DIR writes the seed corpus and the
          Fashion-MNIST CNN sample model, then exits. --supervise runs the campaign in child
          processes of --chunk iterations; a child that dies (trap/signal) or hangs is counted as a
          crash/hang at its iteration and the campaign continues after it.
        """,
        run: { args in
            let target = try args.option("target") ?? "model"
            let iterations = try args.int("iterations", default: 10_000, range: 0...Int.max / 2)
            let seed = try args.uint64("seed", default: 1)
            let start = try args.int("start", default: 0, range: 0...Int.max / 2)
            let corpusSize = try args.int("corpus", default: 16, range: 1...1000)
            let noRepair = args.flag("no-crc-repair")
            let budgetMs = try args.int("budget-ms", default: 1000, range: 1...3_600_000)
            let hangSeconds = try args.int("hang-seconds", default: 10, range: 1...3600)
            let json = args.flag("json")
            let writeCorpus = try args.option("write-corpus")
            let saveInput = try args.option("save-input")
            // Harness self-test: trap deliberately at this iteration (shows what a crash report looks like).
            let crashAt = try args.int("crash-at", default: -1, range: -1...Int.max / 2)
            let hangAt = try args.int("hang-at", default: -1, range: -1...Int.max / 2)   // watchdog self-test
            let supervise = args.flag("supervise")
            let chunkSize = try args.int("chunk", default: 100_000, range: 1...Int.max / 2)
            try args.finish()
            if supervise {
                return try Supervisor.run(target: target, iterations: iterations, seed: seed, start: start, corpus: corpusSize,
                                          noRepair: noRepair, budgetMs: budgetMs, hangSeconds: hangSeconds, crashAt: crashAt, hangAt: hangAt,
                                          chunk: chunkSize, json: json)
            }

            let corpus: [[UInt8]]
            let decode: ([UInt8]) throws -> Void
            let classify: (Error) -> String
            let repair: Bool
            switch target {
            case "model":
                corpus = try Fuzzer.modelCorpus(count: corpusSize, seed: seed)
                decode = { b in
                    if crashAt >= 0, fuzzCurrentIteration.load(ordering: .relaxed) == crashAt { fatalError("deliberate trap (--crash-at)") }
                    if hangAt >= 0, fuzzCurrentIteration.load(ordering: .relaxed) == hangAt { Thread.sleep(forTimeInterval: Double(hangSeconds) + 5) }
                    _ = try ModelBundle.decode(b, name: "fuzz")
                }
                classify = { ($0 as? ModelFileError)?.kind.rawValue ?? "untyped:\(type(of: $0))" }
                repair = !noRepair
            default:
                guard let t = try FuzzTargets.other(target, corpusSize: corpusSize, seed: seed) else {
                    throw CLIError("fuzz: unknown --target '\(target)' (model, idx, npy)")
                }
                (corpus, decode, classify) = t
                repair = false
            }

            if let dir = writeCorpus {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for (i, b) in corpus.enumerated() { try Data(b).write(to: URL(fileURLWithPath: "\(dir)/seed-\(i).\(target)")) }
                if target == "model" {
                    try ModelSamples.fashionCNN(seed: seed).write(to: "\(dir)/fashion-cnn.rram")
                    try ModelSamples.fashionCNN(seed: seed, conductance: true).write(to: "\(dir)/fashion-cnn-conductance.rram")
                }
                printErr("fuzz: wrote \(corpus.count) seed files to \(dir)")
                return 0
            }
            if let f = saveInput {
                try Data(Fuzzer.input(corpus: corpus, seed: seed, iteration: start, recomputeCRC: repair)).write(to: URL(fileURLWithPath: f))
            }

            installCrashHandlers()
            let t0 = DispatchTime.now().uptimeNanoseconds
            startWatchdog(hangNanoseconds: Int64(hangSeconds) * 1_000_000_000, t0: t0, seed: seed, target: target)

            var total = FuzzReport()
            var done = 0
            let chunk = 10_000
            let progress = stderrIsTerminal || iterations >= 100_000
            while done < iterations {
                let n = min(chunk, iterations - done)
                let r = Fuzzer.run(corpus: corpus, seed: seed, start: start + done, iterations: n, recomputeCRC: repair,
                                   budgetNanoseconds: Int64(budgetMs) * 1_000_000,
                                   onIteration: { it in
                                       fuzzIterationStart.store(Int64(DispatchTime.now().uptimeNanoseconds - t0), ordering: .relaxed)
                                       fuzzCurrentIteration.store(it, ordering: .releasing)
                                   },
                                   decode: decode, classify: classify)
                total.iterations += r.iterations
                total.successes += r.successes
                for (k, v) in r.errorsByKind { total.errorsByKind[k, default: 0] += v }
                if r.slowestNanoseconds > total.slowestNanoseconds { total.slowestNanoseconds = r.slowestNanoseconds; total.slowestIteration = r.slowestIteration }
                total.overBudget += r.overBudget
                done += n
                if progress {
                    let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    printErr(String(format: "fuzz %@: %d/%d iterations, %d accepted, %.0f s", target, done, iterations, total.successes, secs))
                }
            }
            fuzzCurrentIteration.store(-1, ordering: .releasing)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let untyped = total.errorsByKind.filter { $0.key.hasPrefix("untyped") }.values.reduce(0, +)
            let out: [String: Any] = [
                "target": target, "seed": seed, "start": start, "iterations": total.iterations, "corpus": corpus.count,
                "crcRepair": repair, "accepted": total.successes, "rejected": total.iterations - total.successes,
                "errorsByKind": total.errorsByKind, "crashes": 0, "hangs": total.overBudget, "untypedErrors": untyped,
                "slowestIterationMs": Double(total.slowestNanoseconds) / 1e6, "slowestIteration": total.slowestIteration,
                "budgetMs": budgetMs, "seconds": seconds,
            ]
            if json { try printJSON(out) } else {
                print("fuzz \(target): \(total.iterations) iterations (seed \(seed), start \(start), corpus \(corpus.count), CRC repair \(repair)) in \(String(format: "%.1f", seconds)) s")
                print("  accepted \(total.successes), rejected \(total.iterations - total.successes)")
                for (k, v) in total.errorsByKind.sorted(by: { $0.key < $1.key }) { print("    \(k): \(v)") }
                print("  crashes 0, hangs (over \(budgetMs) ms) \(total.overBudget), untyped errors \(untyped)")
                print(String(format: "  slowest iteration %d: %.3f ms", total.slowestIteration, Double(total.slowestNanoseconds) / 1e6))
            }
            return total.overBudget == 0 && untyped == 0 ? 0 : 1
        })

    /// On a trap (SIGILL/SIGTRAP on Linux), SIGSEGV, SIGBUS, SIGFPE or SIGABRT: print the
    /// iteration to stderr, then die of the same signal.
    static func installCrashHandlers() {
        for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT] {
            signal(sig) { s in
                let it = fuzzCurrentIteration.load(ordering: .relaxed)
                fuzzCrashBuffer.withUnsafeMutableBufferPointer { buf in
                    let msg: StaticString = "\nfuzz: CRASH (signal) at iteration "
                    var n = 0
                    msg.withUTF8Buffer { for c in $0 where n < 100 { buf[n] = c; n += 1 } }
                    var v = it < 0 ? 0 : it
                    var digits = 0
                    repeat { digits += 1; v /= 10 } while v > 0
                    v = it < 0 ? 0 : it
                    for d in stride(from: digits - 1, through: 0, by: -1) { buf[n + d] = UInt8(48 + v % 10); v /= 10 }
                    n += digits
                    buf[n] = 10; n += 1
                    _ = write(2, buf.baseAddress, n)
                }
                signal(s, SIG_DFL)
                raise(s)
            }
        }
    }

    static func startWatchdog(hangNanoseconds: Int64, t0: UInt64, seed: UInt64, target: String) {
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: 0.25)
                let it = fuzzCurrentIteration.load(ordering: .acquiring)
                guard it >= 0 else { continue }
                let started = fuzzIterationStart.load(ordering: .relaxed)
                let now = Int64(DispatchTime.now().uptimeNanoseconds - t0)
                if now - started > hangNanoseconds, fuzzCurrentIteration.load(ordering: .acquiring) == it {
                    printErr("fuzz: HANG at iteration \(it) (> \(hangNanoseconds / 1_000_000_000) s); replay: edgecli fuzz --target \(target) --seed \(seed) --start \(it) --iterations 1")
                    exit(3)
                }
            }
        }
        thread.start()
    }
}

/// The DataIO decoders as fuzz targets: seed corpora of valid IDX (plain and gzip) and NPY files.
enum FuzzTargets {
    static func other(_ name: String, corpusSize: Int, seed: UInt64) throws
        -> ([[UInt8]], ([UInt8]) throws -> Void, (Error) -> String)? {
        var rng = SampleRNG(seed: seed)
        func shape() -> [Int] { (0..<rng.int(1...3)).map { _ in rng.int(1...6) } }
        func classify(_ e: Error) -> String {
            guard let d = e as? DataIOError else { return "untyped:\(type(of: e))" }
            let k = "\(d.kind)"
            return String(k.prefix { $0 != "(" })
        }
        switch name {
        case "idx":
            var corpus: [[UInt8]] = []
            for i in 0..<corpusSize {
                let sh = shape()
                let n = sh.reduce(1, *)
                let el: IDXArray.Element
                switch i % 6 {
                case 0: el = .uint8((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                case 1: el = .int8((0..<n).map { _ in Int8(truncatingIfNeeded: rng.next()) })
                case 2: el = .int16((0..<n).map { _ in Int16(truncatingIfNeeded: rng.next()) })
                case 3: el = .int32((0..<n).map { _ in Int32(truncatingIfNeeded: rng.next()) })
                case 4: el = .float32((0..<n).map { _ in Float(rng.int(-1000...1000)) / 7 })
                default: el = .float64((0..<n).map { _ in Double(rng.int(-1000...1000)) / 7 })
                }
                let plain = IDX.encode(try IDXArray(shape: sh, element: el))
                corpus.append(i % 4 == 3 ? try Gzip.compress(plain) : plain)
            }
            return (corpus, { _ = try IDX.decode($0, name: "fuzz", limit: 1 << 24) }, classify)
        case "npy":
            var corpus: [[UInt8]] = []
            for i in 0..<corpusSize {
                let sh = shape()
                let n = sh.reduce(1, *)
                let a: NPYArray
                switch i % 5 {
                case 0: a = try NPYArray(shape: sh, uint8: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                case 1: a = try NPYArray(shape: sh, int32: (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next()) })
                case 2: a = try NPYArray(shape: sh, float32: (0..<n).map { _ in Float(rng.int(-1000...1000)) / 3 })
                case 3: a = try NPYArray(shape: sh, bool: (0..<n).map { _ in rng.bool() })
                default: a = try NPYArray(shape: sh, int64: (0..<n).map { _ in Int64(bitPattern: rng.next()) })
                }
                corpus.append(NPY.encode(a))
            }
            return (corpus, { _ = try NPY.decode($0, name: "fuzz") }, classify)
        default:
            return nil
        }
    }
}

/// Runs a campaign as a sequence of child `edgecli fuzz` processes so crashes and hangs are
/// counted (with their iterations) and the campaign goes on after them.
enum Supervisor {
    static func run(target: String, iterations: Int, seed: UInt64, start: Int, corpus: Int, noRepair: Bool,
                    budgetMs: Int, hangSeconds: Int, crashAt: Int, hangAt: Int, chunk: Int, json: Bool) throws -> Int32 {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).path
        var next = start
        let end = start + iterations
        var accepted = 0, done = 0, overBudget = 0, untyped = 0
        var errors: [String: Int] = [:]
        var crashes: [Int] = [], hangs: [Int] = []
        var slowestMs = 0.0, slowestIt = -1
        let t0 = Date()
        while next < end {
            let n = min(chunk, end - next)
            var a = ["fuzz", "--target", target, "--seed", "\(seed)", "--start", "\(next)", "--iterations", "\(n)",
                     "--corpus", "\(corpus)", "--budget-ms", "\(budgetMs)", "--hang-seconds", "\(hangSeconds)", "--json"]
            if noRepair { a.append("--no-crc-repair") }
            if crashAt >= 0 { a += ["--crash-at", "\(crashAt)"] }
            if hangAt >= 0 { a += ["--hang-at", "\(hangAt)"] }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = a
            let out = Pipe(), err = Pipe()
            p.standardOutput = out; p.standardError = err
            try p.run()
            let outData = out.fileHandleForReading.readDataToEndOfFile()
            let errData = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let errText = String(decoding: errData, as: UTF8.self)
            if p.terminationReason == .uncaughtSignal || p.terminationStatus == 3 {
                // The child printed the iteration it died in; continue right after it.
                let marker = p.terminationStatus == 3 && p.terminationReason == .exit ? "HANG at iteration " : "CRASH (signal) at iteration "
                guard let r = errText.range(of: marker),
                      let it = Int(errText[r.upperBound...].prefix { $0.isNumber }) else {
                    throw CLIError("fuzz: child died (status \(p.terminationStatus)) without naming the iteration:\n\(errText)")
                }
                if marker.hasPrefix("HANG") { hangs.append(it) } else { crashes.append(it) }
                printErr("fuzz: \(marker.hasPrefix("HANG") ? "hang" : "crash") at iteration \(it); replay: edgecli fuzz --target \(target) --seed \(seed) --start \(it) --iterations 1 --save-input crash.bin")
                done += it - next + 1
                next = it + 1
                continue
            }
            guard let obj = try? JSONSerialization.jsonObject(with: outData) as? [String: Any],
                  let its = obj["iterations"] as? Int else {
                throw CLIError("fuzz: child exited \(p.terminationStatus) without a report:\n\(errText)")
            }
            done += its
            accepted += obj["accepted"] as? Int ?? 0
            overBudget += obj["hangs"] as? Int ?? 0
            untyped += obj["untypedErrors"] as? Int ?? 0
            for (k, v) in obj["errorsByKind"] as? [String: Int] ?? [:] { errors[k, default: 0] += v }
            if let ms = obj["slowestIterationMs"] as? Double, ms > slowestMs { slowestMs = ms; slowestIt = obj["slowestIteration"] as? Int ?? -1 }
            next += n
            printErr("fuzz \(target): \(done)/\(iterations) iterations, \(crashes.count) crashes, \(hangs.count + overBudget) hangs, \(Int(Date().timeIntervalSince(t0))) s")
        }
        let report: [String: Any] = [
            "target": target, "seed": seed, "start": start, "iterations": done, "accepted": accepted,
            "errorsByKind": errors, "crashes": crashes.count, "crashIterations": crashes,
            "hangs": hangs.count + overBudget, "hangIterations": hangs, "overBudget": overBudget, "untypedErrors": untyped,
            "slowestIterationMs": slowestMs, "slowestIteration": slowestIt, "budgetMs": budgetMs,
            "seconds": Date().timeIntervalSince(t0), "supervised": true, "chunk": chunk,
        ]
        if json { try printJSON(report) } else {
            print("fuzz \(target) (supervised): \(done) iterations (seed \(seed), start \(start)) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
            print("  accepted \(accepted), rejected \(done - accepted - crashes.count - hangs.count)")
            for (k, v) in errors.sorted(by: { $0.key < $1.key }) { print("    \(k): \(v)") }
            print("  crashes \(crashes.count)\(crashes.isEmpty ? "" : " at \(crashes)"), hangs \(hangs.count + overBudget)\(hangs.isEmpty ? "" : " at \(hangs)"), untyped errors \(untyped)")
            print(String(format: "  slowest iteration %d: %.3f ms", slowestIt, slowestMs))
        }
        return crashes.isEmpty && hangs.isEmpty && overBudget == 0 && untyped == 0 ? 0 : 1
    }
}
