// The paper's preprocessing of DRIVE fundus images (orobix/retina-unet lib/pre_processing.py,
// `my_PreProc`): grayscale, normalization to 0-255, CLAHE, gamma 1.2, division by 255. Each
// step keeps numpy's float width and rounding (float64 arithmetic, `astype(uint8)`
// truncation) so the bytes match the paper's code; docs/SEGMENTATION.md specifies them.
//
// One departure, on purpose: the paper z-scores over the whole data set before a per-image
// min-max scaling. The min-max cancels the z-score exactly in real arithmetic, so this file
// scales each image on its own, and a single image can be preprocessed at inference time
// without the data set it came with. The float rounding of the two forms differs on a few
// pixels; the test `PreprocessTests.testPerImageFormAgainstDataSetZScoreOnDRIVE` counts them.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The preprocessing chain with its two settings; the steps are static so each can be used
/// (and tested) alone.
public struct Preprocess: Sendable, Equatable {
    /// The CLAHE step (default: OpenCV clip limit 2.0 on an 8 x 8 grid, as the paper).
    public var clahe: CLAHE
    /// The gamma of the final contrast curve (default 1.2, as the paper); > 0.
    public var gamma: Double

    public init(clahe: CLAHE = CLAHE(), gamma: Double = 1.2) {
        self.clahe = clahe
        self.gamma = gamma
    }

    /// Grayscale `0.299 R + 0.587 G + 0.114 B` in float64, summed left to right as numpy's
    /// `r*0.299 + g*0.587 + b*0.114` does. `rgb` is interleaved, row-major (`height x width x 3`).
    public static func grayscale(rgb: [UInt8], width: Int, height: Int) throws -> [Double] {
        let pixels = width.multipliedReportingOverflow(by: height)
        let bytes = pixels.partialValue.multipliedReportingOverflow(by: 3)
        guard width >= 0, height >= 0, !pixels.overflow, !bytes.overflow, rgb.count == bytes.partialValue else {
            throw SegmentationError("grayscale: \(rgb.count) bytes for a \(width) x \(height) RGB image (needs width * height * 3)")
        }
        var out = [Double](repeating: 0, count: width * height)
        rgb.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<d.count {
                    let r = Double(s[3 &* i]), g = Double(s[3 &* i &+ 1]), b = Double(s[3 &* i &+ 2])
                    d[i] = r * 0.299 + g * 0.587 + b * 0.114
                }
            }
        }
        return out
    }

    /// `((x - min) / (max - min)) * 255` in float64, over the values of one image. A constant
    /// image (max == min, where numpy would divide 0 by 0) maps to all zeros.
    public static func minMaxTo255(_ values: [Double]) -> [Double] {
        guard var lo = values.first else { return [] }
        var hi = lo
        for v in values { if v < lo { lo = v }; if v > hi { hi = v } }
        let range = hi - lo
        guard range > 0 else { return [Double](repeating: 0, count: values.count) }
        var out = values
        out.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] = ((d[i] - lo) / range) * 255 }
        }
        return out
    }

    /// numpy's `astype(np.uint8)` for values in [0, 255]: truncation toward zero. Values
    /// outside are clamped (numpy's result there is platform-dependent) and NaN gives 0.
    public static func truncatedToUInt8(_ values: [Double]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<d.count {
                    let v = s[i]
                    d[i] = v >= 255 ? 255 : (v > 0 ? UInt8(v) : 0)
                }
            }
        }
        return out
    }

    /// The paper's gamma table: `table[i] = uint8(((i / 255) ** (1 / gamma)) * 255)`, float64,
    /// truncated as numpy's `astype("uint8")`.
    public static func gammaTable(gamma: Double) throws -> [UInt8] {
        guard gamma.isFinite, gamma > 0 else {
            throw SegmentationError("gamma must be finite and > 0, got \(gamma)")
        }
        let inv = 1.0 / gamma
        return (0..<256).map { i in truncatedToUInt8([pow(Double(i) / 255.0, inv) * 255])[0] }
    }

    /// `table[pixel]` for every pixel (OpenCV's `cv2.LUT`).
    public static func applyTable(_ table: [UInt8], to image: GrayImage) -> GrayImage {
        precondition(table.count == 256, "applyTable: a table of \(table.count) entries, needs 256")
        var out = image
        table.withUnsafeBufferPointer { t in
            out.pixels.withUnsafeMutableBufferPointer { d in
                for i in 0..<d.count { d[i] = t[Int(d[i])] }
            }
        }
        return out
    }

    /// The chain up to its last byte stage: grayscale, min-max to 0-255, truncation to uint8,
    /// CLAHE, gamma. The paper's network input is these bytes divided by 255.
    public func bytes(rgb: [UInt8], width: Int, height: Int) throws -> GrayImage {
        let table = try Preprocess.gammaTable(gamma: gamma)
        try clahe.validate(width: width, height: height)
        let gray = try Preprocess.grayscale(rgb: rgb, width: width, height: height)
        let scaled = Preprocess.truncatedToUInt8(Preprocess.minMaxTo255(gray))
        let equalized = try clahe.apply(GrayImage(width: width, height: height, pixels: scaled))
        return Preprocess.applyTable(table, to: equalized)
    }

    /// The whole chain: `bytes(...)` divided by 255 in float32 (`Float(b) / 255`, correctly
    /// rounded, as numpy's `x.astype(np.float32) / 255`), row-major, in [0, 1].
    public func apply(rgb: [UInt8], width: Int, height: Int) throws -> [Float] {
        try bytes(rgb: rgb, width: width, height: height).pixels.map { Float($0) / 255 }
    }
}
