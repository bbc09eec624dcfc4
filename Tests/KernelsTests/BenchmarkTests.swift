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
            let cpu0 = processCPUSeconds()
            let r = try benchmarkInference(program: p, pixels: images, batch: batch, threads: threads, minSeconds: 1.5)
            // CPU time of the process (all threads) per image, the warm-up batch included
            let cpu = (processCPUSeconds() - cpu0) / Double(r.images + batch)
            print(String(format: "bench CNN batch %d threads %d: %.2f us/image, %.0f images/s, %.2f us/batch (wall); CPU %.2f us/image, %.0f images/s per CPU-second",
                         batch, threads, r.secondsPerImage * 1e6, r.imagesPerSecond, r.secondsPerBatch * 1e6, cpu * 1e6, 1 / cpu))
        }
    }

    /// A per-pixel program (one prediction per output pixel) benchmarks like a classifier.
    func testBenchmarkRunsAPerPixelProgram() throws {
        let p = SamplePrograms.tinyUNet(seed: 3)
        let r = try benchmarkInference(program: p, pixels: SamplePrograms.images(2, seed: 4), batch: 2, threads: 1, minSeconds: 0)
        XCTAssertGreaterThanOrEqual(r.images, 2)
    }
}

/// CPU time of the whole process (user + system, all threads), seconds.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
