import XCTest
@testable import ModelFile
import Kernels
import DataIO

/// Crafted hostile files, each rejected with its expected error kind.
final class CorruptFileTests: XCTestCase {
    let good = smallFile()

    func testSmallFileIsValidAndLayoutIsAsDocumented() throws {
        let m = try ModelBundle.decode(good)
        XCTAssertEqual(m, smallBundle())
        let g = sections(good).first { $0.kind == SectionKind.graph.rawValue }!.bytes
        XCTAssertEqual(g[84], OpKind.inputQuant.rawValue)
        XCTAssertEqual(g[116], OpKind.flatten.rawValue)
        XCTAssertEqual(g[128], OpKind.crossbar.rawValue)
        XCTAssertEqual(Int(loadU32(g, 200)), 0)   // tile 0 rowStart
    }

    // 1
    func testEmptyAndTinyFiles() {
        assertRejects([], .truncated, section: "header")
        assertRejects(Array("RRAM".utf8), .truncated, section: "header")
        assertRejects(Array(good[0..<40]), .truncated, section: "header")
    }

    // 2
    func testBadMagic() {
        var b = good; b[0] = UInt8(ascii: "X")
        assertRejects(b, .badMagic, section: "header")
    }

    // 3
    func testFutureMajorVersionRefused() {
        let b = Container.assembleRaw(sections(good), major: 2, minor: 0)
        assertRejects(b, .unsupportedVersion, section: "header")
    }

    // 4
    func testNewerMinorWithUnknownOptionalSectionAccepted() throws {
        var s = sections(good)
        s.insert((kind: 77, flags: 0, bytes: Array("future optional data".utf8)), at: 2)
        let b = Container.assembleRaw(s, major: 1, minor: 9)
        let m = try ModelBundle.decode(b)
        XCTAssertEqual(m, smallBundle())
        XCTAssertEqual(try Container.parse(b).minor, 9)
    }

    // 5
    func testUnknownRequiredSectionRefused() {
        var s = sections(good)
        s.append((kind: 77, flags: FormatConstants.flagRequired, bytes: [1, 2, 3]))
        assertRejects(Container.assembleRaw(s), .unsupportedSection, section: "section table")
    }

    // 6
    func testTruncatedAtEverySectionBoundary() throws {
        let c = try Container.parse(good)
        var cuts = [64, 64 + 32 * c.sections.count - 1]
        for s in c.sections { cuts += [s.offset, s.offset + 1, s.offset + s.length - 1, s.offset + s.length] }
        for cut in Set(cuts) where cut < good.count {
            assertRejects(Array(good[0..<cut]), .truncated)
        }
    }

    // 7
    func testHeaderCRCMismatch() {
        var b = good; b[40] ^= 1   // flags field, covered by the header CRC
        assertRejects(b, .checksumMismatch, section: "header")
    }

    // 8
    func testSectionTableCRCMismatch() {
        var b = good; b[64 + 28] ^= 0x10   // reserved field of entry 0
        assertRejects(b, .checksumMismatch, section: "section table")
    }

    // 9
    func testSectionCRCMismatchNamesTheSection() throws {
        let c = try Container.parse(good)
        for s in c.sections where s.length > 0 {
            var b = good; b[s.offset + s.length / 2] ^= 0x40
            assertRejects(b, .checksumMismatch, section: s.name)
        }
    }

    // 10
    func testOverlappingSections() {
        var b = good
        let first = Int(loadU64(b, 64 + 8))
        putU64(&b, 64 + 32 + 8, UInt64(first))   // graph starts where metadata starts
        Container.recomputeChecksums(&b)
        assertRejects(b, .badSectionTable, section: "section table")
    }

    // 11
    func testSectionPastEndOfFile() {
        var b = good
        putU64(&b, 64 + 32 + 16, UInt64(b.count))   // graph length = file size
        Container.recomputeChecksums(&b)
        assertRejects(b, .badSectionTable)
        var c = good
        putU64(&c, 64 + 8, UInt64.max & ~63)        // offset near 2^64, aligned
        Container.recomputeChecksums(&c)
        assertRejects(c, .badSectionTable)
    }

