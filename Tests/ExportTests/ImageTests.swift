// The per-array images (.mem and .coe), parsed back with the parsers in Support.swift and
// compared cell by cell with the model through Device's cell lookup; and the $readmemh
// acceptance test with iverilog.
import XCTest
import DataIO
import Export
import Foundation
import Kernels
import ModelFile

final class ImageTests: XCTestCase {
    /// Cell (row, col) of a parsed image with `lanes` lanes of `laneBits` bits per word.
    func cell(_ words: [[UInt8]], row: Int, col: Int, cols: Int, lanes: Int, laneBits: Int) -> UInt64 {
        let wpr = (cols + lanes - 1) / lanes
        return field(words[row * wpr + col / lanes], (col % lanes) * laneBits, laneBits)
    }

    func checkCellImages(_ f: ExportFixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let e = expectedCells(f.bundle)
        let hasCond = !f.bundle.metadata.conductances.isEmpty
        for a in e.weights.indices {
            for (what, expect) in [("weights", e.weights[a])] + (hasCond ? [("conductance", e.conductance[a])] : []) {
                let mem = parseMem(text(f.dir, "array\(a).\(what).mem"), wordBits: 64)
                let coe = parseCoe(text(f.dir, "array\(a).\(what).coe"), wordBits: 64)
                let wpr = (e.cols + 7) / 8
                XCTAssertEqual(mem.count, e.rows * wpr, "array \(a) \(what) depth", file: file, line: line)
                XCTAssertEqual(coe.radix, 16, file: file, line: line)
                XCTAssertEqual(coe.words, mem, "array \(a) \(what): .coe and .mem differ", file: file, line: line)
                XCTAssert(coe.comments.contains { $0.contains("depth \(e.rows * wpr) words, width 64 bits") }, "coe header: \(coe.comments)", file: file, line: line)
                var bad = 0
                for r in 0..<e.rows {
                    for c in 0..<(wpr * 8) {
                        let got = cell(mem, row: r, col: c, cols: e.cols, lanes: 8, laneBits: 8)
                        let want = c < e.cols ? UInt64(expect[r * e.cols + c]) : 0
                        if got != want { bad += 1; if bad < 5 { XCTFail("array \(a) \(what) row \(r) col \(c): \(got) != \(want)", file: file, line: line) } }
                    }
                }
                XCTAssertEqual(bad, 0, "array \(a) \(what): wrong cells", file: file, line: line)
            }
            // Masks: one bit per cell, 32 per word.
            let mem = parseMem(text(f.dir, "array\(a).mask.mem"), wordBits: 32)
            let coe = parseCoe(text(f.dir, "array\(a).mask.coe"), wordBits: 32)
            let wpr = (e.cols + 31) / 32
            XCTAssertEqual(mem.count, e.rows * wpr, file: file, line: line)
            XCTAssertEqual(coe.words, mem, file: file, line: line)
            var bad = 0
            for r in 0..<e.rows {
                for c in 0..<(wpr * 32) {
                    let got = cell(mem, row: r, col: c, cols: e.cols, lanes: 32, laneBits: 1) == 1
                    let want = c < e.cols && e.keptCell[a][r * e.cols + c]
                    if got != want { bad += 1; if bad < 5 { XCTFail("array \(a) mask row \(r) col \(c): \(got) != \(want)", file: file, line: line) } }
                }
            }
            XCTAssertEqual(bad, 0, file: file, line: line)
        }
        XCTAssertFalse(fileExists(f.dir + "/array\(e.weights.count).weights.mem"), "an image beyond arrayCount", file: file, line: line)
    }

    func testFashionCNNImagesMatchTheModel() throws {
        let f = fixture("fashion")
        // The test model is what the issue asks for: conv2 has two row tiles, on 512x512 arrays.
        XCTAssertEqual(crossbars(f.bundle)[1].tiles.count, 2)
        XCTAssertEqual(f.bundle.metadata.placement!.arrayRows, 512)
        XCTAssertFalse(fileExists(f.dir + "/array0.conductance.mem"), "no conductance images without conductance codes")
        try checkCellImages(f)
    }

    func testSmallOddArraysWithConductancesAndMissingMaskMatchTheModel() throws {
        let f = fixture("small")
        XCTAssertGreaterThan(f.bundle.metadata.placement!.arrayCount, 1)
        XCTAssertEqual(f.bundle.metadata.placement!.arrayCols % 8, 6, "columns not a multiple of a word: padding lanes are exercised")
        try checkCellImages(f)
    }

    /// An rnn node's two matrices are two crossbar layers on the arrays (input, then recurrent).
    func testCRNNImagesHoldBothRNNMatrices() throws {
        let f = fixture("crnn")
        let layers = f.bundle.program.crossbarLayers
        XCTAssertEqual(layers.map(\.part), [0, 0, 1, 0, 0])
        XCTAssertEqual(Set(f.bundle.metadata.placement!.tiles.map(\.layer)), Set(0..<5))
        try checkCellImages(f)
    }

