// Which build of the crossbar block loops an engine runs: CrossbarBlocks (the architecture's
// baseline: the Int16 pair kernel) or, on x86-64 CPUs with AVX2, CrossbarBlocksAVX2 (the same
// source compiled for Haswell-class CPUs, which adds the u8 x i8 quad kernel and the vector
// ADC). Every build gives the reference's integers bit for bit, so the choice changes speed
// only. `RRAM_EDGE_INT_KERNELS=portable|avx2` overrides the choice (`edgecli` stops on an unknown
// or unavailable value); an engine can also be made for a given set (tests run every set).
import CPUFeatures
import CrossbarBlocks
#if arch(x86_64)
import CrossbarBlocksAVX2
#endif

public enum IntKernelSet: String, Sendable, CaseIterable {
    case portable, avx2
}

public enum IntDispatch {
    /// The environment variable that overrides the choice.
    public static let environmentKey = "RRAM_EDGE_INT_KERNELS"

    /// The sets this binary has and this CPU runs (slowest first), the set in use, and what is
    /// wrong with the environment variable, if anything.
    public static let choice = KernelBuildChoice<IntKernelSet>(key: environmentKey, available: {
        #if arch(x86_64)
        if CPUFeatures.runsHaswellCode && CrossbarBlocksAVX2.BlockLoops.hasQuadKernel { return [.portable, .avx2] }
        #endif
        return [.portable]
    }())
    public static var available: [IntKernelSet] { choice.available }
    public static var selected: IntKernelSet { choice.selected }
    public static var environmentProblem: String? { choice.problem }
}

extension IntDispatch {
    /// `bench peak` of kernel set `set` (one of `available`): the instruction its crossbar loops
    /// are built on, the MACs it does, and a run of `iterations` x 12 of it (the return value
    /// depends on every result).
    public static func peak(_ set: IntKernelSet, iterations: Int) -> (instruction: String, macsPerInstruction: Int, check: Int) {
        precondition(available.contains(set), "kernel set \(set) does not run on this CPU")
        #if arch(x86_64)
        if set == .avx2 {
            let i = CrossbarBlocksAVX2.BlockLoops.peakInstruction
            return (i.name, i.macs, CrossbarBlocksAVX2.BlockLoops.peak(iterations: iterations))
        }
        #endif
        let i = CrossbarBlocks.BlockLoops.peakInstruction
        return (i.name, i.macs, CrossbarBlocks.BlockLoops.peak(iterations: iterations))
    }
}
