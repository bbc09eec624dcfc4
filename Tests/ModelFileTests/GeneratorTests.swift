import XCTest
@testable import ModelFile
import DataIO
import Device
import Kernels

/// Format 1.1: generated weights (docs/FORMAT.md section 8b), the placement checks and the
/// decoded-memory budget (section 9).
final class GeneratorTests: XCTestCase {
    func explicit(_ b: ModelBundle) -> ModelBundle {
        var e = b
        e.metadata.weightGenerators = []
        e.metadata.deviceProfile = []
        return e
    }

    /// A file with generated weights decodes to exactly the program (every code) of the same
    /// model stored with explicit codes; encoding is deterministic; minor 1 only when generators are used.
    func testGeneratedWeightsLoadToTheSameProgramAsExplicitCodes() throws {
        for kind in SampleGenerator.allCases {
            for base in [smallBundle(), ModelSamples.random(seed: 11), ModelSamples.fashionCNN(seed: 2)] {
                let g = ModelSamples.generated(base, kind, seed: 5)
                XCTAssertFalse(g.metadata.weightGenerators.isEmpty, "\(kind)")
                let gBytes = try g.encode(), eBytes = try explicit(g).encode()
                XCTAssertEqual(try g.encode(), gBytes, "\(kind): encoding twice gives identical bytes")
                let fromG = try ModelBundle.decode(gBytes), fromE = try ModelBundle.decode(eBytes)
                XCTAssertEqual(fromG.program, fromE.program, "\(kind)")
                XCTAssertEqual(fromG.program, g.program, "\(kind)")
                for (a, b) in zip(fromG.program.nodes, fromE.program.nodes) {
                    if case .crossbar(let x) = a.op, case .crossbar(let y) = b.op { XCTAssertEqual(x.weights, y.weights) }
                }
                XCTAssertEqual(fromG, g, "\(kind): generators and profile round-trip")
                XCTAssertEqual(try Container.parse(gBytes).minor, 1)
                XCTAssertEqual(try Container.parse(eBytes).minor, 0)
                if base.program.nodes.count > 8 { XCTAssertLessThan(gBytes.count, eBytes.count, "\(kind)") }
                let gen = try Container.parse(gBytes).section(.weightGenerators)!
                XCTAssertEqual(gen.flags & FormatConstants.flagRequired, FormatConstants.flagRequired, "1.0 readers must refuse the file")
            }
        }
    }

    /// Size target: the Fashion-MNIST CNN's model file is at most 1/3 of the same network as an ONNX
    /// int8 file (69,654 bytes, /work/shared/bench/ort_reference.py): <= 23,218 bytes, masks bit-packed.
    func testFashionCNNWithGeneratedWeightsIsAtMostAThirdOfONNXInt8() throws {
        let limit = 69_654 / 3
        XCTAssertEqual(limit, 23_218)
        for kind in SampleGenerator.allCases {
            let m = ModelSamples.generated(ModelSamples.fashionCNN(seed: 3), kind, seed: 1)
            let bytes = try m.encode()
            let n = m.metadata.weightGenerators.compactMap { $0 }.count
            XCTAssertEqual(n, 4, "\(kind): every layer generated")
            print("fashion CNN, \(kind) weights: \(bytes.count) bytes (explicit codes: \(try explicit(m).encode().count))")
            XCTAssertLessThanOrEqual(bytes.count, limit, "\(kind): \(bytes.count) bytes")
        }
    }

