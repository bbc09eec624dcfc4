// Speed figures (skipped unless KERNELS_BENCH=1; meaningful only in release):
//   KERNELS_BENCH=1 swift test -c release --filter KernelsTests.BenchmarkTests

import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Kernels

final class BenchmarkTests: XCTestCase {
    func testBenchmarkCNN() throws {
        guard getenv("KERNELS_BENCH") != nil else { throw XCTSkip("set KERNELS_BENCH=1") }
        let p = SamplePrograms.fashionMNISTCNN(seed: 21)
        let images = SamplePrograms.images(256, seed: 22)
        for (batch, threads) in [(1, 1), (256, 1), (256, 2)] {
            let r = try benchmarkInference(program: p, pixels: images, batch: batch, threads: threads, minSeconds: 1.5)
            print(String(format: "bench CNN batch %d threads %d: %.2f us/image, %.0f images/s, %.2f us/batch",
                         batch, threads, r.secondsPerImage * 1e6, r.imagesPerSecond, r.secondsPerBatch * 1e6))
        }
    }
}
