import XCTest
import Foundation
@testable import DataIO

final class JSONTextTests: XCTestCase {
    func testEscapesAndParsesBack() throws {
        XCTAssertEqual(jsonStringLiteral("a\"b\\c\nd\re\tf\u{1}g µ"), "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g µ\"")
        for s in ["", "plain", "quote\" back\\slash", "ctl \u{0}\u{1f}\u{7f}", "tab\t nl\n cr\r", "µS – 漢字 🙂"] {
            // an independent parser reads back the same string
            let parsed = try JSONSerialization.jsonObject(with: Data(("[" + jsonStringLiteral(s) + "]").utf8)) as? [String]
            XCTAssertEqual(parsed, [s])
        }
    }
}
