import XCTest
@testable import ModelFile
import Kernels

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

final class LimitTests: XCTestCase {
    /// A legal but maximal graph (2^16 - 1 flatten nodes) decodes and validates quickly:
    /// nothing in the reader or in Program.validate() is quadratic in the counts.
    func testMaximalNodeCountIsFast() throws {
        let n = FormatLimits.maxItems - 1
        var g = ByteWriter()
        g.u32(512); g.u32(0); g.u32(UInt32(n)); g.u32(UInt32(n + 1)); g.u32(UInt32(n))
        for _ in 0...n { g.u32(7); g.u32(1); g.u32(1); g.u8(0); g.u8(8); g.u16(0) }
        for i in 0..<n { g.u8(OpKind.flatten.rawValue); g.u8(1); g.u16(0); g.u32(UInt32(i + 1)); g.u32(UInt32(i)) }
        var items = smallMetadataItems()
        let k = items.firstIndex { $0.0 == "programming.mask_flips" }!
        items[k].1 = .array([])
        let meta = try metadataPayload(items)
        var b = rebuild(smallFile(), kind: .graph) { $0 = g.bytes }
        b = rebuild(b, kind: .metadata) { $0 = meta }
        b = Container.assembleRaw(sections(b).filter { $0.kind != SectionKind.placement.rawValue })
        let t0 = ContinuousClock.now
        let m = try ModelBundle.decode(b)
        XCTAssertEqual(m.program.nodes.count, n)
        print("decode of \(n) nodes: \(ContinuousClock.now - t0)")
        XCTAssertLessThan(ContinuousClock.now - t0, .seconds(10))
        // one more node is over the limit
        var g2 = g.bytes
        putU32(&g2, 16, UInt32(n + 2))
        assertRejects(rebuild(b, kind: .graph) { $0 = g2 }, .countTooLarge, section: "graph")
    }
}
