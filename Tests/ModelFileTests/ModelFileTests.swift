import XCTest
@testable import ModelFile

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class ModelFilePlaceholderTests: XCTestCase {}
