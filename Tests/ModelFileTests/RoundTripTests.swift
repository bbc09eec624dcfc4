import XCTest
import Foundation
@testable import ModelFile
import Kernels

final class RoundTripTests: XCTestCase {
    func testRandomBundlesRoundTripAndEncodeDeterministically() throws {
        for seed in 0..<60 as Range<UInt64> {
            let m = ModelSamples.random(seed: seed)
            let a = try m.encode(), b = try m.encode()
            XCTAssertEqual(a, b, "seed \(seed): two encodings differ")
            let d = try ModelBundle.decode(a, name: "seed \(seed)")
            XCTAssertEqual(d, m, "seed \(seed)")
            XCTAssertEqual(try d.encode(), a, "seed \(seed): re-encoding differs")
            XCTAssertEqual(a.count % 64, 0)
        }
    }

    func testDifferentBundlesGiveDifferentBytes() throws {
        XCTAssertNotEqual(try ModelSamples.random(seed: 1).encode(), try ModelSamples.random(seed: 2).encode())
    }

    func testMetadataKeysSortedRegardlessOfInsertionOrder() throws {
        var m = smallBundle()
        m.metadata.extra = [:]
        for k in ["z.k", "a.k", "m.k", "b.b"] { m.metadata.extra[k] = .string(k) }
        let a = try m.encode()
        var m2 = smallBundle()
        m2.metadata.extra = [:]
        for k in ["b.b", "m.k", "z.k", "a.k"] { m2.metadata.extra[k] = .string(k) }
        XCTAssertEqual(a, try m2.encode())
        // Keys appear in ascending byte order in the payload.
        let c = try Container.parse(a)
        var r = ByteReader(a, from: c.section(.metadata)!.offset, to: c.section(.metadata)!.offset + c.section(.metadata)!.length, section: "metadata")
        let n = Int(try r.u32("n"))
        var keys: [String] = []
        for _ in 0..<n { keys.append(try r.string("k")); _ = try MetadataCodec.decodeValue(&r, key: "") }
        XCTAssertEqual(keys, MetadataCodec.sortedKeys(keys))
        XCTAssertEqual(Set(keys).count, keys.count)
    }

    func testWriteReadFileAtomically() throws {
        let dir = NSTemporaryDirectory() + "mf-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.rram"
        let m = ModelSamples.random(seed: 42)
        try m.write(to: path)
        try m.write(to: path)   // overwrite via rename
        XCTAssertEqual(try ModelBundle.read(path: path), m)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["m.rram"], "temporary file left behind")
        XCTAssertThrowsError(try ModelBundle.read(path: dir + "/missing")) { e in
            XCTAssertEqual((e as? ModelFileError)?.kind, .io)
        }
    }

    func testCreatedTimestampOnlyWhenGiven() throws {
        var m = smallBundle()
        m.metadata.provenance.created = nil
        let d = try ModelBundle.decode(try m.encode())
        XCTAssertNil(d.metadata.provenance.created)
        XCTAssertFalse(String(decoding: try m.encode(), as: UTF8.self).contains("provenance.created"))
    }

    func testWriterRefusesInconsistentBundles() {
        var m = smallBundle()
        m.metadata.programming.maskFlips.append(1)
        XCTAssertThrowsError(try m.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
        var m2 = smallBundle()
        m2.metadata.extra["model.task"] = .string("x")
        XCTAssertThrowsError(try m2.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
        var m3 = smallBundle()   // a program Kernels refuses is never written
        if case .crossbar(var c) = m3.program.nodes[2].op { c.tiles[0].bits = 40; m3.program.nodes[2].op = .crossbar(c) } else { XCTFail("layout") }
        XCTAssertThrowsError(try m3.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .invalidProgram) }
        var m4 = smallBundle()
        m4.metadata.conductances = [ConductanceCodes(planes: 3, codes: [UInt8](repeating: 0, count: 3 * 48))]
        XCTAssertThrowsError(try m4.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
        var m5 = smallBundle()
        m5.metadata.programming.cellsToReset = -1
        XCTAssertThrowsError(try m5.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
    }

    /// Fashion-MNIST CNN (28x28 -> conv3 64 -> pool2 -> conv3 16 -> pool2 -> 400 -> 128 -> 10):
    /// 576 + 9,216 + 51,200 + 1,280 = 62,272 weights. Default file = int8 effective codes + packed masks.
    func testFashionCNNSize() throws {
        let m = ModelSamples.fashionCNN(seed: 3)
        let weights = m.program.nodes.reduce(0) { n, node in
            if case .crossbar(let c) = node.op { return n + c.weights.count } else { return n }
        }
        XCTAssertEqual(weights, 62_272)
        let bytes = try m.encode()
        let masks = m.metadata.masks.compactMap { $0 }.reduce(0) { $0 + $1.bytes.count }
        XCTAssertEqual(masks, 7_784)
        // codes + masks + small overhead (metadata, graph, per-channel params, alignment)
        XCTAssertLessThan(bytes.count, 62_272 + 7_784 + 8_000, "file is \(bytes.count) bytes")
        print("fashion CNN model file: \(bytes.count) bytes (codes 62272 + masks \(masks))")
        let withG = try ModelSamples.fashionCNN(seed: 3, conductance: true).encode()
        XCTAssertGreaterThan(withG.count, bytes.count + 2 * 62_272 - 1)
        print("fashion CNN with differential conductance codes: \(withG.count) bytes")
    }
}
