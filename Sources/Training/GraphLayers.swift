// The ops of residual networks and U-Nets: residual addition, channel concatenation, bilinear
// upsampling with aligned corners and global average pooling, each with its forward and
// backward side by side (their integer forms: docs/DATAPATH.md sections 16-19).

/// y = x0 + x1 (two tensors of one shape: a residual block's branches).
public final class Add: MultiInputLayer {
    var size = 0
    public var hasWeights: Bool { false }
    public init() {}
    public var spec: LayerSpec { LayerSpec(op: "add") }

    public func configure(inputs: [[Int]], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard inputs.count == 2, inputs[0] == inputs[1] else { throw TrainingError("add: needs two inputs of one shape, got \(inputs)") }
        size = elementCount(inputs[0])
        return inputs[0]
    }

    public func forward(inputs xs: [UnsafeMutablePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let A = SendablePtr(xs[0]), B = SendablePtr(xs[1]), Y = SendablePtr(y)
        pool.blocks(batch * size, grain: elementGrain) { r in for i in r { Y.p[i] = A.p[i] + B.p[i] } }
    }

    public func backward(inputs xs: [UnsafeMutablePointer<Float>], _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dxs: [UnsafeMutablePointer<Float>?], batch: Int, pool: WorkPool) {
        for dx in dxs { dx?.update(from: dy, count: batch * size) }
    }
}

/// Channel concatenation of tensors `[C_j, H, W]` of one height and width -> `[sum C_j, H, W]`
/// (a U-Net skip), inputs in order.
public final class Concat: MultiInputLayer {
    var sizes: [Int] = [], total = 0
    public var hasWeights: Bool { false }
    public init() {}
    public var spec: LayerSpec { LayerSpec(op: "concat") }

    public func configure(inputs: [[Int]], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard inputs.count >= 2, inputs.allSatisfy({ $0.count == 3 && $0[1] == inputs[0][1] && $0[2] == inputs[0][2] }) else {
            throw TrainingError("concat: needs two or more [C, H, W] inputs of one height and width, got \(inputs)")
        }
        sizes = inputs.map { elementCount($0) }
        total = sizes.reduce(0, +)
        return [inputs.reduce(0) { $0 + $1[0] }, inputs[0][1], inputs[0][2]]
    }

    public func forward(inputs xs: [UnsafeMutablePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let Y = SendablePtr(y), X = xs.map { SendablePtr($0) }
        pool.chunks(batch: batch) { _, r, _ in
            for s in r {
                var o = Y.p + s * self.total
                for (j, n) in self.sizes.enumerated() { o.update(from: X[j].p + s * n, count: n); o += n }
            }
        }
    }

    public func backward(inputs xs: [UnsafeMutablePointer<Float>], _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dxs: [UnsafeMutablePointer<Float>?], batch: Int, pool: WorkPool) {
        let DY = SendablePtr(dy)
        let DX = dxs.map { $0.map(SendablePtr.init) }
        pool.chunks(batch: batch) { _, r, _ in
            for s in r {
                var g = DY.p + s * self.total
                for (j, n) in self.sizes.enumerated() { DX[j]?.p.advanced(by: s * n).update(from: g, count: n); g += n }
            }
        }
    }
}

/// Bilinear upsampling by an integer factor with aligned corners (PyTorch `nn.Upsample(
/// scale_factor: f, mode: 'bilinear', align_corners: True)`): `[C, H, W] -> [C, fH, fW]`, output
/// position o of an axis of length m reads `s = o (n-1) / (m-1)` (0 when m = 1).
public final class UpsampleBilinear: Layer {
    public let factor: Int
    var c = 0, ih = 0, iw = 0, oh = 0, ow = 0
    var y0: [Int] = [], y1: [Int] = [], wy: [Float] = [], x0: [Int] = [], x1: [Int] = [], wx: [Float] = []
    public var hasWeights: Bool { false }
    public init(factor: Int) { self.factor = factor }
    public var spec: LayerSpec { var s = LayerSpec(op: "upsample"); s.factor = factor; return s }

