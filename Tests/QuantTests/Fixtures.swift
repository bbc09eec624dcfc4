import Foundation
import XCTest
import DataIO
import Device
import Kernels
import Randomness
import Training
@testable import Quant

func spec(_ op: String, _ f: (inout LayerSpec) -> Void = { _ in }) -> LayerSpec { var x = LayerSpec(op: op); f(&x); return x }

/// The paper's CNN ops at a small size: 28x28 -> pool -> fq -> conv1 1->6 -> BN -> ReLU -> fq ->
/// conv2 6->4 -> pool -> BN -> ReLU -> fq -> flatten -> fc1 100->16 -> ReLU -> fq -> fc2 16->10.
func miniSpecs(bits: Int = 4) -> [LayerSpec] {
    [
        spec("maxpool2d") { $0.kernel = 2 },
        spec("fakequant") { $0.bits = bits; $0.fixedRange = true; $0.range = 1 },
        spec("conv2d") { $0.name = "conv1"; $0.inChannels = 1; $0.outChannels = 6; $0.kernelH = 3; $0.kernelW = 3; $0.stride = 1; $0.padding = 0 },
        spec("batchnorm") { $0.eps = 1e-5 },
        spec("relu"),
        spec("fakequant") { $0.bits = bits; $0.fixedRange = false },
        spec("conv2d") { $0.name = "conv2"; $0.inChannels = 6; $0.outChannels = 4; $0.kernelH = 3; $0.kernelW = 3; $0.stride = 1; $0.padding = 0 },
        spec("maxpool2d") { $0.kernel = 2 },
        spec("batchnorm") { $0.eps = 1e-5 },
        spec("relu"),
        spec("fakequant") { $0.bits = bits; $0.fixedRange = false },
        spec("flatten"),
        spec("linear") { $0.name = "fc1"; $0.inFeatures = 100; $0.outFeatures = 16 },
        spec("relu"),
        spec("fakequant") { $0.bits = bits; $0.fixedRange = false },
        spec("linear") { $0.name = "fc2"; $0.inFeatures = 16; $0.outFeatures = 10 },
    ]
}

/// A U-Net-shaped classifier (14x14 after the input pool): an encoder level whose codes are the
/// skip, a second level at 7x7, its codes upsampled x2 and concatenated with the skip, a decoder
/// conv, then global average pooling and fc. `inputs` name the branches (value k + 1 = node k).
func miniUNetSpecs(bits: Int = 4) -> [LayerSpec] {
    func q() -> LayerSpec { spec("fakequant") { $0.bits = bits; $0.fixedRange = false } }
    func conv(_ name: String, _ cin: Int, _ cout: Int) -> LayerSpec {
        spec("conv2d") { $0.name = name; $0.inChannels = cin; $0.outChannels = cout; $0.kernelH = 3; $0.kernelW = 3; $0.stride = 1; $0.padding = 1 }
    }
    return [
        spec("maxpool2d") { $0.kernel = 2 },                                         // 1
        spec("fakequant") { $0.bits = bits; $0.fixedRange = true; $0.range = 1 },     // 2
        conv("enc1", 1, 6), spec("batchnorm") { $0.eps = 1e-5 }, spec("relu"), q(),  // 3-6: the skip
        spec("maxpool2d") { $0.kernel = 2 },                                         // 7
        conv("enc2", 6, 8), spec("batchnorm") { $0.eps = 1e-5 }, spec("relu"), q(),  // 8-11
        spec("upsample") { $0.factor = 2 },                                          // 12
        spec("concat") { $0.inputs = [12, 6] },                                      // 13
        q(),                                                                         // 14
        conv("dec1", 14, 8), spec("batchnorm") { $0.eps = 1e-5 }, spec("relu"), q(), // 15-18
        spec("globalavgpool"), q(),                                                  // 19-20
        spec("linear") { $0.name = "fc"; $0.inFeatures = 8; $0.outFeatures = 10 },
    ]
}

