// The requantization ROM: parsed back from requant.mem / requant.coe and decoded field by field
// (docs/EXPORT.md section 5), compared with the program's parameters.
import XCTest
import DataIO
import Export
import FixedPoint
import Kernels
import ModelFile

/// The ROM words the docs specify, built here from the program with 128-bit arithmetic.
func expectedROM(_ p: Program) -> [[UInt8]] {
    var words: [UInt128] = []
    func entry(_ kind: UInt128, _ m: Int32, _ s: Int32, _ off: Int64, _ bits: Int, _ r: RoundingRule) -> UInt128 {
        UInt128(UInt32(bitPattern: m)) | UInt128(UInt8(bitPattern: Int8(s))) << 32 | UInt128(UInt64(bitPattern: off)) << 40
            | UInt128(bits) << 104 | UInt128(r.rawValue) << 112 | kind << 116
    }
    for n in p.nodes {
        switch n.op {
        case .inputQuant(let a):
            for c in a.multiplier.indices { words.append(entry(1, a.multiplier[c], a.shift[c], a.offset[c], a.outBits, a.rounding)) }
        case .activation(let a):
            for c in a.multiplier.indices { words.append(entry(2, a.multiplier[c], a.shift[c], a.offset[c], a.outBits, a.rounding)) }
        case .crossbar(let x):
            for t in x.tiles { words.append(entry(3, t.multiplier, t.shift, 0, t.bits, t.rounding)) }
        case .rnn(let r):
            for t in r.input.tiles + r.recurrent.tiles { words.append(entry(3, t.multiplier, t.shift, 0, t.bits, t.rounding)) }
            words.append(entry(4, r.inputMultiplier, r.stateShift, 0, r.hiddenBits, r.hiddenRounding))
            words.append(entry(4, r.recurrentMultiplier, r.stateShift, 0, r.hiddenBits, r.hiddenRounding))
            let a = r.output
            for c in a.multiplier.indices { words.append(entry(5, a.multiplier[c], a.shift[c], a.offset[c], a.outBits, a.rounding)) }
        case .add(let a):
            // per channel the first multiplier (kind 6), then the second (kind 7)
            let q = a.first
            for c in q.multiplier.indices {
                words.append(entry(6, q.multiplier[c], q.shift[c], q.offset[c], q.outBits, q.rounding))
                words.append(entry(7, a.secondMultiplier[c], q.shift[c], q.offset[c], q.outBits, q.rounding))
            }
        case .concat(let a):
            let q = a.quant
            for c in q.multiplier.indices { words.append(entry(8, q.multiplier[c], q.shift[c], q.offset[c], q.outBits, q.rounding)) }
        case .upsampleBilinear(let u):
            // the divisor Dy Dx, D = max(m - 1, 1) per axis of output length m; 1 when exact
            let t = p.tensors[n.output]
            let den = t.kind == .sum ? 1 : max(t.shape.h - 1, 1) * max(t.shape.w - 1, 1)
            words.append(entry(9, Int32(u.factorH), Int32(u.factorW), Int64(den), t.bits, u.rounding))
        case .globalAvgPool(let g):
            // the divisor H W; 1 when a code input gives its exact sums
            let i = p.tensors[n.inputs[0]], t = p.tensors[n.output]
            let den = i.kind == .code && t.kind == .sum ? 1 : i.shape.h * i.shape.w
            words.append(entry(10, 0, 0, Int64(den), t.bits, g.rounding))
        case .maxPool, .flatten: break
        }
    }
    return words.map { w in (0..<16).map { UInt8(truncatingIfNeeded: w >> UInt128(8 * $0)) } }
}

