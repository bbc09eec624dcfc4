// `edgecli bench infer MODEL`: integer inference speed of a model file with the fast engine:
// batch-1 latency (median of R timed runs after warm-up) and batch-256 throughput, at 1 and 2
// threads, and MAC/s, with the integer kernel set in use (IntDispatch: chosen at startup,
// `RRAM_EDGE_INT_KERNELS` overrides). Build for figures: `swift build -c release`;
// scripts/bench-vs-ort.sh compares every kernel set with ONNX Runtime int8.
import Foundation
import DataIO
import Kernels
import ModelFile
import Quant
import Randomness

enum BenchInferCommand {
    static let usage = """
    usage: edgecli bench infer MODEL [--threads 1,2] [--runs R] [--warmup W] [--batch B] [--seconds S]
                               [--data DIR] [--breakdown] [--json]
      Batch-1 latency: median (and p10/p90) of R single-image runs (default 2000) after W warm-up
      runs (default 200). Throughput: batches of B images (default 256) repeated for S seconds
      (default 2) after one warm-up batch. Images: the first B Fashion-MNIST test images (--data,
      default \(Datasets.fashionMNISTDefaultDir)) or seeded random pixels when absent. Note: a
      single image always runs on one thread (no intra-image parallelism); threads split batches.
      --breakdown: also the batch-1 latency (p10) of every program prefix (per-node cost, 1 thread).
    """

    static func run(_ args: inout Args) throws -> Int32 {
        let path = try args.requiredPositional("MODEL path")
        let threadList = try (args.option("threads") ?? "1,2").split(separator: ",").map { s -> Int in
            guard let v = Int(s), (1...64).contains(v) else { throw CLIError("bench infer: --threads takes a list like 1,2, got '\(s)'") }
            return v
        }
        let runs = try args.int("runs", default: 2000, range: 1...10_000_000)
        let warmup = try args.int("warmup", default: 200, range: 0...1_000_000)
        let batch = try args.int("batch", default: 256, range: 1...65536)
        let seconds = try args.double("seconds", default: 2)
        let data = try args.option("data") ?? Datasets.fashionMNISTDefaultDir
        let json = args.flag("json")
        let breakdown = args.flag("breakdown")
        try args.finish()
        let bundle = try ModelBundle.read(path: path)
        let program = bundle.program
        let shape = program.tensors[program.input].shape
        var pixels: [UInt8]
        var source = "fashion-mnist test images"
        if let s = try? ImageStream(path: data + "/t10k-images-idx3-ubyte.gz", shape: shape), let px = try? s.readAll(limit: batch) {
            pixels = px
        } else {
            source = "seeded random pixels"
            var rng = Xoshiro256StarStar(seed: 7, stream: 1)
            pixels = (0..<(batch * shape.count)).map { _ in UInt8(rng.int(below: 256)) }
        }
        let nImages = pixels.count / shape.count
        let macs = macsPerImage(program)
        var results: [[String: Any]] = []
        let clock = ContinuousClock()
        func secs(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        for t in threadList {
            let engine = try Engine(program: program, threads: t)
            var logits = [Int32](repeating: 0, count: engine.outputCount)
            var times = [Double](repeating: 0, count: runs)
            pixels.withUnsafeBufferPointer { px in
                logits.withUnsafeMutableBufferPointer { lg in
                    for i in 0..<warmup { engine.infer(pixels: UnsafeBufferPointer(rebasing: px[((i % nImages) * shape.count)..<((i % nImages + 1) * shape.count)]), logits: lg) }
                    for i in 0..<runs {
                        let img = UnsafeBufferPointer(rebasing: px[((i % nImages) * shape.count)..<((i % nImages + 1) * shape.count)])
                        let s = clock.now
                        engine.infer(pixels: img, logits: lg)
                        times[i] = secs(clock.now - s)
                    }
                }
            }
            times.sort()
            func q(_ f: Double) -> Double { times[min(times.count - 1, Int(f * Double(times.count)))] }
            let b = benchmarkInference(engine: engine, pixels: pixels, batch: batch, threads: t, minSeconds: seconds)
            let r: [String: Any] = ["threads": t, "latency_us_median": 1e6 * q(0.5), "latency_us_p10": 1e6 * q(0.1), "latency_us_p90": 1e6 * q(0.9),
                                    "latency_runs": runs, "batch": batch, "images_per_second": b.imagesPerSecond,
                                    "gmac_per_second_batch": b.imagesPerSecond * Double(macs) / 1e9,
                                    "gmac_per_second_batch1": Double(macs) / q(0.5) / 1e9]
            results.append(r)
            if !json {
                print(String(format: "threads %d: batch-1 latency median %.1f us (p10 %.1f, p90 %.1f; %d runs), batch-%d throughput %.4g images/s (%.2f GMAC/s)",
                             t, 1e6 * q(0.5), 1e6 * q(0.1), 1e6 * q(0.9), runs, batch, b.imagesPerSecond, b.imagesPerSecond * Double(macs) / 1e9))
            }
        }
        var prefixes: [[String: Any]] = []
        if breakdown {
            // batch-1 median of every program prefix (nodes 0...k, output = node k's tensor), 1 thread:
            // the differences are the per-node costs (fusion may differ from the whole program's)
            var previous = 0.0
            for k in program.nodes.indices {
                let out = program.nodes[k].output
                let sub = Program(tensors: Array(program.tensors[0...out]), nodes: Array(program.nodes[0...k]), input: program.input,
                                  output: out, arrayRows: program.arrayRows)
                let engine = try Engine(program: sub, threads: 1)
                var logits = [Int32](repeating: 0, count: engine.outputCount)
                var times = [Double](repeating: 0, count: runs)
                pixels.withUnsafeBufferPointer { px in
                    logits.withUnsafeMutableBufferPointer { lg in
                        for i in 0..<(warmup + runs) {
                            let img = UnsafeBufferPointer(rebasing: px[((i % nImages) * shape.count)..<((i % nImages + 1) * shape.count)])
                            let s = clock.now
                            engine.infer(pixels: img, logits: lg)
                            if i >= warmup { times[i - warmup] = secs(clock.now - s) }
                        }
                    }
                }
                times.sort()
                // p10 rather than the median: less sensitive to preemption on a loaded machine
                let med = 1e6 * times[times.count / 10]
                prefixes.append(["node": k, "op": "\(program.nodes[k].op.kind)", "prefix_latency_us_p10": med, "delta_us": med - previous])
                if !json { print(String(format: "  prefix through node %2d (%@): p10 %.1f us (%+.1f)", k, "\(program.nodes[k].op.kind)" as NSString, med, med - previous)) }
                previous = med
            }
        }
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "other"
        #endif
        if json {
            var r: [String: Any] = ["bench": "infer", "model": path, "macs_per_image": macs, "images": source, "arch": arch,
                                    "int_kernels": IntDispatch.selected.rawValue, "results": results]
            if breakdown { r["breakdown"] = prefixes }
            try printJSON(r)
        } else {
            print("model \(path): \(macs) MACs per image; images: \(source); integer kernels: \(IntDispatch.selected.rawValue)")
        }
        return 0
    }
}
