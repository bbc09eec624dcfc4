// Test support: a generator of valid models with realistic placements (Device's CrossbarMapper),
// independent parsers for the export formats (.mem, .coe, CSV), the expected per-cell contents
// computed from the model and Device's own cell lookup, and small process/file helpers.
import XCTest
import DataIO
import Device
import FixedPoint
import Foundation
import Kernels
import ModelFile
import Randomness

// MARK: model generator

struct GenSpec {
    var input = TensorShape(c: 1, h: 28, w: 28)
    /// (out channels, kernel, pool after the activation)
    var convs: [(Int, Int, Int)] = [(64, 3, 2), (16, 3, 2)]
    var fcs: [Int] = [128, 10]
    var arrayRows = 512
    var arrayCols = 512
    /// Probability that a pair is kept.
    var keep = 0.3
    /// Per crossbar layer: 0 = no conductance codes, 1 or 2 planes. Empty = none stored.
    var conductancePlanes: [Int] = []
    /// Crossbar layers stored without a mask.
    var noMask: Set<Int> = []
    var placement = true
    /// Hidden units of an rnn layer after the convolutions (0: none); its input must be (C, 1, T).
    var rnnHidden = 0
}

/// A small CRNN: conv (3x3, no pool) to a (C, 1, T) map, an rnn (two crossbar layers: input and
/// recurrent matrices), two fc layers, on small odd-sized arrays.
func crnnSpec() -> GenSpec {
    GenSpec(input: TensorShape(c: 2, h: 3, w: 7), convs: [(3, 3, 1)], fcs: [5, 4], arrayRows: 20, arrayCols: 22, keep: 0.5, rnnHidden: 6)
}

/// The paper's Fashion-MNIST CNN: conv 1->64 3x3, pool 2, conv 64->16 3x3 (fan-in 576: two row
/// tiles), pool 2, fc 400->128, fc 128->10, on 512x512 arrays.
func fashionSpec() -> GenSpec { GenSpec() }

/// A small network on small, odd-sized arrays (columns not a multiple of 8 or 32; several arrays).
func smallSpec() -> GenSpec {
    GenSpec(input: TensorShape(c: 2, h: 8, w: 8), convs: [(5, 3, 2)], fcs: [9, 4], arrayRows: 20, arrayCols: 22, keep: 0.5)
}

