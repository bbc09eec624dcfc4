import XCTest
import Export
import ModelFile

/// Export sees resolved codes: a model file with generated weights (format 1.1) exports exactly
/// the images, C source and programming plan of the same model with explicit codes.
final class GeneratedWeightsExportTests: XCTestCase {
    func testGeneratedWeightsExportLikeExplicitCodes() throws {
        for kind in SampleGenerator.allCases {
            let g = ModelSamples.generated(ModelSamples.fashionCNN(seed: 4), kind, seed: 2)
            var e = g
            e.metadata.weightGenerators = []
            e.metadata.deviceProfile = []
            let fromG = try Exporter.files(for: try ModelBundle.decode(try g.encode())).files
            let fromE = try Exporter.files(for: try ModelBundle.decode(try e.encode())).files
            XCTAssertEqual(fromG.map(\.path), fromE.map(\.path), "\(kind)")
            XCTAssertGreaterThan(fromG.count, 8)
            for (a, b) in zip(fromG, fromE) where !a.path.contains("manifest") {
                XCTAssertEqual(a.bytes, b.bytes, "\(kind): \(a.path)")
            }
        }
    }
}
