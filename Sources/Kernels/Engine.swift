// The fast engine: runs a validated Program with the fast kernels, on preallocated per-thread
// workspaces (no allocation per inference), optionally recording every intermediate tensor.
//
// Physical layout: per workspace, code tensors live in an Int16 arena and sum tensors in an
// Int32 arena, all stored H, W, C (channels contiguous); traces and logits are reported in
// (C,H,W) order.

import FixedPoint

/// A validated program compiled for the fast kernels: packed weights, arena offsets.
/// Immutable after init; shared by all threads.
public final class CompiledProgram: @unchecked Sendable {
    @usableFromInline enum Step {
        /// `srcCode`: the input is a code tensor (Int16 arena), else a sum tensor (Int32 arena).
        case affine(src: Int, srcCode: Bool, dst: Int, pixels: Int, channels: Int, plan: AffinePlan)
        case maxPool(src: Int, dst: Int, code: Bool, shape: TensorShape, params: MaxPoolParams)
        /// A 2x2 / stride 2 max-pool of sums and the threshold-form activation reading it.
        case maxPoolAffine(src: Int, dst: Int, shape: TensorShape, plan: AffinePlan)
        case flatten(src: Int, dst: Int, code: Bool, shape: TensorShape)
        case crossbar(src: Int, dst: Int, kernel: any CrossbarSumsKernel, node: Int)
        /// A single-tile crossbar and the activation after it (`dst` is the activation output).
        case crossbarActivation(src: Int, dst: Int, kernel: any CrossbarActivationKernel)
        /// An rnn layer; `q` (code arena) and `s` (sum arena) are its scratch offsets.
        case rnn(src: Int, dst: Int, plan: RNNPlan, q: Int, s: Int, node: Int)
        /// A residual addition: inputs `a` and `b` (each in the code or the sum arena).
        case add(a: Int, aCode: Bool, b: Int, bCode: Bool, dst: Int, pixels: Int, channels: Int, plan: AddPlan)
        /// A concatenation: each part is one input's channels, requantized into the output
        /// (`channels` per pixel) from channel `first` on.
        case concat(parts: [ConcatPart], dst: Int, pixels: Int, channels: Int)
        case upsample(src: Int, srcCode: Bool, dst: Int, dstCode: Bool, plan: UpsamplePlan)
        case globalAvgPool(src: Int, srcCode: Bool, dst: Int, dstCode: Bool, shape: TensorShape, rounding: RoundingRule)
    }

    /// One input of a concatenation step.
    @usableFromInline struct ConcatPart: Sendable {
        @usableFromInline var src: Int, code: Bool, first: Int, channels: Int
        @usableFromInline var plan: AffinePlan
    }

    public let program: Program
    /// The kernel set whose builds of the crossbar loops run (IntDispatch.swift).
    public let kernelSet: IntKernelSet
    /// Worst-case value range of every tensor (from validate()).
    public let ranges: [ValueRange]
    /// Steps of `run` (with fusion) and of tracing (every node separately).
    @usableFromInline let steps: [Step]
    @usableFromInline let traceSteps: [Step]
    /// Number of crossbar + activation pairs fused in `steps`.
    public let fusedCount: Int
    /// Number of fused narrow layers whose output channels `steps` stores in level order
    /// (`levelOrder`); traces always use the program's order.
    public let permutedCount: Int
    /// Number of flatten steps not run (their linear reader takes HWC-ordered weight columns).
    public let elidedFlattenCount: Int
    /// Element offset of every tensor in its arena during a run (`isCode`: the Int16 code
    /// arena, else the Int32 sum arena), the arenas shared by lifetime (EngineMemory.swift);
    /// -1 for a tensor the run does not materialise (inside a fused step).
    public let offsets: [Int]
    public let isCode: [Bool]
    public let codeArenaCount: Int
    public let sumArenaCount: Int
    /// How the run's layout was made (lifetimes and packed offsets of the tracing slots).
    let memoryPlan: MemoryPlan
    /// The tracing layout: one slot per tensor, every tensor kept to the end of the run.
    public let traceOffsets: [Int]
    public let traceCodeArenaCount: Int
    public let traceSumArenaCount: Int
    public let patchCount: Int
    /// Elements of the largest per-layer tile-ADC trace buffer.
    public let tileTraceCount: Int
    public let inputCount: Int
    public let outputCount: Int

