import XCTest
import Randomness
@testable import FixedPoint

final class BitPackingTests: XCTestCase {
    /// Oracle: byte j = sum over its 8 bits of bit(8j + p) · 2^p, built MSB-first by doubling.
    private func referenceBytes(_ bits: [Bool]) -> [UInt8] {
        stride(from: 0, to: bits.count, by: 8).map { start in
            var value = 0
            for p in stride(from: 7, through: 0, by: -1) {
                value = value * 2 + ((start + p < bits.count && bits[start + p]) ? 1 : 0)
            }
            return UInt8(value)
        }
    }

    private func referenceWords(_ bits: [Bool]) -> [UInt32] {
        stride(from: 0, to: bits.count, by: 32).map { start in
            var value: UInt64 = 0
            for p in stride(from: 31, through: 0, by: -1) {
                value = value * 2 + ((start + p < bits.count && bits[start + p]) ? 1 : 0)
            }
            return UInt32(value)
        }
    }

    func testDocumentedBitOrder() throws {
        XCTAssertEqual(BitPacking.pack([]), [])
        XCTAssertEqual(BitPacking.pack([true]), [0x01])
        XCTAssertEqual(BitPacking.pack([false, true]), [0x02])
        XCTAssertEqual(BitPacking.pack([true, false, false, false, false, false, false, false]), [0x01])
        XCTAssertEqual(BitPacking.pack([false, false, false, false, false, false, false, true]), [0x80])
        XCTAssertEqual(BitPacking.pack([true, false, false, false, false, false, false, false, false, true]), [0x01, 0x02])
        XCTAssertEqual(BitPacking.pack(Array(repeating: true, count: 9)), [0xFF, 0x01])
        XCTAssertEqual(BitPacking.pack([true, true, false, true]), [0x0B])
        XCTAssertEqual(BitPacking.packWords([true] + Array(repeating: false, count: 30) + [true, false, true]), [0x8000_0001, 0x2])
        XCTAssertEqual(try BitPacking.unpack([0x05], count: 3), [true, false, true])
        XCTAssertEqual(try BitPacking.unpackWords([0x8000_0000], count: 32), Array(repeating: false, count: 31) + [true])
    }

    func testRoundTripsAllLengths() throws {
        var g = Xoshiro256StarStar(seed: 40)
        for n in 0...100 {
            for density in [0, 1, 2, 3] {            // all false, sparse, half, all true
                let bits = (0..<n).map { _ in density == 3 ? true : (density == 0 ? false : g.int(below: density == 1 ? 8 : 2) == 0) }
                let bytes = BitPacking.pack(bits)
                XCTAssertEqual(bytes, referenceBytes(bits), "n = \(n)")
                XCTAssertEqual(bytes.count, (n + 7) / 8)
                XCTAssertEqual(try BitPacking.unpack(bytes, count: n), bits)
                let words = BitPacking.packWords(bits)
                XCTAssertEqual(words, referenceWords(bits), "n = \(n)")
                XCTAssertEqual(words.count, (n + 31) / 32)
                XCTAssertEqual(try BitPacking.unpackWords(words, count: n), bits)
            }
        }
    }

    func testRejectsBadInput() {
        XCTAssertThrowsError(try BitPacking.unpack([], count: -1)) { XCTAssertEqual($0 as? BitPackingError, .negativeCount(-1)) }
        XCTAssertThrowsError(try BitPacking.unpack([0], count: 0)) { XCTAssertEqual($0 as? BitPackingError, .elementCountMismatch(expected: 0, actual: 1)) }
        XCTAssertThrowsError(try BitPacking.unpack([0], count: 9)) { XCTAssertEqual($0 as? BitPackingError, .elementCountMismatch(expected: 2, actual: 1)) }
        XCTAssertThrowsError(try BitPacking.unpack([0, 0, 0], count: 16)) { XCTAssertEqual($0 as? BitPackingError, .elementCountMismatch(expected: 2, actual: 3)) }
        XCTAssertThrowsError(try BitPacking.unpackWords([0], count: 33)) { XCTAssertEqual($0 as? BitPackingError, .elementCountMismatch(expected: 2, actual: 1)) }
        XCTAssertThrowsError(try BitPacking.unpack([], count: Int.min))
        XCTAssertThrowsError(try BitPacking.unpack([], count: Int.max))
        // Every padding bit of every partial last byte / word is checked.
        for n in 1...40 where n % 8 != 0 {
            for p in (n % 8)..<8 {
                var bytes = [UInt8](repeating: 0xFF, count: (n + 7) / 8)
                bytes[bytes.count - 1] = UInt8((1 << (n % 8)) - 1) | UInt8(1 << p)
                XCTAssertThrowsError(try BitPacking.unpack(bytes, count: n)) {
                    XCTAssertEqual($0 as? BitPackingError, .nonzeroPadding(elementIndex: bytes.count - 1))
                }
            }
        }
        for n in [1, 5, 31, 33, 63] {
            for p in (n % 32)..<32 {
                var words = [UInt32](repeating: 0, count: (n + 31) / 32)
                words[words.count - 1] = UInt32(1) << p
                XCTAssertThrowsError(try BitPacking.unpackWords(words, count: n))
            }
        }
        // A full last byte has no padding: 0xFF with count 8 is fine.
        XCTAssertEqual(try? BitPacking.unpack([0xFF], count: 8), Array(repeating: true, count: 8))
    }
}
