// Prepare-side arithmetic (float math, once): real affine maps -> integer (multiplier, shift,
// offset) for the Program's affine quantizers (docs/DATAPATH.md section 3, 7 and 14).
import FixedPoint
import Kernels

public enum AffineFold {
    /// Integer parameters `(M, S, B)` of `out = clamp(roundingShiftRight(s * M + B, S, R), 0, 2^b - 1)`
    /// approximating the real map `v = a * s + b` for integer inputs `|s| <= maxInput`.
    ///
    /// `(M, S)` starts from FixedPoint's `QuantizedMultiplier(real: |a|)` (31 significant bits,
    /// `S = 31 - shift`), `B = round(b * 2^S)`; `S` (and `M = round(|a| 2^S)`) is lowered until
    /// `maxInput * |M| + |B| <= 2^62` (DATAPATH.md section 10). Then
    /// `|(s M + B)/2^S - (a s + b)| <= (|s| + 1) * 2^-(S+1)` (`errorBound`), so the integer result equals
    /// the rounded real value except when `a s + b` lies that close to a rounding boundary.
    public static func derive(scale a: Double, offset b: Double, maxInput: Int64) throws(FreezeError) -> (multiplier: Int32, shift: Int32, offset: Int64) {
        let r = try derive(scales: [a], offset: b, maxInputs: [maxInput])
        return (r.multipliers[0], r.shift, r.offset)
    }

    /// `derive` for a sum of inputs with their own scales and one shift and offset (a residual
    /// addition: `clamp(roundingShiftRight(sum_k s_k M_k + B, S, R), 0, 2^b - 1)`, DATAPATH.md
    /// section 16). `S` starts from the largest |scale| and is lowered until every `M_k` fits
    /// Int32 and `sum_k maxInput_k |M_k| + |B| <= 2^62`.
    public static func derive(scales: [Double], offset b: Double, maxInputs: [Int64]) throws(FreezeError) -> (multipliers: [Int32], shift: Int32, offset: Int64) {
        precondition(scales.count == maxInputs.count && !scales.isEmpty, "one maximum input per scale")
        for a in scales where !a.isFinite { throw FreezeError("affine fold: non-finite scale \(a)") }
        guard b.isFinite else { throw FreezeError("affine fold: non-finite offset \(b)") }
        let mags = scales.map { abs($0) }
        let mag = mags.max()!
        let bound = Double(Program.affineBound)
        var S: Int
        if mag == 0 {
            S = 62
        } else {
            let qm: QuantizedMultiplier
            do { qm = try QuantizedMultiplier(real: mag) } catch {
                throw FreezeError("affine fold: scale \(mag) is too large for a 32-bit multiplier (\(error))")
            }
            S = qm.multiplier == 0 ? 62 : 31 - Int(qm.shift)
        }
        S = min(max(S, 0), 62)
        while true {
            let p = Double(sign: .plus, exponent: S, significand: 1.0)
            let mD = mags.map { ($0 * p).rounded(.toNearestOrAwayFromZero) }
            let bD = (b * p).rounded(.toNearestOrAwayFromZero)
            var total = abs(bD)
            for k in mD.indices { total += Double(maxInputs[k]) * mD[k] }
            if mD.allSatisfy({ $0 <= Double(Int32.max) }), abs(bD) < bound, total <= bound * (1 - 0x1p-40) {
                let m = mD.map { Int64($0) }, bb = Int64(bD)
                // exact integer re-check of the validate() bound
                var sum = abs(bb), overflow = false
                for k in m.indices {
                    let (prod, o1) = maxInputs[k].multipliedReportingOverflow(by: m[k])
                    let (s2, o2) = sum.addingReportingOverflow(prod)
                    sum = s2; overflow = overflow || o1 || o2
                }
                if !overflow, sum <= Program.affineBound {
                    return (m.indices.map { Int32(scales[$0] < 0 ? -m[$0] : m[$0]) }, Int32(S), bb)
                }
            }
            if S == 0 {
                throw FreezeError("affine fold: scales \(scales), offset \(b) over inputs up to \(maxInputs) exceed the 2^62 bound of an affine quantizer")
            }
            S -= 1
        }
    }

    /// `(|s| + 1) * 2^-(S+1)`: the largest distance between the integer stage's real value and `a s + b`.
    public static func errorBound(input s: Int64, shift: Int32) -> Double {
        Double(s.magnitude + 1) * Double(sign: .plus, exponent: -Int(shift) - 1, significand: 1.0)
    }
}
