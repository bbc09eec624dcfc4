// The integer program: the hardware datapath of a frozen RRAM network as a small layer graph.
// The exact integer semantics of every op are specified in docs/DATAPATH.md; this file only
// declares the data. Standard library only (Embedded Swift).
//
// Stability: the model-file format encodes these types. Changes are additive only: new op
// cases get new `OpKind` raw values, existing raw values and field meanings never change.

import FixedPoint

/// A tensor shape: channels, height, width. The logical element order is always (C, H, W)
/// (row-major, `index = (c * h + y) * w + x`); kernels may store tensors in another physical
/// order, but every tensor they report (traces, logits) is in this order.
public struct TensorShape: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var c: Int
    public var h: Int
    public var w: Int

    @inlinable public init(c: Int, h: Int, w: Int) { self.c = c; self.h = h; self.w = w }
    @inlinable public var count: Int { c * h * w }
    public var description: String { "(\(c),\(h),\(w))" }
}

/// What the integers of a tensor mean (and how wide they are).
public enum ElementKind: UInt8, Sendable, Equatable, Hashable {
    /// Unsigned `bits`-bit codes in `0...2^bits - 1`, `bits` in `1...8`, stored as `UInt8`.
    /// Input pixels are `.code` with `bits == 8`; DAC codes and activation outputs are `.code`.
    case code = 0
    /// Signed `bits`-bit ADC codes in `-2^(bits-1)...2^(bits-1) - 1`, `bits` in `2...16`, `Int16`.
    /// (Produced inside a crossbar node per row tile; reserved for explicit tile graphs.)
    case adc = 1
    /// Signed 32-bit digital sums (sums of ADC codes; logits), `Int32`. `bits` is 32.
    case sum = 2
}

/// A tensor of the program: shape plus element kind.
public struct TensorDesc: Sendable, Equatable, Hashable {
    public var shape: TensorShape
    public var kind: ElementKind
    /// Code width for `.code` (1...8) and `.adc` (2...16); 32 for `.sum`.
    public var bits: Int

    @inlinable public init(shape: TensorShape, kind: ElementKind, bits: Int) {
        self.shape = shape; self.kind = kind; self.bits = bits
    }
    public static func code(_ shape: TensorShape, bits: Int) -> TensorDesc { .init(shape: shape, kind: .code, bits: bits) }
    public static func sum(_ shape: TensorShape) -> TensorDesc { .init(shape: shape, kind: .sum, bits: 32) }
}

/// Per-channel affine requantization to unsigned codes; the parameters of both `inputQuant`
/// (pixels -> DAC codes) and `activation` (digital sums -> activation codes, batch norm folded):
///
///     out[c,y,x] = clamp(roundingShiftRight(Int64(in) * multiplier[c] + offset[c], shift[c], rounding),
///                        0, 2^outBits - 1)
///
/// ReLU is the lower clamp. All arithmetic in Int64; `validate()` proves it cannot overflow.
public struct AffineQuantParams: Sendable, Equatable, Hashable {
    /// One per channel of the input tensor. May be negative, except where monotonicity is
    /// required (the input or output of a max-pool, see DATAPATH.md section 7).
    public var multiplier: [Int32]
    /// Right shift per channel, `0...62`.
    public var shift: [Int32]
    /// Added before the shift, per channel (in units of 2^-shift of an output code).
    public var offset: [Int64]
    /// Output code width, `1...8`.
    public var outBits: Int
    public var rounding: RoundingRule

    public init(multiplier: [Int32], shift: [Int32], offset: [Int64], outBits: Int, rounding: RoundingRule) {
        self.multiplier = multiplier; self.shift = shift; self.offset = offset
        self.outBits = outBits; self.rounding = rounding
    }

    /// Channels `r` of this quantizer (one input's share of a concatenation's).
    public func channels(_ r: Range<Int>) -> AffineQuantParams {
        AffineQuantParams(multiplier: Array(multiplier[r]), shift: Array(shift[r]), offset: Array(offset[r]), outBits: outBits, rounding: rounding)
    }