    // 12
    func testMisalignedSection() {
        var b = good
        putU64(&b, 64 + 32 + 8, loadU64(b, 64 + 32 + 8) + 4)
        Container.recomputeChecksums(&b)
        assertRejects(b, .badSectionTable, section: "section table")
    }

    // 13
    func testMissingRequiredSection() {
        let s = sections(good).filter { $0.kind != SectionKind.graph.rawValue }
        assertRejects(Container.assembleRaw(s), .missingSection)
    }

    // 14
    func testDuplicateSection() {
        var s = sections(good)
        s.append(s[0])
        assertRejects(Container.assembleRaw(s), .badSectionTable)
    }

    // 15
    func testSectionCountLargerThanFile() {
        var b = good
        putU32(&b, 32, 0xFFFF_FFFF)
        Container.recomputeChecksums(&b)
        assertRejects(b, .countTooLarge, section: "header")
    }

    // 16
    func testFileLengthDisagrees() {
        var b = good + [UInt8](repeating: 0, count: 64)
        assertRejects(b, .badHeader, section: "header")   // header says shorter than the file
        b = good
        putU64(&b, 16, UInt64(good.count + 64))
        Container.recomputeChecksums(&b)
        assertRejects(b, .truncated, section: "header")
    }

    // 17
    func testNonZeroPadding() {
        var b = good
        let metaEnd = Int(loadU64(b, 64 + 8) + loadU64(b, 64 + 16))
        XCTAssert(metaEnd % 64 != 0, "test needs padding after the metadata")
        b[metaEnd] = 1
        assertRejects(b, .badSectionTable, section: "file")
    }

    // 18
    func testTensorDimsProductOverflows() {
        let b = rebuild(good, kind: .tensorDirectory) { p in
            let e = dirLayout(p)[0]
            // rank 1 -> reinterpret: set rank to 4 would shift layout; instead make dim huge.
            putU64(&p, e.dims, 1 << 40)
        }
        assertRejects(b, .countTooLarge, section: "tensor directory")
        // A rank-4 tensor whose dims are each within limits but whose product overflows Int.
        var w = ByteWriter()
        w.u32(1); w.string("big"); w.u8(TensorDType.i64.rawValue); w.u8(4); w.u16(0)
        for _ in 0..<4 { w.u64(1 << 24) }
        w.u64(0); w.u64(0)
        let c = rebuild(good, kind: .tensorDirectory) { $0 = w.bytes }
        assertRejects(c, .sizeOverflow, section: "tensor directory")
    }

    // 19
    func testTensorCountLargerThanBytesLeft() {
        let b = rebuild(good, kind: .tensorDirectory) { putU32(&$0, 0, 0x7FFF_FFFF) }
        assertRejects(b, .countTooLarge, section: "tensor directory")
    }

    // 20
    func testMetadataCountLargerThanBytesLeft() {
        let b = rebuild(good, kind: .metadata) { putU32(&$0, 0, 0xFFFF_FFFF) }
        assertRejects(b, .countTooLarge, section: "metadata")
    }

    // 21
    func testMetadataArrayCountLargerThanBytesLeft() throws {
        var items = smallMetadataItems()
        let i = items.firstIndex { $0.0 == "programming.mask_flips" }!
        items[i].1 = .array([.i64(1)])
        var p = try metadataPayload(items)
        // find the array's count field: key bytes, then tag(4) elemtype(4) count(8)
        let key = Array("programming.mask_flips".utf8)
        let at = (0..<(p.count - key.count)).first { Array(p[$0..<($0 + key.count)]) == key }! + key.count + 8
        putU64(&p, at, 1 << 60)
        assertRejects(rebuild(good, kind: .metadata) { $0 = p }, .countTooLarge, section: "metadata")
    }

