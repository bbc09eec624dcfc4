import XCTest
@testable import Export

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class ExportPlaceholderTests: XCTestCase {}
