import FixedPoint

extension Reference {
    /// The combiner of an rnn step (DATAPATH.md section 15): `z = s_x * Mx + s_h * Mh` (Int64).
    public static func rnnCombine(_ sx: Int32, _ sh: Int32, _ p: RNNParams) -> Int64 {
        Int64(sx) * Int64(p.inputMultiplier) + Int64(sh) * Int64(p.recurrentMultiplier)
    }

    /// A hidden code of a step `t < T-1`: `clamp(roundingShiftRight(z, S, R_h), 0, 2^hb - 1)`.
    public static func rnnHidden(_ z: Int64, _ p: RNNParams) -> Int64 {
        saturate(roundingShiftRight(z, Int(p.stateShift), p.hiddenRounding), unsignedBits: p.hiddenBits)
    }

    /// The average accumulator `A = codeSum * 2^S + max(zLast, 0)`.
    public static func rnnAverage(codeSum: Int64, zLast: Int64, _ p: RNNParams) -> Int64 {
        codeSum * (Int64(1) << Int64(p.stateShift)) + max(zLast, 0)
    }

    /// An rnn layer (DATAPATH.md section 15) on codes `(I, 1, T)` in (C,H,W) order. `steps`, if
    /// given, receives the per-step sub-points (`RNNParams.subpointsPerStep` arrays of `Hd`
    /// values per step: input-tile ADC codes, recurrent-tile ADC codes, hidden values).
    public static func rnn(_ input: [Int32], shape: TensorShape, _ p: RNNParams, steps: inout [[Int32]]) -> [Int32] {
        let hd = p.hiddenSize, nI = p.inputSize, T = shape.w
        let vec = TensorShape(c: nI, h: 1, w: 1), hvec = TensorShape(c: hd, h: 1, w: 1)
        var q = [Int32](repeating: 0, count: hd)          // q[t-1]; q[-1] = 0
        var codeSum = [Int64](repeating: 0, count: hd)
        var zLast = [Int64](repeating: 0, count: hd)
        steps = []
        for t in 0..<T {
            var x = [Int32](repeating: 0, count: nI)
            for c in 0..<nI { x[c] = input[c * T + t] }              // in[c, 0, t]
            var tx: [[Int32]] = [], th: [[Int32]] = []
            let sx = crossbar(x, shape: vec, p.input, tileADC: &tx)
            let sh = crossbar(q, shape: hvec, p.recurrent, tileADC: &th)
            var hidden = [Int32](repeating: 0, count: hd)
            for o in 0..<hd {
                let z = rnnCombine(sx[o], sh[o], p)
                if t < T - 1 {
                    let code = rnnHidden(z, p)
                    hidden[o] = Int32(code)
                    codeSum[o] += code
                } else {
                    hidden[o] = Int32(z)                               // |z| < 2^31 (validate)
                    zLast[o] = z
                }
            }
            steps += tx + th + [hidden]
            if t < T - 1 { q = hidden }
        }
        var out = [Int32](repeating: 0, count: hd)
        for o in 0..<hd {
            let a = rnnAverage(codeSum: codeSum[o], zLast: zLast[o], p)
            out[o] = Int32(affineQuant(a, channel: o, p.output))
        }
        _ = hvec
        return out
    }
}