    /// `set`: one of `IntDispatch.available` (the default: the one chosen at startup).
    public init(_ program: Program, set: IntKernelSet = IntDispatch.selected) throws(ProgramError) {
        precondition(IntDispatch.available.contains(set), "kernel set \(set) does not run on this CPU")
        ranges = try program.valueRanges()
        self.program = program
        kernelSet = set
        var offs: [Int] = [], code: [Bool] = []
        var nCode = 0, nSum = 0
        for t in program.tensors {
            let n = (t.shape.count + 7) / 8 * 8
            if t.kind == .code { offs.append(nCode); nCode += n; code.append(true) } else { offs.append(nSum); nSum += n; code.append(false) }
        }
        isCode = code
        // scratch of rnn layers, after the tensors
        var rnnScratch: [Int: (q: Int, s: Int)] = [:]
        for (k, node) in program.nodes.enumerated() {
            if case .rnn(let p) = node.op {
                let plan = RNNPlan(p, steps: 1, maxCode: 1, set: set)
                rnnScratch[k] = (nCode, nSum)
                nCode += plan.codeScratch; nSum += plan.sumScratch
            }
        }
        traceCodeArenaCount = Swift.max(nCode, 8)
        traceSumArenaCount = Swift.max(nSum, 8)
        traceOffsets = offs
        var steps: [Step] = [], trace: [Step] = []
        var patch = 8, tileTrace = 1
        let rw = Rewrites(program, ranges: ranges, set: set)
        for (k, node) in program.nodes.enumerated() {
            let i = node.inputs[0], o = node.output
            let s = program.tensors[i].shape
            // a node a run pass absorbed into the step before it
            let absorbed = k > 0 && (rw.fusedCrossbars.contains(k - 1) || rw.fusedPools[k - 1] != nil)
            switch node.op {
            case .inputQuant(let p), .activation(let p):
                let st = Step.affine(src: offs[i], srcCode: code[i], dst: offs[o], pixels: s.h * s.w, channels: s.c,
                                     plan: AffinePlan(p, inputRange: ranges[i], channels: s.c))
                trace.append(st)
                if !absorbed { steps.append(st) }
            case .maxPool(let p):
                let st = Step.maxPool(src: offs[i], dst: offs[o], code: code[i], shape: s, params: p)
                trace.append(st)
                if let ap = rw.fusedPools[k] {
                    steps.append(.maxPoolAffine(src: offs[i], dst: offs[program.nodes[k + 1].output], shape: s, plan: ap))
                } else {
                    steps.append(st)
                }
            case .flatten:
                let st = Step.flatten(src: offs[i], dst: offs[o], code: code[i], shape: s)
                trace.append(st)
                if !rw.elidedFlattens.contains(k) { steps.append(st) }
            case .crossbar(let p0):
                let kernel = Fast.crossbarKernel(p0, inShape: s, maxCode: ranges[i].magnitude, set: set)
                patch = Swift.max(patch, kernel.scratchCount)
                tileTrace = Swift.max(tileTrace, kernel.geometry.tileCount * kernel.geometry.outShape.count)
                trace.append(.crossbar(src: offs[i], dst: offs[o], kernel: kernel, node: k))
                let src = rw.readsTensor[k].map { offs[$0] } ?? offs[i]
                if let fused = rw.fusedKernels[k] {
                    patch = Swift.max(patch, fused.scratchCount)
                    steps.append(.crossbarActivation(src: src, dst: offs[program.nodes[k + 1].output], kernel: fused))
                } else {
                    // (the run's weights differ from the trace's when a pass permuted them)
                    guard case .crossbar(let p) = rw.ops[k] else { preconditionFailure("a pass changed node \(k)'s op") }
                    let run = p == p0 ? kernel : Fast.crossbarKernel(p, inShape: s, maxCode: ranges[i].magnitude, set: set)
                    patch = Swift.max(patch, run.scratchCount)
                    steps.append(.crossbar(src: src, dst: offs[o], kernel: run, node: k))
                }
            case .rnn(let p):
                let plan = RNNPlan(p, steps: s.w, maxCode: ranges[i].magnitude, set: set)
                patch = Swift.max(patch, plan.patchCount)
                tileTrace = Swift.max(tileTrace, plan.traceCount)
                let sc = rnnScratch[k]!
                steps.append(.rnn(src: offs[i], dst: offs[o], plan: plan, q: sc.q, s: sc.s, node: k)); trace.append(steps.last!)
            case .add(let p):
                let b = node.inputs[1]
                steps.append(.add(a: offs[i], aCode: code[i], b: offs[b], bCode: code[b], dst: offs[o], pixels: s.h * s.w,
                                  channels: s.c, plan: AddPlan(p))); trace.append(steps.last!)
            case .concat(let p):
                var parts: [ConcatPart] = [], first = 0
                for t in node.inputs {
                    let n = program.tensors[t].shape.c
                    parts.append(ConcatPart(src: offs[t], code: code[t], first: first, channels: n,
                                            plan: AffinePlan(p.quant.channels(first..<(first + n)))))
                    first += n
                }
                steps.append(.concat(parts: parts, dst: offs[o], pixels: s.h * s.w, channels: first)); trace.append(steps.last!)
            case .upsampleBilinear(let p):
                let exact = program.tensors[o].kind == .sum
                steps.append(.upsample(src: offs[i], srcCode: code[i], dst: offs[o], dstCode: code[o],
                                       plan: UpsamplePlan(p, inShape: s, exact: exact))); trace.append(steps.last!)
            case .globalAvgPool(let p):
                steps.append(.globalAvgPool(src: offs[i], srcCode: code[i], dst: offs[o], dstCode: code[o], shape: s, rounding: p.rounding)); trace.append(steps.last!)
            }
        }
        fusedCount = rw.fusedCrossbars.count
        permutedCount = rw.permutedCount
        elidedFlattenCount = rw.elidedFlattens.count
        traceSteps = trace
        // the run's layout: every slot of the tracing layout, packed by lifetime
        var slots = program.tensors.indices.map { MemorySlot(code: code[$0], offset: offs[$0], size: (program.tensors[$0].shape.count + 7) / 8 * 8) }
        for (k, sc) in rnnScratch.sorted(by: { $0.key < $1.key }) {
            guard case .rnn(let p) = program.nodes[k].op else { continue }
            let plan = RNNPlan(p, steps: 1, maxCode: 1, set: set)
            slots.append(MemorySlot(code: true, offset: sc.q, size: plan.codeScratch))
            slots.append(MemorySlot(code: false, offset: sc.s, size: plan.sumScratch))
        }
        let plan = MemoryPlan(steps: steps, slots: slots, input: slots[program.input], output: slots[program.output])
        memoryPlan = plan
        var bySlot: [Int: MemorySlot] = [:]
        for s in slots { bySlot[s.offset &* 2 &+ (s.code ? 1 : 0)] = s }
        self.steps = steps.map { $0.remapped { c, o in plan.offsets[bySlot[o &* 2 &+ (c ? 1 : 0)]!]! } }
        offsets = program.tensors.indices.map { plan.offsets[slots[$0]] ?? -1 }
        codeArenaCount = Swift.max(plan.codeCount, 8)
        sumArenaCount = Swift.max(plan.sumCount, 8)
        patchCount = patch
        tileTraceCount = tileTrace
        inputCount = program.tensors[program.input].shape.count
        outputCount = program.tensors[program.output].shape.count
    }
}

