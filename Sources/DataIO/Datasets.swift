#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A classification set: `count` samples of `sampleShape` (channels first), flattened row-major.
public struct LabeledSet: Sendable {
    public let count: Int
    /// e.g. [1, 28, 28] (Fashion-MNIST) or [1, 23, 20] (spoken-digit features).
    public let sampleShape: [Int]
    /// `count * product(sampleShape)` values: Fashion-MNIST pixels / 255 in [0, 1];
    /// spoken-digit features as stored.
    public let samples: [Float]
    public let labels: [UInt8]

    /// Validates `samples.count == count * product(sampleShape)` and `labels.count == count`.
    public init(count: Int, sampleShape: [Int], samples: [Float], labels: [UInt8]) throws {
        let name = "<LabeledSet>"
        guard count >= 0, let total = checkedProduct(sampleShape, times: count) else {
            throw DataIOError(.dimensionOverflow, file: name)
        }
        guard samples.count == total else { throw DataIOError(.countMismatch(expected: total, got: samples.count), file: name) }
        guard labels.count == count else { throw DataIOError(.countMismatch(expected: count, got: labels.count), file: name) }
        self.count = count
        self.sampleShape = sampleShape
        self.samples = samples
        self.labels = labels
    }

    /// Values per sample (the product of `sampleShape`).
    public var sampleSize: Int { checkedProduct(sampleShape) ?? 0 }

    /// The values of sample `i` (0 ..< count).
    public func sample(_ i: Int) -> ArraySlice<Float> { samples[i * sampleSize ..< (i + 1) * sampleSize] }
}

public enum Datasets {
    public static let fashionMNISTDefaultDir = "/usr/share/datasets/fashion-mnist"
    static let fashionHint = "install it with `apt-get install dataset-fashion-mnist` (or pass --data DIR)"

    /// Fashion-MNIST from `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` in `dir`:
    /// sampleShape [1, 28, 28], pixels as `Float(p) / 255` (float32 division), labels 0...9.
    public static func fashionMNIST(dir: String = fashionMNISTDefaultDir, train: Bool) throws -> LabeledSet {
        let prefix = dir + "/" + (train ? "train" : "t10k")
        let imagesPath = prefix + "-images-idx3-ubyte.gz", labelsPath = prefix + "-labels-idx1-ubyte.gz"
        for p in [imagesPath, labelsPath] where !fileExists(p) {
            throw DataIOError(.fileNotFound, file: p, note: "Fashion-MNIST is missing: " + fashionHint)
        }
        let images = try IDX.read(path: imagesPath)
        guard images.shape.count == 3, images.shape[1] == 28, images.shape[2] == 28, let pixels = images.uint8 else {
            throw DataIOError(.inconsistent("expected uint8 images N x 28 x 28, got \(images.element.typeName) \(images.shape)"),
                              file: imagesPath)
        }
        let labels = try readLabels(labelsPath, count: images.shape[0], classes: 10)
        let samples = scaledBytes(pixels, dividedBy: 255)
        return try LabeledSet(count: images.shape[0], sampleShape: [1, 28, 28], samples: samples, labels: labels)
    }

    /// Free Spoken Digit features from `{train,test}-features-idx3-float.gz` (float32 N x 23 x 20)
    /// and `{train,test}-labels-idx1-ubyte.gz` in `dir`: sampleShape [1, T, F], values as stored.
    public static func spokenDigit(dir: String, train: Bool) throws -> LabeledSet {
        let prefix = dir + "/" + (train ? "train" : "test")
        let featuresPath = prefix + "-features-idx3-float.gz", labelsPath = prefix + "-labels-idx1-ubyte.gz"
        for p in [featuresPath, labelsPath] where !fileExists(p) {
            throw DataIOError(.fileNotFound, file: p, note: "spoken-digit features are missing (expected in ../shared/data/spoken-digit)")
        }
        let features = try IDX.read(path: featuresPath)
        guard features.shape.count == 3, let values = features.float32 else {
            throw DataIOError(.inconsistent("expected float32 features N x T x F, got \(features.element.typeName) \(features.shape)"),
                              file: featuresPath)
        }
        let labels = try readLabels(labelsPath, count: features.shape[0], classes: 10)
        return try LabeledSet(count: features.shape[0], sampleShape: [1, features.shape[1], features.shape[2]],
                              samples: values, labels: labels)
    }

