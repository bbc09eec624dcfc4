// `edgecli golden MODEL --input IMAGES|--drive [--count N] [--labels L] [--float-count K] [--compress] --out DIR [--force] [--json]`:
// golden vectors (every layer's integer codes and the float pipeline's values) for N images;
// layout in docs/GOLDEN.md.
import DataIO
import Kernels
import Quant
import ModelFile
import Segmentation
import Verify

enum GoldenCommand {
    static let command = Command(
        name: "golden",
        summary: "write golden vectors: every layer's integer outputs and float values for N images",
        usage: """
        usage: edgecli golden MODEL --input IMAGES|--drive [--data DIR] [--count N] [--labels L] [--float-count K]
                              [--compress] --out DIR [--force] [--json]
          MODEL     a model file
          --input   images: IDX (gzipped or not) or NPY, uint8, shape [M, C, H, W], [M, H, W] (C = 1) or [M, C*H*W],
                    (C,H,W) order
          --drive   a DRIVE model (edgecli freeze of a --task drive run): its inputs are the first N
                    test images of the DRIVE folder (--data DIR; default shared/data/drive), preprocessed,
                    whole or, for a model frozen with --input-size, the window of that size freeze uses
          --count   number of images, the first N of IMAGES (default 10, or all if fewer)
          --labels  labels: IDX or NPY, uint8/int8/int16/int32/int64, at least N entries (optional)
          --float-count  store the float pipeline's values for the first K images only (0...N; default N)
          --compress     store every NPY file gzip-compressed as NAME.npy.gz (deterministic bytes)
          --out     the golden directory; written all at once (a temporary sibling renamed into place)
          --force   replace DIR if it holds earlier golden vectors (never any other directory)
          --json    print the summary as JSON
        Layout: docs/GOLDEN.md.
        """,
        run: { args in
            let drive = args.flag("drive")
            let dataOption = try args.option("data")
            let input = drive ? nil : try args.required("input")
            let out = try args.required("out")
            let countOption = try args.int("count", default: -1, range: 1...1_000_000)
            let labelsPath = try args.option("labels")
            let floatCountOption = try args.int("float-count", default: -1, range: 0...1_000_000)
            let compress = args.flag("compress")
            let force = args.flag("force")
            let json = args.flag("json")
            let path = try args.requiredPositional("MODEL path")
            try args.finish()

            let bytes: [UInt8]
            do { bytes = try readFileBytes(path) } catch { throw CLIError("golden: cannot read the model \(path): \(error)") }
            let bundle: ModelBundle
            do { bundle = try ModelBundle.decode(bytes, name: path) } catch { throw CLIError("\(error)") }
            let program = bundle.program
            let perImage = program.tensors[program.input].shape.count

            let ins = program.tensors[program.input].shape
            if drive {
                guard bundle.metadata.task == "drive" else { throw CLIError("golden: \(path) is a \(bundle.metadata.task) model; --drive is for DRIVE models") }
                guard labelsPath == nil else { throw CLIError("golden: --labels is for classifiers; a DRIVE model's golden vectors hold its per-pixel decisions") }
            } else if dataOption != nil {
                throw CLIError("golden: --data names the DRIVE folder of --drive; images come from --input")
            }
            let (shape, pixels) = try input.map { try readImages($0, featureBits: inputFeatureBits(bundle)) }
                ?? driveImages(dataOption, shape: ins, count: countOption == -1 ? 10 : countOption)
            let source = input ?? "the DRIVE test images"
            let trailing = Array(shape.dropFirst())
            // (C,H,W) order only: [M, C, H, W], [M, H, W] when C == 1, or flat [M, C*H*W]. An
            // [M, H, W, C] file has the right count but the wrong order and is refused.
            guard trailing == [ins.c, ins.h, ins.w] || (ins.c == 1 && trailing == [ins.h, ins.w]) || trailing == [perImage] else {
                throw CLIError("golden: \(source): images of shape \(shape) do not fit the model input (C,H,W) = \(ins): need [M, \(ins.c), \(ins.h), \(ins.w)]\(ins.c == 1 ? ", [M, \(ins.h), \(ins.w)]" : "") or [M, \(perImage)] in (C,H,W) order")
            }
            let count = countOption == -1 ? min(10, shape[0]) : countOption
            guard count >= 1 else { throw CLIError("golden: \(source) holds no images") }
            guard shape[0] >= count else { throw CLIError("golden: \(source) holds \(shape[0]) images; --count is \(count)") }
            guard floatCountOption <= count else { throw CLIError("golden: --float-count \(floatCountOption) exceeds the image count \(count)") }
            var labels: [Int32]? = nil
            if let labelsPath {
                let l = try readLabels(labelsPath)
                guard l.count >= count else { throw CLIError("golden: \(labelsPath) holds \(l.count) labels; --count is \(count)") }
                labels = Array(l.prefix(count))
            }
            let g = try Golden.generate(program: program, modelSHA256: SHA256.hex(SHA256.hash(bytes)),
                                        pixels: Array(pixels.prefix(count * perImage)), count: count, labels: labels,
                                        floatCount: floatCountOption == -1 ? nil : floatCountOption)
            let files = try Golden.write(g, to: out, storage: Golden.Storage(compress: compress), replace: force)
            let total = files.reduce(0) { $0 + $1.bytes }
            let aliases = Golden.aliases(g).compactMap { $0 }.count
            if json {
                try printJSON(["directory": out, "count": count, "floatCount": g.floatCount, "points": g.points.count,
                               "aliases": aliases, "compressed": compress, "files": files.count,
                               "bytes": total, "modelSha256": g.modelSHA256, "labels": labels != nil])
            } else {
                print("wrote golden vectors for \(count) images (float values for \(g.floatCount)) to \(out): \(g.points.count) points (\(aliases) aliases), \(files.count) files (\(total) bytes\(compress ? ", gzip" : "")); model SHA-256 \(g.modelSHA256)")
            }
            return 0
        })

