// `edgecli run MODEL --drive`: a frozen DRIVE U-Net on the images of a DRIVE split, one whole
// image at a time through the integer program: the probability and vessel maps as PNG files
// and the standard protocol's figures inside the field of view.
import Foundation
import DataIO
import Kernels
import ModelFile
import Segmentation

extension RunCommand {
    static func runDrive(_ bundle: ModelBundle, modelPath: String, dataDir: String, split: DriveSet.Split, outDir: String?,
                         json: Bool) throws -> Int32 {
        guard bundle.metadata.task == "drive" else {
            throw CLIError("run: \(modelPath) is a \(bundle.metadata.task) model; --drive runs DRIVE models (edgecli freeze of a --task drive run)")
        }
        guard case .f64(let unit)? = bundle.metadata.extra["freeze.output_unit"], unit > 0, unit.isFinite else {
            throw CLIError("run: \(modelPath) has no freeze.output_unit (the real value of its output sums): freeze it again with this edgecli")
        }
        let program = bundle.program
        let inS = program.tensors[program.input].shape, os = program.tensors[program.output].shape
        guard inS.c == 1, os.c == 2, os.h == inS.h, os.w == inS.w else {
            throw CLIError("run: \(modelPath) maps \(inS) to \(os); a DRIVE model maps one grey channel to two class maps of its size")
        }
        let set = try DriveSet.load(dir: dataDir, split: split)
        guard set.height <= inS.h, set.width <= inS.w else {
            throw CLIError("run: the images of \(dataDir) are \(set.height) x \(set.width), larger than the model's input \(inS.h) x \(inS.w)")
        }
        // an output directory holds our maps only; checked before any work
        let kind = AtomicDirectory.Kind(what: "vessel maps") { dir in
            (AtomicDirectory.list(dir) ?? []).allSatisfy { $0.hasSuffix("-probability.png") || $0.hasSuffix("-vessels.png") || $0 == "metrics.json" }
        }
        if let outDir {
            do { _ = try AtomicDirectory.check(outDir, kind: kind, replace: true) } catch { throw CLIError("run: \(error)") }
        }
        let engine = try Engine(program: program, threads: 1)
        let plane = os.h * os.w
        var logits = [Int32](repeating: 0, count: engine.outputCount)
        var scores = PixelScores()
        var files: [(name: String, bytes: [UInt8])] = []
        let first = split == .test ? 1 : 21   // DRIVE numbers its test images 01-20, training 21-40
        let t0 = Date()
        for i in 0..<set.count {
            let input = try DriveWindow(set, inputHeight: inS.h, inputWidth: inS.w).input(set, i)
            input.withUnsafeBufferPointer { px in logits.withUnsafeMutableBufferPointer { lg in _ = engine.infer(pixels: px, logits: lg) } }
            var p = [Float](repeating: 0, count: set.pixels), prob8 = [UInt8](repeating: 0, count: set.pixels), vessel = prob8
            for y in 0..<set.height {
                for x in 0..<set.width {
                    let k = y * os.w + x, j = y * set.width + x
                    let d = Int64(logits[plane + k]) - Int64(logits[k])
                    p[j] = DriveData.vesselProbability(0, unit * Double(d))
                    prob8[j] = UInt8((p[j] * 255).rounded())
                    vessel[j] = d > 0 ? 255 : 0   // the program's argmax (a tie is background)
                }
            }
            try scores.append(scores: p, labels: Array(set.vessels(i)), mask: Array(set.fov(i)))
            if outDir != nil {
                let n = String(format: "%02d", first + i)
                files.append((n + "-probability.png", try PNG.encodeGray8(width: set.width, height: set.height, pixels: prob8)))
                files.append((n + "-vessels.png", try PNG.encodeGray8(width: set.width, height: set.height, pixels: vessel)))
            }
        }
        let secs = Date().timeIntervalSince(t0)
        let figures = DriveData.figures(scores)
        let value = Dictionary(uniqueKeysWithValues: figures.map { ($0.key, $0.value) })
        // the figures as prune's summary writes them: every key, null when undefined
        var r = DriveData.report(scores)
        r["model"] = modelPath; r["split"] = split.rawValue; r["images"] = set.count
        if let outDir {
            files.append(("metrics.json", Array((flatJSON(r) + "\n").utf8)))
            do { try AtomicDirectory.write(files, to: outDir, kind: kind, replace: true) }
            catch { throw CLIError("run: \(error)") }
        }
        func f(_ k: String) -> String { value[k]!.map { String(format: "%.4f", $0) } ?? "-" }
        r["seconds"] = secs; r["seconds_per_image"] = secs / Double(max(set.count, 1))
        if let outDir { r["out_dir"] = outDir }
        if json { print(flatJSON(r)) } else {
            print(String(format: "%d images in %.2f s (%.2f s per image); inside the FOV (%d pixels): ", set.count, secs, secs / Double(max(set.count, 1)), scores.count)
                  + "ROC-AUC \(f("roc_auc")), average precision \(f("average_precision")), PR-AUC (trapezoid) \(f("pr_auc_trapezoid")), "
                  + "at 0.5: F1 \(f("f1")), sensitivity \(f("sensitivity")), specificity \(f("specificity")), accuracy \(f("accuracy"))"
                  + (outDir.map { "; maps -> \($0)" } ?? ""))
        }
        return 0
    }
}