extension CompiledProgram {
    /// Channel order of a fused narrow layer for `steps`: its output channels sorted by the
    /// levels their accumulators can reach (ascending, stable), each channel staying within its
    /// class of the reader `q` (the channels whose rows lie in the same tile of `q` at every
    /// kernel position: contiguous ranges, since a tile is a range of `(c*kh + y)*kw + x`), so
    /// that every tile of `q` keeps its set of products and every segment stays a channel
    /// interval. Nil when the order would not change.
    static func levelOrder(_ levels: [Int], reader q: CrossbarParams) -> [Int]? {
        let c = q.inChannels
        guard levels.count == c, c > 1 else { return nil }
        func tile(_ r: Int) -> Int { q.tiles.firstIndex { r >= $0.rowStart && r < $0.rowStart + $0.rowCount } ?? -1 }
        let khw = q.kernelH * q.kernelW
        let signature = (0..<c).map { ch in (0..<khw).map { tile(ch * khw + $0) } }
        var order: [Int] = [], start = 0
        while start < c {
            var end = start + 1
            while end < c && signature[end] == signature[start] { end += 1 }
            order += (start..<end).sorted { levels[$0] != levels[$1] ? levels[$0] < levels[$1] : $0 < $1 }
            start = end
        }
        return order == Array(0..<c) ? nil : order
    }

