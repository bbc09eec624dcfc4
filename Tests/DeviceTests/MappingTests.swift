import XCTest
import Randomness
@testable import Device

final class MappingTests: XCTestCase {
    /// The paper's Fashion-MNIST CNN.
    let fashion = [LayerShape(name: "conv1", fanIn: 9, fanOut: 64),      // 1 -> 64, 3x3
                   LayerShape(name: "conv2", fanIn: 576, fanOut: 16),    // 64 -> 16, 3x3
                   LayerShape(name: "fc1", fanIn: 400, fanOut: 128),
                   LayerShape(name: "fc2", fanIn: 128, fanOut: 10)]

    /// Brute force, independent of `validate()`: every weight maps to two cells inside an
    /// array, G- right of G+, and no cell is used twice.
    func assertEveryWeightOnceNoSharedCell(_ p: CrossbarPlacement, file: StaticString = #filePath, line: UInt = #line) {
        let cellsPerArray = p.arrayRows * p.arrayCols
        var used = [Bool](repeating: false, count: max(0, p.arrayCount) * cellsPerArray)
        var count = 0
        for (li, l) in p.layers.enumerated() {
            for i in 0..<l.fanIn {
                for o in 0..<l.fanOut {
                    let c = p.cell(layer: li, input: i, output: o)
                    guard c.array >= 0, c.array < p.arrayCount, c.row >= 0, c.row < p.arrayRows,
                          c.colPlus >= 0, c.colMinus < p.arrayCols else {
                        XCTFail("layer \(li) weight (\(i), \(o)) at \(c) is outside the arrays", file: file, line: line)
                        return
                    }
                    XCTAssertEqual(c.colMinus, c.colPlus + 1, file: file, line: line)
                    for col in [c.colPlus, c.colMinus] {
                        let key = c.array * cellsPerArray + c.row * p.arrayCols + col
                        if used[key] {
                            XCTFail("cell (\(c.array), \(c.row), \(col)) used twice", file: file, line: line)
                            return
                        }
                        used[key] = true
                    }
                    count += 1
                }
            }
        }
        XCTAssertEqual(count, p.layers.reduce(0) { $0 + $1.fanIn * $1.fanOut }, file: file, line: line)
        // Utilisation = used cells / available cells, per array, from the brute-force count.
        var perArray = [Int](repeating: 0, count: p.arrayCount)
        for k in used.indices where used[k] { perArray[k / cellsPerArray] += 1 }
        let u = p.utilisation()
        XCTAssertEqual(u.count, p.arrayCount, file: file, line: line)
        for a in 0..<p.arrayCount {
            XCTAssertEqual(u[a], Double(perArray[a]) / Double(cellsPerArray), accuracy: 1e-12, file: file, line: line)
        }
        XCTAssertNoThrow(try p.validate(), file: file, line: line)
    }

    func testFashionMNISTCNNOn512x512() throws {
        let p = try CrossbarMapper.place(fashion, arrayRows: 512, arrayCols: 512)
        assertEveryWeightOnceNoSharedCell(p)
        for t in p.tiles { XCTAssertLessThanOrEqual(t.rows, 512) }
        // conv2's fan-in 576 > 512 rows: two row tiles (512 + 64), same outputs.
        let conv2 = p.tiles.filter { $0.layer == 1 }
        XCTAssertEqual(conv2.map(\.rows).sorted(), [64, 512])
        XCTAssertEqual(Set(conv2.map(\.inputOffset)), [0, 512])
        XCTAssertTrue(conv2.allSatisfy { $0.outputOffset == 0 && $0.outputs == 16 })
        for l in [0, 2, 3] { XCTAssertEqual(p.tiles.filter { $0.layer == l }.count, 1) }
        // 2 * (9*64 + 576*16 + 400*128 + 128*10) = 124544 cells fit on one 262144-cell array.
        XCTAssertEqual(p.arrayCount, 1)
        XCTAssertEqual(p.utilisation()[0], 124_544.0 / 262_144.0, accuracy: 1e-12)
        // Deterministic and Codable.
        XCTAssertEqual(try CrossbarMapper.place(fashion, arrayRows: 512, arrayCols: 512), p)
        let back = try JSONDecoder().decode(CrossbarPlacement.self, from: JSONEncoder().encode(p))
        XCTAssertEqual(back, p)
    }