    func testWriterRefusesAGeneratorThatDoesNotReproduceTheCodes() {
        var g = ModelSamples.generated(smallBundle(), .signStream, seed: 1)
        guard case .crossbar(var c) = g.program.nodes[2].op else { return XCTFail() }
        c.weights[0] = c.weights[0] == 1 ? 2 : 1
        g.program.nodes[2].op = .crossbar(c)
        XCTAssertThrowsError(try g.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
        var h = ModelSamples.generated(smallBundle(), .signStream, seed: 1)
        h.metadata.masks = []
        XCTAssertThrowsError(try h.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
    }

    // MARK: crafted corrupt generator records

    /// The small file with signs from a seed: generator payload = u32 profile length (0), u32
    /// count (1), record { u32 layer @8, u8 kind @12, u8 @13, u16 @14, u32 crc @16, u8 magnitude
    /// @20, u8 sign source @21, u16 @22, u64 seed @24, u64 stream @32 }.
    let stream = try! ModelSamples.generated(smallBundle(), .signStream, seed: 1).encode()
    let bits = try! ModelSamples.generated(smallBundle(), .signBits, seed: 1).encode()
    let device = try! ModelSamples.generated(smallBundle(), .device, seed: 1).encode()

    func gen(_ b: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] { rebuild(b, kind: .weightGenerators, edit) }

    func testValidFixturesDecode() throws {
        for b in [stream, bits, device] { XCTAssertNoThrow(try ModelBundle.decode(b)) }
        let p = sections(stream).first { $0.kind == SectionKind.weightGenerators.rawValue }!.bytes
        XCTAssertEqual(p.count, 40)
        XCTAssertEqual(p[12], 1); XCTAssertEqual(p[21], 1)
    }

    func testBadGeneratorKindAndEnums() {
        assertRejects(gen(stream) { $0[12] = 9 }, .badEnum, section: "weight generators")           // kind
        assertRejects(gen(stream) { $0[21] = 0 }, .badEnum, section: "weight generators")           // sign source
        assertRejects(gen(stream) { $0[20] = 0 }, .badEnum, section: "weight generators")           // magnitude 0
        assertRejects(gen(stream) { $0[20] = 200 }, .badEnum, section: "weight generators")         // magnitude > 127
        assertRejects(gen(stream) { $0[13] = 1 }, .badGraph, section: "weight generators")          // reserved
        assertRejects(gen(stream) { $0[22] = 1 }, .badGraph, section: "weight generators")          // reserved
        let l = Int(loadU32(sections(device).first { $0.kind == SectionKind.weightGenerators.rawValue }!.bytes, 0))
        assertRejects(gen(device) { putU32(&$0, 8 + l + 12, 2) }, .badEnum, section: "weight generators")   // device model revision
    }

    /// Fuzz finding (iteration 21286 of seed 1): a generated layer's weightBits is read before
    /// the program is validated; 64 overflowed `1 << (bits - 1)`. Now a typed error.
    func testUnvalidatedWeightBitsOfAGeneratedLayerAreRefused() {
        // crossbar node at graph offset 128: 12-byte head, 32 bytes of geometry, then weightBits at 172
        for wb: UInt8 in [0, 1, 9, 63, 64, 65, 255] {
            assertRejects(rebuild(stream, kind: .graph) { $0[172] = wb }, .badGenerator, section: "weight generators")
            assertRejects(rebuild(device, kind: .graph) { $0[172] = wb }, .badGenerator, section: "weight generators")
        }
    }

    func testMagnitudeBeyondTheLayersWeightBitsIsRefused() throws {
        let b = ModelSamples.generated(smallBundle(), .signStream, seed: 1)
        guard case .crossbar(let c) = b.program.nodes[2].op else { return XCTFail() }
        let top = (1 << (c.weightBits - 1)) - 1
        if top < 127 { assertRejects(gen(stream) { $0[20] = UInt8(top + 1) }, .badGenerator, section: "weight generators") }
    }

    /// A record whose regenerated codes do not match its CRC-32 (another seed, another stream,
    /// a flipped CRC, another device seed) is refused, naming the layer.
    func testCRCMismatchOfRegeneratedCodes() throws {
        for edit: (inout [UInt8]) -> Void in [{ $0[16] ^= 1 }, { $0[24] ^= 1 }, { $0[32] ^= 1 }] {
            let b = gen(stream, edit)
            assertRejects(b, .generatedWeightsMismatch, section: "weight generators")
            do { _ = try ModelBundle.decode(b) } catch let e as ModelFileError {
                XCTAssert(e.message.contains("crossbar layer 0"), e.message)
                XCTAssertEqual(e.offset, try Container.parse(b).section(.weightGenerators)!.offset + 8)
            }
        }
        let l = Int(loadU32(sections(device).first { $0.kind == SectionKind.weightGenerators.rawValue }!.bytes, 0))
        assertRejects(gen(device) { $0[8 + l + 16] ^= 1 }, .generatedWeightsMismatch, section: "weight generators")   // device seed
        assertRejects(gen(bits) { $0[16] ^= 0x80 }, .generatedWeightsMismatch, section: "weight generators")
    }

    func testTruncatedRecordsAndSignBits() throws {
        for cut in [1, 4, 8, 12, 39] {
            assertRejects(gen(stream) { $0.removeLast(cut) }, .truncated, section: "weight generators")
        }
        // sign-bit tensor with the wrong shape (dims [3, 8] for a 3 x 16 layer, byte length kept consistent)
        let d = dirLayout(sections(bits).first { $0.kind == SectionKind.tensorDirectory.rawValue }!.bytes)
        let signs = d.first { $0.name.hasSuffix(".signs") }!
        let b = rebuild(bits, kind: .tensorDirectory) { putU64(&$0, signs.dims + 8, 8); putU64(&$0, signs.length, 3) }
        assertRejects(b, .tensorShapeMismatch, section: "weight generators")
        // the right count in the wrong shape ([6, 8] for [3, 16])
        let c = rebuild(bits, kind: .tensorDirectory) { putU64(&$0, signs.dims, 6); putU64(&$0, signs.dims + 8, 8) }
        assertRejects(c, .tensorShapeMismatch, section: "weight generators")
        // sign tensor index out of range, or pointing at a tensor the graph uses
        assertRejects(gen(bits) { putU32(&$0, 24, 999) }, .badGraph, section: "weight generators")
        assertRejects(gen(bits) { putU32(&$0, 24, 0) }, .tensorShapeMismatch, section: "weight generators")
    }

    func testAbsurdCounts() {
        assertRejects(gen(stream) { putU32(&$0, 4, 0xFFFF_FFFF) }, .countTooLarge, section: "weight generators")
        assertRejects(gen(stream) { putU32(&$0, 0, 0xFFFF_FFF0) }, .countTooLarge, section: "weight generators")
        assertRejects(gen(stream) { putU32(&$0, 8, 5) }, .badGraph, section: "weight generators")   // layer 5 of 1
        assertRejects(gen(stream) { putU32(&$0, 4, 2); $0 += Array($0[8..<40]) }, .badGraph, section: "weight generators")  // layer twice
        assertRejects(gen(stream) { $0 += [0, 0, 0, 0] }, .badGraph, section: "weight generators")  // unread bytes
    }

    /// Weights stored once: a generated layer must not also have a weights tensor; a layer with
    /// neither is refused; a generated layer needs its mask.
    func testWeightsStoredExactlyOnce() throws {
        // the generator section with no record: the graph's crossbar has no weights
        assertRejects(gen(stream) { $0 = [0, 0, 0, 0, 0, 0, 0, 0] }, .badGraph, section: "graph")
        // a generator record for a layer that keeps explicit codes
        let e = try explicit(ModelSamples.generated(smallBundle(), .signStream, seed: 1)).encode()
        var s = sections(e)
        let genPayload = sections(stream).first { $0.kind == SectionKind.weightGenerators.rawValue }!
        s.insert((kind: SectionKind.weightGenerators.rawValue, flags: 1, bytes: genPayload.bytes), at: s.count - 1)
        assertRejects(Container.assembleRaw(s, minor: 1), .badGraph, section: "weight generators")
    }

    func testEmbeddedProfileMustMatchTheTargetHashAndParse() {
        // flip a byte of the profile JSON: its SHA-256 no longer matches target.sha256
        assertRejects(gen(device) { $0[20] ^= 0x01 }, .badGenerator, section: "weight generators")
        // no profile at all
        let l = Int(loadU32(sections(device).first { $0.kind == SectionKind.weightGenerators.rawValue }!.bytes, 0))
        assertRejects(gen(device) { $0.removeSubrange(4..<(4 + l)); putU32(&$0, 0, 0) }, .badGenerator, section: "weight generators")
    }

    /// A 1.0 reader refuses a 1.1 file with generated weights (the section is flagged required);
    /// files without generators are 1.0 files, byte for byte.
    func testOlderFilesStayOneZero() throws {
        let b = try smallBundle().encode()
        XCTAssertEqual(try Container.parse(b).minor, 0)
        XCTAssertNil(try Container.parse(b).section(.weightGenerators))
    }

    // MARK: placement overlap and coverage

    /// smallBundle: one crossbar of 3 outputs x 16 inputs, one tile on array 0 (16 x 128).
    func placementPayload(_ tiles: [[UInt32]], arrays: UInt32 = 2) -> [UInt8] {
        var w = ByteWriter()
        w.u32(16); w.u32(128); w.u32(arrays); w.u32(UInt32(tiles.count))
        for t in tiles { for v in t { w.u32(v) } }
        return w.bytes
    }
    // tile fields: layer, array, rowOffset, rows, inputOffset, colOffset, outputOffset, outputs

    func testSplitPlacementIsAccepted() throws {
        let b = rebuild(good, kind: .placement) { $0 = placementPayload([[0, 0, 0, 16, 0, 0, 0, 2], [0, 1, 0, 16, 0, 0, 2, 1]]) }
        XCTAssertEqual(try ModelBundle.decode(b).metadata.placement?.tiles.count, 2)
        let c = rebuild(good, kind: .placement) { $0 = placementPayload([[0, 0, 0, 16, 0, 0, 0, 2], [0, 0, 0, 16, 0, 4, 2, 1]]) }
        XCTAssertNoThrow(try ModelBundle.decode(c), "adjacent tiles on one array")
    }

    func testOverlappingTilesOnAnArrayAreRefused() {
        // outputs 0..<2 at columns 0..<4, output 2 at columns 2..<4 of the same array
        let b = rebuild(good, kind: .placement) { $0 = placementPayload([[0, 0, 0, 16, 0, 0, 0, 2], [0, 0, 0, 16, 0, 2, 2, 1]]) }
        assertRejects(b, .badPlacement, section: "placement")
        // different rows of the same cells: rows 0..<16 and 8..<16 overlap (second tile: 8 rows at row 8)
        let c = rebuild(good, kind: .placement) {
            $0 = placementPayload([[0, 0, 0, 8, 0, 0, 0, 3], [0, 0, 4, 8, 8, 2, 0, 3]])
        }
        assertRejects(c, .badPlacement, section: "placement")
    }

    func testTwoTilesHoldingTheSameWeightsAreRefused() {
        let b = rebuild(good, kind: .placement) { $0 = placementPayload([[0, 0, 0, 16, 0, 0, 0, 3], [0, 1, 0, 16, 0, 0, 2, 1]]) }
        assertRejects(b, .badPlacement, section: "placement")
    }

    func testPlacementThatDoesNotCoverEveryWeightIsRefused() {
        let b = rebuild(good, kind: .placement) { $0 = placementPayload([[0, 0, 0, 16, 0, 0, 0, 2]]) }
        assertRejects(b, .badPlacement, section: "placement")
        let c = rebuild(good, kind: .placement) { $0 = placementPayload([[0, 0, 0, 15, 0, 0, 0, 3]]) }
        assertRejects(c, .badPlacement, section: "placement")
    }

    func testOverlapSweepAgreesWithPairwiseTests() {
        var rng = SampleRNG(seed: 99)
        for _ in 0..<400 {
            let n = rng.int(1...12)
            let rects = (0..<n).map { _ -> (Int, Int, Int, Int) in
                let r = rng.int(0...20), c = rng.int(0...20)
                return (r, r + rng.int(1...6), c, c + rng.int(1...6))
            }
            var pair = false
            for i in 0..<n { for j in (i + 1)..<max(i + 1, n) where rects[i].0 < rects[j].1 && rects[j].0 < rects[i].1 && rects[i].2 < rects[j].3 && rects[j].2 < rects[i].3 { pair = true } }
            let found = PlacementCodec.firstOverlap(rects)
            XCTAssertEqual(found != nil, pair, "\(rects)")
            if let (i, j) = found {
                XCTAssert(rects[i].0 < rects[j].1 && rects[j].0 < rects[i].1 && rects[i].2 < rects[j].3 && rects[j].2 < rects[i].3)
            }
        }
    }

    let good = smallFile()

    // MARK: decoded-memory budget

    func testBudgetIsThirtyTwoTimesTheFileSizePlusOneMiB() {
        XCTAssertEqual(DecodeBudget(fileLength: 1000).limit, 32_000 + 1_048_576)
        XCTAssertEqual(DecodeBudget(fileLength: 1000, factor: 8).limit, 8_000 + 1_048_576)
    }

    /// Metadata of 40 arrays of 65,536 bools: 2.6 MB on disk, a MetadataValue per bool in memory
    /// (~24x): accepted by the default budget, refused before the arrays are allocated by a
    /// budget of 8x the file — the check runs before allocation and names the budget.
    func testTheBudgetIsCheckedBeforeAllocating() throws {
        var items = smallMetadataItems()
        for k in 0..<40 { items.append(("user.b\(k < 10 ? "0" : "")\(k)", .array([MetadataValue](repeating: .bool(true), count: 65_536)))) }
        items.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        let meta = try metadataPayload(items)
        let b = rebuild(good, kind: .metadata) { $0 = meta }
        XCTAssertGreaterThan(MemoryLayout<MetadataValue>.stride, 8)
        XCTAssertNoThrow(try ModelBundle.decode(b))
        XCTAssertThrowsError(try ModelBundle.decode(b, name: "t", memoryFactor: 8)) { e in
            guard let e = e as? ModelFileError else { return XCTFail("\(e)") }
            XCTAssertEqual(e.kind, .countTooLarge)
            XCTAssertEqual(e.section, "metadata")
            XCTAssert(e.message.contains("budget"), e.message)
        }
    }

    /// Real files are far inside the budget: the generated Fashion-MNIST CNN (regenerating its
    /// 62,272 weights) decodes with a budget of 6x its size (+ 1 MiB).
    func testGeneratedFashionCNNFitsTheBudget() throws {
        for kind in SampleGenerator.allCases {
            let b = try ModelSamples.generated(ModelSamples.fashionCNN(seed: 3), kind, seed: 1).encode()
            XCTAssertNoThrow(try ModelBundle.decode(b, name: "t", memoryFactor: 6), "\(kind)")
        }
    }
}
