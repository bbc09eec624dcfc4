import XCTest
@testable import ModelFile
import Kernels
import DataIO
import FixedPoint

/// The layer-graph records (format 1.2: add 6, concat 7, upsampleBilinear 8, globalAvgPool 10;
/// docs/FORMAT.md section 6): round trips, the minor version, and crafted graphs the reader must
/// refuse with the node named (CRCs recomputed, so the checks behind them are reached).
final class GraphRecordTests: XCTestCase {
    func testRoundTripsAndMinorVersion() throws {
        for b in [ModelSamples.graph(seed: 1, unet: true), ModelSamples.graph(seed: 2, unet: false, conductance: true),
                  ModelSamples.graph(seed: 3, unet: true, conductance: true)] {
            let bytes = try b.encode()
            let d = try ModelBundle.decode(bytes)
            XCTAssertEqual(d, b)
            XCTAssertEqual(try d.encode(), bytes, "encode is deterministic")
            XCTAssertEqual(try Container.parse(bytes).minor, 2, "a file with layer-graph ops is 1.2")
        }
        // files without them keep their minor (and their bytes)
        XCTAssertEqual(try Container.parse(try ModelSamples.fashionCNN(seed: 1).encode()).minor, 0)
        XCTAssertEqual(try Container.parse(try ModelSamples.crnn(seed: 1).encode()).minor, 0)
    }

    func testOlderMinorWithGraphOpsRefused() throws {
        let bytes = try ModelSamples.graph(seed: 4, unet: false).encode()
        let relabelled = Container.assembleRaw(sections(bytes), major: 1, minor: 1)
        assertRejects(relabelled, .badEnum, section: "graph")
        do { _ = try ModelBundle.decode(relabelled) } catch let e as ModelFileError {
            XCTAssert(e.message.contains("needs format 1.2"), e.message)
        }
    }

    /// pixels (2,3,3) -> inputQuant t1 -> maxPool 2x1 t2 (2,2,3) -> crossbar 1x1 t3 (sums) ->
    /// add(t3, t1) t4 -> concat(t1, t4) t5 (4,3,3) -> upsample x2 t6 -> globalAvgPool t7.
    static func program() -> Program {
        let s = TensorShape(c: 2, h: 3, w: 3)
        let q = AffineQuantParams(channels: 2, multiplier: 1, shift: 4, offset: 0, outBits: 4, rounding: .floor)
        let x = CrossbarParams(inChannels: 2, outChannels: 2, kernelH: 1, kernelW: 1, weightBits: 4, weights: [1, -1, 2, 3],
                               tiles: CrossbarParams.uniformTiles(fanIn: 2, arrayRows: 8, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 8))
        let cq = AffineQuantParams(channels: 4, multiplier: 1, shift: 0, offset: 0, outBits: 4, rounding: .halfUp)
        return Program(tensors: [.code(s, bits: 8), .code(s, bits: 4), .code(TensorShape(c: 2, h: 2, w: 3), bits: 4), .sum(s), .code(s, bits: 4),
                                 .code(TensorShape(c: 4, h: 3, w: 3), bits: 4), .code(TensorShape(c: 4, h: 6, w: 6), bits: 4),
                                 .code(TensorShape(c: 4, h: 1, w: 1), bits: 4)],
                       nodes: [Node(.inputQuant(q), inputs: [0], output: 1),
                               Node(.maxPool(MaxPoolParams(kh: 2, kw: 1, sh: 1, sw: 1)), inputs: [1], output: 2),
                               Node(.crossbar(x), inputs: [1], output: 3),
                               Node(.add(AddParams(first: q, secondMultiplier: [3, -2])), inputs: [3, 1], output: 4),
                               Node(.concat(ConcatParams(quant: cq)), inputs: [1, 4], output: 5),
                               Node(.upsampleBilinear(UpsampleParams(factorH: 2, factorW: 2, rounding: .halfToEven)), inputs: [5], output: 6),
                               Node(.globalAvgPool(GlobalAvgPoolParams(rounding: .towardZero)), inputs: [6], output: 7)],
                       input: 0, output: 7, arrayRows: 8)
    }

    static func bundle() -> ModelBundle {
        let p = program()
        return ModelBundle(program: p, metadata: ModelMetadata(
            task: "graph", targetName: "t", targetHash: "h", provenance: Provenance(seed: 1, epochs: 0, dataset: "d", floatAccuracy: 0,
                                                                                      integerAccuracy: 0, toolVersion: "0"),
            programming: ProgrammingCounts(maskFlips: [0], cellsToReset: 0)))
    }

    /// Offset of each node record in the graph payload (docs/FORMAT.md section 6 record sizes).
    static func nodeOffsets(_ p: Program) -> [Int] {
        var o = 20 + 16 * p.tensors.count, out: [Int] = []
        for n in p.nodes {
            out.append(o)
            o += 8 + 4 * n.inputs.count
            switch n.op {
            case .inputQuant, .activation, .concat: o += 20
            case .add: o += 24
            case .maxPool: o += 16
            case .crossbar(let x): o += 60 + 20 * x.tiles.count
            case .upsampleBilinear, .globalAvgPool: o += 4
            case .flatten: break
            case .rnn: fatalError("not in this program")
            }
        }
        out.append(o)
        return out
    }

