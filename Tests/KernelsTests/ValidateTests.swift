// validate(): valid programs pass; each kind of invalid program is rejected with the right
// error kind and node index.

import XCTest
import FixedPoint
@testable import Kernels

final class ValidateTests: XCTestCase {
    /// pixels (1,4,4) -> inputQuant 4b -> crossbar 1->2 3x3 pad 1 -> act 4b -> maxpool 2 -> flatten -> fc 8->3
    func tiny(fanInRows: Int = 9) -> Program {
        let s = TensorShape(c: 1, h: 4, w: 4)
        var t: [TensorDesc] = [.code(s, bits: 8), .code(s, bits: 4), .sum(TensorShape(c: 2, h: 4, w: 4)),
                               .code(TensorShape(c: 2, h: 4, w: 4), bits: 4), .code(TensorShape(c: 2, h: 2, w: 2), bits: 4),
                               .code(TensorShape(c: 8, h: 1, w: 1), bits: 4), .sum(TensorShape(c: 3, h: 1, w: 1))]
        let conv = CrossbarParams(inChannels: 1, outChannels: 2, kernelH: 3, kernelW: 3, padH: 1, padW: 1, weightBits: 8,
                                  weights: [Int8](repeating: 3, count: 18),
                                  tiles: CrossbarParams.uniformTiles(fanIn: 9, arrayRows: 5, multiplier: 1 << 30, shift: 0, rounding: .halfUp, bits: 14))
        let fc = CrossbarParams(inChannels: 8, outChannels: 3, kernelH: 1, kernelW: 1, weightBits: 4,
                                weights: [Int8](repeating: -2, count: 24),
                                tiles: CrossbarParams.uniformTiles(fanIn: 8, arrayRows: 512, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 14))
        let nodes = [
            Node(.inputQuant(AffineQuantParams(channels: 1, multiplier: 15, shift: 8, offset: 0, outBits: 4, rounding: .halfUp)), inputs: [0], output: 1),
            Node(.crossbar(conv), inputs: [1], output: 2),
            Node(.activation(AffineQuantParams(channels: 2, multiplier: 3, shift: 4, offset: 8, outBits: 4, rounding: .halfToEven)), inputs: [2], output: 3),
            Node(.maxPool(MaxPoolParams(2)), inputs: [3], output: 4),
            Node(.flatten, inputs: [4], output: 5),
            Node(.crossbar(fc), inputs: [5], output: 6),
        ]
        _ = fanInRows
        t[0] = .code(s, bits: 8)
        return Program(tensors: t, nodes: nodes, input: 0, output: 6, arrayRows: 512)
    }

