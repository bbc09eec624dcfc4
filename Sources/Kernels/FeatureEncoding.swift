// The float input boundary of feature tasks (spoken digit; DATAPATH.md section 15.1): features
// are Float32 in [0, 1]; the host turns each into its DAC code once, and the program's input
// tensor (8-bit codes) holds those codes; the program's input quantizer is then the identity
// clamp (multiplier 1, shift 0, offset 0, `b` output bits).

public enum FeatureEncoding {
    /// `round_halfUp(x * (2^bits - 1))` for `x` in [0, 1]: exact, because `x * L` of a Float32 `x`
    /// and `L <= 255` needs at most 32 significant bits and is exact in Double, and so is `+ 0.5`
    /// and `floor`. nil for NaN, infinities and values outside [0, 1] (an error for the caller).
    /// Equals the training's `roundHalfAway(clamp(x, 0, 1) * L)` on [0, 1] (values are >= 0).
    @inlinable
    public static func code(_ x: Float, bits: Int) -> UInt8? {
        guard x.isFinite, x >= 0, x <= 1, (1...8).contains(bits) else { return nil }
        let l = Double((1 << bits) - 1)
        return UInt8((Double(x) * l + 0.5).rounded(.down))
    }
}
