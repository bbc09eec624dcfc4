import XCTest
@testable import ModelFile
import Kernels
import DataIO

/// The rnn node record (op 9, docs/FORMAT.md section 6): round trips and crafted corrupt records.
/// Graph layout of `ModelSamples.crnn(seed: 3)` (3 features x 4 steps, 5 hidden, 16-row arrays:
/// one tile per matrix): node 0 (inputQuant) at 84, node 1 (rnn) at 116, its input-matrix
/// payload at 128 (weights index 172, mask 176, conductance 180, tile count 184, tile 188), the
/// recurrent-matrix payload at 208 (weights 252, mask 256, conductance 260, tile count 264, tile
/// 268: rowStart 268, rowCount 272), the combiner at 288 (Mx 288, Mh 292, S 296, hidden bits
/// 300, hidden rounding 301, reserved 302), the output quantizer at 304 (outBits 304, rounding
/// 305, channels 308, multiplier/shift/offset indices 312/316/320), node 2 (crossbar) at 324.
final class RNNRecordTests: XCTestCase {
    let bundle = ModelSamples.crnn(seed: 3)
    lazy var good: [UInt8] = try! bundle.encode()

    func graph(_ b: [UInt8]) -> [UInt8] { sections(b).first { $0.kind == SectionKind.graph.rawValue }!.bytes }
    func edit(_ f: (inout [UInt8]) -> Void) -> [UInt8] { rebuild(good, kind: .graph, f) }

    func testLayoutIsAsDocumented() throws {
        let g = graph(good)
        XCTAssertEqual(g[84], OpKind.inputQuant.rawValue)
        XCTAssertEqual(g[116], OpKind.rnn.rawValue)
        XCTAssertEqual(g[116], 9)
        XCTAssertEqual(Int(loadU32(g, 128)), 3)              // input matrix inChannels
        XCTAssertEqual(Int(loadU32(g, 132)), 5)              // hidden
        XCTAssertEqual(Int(loadU32(g, 208)), 5)              // recurrent inChannels
        XCTAssertEqual(Int(loadU32(g, 264)), 1)              // recurrent tile count
        guard case .rnn(let r) = bundle.program.nodes[1].op else { return XCTFail("node 1 is not an rnn") }
        XCTAssertEqual(Int32(bitPattern: loadU32(g, 288)), r.inputMultiplier)
        XCTAssertEqual(Int32(bitPattern: loadU32(g, 292)), r.recurrentMultiplier)
        XCTAssertEqual(Int32(bitPattern: loadU32(g, 296)), r.stateShift)
        XCTAssertEqual(Int(g[300]), r.hiddenBits)
        XCTAssertEqual(g[301], r.hiddenRounding.rawValue)
        XCTAssertEqual(Int(loadU32(g, 308)), 5)              // output channels
        XCTAssertEqual(g[324], OpKind.crossbar.rawValue)
        let names = dirLayout(sections(good).first { $0.kind == SectionKind.tensorDirectory.rawValue }!.bytes).map(\.name)
        XCTAssertTrue(names.contains("n1.weights") && names.contains("n1.recurrent.weights") && names.contains("n1.recurrent.mask"), "\(names)")
    }

    func testRoundTrips() throws {
        for b in [bundle, ModelSamples.crnn(seed: 4, conductance: true), ModelSamples.crnn(seed: 5, steps: 1, dropRecurrentMask: true),
                  ModelSamples.crnn(seed: 6, c: 40, steps: 7, hidden: 20, classes: 10, arrayRows: 8)] {
            let bytes = try b.encode()
            let d = try ModelBundle.decode(bytes)
            XCTAssertEqual(d, b)
            XCTAssertEqual(try d.encode(), bytes, "encode is deterministic")
            XCTAssertEqual(d.metadata.masks.count, 3, "input, recurrent and fc masks")
        }
    }