    // 22
    func testNegativeCountInMetadata() throws {
        var items = smallMetadataItems()
        let i = items.firstIndex { $0.0 == "programming.cells_to_reset" }!
        items[i].1 = .i64(-1)
        assertRejects(rebuild(good, kind: .metadata) { $0 = try! metadataPayload(items) }, .badMetadata, section: "metadata")
        var items2 = smallMetadataItems()
        let j = items2.firstIndex { $0.0 == "programming.mask_flips" }!
        items2[j].1 = .array([.i64(-5)])
        assertRejects(rebuild(good, kind: .metadata) { $0 = try! metadataPayload(items2) }, .badMetadata, section: "metadata")
    }

    // 23
    func testDuplicateMetadataKey() throws {
        var items = smallMetadataItems()
        items.insert(items[0], at: 1)
        assertRejects(rebuild(good, kind: .metadata) { $0 = try! metadataPayload(items) }, .badMetadataOrder, section: "metadata")
    }

    // 24
    func testUnsortedMetadataKeys() throws {
        var items = smallMetadataItems()
        items.swapAt(0, items.count - 1)
        assertRejects(rebuild(good, kind: .metadata) { $0 = try! metadataPayload(items) }, .badMetadataOrder, section: "metadata")
    }

    // 25
    func testStringNotUTF8() throws {
        var items = smallMetadataItems()
        let i = items.firstIndex { $0.0 == "model.task" }!
        items[i].1 = .string("ABCD")
        var p = try metadataPayload(items)
        let at = (0..<(p.count - 4)).first { Array(p[$0..<($0 + 4)]) == Array("ABCD".utf8) }!
        p[at + 1] = 0xC3; p[at + 2] = 0x28   // invalid 2-byte sequence
        assertRejects(rebuild(good, kind: .metadata) { $0 = p }, .badString, section: "metadata")
        // and a tensor name with a lone continuation byte
        let b = rebuild(good, kind: .tensorDirectory) { p in p[dirLayout(p)[0].start + 4] = 0x80 }
        assertRejects(b, .badString, section: "tensor directory")
    }

    // 26
    func testUnknownMetadataTypeTag() throws {
        var p = try metadataPayload(smallMetadataItems())
        let firstKeyLen = Int(loadU32(p, 4))
        putU32(&p, 8 + firstKeyLen, 99)
        assertRejects(rebuild(good, kind: .metadata) { $0 = p }, .badEnum, section: "metadata")
    }

    // 27
    func testMissingOrMistypedRequiredMetadata() throws {
        let items = smallMetadataItems().filter { $0.0 != "model.task" }
        assertRejects(rebuild(good, kind: .metadata) { $0 = try! metadataPayload(items) }, .badMetadata)
        var items2 = smallMetadataItems()
        let i = items2.firstIndex { $0.0 == "provenance.seed" }!
        items2[i].1 = .string("42")
        assertRejects(rebuild(good, kind: .metadata) { $0 = try! metadataPayload(items2) }, .badMetadata)
    }

    // 28
    func testUnknownDType() {
        let b = rebuild(good, kind: .tensorDirectory) { p in p[dirLayout(p)[0].dtype] = 200 }
        assertRejects(b, .badEnum, section: "tensor directory")
    }

    // 29
    func testUnknownOpKind() {
        let b = rebuild(good, kind: .graph) { $0[116] = 42 }
        assertRejects(b, .badEnum, section: "graph")
    }

    // 30
    func testUnknownRoundingRule() {
        assertRejects(rebuild(good, kind: .graph) { $0[84 + 13] = 9 }, .badEnum, section: "graph")   // inputQuant
        assertRejects(rebuild(good, kind: .graph) { $0[216] = 5 }, .badEnum, section: "graph")       // ADC tile
    }

    // 31
    func testUnknownElementKind() {
        assertRejects(rebuild(good, kind: .graph) { $0[20 + 12] = 3 }, .badEnum, section: "graph")
    }

    // 32
    func testMisalignedTensor() {
        let b = rebuild(good, kind: .tensorDirectory) { p in
            let e = dirLayout(p)[1]
            putU64(&p, e.offset, loadU64(p, e.offset) + 8)
        }
        assertRejects(b, .badTensor, section: "tensor directory")
    }

