import XCTest
@testable import Training

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class TrainingPlaceholderTests: XCTestCase {}
