// The model bundle: a Kernels `Program` plus what a deployment needs to know about it
// (task, target, provenance, programming counts, crossbar placement, masks, conductances).
import DataIO
import FixedPoint
import Kernels

/// Where a frozen model came from.
public struct Provenance: Sendable, Equatable {
    public var seed: UInt64
    public var epochs: Int
    public var dataset: String
    public var floatAccuracy: Double
    public var integerAccuracy: Double
    public var toolVersion: String
    /// Creation time, only when the caller passes one (files are otherwise reproducible).
    public var created: String?

    public init(seed: UInt64, epochs: Int, dataset: String, floatAccuracy: Double, integerAccuracy: Double,
                toolVersion: String, created: String? = nil) {
        self.seed = seed; self.epochs = epochs; self.dataset = dataset; self.floatAccuracy = floatAccuracy
        self.integerAccuracy = integerAccuracy; self.toolVersion = toolVersion; self.created = created
    }
}

/// What programming the chip costs: per crossbar layer (in node order) the mask bits that
/// flip relative to the previous programming, and the number of cells to reset.
public struct ProgrammingCounts: Sendable, Equatable {
    public var maskFlips: [Int]
    public var cellsToReset: Int
    public init(maskFlips: [Int], cellsToReset: Int) { self.maskFlips = maskFlips; self.cellsToReset = cellsToReset }
}

/// One tile of a crossbar layer on a physical array (same shape as Device's `TilePlacement`):
/// fan-in rows `inputOffset..<inputOffset+rows` of crossbar layer `layer` (ordinal among the
/// crossbar nodes) sit at rows `rowOffset..<rowOffset+rows` of array `array`; outputs
/// `outputOffset..<outputOffset+outputs` at columns `colOffset..<colOffset+2*outputs`: output `o` uses
/// the differential pair G+ at `colOffset + 2*(o - outputOffset)` and G- at the column after it.
public struct PlacementTile: Sendable, Equatable, Hashable {
    public var layer: Int, array: Int, rowOffset: Int, rows: Int
    public var inputOffset: Int, colOffset: Int, outputOffset: Int, outputs: Int
    public init(layer: Int, array: Int, rowOffset: Int, rows: Int, inputOffset: Int, colOffset: Int, outputOffset: Int, outputs: Int) {
        self.layer = layer; self.array = array; self.rowOffset = rowOffset; self.rows = rows
        self.inputOffset = inputOffset; self.colOffset = colOffset; self.outputOffset = outputOffset; self.outputs = outputs
    }
}

public struct Placement: Sendable, Equatable {
    public var arrayRows: Int, arrayCols: Int, arrayCount: Int
    public var tiles: [PlacementTile]
    public init(arrayRows: Int, arrayCols: Int, arrayCount: Int, tiles: [PlacementTile]) {
        self.arrayRows = arrayRows; self.arrayCols = arrayCols; self.arrayCount = arrayCount; self.tiles = tiles
    }
    /// Arrays that hold at least one tile.
    public var arraysUsed: Int { Set(tiles.map(\.array)).count }
}

/// A binary mask, bit-packed LSB-first (element `i` is bit `i % 8` of byte `i / 8`); true = kept.
public struct PackedMask: Sendable, Equatable, Hashable {
    public var count: Int
    public var bytes: [UInt8]
    public init(count: Int, bytes: [UInt8]) { self.count = count; self.bytes = bytes }
    public init(_ bits: [Bool]) { self.init(count: bits.count, bytes: BitPacking.pack(bits)) }
    public subscript(i: Int) -> Bool { bytes[i >> 3] & (1 << UInt8(i & 7)) != 0 }
    /// Number of kept (1) bits.
    public var ones: Int { bytes.reduce(0) { $0 + $1.nonzeroBitCount } }
}

/// Quantized conductance codes of a crossbar layer: `planes` (1, or 2 for differential pairs
/// G+ / G-) planes of `[outChannels][fanIn]` u8 codes, plane-major.
public struct ConductanceCodes: Sendable, Equatable, Hashable {
    public var planes: Int
    public var codes: [UInt8]
    public init(planes: Int, codes: [UInt8]) { self.planes = planes; self.codes = codes }
}