    /// Per output position: the two sources and the second one's weight (the integer form's
    /// `f / D`, docs/DATAPATH.md section 18).
    static func axis(input n: Int, output m: Int) -> ([Int], [Int], [Float]) {
        let d = max(m - 1, 1)
        var a: [Int] = [], b: [Int] = [], w: [Float] = []
        for o in 0..<m {
            let s = o * (n - 1)
            a.append(s / d); b.append(min(s / d + 1, n - 1)); w.append(Float(s % d) / Float(d))
        }
        return (a, b, w)
    }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard input.count == 3, (1...16).contains(factor) else { throw TrainingError("upsample: needs [C, H, W] and a factor in 1...16, got \(input), \(factor)") }
        c = input[0]; ih = input[1]; iw = input[2]; oh = ih * factor; ow = iw * factor
        (y0, y1, wy) = Self.axis(input: ih, output: oh)
        (x0, x1, wx) = Self.axis(input: iw, output: ow)
        return [c, oh, ow]
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let X = SendablePtr(x), Y = SendablePtr(y)
        let planes = batch * c
        pool.blocks(planes, grain: max(1, (planes + 7) / 8)) { pr in
            for p in pr {
                let src = X.p + p * self.ih * self.iw, dst = Y.p + p * self.oh * self.ow
                for oy in 0..<self.oh {
                    let r0 = src + self.y0[oy] * self.iw, r1 = src + self.y1[oy] * self.iw, fy = self.wy[oy]
                    for ox in 0..<self.ow {
                        let a = self.x0[ox], b = self.x1[ox], fx = self.wx[ox]
                        let top = (1 - fx) * r0[a] + fx * r0[b], bottom = (1 - fx) * r1[a] + fx * r1[b]
                        dst[oy * self.ow + ox] = (1 - fy) * top + fy * bottom
                    }
                }
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        guard let dx else { return }
        let DX = SendablePtr(dx), DY = SendablePtr(dy)
        let planes = batch * c
        pool.blocks(planes, grain: max(1, (planes + 7) / 8)) { pr in
            for p in pr {
                let d = DX.p + p * self.ih * self.iw, g = DY.p + p * self.oh * self.ow
                d.update(repeating: 0, count: self.ih * self.iw)
                for oy in 0..<self.oh {
                    let r0 = d + self.y0[oy] * self.iw, r1 = d + self.y1[oy] * self.iw, fy = self.wy[oy]
                    for ox in 0..<self.ow {
                        let a = self.x0[ox], b = self.x1[ox], fx = self.wx[ox], v = g[oy * self.ow + ox]
                        r0[a] += (1 - fy) * (1 - fx) * v; r0[b] += (1 - fy) * fx * v
                        r1[a] += fy * (1 - fx) * v; r1[b] += fy * fx * v
                    }
                }
            }
        }
    }
}

/// Global average pooling: `[C, H, W] -> [C]`, the mean of each channel's map.
public final class GlobalAvgPool: Layer {
    var c = 0, hw = 0
    public var hasWeights: Bool { false }
    public init() {}
    public var spec: LayerSpec { LayerSpec(op: "globalavgpool") }

    public func configure(input: [Int], maxBatch: Int, pool: WorkPool) throws -> [Int] {
        guard input.count == 3 else { throw TrainingError("globalavgpool: needs [C, H, W], got \(input)") }
        c = input[0]; hw = input[1] * input[2]
        return [c]
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, training: Bool, pool: WorkPool) {
        let X = SendablePtr(x), Y = SendablePtr(y)
        let inv = 1 / Float(hw)
        pool.blocks(batch * c, grain: max(1, (batch * c + 7) / 8)) { r in
            for p in r {
                let src = X.p + p * self.hw
                var s: Float = 0
                for i in 0..<self.hw { s += src[i] }
                Y.p[p] = s * inv
            }
        }
    }

    public func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, batch: Int, pool: WorkPool) {
        guard let dx else { return }
        let DX = SendablePtr(dx), DY = SendablePtr(dy)
        let inv = 1 / Float(hw)
        pool.blocks(batch * c, grain: max(1, (batch * c + 7) / 8)) { r in
            for p in r { (DX.p + p * self.hw).update(repeating: DY.p[p] * inv, count: self.hw) }
        }
    }
}