/// A target with small arrays (conv2's 54 rows split into 4 tiles of <= 16).
func smallTarget(rows: Int = 16, cols: Int = 32, adcBits: Int = 14) -> TargetProfile {
    var t = TargetProfiles.rram40nmTaOx
    t.name = "test-small"; t.arrayRows = rows; t.arrayCols = cols; t.adcBits = adcBits
    return t
}

/// Seeded pseudo-images: a class-dependent bar on noise, as 8-bit pixels.
func syntheticPixels(count: Int, seed: UInt64) -> PixelSet {
    var r = Xoshiro256StarStar(seed: seed)
    var px = [UInt8](repeating: 0, count: count * 784), y = [UInt8](repeating: 0, count: count)
    for s in 0..<count {
        let c = r.int(below: 10)
        y[s] = UInt8(c)
        for i in 0..<784 { px[s * 784 + i] = UInt8(r.int(below: 90)) }
        let row = 2 + 2 * c
        for col in 4..<24 { px[s * 784 + row * 28 + col] = 255; px[s * 784 + (row + 1) * 28 + col] = 230 }
    }
    return PixelSet(count: count, shape: TensorShape(c: 1, h: 28, w: 28), pixels: px, labels: y)
}

/// A FreezeSource for `miniSpecs` with seeded weights (software: +-std, w_off = 0; hardware-like:
/// random w_on magnitudes and small random w_off), BN statistics and ranges chosen so that the
/// activations are lively on `syntheticPixels`.
func syntheticSource(seed: UInt64, hardware: Bool = false, bits: Int = 4) -> FreezeSource {
    var r = Xoshiro256StarStar(seed: seed, stream: 3)
    let g = miniSpecs(bits: bits)
    var layers: [SourceWeightLayer] = []
    for (gi, s) in g.enumerated() where s.op == "conv2d" || s.op == "linear" {
        let fanIn = s.op == "conv2d" ? s.inChannels! * 9 : s.inFeatures!
        let fanOut = s.outChannels ?? s.outFeatures!
        let std = Float((2.0 / (Double(fanIn) * 0.5)).squareRoot())
        var on = [Float](), off = [Float](), mask = [UInt8]()
        for _ in 0..<(fanIn * fanOut) {
            let sign: Float = r.int(below: 2) == 0 ? -1 : 1
            on.append(hardware ? sign * std * Float(r.uniform(0.3, 1.7)) : sign * std)
            off.append(hardware ? Float(r.uniform(-0.03, 0.03)) * std : 0)
            mask.append(r.int(below: 2) == 0 ? 0 : 1)
        }
        layers.append(SourceWeightLayer(name: s.name!, graphIndex: gi, fanOut: fanOut, fanIn: fanIn, wOn: on, wOff: off, mask: mask,
                                        scale: hardware ? 0.02 : 1, flipsTotal: 100 + gi))
    }
    // BN statistics and static ranges from a float pass of the model itself (like training would)
    var src = FreezeSource(task: "fashion-mnist", mode: hardware ? "hardware" : "software", runTarget: nil, seed: seed, epochs: 1,
                           inputShape: [1, 28, 28], classes: 10, inputScale: 1.0 / 255, inputOffset: 0, graph: g, weightLayers: layers,
                           batchNorms: [:], quantizers: [1: (bits, 1)], trainingTestAccuracy: nil)
    let cal = syntheticPixels(count: 64, seed: seed &+ 1)
    for gi in g.indices {
        switch g[gi].op {
        case "batchnorm":
            let acts = (0..<cal.count).map { i in SourceOracle.forward(src, pixels: Array(cal.pixels[(i * 784)..<((i + 1) * 784)]), upTo: gi) }
            let c = acts[0].c, per = acts[0].v.count / c
            var mean = [Float](), variance = [Float]()
            for ch in 0..<c {
                var s = 0.0, s2 = 0.0
                for a in acts { for k in 0..<per { let v = a.v[ch * per + k]; s += v; s2 += v * v } }
                let n = Double(acts.count * per), m = s / n
                mean.append(Float(m)); variance.append(Float(max(s2 / n - m * m, 1e-6)))
            }
            src.batchNorms[gi] = (mean, variance, 1e-5)
        case "fakequant" where gi != 1:
            let acts = (0..<cal.count).map { i in SourceOracle.forward(src, pixels: Array(cal.pixels[(i * 784)..<((i + 1) * 784)]), upTo: gi) }
            var mx = 0.0
            for a in acts { for v in a.v { mx = max(mx, v) } }
            src.quantizers[gi] = (bits, Float(0.8 * mx))
        default: break
        }
    }
    return src
}

