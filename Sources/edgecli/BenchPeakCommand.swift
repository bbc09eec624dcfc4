// `edgecli bench peak`: one core's sustained rate of the multiply instruction each integer kernel
// set's crossbar loops use (a register-only loop, IntDispatch.peak), in GMAC/s: the ceiling
// `bench infer`'s MAC/s are a fraction of.
import Foundation
import Kernels

enum BenchPeakCommand {
    static let usage = """
    usage: edgecli bench peak [--seconds S] [--json]
      For every integer kernel set this CPU runs: the multiply instruction of its crossbar loops
      in 12 independent register chains on one thread, repeated for S seconds (default 1) after
      a warm-up; the median of 5 such runs, as GMAC/s.
    """

    static func run(_ args: inout Args) throws -> Int32 {
        let seconds = try args.double("seconds", default: 1)
        guard seconds > 0, seconds <= 600 else { throw CLIError("bench peak: --seconds must be in (0, 600], got \(seconds)") }
        let json = args.flag("json")
        try args.finish()
        let clock = ContinuousClock()
        func secs(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        var results: [[String: Any]] = []
        var check = 0
        for set in IntDispatch.available {
            // calibrate: iterations for about seconds / 5
            var n = 1 << 16
            while true {
                let s = clock.now
                check &+= IntDispatch.peak(set, iterations: n).check
                let t = secs(clock.now - s)
                if t >= seconds / 20 || n >= 1 << 40 { n = Swift.max(1, Int(Double(n) * seconds / 5 / Swift.max(t, 1e-9))); break }
                n <<= 2
            }
            var rates: [Double] = []
            var info = IntDispatch.peak(set, iterations: 1)
            for _ in 0..<5 {
                let s = clock.now
                info = IntDispatch.peak(set, iterations: n)
                let t = secs(clock.now - s)
                check &+= info.check
                rates.append(Double(n) * 12 * Double(info.macsPerInstruction) / t / 1e9)
            }
            rates.sort()
            let gmacs = rates[2]
            results.append(["int_kernels": set.rawValue, "instruction": info.instruction, "macs_per_instruction": info.macsPerInstruction,
                            "gmac_per_s": gmacs, "instructions_per_ns": gmacs / Double(info.macsPerInstruction)])
            if !json {
                print(String(format: "kernel set %@: %@, %.1f GMAC/s on one core (%.2f instructions per ns)",
                             set.rawValue, info.instruction, gmacs, gmacs / Double(info.macsPerInstruction)))
            }
        }
        if json { try printJSON(["bench": "peak", "results": results, "check": check]) }
        return 0
    }
}