    /// The same `multiplier`, `shift`, `offset` for all `channels` channels.
    public init(channels: Int, multiplier: Int32, shift: Int32, offset: Int64, outBits: Int, rounding: RoundingRule) {
        self.init(multiplier: Array(repeating: multiplier, count: channels),
                  shift: Array(repeating: shift, count: channels),
                  offset: Array(repeating: offset, count: channels), outBits: outBits, rounding: rounding)
    }
}

/// Max-pool window and stride; no padding; output `(h - kh) / sh + 1` (floor) by `(w - kw) / sw + 1`.
/// Works on any element kind; the output has the input's kind and bits.
public struct MaxPoolParams: Sendable, Equatable, Hashable {
    public var kh: Int, kw: Int, sh: Int, sw: Int
    public init(kh: Int, kw: Int, sh: Int, sw: Int) { self.kh = kh; self.kw = kw; self.sh = sh; self.sw = sw }
    public init(_ k: Int) { self.init(kh: k, kw: k, sh: k, sw: k) }
}

/// One row tile of a crossbar layer: a contiguous range of fan-in rows (at most
/// `Program.arrayRows`) mapped to one physical array, read out by one ADC configuration.
///
///     acc   = sum_{r in rowStart..<rowStart+rowCount} a[r] * w[o][r]              (Int32, exact)
///     adc   = saturate(roundingShiftRight(Int64(acc) * Int64(multiplier), 31 - shift, rounding),
///                      signedBits: bits)                                          (Int64 -> bits)
///
/// `multiplier * 2^(shift - 31)` is the real ADC gain in codes per (input code x weight code),
/// the same convention as FixedPoint's `QuantizedMultiplier`.
public struct TileADC: Sendable, Equatable, Hashable {
    public var rowStart: Int
    public var rowCount: Int
    /// `0...Int32.max` (a gain is non-negative).
    public var multiplier: Int32
    /// `-31...30`, i.e. a right shift `31 - shift` in `1...62`.
    public var shift: Int32
    public var rounding: RoundingRule
    /// ADC resolution, `2...16` (14 on the paper's chip).
    public var bits: Int

    public init(rowStart: Int, rowCount: Int, multiplier: Int32, shift: Int32, rounding: RoundingRule, bits: Int) {
        self.rowStart = rowStart; self.rowCount = rowCount; self.multiplier = multiplier
        self.shift = shift; self.rounding = rounding; self.bits = bits
    }

    /// A tile with the gain of a FixedPoint `QuantizedMultiplier`.
    public init(rowStart: Int, rowCount: Int, gain: QuantizedMultiplier, rounding: RoundingRule, bits: Int) {
        self.init(rowStart: rowStart, rowCount: rowCount, multiplier: gain.multiplier, shift: gain.shift,
                  rounding: rounding, bits: bits)
    }

    /// The gain as a FixedPoint `QuantizedMultiplier`.
    public var gain: QuantizedMultiplier { QuantizedMultiplier(multiplier: multiplier, shift: shift) }

    /// The real gain `multiplier * 2^(shift - 31)`.
    public var realGain: Double {
        Double(multiplier) * Double(sign: .plus, exponent: Int(shift) - 31, significand: 1.0)
    }
}

/// A crossbar layer: a 2-D convolution (a linear layer is a 1x1 convolution on a 1x1 map)
/// computed as row tiles of differential RRAM pairs plus the digital sum of the tiles' ADC codes.
///
/// Input: a `.code` tensor (DAC codes) of shape `(inChannels, H, W)`. Output: a `.sum` tensor of
/// shape `(outChannels, OH, OW)`, `OH = (H + 2 padH - kernelH) / strideH + 1` (floor), same for W.
/// Padding is zero padding: a padded position contributes input code 0.
public struct CrossbarParams: Sendable, Equatable, Hashable {
    public var inChannels: Int, outChannels: Int
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var padH: Int, padW: Int
    /// Weight code width, `2...8`; codes lie in `-2^(weightBits-1)...2^(weightBits-1) - 1`.
    public var weightBits: Int
    /// Effective weight codes (pruned pairs included, usually small), laid out `[out][fanIn]`
    /// with fan-in index `r = (c * kernelH + y) * kernelW + x`. Count `outChannels * fanIn`.
    public var weights: [Int8]
    /// One weight LSB in microsiemens (recorded for the chip mapping; unused by integer math).
    public var weightLSBMicroSiemens: Double
    /// Row tiles in fan-in order, partitioning `0..<fanIn`.
    public var tiles: [TileADC]