    /// `p` with output channel j = channel `order[j]` (weights and the activation `a`), and `q`
    /// with input channel j = channel `order[j]`.
    static func permuteChannels(_ p: CrossbarParams, _ a: AffineQuantParams, _ q: CrossbarParams, _ order: [Int])
        -> (CrossbarParams, AffineQuantParams, CrossbarParams) {
        var p2 = p, a2 = a, q2 = q
        let fan = p.fanIn
        for (j, c) in order.enumerated() {
            for r in 0..<fan { p2.weights[j * fan + r] = p.weights[c * fan + r] }
            a2.multiplier[j] = a.multiplier[c]; a2.shift[j] = a.shift[c]; a2.offset[j] = a.offset[c]
        }
        let khw = q.kernelH * q.kernelW, qfan = q.fanIn
        for o in 0..<q.outChannels {
            for (j, c) in order.enumerated() {
                for t in 0..<khw { q2.weights[o * qfan + j * khw + t] = q.weights[o * qfan + c * khw + t] }
            }
        }
        return (p2, a2, q2)
    }
}

/// Scratch memory of one thread: the tensor arenas and the patch buffer.
public final class Workspace {
    /// Code tensors (Int16) and sum tensors (Int32), 16-byte aligned.
    public let codes: UnsafeMutablePointer<Int16>
    public let sums: UnsafeMutablePointer<Int32>
    public let patch: UnsafeMutablePointer<Int16>
    let raws: [UnsafeMutableRawPointer]
    @usableFromInline let tileTrace: UnsafeMutablePointer<Int32>

    /// True for a tracing workspace (one slot per tensor, `CompiledProgram.traceOffsets`).
    public let tracing: Bool

    /// A workspace for runs, or with `tracing` for `Engine.trace` (larger: every tensor kept).
    public init(for c: CompiledProgram, tracing: Bool = false) {
        self.tracing = tracing
        let nCode = tracing ? c.traceCodeArenaCount : c.codeArenaCount, nSum = tracing ? c.traceSumArenaCount : c.sumArenaCount
        let r0 = UnsafeMutableRawPointer.allocate(byteCount: nCode * 2, alignment: 16)
        let r1 = UnsafeMutableRawPointer.allocate(byteCount: nSum * 4, alignment: 16)
        let r2 = UnsafeMutableRawPointer.allocate(byteCount: c.patchCount * 2, alignment: 16)
        // the per-tile ADC codes are reported only when tracing (at a whole DRIVE image, two
        // tiles of a 32-channel layer are 87 MB)
        let nTrace = tracing ? c.tileTraceCount : 1
        let r3 = UnsafeMutableRawPointer.allocate(byteCount: nTrace * 4, alignment: 16)
        raws = [r0, r1, r2, r3]
        codes = r0.bindMemory(to: Int16.self, capacity: nCode); codes.initialize(repeating: 0, count: nCode)
        sums = r1.bindMemory(to: Int32.self, capacity: nSum); sums.initialize(repeating: 0, count: nSum)
        patch = r2.bindMemory(to: Int16.self, capacity: c.patchCount); patch.initialize(repeating: 0, count: c.patchCount)
        tileTrace = r3.bindMemory(to: Int32.self, capacity: nTrace); tileTrace.initialize(repeating: 0, count: nTrace)
    }
    deinit { for r in raws { r.deallocate() } }
}

