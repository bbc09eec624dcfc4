import XCTest
@testable import Device

/// `differentialCodes` (what freeze stores and the model reader regenerates) is the quantization
/// of `differentialWeights` (what training used), weight for weight.
final class DifferentialCodesTests: XCTestCase {
    func testCodesAreTheQuantizedDifferentialWeights() throws {
        for profile in TargetProfiles.builtin {
            let layers = [LayerShape(name: "a", fanIn: 9, fanOut: 64), LayerShape(name: "b", fanIn: 700, fanOut: 20)]
            let pl = try CrossbarMapper.place(layers, arrayRows: profile.arrayRows, arrayCols: profile.arrayCols)
            let dev = try StatisticalDevice(validating: profile, seed: 42)
            for l in layers.indices {
                let (on, off) = differentialWeights(placement: pl, layer: l, source: dev, read: nil)
                for bits in [3, 8] {
                    let top = Double((1 << (bits - 1)) - 1)
                    let lsb = Double(on.map { abs($0) }.max()!) / top
                    let c = try XCTUnwrap(differentialCodes(placement: pl, layer: l, source: dev, lsbMicroSiemens: lsb, bits: bits))
                    XCTAssertEqual(c.on, on.map { Int8(min(max((Double($0) / lsb).rounded(.toNearestOrAwayFromZero), -top), top)) })
                    XCTAssertEqual(c.off, off.map { Int8(min(max((Double($0) / lsb).rounded(.toNearestOrAwayFromZero), -top), top)) })
                    XCTAssertEqual(c.on.map { abs(Int($0)) }.max(), Int(top))
                }
            }
        }
    }

    func testBadArgumentsGiveNilNotATrap() throws {
        let pl = try CrossbarMapper.place([LayerShape(name: "a", fanIn: 4, fanOut: 2)], arrayRows: 8, arrayCols: 8)
        let dev = StatisticalDevice(profile: TargetProfiles.rram40nmTaOx, seed: 1)
        XCTAssertNil(differentialCodes(placement: pl, layer: 1, source: dev, lsbMicroSiemens: 1, bits: 8))
        XCTAssertNil(differentialCodes(placement: pl, layer: 0, source: dev, lsbMicroSiemens: 0, bits: 8))
        XCTAssertNil(differentialCodes(placement: pl, layer: 0, source: dev, lsbMicroSiemens: .nan, bits: 8))
        XCTAssertNil(differentialCodes(placement: pl, layer: 0, source: dev, lsbMicroSiemens: 1, bits: 9))
        XCTAssertEqual(differentialCode(.nan, lsb: 1, top: 127), 0)
        XCTAssertEqual(differentialCode(.infinity, lsb: 1, top: 127), 127)
        XCTAssertEqual(differentialCode(-.infinity, lsb: 1, top: 127), -127)
        XCTAssertEqual(differentialCode(2.5, lsb: 1, top: 127), 3)
        XCTAssertEqual(differentialCode(-2.5, lsb: 1, top: 127), -3)
    }
}