func generate(_ spec: GenSpec, seed: UInt64) -> ModelBundle {
    var rng = Xoshiro256StarStar(seed: seed)
    func r(_ range: ClosedRange<Int>) -> Int { range.lowerBound + rng.int(below: range.count) }
    let roundings = RoundingRule.allCases
    func affine(_ ch: Int) -> AffineQuantParams {
        // Gains M / 2^S up to 1/16 and offsets within a few output codes: varied, not all clamped.
        let shifts = (0..<ch).map { _ in r(8...30) }
        return AffineQuantParams(multiplier: shifts.map { Int32(r(1...(1 << min(30, $0 - 4)))) }, shift: shifts.map { Int32($0) },
                                 offset: shifts.map { Int64(r(-(1 << ($0 + 1))...(1 << ($0 + 1)))) }, outBits: r(2...8),
                                 rounding: roundings[r(0...4)])
    }
    var tensors = [TensorDesc.code(spec.input, bits: 8)]
    var nodes: [Node] = []
    var cur = 0
    func add(_ op: Op, _ t: TensorDesc) { tensors.append(t); nodes.append(Node(op, inputs: [cur], output: tensors.count - 1)); cur = tensors.count - 1 }
    var masks: [PackedMask?] = [], conds: [ConductanceCodes?] = [], shapes: [LayerShape] = []
    func crossbar(_ inC: Int, _ outC: Int, _ k: Int) -> CrossbarParams {
        let fanIn = inC * k * k
        let wb = r(2...8), half = 1 << (wb - 1)
        var bits = [Bool](repeating: false, count: outC * fanIn)
        var w = [Int8](repeating: 0, count: outC * fanIn)
        for i in w.indices {
            bits[i] = rng.uniform() < spec.keep
            w[i] = bits[i] ? Int8(r(-half...(half - 1))) : Int8(r(-1...1))   // pruned: small residual code
        }
        let li = shapes.count
        masks.append(spec.noMask.contains(li) ? nil : PackedMask(bits))
        let planes = li < spec.conductancePlanes.count ? spec.conductancePlanes[li] : 0
        conds.append(planes == 0 ? nil : ConductanceCodes(planes: planes, codes: (0..<(planes * w.count)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
        shapes.append(LayerShape(name: "l\(li)", fanIn: fanIn, fanOut: outC))
        let tiles = (0..<((fanIn + spec.arrayRows - 1) / spec.arrayRows)).map { t in
            TileADC(rowStart: t * spec.arrayRows, rowCount: min(spec.arrayRows, fanIn - t * spec.arrayRows),
                    multiplier: Int32(r((1 << 29)...(1 << 30))), shift: Int32(r(-6...0)), rounding: roundings[r(0...4)], bits: r(6...16))
        }
        return CrossbarParams(inChannels: inC, outChannels: outC, kernelH: k, kernelW: k, weightBits: wb, weights: w,
                              weightLSBMicroSiemens: 1.5, tiles: tiles)
    }
    let a0 = affine(spec.input.c)
    add(.inputQuant(a0), .code(spec.input, bits: a0.outBits))
    for (outC, k, pool) in spec.convs {
        let c = crossbar(tensors[cur].shape.c, outC, k)
        add(.crossbar(c), .sum(c.outputShape(for: tensors[cur].shape)))
        let a = affine(outC)
        add(.activation(a), .code(tensors[cur].shape, bits: a.outBits))
        if pool > 1 {
            let s = tensors[cur].shape
            add(.maxPool(MaxPoolParams(pool)), .code(TensorShape(c: s.c, h: (s.h - pool) / pool + 1, w: (s.w - pool) / pool + 1), bits: tensors[cur].bits))
        }
    }
    if spec.rnnHidden > 0 {
        let s = tensors[cur].shape, hd = spec.rnnHidden
        precondition(s.h == 1, "rnn input must be (C, 1, T)")
        let ih = crossbar(s.c, hd, 1), hh = crossbar(hd, hd, 1)
        let hb = r(1...8), S = r(4...12), T = s.w
        // output ~ the mean hidden code: M / 2^(S+10) ~ 1 / (T 2^S)
        let out = AffineQuantParams(multiplier: (0..<hd).map { _ in Int32(r(512...2048) / T) }, shift: (0..<hd).map { _ in Int32(S + 10) },
                                    offset: (0..<hd).map { _ in Int64(r(-(1 << (S + 10))...(1 << (S + 10)))) }, outBits: r(2...8),
                                    rounding: roundings[r(0...4)])
        let rp = RNNParams(input: ih, recurrent: hh, inputMultiplier: Int32(r(1...(1 << S))), recurrentMultiplier: Int32(r(-(1 << S)...(1 << S))),
                           stateShift: Int32(S), hiddenBits: hb, hiddenRounding: roundings[r(0...4)], output: out)
        add(.rnn(rp), .code(TensorShape(c: hd, h: 1, w: 1), bits: rp.output.outBits))
    }
    if tensors[cur].shape.h != 1 || tensors[cur].shape.w != 1 {
        let t = tensors[cur]
        add(.flatten, TensorDesc(shape: TensorShape(c: t.shape.count, h: 1, w: 1), kind: t.kind, bits: t.bits))
    }
    for (j, outC) in spec.fcs.enumerated() {
        let c = crossbar(tensors[cur].shape.c, outC, 1)
        add(.crossbar(c), .sum(TensorShape(c: outC, h: 1, w: 1)))
        if j < spec.fcs.count - 1 {
            let a = affine(outC)
            add(.activation(a), .code(tensors[cur].shape, bits: a.outBits))
        }
    }
    let program = Program(tensors: tensors, nodes: nodes, input: 0, output: cur, arrayRows: spec.arrayRows)
    var placement: Placement? = nil
    if spec.placement {
        let cp = try! CrossbarMapper.place(shapes, arrayRows: spec.arrayRows, arrayCols: spec.arrayCols)
        placement = Placement(arrayRows: cp.arrayRows, arrayCols: cp.arrayCols, arrayCount: cp.arrayCount,
                              tiles: cp.tiles.map { PlacementTile(layer: $0.layer, array: $0.array, rowOffset: $0.rowOffset, rows: $0.rows,
                                                                  inputOffset: $0.inputOffset, colOffset: $0.colOffset,
                                                                  outputOffset: $0.outputOffset, outputs: $0.outputs) })
    }
    let md = ModelMetadata(task: "fashion-mnist \"q?\" ünï", targetName: "chip-512", targetHash: String(repeating: "ab", count: 32),
                           provenance: Provenance(seed: seed, epochs: 3, dataset: "fashion", floatAccuracy: 0.9, integerAccuracy: 0.89, toolVersion: "0.1.0"),
                           programming: ProgrammingCounts(maskFlips: shapes.map { _ in 0 }, cellsToReset: 0),
                           placement: placement, masks: masks.allSatisfy { $0 == nil } ? [] : masks,
                           conductances: spec.conductancePlanes.isEmpty ? [] : conds)
    return ModelBundle(program: program, metadata: md)
}

/// Device's view of the stored placement (an implementation of the cell lookup independent of Export).
func devicePlacement(_ b: ModelBundle) -> CrossbarPlacement {
    let pl = b.metadata.placement!
    let layers = crossbars(b).map { LayerShape(name: "", fanIn: $0.fanIn, fanOut: $0.outChannels) }
    return CrossbarPlacement(arrayRows: pl.arrayRows, arrayCols: pl.arrayCols, layers: layers,
                             tiles: pl.tiles.map { TilePlacement(layer: $0.layer, array: $0.array, rowOffset: $0.rowOffset, rows: $0.rows,
                                                                 inputOffset: $0.inputOffset, colOffset: $0.colOffset,
                                                                 outputOffset: $0.outputOffset, outputs: $0.outputs) },
                             arrayCount: pl.arrayCount)
}

func crossbars(_ b: ModelBundle) -> [CrossbarParams] {
    b.program.crossbarLayers.map { $0.params }
}

func kept(_ b: ModelBundle, layer: Int, _ index: Int) -> Bool {
    let ms = b.metadata.masks
    guard layer < ms.count, let m = ms[layer] else { return true }
    return m.bytes[index / 8] & (1 << (index % 8)) != 0
}

/// Expected cell contents per array (row-major `rows x cols`), from the model and Device's cell
/// lookup: weight codes (G+ cell), conductance codes, kept bits.
struct ExpectedCells {
    var weights: [[UInt8]]
    var conductance: [[UInt8]]
    var keptCell: [[Bool]]
    var rows: Int, cols: Int
}

func expectedCells(_ b: ModelBundle) -> ExpectedCells {
    let dp = devicePlacement(b)
    let n = dp.arrayRows * dp.arrayCols
    var e = ExpectedCells(weights: Array(repeating: Array(repeating: 0, count: n), count: dp.arrayCount),
                          conductance: Array(repeating: Array(repeating: 0, count: n), count: dp.arrayCount),
                          keptCell: Array(repeating: Array(repeating: false, count: n), count: dp.arrayCount),
                          rows: dp.arrayRows, cols: dp.arrayCols)
    for (li, c) in crossbars(b).enumerated() {
        let cond = li < b.metadata.conductances.count ? b.metadata.conductances[li] : nil
        for o in 0..<c.outChannels {
            for i in 0..<c.fanIn {
                let cell = dp.cell(layer: li, input: i, output: o)
                precondition(cell.array >= 0)
                let idx = o * c.fanIn + i
                let p = cell.row * dp.arrayCols + cell.colPlus, m = cell.row * dp.arrayCols + cell.colMinus
                e.weights[cell.array][p] = UInt8(bitPattern: c.weights[idx])
                if let cond {
                    e.conductance[cell.array][p] = cond.codes[idx]
                    if cond.planes == 2 { e.conductance[cell.array][m] = cond.codes[c.weights.count + idx] }
                }
                let k = kept(b, layer: li, idx)
                e.keptCell[cell.array][p] = k
                e.keptCell[cell.array][m] = k
            }
        }
    }
    return e
}

// MARK: independent parsers

/// A `$readmemh` file: `//` comments, one hex word per line with exactly `wordBits/4` digits.
/// Returns each word as little-endian bytes.
func parseMem(_ text: String, wordBits: Int, file: StaticString = #filePath, line: UInt = #line) -> [[UInt8]] {
    var words: [[UInt8]] = []
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var l = Substring(raw)
        if let r = l.range(of: "//") { l = l[..<r.lowerBound] }
        let t = l.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { continue }
        guard t.count == wordBits / 4, let w = hexWord(t) else { XCTFail("bad .mem word '\(t)'", file: file, line: line); return [] }
        words.append(w)
    }
    return words
}

/// Hex digits (most significant first) -> little-endian bytes.
func hexWord(_ s: String) -> [UInt8]? {
    let d = Array(s.utf8)
    guard d.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    var i = d.count - 2
    while i >= 0 {
        guard let hi = Int(String(UnicodeScalar(d[i])), radix: 16), let lo = Int(String(UnicodeScalar(d[i + 1])), radix: 16) else { return nil }
        out.append(UInt8(hi * 16 + lo))
        i -= 2
    }
    return out
}

/// A Xilinx .coe file: lines starting with ';' are comments; statements end with ';'.
func parseCoe(_ text: String, wordBits: Int, file: StaticString = #filePath, line: UInt = #line) -> (radix: Int, comments: [String], words: [[UInt8]]) {
    var comments: [String] = []
    var body = ""
    for l in text.split(separator: "\n") {
        let t = l.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix(";") { comments.append(t); continue }
        body += t + "\n"
    }
    var radix = -1
    var words: [[UInt8]] = []
    for stmt in body.split(separator: ";") {
        let s = stmt.trimmingCharacters(in: .whitespacesAndNewlines)
        if s.isEmpty { continue }
        let kv = s.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard kv.count == 2 else { XCTFail("bad .coe statement '\(s.prefix(40))'", file: file, line: line); continue }
        switch kv[0] {
        case "memory_initialization_radix": radix = Int(kv[1]) ?? -1
        case "memory_initialization_vector":
            for tok in kv[1].split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }) {
                guard tok.count == wordBits / 4, let w = hexWord(String(tok)) else { XCTFail("bad .coe word '\(tok)'", file: file, line: line); return (radix, comments, []) }
                words.append(w)
            }
        default: XCTFail("unknown .coe keyword \(kv[0])", file: file, line: line)
        }
    }
    return (radix, comments, words)
}

