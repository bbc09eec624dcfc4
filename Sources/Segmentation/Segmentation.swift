// Segmentation: per-pixel tasks on images, first of all the DRIVE retinal-vessel set of the
// paper's third system. Each file is one stage of the chain a user runs:
//   Drive.swift        the data set (images, vessel maps, field-of-view masks), validated;
//   Preprocess.swift   grayscale, normalization, gamma (the paper's preprocessing);
//   CLAHE.swift        contrast-limited adaptive histogram equalization (OpenCV's algorithm);
//   Metrics.swift      ROC-AUC, PR-AUC and the thresholded pixel statistics.
// Foundation-free, like the integer side: everything here is plain arrays and loops.

/// A single-channel 8-bit image, row-major (`pixels[y * width + x]`).
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height, "GrayImage: \(pixels.count) pixels for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