    public init(inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int,
                strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0,
                weightBits: Int, weights: [Int8], weightLSBMicroSiemens: Double = 0, tiles: [TileADC]) {
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelH = kernelH; self.kernelW = kernelW; self.strideH = strideH; self.strideW = strideW
        self.padH = padH; self.padW = padW; self.weightBits = weightBits; self.weights = weights
        self.weightLSBMicroSiemens = weightLSBMicroSiemens; self.tiles = tiles
    }

    /// Rows of the crossbar: `inChannels * kernelH * kernelW`.
    @inlinable public var fanIn: Int { inChannels * kernelH * kernelW }

    /// Output shape for an input of shape `s` (unchecked; `validate()` checks it).
    public func outputShape(for s: TensorShape) -> TensorShape {
        TensorShape(c: outChannels, h: (s.h + 2 * padH - kernelH) / strideH + 1,
                    w: (s.w + 2 * padW - kernelW) / strideW + 1)
    }

    /// Splits `0..<fanIn` into consecutive tiles of at most `arrayRows` rows (the last may be
    /// shorter), all with the same ADC configuration.
    public static func uniformTiles(fanIn: Int, arrayRows: Int, multiplier: Int32, shift: Int32,
                                    rounding: RoundingRule, bits: Int) -> [TileADC] {
        var tiles: [TileADC] = []
        var start = 0
        while start < fanIn {
            let n = min(arrayRows, fanIn - start)
            tiles.append(TileADC(rowStart: start, rowCount: n, multiplier: multiplier, shift: shift,
                                 rounding: rounding, bits: bits))
            start += n
        }
        return tiles
    }
}

/// A recurrent layer over the width axis (DATAPATH.md section 15): two crossbars (the input
/// matrix `W_ih` and the recurrent matrix `W_hh`, each with its own row tiles and ADCs), a
/// digital combiner with two multipliers and one rounding shift to the hidden codes, and a fused
/// average + requantization to the output codes. Input: `.code` `(I, 1, T)` (`x_t = in[:, 0, t]`);
/// output: `.code` `(Hd, 1, 1)` with `output.outBits` bits.
///
///     s_x[t] = crossbar(input, x_t)            s_h[t] = crossbar(recurrent, q[t-1])   (q[-1] = 0)
///     z[t]   = s_x[t] * inputMultiplier + s_h[t] * recurrentMultiplier       (Int64, |z| < 2^31)
///     q[t]   = clamp(roundingShiftRight(z[t], stateShift, hiddenRounding), 0, 2^hiddenBits - 1)  (t < T-1)
///     A      = (sum_{t < T-1} q[t]) * 2^stateShift + max(z[T-1], 0)         (Int64)
///     out    = clamp(roundingShiftRight(A * output.multiplier[o] + output.offset[o], output.shift[o], output.rounding), 0, 2^outBits - 1)
public struct RNNParams: Sendable, Equatable, Hashable {
    /// `W_ih`: a 1x1 crossbar, `inChannels = I`, `outChannels = Hd`, on the step's input codes.
    public var input: CrossbarParams
    /// `W_hh`: a 1x1 crossbar, `inChannels = outChannels = Hd`, on the previous hidden codes.
    public var recurrent: CrossbarParams
    /// Multiplier of the input crossbar's digital sum in the combiner (Int32, any sign).
    public var inputMultiplier: Int32
    /// Multiplier of the recurrent crossbar's digital sum in the combiner (Int32, any sign).
    public var recurrentMultiplier: Int32
    /// Right shift from the combined accumulator to hidden codes, `0...62`.
    public var stateShift: Int32
    /// Hidden code width for steps `t < T-1`, `1...8`.
    public var hiddenBits: Int
    public var hiddenRounding: RoundingRule
    /// Per hidden channel (`Hd` channels): the fused average and output quantizer, applied to `A`.
    public var output: AffineQuantParams