final class ROMTests: XCTestCase {
    func testROMFieldsDecodeToTheProgramParameters() throws {
        for name in ["fashion", "small", "crnn", "unet", "resnet"] {
            let f = fixture(name)
            let p = f.bundle.program
            let mem = parseMem(text(f.dir, "requant.mem"), wordBits: 128)
            let coe = parseCoe(text(f.dir, "requant.coe"), wordBits: 128)
            XCTAssertEqual(coe.radix, 16)
            XCTAssertEqual(coe.words, mem)
            let want = expectedROM(p)
            XCTAssertEqual(mem.count, want.count, "\(name): entries")
            if let k = (0..<min(mem.count, want.count)).first(where: { mem[$0] != want[$0] }) {
                XCTFail("\(name): entry \(k) is \(mem[k]), the docs give \(want[k])")
            }
            // Decode each word (sign-extending) and walk the program.
            var k = 0
            for (i, n) in p.nodes.enumerated() {
                func check(_ kind: UInt64, _ m: Int32, _ s: Int32, _ off: Int64, _ bits: Int, _ r: RoundingRule) {
                    let w = mem[k]
                    XCTAssertEqual(signed(field(w, 0, 32), 32), Int64(m), "node \(i) entry \(k) multiplier")
                    XCTAssertEqual(signed(field(w, 32, 8), 8), Int64(s), "node \(i) entry \(k) shift")
                    XCTAssertEqual(signed(field(w, 40, 64), 64), off, "node \(i) entry \(k) offset")
                    XCTAssertEqual(field(w, 104, 8), UInt64(bits))
                    XCTAssertEqual(field(w, 112, 4), UInt64(r.rawValue))
                    XCTAssertEqual(field(w, 116, 4), kind)
                    XCTAssertEqual(field(w, 120, 8), 0)
                    k += 1
                }
                switch n.op {
                case .inputQuant(let a): for c in a.multiplier.indices { check(1, a.multiplier[c], a.shift[c], a.offset[c], a.outBits, a.rounding) }
                case .activation(let a): for c in a.multiplier.indices { check(2, a.multiplier[c], a.shift[c], a.offset[c], a.outBits, a.rounding) }
                case .crossbar(let x): for t in x.tiles { check(3, t.multiplier, t.shift, 0, t.bits, t.rounding) }
                case .rnn(let r):
                    for t in r.input.tiles + r.recurrent.tiles { check(3, t.multiplier, t.shift, 0, t.bits, t.rounding) }
                    check(4, r.inputMultiplier, r.stateShift, 0, r.hiddenBits, r.hiddenRounding)
                    check(4, r.recurrentMultiplier, r.stateShift, 0, r.hiddenBits, r.hiddenRounding)
                    for c in r.output.multiplier.indices { check(5, r.output.multiplier[c], r.output.shift[c], r.output.offset[c], r.output.outBits, r.output.rounding) }
                case .add(let a):
                    for c in a.first.multiplier.indices {
                        check(6, a.first.multiplier[c], a.first.shift[c], a.first.offset[c], a.first.outBits, a.first.rounding)
                        check(7, a.secondMultiplier[c], a.first.shift[c], a.first.offset[c], a.first.outBits, a.first.rounding)
                    }
                case .concat(let a):
                    for c in a.quant.multiplier.indices { check(8, a.quant.multiplier[c], a.quant.shift[c], a.quant.offset[c], a.quant.outBits, a.quant.rounding) }
                case .upsampleBilinear(let u):
                    let t = p.tensors[n.output]
                    check(9, Int32(u.factorH), Int32(u.factorW), t.kind == .sum ? 1 : Int64(max(t.shape.h - 1, 1) * max(t.shape.w - 1, 1)), t.bits, u.rounding)
                case .globalAvgPool(let g):
                    let i = p.tensors[n.inputs[0]], t = p.tensors[n.output]
                    check(10, 0, 0, i.kind == .code && t.kind == .sum ? 1 : Int64(i.shape.h * i.shape.w), t.bits, g.rounding)
                case .maxPool, .flatten: break
                }
            }
            XCTAssertEqual(k, mem.count)
            if name == "unet" || name == "resnet" {
                // the graph fixtures hold every graph op's entries
                let kinds = Set(mem.map { field($0, 116, 4) })
                XCTAssertTrue(kinds.isSuperset(of: name == "unet" ? [8, 9] : [6, 7, 10]), "\(name): entry kinds \(kinds.sorted())")
                continue
            }
            // Negative values are present, so sign handling is exercised.
            XCTAssert(mem.contains { signed(field($0, 40, 64), 64) < 0 }, "no negative offset in the test model")
            XCTAssert(mem.contains { signed(field($0, 32, 8), 8) < 0 }, "no negative ADC shift in the test model")
        }
    }

    func testIndexCSVGivesEachNodesEntries() throws {
        let f = fixture("fashion")
        let p = f.bundle.program
        let rows = parseCSV(try readFileBytes(f.dir + "/requant_index.csv"))
        XCTAssertEqual(rows.first, ["node", "op", "first_entry", "entries"])
        XCTAssertEqual(rows.count - 1, p.nodes.count)
        var next = 0
        for (i, n) in p.nodes.enumerated() {
            let want: Int
            switch n.op {
            case .inputQuant(let a), .activation(let a): want = a.multiplier.count
            case .crossbar(let x): want = x.tiles.count
            default: want = 0
            }
            XCTAssertEqual(rows[i + 1], ["\(i)", ["", "input_quant", "max_pool", "crossbar", "activation", "flatten"][Int(n.op.kind.rawValue)], "\(next)", "\(want)"])
            next += want
        }
    }

    func testEmptyROMHasOneZeroWord() {
        // A program whose nodes carry no parameters cannot be exported (no crossbar), but the ROM
        // encoder itself must still produce a loadable image.
        let p = Program(tensors: [.code(TensorShape(c: 1, h: 2, w: 2), bits: 8), .code(TensorShape(c: 4, h: 1, w: 1), bits: 8)],
                        nodes: [Node(.flatten, inputs: [0], output: 1)], input: 0, output: 1)
        let img = RequantROM.image(p)
        XCTAssertEqual(img.depth, 1)
        XCTAssertEqual(parseMem(String(decoding: img.mem(), as: UTF8.self), wordBits: 128), [[UInt8](repeating: 0, count: 16)])
    }
}
