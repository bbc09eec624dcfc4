// Random valid programs (random layer chains, geometry, tiles, ADCs, activations, pools, with
// parameters pushed to the edges that validate() allows): the fast engine (fused and traced)
// equals the reference engine on every tensor, and nothing traps.

import XCTest
import FixedPoint
import Randomness
@testable import Kernels

final class RandomProgramTests: XCTestCase {
    static func randomProgram(_ rng: inout Xoshiro256StarStar) -> Program {
        var tensors: [TensorDesc] = []
        var nodes: [Node] = []
        func add(_ t: TensorDesc) -> Int { tensors.append(t); return tensors.count - 1 }
        var shape = TensorShape(c: rng.int(1...3), h: rng.int(3...10), w: rng.int(3...10))
        var cur = add(.code(shape, bits: 8))
        var maxIn: Int64 = 255
        func pool(kindOf t: TensorDesc) {
            let k = rng.int(1...2), s = rng.int(1...2)
            guard shape.h >= k, shape.w >= k else { return }
            let p = MaxPoolParams(kh: k, kw: k, sh: s, sw: s)
            shape = TensorShape(c: shape.c, h: (shape.h - k) / s + 1, w: (shape.w - k) / s + 1)
            let o = add(TensorDesc(shape: shape, kind: t.kind, bits: t.bits))
            nodes.append(Node(.maxPool(p), inputs: [cur], output: o))
            cur = o
        }
        /// A random affine quantizer; `monotone` forces multipliers >= 0; sometimes at the 2^62 edge.
        func affine(channels: Int, inMax: Int64, monotone: Bool) -> AffineQuantParams {
            let outBits = rng.int(1...8)
            var m: [Int32] = [], sh: [Int32] = [], off: [Int64] = []
            for _ in 0..<channels {
                if rng.int(below: 8) == 0 {
                    // the edge: |in| * M + |B| == 2^62 exactly (or just below)
                    let mm = Int64(rng.int(1...Int(Int32.max)))
                    let M = min(mm, (Int64(1) << 62) / max(inMax, 1))
                    let rest = (Int64(1) << 62) - inMax * M
                    m.append(Int32(M) * (monotone || rng.bool() ? 1 : -1)); sh.append(62)
                    off.append(rng.bool() ? rest : -rest)
                } else {
                    let s = rng.int(0...40)
                    let target = Double(1 << outBits) * Double(Int64(1) << Int64(s)) / Double(max(inMax, 1)) * (0.3 + 3 * rng.uniform())
                    let M = Int32(min(Double(Int32.max), target))
                    m.append(monotone || rng.bool() ? M : -M); sh.append(Int32(s))
                    off.append(Int64((rng.uniform() - 0.4) * Double(1 << outBits) * Double(Int64(1) << Int64(s))))
                }
            }
            return AffineQuantParams(multiplier: m, shift: sh, offset: off, outBits: outBits, rounding: rng.rule())
        }
        let arrayRows = rng.int(1...64)
        func crossbar(cout: Int, k: Int) {
            let kk = min(k, shape.h, shape.w)
            let pad = rng.int(0...(kk - 1)), stride = rng.int(1...2)
            let wb = rng.int(2...8)
            let fanIn = shape.c * kk * kk
            let half = 1 << (wb - 1)
            var w = [Int8](repeating: 0, count: cout * fanIn)
            for i in 0..<w.count { w[i] = rng.int(below: 4) == 0 ? Int8(-half) : Int8(rng.int(-half...(half - 1))) }
            var tiles: [TileADC] = []
            var start = 0
            while start < fanIn {
                let n = rng.int(1...min(arrayRows, fanIn - start))
                let bits = rng.int(2...16)
                let (m, s): (Int32, Int32)
                switch rng.int(below: 4) {
                case 0: (m, s) = (Int32.max, 30)                       // everything saturates
                case 1: (m, s) = (Int32(rng.int(0...Int(Int32.max))), -31)  // nearly everything rounds to 0 / -1
                default:
                    let std = Double(n).squareRoot() * Double(maxIn) * 0.5 * Double(half) * 0.6 + 1
                    (m, s) = gainMultiplier(Double(1 << (bits - 1)) / (std * (0.3 + 2 * rng.uniform())))
                }
                tiles.append(TileADC(rowStart: start, rowCount: n, multiplier: m, shift: max(-31, min(30, s)),
                                     rounding: rng.rule(), bits: bits))
                start += n
            }
            let p = CrossbarParams(inChannels: shape.c, outChannels: cout, kernelH: kk, kernelW: kk, strideH: stride,
                                   strideW: stride, padH: pad, padW: pad, weightBits: wb, weights: w, tiles: tiles)
            shape = p.outputShape(for: shape)
            let o = add(.sum(shape))
            nodes.append(Node(.crossbar(p), inputs: [cur], output: o))
            cur = o
            maxIn = tiles.reduce(0) { $0 + (Int64(1) << Int64($1.bits - 1)) }
        }

        if rng.bool() { pool(kindOf: tensors[cur]) }
        let poolAfterQuant = rng.int(below: 3) == 0
        let q = affine(channels: shape.c, inMax: 255, monotone: true)
        let qo = add(.code(shape, bits: q.outBits))
        nodes.append(Node(.inputQuant(q), inputs: [cur], output: qo))
        cur = qo; maxIn = (1 << Int64(q.outBits)) - 1
        if poolAfterQuant { pool(kindOf: tensors[cur]) }
        for _ in 0..<rng.int(1...3) {
            crossbar(cout: rng.int(1...12), k: rng.int(1...3))
            let poolSums = rng.int(below: 3) == 0
            if poolSums { pool(kindOf: tensors[cur]) }
            let poolCodes = !poolSums && rng.int(below: 3) == 0
            let a = affine(channels: shape.c, inMax: maxIn, monotone: poolSums || poolCodes)
            let ao = add(.code(shape, bits: a.outBits))
            nodes.append(Node(.activation(a), inputs: [cur], output: ao))
            cur = ao; maxIn = (1 << Int64(a.outBits)) - 1
            if poolCodes { pool(kindOf: tensors[cur]) }
        }
        let flat = add(.code(TensorShape(c: shape.count, h: 1, w: 1), bits: tensors[cur].bits))
        nodes.append(Node(.flatten, inputs: [cur], output: flat))
        cur = flat; shape = TensorShape(c: shape.count, h: 1, w: 1)
        crossbar(cout: rng.int(1...10), k: 1)
        return Program(tensors: tensors, nodes: nodes, input: 0, output: cur, arrayRows: arrayRows)
    }

