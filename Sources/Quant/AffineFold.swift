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
        guard a.isFinite, b.isFinite else { throw FreezeError("affine fold: non-finite scale \(a) or offset \(b)") }
        let mag = abs(a)
        let bound = Double(Program.affineBound)
        var S: Int
        if mag == 0 {
            S = 62
        } else {
            let qm: QuantizedMultiplier
            do { qm = try QuantizedMultiplier(real: mag) } catch {
                throw FreezeError("affine fold: scale \(a) is too large for a 32-bit multiplier (\(error))")
            }
            S = qm.multiplier == 0 ? 62 : 31 - Int(qm.shift)
        }
        S = min(max(S, 0), 62)
        while true {
            let p = Double(sign: .plus, exponent: S, significand: 1.0)
            let mD = (mag * p).rounded(.toNearestOrAwayFromZero)
            let bD = (b * p).rounded(.toNearestOrAwayFromZero)
            let total = Double(maxInput) * mD + abs(bD)
            if mD <= Double(Int32.max), abs(bD) < bound, total <= bound * (1 - 0x1p-40) {
                let m = Int64(mD), bb = Int64(bD)
                // exact integer re-check of the validate() bound
                let (prod, o1) = maxInput.multipliedReportingOverflow(by: m)
                let (sum, o2) = prod.addingReportingOverflow(abs(bb))
                if !o1, !o2, sum <= Program.affineBound {
                    return (Int32(a < 0 ? -m : m), Int32(S), bb)
                }
            }
            if S == 0 {
                throw FreezeError("affine fold: scale \(a), offset \(b) over inputs up to \(maxInput) exceed the 2^62 bound of an affine quantizer")
            }
            S -= 1
        }
    }

    /// `(|s| + 1) * 2^-(S+1)`: the largest distance between the integer stage's real value and `a s + b`.
    public static func errorBound(input s: Int64, shift: Int32) -> Double {
        Double(s.magnitude + 1) * Double(sign: .plus, exponent: -Int(shift) - 1, significand: 1.0)
    }
}