    // 33
    func testTensorByteLengthWrong() {
        let b = rebuild(good, kind: .tensorDirectory) { p in
            let e = dirLayout(p)[0]
            putU64(&p, e.length, loadU64(p, e.length) + 1)
        }
        assertRejects(b, .badTensor, section: "tensor directory")
    }

    // 34
    func testTensorOutsideDataSection() {
        let b = rebuild(good, kind: .tensorDirectory) { p in
            let e = dirLayout(p).last!
            putU64(&p, e.offset, 1 << 40)
        }
        assertRejects(b, .badTensor, section: "tensor directory")
    }

    // 35
    func testOverlappingTensors() {
        let b = rebuild(good, kind: .tensorDirectory) { p in
            let l = dirLayout(p)
            // n0.shift (i32[1]) placed at n0.multiplier's offset
            putU64(&p, l[1].offset, loadU64(p, l[0].offset))
        }
        assertRejects(b, .badTensor, section: "tensor directory")
    }

    // 36
    func testDuplicateTensorName() {
        // Generic: build a directory with two entries of the same name.
        var w = ByteWriter()
        w.u32(2)
        for k in 0..<2 { w.string("same"); w.u8(TensorDType.u8.rawValue); w.u8(1); w.u16(0); w.u64(1); w.u64(UInt64(64 * k)); w.u64(1) }
        assertRejects(rebuild(good, kind: .tensorDirectory) { $0 = w.bytes }, .badTensor, section: "tensor directory")
    }

