// Readout files on disk: NPY arrays of shape [reads, cells], float32 or float64, in µS unless a
// unit says otherwise. A readout set is either two files P-set.npy and P-reset.npy, or one file
// P.npy of shape [2, reads, cells] (index 0 = set, 1 = reset).
import DataIO
import Foundation

extension MeasuredReadouts {
    /// From NPY arrays of shape [reads, cells] (float32 or float64).
    public init(set: NPYArray, reset: NPYArray, arrayRows: Int, arrayCols: Int, unit: ConductanceUnit = .microSiemens,
                source: (set: String, reset: String) = ("set", "reset")) throws {
        try self.init(set: try ReadoutFiles.floats(set, source.set), setShape: set.shape,
                      reset: try ReadoutFiles.floats(reset, source.reset), resetShape: reset.shape,
                      arrayRows: arrayRows, arrayCols: arrayCols, unit: unit, source: source)
    }
}

public enum ReadoutFiles {
    /// `P-set.npy` and `P-reset.npy` for a path P (a trailing ".npy" of P is dropped).
    public static func paths(_ p: String) -> (set: String, reset: String) {
        let stem = p.hasSuffix(".npy") ? String(p.dropLast(4)) : p
        return (stem + "-set.npy", stem + "-reset.npy")
    }

    static func floats(_ a: NPYArray, _ name: String) throws -> [Float] {
        switch a.dtype {
        case .float32: return try a.float32s()
        case .float64:
            let d = try a.float64s()
            var out = [Float](repeating: 0, count: d.count)
            for i in d.indices {
                let f = Float(d[i])
                if d[i].isFinite && !f.isFinite {
                    throw DeviceError("\(name): value \(d[i]) at index \(i) does not fit in float32")
                }
                out[i] = f
            }
            return out
        default:
            throw DeviceError("\(name): readouts must be float32 or float64 conductances, got dtype \(a.dtype) ('\(a.dtype.rawValue)')")
        }
    }

    static func read(_ path: String) throws -> NPYArray {
        do { return try NPY.read(path: path) } catch let e as DataIOError { throw DeviceError("\(e)") }
    }

    /// Writes set and reset readouts ([reads, cells], µS) atomically, float32 (or float64).
    public static func write(set: [Float], reset: [Float], reads: Int, cells: Int, paths: (set: String, reset: String),
                             float64: Bool = false) throws {
        let (n, o) = reads.multipliedReportingOverflow(by: cells)
        guard !o, n == set.count, n == reset.count else {
            throw DeviceError("readouts: \(set.count)/\(reset.count) values do not match [\(reads), \(cells)]")
        }
        do {
            for (values, path) in [(set, paths.set), (reset, paths.reset)] {
                let a = float64 ? try NPYArray(shape: [reads, cells], float64: values.map(Double.init))
                                : try NPYArray(shape: [reads, cells], float32: values)
                try NPY.write(a, to: path)
            }
        } catch let e as DataIOError { throw DeviceError("\(e)") }
    }

    /// Loads a set/reset pair of files.
    public static func load(setPath: String, resetPath: String, arrayRows: Int, arrayCols: Int,
                            unit: ConductanceUnit = .microSiemens) throws -> MeasuredReadouts {
        try MeasuredReadouts(set: try read(setPath), reset: try read(resetPath), arrayRows: arrayRows, arrayCols: arrayCols,
                             unit: unit, source: (setPath, resetPath))
    }

    /// Loads `P`: the single file P (shape [2, reads, cells]) if it exists, else P-set.npy and
    /// P-reset.npy. Returns the readouts and a note naming the files read.
    public static func load(path p: String, arrayRows: Int, arrayCols: Int,
                            unit: ConductanceUnit = .microSiemens) throws -> (readouts: MeasuredReadouts, files: String) {
        if FileManager.default.fileExists(atPath: p) {
            let a = try read(p)
            guard a.shape.count == 3, a.shape[0] == 2 else {
                throw DeviceError("\(p): a single readout file must have shape [2, reads, cells] (set, reset), got \(a.shape); for separate files give \(paths(p).set) and \(paths(p).reset) or use --set/--reset")
            }
            let v = try floats(a, p)
            let half = v.count / 2
            let shape = [a.shape[1], a.shape[2]]
            let r = try MeasuredReadouts(set: Array(v[0..<half]), setShape: shape, reset: Array(v[half...]), resetShape: shape,
                                         arrayRows: arrayRows, arrayCols: arrayCols, unit: unit,
                                         source: (p + "[0] (set)", p + "[1] (reset)"))
            return (r, p)
        }
        let ps = paths(p)
        for f in [ps.set, ps.reset] where !FileManager.default.fileExists(atPath: f) {
            throw DeviceError("\(p): no such readout file, and \(f) does not exist either (expected \(ps.set) + \(ps.reset))")
        }
        return (try load(setPath: ps.set, resetPath: ps.reset, arrayRows: arrayRows, arrayCols: arrayCols, unit: unit),
                ps.set + " + " + ps.reset)
    }
}
