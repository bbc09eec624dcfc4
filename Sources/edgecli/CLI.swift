// Argument parsing and command dispatch for edgecli. Deliberately small: options are
// `--name value` or `--name=value`, flags are `--name`; anything left unconsumed when a
// command finishes parsing is an error naming it (an unknown option never passes silently).
import Foundation

struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

struct Args {
    let command: String
    private var items: [String?]

    init(command: String, _ argv: [String]) {
        self.command = command
        items = argv
    }

    /// Value of `--name value` / `--name=value`, removed from the list; nil when absent.
    mutating func option(_ name: String) throws -> String? {
        let key = "--" + name
        for i in items.indices {
            guard let s = items[i] else { continue }
            if s == key {
                guard i + 1 < items.count, let v = items[i + 1] else {
                    throw CLIError("\(command): option \(key) needs a value")
                }
                items[i] = nil; items[i + 1] = nil
                return v
            }
            if s.hasPrefix(key + "=") {
                items[i] = nil
                return String(s.dropFirst(key.count + 1))
            }
        }
        return nil
    }

    mutating func required(_ name: String) throws -> String {
        guard let v = try option(name) else { throw CLIError("\(command): missing required option --\(name)") }
        return v
    }

    mutating func int(_ name: String, default d: Int, range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let s = try option(name) else { return d }
        guard let v = Int(s), range.contains(v) else {
            throw CLIError("\(command): --\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(s)'")
        }
        return v
    }

    mutating func uint64(_ name: String, default d: UInt64) throws -> UInt64 {
        guard let s = try option(name) else { return d }
        guard let v = UInt64(s) else { throw CLIError("\(command): --\(name) must be a non-negative integer, got '\(s)'") }
        return v
    }

    mutating func double(_ name: String, default d: Double) throws -> Double {
        guard let s = try option(name) else { return d }
        guard let v = Double(s), v.isFinite else { throw CLIError("\(command): --\(name) must be a finite number, got '\(s)'") }
        return v
    }

    /// `--name` present (removed) or not.
    mutating func flag(_ name: String) -> Bool {
        let key = "--" + name
        guard let i = items.firstIndex(where: { $0 == key }) else { return false }
        items[i] = nil
        return true
    }

    /// Next positional argument (not starting with "--"), removed.
    mutating func positional() -> String? {
        for i in items.indices {
            guard let s = items[i] else { continue }
            if s.hasPrefix("--") { return nil }
            items[i] = nil
            return s
        }
        return nil
    }

    mutating func requiredPositional(_ what: String) throws -> String {
        guard let p = positional() else { throw CLIError("\(command): missing \(what)") }
        return p
    }

    /// Call after all options are read: anything left is an error.
    func finish() throws {
        let left = items.compactMap { $0 }
        if let first = left.first {
            throw CLIError("\(command): unknown \(first.hasPrefix("-") ? "option" : "argument") '\(first)'")
        }
    }
}

struct Command: Sendable {
    let name: String
    let summary: String
    let usage: String
    let run: @Sendable (inout Args) throws -> Int32
}

/// Print a JSON object (sorted keys, one line) to standard output.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// True when standard error is a terminal (progress lines update in place there).
var stderrIsTerminal: Bool { isatty(2) != 0 }
