// Bit masks packed into bytes or 32-bit words.
//
// Bit order (both forms): LSB-first. Bit i of the mask lives in element i / W (W = 8 or 32) at
// bit position i % W, where position 0 is the least significant bit (value 1).
// Example: [true, false, false, false, false, false, false, false, false, true] -> [0x01, 0x02].
// Unused high bits of the last element ("padding") are zero; unpack rejects anything else.

/// Why packed bits could not be unpacked.
public enum BitPackingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The requested bit count is negative.
    case negativeCount(Int)
    /// The number of bytes (or words) is not exactly `ceil(count / W)`.
    case elementCountMismatch(expected: Int, actual: Int)
    /// A padding bit above `count` in the last element is set.
    case nonzeroPadding(elementIndex: Int)

    public var description: String {
        switch self {
        case .negativeCount(let n):
            return "BitPacking: bit count \(n) is negative"
        case .elementCountMismatch(let expected, let actual):
            return "BitPacking: expected \(expected) packed elements, got \(actual)"
        case .nonzeroPadding(let i):
            return "BitPacking: padding bits of element \(i) are not zero"
        }
    }
}

public enum BitPacking {
    /// Number of `W`-bit elements that hold `bits` bits: `ceil(bits / W)` (0 for `bits <= 0`).
    @inlinable
    public static func elementCount(bits: Int, width: Int) -> Int {
        bits <= 0 ? 0 : bits / width + (bits % width == 0 ? 0 : 1)
    }

    /// Packs LSB-first into bytes: bit i -> byte i/8, bit position i%8. Padding bits are zero.
    @inlinable
    public static func pack(_ bits: [Bool]) -> [UInt8] { _pack(bits, as: UInt8.self) }

    /// Inverse of `pack`. Throws unless `bytes.count == ceil(count / 8)` and the padding is zero.
    @inlinable
    public static func unpack(_ bytes: [UInt8], count: Int) throws(BitPackingError) -> [Bool] {
        try _unpack(bytes, count: count)
    }

    /// Packs LSB-first into 32-bit words: bit i -> word i/32, bit position i%32.
    @inlinable
    public static func packWords(_ bits: [Bool]) -> [UInt32] { _pack(bits, as: UInt32.self) }

    /// Inverse of `packWords`. Throws unless `words.count == ceil(count / 32)` and padding is zero.
    @inlinable
    public static func unpackWords(_ words: [UInt32], count: Int) throws(BitPackingError) -> [Bool] {
        try _unpack(words, count: count)
    }

    @inlinable
    internal static func _pack<W: FixedWidthInteger & UnsignedInteger>(_ bits: [Bool], as: W.Type) -> [W] {
        let width = W.bitWidth
        var out = [W](repeating: 0, count: elementCount(bits: bits.count, width: width))
        for i in 0..<bits.count where bits[i] {
            out[i / width] |= (1 as W) << (i % width)
        }
        return out
    }

    @inlinable
    internal static func _unpack<W: FixedWidthInteger & UnsignedInteger>(
        _ packed: [W], count: Int
    ) throws(BitPackingError) -> [Bool] {
        guard count >= 0 else { throw .negativeCount(count) }
        let width = W.bitWidth
        let expected = elementCount(bits: count, width: width)
        guard packed.count == expected else {
            throw .elementCountMismatch(expected: expected, actual: packed.count)
        }
        let used = count % width
        if used != 0 && (packed[expected - 1] >> used) != 0 {
            throw .nonzeroPadding(elementIndex: expected - 1)
        }
        var out = [Bool](repeating: false, count: count)
        for i in 0..<count {
            out[i] = (packed[i / width] >> (i % width)) & 1 != 0
        }
        return out
    }
}
