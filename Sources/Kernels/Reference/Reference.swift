// Reference kernels: plain loops over (C,H,W) Int32 buffers, written to be obviously right
// against docs/DATAPATH.md, using FixedPoint's rounding and saturation. One op per file.
// They are the oracle for the fast kernels (Sources/Kernels/Fast); speed is not a goal.

import FixedPoint

/// Namespace of the reference kernels (one op per file: Reference+<Op>.swift).
public enum Reference {}

/// Every intermediate value of one inference, for golden vectors and kernel comparison.
public struct Trace: Sendable, Equatable {
    /// The value of every tensor of the program, in (C,H,W) order, widened to Int32.
    public var tensors: [[Int32]]
    /// Per node: for a crossbar node, each row tile's ADC codes `[tile][(o*OH + oy)*OW + ox]`;
    /// for an rnn node, the per-step sub-points `[t * subpointsPerStep + j][o]` (input-tile ADC
    /// codes, recurrent-tile ADC codes, hidden values; `RNNParams.subpointsPerStep`); empty for
    /// other nodes.
    public var tileADC: [[[Int32]]]

    public init(tensors: [[Int32]], tileADC: [[[Int32]]]) { self.tensors = tensors; self.tileADC = tileADC }
}
