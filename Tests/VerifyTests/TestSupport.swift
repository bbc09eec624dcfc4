import DataIO
import Foundation
import Kernels
import ModelFile
import Verify
import XCTest

/// A fresh temporary directory (removed by the caller's `addTeardownBlock`).
func makeTempDir(_ test: XCTestCase) -> String {
    let d = NSTemporaryDirectory() + "verifytests-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
    return d
}

/// Deterministic pseudo-random pixels for `count` images of `program`.
func samplePixels(_ program: Program, count: Int, seed: UInt64) -> [UInt8] {
    var rng = SampleRNG(seed: seed)
    let n = program.tensors[program.input].shape.count * count
    return (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) }
}

/// Writes `bundle` to `dir/name` and returns (path, SHA-256 of the file).
func writeModel(_ bundle: ModelBundle, _ dir: String, _ name: String) throws -> (String, String) {
    let path = dir + "/" + name
    try bundle.write(to: path)
    return (path, SHA256.hex(SHA256.hash(try readFileBytes(path))))
}

/// Repository root: the nearest ancestor of this file holding Package.swift.
func repositoryRoot(_ file: String = #filePath) -> String? {
    var url = URL(fileURLWithPath: file).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        url = url.deletingLastPathComponent()
    }
    return nil
}

/// Files of a flat directory, name -> bytes.
func directoryContents(_ dir: String) throws -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    for n in try FileManager.default.contentsOfDirectory(atPath: dir) { out[n] = try readFileBytes(dir + "/" + n) }
    return out
}

/// A model with several crossbars of several row tiles each (random valid sample).
func multiTileModel(seed: UInt64) -> ModelBundle {
    ModelSamples.network(input: TensorShape(c: 2, h: 7, w: 7), convs: [(4, 3, 1)], fcs: [9, 5], arrayRows: 8, seed: seed)
}

/// `multiTileModel` with tame quantizers (codes centred in their range, ADC gain 1/2 at 14 bits),
/// so that every layer carries nonzero codes and a changed weight shows in its tile's ADC codes.
func livelyModel(seed: UInt64) -> ModelBundle {
    var b = multiTileModel(seed: seed)
    for k in b.program.nodes.indices {
        switch b.program.nodes[k].op {
        case .inputQuant(var p):
            let c = p.multiplier.count
            p.multiplier = Array(repeating: 1, count: c); p.shift = Array(repeating: Int32(8 - p.outBits), count: c)
            p.offset = Array(repeating: 0, count: c)
            b.program.nodes[k].op = .inputQuant(p)
        case .activation(var p):
            let c = p.multiplier.count
            p.multiplier = Array(repeating: 1, count: c); p.shift = Array(repeating: 2, count: c)
            p.offset = Array(repeating: Int64(1) << (p.outBits + 1), count: c)
            b.program.nodes[k].op = .activation(p)
        case .crossbar(var p):
            for t in p.tiles.indices { p.tiles[t].multiplier = 1 << 30; p.tiles[t].shift = 0; p.tiles[t].bits = 14 }
            b.program.nodes[k].op = .crossbar(p)
        default: break
        }
    }
    return b
}
