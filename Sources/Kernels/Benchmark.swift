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
    var preds = [Int32](repeating: 0, count: batch * engine.predictionsPerImage)
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

/// Per-step cost of the fast engine (1 thread, batch 1): for `runs` images (taken cyclically
/// from `pixels`), the image is run step by step and every step timed on its own; returns per
/// step (in `CompiledProgram` step order, fusion as in `run`) a label and the median and p10
/// of its time in microseconds. "io" is the pixel transposition in and the logits out.
public func profileSteps(engine: Engine, pixels: [UInt8], runs: Int) -> [(name: String, medianUS: Double, p10US: Double)] {
    let c = engine.compiled, ws = engine.workspaces[0]
    let nIn = c.inputCount
    let available = pixels.count / nIn
    precondition(available >= 1 && runs >= 1, "need at least one image and one run")
    let p = c.program
    var names: [String] = ["io"]
    for st in c.steps {
        switch st {
        case let .affine(_, _, _, px, ch, _): names.append("affine \(px)x\(ch)")
        case let .maxPool(_, _, code, shape, _): names.append("maxPool \(shape.c)x\(shape.h)x\(shape.w)\(code ? "" : " sums")")
        case let .maxPoolAffine(_, _, shape, _): names.append("maxPool+act \(shape.c)x\(shape.h)x\(shape.w)")
        case let .flatten(_, _, _, shape): names.append("flatten \(shape.count)")
        case let .crossbar(_, _, k, _):
            let g = k.geometry
            names.append("crossbar \(g.inShape.c)->\(g.cout) \(g.outShape.h)x\(g.outShape.w), \(g.tileCount) tiles, \(k.name)")
        case let .crossbarActivation(_, _, k):
            let g = k.geometry
            names.append("crossbar+act \(g.inShape.c)->\(g.cout) \(g.outShape.h)x\(g.outShape.w), \(k.name)")
        case .rnn: names.append("rnn")
        case let .add(_, _, _, _, _, px, ch, _): names.append("add \(px)x\(ch)")
        case let .concat(parts, _, px, ch): names.append("concat \(parts.count) -> \(px)x\(ch)")
        case let .upsample(_, _, _, _, plan): names.append("upsample \(plan.inShape) -> \(plan.outShape)\(plan.exact ? " exact" : "")")
        case let .globalAvgPool(_, srcCode, _, dstCode, shape, _): names.append("globalAvgPool \(shape)\(srcCode && !dstCode ? " exact" : "")")
        }
    }
    var times = [[Double]](repeating: [Double](repeating: 0, count: runs), count: names.count)
    var logits = [Int32](repeating: 0, count: c.outputCount)
    let clock = ContinuousClock()
    func secs(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
    pixels.withUnsafeBufferPointer { px in
        logits.withUnsafeMutableBufferPointer { lg in
            for r in -min(runs, 100)..<runs {   // (negative r: warm-up)
                let img = px.baseAddress! + (abs(r) % available) * nIn
                var t0 = clock.now
                c.loadPixels(img, ws)
                let os = p.tensors[p.output].shape
                if c.isCode[p.output] { Fast.hwcToCHW(src: ws.codes + c.offsets[p.output], dst: lg.baseAddress!, shape: os) }
                else { Fast.hwcToCHW(src: ws.sums + c.offsets[p.output], dst: lg.baseAddress!, shape: os) }
                var t1 = clock.now
                if r >= 0 { times[0][r] = secs(t1 - t0) }
                for (k, st) in c.steps.enumerated() {
                    t0 = t1
                    c.execute(st, ws, nil)
                    t1 = clock.now
                    if r >= 0 { times[k + 1][r] = secs(t1 - t0) }
                }
            }
        }
    }
    return names.indices.map { k in
        let t = times[k].sorted()
        return (names[k], 1e6 * t[t.count / 2], 1e6 * t[t.count / 10])
    }
}
#endif