    func testCellFollowsTheDocumentedLayout() throws {
        let p = try CrossbarMapper.place(fashion, arrayRows: 512, arrayCols: 512)
        for t in p.tiles {
            let i = t.inputOffset + t.rows - 1, o = t.outputOffset + t.outputs - 1
            let c = p.cell(layer: t.layer, input: i, output: o)
            XCTAssertEqual(c.array, t.array)
            XCTAssertEqual(c.row, t.rowOffset + t.rows - 1)
            XCTAssertEqual(c.colPlus, t.colOffset + 2 * (t.outputs - 1))
            XCTAssertEqual(c.colMinus, t.colOffset + 2 * (t.outputs - 1) + 1)
        }
        XCTAssertEqual(p.cell(layer: 0, input: 9, output: 0).array, -1)   // out of range
        XCTAssertEqual(p.cell(layer: 7, input: 0, output: 0).array, -1)
    }

    func testLayerWiderAndTallerThanAnArray() throws {
        // 1000 inputs x 600 outputs on 512x512: 2 row tiles x 3 column blocks (256, 256, 88 outputs).
        let layers = [LayerShape(name: "wide", fanIn: 1000, fanOut: 600)]
        let p = try CrossbarMapper.place(layers, arrayRows: 512, arrayCols: 512)
        assertEveryWeightOnceNoSharedCell(p)
        XCTAssertEqual(p.tiles.count, 6)
        XCTAssertEqual(Set(p.tiles.map(\.outputs)), [256, 88])
        XCTAssertEqual(Set(p.tiles.map(\.rows)), [512, 488])
        XCTAssertTrue(p.tiles.allSatisfy { $0.colOffset + $0.cols <= 512 && $0.rowOffset + $0.rows <= 512 })
        // Odd column count: the last column stays unused.
        let q = try CrossbarMapper.place([LayerShape(name: "x", fanIn: 3, fanOut: 5)], arrayRows: 4, arrayCols: 5)
        assertEveryWeightOnceNoSharedCell(q)
        XCTAssertTrue(q.tiles.allSatisfy { $0.outputs <= 2 })
    }

    func testRandomLayerListsOnRandomArrays() throws {
        var g = Xoshiro256StarStar(seed: 404)
        for trial in 0..<25 {
            let rows = 16 + g.int(below: 112), cols = 2 + g.int(below: 130)
            let n = 1 + g.int(below: 6)
            let layers = (0..<n).map { LayerShape(name: "l\($0)", fanIn: 1 + g.int(below: 200), fanOut: 1 + g.int(below: 60)) }
            let p = try CrossbarMapper.place(layers, arrayRows: rows, arrayCols: cols)
            assertEveryWeightOnceNoSharedCell(p)
            // Lower bound on arrays: total cells needed / cells per array.
            let need = layers.reduce(0) { $0 + 2 * $1.fanIn * $1.fanOut }
            XCTAssertGreaterThanOrEqual(p.arrayCount * rows * (cols - cols % 2), need, "trial \(trial)")
        }
    }

    func testBadInputsThrowAndValidateCatchesBrokenPlacements() throws {
        XCTAssertThrowsError(try CrossbarMapper.place([LayerShape(name: "z", fanIn: 0, fanOut: 3)], arrayRows: 8, arrayCols: 8)) {
            XCTAssertTrue("\($0)".contains("'z'"))
        }
        XCTAssertThrowsError(try CrossbarMapper.place([LayerShape(name: "z", fanIn: 2, fanOut: 3)], arrayRows: 8, arrayCols: 1))
        XCTAssertThrowsError(try CrossbarMapper.place([LayerShape(name: "huge", fanIn: Int.max, fanOut: 2)], arrayRows: 8, arrayCols: 8))
        let good = try CrossbarMapper.place([LayerShape(name: "a", fanIn: 4, fanOut: 2), LayerShape(name: "b", fanIn: 4, fanOut: 2)],
                                            arrayRows: 8, arrayCols: 8)
        XCTAssertNoThrow(try good.validate())
        var overlap = good
        overlap.tiles[1].colOffset = overlap.tiles[0].colOffset
        overlap.tiles[1].rowOffset = overlap.tiles[0].rowOffset
        XCTAssertThrowsError(try overlap.validate()) { XCTAssertTrue("\($0)".contains("share cells")) }
        var missing = good
        missing.tiles[0].rows = 3
        XCTAssertThrowsError(try missing.validate()) { XCTAssertTrue("\($0)".contains("3 x 2") || "\($0)".contains("6 of 8")) }
        var outside = good
        outside.tiles[0].colOffset = 7
        XCTAssertThrowsError(try outside.validate()) { XCTAssertTrue("\($0)".contains("exceed")) }
        var badArray = good
        badArray.tiles[0].array = 3
        XCTAssertThrowsError(try badArray.validate()) { XCTAssertTrue("\($0)".contains("array index")) }
        var overflow = good
        overflow.tiles[0].rowOffset = Int.max
        XCTAssertThrowsError(try overflow.validate())
        // Functions that take a placement as given never trap on a corrupt one.
        XCTAssertEqual(overflow.cell(layer: 0, input: 0, output: 0).array, overflow.tiles[0].array)
        let w = differentialWeights(placement: overflow, layer: 0, source: CodedSource(), read: nil)
        XCTAssertEqual(w.on.count, 8)
        var outsideLayer = good
        outsideLayer.tiles[0].inputOffset = 3
        XCTAssertEqual(differentialWeights(placement: outsideLayer, layer: 0, source: CodedSource(), read: nil).on, [Float](repeating: 0, count: 8))
        // A network needing absurdly many tiles is refused, not ground through.
        XCTAssertThrowsError(try CrossbarMapper.place([LayerShape(name: "big", fanIn: 100_000, fanOut: 100_000)], arrayRows: 16, arrayCols: 16)) {
            XCTAssertTrue("\($0)".contains("tiles"))
        }
        var p = TargetProfiles.rram40nmTaOx
        p.arrayRows = 1 << 20; p.arrayCols = 1 << 20
        XCTAssertThrowsError(try p.validate()) { XCTAssertTrue("\($0)".contains("cells per array")) }
    }

