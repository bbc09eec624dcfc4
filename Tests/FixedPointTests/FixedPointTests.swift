import XCTest
@testable import FixedPoint

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class FixedPointPlaceholderTests: XCTestCase {}
