// The sustained rate of the multiply instruction a kernel set's crossbar loops are built on, in
// a register-only loop (`edgecli bench peak`): the ceiling the kernels' MAC/s are measured
// against. Each of 12 independent chains feeds its result back as the next input, so nothing
// is loop-invariant and the loop is bound by the instruction's throughput, not its latency.
#if RRAM_EDGE_AVX2
import _Builtin_intrinsics.intel
#endif

extension BlockLoops {
    /// The instruction `peak` times, and the MACs one instruction does.
    #if RRAM_EDGE_AVX2
    public static let peakInstruction = (name: "vpmaddubsw (u8 x i8, 256-bit)", macs: 32)
    #else
    public static let peakInstruction = (name: "Int16 multiply (SIMD16<Int16> lanes)", macs: 16)
    #endif

    /// Runs `iterations` x 12 of the instruction; returns a value that depends on every result
    /// (so that the loop is kept).
    public static func peak(iterations: Int) -> Int {
        #if RRAM_EDGE_AVX2
        let w = unsafeBitCast(SIMD32<Int8>(repeating: 1), to: __m256i.self)
        // distinct starting values, so that no two chains are the same computation
        func start(_ k: Int8) -> __m256i { unsafeBitCast(SIMD32<Int8>(repeating: 3 &+ k), to: __m256i.self) }
        var a0 = start(0), a1 = start(1), a2 = start(2), a3 = start(3), a4 = start(4), a5 = start(5)
        var a6 = start(6), a7 = start(7), a8 = start(8), a9 = start(9), a10 = start(10), a11 = start(11)
        for _ in 0..<iterations {
            a0 = _mm256_maddubs_epi16(a0, w); a1 = _mm256_maddubs_epi16(a1, w); a2 = _mm256_maddubs_epi16(a2, w)
            a3 = _mm256_maddubs_epi16(a3, w); a4 = _mm256_maddubs_epi16(a4, w); a5 = _mm256_maddubs_epi16(a5, w)
            a6 = _mm256_maddubs_epi16(a6, w); a7 = _mm256_maddubs_epi16(a7, w); a8 = _mm256_maddubs_epi16(a8, w)
            a9 = _mm256_maddubs_epi16(a9, w); a10 = _mm256_maddubs_epi16(a10, w); a11 = _mm256_maddubs_epi16(a11, w)
        }
        return [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11].reduce(0) {
            $0 &+ Int(unsafeBitCast($1, to: SIMD16<Int16>.self).wrappedSum())
        }
        #else
        let w = SIMD16<Int16>(repeating: 3)
        var a0 = SIMD16<Int16>(repeating: 1), a1 = a0 &+ 1, a2 = a0 &+ 2, a3 = a0 &+ 3, a4 = a0 &+ 4, a5 = a0 &+ 5
        var a6 = a0 &+ 6, a7 = a0 &+ 7, a8 = a0 &+ 8, a9 = a0 &+ 9, a10 = a0 &+ 10, a11 = a0 &+ 11
        for _ in 0..<iterations {
            a0 = a0 &* w; a1 = a1 &* w; a2 = a2 &* w; a3 = a3 &* w; a4 = a4 &* w; a5 = a5 &* w
            a6 = a6 &* w; a7 = a7 &* w; a8 = a8 &* w; a9 = a9 &* w; a10 = a10 &* w; a11 = a11 &* w
        }
        return [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11].reduce(0) { $0 &+ Int($1.wrappedSum()) }
        #endif
    }
}
