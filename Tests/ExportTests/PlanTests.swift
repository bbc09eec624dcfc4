// The programming plan (plan.csv) and its counts (plan_summary.csv), checked against the masks
// and Device's cell lookup.
import XCTest
import DataIO
import Export
import Kernels
import ModelFile

final class PlanTests: XCTestCase {
    func checkPlan(_ f: ExportFixture) throws {
        let b = f.bundle
        let dp = devicePlacement(b)
        let xs = crossbars(b)
        let rows = parseCSV(try readFileBytes(f.dir + "/plan.csv"))
        XCTAssertEqual(rows.first, ["step", "array", "row", "col", "layer", "input", "output", "polarity"])
        let steps = rows.dropFirst()
        // Zero mask bits, counted here from the packed masks.
        var zeros = [Int](repeating: 0, count: xs.count)
        var prunedSet = Set<[Int]>()
        for (li, c) in xs.enumerated() {
            for idx in 0..<c.weights.count where !kept(b, layer: li, idx) {
                zeros[li] += 1
                prunedSet.insert([li, idx % c.fanIn, idx / c.fanIn])
            }
        }
        XCTAssertEqual(steps.count, 2 * zeros.reduce(0, +), "plan rows = 2 x zero mask bits")
        XCTAssertGreaterThan(steps.count, 0)
        var seenPairs = [[Int]: Int]()
        var previous: (Int, Int, Int)? = nil
        for (k, s) in steps.enumerated() {
            guard s.count == 8, let step = Int(s[0]), let a = Int(s[1]), let r = Int(s[2]), let c = Int(s[3]),
                  let l = Int(s[4]), let i = Int(s[5]), let o = Int(s[6]) else { XCTFail("bad row \(s)"); continue }
            XCTAssertEqual(step, k)
            if let p = previous { XCTAssert(p < (a, r, c), "row \(k) out of (array,row,col) order") }
            previous = (a, r, c)
            let cell = dp.cell(layer: l, input: i, output: o)
            XCTAssertEqual(s[7] == "+" ? cell.colPlus : (s[7] == "-" ? cell.colMinus : -99), c, "row \(k): column/polarity")
            XCTAssertEqual(cell.array, a); XCTAssertEqual(cell.row, r)
            XCTAssert(prunedSet.contains([l, i, o]), "row \(k) resets a kept pair")
            seenPairs[[l, i, o], default: 0] += 1
        }
        XCTAssertEqual(Set(seenPairs.keys), prunedSet, "every pruned pair is in the plan")
        XCTAssert(seenPairs.values.allSatisfy { $0 == 2 }, "both cells of every pruned pair, once each")

        // Summary: per layer, per array, total; layer and array counts add up to the total.
        let sum = parseCSV(try readFileBytes(f.dir + "/plan_summary.csv"))
        XCTAssertEqual(sum.first, ["scope", "index", "node", "pairs", "pruned_pairs", "cells_to_reset"])
        let layerRows = sum.filter { $0.first == "layer" }, arrayRows = sum.filter { $0.first == "array" }
        let crossNodes = b.program.crossbarLayers.map(\.node)   // an rnn node is two layers
        XCTAssertEqual(layerRows.count, xs.count)
        for (li, r) in layerRows.enumerated() {
            XCTAssertEqual(r, ["layer", "\(li)", "\(crossNodes[li])", "\(xs[li].weights.count)", "\(zeros[li])", "\(2 * zeros[li])"])
        }
        XCTAssertEqual(arrayRows.count, dp.arrayCount)
        var perArray = [Int](repeating: 0, count: dp.arrayCount), pairsPerArray = [Int](repeating: 0, count: dp.arrayCount)
        for s in steps { perArray[Int(s[1])!] += 1 }
        for t in dp.tiles { pairsPerArray[t.array] += t.rows * t.outputs }
        for (a, r) in arrayRows.enumerated() {
            XCTAssertEqual(r, ["array", "\(a)", "", "\(pairsPerArray[a])", "\(perArray[a] / 2)", "\(perArray[a])"])
        }
        let total = sum.filter { $0.first == "total" }
        XCTAssertEqual(total, [["total", "", "", "\(xs.reduce(0) { $0 + $1.weights.count })", "\(zeros.reduce(0, +))", "\(steps.count)"]])
        XCTAssertEqual(layerRows.map { Int($0[5])! }.reduce(0, +), arrayRows.map { Int($0[5])! }.reduce(0, +))
    }

    func testFashionPlanResetsBothCellsOfEveryPrunedPairInOrder() throws { try checkPlan(fixture("fashion")) }

    func testCRNNPlanCoversBothRNNMatrices() throws { try checkPlan(fixture("crnn")) }

    func testSmallPlanWithALayerWithoutMask() throws {
        let f = fixture("small")
        try checkPlan(f)
        // Layer 1 has no mask: none of its cells is reset.
        let rows = parseCSV(try readFileBytes(f.dir + "/plan.csv")).dropFirst()
        XCTAssertFalse(rows.contains { $0[4] == "1" })
    }
}