    func testMaskAndFlipCountsCountBothRNNMatrices() {
        var b = bundle
        b.metadata.programming.maskFlips.removeLast()
        XCTAssertThrowsError(try b.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
        b = bundle
        b.metadata.masks.removeLast()
        XCTAssertThrowsError(try b.encode()) { XCTAssertEqual(($0 as? ModelFileError)?.kind, .unencodable) }
    }

    func testUnknownOpKindAndBadEnums() {
        assertRejects(edit { $0[116] = 8 }, .badEnum, section: "graph")
        assertRejects(edit { $0[301] = 5 }, .badEnum, section: "graph")        // hidden rounding
        assertRejects(edit { $0[305] = 9 }, .badEnum, section: "graph")        // output rounding
        assertRejects(edit { $0[284] = 7 }, .badEnum, section: "graph")        // recurrent tile rounding
    }

    func testReservedFieldsMustBeZero() {
        assertRejects(edit { $0[161] = 1 }, .badGraph, section: "graph")        // input matrix reserved byte after weightBits
        assertRejects(edit { $0[241] = 1 }, .badGraph, section: "graph")        // recurrent matrix
        assertRejects(edit { $0[302] = 1 }, .badGraph, section: "graph")
        assertRejects(edit { $0[306] = 1 }, .badGraph, section: "graph")
    }

    func testTensorReferences() {
        let g = graph(good)
        // the recurrent weights point at the input matrix's weights: referenced twice
        assertRejects(edit { putU32(&$0, 252, loadU32(g, 172)) }, .badGraph, section: "graph")
        // the recurrent weights point at the (not yet used) output multiplier: wrong dtype/dims
        assertRejects(edit { putU32(&$0, 252, loadU32(g, 312)) }, .tensorShapeMismatch, section: "graph")
        // out of range
        assertRejects(edit { putU32(&$0, 256, 999) }, .badGraph, section: "graph")
        // the recurrent matrix claims 4 inputs: its stored weights are [5, 5]
        assertRejects(edit { putU32(&$0, 208, 4) }, .tensorShapeMismatch, section: "graph")
    }

    func testRecurrentTileOutsideFanIn() {
        assertRejects(edit { putU32(&$0, 272, 6) }, .badGraph, section: "graph")
        assertRejects(edit { putU32(&$0, 264, 0xFFFF_FFFF) }, .countTooLarge, section: "graph")
    }

    func testProgramLevelViolationsAreInvalidProgram() {
        assertRejects(edit { putU32(&$0, 296, 63) }, .invalidProgram, section: "graph")              // state shift
        assertRejects(edit { $0[300] = 0 }, .invalidProgram, section: "graph")                       // hidden bits
        assertRejects(edit { $0[300] = 9 }, .invalidProgram, section: "graph")
        assertRejects(edit { putU32(&$0, 288, UInt32(Int32.max)) }, .invalidProgram, section: "graph")   // |z| > 2^31 - 1
        assertRejects(edit { putU32(&$0, 224, 2) }, .invalidProgram, section: "graph")             // recurrent matrix stride 2: not a 1x1 crossbar
    }

    func testTruncatedRecord() {
        // cut inside the record: truncated, or a count that the bytes left cannot back
        for cut in [120, 200, 290, 303, 310, 322] {
            do { _ = try ModelBundle.decode(edit { $0 = Array($0[0..<cut]) }); XCTFail("cut \(cut) accepted") } catch let e as ModelFileError {
                XCTAssertTrue(e.kind == .truncated || e.kind == .countTooLarge, "cut \(cut): \(e)")
                XCTAssertEqual(e.section, "graph")
            } catch { XCTFail("untyped \(error)") }
        }
    }

    /// Every byte of the rnn record set to 0xFF and to 0 (CRCs repaired): a typed error or a
    /// valid file that re-encodes to itself; never a trap.
    func testEveryRecordByteMutated() throws {
        let c = try Container.parse(good)
        let g = c.section(.graph)!
        var rejected = 0, accepted = 0
        for i in (g.offset + 116)..<(g.offset + 324) {
            for v: UInt8 in [0xFF, 0] where good[i] != v {
                var m = good
                m[i] = v
                Container.recomputeChecksums(&m)
                do {
                    let d = try ModelBundle.decode(m)
                    accepted += 1
                    XCTAssertTrue(try d.encode() == m, "byte \(i - g.offset): accepted but does not re-encode to itself")
                } catch is ModelFileError { rejected += 1 } catch { XCTFail("untyped \(error)") }
            }
        }
        XCTAssertGreaterThan(rejected, 100)
        XCTAssertGreaterThan(accepted, 10)
    }
}
