import XCTest
@testable import DataIO

final class ChecksumTests: XCTestCase {
    func testCRC32CheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
        // Published: CRC-32 of "The quick brown fox jumps over the lazy dog" = 0x414FA339.
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        // Non-contiguous collection path gives the same value.
        XCTAssertEqual(CRC32.checksum("123456789".utf8), 0xCBF4_3926)
    }

    func testCRC32IncrementalAndRange() {
        let bytes = Array("xx123456789yy".utf8)
        XCTAssertEqual(CRC32.checksum(bytes, range: 2..<11), 0xCBF4_3926)
        var s = CRC32.State()
        s.update(Array("1234".utf8)); s.update(Array("".utf8)); s.update(Array("56789".utf8))
        XCTAssertEqual(s.value, 0xCBF4_3926)
        XCTAssertNotEqual(CRC32.checksum(Array("123456780".utf8)), 0xCBF4_3926)
    }

    func testSHA256Vectors() {
        XCTAssertEqual(SHA256.hex(SHA256.hash([UInt8]())),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(SHA256.hash(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(SHA256.hash(Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8))),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testSHA256MillionA() {
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        XCTAssertEqual(SHA256.hex(h.finalize()),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256IncrementalSplitsAgree() {
        let msg = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let whole = SHA256.hash(msg)
        for split in [0, 1, 55, 56, 63, 64, 65, 128, 299, 300] {
            var h = SHA256()
            h.update(msg[0..<split]); h.update(msg[split...])
            XCTAssertEqual(h.finalize(), whole, "split \(split)")
        }
        // finalize does not consume: calling it twice gives the same digest.
        var h = SHA256(); h.update(msg)
        XCTAssertEqual(h.finalize(), h.finalize())
        XCTAssertEqual(SHA256.hex([0x00, 0xAB, 0xFF]), "00abff")
    }
}
