import XCTest
@testable import Verify

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class VerifyPlaceholderTests: XCTestCase {}
