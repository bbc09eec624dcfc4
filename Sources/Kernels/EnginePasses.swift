// The graph rewrites behind the fast engine's run steps (docs/DATAPATH.md section 12). Traces
// run every node as the program states it; `run` applies these passes, in this order, and then
// emits one step per node that no pass absorbed. Each pass names its precondition: a rewrite
// that holds it changes no output bit (the fast-vs-reference tests compare traces, which are
// not rewritten, with the fused logits).
//
// 1. `elideFlattens`: a flatten of codes whose only reader is the next node, a single-tile 1x1
//    crossbar (stride 1, no padding) over all the flattened values, is not run; the crossbar
//    reads the flatten's HWC input with its weight columns permuted from CHW to HWC order (one
//    tile: the order of its rows does not change its sum).
// 2. `fuseCrossbarActivations`: a crossbar whose sums only the next node reads, an activation,
//    runs as one step when `CrossbarGeometry.canFuse` holds (one tile, the accumulator bound fits the
//    threshold form): the activation becomes threshold compares on the accumulator.
// 3. `permuteNarrowChannels`: a fused crossbar on the narrow kernel whose activation codes only
//    the next node reads, itself a crossbar, stores its output channels in level order
//    (`CompiledProgram.levelOrder`, nil when nothing moves), so that groups of 16 channels
//    compare fewer thresholds; the reader's input channels are permuted the same way, within its
//    tiles, so every tile keeps its set of products.
// 4. `fusePoolActivations`: a 2x2 stride-2 max-pool of sums (channels a multiple of 8) whose
//    only reader is the next node, an activation with every channel in threshold form, runs as
//    one step: the pooled maximum, then the compares.
extension CompiledProgram {
    struct Rewrites {
        /// The ops the run steps use: a crossbar's weights as permuted by passes 1 and 3.
        var ops: [Op]
        /// Crossbar node -> the tensor it reads instead of its input (an elided flatten's input).
        var readsTensor: [Int: Int] = [:]
        var elidedFlattens: Set<Int> = []
        /// Crossbar nodes run with the activation after them (pass 2), and their kernels (pass 3).
        var fusedCrossbars: Set<Int> = []
        var fusedKernels: [Int: any CrossbarActivationKernel] = [:]
        var permutedCount = 0
        /// Max-pool nodes run with the activation after them, and that activation's plan.
        var fusedPools: [Int: AffinePlan] = [:]

        /// Whether node `k + 1` exists and is the only reader of node `k`'s output, which is not
        /// the program's output.
        static func nextIsSoleReader(_ p: Program, _ k: Int, readers: [Int]) -> Bool {
            let o = p.nodes[k].output
            return readers[o] == 1 && o != p.output && k + 1 < p.nodes.count && p.nodes[k + 1].inputs == [o]
        }

        /// The kernel set the fused kernels are made for.
        let set: IntKernelSet

        init(_ p: Program, ranges: [ValueRange], set: IntKernelSet) {
            self.set = set
            ops = p.nodes.map(\.op)
            var readers = [Int](repeating: 0, count: p.tensors.count)
            for n in p.nodes { for i in n.inputs { readers[i] += 1 } }
            elideFlattens(p, readers)
            fuseCrossbarActivations(p, ranges, readers)
            permuteNarrowChannels(p, ranges, readers)
            fusePoolActivations(p, ranges, readers)
        }

        mutating func elideFlattens(_ p: Program, _ readers: [Int]) {
            for (k, node) in p.nodes.enumerated() {
                guard case .flatten = node.op else { continue }
                let i = node.inputs[0], s = p.tensors[i].shape
                guard p.tensors[i].kind == .code, Self.nextIsSoleReader(p, k, readers: readers),
                      case .crossbar(let q) = ops[k + 1], q.tiles.count == 1, q.kernelH == 1, q.kernelW == 1,
                      q.strideH == 1, q.strideW == 1, q.padH == 0, q.padW == 0, q.inChannels == s.count else { continue }
                var q2 = q
                let hw = s.h * s.w, fan = q.fanIn
                for oc in 0..<q.outChannels {
                    for c in 0..<s.c { for j in 0..<hw { q2.weights[oc * fan + j * s.c + c] = q.weights[oc * fan + c * hw + j] } }
                }
                ops[k + 1] = .crossbar(q2)
                readsTensor[k + 1] = i
                elidedFlattens.insert(k)
            }
        }

        mutating func fuseCrossbarActivations(_ p: Program, _ ranges: [ValueRange], _ readers: [Int]) {
            for (k, node) in p.nodes.enumerated() {
                guard case .crossbar(let x) = ops[k], Self.nextIsSoleReader(p, k, readers: readers),
                      case .activation(let a) = ops[k + 1], CrossbarGeometry.canFuse(x, a, maxCode: ranges[node.inputs[0]].hi) else { continue }
                fusedCrossbars.insert(k)
            }
        }

        mutating func permuteNarrowChannels(_ p: Program, _ ranges: [ValueRange], _ readers: [Int]) {
            // node order: a layer's input channels (permuted by the layer two nodes before) are
            // final before its own plan is made
            for k in fusedCrossbars.sorted() {
                guard case .crossbar(var x) = ops[k], case .activation(var a) = ops[k + 1] else { continue }
                let s = p.tensors[p.nodes[k].inputs[0]].shape, maxCode = ranges[p.nodes[k].inputs[0]].hi
                var kernel = Fast.fusedCrossbarKernel(x, inShape: s, fusing: a, maxCode: maxCode, set: set)
                if kernel is NarrowFusedKernel, Self.nextIsSoleReader(p, k + 1, readers: readers), case .crossbar(let q) = ops[k + 2],
                   let order = CompiledProgram.levelOrder(kernel.geometry.channelLevels, reader: q) {
                    let (x2, a2, q2) = CompiledProgram.permuteChannels(x, a, q, order)
                    x = x2; a = a2
                    ops[k] = .crossbar(x); ops[k + 1] = .activation(a); ops[k + 2] = .crossbar(q2)
                    kernel = Fast.fusedCrossbarKernel(x, inShape: s, fusing: a, maxCode: maxCode, set: set)
                    permutedCount += 1
                }
                fusedKernels[k] = kernel
            }
        }

        mutating func fusePoolActivations(_ p: Program, _ ranges: [ValueRange], _ readers: [Int]) {
            for (k, node) in p.nodes.enumerated() {
                let i = node.inputs[0], s = p.tensors[i].shape
                guard case .maxPool(let mp) = node.op, p.tensors[i].kind != .code, mp.kh == 2, mp.kw == 2, mp.sh == 2, mp.sw == 2,
                      s.c % 8 == 0, Self.nextIsSoleReader(p, k, readers: readers), case .activation(let a) = ops[k + 1] else { continue }
                let ap = AffinePlan(a, inputRange: ranges[node.output], channels: s.c)
                if ap.thresholdRow == s.c { fusedPools[k] = ap }
            }
        }
    }
}