/// CSV rows (header first) as string fields.
func parseCSV(_ bytes: [UInt8]) -> [[String]] {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
}

/// Bits `lo..<lo+width` of a little-endian word as an unsigned value (width <= 64).
func field(_ w: [UInt8], _ lo: Int, _ width: Int) -> UInt64 {
    var v: UInt64 = 0
    for b in 0..<width where w[(lo + b) / 8] & (1 << ((lo + b) % 8)) != 0 { v |= 1 << UInt64(b) }
    return v
}

/// Sign-extends the low `width` bits.
func signed(_ v: UInt64, _ width: Int) -> Int64 {
    width == 64 ? Int64(bitPattern: v) : (Int64(bitPattern: v << UInt64(64 - width)) >> Int64(64 - width))
}

// MARK: files and processes

/// All temporary directories of this test process live under one root, removed at exit.
let tempRoot: String = {
    let r = NSTemporaryDirectory() + "export-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: r, withIntermediateDirectories: true)
    atexit { removeTree(tempRoot) }
    return r
}()

func tempDir(_ name: String) -> String {
    let d = tempRoot + "/\(name)-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

func removeTree(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

func listDir(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

func text(_ dir: String, _ name: String) -> String { String(decoding: try! readFileBytes(dir + "/" + name), as: UTF8.self) }

/// Full path of an executable on PATH, or nil.
func tool(_ name: String) -> String? {
    for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(d)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

/// Runs a process; returns (status, stdout, stderr).
@discardableResult
func runTool(_ exe: String, _ args: [String], cwd: String? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let o = Pipe(), e = Pipe()
    p.standardOutput = o; p.standardError = e
    try p.run()
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let g = DispatchGroup()
    g.enter()
    DispatchQueue.global().async { errBox.data = e.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    let outData = o.fileHandleForReading.readDataToEndOfFile()
    g.wait()
    let errData = errBox.data
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// The export of a generated model, written once per spec and seed and shared by the tests.
final class ExportFixture: @unchecked Sendable {
    let bundle: ModelBundle
    let dir: String
    init(_ spec: GenSpec, seed: UInt64, name: String) {
        bundle = generate(spec, seed: seed)
        let parent = tempDir(name)
        dir = parent + "/out"
        _ = try! Exporter.export(bundle, to: dir)
    }
    init(bundle: ModelBundle, name: String) {
        self.bundle = bundle
        dir = tempDir(name) + "/out"
        _ = try! Exporter.export(bundle, to: dir)
    }
}

import Export

nonisolated(unsafe) var fixtures: [String: ExportFixture] = [:]
let fixtureLock = NSLock()

func fixture(_ name: String) -> ExportFixture {
    fixtureLock.lock(); defer { fixtureLock.unlock() }
    if let f = fixtures[name] { return f }
    let f: ExportFixture
    switch name {
    case "fashion": f = ExportFixture(fashionSpec(), seed: 11, name: name)
    case "unet": f = ExportFixture(bundle: ModelSamples.graph(seed: 21, unet: true), name: name)
    case "resnet": f = ExportFixture(bundle: ModelSamples.graph(seed: 22, unet: false, conductance: true), name: name)
    case "small":
        var s = smallSpec()
        s.conductancePlanes = [2, 0, 1]
        s.noMask = [1]
        f = ExportFixture(s, seed: 5, name: name)
    case "crnn":
        var s = crnnSpec()
        s.conductancePlanes = [0, 2, 1, 0, 0]
        s.noMask = [2]
        f = ExportFixture(s, seed: 7, name: name)
    default: fatalError(name)
    }
    fixtures[name] = f
    return f
}
