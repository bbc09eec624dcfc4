// Hardware TO: the device's differential conductances as supermask weights.
import Device

/// Differential weights from a conductance source (statistical model or measured readouts)
/// placed on crossbar arrays: profile + seed -> placement -> `differentialWeights`.
public struct DeviceWeightSource: DifferentialWeightSource {
    public let placement: CrossbarPlacement
    public let device: any ConductanceSource
    public let threads: Int

    public init(device: any ConductanceSource, placement: CrossbarPlacement, threads: Int = 1) {
        self.device = device; self.placement = placement; self.threads = max(1, threads)
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
    /// (name, fanIn, fanOut) of the weight layers of a graph, in graph order.
    public static func layerShapes(_ specs: [LayerSpec]) -> [LayerShape] {
        specs.compactMap { s in
            switch s.op {
            case "conv2d": return LayerShape(name: s.name ?? "conv", fanIn: (s.inChannels ?? 0) * (s.kernelH ?? 0) * (s.kernelW ?? 0), fanOut: s.outChannels ?? 0)
            case "linear": return LayerShape(name: s.name ?? "fc", fanIn: s.inFeatures ?? 0, fanOut: s.outFeatures ?? 0)
            default: return nil
            }
        }
    }
}