    static func readLabels(_ path: String, count: Int, classes: Int) throws -> [UInt8] {
        let a = try IDX.read(path: path)
        guard a.shape.count == 1, let labels = a.uint8 else {
            throw DataIOError(.inconsistent("expected 1-d uint8 labels, got \(a.element.typeName) \(a.shape)"), file: path)
        }
        guard labels.count == count else {
            throw DataIOError(.inconsistent("\(labels.count) labels for \(count) samples"), file: path)
        }
        if let i = labels.firstIndex(where: { Int($0) >= classes }) {
            throw DataIOError(.inconsistent("label \(labels[i]) at index \(i) outside 0..<\(classes)"), file: path)
        }
        return labels
    }

    /// Locates the shared data folder (`shared/data`, holding README.md): the environment
    /// variable RRAM_EDGE_DATA if set, else the first `shared/data` found walking up from the
    /// current directory, then from this source file's directory (worktrees live next to it).
    public static func sharedDataDir() -> String? {
        if let env = getenv("RRAM_EDGE_DATA") {
            let s = String(cString: env)
            if directoryExists(s) { return s }
        }
        var starts: [String] = []
        var buf = [CChar](repeating: 0, count: 4096)
        if getcwd(&buf, buf.count) != nil {
            starts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        starts.append(splitPath(#filePath).dir)
        for start in starts {
            var dir = start
            while true {
                let candidate = (dir == "/" ? "" : dir) + "/shared/data"
                if fileExists(candidate + "/README.md") { return candidate }
                if dir == "/" || dir.isEmpty || dir == "." { break }
                dir = splitPath(dir).dir
            }
        }
        return nil
    }
}

/// `Float(b) / divisor` (correctly rounded float32 division, as numpy's `x.astype(np.float32) / 255`) for every byte (hot: 47M values for Fashion-MNIST).
func scaledBytes(_ bytes: [UInt8], dividedBy divisor: Float) -> [Float] {
    let table = (0..<256).map { Float($0) / divisor }  // exactly Float(b) / divisor, via a lookup
    return [Float](unsafeUninitializedCapacity: bytes.count) { buf, n in
        table.withUnsafeBufferPointer { t in bytes.withUnsafeBufferPointer { lookupKernel($0, t, buf) } }
        n = bytes.count
    }
}

// The kernels are top-level functions (not closures) so @_optimize(speed) applies even in
// debug builds, keeping the test suite fast on the 47M-value data sets.
@_optimize(speed)
func lookupKernel(_ src: UnsafeBufferPointer<UInt8>, _ table: UnsafeBufferPointer<Float>, _ dst: UnsafeMutableBufferPointer<Float>) {
    guard let s = src.baseAddress, let t = table.baseAddress, let d = dst.baseAddress, table.count == 256 else { return }
    var i = 0
    let n = min(src.count, dst.count)
    while i < n { d[i] = t[Int(s[i])]; i += 1 }
}

@_optimize(speed)
func rangeKernel(_ p: UnsafeBufferPointer<Float>) -> (Float, Float, Bool) {
    var lo = Float.infinity, hi = -Float.infinity, any = false
    guard let b = p.baseAddress else { return (lo, hi, false) }
    var i = 0
    while i < p.count {
        let v = b[i]
        if v == v { any = true; if v < lo { lo = v }; if v > hi { hi = v } }
        i += 1
    }
    return (lo, hi, any)
}

@_optimize(speed)
func histogramKernel(_ p: UnsafeBufferPointer<UInt8>, _ h: UnsafeMutableBufferPointer<Int>) {
    guard let b = p.baseAddress, let hb = h.baseAddress else { return }
    var i = 0
    while i < p.count { hb[Int(b[i])] += 1; i += 1 }
}

/// Minimum and maximum of `values` (nil when empty or all NaN).
public func valueRange(_ values: [Float]) -> (min: Float, max: Float)? {
    let (lo, hi, any) = values.withUnsafeBufferPointer { rangeKernel($0) }
    return any ? (lo, hi) : nil
}

/// Histogram of byte values (256 counts).
public func byteHistogram(_ bytes: [UInt8]) -> [Int] {
    var h = [Int](repeating: 0, count: 256)
    h.withUnsafeMutableBufferPointer { hp in bytes.withUnsafeBufferPointer { histogramKernel($0, hp) } }
    return h
}

extension IDXArray.Element {
    public var typeName: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .float32: return "float32"
        case .float64: return "float64"
        }
    }
}
