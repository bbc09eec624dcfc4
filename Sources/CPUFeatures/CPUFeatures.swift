// What this CPU can run, for the modules compiled more than once (FloatKernelsAVX2,
// CrossbarBlocksAVX2: `-target-cpu haswell`). Foundation-free.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum CPUFeatures {
    /// Whether this CPU and OS run code compiled with `-target-cpu haswell`: every feature that
    /// target may use is in /proc/cpuinfo's flags (Linux clears the AVX flags when the OS does not
    /// save the YMM registers). Elsewhere: false, so only the baseline builds run.
    public static let runsHaswellCode: Bool = {
        #if os(Linux) && arch(x86_64)
        guard let f = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil, cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            guard s.hasPrefix("flags") else { continue }
            let flags = Set(s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init))
            return ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt", "abm"].allSatisfy(flags.contains)
        }
        return false
        #else
        return false
        #endif
    }()

    /// The value of environment variable `key`, if set.
    public static func environment(_ key: String) -> String? {
        getenv(key).map { String(cString: $0) }
    }
}

/// The choice of one of a binary's builds of a kernel module, made once at startup: the build
/// environment variable `key` names when it is available, else the last (fastest) available.
public struct KernelBuildChoice<Build: RawRepresentable & CaseIterable & Equatable & Sendable>: Sendable where Build.RawValue == String {
    public let key: String
    /// Builds this binary has and this CPU runs, slowest first.
    public let available: [Build]
    public let selected: Build
    /// nil when `key` is unset or names an available build; else what is wrong with it (the
    /// command line stops before any work).
    public let problem: String?

    public init(key: String, available: [Build]) {
        precondition(!available.isEmpty, "a kernel module without a build")
        self.key = key
        self.available = available
        let value = CPUFeatures.environment(key)
        let named = value.flatMap(Build.init(rawValue:))
        if let value, named == nil {
            problem = "\(key)='\(value)' is not one of \(Build.allCases.map(\.rawValue).joined(separator: ", "))"
        } else if let value, let named, !available.contains(named) {
            problem = "\(key)=\(value): this binary or CPU has only \(available.map(\.rawValue).joined(separator: ", "))"
        } else {
            problem = nil
        }
        selected = named.flatMap { available.contains($0) ? $0 : nil } ?? available.last!
    }
}
