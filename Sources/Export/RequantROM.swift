// The requantization ROM: one 128-bit entry per input-quantizer channel, per ADC row tile and
// per activation channel, in node order. docs/EXPORT.md section 5 gives the fields.
import FixedPoint
import Kernels

public enum RequantROM {
    public static let wordBits = 128

    /// Entry kinds (bits 119..116).
    public enum EntryKind: Int, Sendable {
        case inputQuant = 1
        case activation = 2
        case adcTile = 3
        /// An rnn combiner: two entries per rnn node, `(inputMultiplier, stateShift, hiddenBits,
        /// hiddenRounding)` then `(recurrentMultiplier, stateShift, hiddenBits, hiddenRounding)`.
        case rnnCombine = 4
        /// An rnn output channel (the fused average + output quantizer on `A`), one per hidden unit.
        case rnnOutput = 5
        /// An add output channel: the first input's multiplier, the shift, offset, bits, rounding.
        case add = 6
        /// An add output channel's second multiplier (shift, offset, bits, rounding repeated).
        case addSecond = 7
        /// A concat output channel (an affine quantizer of the input value it comes from).
        case concat = 8
        /// An upsampling: multiplier = factorH, shift = factorW, offset = the divisor `Dy Dx`
        /// (`D = max(m - 1, 1)` per axis of output length m; 1 for an output of sums: exact),
        /// bits = output bits, rounding.
        case upsample = 9
        /// A global average pooling: offset = the divisor `H*W`, bits = output bits, rounding.
        case globalAvgPool = 10
    }

    /// Where a node's entries are: `first ..< first + count` (count 0 for nodes without parameters).
    public struct Span: Sendable, Equatable {
        public var node: Int
        public var first: Int
        public var count: Int
    }

    /// One entry's fields.
    public struct Entry: Sendable, Equatable {
        public var kind: EntryKind
        public var multiplier: Int32
        /// Affine: right shift 0...62. ADC tile: the TileADC shift -31...30 (right shift `31 - shift`).
        public var shift: Int32
        /// Affine offset; 0 for ADC tiles.
        public var offset: Int64
        /// Affine `outBits`, or ADC `bits`.
        public var bits: Int
        public var rounding: RoundingRule
    }

    /// Entries of every node in node order, and each node's span.
    public static func entries(_ p: Program) -> (entries: [Entry], spans: [Span]) {
        var out: [Entry] = []
        var spans: [Span] = []
        for (i, n) in p.nodes.enumerated() {
            let first = out.count
            switch n.op {
            case .inputQuant(let a), .activation(let a):
                let k: EntryKind = n.op.kind == .inputQuant ? .inputQuant : .activation
                for c in a.multiplier.indices {
                    out.append(Entry(kind: k, multiplier: a.multiplier[c], shift: a.shift[c], offset: a.offset[c],
                                     bits: a.outBits, rounding: a.rounding))
                }
            case .crossbar(let x):
                for t in x.tiles {
                    out.append(Entry(kind: .adcTile, multiplier: t.multiplier, shift: t.shift, offset: 0, bits: t.bits, rounding: t.rounding))
                }
            case .rnn(let r):
                // input-matrix tiles, recurrent-matrix tiles, the two combiner entries, the output channels
                for t in r.input.tiles + r.recurrent.tiles {
                    out.append(Entry(kind: .adcTile, multiplier: t.multiplier, shift: t.shift, offset: 0, bits: t.bits, rounding: t.rounding))
                }
                for m in [r.inputMultiplier, r.recurrentMultiplier] {
                    out.append(Entry(kind: .rnnCombine, multiplier: m, shift: r.stateShift, offset: 0, bits: r.hiddenBits, rounding: r.hiddenRounding))
                }
                let a = r.output
                for c in a.multiplier.indices {
                    out.append(Entry(kind: .rnnOutput, multiplier: a.multiplier[c], shift: a.shift[c], offset: a.offset[c],
                                     bits: a.outBits, rounding: a.rounding))
                }
            case .add(let a):
                let q = a.first
                for c in q.multiplier.indices {
                    out.append(Entry(kind: .add, multiplier: q.multiplier[c], shift: q.shift[c], offset: q.offset[c], bits: q.outBits, rounding: q.rounding))
                    out.append(Entry(kind: .addSecond, multiplier: a.secondMultiplier[c], shift: q.shift[c], offset: q.offset[c],
                                     bits: q.outBits, rounding: q.rounding))
                }
            case .concat(let a):
                let q = a.quant
                for c in q.multiplier.indices {
                    out.append(Entry(kind: .concat, multiplier: q.multiplier[c], shift: q.shift[c], offset: q.offset[c], bits: q.outBits, rounding: q.rounding))
                }
            case .upsampleBilinear(let u):
                let t = p.tensors[n.output]
                let den = t.kind == .sum ? 1 : UpsampleParams.axisDenominator(output: t.shape.h) * UpsampleParams.axisDenominator(output: t.shape.w)
                out.append(Entry(kind: .upsample, multiplier: Int32(u.factorH), shift: Int32(u.factorW), offset: Int64(den), bits: t.bits, rounding: u.rounding))
            case .globalAvgPool(let g):
                // the divisor; 1 for an exact (sum) output
                let s = p.tensors[n.inputs[0]].shape, t = p.tensors[n.output]
                out.append(Entry(kind: .globalAvgPool, multiplier: 0, shift: 0, offset: p.globalPoolIsExact(n) ? 1 : Int64(s.h * s.w), bits: t.bits, rounding: g.rounding))
            case .maxPool, .flatten:
                break
            }
            spans.append(Span(node: i, first: first, count: out.count - first))
        }
        return (out, spans)
    }

