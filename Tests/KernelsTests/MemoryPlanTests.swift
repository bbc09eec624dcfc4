import XCTest
@testable import Kernels

/// The run's arenas are shared by lifetime: no two tensors alive at the same step overlap, the
/// arenas are no larger than one slot per tensor, and runs equal traced runs bit for bit.
final class MemoryPlanTests: XCTestCase {
    func programs() throws -> [(String, Program)] {
        [("cnn", try SamplePrograms.fashionMNISTCNN(seed: 3)), ("crnn", try SamplePrograms.spokenDigitCRNN(seed: 4)),
         ("unet", try SamplePrograms.tinyUNet(seed: 5)), ("resnet", try SamplePrograms.tinyResNet(seed: 6))]
    }

    func testTensorsAliveTogetherNeverShareMemory() throws {
        for (name, p) in try programs() {
            let c = try CompiledProgram(p)
            let plan = c.memoryPlan
            let slots = plan.offsets.keys.sorted { ($0.code ? 1 : 0, $0.offset) < ($1.code ? 1 : 0, $1.offset) }
            XCTAssertTrue(plan.offsets.keys.contains { $0.code && $0.offset == c.traceOffsets[p.input] }, "\(name): the input has a slot")
            for (ai, a) in slots.enumerated() {
                let la = try XCTUnwrap(plan.lifetimes[a]), oa = plan.offsets[a]!
                XCTAssertLessThanOrEqual(oa + a.size, a.code ? c.codeArenaCount : c.sumArenaCount, "\(name): \(a) inside its arena")
                for b in slots[(ai + 1)...] where a.code == b.code {
                    let lb = try XCTUnwrap(plan.lifetimes[b]), ob = plan.offsets[b]!
                    let together = la.first <= lb.last && lb.first <= la.last
                    let overlap = oa < ob + b.size && ob < oa + a.size
                    XCTAssertFalse(together && overlap, "\(name): \(a) \(la) at \(oa) and \(b) \(lb) at \(ob) overlap")
                }
            }
            // every tensor the run reads or writes has a slot; fused-away ones have none
            for (i, _) in p.tensors.enumerated() where c.offsets[i] >= 0 {
                XCTAssertEqual(plan.offsets[MemorySlot(code: c.isCode[i], offset: c.traceOffsets[i], size: (p.tensors[i].shape.count + 7) / 8 * 8)], c.offsets[i], "\(name) tensor \(i)")
            }
            XCTAssertLessThanOrEqual(c.codeArenaCount, c.traceCodeArenaCount, name)
            XCTAssertLessThanOrEqual(c.sumArenaCount, c.traceSumArenaCount, name)
            // the same program compiles to the same layout
            XCTAssertEqual(try CompiledProgram(p).offsets, c.offsets, name)
        }
    }

    func testTheUNetsArenasShrinkAndRunsEqualTraces() throws {
        for (name, p) in try programs() {
            let c = try CompiledProgram(p)
            let before = c.traceCodeArenaCount * 2 + c.traceSumArenaCount * 4, after = c.codeArenaCount * 2 + c.sumArenaCount * 4
            print("\(name): arenas \(before) -> \(after) bytes")
            if name == "unet" || name == "resnet" { XCTAssertLessThan(after, before * 3 / 4, "\(name): \(before) -> \(after) bytes") }
            let e = try Engine(program: p, threads: 1)
            let images = name == "crnn" ? SamplePrograms.featureCodes(6, seed: 2) : SamplePrograms.images(6, seed: 2)
            let n = e.inputCount
            let (batch, _) = e.inferBatch(Array(images.prefix(6 * n)), count: 6)
            for i in 0..<6 {
                let tr = e.trace(pixels: Array(images[(i * n)..<((i + 1) * n)]))
                let got = Array(batch[(i * e.outputCount)..<((i + 1) * e.outputCount)])
                XCTAssertEqual(tr.tensors[p.output], got, "\(name) image \(i): run vs traced run")
            }
        }
    }
}
