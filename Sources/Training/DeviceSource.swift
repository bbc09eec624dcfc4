// Hardware TO: the device's differential conductances as supermask weights.
import Device
import Randomness

/// Differential weights from a conductance source (statistical model or measured readouts)
/// placed on crossbar arrays: profile + seed -> placement -> `differentialWeights`.
public struct DeviceWeightSource: DifferentialWeightSource {
    public let placement: CrossbarPlacement
    public let device: any ConductanceSource
    public let threads: Int

    /// Statistical device only: per layer, the cells of every weight and their nominal
    /// conductances, so a noisy read of the programmed pairs costs two normal draws per cell
    /// (the read-noise equation of `StatisticalDevice.conductance`, checked against it by a test).
    let fast: FastReads?

    struct FastReads: Sendable {
        let seed: UInt64
        let cols: Int
        let rel: Double
        let abs: Double
        /// per layer: (array, row, colPlus) per weight, and nominal [G+ formed, G- formed, G+ reset, G- reset]
        let cells: [[(array: Int, row: Int, col: Int)]]
        let nominal: [[Double]]
    }

    public init(device: any ConductanceSource, placement: CrossbarPlacement, threads: Int = 1) {
        self.device = device; self.placement = placement; self.threads = max(1, threads)
        guard let dev = device as? StatisticalDevice else { fast = nil; return }
        var cells: [[(array: Int, row: Int, col: Int)]] = [], nominal: [[Double]] = []
        for (l, shape) in placement.layers.enumerated() {
            var c: [(array: Int, row: Int, col: Int)] = [], g: [Double] = []
            c.reserveCapacity(shape.fanIn * shape.fanOut); g.reserveCapacity(4 * shape.fanIn * shape.fanOut)
            for o in 0..<shape.fanOut { for i in 0..<shape.fanIn {
                let x = placement.cell(layer: l, input: i, output: o)
                c.append((x.array, x.row, x.colPlus))
                for st in [CellState.formed, .reset] { for col in [x.colPlus, x.colMinus] {
                    g.append(x.array < 0 ? 0 : dev.conductance(array: x.array, row: x.row, col: col, state: st, read: nil))
                }}
            }}
            cells.append(c); nominal.append(g)
        }
        fast = FastReads(seed: dev.seed, cols: dev.cols, rel: dev.profile.readNoise.relative,
                         abs: dev.profile.readNoise.absoluteMicroSiemens, cells: cells, nominal: nominal)
    }

    public func programmed(layer: Int, read: Int, mask: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        guard let f = fast, layer >= 0, layer < f.cells.count else {
            let (on, off) = differential(layer: layer, read: read)
            for i in 0..<on.count { out[i] = mask[i] != 0 ? on[i] : off[i] }
            return
        }
        let cells = f.cells[layer], g = f.nominal[layer], n = cells.count
        let o = SendablePtr(out)
        let maskS = UnsafeSendableBytes(UnsafeMutablePointer(mutating: mask))
        let blocks = 16
        parallelRows(blocks, threads: threads) { b in
            for i in (b * n / blocks)..<((b + 1) * n / blocks) {
                let c = cells[i]
                if c.array < 0 { o.p[i] = 0; continue }
                let state: CellState = maskS.p[i] != 0 ? .formed : .reset
                let base = 4 * i + (state == .formed ? 0 : 2)
                let stream = CounterRandom.stream(DeviceStream.read, UInt64(truncatingIfNeeded: c.array), UInt64(state.rawValue),
                                                  UInt64(truncatingIfNeeded: read))
                let streamKey = CounterRandom.key(seed: f.seed, stream: stream)
                func noisy(_ g0: Double, _ col: Int) -> Double {
                    let idx = UInt64(truncatingIfNeeded: c.row) &* UInt64(truncatingIfNeeded: f.cols) &+ UInt64(truncatingIfNeeded: col)
                    let key = CounterRandom.key(streamKey, index: idx)
                    let z1 = CounterRandom.normal(key, lane: 0)
                    let z2 = CounterRandom.normal(key, lane: 1)
                    let r = g0 * (1 + f.rel * z1) + f.abs * z2
                    return r < 0 ? 0 : r
                }
                o.p[i] = Float(noisy(g[base], c.col) - noisy(g[base + 1], c.col + 1))
            }
        }
    }

    /// The statistical model of `target` (a profile name or a JSON path) with `seed`, the
    /// layers placed on arrays of the profile's geometry.
    public init(target: String, seed: UInt64, layers: [LayerShape], threads: Int = 1) throws {
        let profile = try TargetProfiles.resolve(target)
        let dev = try StatisticalDevice(validating: profile, seed: seed)
        let placement = try CrossbarMapper.place(layers, arrayRows: profile.arrayRows, arrayCols: profile.arrayCols)
        self.init(device: dev, placement: placement, threads: threads)
    }

    /// Measured readouts (`ReadoutFiles.load(path:)` layout) on the geometry of `target`.
    public init(readouts path: String, target: String, layers: [LayerShape], threads: Int = 1) throws {
        let profile = try TargetProfiles.resolve(target)
        let r = try ReadoutFiles.load(path: path, arrayRows: profile.arrayRows, arrayCols: profile.arrayCols)
        let placement = try CrossbarMapper.place(layers, arrayRows: profile.arrayRows, arrayCols: profile.arrayCols)
        self.init(device: r.readouts, placement: placement, threads: threads)
    }

    public func differential(layer: Int, read: Int?) -> (on: [Float], off: [Float]) {
        differentialWeights(placement: placement, layer: layer, source: device, read: read, threads: threads)
    }

    public static var defaultTarget: String { TargetProfiles.defaultName }
}

extension Architectures {
    /// (name, fanIn, fanOut) of the weight matrices of a graph, in graph order (the order of
    /// `SupermaskNetwork.masked`; an RNN node gives `<name>.ih` [hidden x in] then `<name>.hh`
    /// [hidden x hidden], two separate crossbar layers).
    public static func layerShapes(_ specs: [LayerSpec]) -> [LayerShape] {
        specs.flatMap { s -> [LayerShape] in
            switch s.op {
            case "conv2d": return [LayerShape(name: s.name ?? "conv", fanIn: (s.inChannels ?? 0) * (s.kernelH ?? 0) * (s.kernelW ?? 0), fanOut: s.outChannels ?? 0)]
            case "linear": return [LayerShape(name: s.name ?? "fc", fanIn: s.inFeatures ?? 0, fanOut: s.outFeatures ?? 0)]
            case "rnn":
                let n = s.name ?? "rnn", h = s.hidden ?? 0
                return [LayerShape(name: n + ".ih", fanIn: s.inFeatures ?? 0, fanOut: h), LayerShape(name: n + ".hh", fanIn: h, fanOut: h)]
            default: return []
            }
        }
    }
}

public struct UnsafeSendableBytes: @unchecked Sendable {
    public let p: UnsafeMutablePointer<UInt8>
    public init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }
}