/// The source model's float semantics (training's evaluation mode) in Double, written from
/// docs/TRAINING.md: the oracle for the fold.
enum SourceOracle {
    struct Act { var v: [Double]; var c: Int; var h: Int; var w: Int }

    /// The input of graph node `upTo` (all nodes before it applied); `upTo == graph.count`: logits.
    static func forward(_ src: FreezeSource, pixels: [UInt8], upTo: Int? = nil) -> Act {
        var a = Act(v: pixels.map { Double($0) * src.inputScale + src.inputOffset }, c: src.inputShape[0], h: src.inputShape[1], w: src.inputShape[2])
        let wl = Dictionary(src.weightLayers.map { ($0.graphIndex, $0) }, uniquingKeysWith: { x, _ in x })
        for gi in 0..<(upTo ?? src.graph.count) {
            let s = src.graph[gi]
            switch s.op {
            case "maxpool2d":
                let k = s.kernel ?? 2, oh = a.h / k, ow = a.w / k
                var o = [Double](repeating: 0, count: a.c * oh * ow)
                for c in 0..<a.c { for y in 0..<oh { for x in 0..<ow {
                    var m = -Double.infinity
                    for dy in 0..<k { for dx in 0..<k { m = max(m, a.v[(c * a.h + y * k + dy) * a.w + x * k + dx]) } }
                    o[(c * oh + y) * ow + x] = m
                } } }
                a = Act(v: o, c: a.c, h: oh, w: ow)
            case "fakequant":
                guard let q = src.quantizers[gi] else { fatalError("no range") }
                let r = Double(q.range), L = Double((1 << q.bits) - 1)
                a.v = a.v.map { r > 0 ? (min(max($0, 0), r) / r * L).rounded(.toNearestOrAwayFromZero) * r / L : 0 }
            case "batchnorm":
                let bn = src.batchNorms[gi]!
                let per = a.h * a.w
                for c in 0..<a.c {
                    let istd = 1 / (Double(bn.variance[c]) + bn.eps).squareRoot()
                    for k in 0..<per { a.v[c * per + k] = (a.v[c * per + k] - Double(bn.mean[c])) * istd }
                }
            case "relu": a.v = a.v.map { max($0, 0) }
            case "flatten": a = Act(v: a.v, c: a.v.count, h: 1, w: 1)
            case "conv2d", "linear":
                let l = wl[gi]!
                let k = s.op == "conv2d" ? s.kernelH! : 1
                let oh = a.h - k + 1, ow = a.w - k + 1
                var o = [Double](repeating: 0, count: l.fanOut * oh * ow)
                for oc in 0..<l.fanOut { for y in 0..<oh { for x in 0..<ow {
                    var acc = 0.0
                    for r in 0..<l.fanIn {
                        let c = r / (k * k), dy = (r / k) % k, dx = r % k
                        acc += a.v[(c * a.h + y + dy) * a.w + x + dx] * Double(l.effective(oc * l.fanIn + r))
                    }
                    o[(oc * oh + y) * ow + x] = acc
                } } }
                a = Act(v: o, c: l.fanOut, h: oh, w: ow)
            default: fatalError("op \(s.op)")
            }
        }
        return a
    }

    static func argmax(_ v: [Double]) -> Int {
        var b = 0
        for i in 1..<v.count where v[i] > v[b] { b = i }
        return b
    }
}

func image(_ set: PixelSet, _ i: Int) -> [UInt8] { Array(set.pixels[(i * set.shape.count)..<((i + 1) * set.shape.count)]) }

func tempPath(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "quanttests-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir + "/" + name
}