public struct ModelMetadata: Sendable, Equatable {
    public var task: String
    public var targetName: String
    /// SHA-256 (hex) of the target profile's content.
    public var targetHash: String
    public var provenance: Provenance
    public var programming: ProgrammingCounts
    public var placement: Placement?
    /// Per crossbar layer (node order): the learned mask, or nil. Empty = no masks (an all-nil
    /// list is stored as none and reads back empty).
    public var masks: [PackedMask?]
    /// Per crossbar layer: conductance codes, or nil. Empty = none stored (the default).
    public var conductances: [ConductanceCodes?]
    /// Further metadata (keys must not collide with the ones the format defines).
    public var extra: [String: MetadataValue]
    /// Per crossbar layer (node order): the generator that reproduces its weight codes, or nil
    /// (explicit codes). Empty = none (format 1.0 files). A layer with a generator needs a mask;
    /// the program still holds the resolved codes (the writer stores the record instead of them).
    public var weightGenerators: [WeightGenerator?]
    /// Canonical JSON of the target profile (its SHA-256 is `targetHash`); needed by
    /// statistical-device generators, empty otherwise.
    public var deviceProfile: [UInt8]

    public init(task: String, targetName: String, targetHash: String, provenance: Provenance,
                programming: ProgrammingCounts, placement: Placement? = nil, masks: [PackedMask?] = [],
                conductances: [ConductanceCodes?] = [], extra: [String: MetadataValue] = [:],
                weightGenerators: [WeightGenerator?] = [], deviceProfile: [UInt8] = []) {
        self.task = task; self.targetName = targetName; self.targetHash = targetHash; self.provenance = provenance
        self.programming = programming; self.placement = placement
        // An all-nil list means "none" and reads back as empty; normalize so round trips compare equal.
        self.masks = masks.allSatisfy { $0 == nil } ? [] : masks
        self.conductances = conductances.allSatisfy { $0 == nil } ? [] : conductances
        self.extra = extra
        self.weightGenerators = weightGenerators.allSatisfy { $0 == nil } ? [] : weightGenerators
        self.deviceProfile = deviceProfile
    }
}

/// A model file in memory.
public struct ModelBundle: Sendable, Equatable {
    public var program: Program
    public var metadata: ModelMetadata

    public init(program: Program, metadata: ModelMetadata) { self.program = program; self.metadata = metadata }

    /// Metadata keys defined by the format (docs/FORMAT.md, section 5).
    public static let reservedKeys: Set<String> = [
        Keys.task, Keys.targetName, Keys.targetHash, Keys.seed, Keys.epochs, Keys.dataset, Keys.floatAccuracy,
        Keys.integerAccuracy, Keys.toolVersion, Keys.created, Keys.maskFlips, Keys.cellsToReset,
    ]
    enum Keys {
        static let task = "model.task"
        static let targetName = "target.name"
        static let targetHash = "target.sha256"
        static let seed = "provenance.seed"
        static let epochs = "provenance.epochs"
        static let dataset = "provenance.dataset"
        static let floatAccuracy = "provenance.float_accuracy"
        static let integerAccuracy = "provenance.integer_accuracy"
        static let toolVersion = "provenance.tool_version"
        static let created = "provenance.created"
        static let maskFlips = "programming.mask_flips"
        static let cellsToReset = "programming.cells_to_reset"
    }

    /// The node of every crossbar layer (`Program.crossbarLayers`; an rnn node appears twice).
    public var crossbarNodes: [Int] { program.crossbarLayers.map { $0.node } }

    // MARK: file I/O

    /// Reads the whole file once and decodes it.
    public static func read(path: String) throws -> ModelBundle {
        let bytes: [UInt8]
        do { bytes = try readFileBytes(path) } catch {
            throw ModelFileError(.io, section: "file", offset: 0, "\(path): \(error)")
        }
        return try decode(bytes, name: path)
    }

    /// Encodes and writes atomically (temporary file + rename).
    public func write(to path: String) throws {
        let bytes = try encode()
        do { try writeFileAtomically(bytes, to: path) } catch {
            throw ModelFileError(.io, section: "file", offset: 0, "\(path): \(error)")
        }
    }
}