    /// A source whose value encodes its cell, to check which cells `differentialWeights` reads.
    struct CodedSource: ConductanceSource {
        func conductance(array: Int, row: Int, col: Int, state: CellState, read: Int?) -> Double {
            Double(array * 1_000_000 + row * 1000 + col) + (state == .reset ? 0.5 : 0) + Double(read ?? 0) * 1e7
        }
    }

    func testDifferentialWeightsReadTheMappedPairsInPyTorchOrder() throws {
        let p = try CrossbarMapper.place(fashion, arrayRows: 512, arrayCols: 512)
        let src = CodedSource()
        for layer in 0..<fashion.count {
            let (on, off) = differentialWeights(placement: p, layer: layer, source: src, read: nil)
            let l = fashion[layer]
            XCTAssertEqual(on.count, l.fanIn * l.fanOut)
            for (i, o) in [(0, 0), (l.fanIn - 1, l.fanOut - 1), (l.fanIn / 2, l.fanOut / 3)] {
                let c = p.cell(layer: layer, input: i, output: o)
                let gp = src.conductance(array: c.array, row: c.row, col: c.colPlus, state: .formed, read: nil)
                let gm = src.conductance(array: c.array, row: c.row, col: c.colMinus, state: .formed, read: nil)
                XCTAssertEqual(on[o * l.fanIn + i], Float(gp - gm))  // = -1: G- is one column right
                XCTAssertEqual(off[o * l.fanIn + i], -1)
            }
        }
        XCTAssertEqual(differentialWeights(placement: p, layer: 9, source: src, read: nil).on, [])
    }

    func testRandomDifferentialWeightsAreZeroMean() throws {
        let profile = TargetProfiles.rram40nmTaOx
        let p = try CrossbarMapper.place(fashion, arrayRows: 512, arrayCols: 512)
        let d = StatisticalDevice(profile: profile, seed: 77)
        let (on, off) = differentialWeights(placement: p, layer: 2, source: d, read: nil)  // fc1, 51200 weights
        let m = Moments(on.map(Double.init)), mo = Moments(off.map(Double.init))
        // G+ - G- of two independent cells: mean 0, std ~ sqrt(2) * 25 µS (both formed, ~90% of pairs).
        XCTAssertEqual(m.mean, 0, accuracy: 0.5)
        XCTAssertEqual(m.std, 2.0.squareRoot() * 25, accuracy: 6)
        XCTAssertLessThan(mo.std, 0.05 * m.std)  // pruned pairs are ~off
        // Same weights with 2 threads.
        let two = differentialWeights(placement: p, layer: 2, source: d, read: nil, threads: 2)
        XCTAssertEqual(two.on, on)
        XCTAssertEqual(two.off, off)
        // A noisy read differs from the nominal weights by the read noise only.
        let (on0, _) = differentialWeights(placement: p, layer: 2, source: d, read: 0)
        let diff = Moments(zip(on0, on).map { Double($0 - $1) })
        XCTAssertEqual(diff.mean, 0, accuracy: 0.05)
        XCTAssertGreaterThan(diff.std, 0.5)
        XCTAssertLessThan(diff.std, 4)
    }
}