    func testNegativeCodesAreTwosComplementBytes() throws {
        // A hand-checked word: array image bytes are the codes' two's complement.
        var img = MemoryImage(wordBits: 64, depth: 1)
        img.bytes = [0x05, 0x00, 0xFA, 0x00, 0x80, 0x00, 0x7F, 0xFF]
        XCTAssertEqual(String(decoding: img.mem(), as: UTF8.self).split(separator: "\n").last, "ff7f008000fa0005")
        let coe = String(decoding: img.coe(), as: UTF8.self)
        XCTAssert(coe.hasSuffix("memory_initialization_radix=16;\nmemory_initialization_vector=\nff7f008000fa0005;\n"), coe)
    }

    // MARK: iverilog

    /// Loads `path` with $readmemh into `depth` words of `width` bits and prints a checksum:
    /// acc = ((acc ^ mem[i]) * P + i) mod 2^width over all words.
    func verilogChecksum(_ iverilog: String, _ vvp: String, path: String, width: Int, depth: Int, work: String) throws -> String {
        let bench = """
        module tb;
          reg [\(width - 1):0] mem [0:\(depth - 1)];
          reg [\(width - 1):0] acc;
          localparam [\(width - 1):0] P = 'h100000001b3;
          integer i;
          initial begin
            $readmemh("\(path)", mem);
            acc = 0;
            for (i = 0; i < \(depth); i = i + 1) acc = (acc ^ mem[i]) * P + i;
            $display("%h", acc);
            $finish;
          end
        endmodule

        """
        let v = work + "/tb_\(width).v", out = work + "/tb_\(width).vvp"
        try writeFileAtomically(Array(bench.utf8), to: v)
        let c = try runTool(iverilog, ["-o", out, v])
        XCTAssertEqual(c.status, 0, c.err)
        let r = try runTool(vvp, ["-n", out])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertFalse((r.out + r.err).lowercased().contains("warning"), r.out + r.err)   // e.g. "too many words in the file"
        return r.out.split(separator: "\n").first { !$0.hasPrefix("VCD") && !$0.isEmpty }.map(String.init) ?? ""
    }

    /// The same checksum over words (little-endian bytes) computed here.
    func swiftChecksum(_ words: [[UInt8]], width: Int) -> String {
        let mask: UInt128 = width == 128 ? .max : (UInt128(1) << UInt128(width)) - 1
        let p = UInt128(0x100000001b3) & mask
        var acc: UInt128 = 0
        for (i, w) in words.enumerated() {
            var x: UInt128 = 0
            for (j, b) in w.enumerated() { x |= UInt128(b) << UInt128(8 * j) }
            acc = ((acc ^ x) &* p &+ UInt128(i)) & mask
        }
        let h = String(acc, radix: 16)
        return String(repeating: "0", count: width / 4 - h.count) + h
    }

    /// Expected words of an array image, built from the expected cells (Support.swift).
    func expectedWords(_ e: ExpectedCells, array a: Int, _ what: String) -> [[UInt8]] {
        var words: [[UInt8]] = []
        if what == "mask" {
            let mpr = (e.cols + 31) / 32
            for r in 0..<e.rows {
                for k in 0..<mpr {
                    var w = [UInt8](repeating: 0, count: 4)
                    for j in 0..<32 where k * 32 + j < e.cols && e.keptCell[a][r * e.cols + k * 32 + j] { w[j / 8] |= 1 << (j % 8) }
                    words.append(w)
                }
            }
        } else {
            let cells = what == "weights" ? e.weights[a] : e.conductance[a]
            let wpr = (e.cols + 7) / 8
            for r in 0..<e.rows {
                for k in 0..<wpr { words.append((0..<8).map { j in k * 8 + j < e.cols ? cells[r * e.cols + k * 8 + j] : 0 }) }
            }
        }
        return words
    }

    func testReadmemhLoadsTheImagesWithOurChecksum() throws {
        guard let iverilog = tool("iverilog"), let vvp = tool("vvp") else {
            throw XCTSkip("iverilog/vvp not installed (Debian package iverilog): $readmemh test skipped")
        }
        let work = tempDir("iverilog")
        defer { removeTree(work) }
        for name in ["fashion", "small"] {
            let f = fixture(name)
            let e = expectedCells(f.bundle)
            let kinds = name == "small" ? ["weights", "conductance", "mask"] : ["weights", "mask"]
            for a in e.weights.indices {
                for what in kinds {
                    let words = expectedWords(e, array: a, what)
                    let width = what == "mask" ? 32 : 64
                    XCTAssertEqual(try verilogChecksum(iverilog, vvp, path: f.dir + "/array\(a).\(what).mem", width: width, depth: words.count, work: work),
                                   swiftChecksum(words, width: width), "\(name) array \(a) \(what)")
                    // The checksum is sensitive: one word short, or one bit flipped, changes it.
                    XCTAssertNotEqual(swiftChecksum(Array(words.dropLast()), width: width), swiftChecksum(words, width: width))
                    var flipped = words
                    flipped[words.count / 2][0] ^= 1
                    XCTAssertNotEqual(swiftChecksum(flipped, width: width), swiftChecksum(words, width: width))
                }
            }
            // The requant ROM: words built here from the program (ROMTests checks the fields).
            let rom = expectedROM(f.bundle.program)
            XCTAssertEqual(try verilogChecksum(iverilog, vvp, path: f.dir + "/requant.mem", width: 128, depth: rom.count, work: work),
                           swiftChecksum(rom, width: 128), "\(name) ROM")
        }
    }
}