    // 37
    func testWeightTensorShapeInconsistentWithGraph() {
        // crossbar outChannels 3 -> 4 (geometry field 1): weights tensor is [3,16]
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 140 + 4, 4) }, .tensorShapeMismatch, section: "graph")
        // per-channel multiplier referenced where the weights must be (dtype mismatch)
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 184, 0) }, .badGraph, section: "graph")   // tensor 0 already used
        assertRejects(rebuild(good, kind: .graph) { p in
            let wIdx = loadU32(p, 184)
            putU32(&p, 184, loadU32(p, 84 + 20))     // swap weights <-> node0 multiplier
            putU32(&p, 84 + 20, wIdx)
        }, .tensorShapeMismatch, section: "graph")
    }

    // 38
    func testTensorReferencedTwiceOrDangling() {
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 84 + 20, 7777) }, .badGraph, section: "graph")
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 84 + 4, 99) }, .badGraph, section: "graph")   // node output index
    }

    // 39
    func testAbsurdGraphCounts() {
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 12, 0xFFFF_FFFF) }, .countTooLarge, section: "graph")  // tensors
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 16, 0x8000_0000) }, .countTooLarge, section: "graph")  // nodes
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 196, 0x7FFF_FFFF) }, .countTooLarge, section: "graph") // tiles
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 20, 1 << 30) }, .countTooLarge, section: "graph")      // dim
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 140, 1 << 25) }, .countTooLarge, section: "graph")     // inChannels
    }

    // 40
    func testTileOutsideFanIn() {
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 204, 17) }, .badGraph, section: "graph")
    }

    // 41
    func testPlacementOutsideArrays() {
        // placement: arrayRows, arrayCols, arrayCount, tileCount, then tiles of 8 u32
        assertRejects(rebuild(good, kind: .placement) { putU32(&$0, 16 + 4, 1000) }, .badPlacement, section: "placement")  // array index
        assertRejects(rebuild(good, kind: .placement) { putU32(&$0, 16 + 8, 10) }, .badPlacement, section: "placement")    // rowOffset+rows > 16
        assertRejects(rebuild(good, kind: .placement) { putU32(&$0, 16 + 20, 127) }, .badPlacement, section: "placement")  // colOffset+outputs > 128
        // two columns per output (G+, G-): 65 outputs at column 0 need 130 > 128 columns
        assertRejects(rebuild(good, kind: .placement) { putU32(&$0, 16 + 28, 65) }, .badPlacement, section: "placement")
        assertRejects(rebuild(good, kind: .placement) { putU32(&$0, 16, 5) }, .badPlacement, section: "placement")         // layer
        assertRejects(rebuild(good, kind: .placement) { putU32(&$0, 12, 0xFFFF_FFFF) }, .countTooLarge, section: "placement")
    }

    // 42
    func testMaskBitsPastCount() throws {
        // 3 x 16 = 48 bits = 6 bytes exactly; use a model whose mask has a partial last byte.
        let m = ModelSamples.network(input: TensorShape(c: 1, h: 1, w: 5), convs: [], fcs: [3], arrayRows: 16, seed: 9)
        let f = try m.encode()
        _ = try ModelBundle.decode(f)
        let c = try Container.parse(f)
        let dir = Array(f[c.section(.tensorDirectory)!.offset..<(c.section(.tensorDirectory)!.offset + c.section(.tensorDirectory)!.length)])
        let e = dirLayout(dir).first { $0.name.hasSuffix(".mask") }!
        let data = c.section(.tensorData)!.offset
        let maskByte = data + Int(loadU64(dir, e.offset)) + 1   // 15 bits -> byte 1, bit 7 is padding
        let b = rebuild(f, kind: .tensorData) { $0[maskByte - data] |= 0x80 }
        assertRejects(b, .badTensor)
    }

    // 43
    func testReservedFieldsAndTrailingBytesInSections() {
        assertRejects(rebuild(good, kind: .graph) { $0 += [0, 0, 0, 0] }, .badGraph, section: "graph")
        assertRejects(rebuild(good, kind: .metadata) { $0 += [0] }, .badMetadata, section: "metadata")
        assertRejects(rebuild(good, kind: .graph) { $0[84 + 2] = 1 }, .badGraph, section: "graph")
        assertRejects(rebuild(good, kind: .tensorDirectory) { p in p[dirLayout(p)[0].dtype + 2] = 1 }, .badTensor, section: "tensor directory")
    }

    // 44
    func testBadBoolAndNestedArray() throws {
        var items = smallMetadataItems()
        items.append(("zz.flag", .bool(true)))
        var p = try metadataPayload(items)
        p[p.count - 1] = 2
        assertRejects(rebuild(good, kind: .metadata) { $0 = p }, .badEnum, section: "metadata")
        var items2 = smallMetadataItems()
        items2.append(("zz.arr", .array([.u32(1)])))
        var q = try metadataPayload(items2)
        putU32(&q, q.count - 16, MetadataValue.Tag.array.rawValue)   // element type := array
        assertRejects(rebuild(good, kind: .metadata) { $0 = q }, .badEnum, section: "metadata")
    }

    // 45
    func testProgramFailingKernelsValidation() {
        assertRejects(rebuild(good, kind: .graph) { $0[217] = 40 }, .invalidProgram, section: "graph")        // ADC bits 40
        assertRejects(rebuild(good, kind: .graph) { $0[84 + 12] = 0 }, .invalidProgram, section: "graph")     // inputQuant outBits 0
        assertRejects(rebuild(good, kind: .graph) { putU32(&$0, 128 + 4, 0) }, .invalidProgram, section: "graph") // crossbar output := input tensor
    }

    func testErrorsNameSectionAndOffset() {
        var b = good
        b[0] = 0
        do { _ = try ModelBundle.decode(b, name: "x.rram"); XCTFail() } catch let e as ModelFileError {
            XCTAssertEqual(e.offset, 0)
            XCTAssertEqual(e.file, "x.rram")
            XCTAssert(e.description.hasPrefix("x.rram: badMagic"), e.description)
            XCTAssert(e.description.contains("header") && e.description.contains("byte 0"), e.description)
        } catch { XCTFail("\(error)") }
        let g = rebuild(good, kind: .graph) { $0[116] = 42 }
        let graphOffset = try! Container.parse(g).section(.graph)!.offset
        do { _ = try ModelBundle.decode(g); XCTFail() } catch let e as ModelFileError {
            XCTAssertEqual(e.offset, graphOffset + 116)
        } catch { XCTFail("\(error)") }
    }
}
