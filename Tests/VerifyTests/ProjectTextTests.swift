import Foundation
import XCTest

/// The project's text rule: docs, code comments and tests are a manual and a specification, so
/// none of them names a work period (by its word), an issue number or a commit hash. Experiment records
/// (docs/experiments/) are the one place for history and are not scanned.
///
/// Scanned: Sources, Tests, docs (without docs/experiments), scripts and README.md, every regular
/// file that reads as UTF-8 (symbolic links are skipped: their targets are scanned where they
/// live). Flagged, with file:line:
/// * the whole word for a work period (case-insensitive), except inside the ONNX Runtime API
///   names `InferenceSession` / `SessionOptions`;
/// * an issue number: the word followed by an optional `#` or `-` and digits;
/// * a commit-hash-looking token (7-12 or 40 lowercase hex digits with at least one digit and
///   one of a-f) on a line that also says "commit", "build of" or "clone of". The context
///   condition keeps SHA-256 prefixes of golden files and hex constants from being flagged.
final class ProjectTextTests: XCTestCase {
    // The patterns are built from pieces so that this file does not match itself.
    private static let periodWord = "ses" + "sion"
    private static let issueWord = "iss" + "ue"
    private static let allowedIdentifiers = ["Inference" + "Ses" + "sion", "Ses" + "sion" + "Options"]

    private static func regex(_ pattern: String, caseInsensitive: Bool) -> NSRegularExpression {
        // The patterns are constants of this file; a bad one is a bug of the test.
        try! NSRegularExpression(pattern: pattern, options: caseInsensitive ? [.caseInsensitive] : [])
    }

    private static let periodPattern = regex("\\b" + periodWord + "\\b", caseInsensitive: true)
    private static let issuePattern = regex("\\b" + issueWord + "[ \\t-]*#?[0-9]+", caseInsensitive: true)
    private static let hashPattern = regex(
        "\\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])(?:[0-9a-f]{40}|[0-9a-f]{7,12})\\b", caseInsensitive: false)
    private static let hashContext = regex("commit|build of|clone of", caseInsensitive: true)

    private func repositoryRoot() throws -> URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir
            }
            dir = dir.deletingLastPathComponent()
        }
        throw XCTSkip("no Package.swift above \(#filePath)")
    }

    private func scannedFiles(root: URL) -> [URL] {
        let fm = FileManager.default
        var out: [URL] = []
        let experiments = root.appendingPathComponent("docs/experiments").standardizedFileURL.path
        for top in ["Sources", "Tests", "docs", "scripts"] {
            let base = root.appendingPathComponent(top)
            guard let walker = fm.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey],
                                             options: []) else { continue }
            for case let url as URL in walker {
                let path = url.standardizedFileURL.path
                if path == experiments || path.hasPrefix(experiments + "/") {
                    if path == experiments { walker.skipDescendants() }
                    continue
                }
                let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
                if values?.isSymbolicLink == true || values?.isRegularFile != true { continue }
                out.append(url)
            }
        }
        out.append(root.appendingPathComponent("README.md"))
        return out.sorted { $0.path < $1.path }
    }

    private static func matches(_ re: NSRegularExpression, _ line: String) -> Bool {
        re.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
    }

    /// The rule's findings for one line ("" when none).
    static func findings(in line: String) -> [String] {
        var found: [String] = []
        var stripped = line
        for name in allowedIdentifiers { stripped = stripped.replacingOccurrences(of: name, with: "") }
        if matches(periodPattern, stripped) { found.append("names a work " + periodWord) }
        if matches(issuePattern, line) { found.append("names an " + issueWord + " number") }
        if matches(hashContext, line) && matches(hashPattern, line) { found.append("names a commit hash") }
        return found
    }

    func testTheRuleFlagsWhatItShouldAndNothingElse() {
        let word = Self.periodWord
        XCTAssertFalse(Self.findings(in: "measured in " + word.capitalized + " 3 below").isEmpty)
        XCTAssertFalse(Self.findings(in: "the " + word + "-7 default").isEmpty)
        XCTAssertTrue(Self.findings(in: "ort." + Self.allowedIdentifiers[0] + "(path, sess_options=o)").isEmpty)
        XCTAssertTrue(Self.findings(in: "o = ort." + Self.allowedIdentifiers[1] + "()").isEmpty)
        XCTAssertFalse(Self.findings(in: "    def " + word + "(path, threads):").isEmpty, "a code identifier is no exception")
        XCTAssertFalse(Self.findings(in: "(" + Self.issueWord + " 5): batch-1 latency").isEmpty)
        XCTAssertFalse(Self.findings(in: Self.issueWord.capitalized + " #12 says").isEmpty)
        XCTAssertFalse(Self.findings(in: "the release build of 9f2751" + "b, 16 epochs").isEmpty)
        XCTAssertTrue(Self.findings(in: "SHA-256 d26c99e8...; the training defaults").isEmpty)
        XCTAssertTrue(Self.findings(in: "the build of 2026-11-29 with 1224734 flips").isEmpty)
    }

    func testNoDocCommentOrTestNamesAWorkPeriodAnIssueOrACommit() throws {
        let root = try repositoryRoot()
        var hits: [String] = []
        for url in scannedFiles(root: root) {
            guard let data = FileManager.default.contents(atPath: url.path),
                  let text = String(data: data, encoding: .utf8) else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1))
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let found = Self.findings(in: String(line))
                if !found.isEmpty {
                    hits.append("\(relative):\(index + 1): \(found.joined(separator: ", ")): \(line.prefix(120))")
                }
            }
        }
        XCTAssertTrue(hits.isEmpty, "text that belongs in docs/experiments/ (history) or nowhere:\n"
                      + hits.joined(separator: "\n"))
    }
}
