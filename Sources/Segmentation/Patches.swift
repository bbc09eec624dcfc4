import Randomness

/// Square patches cut from preprocessed images, with their per-pixel labels: the training data
/// of the DRIVE U-Net (docs/SEGMENTATION.md, "Patches").
public struct PatchSet: Sendable, Equatable {
    public let count: Int
    /// Side of a patch in pixels.
    public let size: Int
    /// `count * size * size` values, patch-major, row-major (one channel).
    public var values: [Float]
    /// `count * size * size` labels, 1 = vessel.
    public var labels: [UInt8]
    /// Where each patch came from: (image, row of its top-left corner, column).
    public var origins: [(image: Int, y: Int, x: Int)]

    public static func == (a: PatchSet, b: PatchSet) -> Bool {
        a.count == b.count && a.size == b.size && a.values == b.values && a.labels == b.labels
            && a.origins.elementsEqual(b.origins) { $0 == $1 }
    }

    /// Patches `range` of this set.
    public func slice(_ range: Range<Int>) -> PatchSet {
        let n = size * size
        return PatchSet(count: range.count, size: size, values: Array(values[range.lowerBound * n ..< range.upperBound * n]),
                        labels: Array(labels[range.lowerBound * n ..< range.upperBound * n]), origins: Array(origins[range]))
    }

    /// The centred `side` x `side` crop of every patch (offset `(size - side) / 2`, rounded down).
    public func centreCrop(_ side: Int) -> PatchSet {
        precondition(side >= 1 && side <= size, "centreCrop: side \(side) outside 1...\(size)")
        let o = (size - side) / 2, n = size * size
        var v = [Float](repeating: 0, count: count * side * side), l = [UInt8](repeating: 0, count: count * side * side)
        for p in 0..<count {
            for y in 0..<side {
                for x in 0..<side {
                    v[(p * side + y) * side + x] = values[p * n + (y + o) * size + x + o]
                    l[(p * side + y) * side + x] = labels[p * n + (y + o) * size + x + o]
                }
            }
        }
        return PatchSet(count: count, size: side, values: v, labels: l, origins: origins.map { ($0.image, $0.y + o, $0.x + o) })
    }
}

public enum Patches {
    /// The xoshiro stream of the patch draws.
    public static let stream: UInt64 = 0x5041_5443_4845_0000   // "PATCHE"

    /// `total` patches of `size` x `size` from `images` (each `height * width` values, one per
    /// image in `values`), labels from `labels`, centres inside the field of view `fov`.
    ///
    /// Image `i` gives `total / images` patches, and the first `total % images` images one more,
    /// in image order. A patch's centre (cy, cx) is the pixel at (top + size/2, left + size/2);
    /// its top-left corner is drawn as `top = int(below: height - size + 1)`, then `left =
    /// int(below: width - size + 1)` from `Xoshiro256StarStar(seed: seed, stream: Patches.stream)`,
    /// one generator for the whole set, and the draw is repeated until `fov` is set at the
    /// centre. Refuses (nil) when an image has no field-of-view pixel a patch can be centred on.
    public static func random(values: [Float], labels: [UInt8], fov: [UInt8], images: Int, height: Int, width: Int,
                              size: Int, total: Int, seed: UInt64) -> PatchSet? {
        let px = height * width
        precondition(images >= 1 && size >= 1 && size <= height && size <= width && total >= 0, "Patches.random: bad sizes")
        precondition(values.count == images * px && labels.count == images * px && fov.count == images * px, "Patches.random: bad lengths")
        let half = size / 2
        // a patch can be centred on a FOV pixel of every image (or the draws would never end)
        for i in 0..<images {
            var ok = false
            for y in half ..< (height - size + 1 + half) where !ok {
                for x in half ..< (width - size + 1 + half) where fov[i * px + y * width + x] != 0 { ok = true; break }
            }
            if !ok { return nil }
        }
        var rng = Xoshiro256StarStar(seed: seed, stream: stream)
        var v = [Float](repeating: 0, count: total * size * size), l = [UInt8](repeating: 0, count: total * size * size)
        var origins: [(image: Int, y: Int, x: Int)] = []
        origins.reserveCapacity(total)
        var p = 0
        for i in 0..<images {
            let n = total / images + (i < total % images ? 1 : 0)
            for _ in 0..<n {
                var top = 0, left = 0
                repeat {
                    top = rng.int(below: height - size + 1)
                    left = rng.int(below: width - size + 1)
                } while fov[i * px + (top + half) * width + left + half] == 0
                for y in 0..<size {
                    let src = i * px + (top + y) * width + left, dst = (p * size + y) * size
                    for x in 0..<size { v[dst + x] = values[src + x]; l[dst + x] = labels[src + x] }
                }
                origins.append((i, top, left))
                p += 1
            }
        }
        return PatchSet(count: total, size: size, values: v, labels: l, origins: origins)
    }

