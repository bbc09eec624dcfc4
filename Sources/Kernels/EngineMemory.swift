// The run's memory plan: the tensors a run materialises share their arenas by lifetime. A
// tensor occupies its slot from the step that writes it (the input: from the load, before
// step 0) to the last step that reads it (the output: to the end of the run), both included,
// so a step never writes over what it reads. Each arena is packed first-fit in the order the
// tensors are born. Tracing keeps one slot per tensor (every tensor is reported after the run).

extension CompiledProgram.Step {
    /// The (arena, offset) places the step reads and writes; `code`: the Int16 code arena,
    /// else the Int32 sum arena. An rnn step's scratch is read and written.
    var operands: (reads: [(code: Bool, offset: Int)], writes: [(code: Bool, offset: Int)]) {
        switch self {
        case let .affine(src, srcCode, dst, _, _, _): return ([(srcCode, src)], [(true, dst)])
        case let .maxPool(src, dst, code, _, _): return ([(code, src)], [(code, dst)])
        case let .maxPoolAffine(src, dst, _, _): return ([(false, src)], [(true, dst)])
        case let .flatten(src, dst, code, _): return ([(code, src)], [(code, dst)])
        case let .crossbar(src, dst, _, _): return ([(true, src)], [(false, dst)])
        case let .crossbarActivation(src, dst, _): return ([(true, src)], [(true, dst)])
        case let .rnn(src, dst, _, q, s, _): return ([(true, src), (true, q), (false, s)], [(true, dst), (true, q), (false, s)])
        case let .add(a, aCode, b, bCode, dst, _, _, _): return ([(aCode, a), (bCode, b)], [(true, dst)])
        case let .concat(parts, dst, _, _): return (parts.map { ($0.code, $0.src) }, [(true, dst)])
        case let .upsample(src, srcCode, dst, dstCode, _): return ([(srcCode, src)], [(dstCode, dst)])
        case let .globalAvgPool(src, srcCode, dst, dstCode, _, _): return ([(srcCode, src)], [(dstCode, dst)])
        }
    }

    /// The same step with every offset `o` of arena `code` replaced by `f(code, o)`.
    func remapped(_ f: (Bool, Int) -> Int) -> Self {
        switch self {
        case let .affine(src, srcCode, dst, pixels, channels, plan):
            return .affine(src: f(srcCode, src), srcCode: srcCode, dst: f(true, dst), pixels: pixels, channels: channels, plan: plan)
        case let .maxPool(src, dst, code, shape, params): return .maxPool(src: f(code, src), dst: f(code, dst), code: code, shape: shape, params: params)
        case let .maxPoolAffine(src, dst, shape, plan): return .maxPoolAffine(src: f(false, src), dst: f(true, dst), shape: shape, plan: plan)
        case let .flatten(src, dst, code, shape): return .flatten(src: f(code, src), dst: f(code, dst), code: code, shape: shape)
        case let .crossbar(src, dst, kernel, node): return .crossbar(src: f(true, src), dst: f(false, dst), kernel: kernel, node: node)
        case let .crossbarActivation(src, dst, kernel): return .crossbarActivation(src: f(true, src), dst: f(true, dst), kernel: kernel)
        case let .rnn(src, dst, plan, q, s, node): return .rnn(src: f(true, src), dst: f(true, dst), plan: plan, q: f(true, q), s: f(false, s), node: node)
        case let .add(a, aCode, b, bCode, dst, pixels, channels, plan):
            return .add(a: f(aCode, a), aCode: aCode, b: f(bCode, b), bCode: bCode, dst: f(true, dst), pixels: pixels, channels: channels, plan: plan)
        case let .concat(parts, dst, pixels, channels):
            return .concat(parts: parts.map { var p = $0; p.src = f(p.code, p.src); return p }, dst: f(true, dst), pixels: pixels, channels: channels)
        case let .upsample(src, srcCode, dst, dstCode, plan):
            return .upsample(src: f(srcCode, src), srcCode: srcCode, dst: f(dstCode, dst), dstCode: dstCode, plan: plan)
        case let .globalAvgPool(src, srcCode, dst, dstCode, shape, rounding):
            return .globalAvgPool(src: f(srcCode, src), srcCode: srcCode, dst: f(dstCode, dst), dstCode: dstCode, shape: shape, rounding: rounding)
        }
    }
}