    public init(input: CrossbarParams, recurrent: CrossbarParams, inputMultiplier: Int32, recurrentMultiplier: Int32,
                stateShift: Int32, hiddenBits: Int, hiddenRounding: RoundingRule, output: AffineQuantParams) {
        self.input = input; self.recurrent = recurrent; self.inputMultiplier = inputMultiplier
        self.recurrentMultiplier = recurrentMultiplier; self.stateShift = stateShift; self.hiddenBits = hiddenBits
        self.hiddenRounding = hiddenRounding; self.output = output
    }

    /// Hidden size `Hd`.
    @inlinable public var hiddenSize: Int { input.outChannels }
    /// Input features per step `I`.
    @inlinable public var inputSize: Int { input.inChannels }

    /// Per-step sub-points of a trace (`Trace.tileADC[node]` of an rnn node), for `steps` steps:
    /// step `t` holds `input.tiles.count` input-tile ADC codes, then `recurrent.tiles.count`
    /// recurrent-tile ADC codes, then the hidden values (codes `q[t]` for `t < T-1`, the combined
    /// accumulator `z[T-1]` for the last step), each of `Hd` values.
    @inlinable public var subpointsPerStep: Int { input.tiles.count + recurrent.tiles.count + 1 }
}

/// Residual addition of two branches with different scales (DATAPATH.md section 16): both
/// inputs of one shape `(C,H,W)`, any element kind; one per-channel requantization of the
/// weighted sum to unsigned codes (both branches' folded batch norms, the addition, the ReLU
/// and the quantizer in one step):
///
///     out[c,y,x] = clamp(roundingShiftRight(Int64(a) * first.multiplier[c] + Int64(b) * secondMultiplier[c]
///                                           + first.offset[c], first.shift[c], first.rounding), 0, 2^outBits - 1)
public struct AddParams: Sendable, Equatable, Hashable {
    /// Multiplier, shift, offset, output bits and rounding (per channel of the output); the
    /// multiplier applies to the first input.
    public var first: AffineQuantParams
    /// Multiplier of the second input, per channel (Int32, any sign).
    public var secondMultiplier: [Int32]

    public init(first: AffineQuantParams, secondMultiplier: [Int32]) {
        self.first = first; self.secondMultiplier = secondMultiplier
    }
}

/// Channel concatenation of two or more tensors of one height and width (a U-Net skip), with
/// every input requantized to one output scale (DATAPATH.md section 17): the inputs' channels
/// in input order form the channels of the output, and output channel `c` is the affine
/// quantizer `quant` (channel `c`'s multiplier, shift and offset) of its input value.
public struct ConcatParams: Sendable, Equatable, Hashable {
    /// One entry per output channel (the sum of the inputs' channels).
    public var quant: AffineQuantParams
    public init(quant: AffineQuantParams) { self.quant = quant }
}

/// Bilinear upsampling by integer factors with aligned corners (PyTorch `nn.Upsample(mode:
/// 'bilinear', align_corners=True)`; DATAPATH.md section 18). Output `(C, H*factorH, W*factorW)`.
/// The output tensor's kind selects the integer form: `.sum` holds the exact numerators (the
/// value times `Dy*Dx`, no rounding); `.code` with the input's bits holds the value rounded
/// by `rounding` (`roundingDivide`).
public struct UpsampleParams: Sendable, Equatable, Hashable {
    /// `1...maxFactor`.
    public var factorH: Int, factorW: Int
    public var rounding: RoundingRule
    public static let maxFactor = 16

    public init(factorH: Int, factorW: Int, rounding: RoundingRule) {
        self.factorH = factorH; self.factorW = factorW; self.rounding = rounding
    }

    /// Output shape for an input of shape `s`.
    public func outputShape(for s: TensorShape) -> TensorShape { TensorShape(c: s.c, h: s.h * factorH, w: s.w * factorW) }

    /// The denominators of one axis: `D = out - 1` (1 when `out == 1`); output position `o`
    /// reads source `i = floor(o (in-1) / D)` and `i + 1` with weights `D - f` and `f`,
    /// `f = o (in-1) mod D` (`f == 0` at `i = in - 1`, so the second source is never read there).
    @inlinable public static func axisDenominator(output m: Int) -> Int { Swift.max(m - 1, 1) }
}