extension CompiledProgram {
    /// Runs one image. `pixels`: `inputCount` bytes in (C,H,W) order; `logits`: `outputCount`
    /// Int32 in (C,H,W) order. On a tracing workspace (`Workspace(for:tracing: true)`) no layers
    /// are fused and every tensor of the program stays at its `traceOffsets` slot, and
    /// `onCrossbar` is called after each crossbar layer with the node index and the tile ADC
    /// buffer `[tile][pixel][cout]`.
    @inlinable
    public func run(pixels: UnsafePointer<UInt8>, logits: UnsafeMutablePointer<Int32>, workspace ws: Workspace,
                    onCrossbar: ((Int, UnsafePointer<Int32>) -> Void)? = nil) {
        precondition(onCrossbar == nil || ws.tracing, "a traced run needs a tracing workspace")
        let codes = ws.codes, sums = ws.sums
        let offs = ws.tracing ? traceOffsets : offsets
        loadPixels(pixels, ws)
        for step in ws.tracing ? traceSteps : steps { execute(step, ws, onCrossbar) }
        let os = program.tensors[program.output].shape
        if isCode[program.output] { Fast.hwcToCHW(src: codes + offs[program.output], dst: logits, shape: os) }
        else { Fast.hwcToCHW(src: sums + offs[program.output], dst: logits, shape: os) }
    }

    /// Pixels (C,H,W) -> the HWC input tensor (Int16 codes).
    @inlinable @inline(__always)
    func loadPixels(_ pixels: UnsafePointer<UInt8>, _ ws: Workspace) {
        let ins = program.tensors[program.input].shape
        let inBase = ws.codes + (ws.tracing ? traceOffsets : offsets)[program.input]
        let hw = ins.h &* ins.w
        if ins.c == 1 {
            // one channel: a plain widening copy (vectorised)
            for i in 0..<hw { inBase[i] = Int16(pixels[i]) }
            return
        }
        for c in 0..<ins.c { for i in 0..<hw { inBase[i &* ins.c &+ c] = Int16(pixels[c &* hw &+ i]) } }
    }

