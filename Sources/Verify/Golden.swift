// Golden vectors: for N images, the integer value of every comparison point (computed by the
// Kernels engine) and the float pipeline's value at the same point, in output-LSB units of that
// point. Layout and manifest: docs/GOLDEN.md.
import DataIO
import Kernels

/// Golden vectors in memory.
public struct GoldenSet: Sendable, Equatable {
    /// SHA-256 (hex) of the model file the vectors were computed from.
    public var modelSHA256: String
    /// Number of images N.
    public var count: Int
    /// Comparison points in program order (GoldenLayout.points).
    public var points: [GoldenPoint]
    /// Per point: N * C*H*W integer values, image-major, (C,H,W) order inside an image.
    public var values: [[Int32]]
    /// Number K of images (the first K, 0...N) whose float values are held.
    public var floatCount: Int
    /// Per point: the float pipeline's values at the same elements, in LSBs of the point, for
    /// the first `floatCount` images (K * C*H*W values).
    public var floats: [[Float]]
    /// Index into `points` of the logits (the program's output tensor).
    public var logits: Int
    /// Integer argmax of each image's logits per output pixel (`count * H * W`, image-major;
    /// a classifier: one per image; lowest channel wins ties).
    public var argmax: [Int32]
    /// Labels of the images, when given.
    public var labels: [Int32]?

    /// `floatCount` nil: all N images (`floats[j]` holds N * C*H*W values).
    public init(modelSHA256: String, count: Int, points: [GoldenPoint], values: [[Int32]], floats: [[Float]],
                floatCount: Int? = nil, logits: Int, argmax: [Int32], labels: [Int32]?) {
        self.modelSHA256 = modelSHA256; self.count = count; self.points = points; self.values = values
        self.floatCount = floatCount ?? count
        self.floats = floats; self.logits = logits; self.argmax = argmax; self.labels = labels
    }

    /// Index of the point named `name`.
    public func index(of name: String) -> Int? { points.firstIndex { $0.name == name } }
}

public enum Golden {
    public static let formatName = "rram-edge-golden"
    /// The version written. Version 1 (no aliases, no compression, floats for every image) is
    /// still read.
    public static let formatVersion = 2
    public static let readableVersions = 1...2
    public static let manifestName = "manifest.json"
    public static let argmaxFile = "argmax.npy"
    public static let labelsFile = "labels.npy"

    /// Computes golden vectors for `count` images stored back to back in `pixels` (each
    /// `C*H*W` bytes of the program input, (C,H,W) order). `labels`: nil or at least `count`.
    /// The integers come from the fast engine's trace; with `crossCheck` every image is also run
    /// through the reference engine (the executable form of DATAPATH.md) and any difference is
    /// an error (`.engineDisagreement`) naming the point and element: golden vectors are never
    /// written from a kernel bug. Float values are computed for the first `floatCount` images
    /// (nil: all; 0...count); `floats: false` skips the float pipeline (values only, K = 0).
    public static func generate(program: Program, modelSHA256: String, pixels: [UInt8], count: Int,
                                labels: [Int32]? = nil, floats withFloats: Bool = true, floatCount: Int? = nil,
                                crossCheck: Bool = true) throws -> GoldenSet {
        try generate(program: program, modelSHA256: modelSHA256, pixels: pixels, count: count, labels: labels,
                     floats: withFloats, floatCount: floatCount, crossCheck: crossCheck, tamperReference: nil)
    }

