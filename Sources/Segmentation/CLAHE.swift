// Contrast-limited adaptive histogram equalization of 8-bit images, reproducing OpenCV 4.x
// (`cv2.createCLAHE(clipLimit, tileGridSize).apply(img)`, the CPU path for CV_8UC1) bit for
// bit: the paper's preprocessing ran through OpenCV, so a network trained on its images sees
// exactly these grey levels. Every step that could be done "more naturally" (the padding
// rule, the integer clip count, float32 instead of float64 in the LUT and the interpolation,
// round-half-to-even) is as it is because OpenCV does it so. docs/SEGMENTATION.md specifies
// each step.

/// CLAHE with OpenCV's algorithm and defaults of the paper (clip limit 2.0, an 8 x 8 grid).
public struct CLAHE: Sendable, Equatable {
    /// Contrast limit, in multiples of a flat histogram's bin height (OpenCV's `clipLimit`).
    /// Must be > 0; `.infinity` (or anything at least 256) means no clipping: plain
    /// histogram equalization per tile.
    public var clipLimit: Double
    /// Tiles across (OpenCV's `tileGridSize.width`), >= 1.
    public var tilesX: Int
    /// Tiles down (OpenCV's `tileGridSize.height`), >= 1.
    public var tilesY: Int

    public init(clipLimit: Double = 2.0, tilesX: Int = 8, tilesY: Int = 8) {
        self.clipLimit = clipLimit
        self.tilesX = tilesX
        self.tilesY = tilesY
    }

    /// What OpenCV derives from the settings and the image size.
    public struct Geometry: Sendable, Equatable {
        /// The image the tile histograms are taken over (the input, padded when needed).
        public let paddedWidth: Int
        public let paddedHeight: Int
        public let tileWidth: Int
        public let tileHeight: Int
        /// The most pixels a histogram bin keeps before clipping (`max(Int(clipLimit * tileArea / 256), 1)`,
        /// capped at the tile area, where clipping can no longer happen).
        public let clipCount: Int
        public var tileArea: Int { tileWidth * tileHeight }
    }

    /// Checks the settings against an image size; the error names the offending value.
    public func validate(width: Int, height: Int) throws {
        guard !clipLimit.isNaN, clipLimit > 0 else {
            throw SegmentationError("CLAHE clip limit must be > 0, got \(clipLimit)")
        }
        guard tilesX >= 1, tilesY >= 1 else {
            throw SegmentationError("CLAHE tile grid must be at least 1 x 1, got \(tilesX) x \(tilesY)")
        }
        guard width >= tilesX, height >= tilesY else {
            throw SegmentationError("CLAHE needs an image at least as large as its \(tilesX) x \(tilesY) tile grid, got \(width) x \(height)")
        }
    }

    /// The padded size, tile size and clip count OpenCV uses for a `width` x `height` image.
    public func geometry(width: Int, height: Int) throws -> Geometry {
        try validate(width: width, height: height)
        // OpenCV pads both axes as soon as either is not a multiple of the grid, and pads an
        // axis that is a multiple by a whole grid count (tilesX - 0 columns): one more column
        // per tile. Reproduced because it changes the tile size, hence every LUT.
        var pw = width, ph = height
        if width % tilesX != 0 || height % tilesY != 0 {
            pw = width + tilesX - width % tilesX
            ph = height + tilesY - height % tilesY
        }
        let tw = pw / tilesX, th = ph / tilesY
        let area = tw * th
        // OpenCV: static_cast<int>(clipLimit * tileArea / 256) in double, then at least 1.
        // A bin never holds more than the tile area, so a limit beyond it is the same as no
        // limit; capping first keeps the Int conversion in range for huge clip limits.
        let c = clipLimit * Double(area) / 256
        let clip = c >= Double(area) ? area : max(Int(c), 1)
        return Geometry(paddedWidth: pw, paddedHeight: ph, tileWidth: tw, tileHeight: th, clipCount: clip)
    }

    /// OpenCV's BORDER_REFLECT_101 (`gfedcb|abcdefgh|gfedcba`), reflecting again while the
    /// index is still outside (a pad can be as wide as the image itself).
    static func reflect101(_ p: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        var p = p
        while p < 0 || p >= n { p = p < 0 ? -p : 2 * n - 2 - p }
        return p
    }