/// Global average pooling (DATAPATH.md section 19): `(C,H,W) -> (C,1,1)`, the sum over the
/// map (Int64) divided by `H*W` with `roundingDivide` and `rounding`. Any element kind; the
/// output has the input's kind and bits (an average lies within the input's range).
/// Global average pooling (DATAPATH.md section 19). The output tensor's kind selects the form:
/// the input's kind and bits hold the mean rounded by `rounding` (`roundingDivide` of the sum by
/// `H*W`); sums read from codes hold the exact per-channel sums (no rounding; the next
/// quantizer divides).
public struct GlobalAvgPoolParams: Sendable, Equatable, Hashable {
    public var rounding: RoundingRule
    public init(rounding: RoundingRule) { self.rounding = rounding }
}

/// Stable op codes (the model file stores these).
public enum OpKind: UInt8, Sendable, Equatable, Hashable, CaseIterable {
    case inputQuant = 1
    case maxPool = 2
    case crossbar = 3
    case activation = 4
    case flatten = 5
    case add = 6
    case concat = 7
    case upsampleBilinear = 8
    case rnn = 9
    case globalAvgPool = 10

    /// The op's name in golden point names, `edgecli inspect` and reports.
    public var name: String {
        switch self {
        case .inputQuant: return "inputQuant"
        case .maxPool: return "maxPool"
        case .crossbar: return "crossbar"
        case .activation: return "activation"
        case .flatten: return "flatten"
        case .add: return "add"
        case .concat: return "concat"
        case .upsampleBilinear: return "upsampleBilinear"
        case .rnn: return "rnn"
        case .globalAvgPool: return "globalAvgPool"
        }
    }

    /// The ops of layer graphs (residual networks, U-Nets): `add`, `concat`, `upsampleBilinear`,
    /// `globalAvgPool` (model format 1.2).
    public var isGraphOp: Bool {
        switch self {
        case .add, .concat, .upsampleBilinear, .globalAvgPool: return true
        default: return false
        }
    }

    /// How many input tensors a node of this kind reads: exactly `lowerBound` when the range
    /// has one element (`add`: 2, the others 1); `concat` reads 2 up to `Program.maxNodeInputs`.
    public var inputCounts: ClosedRange<Int> {
        switch self {
        case .add: return 2...2
        case .concat: return 2...Program.maxNodeInputs
        default: return 1...1
        }
    }
}

/// An operation.
public enum Op: Sendable, Equatable, Hashable {
    /// Pixels (`.code`, 8 bits) -> DAC codes (`.code`, `outBits`). Same shape.
    case inputQuant(AffineQuantParams)
    /// Max over windows, any element kind.
    case maxPool(MaxPoolParams)
    /// DAC codes -> digital sums (`.sum`): row tiles, ADCs, digital sum of tiles.
    case crossbar(CrossbarParams)
    /// Sums (or codes) -> activation codes (`.code`, `outBits`): folded batch norm, ReLU, quantizer.
    case activation(AffineQuantParams)
    /// `(C, H, W)` -> `(C*H*W, 1, 1)` in (C, H, W) order; same kind and bits.
    case flatten
    /// Two tensors of one shape -> codes: residual addition with one requantization.
    case add(AddParams)
    /// Two or more tensors of one height and width -> codes, channels concatenated and requantized.
    case concat(ConcatParams)
    /// Bilinear upsampling by integer factors, aligned corners; exact (`.sum`) or rounded (`.code`).
    case upsampleBilinear(UpsampleParams)
    /// Codes `(I, 1, T)` -> codes `(Hd, 1, 1)`: a recurrent layer over `T` steps (two crossbars).
    case rnn(RNNParams)
    /// `(C, H, W)` -> `(C, 1, 1)`: the rounded mean over the map; same kind and bits.
    case globalAvgPool(GlobalAvgPoolParams)

    public var kind: OpKind {
        switch self {
        case .inputQuant: return .inputQuant
        case .maxPool: return .maxPool
        case .crossbar: return .crossbar
        case .activation: return .activation
        case .flatten: return .flatten
        case .add: return .add
        case .concat: return .concat
        case .upsampleBilinear: return .upsampleBilinear
        case .rnn: return .rnn
        case .globalAvgPool: return .globalAvgPool
        }
    }

