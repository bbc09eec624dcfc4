// The integer rules have one home: the rounding rules and saturation in FixedPoint, the ADC, the
// affine quantizer and every op in Kernels (its reference and its fast kernels). Freeze,
// export, verify and the command line call them; none re-implements one.
import Foundation
import XCTest

final class SingleImplementationTests: XCTestCase {
    /// Code (not comments) that would be a second implementation of a rule: a call of a
    /// rounding or saturation primitive (outside the modules that define the ops, every integer
    /// result must come from a Kernels function), a hand-written rounding shift, or an ADC
    /// product of an accumulator and a multiplier.
    static let patterns: [(String, NSRegularExpression)] = [
        ("a rounding primitive", try! NSRegularExpression(pattern: #"\b(roundingShiftRight|roundingDivide|_roundsUp)\s*\("#)),
        ("a saturation primitive", try! NSRegularExpression(pattern: #"\bsaturate\s*\("#)),
        ("a hand-written rounding shift", try! NSRegularExpression(pattern: #"<<\s*\(?[^)]*-\s*1\)?\)?\s*\)?\s*(&)?>>"#)),
        ("an ADC product", try! NSRegularExpression(pattern: #"Int64\(\s*\w*acc\w*\s*\)\s*\*\s*Int64\([^)]*multiplier"#)),
    ]

    func testNoSecondImplementationOfARuleOutsideFixedPointAndKernels() throws {
        guard let root = repositoryRoot() else { throw XCTSkip("repository root not found from \(#filePath)") }
        let fm = FileManager.default
        let sources = root + "/Sources"
        guard let e = fm.enumerator(atPath: sources) else { throw XCTSkip("no Sources/ in \(root)") }
        var scanned = 0, hits: [String] = []
        while let rel = e.nextObject() as? String {
            guard rel.hasSuffix(".swift"), !rel.hasPrefix("FixedPoint/"), !rel.hasPrefix("Kernels/") else { continue }
            let text = try String(contentsOfFile: sources + "/" + rel, encoding: .utf8)
            scanned += 1
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let t = line.trimmingCharacters(in: .whitespaces)
                // comments, and the comment lines of generated C (" * ...", "/* ...")
                if t.hasPrefix("//") || t.hasPrefix("*") || t.hasPrefix("/*") { continue }
                let s = String(line)
                for (what, re) in Self.patterns where re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil {
                    hits.append("Sources/\(rel):\(n + 1): \(what): \(t)")
                }
            }
        }
        XCTAssertGreaterThan(scanned, 40, "Swift files outside FixedPoint and Kernels")
        XCTAssertEqual(hits, [], "second implementations of an integer rule:\n" + hits.joined(separator: "\n"))
    }

    /// The patterns find what they are for (each on a line the old freeze had).
    func testThePatternsMatchSecondImplementations() {
        let lines = [
            "let v = roundingShiftRight(Int64(a) * Int64(qm.multiplier), 31 - Int(qm.shift), o.adcRounding)",
            "let c = saturate(v, signedBits: 14)",
            "let r = (x + (1 << (s - 1))) >> s",
            "let p = Int64(acc) * Int64(tile.multiplier)",
        ]
        for (l, (what, re)) in zip(lines, Self.patterns) {
            XCTAssertNotNil(re.firstMatch(in: l, range: NSRange(l.startIndex..., in: l)), "\(what) in: \(l)")
        }
        let fine = "for a in accs where Reference.adcConversion(a, tile).saturated { clipped += 1 }"
        for (what, re) in Self.patterns {
            XCTAssertNil(re.firstMatch(in: fine, range: NSRange(fine.startIndex..., in: fine)), "\(what) in: \(fine)")
        }
    }
}
