// Every kernel set this CPU runs (IntDispatch.swift) and every thread count give the committed
// golden vectors' logits, element by element: the choice of set changes speed only.
import XCTest
import DataIO
import Kernels
import ModelFile
@testable import Verify

final class KernelSetTests: XCTestCase {
    func testCommittedGoldenLogitsOnEveryKernelSetAndThreadCount() throws {
        guard let root = repositoryRoot() else { throw XCTSkip("repository root not found from \(#filePath)") }
        let models = CommittedGolden.modelFiles(root: root)
        var checked = 0
        for name in ["fashion-mnist", "fashion-mnist-resnet", "spoken-digit", "drive"] {
            let dir = root + "/golden/" + name
            guard FileManager.default.fileExists(atPath: dir + "/manifest.json") else { continue }
            let golden = try Golden.read(dir: dir)
            let path = try XCTUnwrap(models[golden.modelSHA256], "the model of \(dir)")
            let program = try ModelBundle.decode(try readFileBytes(path), name: path).program
            let input = golden.values[0].map { UInt8(truncatingIfNeeded: $0) }
            let j = try XCTUnwrap(golden.points.firstIndex { $0.tensor == program.output }, "\(dir) records the output")
            let expected = golden.values[j]
            for set in IntDispatch.available {
                for threads in [1, 2] {
                    let engine = try Engine(program: program, threads: threads, kernels: set)
                    let got = engine.inferBatch(input, count: golden.count, threads: threads).logits
                    XCTAssertEqual(got.count, expected.count, "\(name) \(set) \(threads) threads")
                    if let i = (0..<Swift.min(got.count, expected.count)).first(where: { got[$0] != expected[$0] }) {
                        let (n, c, h, w) = golden.points[j].coordinates(ofFlatIndex: i)
                        XCTFail("\(name), kernel set \(set), \(threads) threads: logits (\(golden.points[j].name)) image \(n), flat index \(i) (c=\(c), h=\(h), w=\(w)): expected \(expected[i]), got \(got[i])")
                    }
                    checked += 1
                }
            }
        }
        if checked == 0 { throw XCTSkip("no committed golden vectors under \(root)/golden") }
        XCTAssertEqual(checked, 4 * 2 * IntDispatch.available.count, "every committed model, set and thread count")
    }
}