    /// The weight matrices this op puts on crossbar arrays, in order: one for `crossbar`, two
    /// for `rnn` (input, then recurrent), none otherwise.
    public var crossbarMatrices: [CrossbarParams] {
        switch self {
        case .crossbar(let c): return [c]
        case .rnn(let r): return [r.input, r.recurrent]
        default: return []
        }
    }

    /// The per-channel affine requantization of the op's output, if it has one (`inputQuant`,
    /// `activation`, `add`'s first input and shared shift/offset, `concat`).
    public var outputQuantizer: AffineQuantParams? {
        switch self {
        case .inputQuant(let p), .activation(let p): return p
        case .add(let p): return p.first
        case .concat(let p): return p.quant
        default: return nil
        }
    }
}

/// A node: an op applied to explicit input tensors, producing one output tensor.
public struct Node: Sendable, Equatable, Hashable {
    public var op: Op
    public var inputs: [Int]
    public var output: Int
    public init(_ op: Op, inputs: [Int], output: Int) { self.op = op; self.inputs = inputs; self.output = output }
}

/// A frozen integer program: a directed acyclic graph of nodes. Nodes run in array order (the
/// list is a topological order); each tensor other than `input` is produced by exactly one
/// node, before any node reads it; a tensor may be read by any number of nodes (a residual or
/// U-Net skip). A chain is the special case where each node reads its predecessor's output.
public struct Program: Sendable, Equatable, Hashable {
    public var tensors: [TensorDesc]
    public var nodes: [Node]
    /// Index of the input tensor (u8 pixels: `.code`, 8 bits).
    public var input: Int
    /// Index of the output tensor: the logits, `(K, H, W)`: `K` class logits per pixel (a
    /// classifier has one pixel); the prediction is the argmax over the channels of each pixel
    /// (DATAPATH.md section 9).
    public var output: Int
    /// Rows of one physical array (512 on the paper's chip): the maximum rows of a tile.
    public var arrayRows: Int

    public init(tensors: [TensorDesc], nodes: [Node], input: Int, output: Int, arrayRows: Int = 512) {
        self.tensors = tensors; self.nodes = nodes; self.input = input; self.output = output
        self.arrayRows = arrayRows
    }

    /// Every weight matrix mapped to crossbar arrays ("crossbar layers"), in node order: a
    /// `crossbar` node gives one (`part` 0), an `rnn` node two (`part` 0 = input `W_ih`,
    /// 1 = recurrent `W_hh`). Masks, conductances, placement layers and mask-flip counts are
    /// indexed by position in this list.
    public var crossbarLayers: [(node: Int, part: Int, params: CrossbarParams)] {
        var out: [(node: Int, part: Int, params: CrossbarParams)] = []
        for (k, n) in nodes.enumerated() {
            for (j, c) in n.op.crossbarMatrices.enumerated() { out.append((k, j, c)) }
        }
        return out
    }
}

/// Why a program is invalid. `node` is the index of the offending node (nil: program-level).
public struct ProgramError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Dangling or duplicate tensor indices, wrong input count, bad order, bad input/output.
        case graph
        /// A tensor's shape or kind does not match what the op produces or needs.
        case shapeMismatch
        /// A parameter outside its allowed range (bits, shifts, kernel sizes, per-channel counts).
        case parameterOutOfRange
        /// `weights.count != outChannels * fanIn`, or a weight code outside `weightBits`.
        case weightCount
        /// A worst-case accumulator bound exceeds its width.
        case accumulatorOverflow
        /// A negative multiplier on an affine quantizer adjacent to a max-pool.
        case nonMonotone
    }
    public var node: Int?
    public var kind: Kind
    public var message: String

    public init(node: Int?, kind: Kind, _ message: String) { self.node = node; self.kind = kind; self.message = message }
    public var description: String {
        "\(node.map { "node \($0)" } ?? "program"): \(kind): \(message)"
    }
}

extension Program {
    /// Whether a global-average-pool node keeps the exact sums (codes in, sums out) instead of
    /// the rounded mean (DATAPATH.md section 19).
    public func globalPoolIsExact(_ node: Node) -> Bool {
        tensors[node.inputs[0]].kind == .code && tensors[node.output].kind == .sum
    }
}
