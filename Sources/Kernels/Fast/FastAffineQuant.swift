// Fast inputQuant / activation on an HWC buffer (DATAPATH.md sections 3 and 7).

import CrossbarLayout
import FixedPoint

/// Set-up constants of one affine quantizer.
public struct AffinePlan: Sendable {
    public var multiplier: [Int64]
    public var offset: [Int64]
    public var rounding: [RoundingConst]
    public var hi: Int64

    /// Threshold form (see `affineQuantThresholds`), or `thresholdRow == 0`:
    /// `thresholds[(k - 1) * thresholdRow + r]` is `T_k` of channel `r % channels`.
    public var thresholds: [Int32] = []
    public var thresholdRow = 0
    public var levels = 0

    public init(_ p: AffineQuantParams) {
        multiplier = p.multiplier.map { Int64($0) }
        offset = p.offset
        rounding = p.shift.map { RoundingConst(shift: Int($0), rule: p.rounding) }
        hi = (Int64(1) << Int64(p.outBits)) - 1
    }

    /// As `init(p)`, plus the threshold form when the input lies in `inputRange` (the tensor's
    /// range from `valueRanges()`), every multiplier is `>= 0` (then `f_c(x)`, the output code of
    /// channel c, is non-decreasing in x), there are at most `maxLevels` output levels, and the
    /// channel count divides 8 or is a multiple of 8: `T_k[c] = min { x in [lo, hi] : f_c(x) >= k }`
    /// (`hi + 1` if none), found by binary search with the reference function, so that
    /// `f_c(x) = #{k in 1...L : x >= T_k[c]}` for every x in the range.
    public init(_ p: AffineQuantParams, inputRange: ValueRange, channels: Int, maxLevels: Int = 15) {
        self.init(p)
        let levels = (1 << p.outBits) - 1
        guard levels <= maxLevels, channels >= 1, channels % 8 == 0 || 8 % channels == 0, p.multiplier.count == channels,
              p.multiplier.allSatisfy({ $0 >= 0 }), inputRange.lo >= Int64(Int32.min), inputRange.hi < Int64(Int32.max),
              inputRange.lo <= inputRange.hi else { return }
        let row = Swift.max(channels, 8)
        var th = [Int32](repeating: 0, count: levels * row)
        for c in 0..<channels {
            for k in 1...levels {
                var lo = inputRange.lo, hi = inputRange.hi + 1   // invariant: f(hi) >= k or hi = range.hi + 1
                while lo < hi {
                    let mid = lo + (hi - lo) / 2
                    if Reference.affineQuant(mid, channel: c, p) >= Int64(k) { hi = mid } else { lo = mid + 1 }
                }
                for r in stride(from: c, to: row, by: channels) { th[(k - 1) * row + r] = Int32(lo) }
            }
        }
        thresholds = th
        thresholdRow = row
        self.levels = levels
    }
}

extension Fast {
    /// `dst[i*C + c] = clamp(round((src[i*C + c] * M_c + B_c) / 2^S_c), 0, hi)` for `i < pixels`.
    @inlinable
    public static func affineQuant<S: FixedWidthInteger, D: FixedWidthInteger>(
        src: UnsafePointer<S>, dst: UnsafeMutablePointer<D>, pixels: Int, channels: Int, plan: AffinePlan) {
        affineQuant(src: src, dst: dst, pixels: pixels, channels: channels, dstStride: channels, plan: plan)
    }

    /// As above with output pixels `dstStride` elements apart (`dst[i*dstStride + c]`): one
    /// input's channels of a concatenation.
    @inlinable
    public static func affineQuant<S: FixedWidthInteger, D: FixedWidthInteger>(
        src: UnsafePointer<S>, dst: UnsafeMutablePointer<D>, pixels: Int, channels: Int, dstStride: Int, plan: AffinePlan) {
        let hi = plan.hi
        plan.multiplier.withUnsafeBufferPointer { m in
            plan.offset.withUnsafeBufferPointer { b in
                plan.rounding.withUnsafeBufferPointer { k in
                    var i = 0, j = 0
                    for _ in 0..<pixels {
                        for c in 0..<channels {
                            // |src * M| + |B| <= 2^62 (validate): no wrap
                            let q = k[c].apply(Int64(src[i &+ c]) &* m[c] &+ b[c])
                            dst[j &+ c] = D(truncatingIfNeeded: q < 0 ? 0 : (q > hi ? hi : q))
                        }
                        i &+= channels
                        j &+= dstStride
                    }
                }
            }
        }
    }
}

