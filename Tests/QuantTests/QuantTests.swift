import XCTest
@testable import Quant

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class QuantPlaceholderTests: XCTestCase {}