    /// The first `count` (at most all) DRIVE test images as a model of input `shape` reads them.
    static func driveImages(_ data: String?, shape: TensorShape, count: Int) throws -> ([Int], [UInt8]) {
        guard shape.c == 1 else { throw CLIError("golden: a DRIVE model reads one grey channel, this one \(shape)") }
        let set = try DriveSet.load(dir: try DriveData.dir(data, command: "golden"), split: .test)
        let window = DriveWindow(set, inputHeight: shape.h, inputWidth: shape.w)
        let n = min(count, set.count)
        return ([n, 1, shape.h, shape.w], try (0..<n).flatMap { try window.input(set, $0) })
    }

    static func readArray(_ path: String) throws -> (shape: [Int], values: [Int64], isU8: Bool) {
        let bytes: [UInt8]
        do { bytes = try readFileBytes(path) } catch { throw CLIError("golden: cannot read \(path): \(error)") }
        if bytes.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) {
            let a: NPYArray
            do { a = try NPY.decode(bytes, name: path) } catch { throw CLIError("golden: \(error)") }
            switch a.dtype {
            case .uint8: return (a.shape, try a.uint8s().map { Int64($0) }, true)
            case .int8: return (a.shape, try a.int8s().map { Int64($0) }, false)
            case .int16: return (a.shape, try a.int16s().map { Int64($0) }, false)
            case .int32: return (a.shape, try a.int32s().map { Int64($0) }, false)
            case .int64: return (a.shape, try a.int64s(), false)
            default: throw CLIError("golden: \(path): dtype \(a.dtype.rawValue) is not an integer type")
            }
        }
        let a: IDXArray
        do { a = try IDX.decode(bytes, name: path) } catch { throw CLIError("golden: \(error)") }
        switch a.element {
        case .uint8(let v): return (a.shape, v.map { Int64($0) }, true)
        case .int8(let v): return (a.shape, v.map { Int64($0) }, false)
        case .int16(let v): return (a.shape, v.map { Int64($0) }, false)
        case .int32(let v): return (a.shape, v.map { Int64($0) }, false)
        default: throw CLIError("golden: \(path): IDX element type is not an integer type")
        }
    }

    static func readImages(_ path: String, featureBits: Int? = nil) throws -> ([Int], [UInt8]) {
        if let fb = featureBits {
            // a feature model (DATAPATH.md 15.1): IDX float32 features in [0, 1] -> DAC codes
            let bytes: [UInt8]
            do { bytes = try readFileBytes(path) } catch { throw CLIError("golden: cannot read \(path): \(error)") }
            if !bytes.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) {
                let a: IDXArray
                do { a = try IDX.decode(bytes, name: path) } catch { throw CLIError("golden: \(error)") }
                if let f = a.float32 {
                    let per = max(1, a.shape.dropFirst().reduce(1, *))
                    var codes = [UInt8](repeating: 0, count: f.count)
                    for (k, v) in f.enumerated() {
                        guard let c = FeatureEncoding.code(v, bits: fb) else {
                            throw CLIError("golden: \(path): sample \(k / per), feature \(k % per): value \(v) is not a number in [0, 1]")
                        }
                        codes[k] = c
                    }
                    return (a.shape, codes)
                }
            }
            let (shape, codes) = try readImages(path)
            if let bad = codes.firstIndex(where: { Int($0) >= 1 << fb }) {
                throw CLIError("golden: \(path): value \(codes[bad]) at \(bad) exceeds the model's \(fb)-bit input codes (a feature model reads float32 features in [0, 1] or its DAC codes)")
            }
            return (shape, codes)
        }
        let a = try readArray(path)
        guard a.isU8 else { throw CLIError("golden: \(path): images must be uint8 pixels") }
        return (a.shape, a.values.map { UInt8($0) })
    }

    static func readLabels(_ path: String) throws -> [Int32] {
        let a = try readArray(path)
        guard let bad = a.values.first(where: { $0 < 0 || $0 > Int64(Int32.max) }) else { return a.values.map { Int32($0) } }
        throw CLIError("golden: \(path): label \(bad) out of range")
    }
}
