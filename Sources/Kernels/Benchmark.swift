// Timing entry point for `edgecli bench infer` (hosted builds only: needs a clock).

#if !hasFeature(Embedded)
/// Result of `benchmarkInference`.
public struct InferenceBenchmark: Sendable, Equatable {
    public var batch: Int
    public var threads: Int
    /// Images inferred in the timed runs.
    public var images: Int
    public var seconds: Double
    public var secondsPerImage: Double { seconds / Double(max(images, 1)) }
    public var imagesPerSecond: Double { Double(images) / max(seconds, 1e-12) }
    /// Wall time of one batch (for batch 1: the single-image latency).
    public var secondsPerBatch: Double { seconds * Double(batch) / Double(max(images, 1)) }
}

/// Times the fast engine: batches of `batch` images (taken cyclically from `pixels`, which holds
/// whole images back to back) on `threads` threads, repeated until `minSeconds` have passed
/// (after one warm-up batch). Allocates only before timing.
public func benchmarkInference(program: Program, pixels: [UInt8], batch: Int, threads: Int = 1,
                               minSeconds: Double = 1.0) throws(ProgramError) -> InferenceBenchmark {
    let engine = try Engine(program: program, threads: threads)
    return benchmarkInference(engine: engine, pixels: pixels, batch: batch, threads: threads, minSeconds: minSeconds)
}

/// As above with an existing engine (its workspaces bound the thread count).
public func benchmarkInference(engine: Engine, pixels: [UInt8], batch: Int, threads: Int = 1,
                               minSeconds: Double = 1.0) -> InferenceBenchmark {
    let nIn = engine.inputCount
    let available = pixels.count / nIn
    precondition(available >= 1 && batch >= 1, "need at least one image and batch >= 1")
    var input = [UInt8](repeating: 0, count: batch * nIn)
    for i in 0..<batch {
        let j = i % available
        for k in 0..<nIn { input[i * nIn + k] = pixels[j * nIn + k] }
    }
    var logits = [Int32](repeating: 0, count: batch * engine.outputCount)
    var preds = [Int32](repeating: 0, count: batch)
    let clock = ContinuousClock()
    var images = 0
    var elapsed = Duration.zero
    input.withUnsafeBufferPointer { px in
        logits.withUnsafeMutableBufferPointer { lg in
            preds.withUnsafeMutableBufferPointer { pr in
                engine.inferBatch(pixels: px, count: batch, logits: lg, predictions: pr, threads: threads)  // warm-up
                let start = clock.now
                repeat {
                    engine.inferBatch(pixels: px, count: batch, logits: lg, predictions: pr, threads: threads)
                    images += batch
                    elapsed = clock.now - start
                } while Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18 < minSeconds
            }
        }
    }
    let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    return InferenceBenchmark(batch: batch, threads: min(threads, engine.threads), images: images, seconds: secs)
}
#endif
