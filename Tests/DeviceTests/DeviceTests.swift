import XCTest
@testable import Device

// Placeholder so the test target exists; the module's issue replaces it with real tests.
final class DevicePlaceholderTests: XCTestCase {}
