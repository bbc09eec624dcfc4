// Every random draw in rram-edge comes from this file. Two kinds of generator:
//
// * `Xoshiro256StarStar`: a sequential, seeded stream (data shuffles, score initialisation).
//   Seeded through SplitMix64 as its authors recommend; `init(seed:stream:)` derives
//   independent streams for independent purposes so that adding draws to one purpose never
//   shifts another.
// * `CounterRandom`: a stateless draw keyed by (seed, stream, index[, lane]). The value of
//   cell (array, row, column) is a pure function of its key, so it does not depend on the
//   order in which cells are visited or on how many threads visit them.
//
// Floating-point conversions are fixed here (53 high bits -> Double in [0, 1); Box-Muller with
// `Foundation`-free libm calls) so results are bit-identical on every platform that has IEEE
// doubles and a correctly rounded `log`/`sqrt`; `cos`/`sin` come from the platform's libm.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// SplitMix64 finaliser (Stafford variant 13): a bijective 64-bit mixer with full avalanche.
@inlinable @inline(__always)
public func mix64(_ z0: UInt64) -> UInt64 {
    var z = z0
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// SplitMix64: used only to expand a 64-bit seed into generator state.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    @inlinable public init(seed: UInt64) { state = seed }
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix64(state)
    }
}

/// Converts 64 random bits to a Double uniform on [0, 1) using the top 53 bits.
@inlinable @inline(__always)
public func unitDouble(_ bits: UInt64) -> Double {
    Double(bits >> 11) * 0x1.0p-53
}

/// Converts 64 random bits to a Double uniform on (0, 1], safe for `log`.
@inlinable @inline(__always)
public func unitDoubleOpenZero(_ bits: UInt64) -> Double {
    (Double(bits >> 11) + 1.0) * 0x1.0p-53
}

/// Box-Muller: two independent uniform bit patterns -> one standard normal.
@inlinable
public func standardNormal(_ a: UInt64, _ b: UInt64) -> Double {
    let u1 = unitDoubleOpenZero(a)
    let u2 = unitDouble(b)
    return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
}

/// xoshiro256** 1.0 (Blackman and Vigna), 256-bit state, period 2^256 - 1.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    public var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// State from a seed through SplitMix64 (never all zero).
    @inlinable public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// An independent stream for one purpose: the seed is mixed with the stream number.
    @inlinable public init(seed: UInt64, stream: UInt64) {
        self.init(seed: mix64(seed ^ mix64(stream &+ 0x632B_E59B_D9B4_E019)))
    }

    @inlinable @inline(__always)
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    /// Uniform Double in [0, 1).
    @inlinable public mutating func uniform() -> Double { unitDouble(next()) }

    /// Uniform Double in [lo, hi).
    @inlinable public mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * uniform()
    }

    /// Uniform Float in [0, 1) from the top 24 bits.
    @inlinable public mutating func uniformFloat() -> Float {
        Float(next() >> 40) * 0x1.0p-24
    }

    /// Standard normal (Box-Muller, one value per two draws, no cached state).
    @inlinable public mutating func normal() -> Double {
        let a = next(), b = next()
        return standardNormal(a, b)
    }

    /// Normal with the given mean and standard deviation.
    @inlinable public mutating func normal(mean: Double, std: Double) -> Double {
        mean + std * normal()
    }

    /// Unbiased integer in 0..<bound (Lemire's multiply-and-reject). `bound` must be > 0.
    @inlinable public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "int(below:) needs a positive bound")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Fisher-Yates shuffle with our own draws (never the standard library's algorithm,
    /// whose use of the generator is not specified).
    @inlinable public mutating func shuffle<T>(_ a: inout [T]) {
        var i = a.count - 1
        while i > 0 {
            let j = int(below: i + 1)
            if i != j { a.swapAt(i, j) }
            i -= 1
        }
    }

    /// A permutation of 0..<n.
    @inlinable public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }
}

/// Stateless counter-based draws keyed by (seed, stream, index, lane).
///
/// `bits` absorbs each key word through `mix64` with distinct odd constants, so any change of
/// any word changes every output bit with probability ~1/2. Use `stream` for the purpose
/// (e.g. "formed conductance of array 3") and `index` for the element (e.g. row * cols + col);
/// `lane` separates several draws for one element (e.g. the two uniforms of Box-Muller).
public enum CounterRandom {
    @inlinable @inline(__always)
    public static func bits(seed: UInt64, stream: UInt64, index: UInt64, lane: UInt64 = 0) -> UInt64 {
        bits(key(key(seed: seed, stream: stream), index: index), lane: lane)
    }

    /// `bits` absorbs its words one at a time, so the state after a prefix of them is a key that
    /// draws sharing that prefix reuse (e.g. every cell of one array read): `key(seed:stream:)`,
    /// then `key(_:index:)`, then `bits(_:lane:)` give `bits(seed:stream:index:lane:)` exactly.
    @inlinable @inline(__always)
    public static func key(seed: UInt64, stream: UInt64) -> UInt64 {
        mix64(mix64(seed &+ 0x9E37_79B9_7F4A_7C15) ^ (stream &* 0xD6E8_FEB8_6659_FD93) ^ 0x5851_F42D_4C95_7F2D)
    }

    @inlinable @inline(__always)
    public static func key(_ streamKey: UInt64, index: UInt64) -> UInt64 {
        mix64(streamKey ^ (index &* 0xA076_1D64_78BD_642F) ^ 0x1405_7B7E_F767_814F)
    }

    @inlinable @inline(__always)
    public static func bits(_ indexKey: UInt64, lane: UInt64) -> UInt64 {
        mix64(indexKey ^ (lane &* 0xE703_7ED1_A0B4_28DB) ^ 0x2545_F491_4F6C_DD1D)
    }

    /// `normal(seed:stream:index:lane:)` from the key of (seed, stream, index).
    @inlinable public static func normal(_ indexKey: UInt64, lane: UInt64 = 0) -> Double {
        standardNormal(bits(indexKey, lane: 2 &* lane), bits(indexKey, lane: 2 &* lane &+ 1))
    }

    /// Uniform Double in [0, 1).
    @inlinable public static func uniform(seed: UInt64, stream: UInt64, index: UInt64, lane: UInt64 = 0) -> Double {
        unitDouble(bits(seed: seed, stream: stream, index: index, lane: lane))
    }

    /// Standard normal from lanes 2*lane and 2*lane+1.
    @inlinable public static func normal(seed: UInt64, stream: UInt64, index: UInt64, lane: UInt64 = 0) -> Double {
        normal(key(key(seed: seed, stream: stream), index: index), lane: lane)
    }

    /// A stream number from a purpose tag and up to three coordinates (e.g. array, kind, read).
    @inlinable public static func stream(_ tag: UInt64, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0) -> UInt64 {
        mix64(mix64(mix64(mix64(tag ^ 0x3C6E_F372_FE94_F82B) ^ a) ^ b) ^ c)
    }
}
