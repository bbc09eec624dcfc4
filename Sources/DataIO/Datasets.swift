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
    /// sampleShape [1, 28, 28], pixels / 255, labels 0...9.
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
        let scale: Float = 1 / 255
        let samples = [Float](unsafeUninitializedCapacity: pixels.count) { buf, n in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<src.count { buf[i] = Float(src[i]) * scale }
            }
            n = pixels.count
        }
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

extension IDXArray.Element {
    var typeName: String {
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
