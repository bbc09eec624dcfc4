import XCTest
@testable import ModelFile

/// Exhaustive small-file checks: every prefix, and every byte set to 0xFF/0 (CRCs repaired).
final class ExhaustiveTests: XCTestCase {
    func testEveryPrefixIsRejected() {
        let b = smallFile()
        for n in 0..<b.count {
            XCTAssertThrowsError(try ModelBundle.decode(Array(b[0..<n])), "prefix \(n)")
        }
    }

    func testEveryByteSetWithRepairedCRCsThrowsTypedOrDecodes() {
        let b = smallFile()
        var accepted = 0, rejected = 0
        for i in 0..<b.count {
            var m = b
            m[i] = m[i] == 0xFF ? 0 : 0xFF
            Container.recomputeChecksums(&m)
            do { _ = try ModelBundle.decode(m); accepted += 1 } catch is ModelFileError { rejected += 1 } catch { XCTFail("untyped \(error)") }
        }
        XCTAssertEqual(accepted + rejected, b.count)
        XCTAssertGreaterThan(rejected, b.count / 4)
    }
}

final class MutatorTests: XCTestCase {
    /// The mutator produces every class of change: same-length edits, truncations, extensions,
    /// and edits at the header/table hot offsets.
    func testMutatorCoversItsMutationKinds() {
        let base = smallFile()
        let mut = FuzzMutator(hotOffsets: FuzzMutator.modelHotOffsets(base))
        var rng = SampleRNG(seed: 77)
        var shorter = 0, longer = 0, sameLengthChanged = 0, headerTouched = 0
        for _ in 0..<2000 {
            let m = mut.mutate(base, &rng)
            if m.count < base.count { shorter += 1 } else if m.count > base.count { longer += 1 }
            else if m != base { sameLengthChanged += 1 }
            if m.count >= 64, Array(m[0..<64]) != Array(base[0..<64]) { headerTouched += 1 }
        }
        XCTAssertGreaterThan(shorter, 100)
        XCTAssertGreaterThan(longer, 100)
        XCTAssertGreaterThan(sameLengthChanged, 300)
        XCTAssertGreaterThan(headerTouched, 200)
        XCTAssert(FuzzMutator.interesting.contains(0x7FFF_FFFF) && FuzzMutator.interesting.contains(1 << 63)
                  && FuzzMutator.interesting.contains(0xFFFF_FFFF) && FuzzMutator.interesting.contains(UInt64.max))
    }
}