    /// Runs one step on the workspace's arenas.
    @inlinable @inline(__always)
    func execute(_ step: Step, _ ws: Workspace, _ onCrossbar: ((Int, UnsafePointer<Int32>) -> Void)?) {
        let codes = ws.codes, sums = ws.sums
        switch step {
        case let .affine(src, srcCode, dst, pixels, channels, plan):
            if plan.thresholdRow > 0 {
                // (the activations of the code arena are Int16; a code tensor's quantizer too)
                if srcCode { Fast.affineQuantThresholds(src: codes + src, dst: codes + dst, count: pixels &* channels, plan: plan) }
                else { Fast.affineQuantThresholds(src: sums + src, dst: codes + dst, count: pixels &* channels, plan: plan) }
            } else if srcCode {
                Fast.affineQuant(src: codes + src, dst: codes + dst, pixels: pixels, channels: channels, plan: plan)
            } else {
                Fast.affineQuant(src: sums + src, dst: codes + dst, pixels: pixels, channels: channels, plan: plan)
            }
        case let .maxPool(src, dst, code, shape, params):
            if code { Fast.maxPool(src: codes + src, dst: codes + dst, shape: shape, params) }
            else { Fast.maxPool(src: sums + src, dst: sums + dst, shape: shape, params) }
        case let .maxPoolAffine(src, dst, shape, plan):
            Fast.maxPool2x2Thresholds(src: sums + src, dst: codes + dst, shape: shape, plan: plan)
        case let .flatten(src, dst, code, shape):
            if code { Fast.hwcToCHW(src: codes + src, dst: codes + dst, shape: shape) }
            else { Fast.hwcToCHW(src: sums + src, dst: sums + dst, shape: shape) }
        case let .crossbar(src, dst, kernel, node):
            kernel.sums(src: codes + src, dst: sums + dst, scratch: ws.patch, tileOut: onCrossbar == nil ? nil : ws.tileTrace)
            if let onCrossbar { onCrossbar(node, ws.tileTrace) }
        case let .crossbarActivation(src, dst, kernel):
            kernel.activationCodes(src: codes + src, dst: codes + dst, scratch: ws.patch)
        case let .rnn(src, dst, plan, q, s, node):
            Fast.rnn(src: codes + src, dst: codes + dst, plan: plan, q: codes + q, s: sums + s, patch: ws.patch,
                     trace: onCrossbar == nil ? nil : ws.tileTrace)
            if let onCrossbar { onCrossbar(node, ws.tileTrace) }
        case let .add(a, aCode, b, bCode, dst, pixels, channels, plan):
            switch (aCode, bCode) {
            case (true, true): Fast.add(codes + a, codes + b, dst: codes + dst, pixels: pixels, channels: channels, plan: plan)
            case (true, false): Fast.add(codes + a, sums + b, dst: codes + dst, pixels: pixels, channels: channels, plan: plan)
            case (false, true): Fast.add(sums + a, codes + b, dst: codes + dst, pixels: pixels, channels: channels, plan: plan)
            case (false, false): Fast.add(sums + a, sums + b, dst: codes + dst, pixels: pixels, channels: channels, plan: plan)
            }
        case let .concat(parts, dst, pixels, channels):
            for part in parts {
                if part.code {
                    Fast.affineQuant(src: codes + part.src, dst: codes + dst + part.first, pixels: pixels, channels: part.channels,
                                     dstStride: channels, plan: part.plan)
                } else {
                    Fast.affineQuant(src: sums + part.src, dst: codes + dst + part.first, pixels: pixels, channels: part.channels,
                                     dstStride: channels, plan: part.plan)
                }
            }
        case let .upsample(src, srcCode, dst, dstCode, plan):
            switch (srcCode, dstCode) {
            case (true, true): Fast.upsample(src: codes + src, dst: codes + dst, plan: plan)
            case (true, false): Fast.upsample(src: codes + src, dst: sums + dst, plan: plan)
            case (false, true): Fast.upsample(src: sums + src, dst: codes + dst, plan: plan)
            case (false, false): Fast.upsample(src: sums + src, dst: sums + dst, plan: plan)
            }
        case let .globalAvgPool(src, srcCode, dst, dstCode, shape, rounding):
            // a sum output is the exact sum; a code (or sum) input keeps its buffer
            switch (srcCode, dstCode) {
            case (true, true): Fast.globalAvgPool(src: codes + src, dst: codes + dst, shape: shape, rounding: rounding)
            case (true, false): Fast.globalAvgPool(src: codes + src, dst: sums + dst, shape: shape, rounding: rounding, exact: true)
            case (false, false): Fast.globalAvgPool(src: sums + src, dst: sums + dst, shape: shape, rounding: rounding)
            case (false, true): Fast.globalAvgPool(src: sums + src, dst: codes + dst, shape: shape, rounding: rounding)
            }
        }
    }
}

/// Runs a validated program with the fast kernels on batches of images.
///
/// Set-up (`init`) validates, packs the weights and allocates one workspace per thread; after
/// that `infer` / `inferBatch` (pointer versions) allocate nothing. One call at a time per
/// engine (the workspaces are reused); create one engine per concurrent caller.
public final class Engine {
    public let compiled: CompiledProgram
    public private(set) var workspaces: [Workspace]
    public var program: Program { compiled.program }
    public var inputCount: Int { compiled.inputCount }
    public var outputCount: Int { compiled.outputCount }

