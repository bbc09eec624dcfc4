import XCTest
@testable import ModelFile
import Kernels

/// Random mutations of valid files: every decode throws a typed error or succeeds (a trap
/// would kill the test process), each within a time budget; accepted files re-encode and
/// decode to the same bundle.
final class MutationTests: XCTestCase {
    func runCampaign(iterations: Int, seed: UInt64, recomputeCRC: Bool) throws -> FuzzReport {
        let corpus = try Fuzzer.modelCorpus(count: 12, seed: seed)
        var reencoded = 0
        let report = Fuzzer.run(corpus: corpus, seed: seed, iterations: iterations, recomputeCRC: recomputeCRC,
                                budgetNanoseconds: 250_000_000, decode: { b in
            let m = try ModelBundle.decode(b, name: "mutant")
            // Whatever the reader accepts is a consistent bundle: it encodes and decodes to itself.
            let again = try m.encode()
            XCTAssertEqual(try ModelBundle.decode(again), m)
            reencoded += 1
        }, classify: { e in
            guard let e = e as? ModelFileError else { XCTFail("untyped error \(e)"); return "untyped" }
            return e.kind.rawValue
        })
        XCTAssertEqual(report.iterations, iterations)
        XCTAssertEqual(report.successes, reencoded)
        XCTAssertEqual(report.overBudget, 0, "slowest iteration \(report.slowestIteration): \(report.slowestNanoseconds) ns")
        XCTAssertEqual(report.successes + report.errorsByKind.values.reduce(0, +), iterations)
        return report
    }

    func testMutationsWithoutCRCRepairAreCaught() throws {
        let r = try runCampaign(iterations: 1500, seed: 11, recomputeCRC: false)
        // Without repaired CRCs nearly everything dies at a checksum or the header checks.
        XCTAssertGreaterThan(r.errorsByKind["checksumMismatch", default: 0], 300, "\(r.errorsByKind)")
    }

    func testMutationsWithCRCRepairReachDeepChecks() throws {
        let r = try runCampaign(iterations: 3000, seed: 12, recomputeCRC: true)
        // Repairing CRCs must let mutations reach the structural checks behind them.
        let deep = r.errorsByKind.filter { !["checksumMismatch", "badMagic", "truncated", "badHeader", "unsupportedVersion"].contains($0.key) }
        XCTAssertGreaterThan(deep.values.reduce(0, +), 300, "\(r.errorsByKind)")
        XCTAssertGreaterThanOrEqual(deep.count, 6, "\(r.errorsByKind)")
        print("mutation campaign: \(r.iterations) iterations, \(r.successes) accepted, \(r.errorsByKind.sorted { $0.key < $1.key })")
    }

    func testCorpusCoversEveryRecordKind() throws {
        // The campaign mutates what the corpus holds: every op record (the rnn's, op 9, included)
        // must be in it, or the fuzzer never exercises its decoder.
        let bundles = try Fuzzer.modelCorpus(count: 12, seed: 3).map { try ModelBundle.decode($0) }
        let ops = Set(bundles.flatMap { $0.program.nodes.map { $0.op.kind } })
        for k in OpKind.allCases { XCTAssertTrue(ops.contains(k), "the fuzz corpus has no \(k) node") }
    }

    func testFuzzInputsReplayDeterministically() throws {
        let corpus = try Fuzzer.modelCorpus(count: 3, seed: 5)
        XCTAssertEqual(try Fuzzer.modelCorpus(count: 3, seed: 5), corpus)
        for it in [0, 17, 999] {
            XCTAssertEqual(Fuzzer.input(corpus: corpus, seed: 9, iteration: it, recomputeCRC: true),
                           Fuzzer.input(corpus: corpus, seed: 9, iteration: it, recomputeCRC: true))
        }
        XCTAssertNotEqual(Fuzzer.input(corpus: corpus, seed: 9, iteration: 1, recomputeCRC: true),
                          Fuzzer.input(corpus: corpus, seed: 9, iteration: 2, recomputeCRC: true))
    }

    func testRecomputeChecksumsRepairsAValidFile() throws {
        var b = smallFile()
        let original = b
        for o in [56, 57, 60, 63, 64 + 24] { b[o] ^= 0xFF }
        XCTAssertThrowsError(try ModelBundle.decode(b))
        Container.recomputeChecksums(&b)
        XCTAssertEqual(b, original)
    }
}