extension Fast {
    /// The affine quantizer in threshold form (`plan.thresholdRow > 0`) on `count` values of an
    /// HWC tensor (channels contiguous; `count` a multiple of the channel count), each in the
    /// plan's input range: `dst[e] = #{k : src[e] >= T_k[channel]}`, 8 values per vector (the
    /// scalar tail stops at the first threshold not reached: they are non-decreasing in k).
    @inlinable
    public static func affineQuantThresholds(src: UnsafePointer<Int32>, dst: UnsafeMutablePointer<Int16>, count n: Int, plan: AffinePlan) {
        thresholdCount(count: n, plan: plan, dst: dst, load: { UnsafeRawPointer(src + $0).loadUnaligned(as: SIMD8<Int32>.self) },
                       scalar: { Int32(src[$0]) })
    }

    /// As above for Int16 input codes.
    @inlinable
    public static func affineQuantThresholds(src: UnsafePointer<Int16>, dst: UnsafeMutablePointer<Int16>, count n: Int, plan: AffinePlan) {
        thresholdCount(count: n, plan: plan, dst: dst,
                       load: { SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(src + $0).loadUnaligned(as: SIMD8<Int16>.self)) },
                       scalar: { Int32(src[$0]) })
    }

    /// `#{k < levels : x >= T_k}` for 8 lanes: `thresholds` points at `T_0` of the first lane,
    /// level rows `rowBytes` apart (Int32 thresholds).
    @inlinable @inline(__always)
    static func levelCount8(_ x: SIMD8<Int32>, thresholds: UnsafeRawPointer, levels: Int, rowBytes: Int) -> SIMD8<Int16> {
        let one = SIMD8<Int32>(repeating: 1)
        var cnt = SIMD8<Int32>()
        var tp = thresholds
        for _ in 0..<levels {
            cnt &+= SIMD8<Int32>().replacing(with: one, where: x .>= tp.loadUnaligned(as: SIMD8<Int32>.self))
            tp += rowBytes
        }
        return SIMD8<Int16>(truncatingIfNeeded: cnt)
    }

    @inlinable @inline(__always)
    static func thresholdCount(count n: Int, plan: AffinePlan, dst: UnsafeMutablePointer<Int16>,
                               load: (Int) -> SIMD8<Int32>, scalar: (Int) -> Int32) {
        let row = plan.thresholdRow, levels = plan.levels
        plan.thresholds.withUnsafeBufferPointer { tb in
            let th = UnsafeRawPointer(tb.baseAddress!)
            var e = 0, r = 0   // r: position in the threshold row (e mod row)
            while e &+ 8 <= n {
                let cnt = levelCount8(load(e), thresholds: th + r &* 4, levels: levels, rowBytes: row &* 4)
                UnsafeMutableRawPointer(dst + e).storeBytes(of: cnt, as: SIMD8<Int16>.self)
                e &+= 8
                r &+= 8
                if r == row { r = 0 }
            }
            while e < n {
                let x = scalar(e), base = e % row
                var k = 0
                while k < levels && x >= tb[k &* row &+ base] { k &+= 1 }
                dst[e] = Int16(truncatingIfNeeded: k)
                e &+= 1
            }
        }
    }
}

extension Fast {
    /// A 2x2 / stride 2 max-pool of an HWC sum tensor (`shape`, channels a multiple of 8) and
    /// the threshold-form activation of its output (`plan.thresholdRow == shape.c`, made for the
    /// pool's output range): `dst` (HWC codes) = `#{k : max of the 4 window sums >= T_k[c]}`.
    @inlinable
    public static func maxPool2x2Thresholds(src: UnsafePointer<Int32>, dst: UnsafeMutablePointer<Int16>, shape: TensorShape,
                                            plan: AffinePlan) {
        let c = shape.c, w = shape.w, oh = (shape.h - 2) / 2 + 1, ow = (shape.w - 2) / 2 + 1, levels = plan.levels
        precondition(plan.thresholdRow == c && c % 8 == 0, "threshold plan for the pooled channels")
        plan.thresholds.withUnsafeBufferPointer { tb in
            let th = UnsafeRawPointer(tb.baseAddress!)
            @inline(__always) func load(_ p: UnsafePointer<Int32>) -> SIMD8<Int32> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int32>.self) }
            var o = dst
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let b0 = src + ((oy &* 2) &* w &+ ox &* 2) &* c, b1 = b0 + c, b2 = b0 + w &* c, b3 = b2 + c
                    var ch = 0
                    while ch < c {
                        let x = pointwiseMax(pointwiseMax(load(b0 + ch), load(b1 + ch)), pointwiseMax(load(b2 + ch), load(b3 + ch)))
                        let cnt = levelCount8(x, thresholds: th + ch &* 4, levels: levels, rowBytes: c &* 4)
                        UnsafeMutableRawPointer(o + ch).storeBytes(of: cnt, as: SIMD8<Int16>.self)
                        ch &+= 8
                    }
                    o += c
                }
            }
        }
    }
}