    /// `tamperReference` (tests only) alters the reference trace before the cross-check.
    static func generate(program: Program, modelSHA256: String, pixels: [UInt8], count: Int, labels: [Int32]?,
                         floats withFloats: Bool, floatCount: Int? = nil, crossCheck: Bool,
                         tamperReference: ((inout Trace) -> Void)?) throws -> GoldenSet {
        let engine: Engine
        do { engine = try Engine(program: program, threads: 1) } catch {
            throw VerifyError(.badInput, path: "", "the model's program is invalid: \(error)")
        }
        let nIn = engine.inputCount
        guard count >= 1 else { throw VerifyError(.badInput, path: "", "count must be at least 1, got \(count)") }
        guard pixels.count >= count * nIn else {
            throw VerifyError(.badInput, path: "", "\(count) images of \(nIn) pixels need \(count * nIn) bytes, got \(pixels.count)")
        }
        if let labels, labels.count < count {
            throw VerifyError(.badInput, path: "", "\(count) images but only \(labels.count) labels")
        }
        if let floatCount, !(0...count).contains(floatCount) {
            throw VerifyError(.badInput, path: "", "the float count must be in 0...\(count) (the image count), got \(floatCount)")
        }
        let nFloat = withFloats ? (floatCount ?? count) : 0
        let points = GoldenLayout.points(for: program)
        var values = points.map { p -> [Int32] in
            var a = [Int32](); a.reserveCapacity(count * p.shape.count); return a
        }
        var floats = points.map { p -> [Float] in
            var a = [Float](); a.reserveCapacity(count * p.shape.count); return a
        }
        var argmaxes: [Int32] = []
        for i in 0..<count {
            let px = Array(pixels[(i * nIn)..<((i + 1) * nIn)])
            let trace = engine.trace(pixels: px)
            if crossCheck {
                var ref = Reference.run(program, pixels: px)
                tamperReference?(&ref)
                for p in points {
                    let a = p.tensor.map { trace.tensors[$0] } ?? trace.tileADC[p.node!][p.tile!]
                    let b = p.tensor.map { ref.tensors[$0] } ?? ref.tileADC[p.node!][p.tile!]
                    if a != b {
                        let e = (0..<Swift.min(a.count, b.count)).first { a[$0] != b[$0] } ?? Swift.min(a.count, b.count)
                        let (_, c, h, w) = p.coordinates(ofFlatIndex: e)
                        throw VerifyError(.engineDisagreement, path: "",
                                          "the fast engine and the reference engine disagree at \(p.name), image \(i), element \(e) (c=\(c), h=\(h), w=\(w)): fast \(e < a.count ? String(a[e]) : "none"), reference \(e < b.count ? String(b[e]) : "none"); no golden vectors written (a Kernels bug)")
                    }
                }
            }
            let floatsHere = i < nFloat
            let ft = floatsHere ? FloatPipeline.run(program, pixels: px) : []
            var tileFloats: [Int: [[Float]]] = [:]
            for (j, p) in points.enumerated() {
                if let t = p.tensor {
                    values[j] += trace.tensors[t]
                    if floatsHere { floats[j] += ft[t] }
                } else if let node = p.node, let tile = p.tile {
                    values[j] += trace.tileADC[node][tile]
                    if floatsHere && tileFloats[node] == nil {
                        let n = program.nodes[node]
                        if case .rnn(let rp) = n.op {
                            tileFloats[node] = FloatPipeline.rnn(ft[n.inputs[0]], shape: program.tensors[n.inputs[0]].shape, rp).subpoints
                        } else {
                            guard case .crossbar(let cp) = n.op else { continue }
                            tileFloats[node] = FloatPipeline.tileFloats(ft[n.inputs[0]], shape: program.tensors[n.inputs[0]].shape, cp)
                        }
                    }
                    if floatsHere { floats[j] += tileFloats[node]![tile] }
                }
            }
            argmaxes += pixelArgmax(trace.tensors[program.output], shape: program.tensors[program.output].shape)
        }
        let logits = points.lastIndex { $0.tensor == program.output }!
        return GoldenSet(modelSHA256: modelSHA256, count: count, points: points, values: values, floats: floats,
                         floatCount: nFloat, logits: logits, argmax: argmaxes, labels: labels.map { Array($0.prefix(count)) })
    }

    // MARK: arrays <-> NPY

    /// The integer values of a point as an NPY array of the point's dtype.
    public static func integerArray(_ p: GoldenPoint, count: Int, values: [Int32]) throws -> NPYArray {
        let shape = p.arrayShape(count: count)
        switch p.dtype {
        case .uint8: return try NPYArray(shape: shape, uint8: values.map { UInt8(truncatingIfNeeded: $0) })
        case .int16: return try NPYArray(shape: shape, int16: values.map { Int16(truncatingIfNeeded: $0) })
        default: return try NPYArray(shape: shape, int32: values)
        }
    }

    /// Decodes an integer point file (`.npy`, or `.npy.gz` when `path` ends in `.gz`); the dtype
    /// and shape must be exactly the point's.
    public static func readIntegerArray(_ bytes: [UInt8], path: String, point p: GoldenPoint, count: Int) throws -> [Int32] {
        let a = try decodeStored(bytes, path: path, elements: count.multipliedReportingOverflow(by: p.shape.count).overflow ? Int.max : count * p.shape.count)
        return try integerValues(a, path: path, point: p, count: count)
    }

