import DataIO

/// A retinal-vessel segmentation set in the DRIVE layout: `count` RGB images of `height` x
/// `width`, each with a vessel annotation and a field-of-view (FOV) mask.
///
/// On disk (docs/SEGMENTATION.md, "The data set"): three gzipped IDX files per split in one
/// folder, `{train,test}-images-idx4-ubyte.gz` (N x H x W x 3 uint8, RGB interleaved),
/// `{train,test}-vessels-idx3-ubyte.gz` and `{train,test}-fov-idx3-ubyte.gz` (N x H x W uint8,
/// every value 0 or 255). In memory the maps are 0/1.
public struct DriveSet: Sendable, Equatable {
    public let count: Int
    public let height: Int
    public let width: Int
    /// `count * height * width * 3` bytes, image-major, row-major, RGB interleaved.
    public let rgb: [UInt8]
    /// `count * height * width` values, 1 = vessel (first manual annotation).
    public let vessels: [UInt8]
    /// `count * height * width` values, 1 = inside the field of view.
    public let fov: [UInt8]

    /// DRIVE's image size (rows x columns).
    public static let driveHeight = 584, driveWidth = 565
    /// Where the data lives unless `--data DIR` says otherwise: `<shared data>/drive`.
    public static var defaultDir: String? { Datasets.sharedDataDir().map { $0 + "/drive" } }

    public enum Split: String, Sendable { case train, test }

    /// The three files of `split` in `dir`.
    public static func paths(dir: String, split: Split) -> (images: String, vessels: String, fov: String) {
        let p = dir + "/" + split.rawValue
        return (p + "-images-idx4-ubyte.gz", p + "-vessels-idx3-ubyte.gz", p + "-fov-idx3-ubyte.gz")
    }

    /// Validates the pieces: `rgb` is `count * height * width * 3` bytes, the maps
    /// `count * height * width` values of 0 or 1.
    public init(count: Int, height: Int, width: Int, rgb: [UInt8], vessels: [UInt8], fov: [UInt8]) throws {
        let name = "<DriveSet>"
        guard count >= 0, height > 0, width > 0, let px = checkedProduct([count, height, width]), let bytes = checkedProduct([px, 3]) else {
            throw DataIOError(.dimensionOverflow, file: name)
        }
        guard rgb.count == bytes else { throw DataIOError(.countMismatch(expected: bytes, got: rgb.count), file: name) }
        for (what, m) in [("vessels", vessels), ("fov", fov)] {
            guard m.count == px else { throw DataIOError(.countMismatch(expected: px, got: m.count), file: name + " " + what) }
            if let i = m.firstIndex(where: { $0 > 1 }) {
                throw DataIOError(.inconsistent("\(what) value \(m[i]) at index \(i), expected 0 or 1"), file: name)
            }
        }
        self.count = count; self.height = height; self.width = width
        self.rgb = rgb; self.vessels = vessels; self.fov = fov
    }

    /// Loads `split` from `dir`. `size` is the required (height, width), DRIVE's 584 x 565 by
    /// default; nil accepts any size the three files agree on. Every problem is a `DataIOError`
    /// naming the file: a missing file, a wrong type or shape, sizes the files disagree on, a map
    /// value other than 0 and 255 (with the image, row and column).
    public static func load(dir: String, split: Split, size: (height: Int, width: Int)? = (driveHeight, driveWidth)) throws -> DriveSet {
        let (ip, vp, fp) = paths(dir: dir, split: split)
        for p in [ip, vp, fp] where !fileExists(p) {
            throw DataIOError(.fileNotFound, file: p, note: "a DRIVE split needs \(ip), \(vp) and \(fp) (the layout of shared/data/drive; --data DIR points elsewhere)")
        }
        let images = try IDX.read(path: ip)
        guard images.shape.count == 4, images.shape[3] == 3, let rgb = images.uint8 else {
            throw DataIOError(.inconsistent("expected uint8 RGB images N x H x W x 3, got \(images.element.typeName) \(images.shape)"), file: ip)
        }
        let (n, h, w) = (images.shape[0], images.shape[1], images.shape[2])
        if let size, (h, w) != size {
            throw DataIOError(.inconsistent("images are \(h) x \(w) (rows x columns), expected \(size.height) x \(size.width)"), file: ip)
        }
        guard h > 0, w > 0 else { throw DataIOError(.inconsistent("images are \(h) x \(w), expected at least 1 x 1"), file: ip) }
        func map(_ path: String) throws -> [UInt8] {
            let a = try IDX.read(path: path)
            guard a.shape == [n, h, w], let v = a.uint8 else {
                throw DataIOError(.inconsistent("expected uint8 \(n) x \(h) x \(w) (the images' count and size, from \(ip)), got \(a.element.typeName) \(a.shape)"), file: path)
            }
            var out = [UInt8](repeating: 0, count: v.count)
            for i in v.indices {
                switch v[i] {
                case 0: break
                case 255: out[i] = 1
                default:
                    let (img, r) = (i / (h * w), i % (h * w))
                    throw DataIOError(.inconsistent("value \(v[i]) at image \(img), row \(r / w), column \(r % w); a map holds only 0 and 255"), file: path)
                }
            }
            return out
        }
        return try DriveSet(count: n, height: h, width: w, rgb: rgb, vessels: try map(vp), fov: try map(fp))
    }

    /// Pixels per image.
    public var pixels: Int { height * width }

    /// Image `i`'s RGB bytes (HWC).
    public func image(_ i: Int) -> ArraySlice<UInt8> { rgb[i * pixels * 3 ..< (i + 1) * pixels * 3] }
    /// Image `i`'s vessel map (0/1).
    public func vessels(_ i: Int) -> ArraySlice<UInt8> { vessels[i * pixels ..< (i + 1) * pixels] }
    /// Image `i`'s field-of-view mask (0/1).
    public func fov(_ i: Int) -> ArraySlice<UInt8> { fov[i * pixels ..< (i + 1) * pixels] }
}
