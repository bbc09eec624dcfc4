// The graph section: the Kernels program's tensors and nodes; per-channel parameters and
import FixedPoint
import Kernels
// weights are references into the tensor directory, each used at most once.

enum GraphCodec {
    /// `used`: directory tensors already claimed (by the weight-generator section); `budget`
    /// bounds what decoding holds in memory. A crossbar's weights index may be 0xFFFFFFFF (1.1:
    /// generated weights, resolved later); its weights are then empty here.
    /// `minor`: the file's format minor; the layer-graph ops (add, concat, upsampleBilinear,
    /// globalAvgPool) need 1.2.
    static func decode(_ b: [UInt8], _ s: SectionEntry, _ entries: [TensorEntry], used claimed: [Bool]? = nil,
                       budget: DecodeBudget? = nil, minor: UInt16 = FormatConstants.minor) throws -> (Program, [PackedMask?], [ConductanceCodes?]) {
        var r = ByteReader(b, from: s.offset, to: s.offset + s.length, section: "graph")
        func fail(_ k: ModelFileError.Kind, _ m: String, _ at: Int) -> ModelFileError { r.error(k, m, at: at) }
        let arrayRows = try r.count("arrayRows", limit: FormatLimits.maxDim)
        let inputAt = r.pos
        let input = Int(try r.u32("input")), output = Int(try r.u32("output"))
        let nt = try r.count("tensor count", limit: min(FormatLimits.maxItems, r.remaining / 16))
        let nn = try r.count("node count", limit: min(FormatLimits.maxItems, r.remaining / 8))
        guard input < nt, output < nt else { throw fail(.badGraph, "input \(input) / output \(output) outside \(nt) tensors", inputAt) }
        guard nt <= r.remaining / 16 else { throw fail(.countTooLarge, "\(nt) tensors do not fit", r.pos) }
        try budget?.charge(nt * MemoryLayout<TensorDesc>.stride + DecodeBudget.arrayHeader, "\(nt) graph tensors", section: "graph", offset: r.pos)
        // nodes: the record, its inputs array (header + one word per input, at least one)
        try budget?.charge(nn * (MemoryLayout<Node>.stride + DecodeBudget.arrayHeader + 8), "\(nn) nodes", section: "graph", offset: r.pos)
        var tensors: [TensorDesc] = []
        tensors.reserveCapacity(nt)
        for i in 0..<nt {
            let at = r.pos
            var dims = [0, 0, 0]
            var count = 1
            for k in 0..<3 {
                let v = Int(try r.u32("tensor \(i) dim"))
                guard v >= 1, v <= FormatLimits.maxDim else { throw fail(.countTooLarge, "graph tensor \(i): dim \(v) outside 1...\(FormatLimits.maxDim)", at) }
                dims[k] = v
                count = count.multipliedReportingOverflow(by: v).partialValue   // <= 2^72 cannot happen: checked below per step
                guard count <= FormatLimits.maxTensorElements else {
                    throw fail(.countTooLarge, "graph tensor \(i) has more than \(FormatLimits.maxTensorElements) elements", at)
                }
            }
            let ka = r.pos
            let rawKind = try r.u8("element kind")
            guard let kind = ElementKind(rawValue: rawKind) else { throw fail(.badEnum, "graph tensor \(i): element kind \(rawKind)", ka) }
            let bits = Int(try r.u8("bits"))
            try r.zero16("reserved")
            tensors.append(TensorDesc(shape: TensorShape(c: dims[0], h: dims[1], w: dims[2]), kind: kind, bits: bits))
        }

        var used = claimed ?? [Bool](repeating: false, count: entries.count)
        func take(_ what: String, node: Int, _ dtype: TensorDType, _ dims: [Int], optional: Bool = false) throws -> TensorEntry? {
            let at = r.pos
            let idx = try r.u32(what)
            if optional, idx == UInt32.max { return nil }
            guard Int(idx) < entries.count else { throw fail(.badGraph, "node \(node): \(what) tensor \(idx) of \(entries.count)", at) }
            let i = Int(idx)
            guard !used[i] else { throw fail(.badGraph, "node \(node): tensor '\(entries[i].name)' referenced twice", at) }
            used[i] = true
            let e = entries[i]
            guard e.dtype == dtype, e.dims == dims else {
                throw fail(.tensorShapeMismatch, "node \(node): \(what) tensor '\(e.name)' is \(e.dtype.name)\(e.dims), the graph needs \(dtype.name)\(dims)", at)
            }
            // decoded once, straight into its final array: i8/u8/bits 1:1, i32 and i64 element for element
            try budget?.charge(e.byteLength + DecodeBudget.arrayHeader, "tensor '\(e.name)'", section: "graph", offset: at)
            return e
        }
        func rounding(_ node: Int) throws -> RoundingRule {
            let at = r.pos
            let v = try r.u8("rounding")
            guard let rr = RoundingRule(rawValue: v) else { throw fail(.badEnum, "node \(node): rounding rule \(v)", at) }
            return rr
        }

        var nodes: [Node] = []
        nodes.reserveCapacity(nn)
        var masks: [PackedMask?] = [], conductances: [ConductanceCodes?] = []
        func affinePayload(_ i: Int) throws -> AffineQuantParams {
            let ba = r.pos
            let outBits = Int(try r.u8("outBits"))
            let rr = try rounding(i)
            try r.zero16("reserved")
            let ch = try r.count("channels", limit: FormatLimits.maxDim)
            guard ch >= 1 else { throw fail(.badGraph, "node \(i): 0 channels", ba) }
            let mu = try take("multiplier", node: i, .i32, [ch])!
            let sh = try take("shift", node: i, .i32, [ch])!
            let of = try take("offset", node: i, .i64, [ch])!
            let a = AffineQuantParams(multiplier: TensorCodec.int32s(b, mu), shift: TensorCodec.int32s(b, sh),
                                      offset: TensorCodec.int64s(b, of), outBits: outBits, rounding: rr)
            return a
        }
        func crossbarPayload(_ i: Int, _ at: Int, _ what: String) throws -> CrossbarParams {
            var g = [Int](repeating: 0, count: 8)
            for k in 0..<8 {
                let ga = r.pos
                g[k] = Int(try r.u32("crossbar geometry"))
                let lo = k >= 6 ? 0 : 1
                guard g[k] >= lo, g[k] <= FormatLimits.maxDim else { throw fail(.countTooLarge, "node \(i): crossbar geometry field \(k) = \(g[k])", ga) }
            }
            let (f1, o1) = g[0].multipliedReportingOverflow(by: g[2])
            let (fanIn, o2) = f1.multipliedReportingOverflow(by: g[3])
            guard !o1, !o2, fanIn <= FormatLimits.maxDim else { throw fail(.sizeOverflow, "node \(i): fan-in overflows", at) }
            let weightBits = Int(try r.u8("weightBits"))
            let ra = r.pos
            guard try r.u8("reserved") == 0 else { throw fail(.badGraph, "node \(i): reserved byte must be 0", ra) }
            try r.zero16("reserved")
            let lsb = try r.f64("weightLSB")
            let dims = [g[1], fanIn]
            let we = try take(what + "weights", node: i, .i8, dims, optional: true)   // nil: generated (1.1)
            let me = try take(what + "mask", node: i, .bits, dims, optional: true)
            // Conductance: u8 [planes, out, fanIn]; planes read from the entry, checked 1...2.
            let ca = r.pos
            let craw = try r.u32("conductance")
            var cond: ConductanceCodes? = nil
            if craw != UInt32.max {
                guard Int(craw) < entries.count else { throw fail(.badGraph, "node \(i): conductance tensor \(craw) of \(entries.count)", ca) }
                let planes = entries[Int(craw)].dims.first ?? 0
                guard (1...2).contains(planes) else { throw fail(.tensorShapeMismatch, "node \(i): conductance planes \(planes)", ca) }
                r.pos = ca
                let ce = try take("conductance", node: i, .u8, [planes] + dims)!
                cond = ConductanceCodes(planes: planes, codes: TensorCodec.uint8s(b, ce))
            }
            var mask: PackedMask? = nil
            if let me {
                let bytes = TensorCodec.uint8s(b, me)
                let count = g[1] * fanIn
                if count % 8 != 0, let last = bytes.last, last >> UInt8(count % 8) != 0 {
                    throw fail(.badTensor, "node \(i): mask '\(me.name)' has bits set past its \(count) elements", me.offset + me.byteLength - 1)
                }
                mask = PackedMask(count: count, bytes: bytes)
            }
            let nTiles = try r.count("tile count", limit: min(FormatLimits.maxItems, r.remaining / 20))
            try budget?.charge(nTiles * MemoryLayout<TileADC>.stride + DecodeBudget.arrayHeader, "\(nTiles) tiles", section: "graph", offset: r.pos)
            var tiles: [TileADC] = []
            tiles.reserveCapacity(nTiles)
            for _ in 0..<nTiles {
                let ta = r.pos
                let start = Int(try r.u32("rowStart")), count = Int(try r.u32("rowCount"))
                guard start <= fanIn, count <= fanIn - start else { throw fail(.badGraph, "node \(i): tile rows \(start)+\(count) outside fan-in \(fanIn)", ta) }
                let mul = try r.i32("ADC multiplier"), shift = try r.i32("ADC shift")
                let rr = try rounding(i)
                let bits = Int(try r.u8("ADC bits"))
                try r.zero16("reserved")
                tiles.append(TileADC(rowStart: start, rowCount: count, multiplier: mul, shift: shift, rounding: rr, bits: bits))
            }
            let cp = CrossbarParams(inChannels: g[0], outChannels: g[1], kernelH: g[2], kernelW: g[3],
                                          strideH: g[4], strideW: g[5], padH: g[6], padW: g[7], weightBits: weightBits,
                                          weights: we.map { TensorCodec.int8s(b, $0) } ?? [], weightLSBMicroSiemens: lsb, tiles: tiles)
            masks.append(mask)
            conductances.append(cond)
            return cp
        }
        for i in 0..<nn {
            let at = r.pos
            let rawOp = try r.u8("op kind")
            guard let kind = OpKind(rawValue: rawOp) else { throw fail(.badEnum, "node \(i): op kind \(rawOp)", at) }
            guard minor >= FormatConstants.graphOpsMinor || !kind.isGraphOp else {
                throw fail(.badEnum, "node \(i): op \(kind.name) (\(rawOp)) needs format 1.\(FormatConstants.graphOpsMinor), the file is 1.\(minor)", at)
            }
            let nin = Int(try r.u8("input count"))
            guard nin <= FormatLimits.maxNodeInputs else { throw fail(.countTooLarge, "node \(i): \(nin) inputs", at + 1) }
            try r.zero16("reserved")
            let oa = r.pos
            let out = Int(try r.u32("output"))
            guard out < nt else { throw fail(.badGraph, "node \(i): output tensor \(out) of \(nt)", oa) }
            var inputs: [Int] = []
            for _ in 0..<nin {
                let ia = r.pos
                let x = Int(try r.u32("input"))
                guard x < nt else { throw fail(.badGraph, "node \(i): input tensor \(x) of \(nt)", ia) }
                inputs.append(x)
            }
            let op: Op
            switch kind {
            case .inputQuant, .activation:
                let a = try affinePayload(i)
                op = kind == .inputQuant ? .inputQuant(a) : .activation(a)
            case .maxPool:
                var v = [0, 0, 0, 0]
                for k in 0..<4 {
                    let pa = r.pos
                    v[k] = Int(try r.u32("pool"))
                    guard v[k] >= 1, v[k] <= FormatLimits.maxDim else { throw fail(.countTooLarge, "node \(i): pool parameter \(v[k])", pa) }
                }
                op = .maxPool(MaxPoolParams(kh: v[0], kw: v[1], sh: v[2], sw: v[3]))
            case .crossbar:
                op = .crossbar(try crossbarPayload(i, at, ""))
            case .rnn:
                // docs/FORMAT.md section 6: input matrix, recurrent matrix, combiner, output quantizer
                let input = try crossbarPayload(i, at, "input matrix ")
                let recurrent = try crossbarPayload(i, at, "recurrent matrix ")
                let mx = try r.i32("rnn input multiplier"), mh = try r.i32("rnn recurrent multiplier")
                let shift = try r.i32("rnn state shift")
                let hb = Int(try r.u8("rnn hidden bits"))
                let hr = try rounding(i)
                try r.zero16("reserved")
                op = .rnn(RNNParams(input: input, recurrent: recurrent, inputMultiplier: mx, recurrentMultiplier: mh,
                                    stateShift: shift, hiddenBits: hb, hiddenRounding: hr, output: try affinePayload(i)))
            case .flatten:
                op = .flatten
            case .add:
                // docs/FORMAT.md section 6: the affine payload (first input), then the second multiplier
                let a = try affinePayload(i)
                let m2 = try take("second multiplier", node: i, .i32, [a.multiplier.count])!
                op = .add(AddParams(first: a, secondMultiplier: TensorCodec.int32s(b, m2)))
            case .concat:
                op = .concat(ConcatParams(quant: try affinePayload(i)))
            case .upsampleBilinear:
                let fh = Int(try r.u8("upsample factorH")), fw = Int(try r.u8("upsample factorW"))
                let rr = try rounding(i)
                let ra = r.pos
                guard try r.u8("reserved") == 0 else { throw fail(.badGraph, "node \(i): reserved byte must be 0", ra) }
                op = .upsampleBilinear(UpsampleParams(factorH: fh, factorW: fw, rounding: rr))
            case .globalAvgPool:
                let rr = try rounding(i)
                let ra = r.pos
                guard try r.u8("reserved") == 0 else { throw fail(.badGraph, "node \(i): reserved byte must be 0", ra) }
                try r.zero16("reserved")
                op = .globalAvgPool(GlobalAvgPoolParams(rounding: rr))
            }
            nodes.append(Node(op, inputs: inputs, output: out))
        }
        if r.remaining != 0 { throw r.error(.badGraph, "\(r.remaining) unread bytes after the nodes") }
        return (Program(tensors: tensors, nodes: nodes, input: input, output: output, arrayRows: arrayRows), masks, conductances)
    }
}

/// Program-level validation: the Kernels validation once available, after the reader's own
/// structural checks (indices, counts, shapes of stored tensors) have passed.
func validateProgram(_ p: Program, _ graph: SectionEntry) throws {
    do { try p.validate() } catch {
        let at = error.node.map { "node \($0): " } ?? ""
        throw ModelFileError(.invalidProgram, section: "graph", offset: graph.offset, "\(at)\(error.kind): \(error.message)")
    }
}