    /// The tile look-up tables, tile (tx, ty) at `[(ty * tilesX + tx) * 256 ..< +256]`.
    public func tileLUTs(_ image: GrayImage) throws -> [UInt8] {
        let g = try geometry(width: image.width, height: image.height)
        let w = image.width, h = image.height
        let colSource = (0..<g.paddedWidth).map { CLAHE.reflect101($0, w) }
        let colTile = (0..<g.paddedWidth).map { $0 / g.tileWidth }
        var luts = [UInt8](repeating: 0, count: tilesX * tilesY * 256)
        // Histograms of one row of tiles at a time: the memory stays tilesX * 256 counts.
        var hist = [Int](repeating: 0, count: tilesX * 256)
        // OpenCV: static_cast<float>(255) / tileArea, a float32 scale.
        let scale = Float(255) / Float(g.tileArea)
        let clip = g.clipCount
        image.pixels.withUnsafeBufferPointer { src in
        colSource.withUnsafeBufferPointer { cs in
        colTile.withUnsafeBufferPointer { ct in
        hist.withUnsafeMutableBufferPointer { hb in
        luts.withUnsafeMutableBufferPointer { lb in
            for ty in 0..<tilesY {
                for i in 0..<hb.count { hb[i] = 0 }
                for py in (ty * g.tileHeight)..<((ty + 1) * g.tileHeight) {
                    let row = CLAHE.reflect101(py, h) * w
                    for px in 0..<g.paddedWidth {
                        hb[ct[px] &* 256 &+ Int(src[row &+ cs[px]])] &+= 1
                    }
                }
                for tx in 0..<tilesX {
                    let hbase = tx * 256, lbase = (ty * tilesX + tx) * 256
                    // Clip each bin, then hand the excess back: an equal batch to every bin,
                    // the remainder one count at a time every max(256 / remainder, 1) bins from 0.
                    var clipped = 0
                    for i in 0..<256 where hb[hbase + i] > clip {
                        clipped += hb[hbase + i] - clip
                        hb[hbase + i] = clip
                    }
                    let batch = clipped / 256
                    var residual = clipped - batch * 256
                    if batch != 0 { for i in 0..<256 { hb[hbase + i] += batch } }
                    if residual != 0 {
                        let step = max(256 / residual, 1)
                        var i = 0
                        while i < 256 && residual > 0 {
                            hb[hbase + i] += 1
                            i += step
                            residual -= 1
                        }
                    }
                    var sum = 0
                    for i in 0..<256 {
                        sum += hb[hbase + i]
                        lb[lbase + i] = CLAHE.saturatedRound(Float(sum) * scale)
                    }
                }
            }
        }}}}}
        return luts
    }

    /// OpenCV's saturate_cast<uchar>(float): round half to even (cvRound on SSE2), then clamp.
    @inline(__always)
    static func saturatedRound(_ v: Float) -> UInt8 {
        let r = v.rounded(.toNearestOrEven)
        if !(r > 0) { return 0 }
        if r >= 255 { return 255 }
        return UInt8(r)
    }

    /// The equalized image (same size). Throws `SegmentationError` on bad settings or an
    /// image smaller than the tile grid.
    public func apply(_ image: GrayImage) throws -> GrayImage {
        let g = try geometry(width: image.width, height: image.height)
        let luts = try tileLUTs(image)
        let w = image.width, h = image.height
        // Per-column left/right tile and weights, as OpenCV precomputes them: all float32,
        // tile centres at (t + 0.5) * tileWidth, weights from the unclamped position.
        var ind1 = [Int](repeating: 0, count: w), ind2 = [Int](repeating: 0, count: w)
        var xa = [Float](repeating: 0, count: w), xa1 = [Float](repeating: 0, count: w)
        let invTW = Float(1) / Float(g.tileWidth)
        for x in 0..<w {
            let txf = Float(x) * invTW - 0.5
            let t1 = Int(txf.rounded(.down))
            xa[x] = txf - Float(t1)
            xa1[x] = 1 - xa[x]
            ind1[x] = max(t1, 0) * 256
            ind2[x] = min(t1 + 1, tilesX - 1) * 256
        }
        let invTH = Float(1) / Float(g.tileHeight)
        var out = [UInt8](repeating: 0, count: w * h)
        let tilesX = self.tilesX, tilesY = self.tilesY
        image.pixels.withUnsafeBufferPointer { src in
        luts.withUnsafeBufferPointer { lut in
        ind1.withUnsafeBufferPointer { i1 in
        ind2.withUnsafeBufferPointer { i2 in
        xa.withUnsafeBufferPointer { wa in
        xa1.withUnsafeBufferPointer { wa1 in
        out.withUnsafeMutableBufferPointer { dst in
            for y in 0..<h {
                let tyf = Float(y) * invTH - 0.5
                let t1 = Int(tyf.rounded(.down))
                let ya = tyf - Float(t1), ya1 = 1 - ya
                let plane1 = max(t1, 0) * tilesX * 256
                let plane2 = min(t1 + 1, tilesY - 1) * tilesX * 256
                let row = y * w
                for x in 0..<w {
                    let v = Int(src[row &+ x])
                    let a = i1[x] &+ v, b = i2[x] &+ v
                    // The same float32 operations in the same order as OpenCV (no fused
                    // multiply-add: Swift does not contract, OpenCV's baseline build has none).
                    let top = Float(lut[plane1 &+ a]) * wa1[x] + Float(lut[plane1 &+ b]) * wa[x]
                    let bottom = Float(lut[plane2 &+ a]) * wa1[x] + Float(lut[plane2 &+ b]) * wa[x]
                    dst[row &+ x] = CLAHE.saturatedRound(top * ya1 + bottom * ya)
                }
            }
        }}}}}}}
        return GrayImage(width: w, height: h, pixels: out)
    }
}