    /// Validates and compiles `program` for kernel set `kernels` (one of
    /// `IntDispatch.available`), and allocates one workspace per thread.
    public init(program: Program, threads: Int = 1, kernels: IntKernelSet = IntDispatch.selected) throws(ProgramError) {
        compiled = try CompiledProgram(program, set: kernels)
        workspaces = []
        for _ in 0..<Swift.max(1, threads) { workspaces.append(Workspace(for: compiled)) }
    }

    /// Classes predicted per image: the output's pixels (H*W; 1 for a classifier).
    public var predictionsPerImage: Int { program.tensors[program.output].shape.h * program.tensors[program.output].shape.w }

    /// Threads (workspaces) available to `inferBatch`.
    public var threads: Int { workspaces.count }

    /// One image: `pixels.count == inputCount`, `logits.count == outputCount`. Returns the argmax
    /// over all logits (a classifier's class; per-pixel outputs: `inferBatch`'s predictions).
    @discardableResult
    public func infer(pixels: UnsafeBufferPointer<UInt8>, logits: UnsafeMutableBufferPointer<Int32>) -> Int {
        precondition(pixels.count == inputCount && logits.count == outputCount, "buffer sizes")
        compiled.run(pixels: pixels.baseAddress!, logits: logits.baseAddress!, workspace: workspaces[0])
        return argmax(UnsafeBufferPointer(logits))
    }

    /// A batch of `count` images stored back to back; logits back to back; `predictions`
    /// (optional, `count * predictionsPerImage` entries) receives each image's per-pixel argmax
    /// (a classifier: one per image). Images are split into contiguous
    /// chunks, one per thread (`threads` at most `self.threads`); results do not depend on the
    /// thread count.
    public func inferBatch(pixels: UnsafeBufferPointer<UInt8>, count: Int, logits: UnsafeMutableBufferPointer<Int32>,
                           predictions: UnsafeMutableBufferPointer<Int32>? = nil, threads: Int? = nil) {
        let nIn = inputCount, nOut = outputCount
        precondition(pixels.count >= count * nIn && logits.count >= count * nOut, "buffer sizes")
        let ppi = predictionsPerImage, outShape = program.tensors[program.output].shape
        precondition(predictions == nil || predictions!.count >= count * ppi, "predictions size")
        let n = Swift.max(1, Swift.min(threads ?? workspaces.count, workspaces.count, Swift.max(count, 1)))
        let c = compiled
        let ws = workspaces
        let px = pixels.baseAddress, lg = logits.baseAddress, pr = predictions?.baseAddress
        guard count > 0, let px, let lg else { return }
        KernelsParallel.forEach(n) { part in
            let lo = count * part / n, hi = count * (part + 1) / n
            let w = ws[part]
            for i in lo..<hi {
                let out = lg + i * nOut
                c.run(pixels: px + i * nIn, logits: out, workspace: w)
                if let pr { pixelArgmax(UnsafeBufferPointer(start: out, count: nOut), shape: outShape, into: pr + i * ppi) }
            }
        }
    }

    /// Convenience: a batch from arrays; returns logits (back to back) and predictions.
    public func inferBatch(_ pixels: [UInt8], count: Int, threads: Int? = nil) -> (logits: [Int32], predictions: [Int32]) {
        var logits = [Int32](repeating: 0, count: count * outputCount)
        var pred = [Int32](repeating: 0, count: count * predictionsPerImage)
        pixels.withUnsafeBufferPointer { p in
            logits.withUnsafeMutableBufferPointer { l in
                pred.withUnsafeMutableBufferPointer { q in
                    inferBatch(pixels: p, count: count, logits: l, predictions: q, threads: threads)
                }
            }
        }
        return (logits, pred)
    }

