import XCTest
@testable import Segmentation

final class GrayImageTests: XCTestCase {
    func testRowMajorLayout() {
        let img = GrayImage(width: 3, height: 2, pixels: [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(img.pixels[1 * img.width + 2], 5)
        XCTAssertEqual(img.width * img.height, img.pixels.count)
    }
}
