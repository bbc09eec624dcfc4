import XCTest
@testable import ModelFile
import Kernels

/// A fixed small valid bundle: input (1,4,4) -> inputQuant -> flatten -> crossbar 3x16, with placement.
/// Graph layout (docs/FORMAT.md): node 0 at 84, node 1 at 116, node 2 at 128; crossbar tile 0 at 200.
func smallBundle() -> ModelBundle {
    ModelSamples.network(input: TensorShape(c: 1, h: 4, w: 4), convs: [], fcs: [3], arrayRows: 16, placement: true, seed: 7)
}

func smallFile() -> [UInt8] { try! smallBundle().encode() }

/// Sections of a (valid) file as (kind, flags, payload).
func sections(_ b: [UInt8]) -> [(kind: UInt32, flags: UInt32, bytes: [UInt8])] {
    let c = try! Container.parse(b)
    return c.sections.map { (kind: $0.kind, flags: $0.flags, bytes: Array(b[$0.offset..<($0.offset + $0.length)])) }
}

/// Rebuild after editing one section's payload (all CRCs correct).
func rebuild(_ b: [UInt8], kind: SectionKind, _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
    var s = sections(b)
    let i = s.firstIndex { $0.kind == kind.rawValue }!
    edit(&s[i].bytes)
    let c = try! Container.parse(b)
    return Container.assembleRaw(s, major: c.major, minor: c.minor)
}

func putU32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) { ByteWriter.patchU32(&b, at: o, v) }
func putU64(_ b: inout [UInt8], _ o: Int, _ v: UInt64) { ByteWriter.patchU64(&b, at: o, v) }

/// Field offsets of each tensor directory entry inside the directory payload.
struct DirEntryLayout { var start: Int; var dtype: Int; var rank: Int; var dims: Int; var offset: Int; var length: Int; var name: String }
func dirLayout(_ p: [UInt8]) -> [DirEntryLayout] {
    var o = 4
    var out: [DirEntryLayout] = []
    for _ in 0..<Int(loadU32(p, 0)) {
        let n = Int(loadU32(p, o))
        let name = String(decoding: p[(o + 4)..<(o + 4 + n)], as: UTF8.self)
        let d = o + 4 + n
        let rank = Int(p[d + 1])
        out.append(DirEntryLayout(start: o, dtype: d, rank: d + 1, dims: d + 4, offset: d + 4 + 8 * rank, length: d + 12 + 8 * rank, name: name))
        o = d + 20 + 8 * rank
    }
    return out
}

/// Asserts decoding fails with `kind` (and optionally in `section`).
func assertRejects(_ b: [UInt8], _ kind: ModelFileError.Kind, section: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try ModelBundle.decode(b, name: "test")
        XCTFail("decoded a corrupt file; expected \(kind)", file: file, line: line)
    } catch let e as ModelFileError {
        XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
        if let section { XCTAssertEqual(e.section, section, "\(e)", file: file, line: line) }
        XCTAssert(e.offset >= 0 && e.offset <= max(b.count, 1), "offset \(e.offset) outside the file", file: file, line: line)
    } catch {
        XCTFail("untyped error \(error)", file: file, line: line)
    }
}

/// Metadata payload from (key, tag, value bytes) triples, in the given order.
func metadataPayload(_ items: [(String, MetadataValue)]) throws -> [UInt8] {
    var w = ByteWriter()
    w.u32(UInt32(items.count))
    for (k, v) in items { w.string(k); try MetadataCodec.encodeValue(v, into: &w, key: k) }
    return w.bytes
}

/// The metadata of the small file as ordered items.
func smallMetadataItems() -> [(String, MetadataValue)] {
    let b = smallFile()
    let c = try! Container.parse(b)
    let m = try! MetadataCodec.decode(b, c.section(.metadata)!)
    return MetadataCodec.sortedKeys(m.keys).map { ($0, m[$0]!) }
}