    /// Runs one image and records every tensor and every tile's ADC codes, in (C,H,W) order
    /// (allocates; for golden vectors and tests).
    public func trace(pixels: [UInt8]) -> Trace {
        let p = compiled.program
        precondition(pixels.count == inputCount, "pixel count")
        var tiles = [[[Int32]]](repeating: [], count: p.nodes.count)
        var logits = [Int32](repeating: 0, count: outputCount)
        let ws = Workspace(for: compiled, tracing: true)
        pixels.withUnsafeBufferPointer { px in
            logits.withUnsafeMutableBufferPointer { lg in
                compiled.run(pixels: px.baseAddress!, logits: lg.baseAddress!, workspace: ws) { node, buf in
                    if case .rnn(let rp) = p.nodes[node].op {
                        // per-step sub-points [t][input tiles, recurrent tiles, hidden][Hd]
                        let hd = rp.hiddenSize, n = p.tensors[p.nodes[node].inputs[0]].shape.w * rp.subpointsPerStep
                        tiles[node] = (0..<n).map { j in Array(UnsafeBufferPointer(start: buf + j * hd, count: hd)) }
                        return
                    }
                    guard case .crossbar(let cp) = p.nodes[node].op else { return }
                    let os = p.tensors[p.nodes[node].output].shape
                    var perTile: [[Int32]] = []
                    for t in 0..<cp.tiles.count {
                        var chw = [Int32](repeating: 0, count: os.count)
                        chw.withUnsafeMutableBufferPointer { d in
                            Fast.hwcToCHW(src: buf + t * os.count, dst: d.baseAddress!, shape: os)
                        }
                        perTile.append(chw)
                    }
                    tiles[node] = perTile
                }
            }
        }
        var tensors: [[Int32]] = []
        for (i, t) in p.tensors.enumerated() {
            var chw = [Int32](repeating: 0, count: t.shape.count)
            chw.withUnsafeMutableBufferPointer { d in
                if compiled.isCode[i] { Fast.hwcToCHW(src: ws.codes + compiled.traceOffsets[i], dst: d.baseAddress!, shape: t.shape) }
                else { Fast.hwcToCHW(src: ws.sums + compiled.traceOffsets[i], dst: d.baseAddress!, shape: t.shape) }
            }
            tensors.append(chw)
        }
        _ = logits
        return Trace(tensors: tensors, tileADC: tiles)
    }
}

/// Argmax; ties: the lowest index wins (DATAPATH.md section 9). -1 if empty.
@inlinable
public func argmax(_ v: UnsafeBufferPointer<Int32>) -> Int {
    guard !v.isEmpty else { return -1 }
    var best = 0
    for i in 1..<v.count where v[i] > v[best] { best = i }
    return best
}

/// Argmax of an array; ties: the lowest index wins.
public func argmax(_ v: [Int32]) -> Int { v.withUnsafeBufferPointer { argmax($0) } }

/// Per-pixel argmax over the channels of a (C,H,W) output (DATAPATH.md section 9): `H*W` classes
/// in (h, w) order; ties: the lowest channel wins. A classifier's (C,1,1) output has one pixel,
/// whose class is `argmax` of the logits.
@inlinable
public func pixelArgmax<T: Comparable>(_ v: UnsafeBufferPointer<T>, shape s: TensorShape, into out: UnsafeMutablePointer<Int32>) {
    let hw = s.h * s.w
    for p in 0..<hw {
        var best = 0
        for c in 1..<Swift.max(s.c, 1) where v[c * hw + p] > v[best * hw + p] { best = c }
        out[p] = Int32(best)
    }
}

/// Per-pixel argmax of one image's output values (`v.count == shape.count`).
public func pixelArgmax<T: Comparable>(_ v: some Collection<T>, shape: TensorShape) -> [Int32] {
    precondition(v.count == shape.count, "values of one output")
    let a = Array(v)
    var out = [Int32](repeating: 0, count: shape.h * shape.w)
    a.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { pixelArgmax(b, shape: shape, into: $0.baseAddress!) } }
    return out
}
