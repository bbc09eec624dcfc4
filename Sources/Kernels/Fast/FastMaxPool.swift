// Fast max-pool on an HWC buffer (DATAPATH.md section 8); Int16 codes or Int32 sums.

extension Fast {
    @inlinable
    public static func maxPool<T: FixedWidthInteger>(src: UnsafePointer<T>, dst: UnsafeMutablePointer<T>,
                                                      shape: TensorShape, _ p: MaxPoolParams) {
        let c = shape.c, w = shape.w
        let oh = (shape.h - p.kh) / p.sh + 1, ow = (shape.w - p.kw) / p.sw + 1
        var o = dst
        if p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 {
            // the common 2x2 / stride 2 window: four reads per output, no inner window loops
            if c == 1 {
                for oy in 0..<oh {
                    let r0 = src + (oy &* 2) &* w, r1 = r0 + w
                    for ox in 0..<ow {
                        let x = ox &* 2
                        o[ox] = Swift.max(Swift.max(r0[x], r0[x &+ 1]), Swift.max(r1[x], r1[x &+ 1]))
                    }
                    o += ow
                }
            } else {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let b0 = src + ((oy &* 2) &* w &+ ox &* 2) &* c, b1 = b0 + c, b2 = b0 + w &* c, b3 = b2 + c
                        for ch in 0..<c { o[ch] = Swift.max(Swift.max(b0[ch], b1[ch]), Swift.max(b2[ch], b3[ch])) }
                        o += c
                    }
                }
            }
            return
        }
        if c == 1 {
            // one channel (e.g. pooling input pixels): plain 2-D windows
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let base = src + ((oy &* p.sh) &* w &+ ox &* p.sw)
                    var m = base[0]
                    for dy in 0..<p.kh { for dx in 0..<p.kw { m = Swift.max(m, base[dy &* w &+ dx]) } }
                    o[0] = m
                    o += 1
                }
            }
            return
        }
        for oy in 0..<oh {
            for ox in 0..<ow {
                let base = src + ((oy &* p.sh) &* w &+ ox &* p.sw) &* c
                for ch in 0..<c { o[ch] = base[ch] }
                for dy in 0..<p.kh {
                    for dx in 0..<p.kw where dy != 0 || dx != 0 {
                        let s = base + (dy &* w &+ dx) &* c
                        for ch in 0..<c { o[ch] = Swift.max(o[ch], s[ch]) }
                    }
                }
                o += c
            }
        }
    }

    /// HWC -> CHW copy (flatten of an HWC-stored tensor into (C*H*W) order), converting the
    /// element type (values always fit: codes and sums are validated ranges).
    @inlinable
    public static func hwcToCHW<S: FixedWidthInteger, D: FixedWidthInteger>(src: UnsafePointer<S>, dst: UnsafeMutablePointer<D>,
                                                                             shape: TensorShape) {
        let hw = shape.h &* shape.w, c = shape.c
        if hw == 1 || c == 1 {
            for i in 0..<(hw &* c) { dst[i] = D(truncatingIfNeeded: src[i]) }
            return
        }
        for i in 0..<hw { for ch in 0..<c { dst[ch &* hw &+ i] = D(truncatingIfNeeded: src[i &* c &+ ch]) } }
    }
}