    /// The ROM image (depth = number of entries, at least 1: an empty ROM holds one zero word).
    public static func image(_ p: Program) -> MemoryImage {
        let (es, _) = entries(p)
        var img = MemoryImage(wordBits: wordBits, depth: max(1, es.count), comments: [
            "rram-edge export: requantization ROM, \(es.count) entries of 128 bits, node order",
            "[31:0] multiplier i32 | [39:32] shift i8 | [103:40] offset i64 | [111:104] bits u8 | [115:112] rounding | [119:116] kind (1 inputQuant, 2 activation, 3 ADC tile, 4 rnn combiner, 5 rnn output, 6 add, 7 add second multiplier, 8 concat, 9 upsample, 10 global average pool) | [127:120] 0",
        ])
        for (k, e) in es.enumerated() {
            img.put(word: k, bit: 0, width: 32, Int64(e.multiplier))
            img.put(word: k, bit: 32, width: 8, Int64(e.shift))
            img.put(word: k, bit: 40, width: 64, e.offset)
            img.put(word: k, bit: 104, width: 8, Int64(e.bits))
            img.put(word: k, bit: 112, width: 4, Int64(e.rounding.rawValue))
            img.put(word: k, bit: 116, width: 4, Int64(e.kind.rawValue))
        }
        return img
    }

    /// `node,op,first_entry,entries` for every node (CSV, header line first).
    public static func indexCSV(_ p: Program) -> [UInt8] {
        var s = "node,op,first_entry,entries\n"
        for sp in entries(p).spans {
            s += "\(sp.node),\(ExportNames.op(p.nodes[sp.node].op.kind)),\(sp.first),\(sp.count)\n"
        }
        return Array(s.utf8)
    }
}

/// Stable names used in every text output.
public enum ExportNames {
    public static func op(_ k: OpKind) -> String {
        switch k {
        case .inputQuant: return "input_quant"
        case .maxPool: return "max_pool"
        case .crossbar: return "crossbar"
        case .activation: return "activation"
        case .flatten: return "flatten"
        case .rnn: return "rnn"
        case .add: return "add"
        case .concat: return "concat"
        case .upsampleBilinear: return "upsample_bilinear"
        case .globalAvgPool: return "global_avg_pool"
        }
    }
    public static func rounding(_ r: RoundingRule) -> String {
        switch r {
        case .floor: return "floor"
        case .towardZero: return "toward_zero"
        case .halfUp: return "half_up"
        case .halfAwayFromZero: return "half_away_from_zero"
        case .halfToEven: return "half_to_even"
        }
    }
}