    func expectError(_ p: Program, _ kind: ProgramError.Kind, node: Int?, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try p.validate()
            XCTFail("expected \(kind) at node \(String(describing: node)), program passed", file: file, line: line)
        } catch {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            XCTAssertEqual(error.node, node, "\(error)", file: file, line: line)
        }
    }

    func crossbarParams(_ p: Program, _ node: Int) -> CrossbarParams {
        guard case .crossbar(let c) = p.nodes[node].op else { fatalError() }
        return c
    }

    func testValidProgramsPass() throws {
        XCTAssertNoThrow(try tiny().validate())
        XCTAssertNoThrow(try makeCNN(seed: 1).validate())
    }

    func testCNNRanges() throws {
        let p = makeCNN(seed: 1)
        let r = try p.valueRanges()
        // conv 64->16 3x3: fan-in 576 -> 2 tiles of 14-bit ADC codes -> [-16384, 16382]
        XCTAssertEqual(r[p.nodes[4].output], ValueRange(-16384, 16382))
        XCTAssertEqual(r[p.output], ValueRange(-8192, 8191))
        XCTAssertEqual(crossbarParams(p, 4).tiles.map(\.rowCount), [512, 64])
    }

    func testShapeMismatch() {
        var p = tiny()
        p.tensors[2] = .sum(TensorShape(c: 2, h: 3, w: 4))          // conv output wrong
        expectError(p, .shapeMismatch, node: 1)
        p = tiny()
        p.tensors[5] = .code(TensorShape(c: 7, h: 1, w: 1), bits: 4) // flatten output wrong
        expectError(p, .shapeMismatch, node: 4)
        p = tiny()
        p.tensors[3] = .code(TensorShape(c: 2, h: 4, w: 4), bits: 5) // activation bits disagree
        expectError(p, .shapeMismatch, node: 2)
        p = tiny()
        p.nodes[5].inputs = [4]                                       // fc reads unflattened map
        expectError(p, .shapeMismatch, node: 5)
    }

    func testGraphErrors() {
        var p = tiny()
        p.nodes[2].inputs = [6]                                       // not yet produced
        expectError(p, .graph, node: 2)
        p = tiny()
        p.nodes[3].output = 2                                         // produced twice
        expectError(p, .graph, node: 3)
        p = tiny()
        p.nodes[1].inputs = [1, 1]
        expectError(p, .graph, node: 1)
        p = tiny()
        p.output = 9
        expectError(p, .graph, node: nil)
    }

    func testParameterRanges() {
        var p = tiny()
        guard case .activation(var a) = p.nodes[2].op else { return XCTFail() }
        a.outBits = 9; p.tensors[3].bits = 9
        p.nodes[2].op = .activation(a)
        expectError(p, .parameterOutOfRange, node: nil)              // 9-bit codes (tensor-level check)
        p = tiny(); a.outBits = 4; a.shift[1] = 63; p.nodes[2].op = .activation(a)
        expectError(p, .parameterOutOfRange, node: 2)                // shift 63
        p = tiny(); a.shift[1] = 4; a.multiplier = [3]; p.nodes[2].op = .activation(a)
        expectError(p, .parameterOutOfRange, node: 2)                // per-channel count
        var c = crossbarParams(tiny(), 1)
        c.tiles[1].bits = 17; p = tiny(); p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)                // ADC bits 17
        c = crossbarParams(tiny(), 1); c.tiles[0].bits = 1; p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)                // ADC bits 1
        c = crossbarParams(tiny(), 1); c.tiles[0].shift = 31; p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)                // ADC shift 31
        c = crossbarParams(tiny(), 1); c.tiles[0].shift = -32; p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)
        c = crossbarParams(tiny(), 1); c.weightBits = 1; p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)                // weight bits 1
        c = crossbarParams(tiny(), 1); c.tiles[1].rowStart = 6; p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)                // tiles do not partition
        c = crossbarParams(tiny(), 1); c.padH = 3; p.nodes[1].op = .crossbar(c)
        expectError(p, .parameterOutOfRange, node: 1)                // pad >= kernel
    }

    func testWeightErrors() {
        var p = tiny()
        var c = crossbarParams(p, 5)
        c.weights.removeLast(); p.nodes[5].op = .crossbar(c)
        expectError(p, .weightCount, node: 5)
        c = crossbarParams(tiny(), 5); c.weights[3] = 8; p.nodes[5].op = .crossbar(c)   // 4-bit weights: max 7
        expectError(p, .weightCount, node: 5)
        c.weights[3] = -8; p.nodes[5].op = .crossbar(c)
        XCTAssertNoThrow(try p.validate())
    }

    func testAccumulatorOverflow() {
        // 513 rows in one tile of a 512-row array
        var c = crossbarParams(tiny(), 5)
        c.inChannels = 513; c.weights = [Int8](repeating: 1, count: 3 * 513)
        c.tiles = [TileADC(rowStart: 0, rowCount: 513, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 14)]
        let p = singleCrossbar(c, inBits: 4, arrayRows: 512)
        expectError(p, .accumulatorOverflow, node: 1)
        c.tiles = CrossbarParams.uniformTiles(fanIn: 513, arrayRows: 512, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 14)
        XCTAssertNoThrow(try singleCrossbar(c, inBits: 4, arrayRows: 512).validate())

        // 8-bit codes with a huge fan-in on a (hypothetical) huge array: 70000 * 255 * 128 > 2^31
        let n = 70_000
        var big = CrossbarParams(inChannels: n, outChannels: 1, kernelH: 1, kernelW: 1, weightBits: 8,
                                 weights: [Int8](repeating: 0, count: n),
                                 tiles: [TileADC(rowStart: 0, rowCount: n, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 14)])
        expectError(singleCrossbar(big, inBits: 8, arrayRows: 100_000), .accumulatorOverflow, node: 1)
        // the same fan-in is fine with 4-bit codes (70000 * 15 * 128 < 2^31)
        XCTAssertNoThrow(try singleCrossbar(big, inBits: 4, arrayRows: 100_000).validate())
        // ... and with 2-bit weights and 8-bit codes? 70000 * 255 * 2 < 2^31
        big.weightBits = 2
        XCTAssertNoThrow(try singleCrossbar(big, inBits: 8, arrayRows: 100_000).validate())

        // activation: |sum| * |M| + |B| > 2^62
        var q = tiny()
        q.nodes[2].op = .activation(AffineQuantParams(channels: 2, multiplier: Int32.max, shift: 62, offset: (Int64(1) << 62) - (Int64(1) << 44),
                                                      outBits: 4, rounding: .floor))
        expectError(q, .accumulatorOverflow, node: 2)
        q.nodes[2].op = .activation(AffineQuantParams(channels: 2, multiplier: Int32.max, shift: 62, offset: 1 << 40,
                                                      outBits: 4, rounding: .floor))
        XCTAssertNoThrow(try q.validate())   // |sum| <= 2 tiles * 2^13: 2^14 * (2^31 - 1) + 2^40 < 2^62
    }

    /// pixels (cin,1,1) -> inputQuant inBits -> crossbar
    func singleCrossbar(_ c: CrossbarParams, inBits: Int, arrayRows: Int) -> Program {
        let s = TensorShape(c: c.inChannels, h: 1, w: 1)
        return Program(tensors: [.code(s, bits: 8), .code(s, bits: inBits), .sum(TensorShape(c: c.outChannels, h: 1, w: 1))],
                       nodes: [Node(.inputQuant(AffineQuantParams(channels: c.inChannels, multiplier: 1, shift: Int32(8 - inBits), offset: 0, outBits: inBits, rounding: .floor)), inputs: [0], output: 1),
                               Node(.crossbar(c), inputs: [1], output: 2)],
                       input: 0, output: 2, arrayRows: arrayRows)
    }

    func testNegativeMultiplierNextToPool() {
        var p = tiny()
        var a = AffineQuantParams(channels: 2, multiplier: 3, shift: 4, offset: 8, outBits: 4, rounding: .halfToEven)
        a.multiplier[1] = -3
        p.nodes[2].op = .activation(a)                               // act -> maxpool
        expectError(p, .nonMonotone, node: 2)
        p.nodes[3].op = .maxPool(MaxPoolParams(1))
        expectError(p, .nonMonotone, node: 2)                        // a 1x1 pool is still a pool
        // without a pool the same activation is allowed: pixels -> quant -> conv -> act(neg) -> flatten -> fc
        let s = TensorShape(c: 1, h: 4, w: 4), s2 = TensorShape(c: 2, h: 4, w: 4)
        var fc = crossbarParams(tiny(), 5)
        fc.inChannels = 32; fc.weights = [Int8](repeating: 1, count: 96)
        fc.tiles = CrossbarParams.uniformTiles(fanIn: 32, arrayRows: 512, multiplier: 1 << 30, shift: 0, rounding: .floor, bits: 14)
        let q = Program(tensors: [.code(s, bits: 8), .code(s, bits: 4), .sum(s2), .code(s2, bits: 4),
                                  .code(TensorShape(c: 32, h: 1, w: 1), bits: 4), .sum(TensorShape(c: 3, h: 1, w: 1))],
                        nodes: [tiny().nodes[0], tiny().nodes[1], Node(.activation(a), inputs: [2], output: 3),
                                Node(.flatten, inputs: [3], output: 4), Node(.crossbar(fc), inputs: [4], output: 5)],
                        input: 0, output: 5)
        XCTAssertNoThrow(try q.validate(), "negative multiplier without a pool is allowed")
        // inputQuant with a negative multiplier before a pool
        var r = tiny()
        r.tensors.append(.code(TensorShape(c: 1, h: 2, w: 2), bits: 4))
        r.nodes.insert(Node(.maxPool(MaxPoolParams(2)), inputs: [1], output: 7), at: 1)
        r.nodes[0].op = .inputQuant(AffineQuantParams(channels: 1, multiplier: -15, shift: 8, offset: 4000, outBits: 4, rounding: .halfUp))
        expectError(r, .nonMonotone, node: 0)
    }
}