/// A place in the one-slot-per-tensor layout: its arena, offset and size (elements).
struct MemorySlot: Hashable {
    var code: Bool, offset: Int, size: Int
}

/// The run's packed layout of `slots` (the one-slot-per-tensor places) for `steps`.
struct MemoryPlan {
    /// New offset of each slot the steps (or the input load / output read) touch.
    var offsets: [MemorySlot: Int] = [:]
    /// Each such slot's first and last step (the input's first is -1, the output's last the
    /// step count).
    var lifetimes: [MemorySlot: (first: Int, last: Int)] = [:]
    var codeCount = 0, sumCount = 0

    /// `input` is written before step 0, `output` read after the last step.
    init(steps: [CompiledProgram.Step], slots: [MemorySlot], input: MemorySlot, output: MemorySlot) {
        var bySlot: [Int: MemorySlot] = [:]   // key: offset * 2 + code
        for s in slots { bySlot[s.offset &* 2 &+ (s.code ? 1 : 0)] = s }
        var first: [MemorySlot: Int] = [input: -1], last: [MemorySlot: Int] = [input: -1]
        func touch(_ code: Bool, _ offset: Int, _ t: Int) {
            guard let s = bySlot[offset &* 2 &+ (code ? 1 : 0)] else { preconditionFailure("a step uses an offset that starts no tensor") }
            if first[s] == nil { first[s] = t }
            last[s] = Swift.max(last[s] ?? t, t)
        }
        for (t, st) in steps.enumerated() {
            let (r, w) = st.operands
            for x in w { touch(x.code, x.offset, t) }
            for x in r { touch(x.code, x.offset, t) }
        }
        touch(output.code, output.offset, steps.count)
        for (s, f) in first { lifetimes[s] = (f, last[s]!) }
        for code in [true, false] {
            let inArena = first.keys.filter { $0.code == code }.sorted { $0.offset < $1.offset }
            let packed = LifetimePacking.firstFit(sizes: inArena.map(\.size), lifetimes: inArena.map { (first[$0]!, last[$0]!) })
            for (s, at) in zip(inArena, packed.offsets) { offsets[s] = at }
            if code { codeCount = packed.count } else { sumCount = packed.count }
        }
    }

}

/// Packs buffers that live over step ranges into one arena: two buffers share bytes only if
/// their lifetimes (first and last step, both included) do not overlap. First-fit in order of
/// birth (ties: the larger first, then the lower index), each at the lowest offset that clears
/// every placed buffer alive at the same time.
public enum LifetimePacking {
    public static func firstFit(sizes: [Int], lifetimes: [(first: Int, last: Int)]) -> (offsets: [Int], count: Int) {
        precondition(sizes.count == lifetimes.count, "one lifetime per buffer")
        let order = sizes.indices.sorted { (lifetimes[$0].first, -sizes[$0], $0) < (lifetimes[$1].first, -sizes[$1], $1) }
        var offsets = [Int](repeating: 0, count: sizes.count), placed: [Int] = [], count = 0
        for i in order {
            let (b, e) = lifetimes[i]
            let busy = placed.filter { lifetimes[$0].first <= e && b <= lifetimes[$0].last }
                .map { (lo: offsets[$0], hi: offsets[$0] + sizes[$0]) }.sorted { $0.lo < $1.lo }
            var at = 0
            for r in busy where r.lo < at + sizes[i] { at = Swift.max(at, r.hi) }
            offsets[i] = at
            placed.append(i)
            count = Swift.max(count, at + sizes[i])
        }
        return (offsets, count)
    }
}
