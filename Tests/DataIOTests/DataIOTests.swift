import XCTest
@testable import DataIO

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class DataIOPlaceholderTests: XCTestCase {}