    func graphEdit(_ f: (inout [UInt8], [Int]) -> Void) throws -> [UInt8] {
        let good = try Self.bundle().encode()
        let offs = Self.nodeOffsets(Self.program())
        return rebuild(good, kind: .graph) { f(&$0, offs) }
    }

    func assertRefusedNamingNode(_ b: [UInt8], node: Int, _ text: String, _ kind: ModelFileError.Kind = .invalidProgram,
                                 file: StaticString = #filePath, line: UInt = #line) {
        assertRejects(b, kind, section: "graph", file: file, line: line)
        do { _ = try ModelBundle.decode(b) } catch let e as ModelFileError {
            XCTAssert(e.message.contains("node \(node)"), "'\(e.message)' does not name node \(node)", file: file, line: line)
            XCTAssert(e.message.contains(text), "'\(e.message)' does not say '\(text)'", file: file, line: line)
        } catch { XCTFail("untyped \(error)", file: file, line: line) }
    }

    func testLayoutIsAsDocumented() throws {
        let g = sections(try Self.bundle().encode()).first { $0.kind == SectionKind.graph.rawValue }!.bytes
        let offs = Self.nodeOffsets(Self.program())
        XCTAssertEqual(offs.last, g.count, "the records fill the section")
        for (k, n) in Self.program().nodes.enumerated() {
            XCTAssertEqual(g[offs[k]], n.op.kind.rawValue, "node \(k) op")
            XCTAssertEqual(Int(g[offs[k] + 1]), n.inputs.count, "node \(k) input count")
        }
        let up = offs[5] + 12
        XCTAssertEqual(Array(g[up..<(up + 4)]), [2, 2, RoundingRule.halfToEven.rawValue, 0], "upsample payload: factors, rounding, reserved")
        XCTAssertEqual(Array(g[(offs[6] + 12)..<(offs[6] + 16)]), [RoundingRule.towardZero.rawValue, 0, 0, 0], "pool payload")
    }

    func testCycleRefused() throws {
        // the add (node 3) reads its own output tensor 4
        assertRefusedNamingNode(try graphEdit { g, o in putU32(&g, o[3] + 8 + 4, 4) }, node: 3, "cycle")
    }

    func testInputProducedLaterRefused() throws {
        // the crossbar (node 2) reads tensor 5, produced by node 4
        assertRefusedNamingNode(try graphEdit { g, o in putU32(&g, o[2] + 8, 5) }, node: 2, "produced by a later node")
    }

    func testAddShapeMismatchRefused() throws {
        // the add's second input becomes the pooled (2,2,3) tensor
        assertRefusedNamingNode(try graphEdit { g, o in putU32(&g, o[3] + 8 + 4, 2) }, node: 3, "differ in shape")
    }

    func testConcatShapeMismatchRefused() throws {
        assertRefusedNamingNode(try graphEdit { g, o in putU32(&g, o[4] + 8, 2) }, node: 4, "heights and widths must agree")
    }

    func testUpsampleFactorOutOfRangeRefused() throws {
        for (field, v) in [(0, UInt8(0)), (1, UInt8(17)), (0, UInt8(255))] {
            assertRefusedNamingNode(try graphEdit { g, o in g[o[5] + 12 + field] = v }, node: 5, "not in 1...16")
        }
    }

    func testGraphRecordFieldsRefused() throws {
        // a bad rounding rule, a non-zero reserved byte, a wrong input count for add
        assertRefusedNamingNode(try graphEdit { g, o in g[o[6] + 12] = 9 }, node: 6, "rounding rule 9", .badEnum)
        assertRefusedNamingNode(try graphEdit { g, o in g[o[5] + 15] = 1 }, node: 5, "reserved", .badGraph)
        assertRefusedNamingNode(try graphEdit { g, o in g[o[6] + 13] = 1 }, node: 6, "reserved", .badGraph)
    }

    func testMutatedGraphFilesNeverTrap() throws {
        // every byte of the graph section of a U-Net and a residual net, each set to a few values, CRCs recomputed
        var outcomes: [String: Int] = [:]
        for b in [ModelSamples.graph(seed: 5, unet: true), ModelSamples.graph(seed: 6, unet: false)] {
            let good = try b.encode()
            let g = sections(good).first { $0.kind == SectionKind.graph.rawValue }!.bytes
            let p = b.program
            // the node records only (tensor descriptors are covered by the general campaigns)
            let start = 20 + 16 * p.tensors.count
            for i in stride(from: start, to: g.count, by: 3) {
                for v: UInt8 in [0, 1, 17, 0xFF] where g[i] != v {
                    let m = rebuild(good, kind: .graph) { $0[i] = v }
                    do { let d = try ModelBundle.decode(m); XCTAssertEqual(try ModelBundle.decode(try d.encode()), d); outcomes["accepted", default: 0] += 1 }
                    catch let e as ModelFileError { outcomes[e.kind.rawValue, default: 0] += 1 }
                }
            }
        }
        XCTAssertGreaterThan(outcomes["invalidProgram", default: 0], 50, "\(outcomes)")
        XCTAssertGreaterThan(outcomes.count, 4, "\(outcomes)")
    }
}
