import XCTest
@testable import ModelFile

/// Exhaustive small-file checks: every prefix, and every byte set to 0xFF/0 (CRCs repaired).
final class ExhaustiveTests: XCTestCase {
    func testEveryPrefixIsRejected() {
        let b = smallFile()
        for n in 0..<b.count {
            XCTAssertThrowsError(try ModelBundle.decode(Array(b[0..<n])), "prefix \(n)")
        }
    }

    func testEveryByteSetWithRepairedCRCsThrowsTypedOrDecodes() {
        let b = smallFile()
        var accepted = 0, rejected = 0
        for i in 0..<b.count {
            var m = b
            m[i] = m[i] == 0xFF ? 0 : 0xFF
            Container.recomputeChecksums(&m)
            do { _ = try ModelBundle.decode(m); accepted += 1 } catch is ModelFileError { rejected += 1 } catch { XCTFail("untyped \(error)") }
        }
        XCTAssertEqual(accepted + rejected, b.count)
        XCTAssertGreaterThan(rejected, b.count / 4)
    }
}
