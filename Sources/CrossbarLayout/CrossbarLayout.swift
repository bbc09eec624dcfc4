// The data a crossbar layer's block loops read (DATAPATH.md section 12, "Crossbar"), as plain
// pointers and integers: the seam between the layer's set-up (Kernels: `CrossbarGeometry`,
// `Int16PairKernel`, `U8QuadKernel` pack these once per layer) and its evaluation (the block
// loops of CrossbarBlocks, compiled once per instruction set). The memory belongs to the
// Kernels object that made the struct and lives as long as it; the loops only read it.
import FixedPoint

/// A layer's shapes, segments, ADC constants and fused thresholds (fields as in
/// `CrossbarGeometry`, Sources/Kernels/Fast/FastCrossbar.swift).
public struct BlockLayout: @unchecked Sendable {
    public var inH: Int, inW: Int, inC: Int, outH: Int, outW: Int
    public var kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    public var cout: Int, tileCount: Int, groups: Int
    /// Segments, 5 Ints each (y, x, cLo, cHi, packedOffset); per segment the offset of its first
    /// input code from the window's top-left corner; per tile (plus one) its first segment.
    public var segments: UnsafePointer<Int>, segmentOffset: UnsafePointer<Int>, tileSegStart: UnsafePointer<Int>
    public var segmentCount: Int
    /// Per tile: the ADC as integers (gain, rounding, saturation bounds).
    public var adcMult: UnsafePointer<Int64>, adcRound: UnsafePointer<RoundingConst>
    public var adcLo: UnsafePointer<Int64>, adcHi: UnsafePointer<Int64>
    /// Whether every tile's ADC is exact in Double lanes, and per tile its gain
    /// `multiplier * 2^-(31 - shift)` and rounding rule (the AVX2 build's vector ADC).
    public var vectorADC: Bool
    public var adcScale: UnsafePointer<Double>, adcRule: UnsafePointer<RoundingRule>
    /// `inC` zero codes: the input row of a kernel position outside the map.
    public var zeroRow: UnsafePointer<Int16>
    /// Fused activation: levels per output (0: not fused) and thresholds
    /// `[level][out padded to 16 * groups]` Int32.
    public var fusedLevels: Int
    public var thresholds: UnsafePointer<Int32>

    public init(inH: Int, inW: Int, inC: Int, outH: Int, outW: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int,
                cout: Int, tileCount: Int, groups: Int,
                segments: UnsafePointer<Int>, segmentOffset: UnsafePointer<Int>, tileSegStart: UnsafePointer<Int>, segmentCount: Int,
                adcMult: UnsafePointer<Int64>, adcRound: UnsafePointer<RoundingConst>, adcLo: UnsafePointer<Int64>, adcHi: UnsafePointer<Int64>,
                vectorADC: Bool, adcScale: UnsafePointer<Double>, adcRule: UnsafePointer<RoundingRule>,
                zeroRow: UnsafePointer<Int16>, fusedLevels: Int, thresholds: UnsafePointer<Int32>) {
        self.inH = inH; self.inW = inW; self.inC = inC; self.outH = outH; self.outW = outW
        self.kh = kh; self.kw = kw; self.sh = sh; self.sw = sw; self.ph = ph; self.pw = pw
        self.cout = cout; self.tileCount = tileCount; self.groups = groups
        self.segments = segments; self.segmentOffset = segmentOffset; self.tileSegStart = tileSegStart
        self.segmentCount = segmentCount
        self.adcMult = adcMult; self.adcRound = adcRound; self.adcLo = adcLo; self.adcHi = adcHi
        self.vectorADC = vectorADC; self.adcScale = adcScale; self.adcRule = adcRule
        self.zeroRow = zeroRow; self.fusedLevels = fusedLevels; self.thresholds = thresholds
    }

    /// Input codes of one image (HWC).
    public var inCount: Int { inH * inW * inC }
}

/// The Int16 pair kernel's weights: `[tile][group][step][8 outputs x 2 rows][2 halves]` Int16
/// (FastCrossbarBlocked.swift), per tile their element offset and row-pair steps, and the
/// steps an Int16 lane sums before widening.
public struct PairWeights: @unchecked Sendable {
    public var weights: UnsafeRawPointer
    public var tileWeightOffset: UnsafePointer<Int>, tilePairs: UnsafePointer<Int>
    public var chunkRows: Int

    public init(weights: UnsafeRawPointer, tileWeightOffset: UnsafePointer<Int>, tilePairs: UnsafePointer<Int>, chunkRows: Int) {
        self.weights = weights; self.tileWeightOffset = tileWeightOffset; self.tilePairs = tilePairs; self.chunkRows = chunkRows
    }
}

/// The narrow fused kernel's data (FastCrossbarNarrow.swift): weights `[packed row][out padded to
/// pad]` Int16, thresholds `[level][out padded to pad]` Int16, per packed row the offset of its
/// input code from the window's top-left corner, per group of 16 outputs the levels it compares;
/// the tile's rows and its rows rounded up to 8 (a gathered patch's stride).
public struct NarrowWeights: @unchecked Sendable {
    public var weights: UnsafeRawPointer, thresholds: UnsafeRawPointer
    public var rowOffset: UnsafePointer<Int>, groupLevels: UnsafePointer<Int>
    public var pad: Int, rows: Int, rows8: Int

    public init(weights: UnsafeRawPointer, thresholds: UnsafeRawPointer, rowOffset: UnsafePointer<Int>, groupLevels: UnsafePointer<Int>,
                pad: Int, rows: Int, rows8: Int) {
        self.weights = weights; self.thresholds = thresholds; self.rowOffset = rowOffset; self.groupLevels = groupLevels
        self.pad = pad; self.rows = rows; self.rows8 = rows8
    }
}

/// The u8 x i8 quad kernel's weights: `[tile][group][quad step][16 outputs][4 rows]` Int8
/// (FastCrossbarU8.swift), per tile their byte offset and quad steps, the flush schedule (runs
/// of quad steps per tile and group from `flushStart[t * groups + g]`, then a sentinel), and
/// per quad step of each tile (from `stepStart[t]`) the offset of its 4 input bytes from the
/// window's top-left corner.
public struct QuadWeights: @unchecked Sendable {
    public var weights: UnsafeRawPointer
    public var tileWeightOffset: UnsafePointer<Int>, tileQuads: UnsafePointer<Int>
    public var flush: UnsafePointer<Int>, flushStart: UnsafePointer<Int>
    public var stepOffset: UnsafePointer<Int32>, stepStart: UnsafePointer<Int>

    public init(weights: UnsafeRawPointer, tileWeightOffset: UnsafePointer<Int>, tileQuads: UnsafePointer<Int>,
                flush: UnsafePointer<Int>, flushStart: UnsafePointer<Int>, stepOffset: UnsafePointer<Int32>, stepStart: UnsafePointer<Int>) {
        self.weights = weights; self.tileWeightOffset = tileWeightOffset; self.tileQuads = tileQuads
        self.flush = flush; self.flushStart = flushStart; self.stepOffset = stepOffset; self.stepStart = stepStart
    }

    /// Byte offset in the scratch of the layer's input as u8 (after the 4 x 16 Int32
    /// accumulators); it is followed by a zero tail of `inC + 8` bytes (the zero row, and the
    /// over-read of a segment's last partial quad).
    public static let inputOffset = 256
    /// The flush sentinel (longer than any run).
    public static let sentinel = Int.max / 4
}