    func testRandomProgramsFastEqualsReference() throws {
        var rng = Xoshiro256StarStar(seed: 101)
        var valid = 0, fusedTotal = 0
        for case_ in 0..<250 {
            let p = Self.randomProgram(&rng)
            do { try p.validate() } catch {
                XCTFail("generated program \(case_) should be valid: \(error)"); continue
            }
            valid += 1
            // every kernel set this CPU runs
            for set in IntDispatch.available {
                let engine = try Engine(program: p, threads: 2, kernels: set)
                if set == IntDispatch.available[0] { fusedTotal += engine.compiled.fusedCount }
                let n = engine.inputCount
                let images = (0..<(3 * n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let batch = engine.inferBatch(images, count: 3, threads: 2)
                for i in 0..<3 {
                    let px = Array(images[(i * n)..<((i + 1) * n)])
                    let ref = Reference.run(p, pixels: px)
                    let tr = engine.trace(pixels: px)
                    for t in 0..<p.tensors.count { assertBitExact(ref.tensors[t], tr.tensors[t], stage: "program \(case_) \(set) image \(i) tensor \(t)") }
                    for k in 0..<p.nodes.count where !ref.tileADC[k].isEmpty {
                        for t in 0..<ref.tileADC[k].count { assertBitExact(ref.tileADC[k][t], tr.tileADC[k][t], stage: "program \(case_) \(set) node \(k) tile \(t)") }
                    }
                    let m = engine.outputCount
                    assertBitExact(ref.tensors[p.output], Array(batch.logits[(i * m)..<((i + 1) * m)]), stage: "program \(case_) \(set) image \(i) fused logits")
                }
            }
        }
        XCTAssertEqual(valid, 250)
        XCTAssertGreaterThan(fusedTotal, 10, "some layers fused")
    }
}