    /// The values of a decoded integer point array; the dtype and shape must be exactly the point's.
    public static func integerValues(_ a: NPYArray, path: String, point p: GoldenPoint, count: Int) throws -> [Int32] {
        let want = p.arrayShape(count: count)
        guard a.dtype == p.dtype else {
            throw VerifyError(.badArray, path: path, "point \(p.name): dtype \(a.dtype.rawValue), expected \(p.dtype.rawValue) (\(p.kind.goldenName) \(p.bits) bits)")
        }
        guard a.shape == want else {
            throw VerifyError(.badArray, path: path, "point \(p.name): shape \(a.shape), expected \(want) (N, C, H, W)")
        }
        switch a.dtype {
        case .uint8: return try a.uint8s().map { Int32($0) }
        case .int16: return try a.int16s().map { Int32($0) }
        default: return try a.int32s()
        }
    }

    /// Every point's integer array as another implementation dumps it (docs/GOLDEN.md section
    /// 4): `NAME.npy` with the point's dtype and shape `[N, C, H, W]`, aliased points included.
    public static func dumpArrays(_ g: GoldenSet) throws -> [(String, NPYArray)] {
        try g.points.enumerated().map { ($1.file, try integerArray($1, count: g.count, values: g.values[$0])) }
    }

    /// Per point: the index of the earlier point it aliases (nil: stored). A point aliases the
    /// first earlier stored point with the same number of values per image, equal integer values
    /// and bit-identical float values (e.g. a single-tile crossbar's sum and its tile's ADC
    /// codes, a flatten and its input). Aliases are decided by the values, never by structure.
    public static func aliases(_ g: GoldenSet) -> [Int?] {
        var out: [Int?] = []
        for (j, p) in g.points.enumerated() {
            var found: Int? = nil
            for i in 0..<j where out[i] == nil && g.points[i].shape.count == p.shape.count && g.values[i] == g.values[j] {
                let a = g.floats[i], b = g.floats[j]
                if a.count == b.count && zip(a, b).allSatisfy({ $0.bitPattern == $1.bitPattern }) { found = i; break }
            }
            out.append(found)
        }
        return out
    }

    /// How a golden directory is stored: plain `.npy` or gzip-compressed `.npy.gz` files.
    public struct Storage: Sendable, Equatable {
        public var compress: Bool
        public init(compress: Bool = false) { self.compress = compress }
    }

    /// The stored file name of an NPY file `name` (`NAME.npy` or `NAME.npy.gz`).
    static func storedName(_ name: String, _ s: Storage) -> String { s.compress ? name + ".gz" : name }

    /// The files of a golden directory (stored name, array), manifest excluded, in write order;
    /// aliased points have no files.
    public static func files(_ g: GoldenSet, storage: Storage = Storage()) throws -> [(String, NPYArray)] {
        let al = aliases(g)
        var out: [(String, NPYArray)] = []
        for (j, p) in g.points.enumerated() where al[j] == nil {
            out.append((storedName(p.file, storage), try integerArray(p, count: g.count, values: g.values[j])))
            if g.floatCount > 0 {
                out.append((storedName(p.floatFile, storage), try NPYArray(shape: p.arrayShape(count: g.floatCount), float32: g.floats[j])))
            }
        }
        out.append((storedName(argmaxFile, storage), try NPYArray(shape: g.argmaxShape, int32: g.argmax)))
        if let l = g.labels { out.append((storedName(labelsFile, storage), try NPYArray(shape: [g.count], int32: l))) }
        return out
    }

    /// gzip level of `.npy.gz` files.
    public static let gzipLevel: Int32 = 9

    /// Deterministic gzip bytes of an NPY file: one member, level 9, no name, modification
    /// time 0, and the OS byte fixed to 255 ("unknown") so the bytes do not depend on the host.
    public static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var z: [UInt8]
        do { z = try Gzip.compress(bytes, level: gzipLevel) } catch {
            throw VerifyError(.io, path: "", "gzip compression failed: \(error)")
        }
        if z.count > 9 { z[9] = 0xFF }
        return z
    }
}

extension GoldenSet {
    /// Output pixels of the logits point (1 for a classifier).
    public var pixelsPerImage: Int { points[logits].shape.h * points[logits].shape.w }
    /// `argmax.npy`'s shape: `[N]` for a classifier, `[N, H, W]` for a per-pixel output.
    public var argmaxShape: [Int] {
        let s = points[logits].shape
        return pixelsPerImage == 1 ? [count] : [count, s.h, s.w]
    }
}