    /// The set split after a seeded shuffle: `Xoshiro256StarStar(seed: seed, stream: stream + 1)
    /// .permutation(count)` orders the patches, the first `count - validation` train, the rest
    /// validate (the paper's 90/10 split with `validation = count / 10`).
    public static func split(_ set: PatchSet, validation: Int, seed: UInt64) -> (train: PatchSet, validation: PatchSet) {
        precondition(validation >= 0 && validation <= set.count, "Patches.split: validation \(validation) of \(set.count)")
        var rng = Xoshiro256StarStar(seed: seed, stream: stream + 1)
        let perm = rng.permutation(set.count), n = set.size * set.size
        var v = [Float](repeating: 0, count: set.values.count), l = [UInt8](repeating: 0, count: set.labels.count)
        for (dst, src) in perm.enumerated() {
            for k in 0..<n { v[dst * n + k] = set.values[src * n + k]; l[dst * n + k] = set.labels[src * n + k] }
        }
        let shuffled = PatchSet(count: set.count, size: set.size, values: v, labels: l, origins: perm.map { set.origins[$0] })
        return (shuffled.slice(0 ..< set.count - validation), shuffled.slice(set.count - validation ..< set.count))
    }
}

extension Patches {
    /// The paper's training data from a DRIVE split: every image through `preprocess`, `total`
    /// random `size` x `size` patches (`random`, seed `seed`), shuffled and split with
    /// `validation` patches held out (`split`), the validation patches cut to their centred
    /// `validationCrop` x `validationCrop` window (the size the network trains on).
    public static func drive(_ set: DriveSet, preprocess: Preprocess = Preprocess(), size: Int = 64, total: Int = 5000,
                             validation: Int = 500, validationCrop: Int = 48, seed: UInt64) throws -> (train: PatchSet, validation: PatchSet) {
        guard size >= 1, size <= set.height, size <= set.width else {
            throw SegmentationError("patches of \(size) x \(size) do not fit images of \(set.height) x \(set.width)")
        }
        guard total >= 1, (0..<total).contains(validation) else { throw SegmentationError("\(validation) validation patches of \(total): need 0 <= validation < total") }
        guard (1...size).contains(validationCrop) else { throw SegmentationError("validation crop \(validationCrop) outside 1...\(size)") }
        var values = [Float](); values.reserveCapacity(set.count * set.pixels)
        for i in 0..<set.count { values += try preprocess.apply(rgb: Array(set.image(i)), width: set.width, height: set.height) }
        guard let all = random(values: values, labels: set.vessels, fov: set.fov, images: set.count, height: set.height, width: set.width,
                               size: size, total: total, seed: seed) else {
            throw SegmentationError("an image has no field-of-view pixel at least \(size / 2) pixels from its border: no patch can be centred in it")
        }
        let (tr, va) = split(all, validation: validation, seed: seed)
        return (tr, va.centreCrop(validationCrop))
    }
}
