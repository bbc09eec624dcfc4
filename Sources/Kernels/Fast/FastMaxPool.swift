// Fast max-pool on an HWC Int32 buffer (DATAPATH.md section 8).

extension Fast {
    @inlinable
    public static func maxPool(src: UnsafePointer<Int32>, dst: UnsafeMutablePointer<Int32>,
                               shape: TensorShape, _ p: MaxPoolParams) {
        let c = shape.c, w = shape.w
        let oh = (shape.h - p.kh) / p.sh + 1, ow = (shape.w - p.kw) / p.sw + 1
        var o = dst
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

    /// HWC -> CHW copy (flatten of an HWC-stored tensor into (C*H*W) order).
    @inlinable
    public static func hwcToCHW(src: UnsafePointer<Int32>, dst: UnsafeMutablePointer<Int32>, shape: TensorShape) {
        let hw = shape.h &* shape.w, c = shape.c
        if hw == 1 || c == 1 { dst.update(from: src, count: hw &* c); return }
        for i in 0..<hw { for ch in 0..<c { dst[ch &* hw &+ i] = src[i &* c &+ ch] } }
    }
}
