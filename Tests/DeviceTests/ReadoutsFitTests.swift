import XCTest
@testable import Device

/// Synthetic readouts ([reads, cells] µS) of arrays 0..<arrays of a statistical device, cell
/// index (array * rows + row) * cols + col, as `edgecli device sample --out` writes them.
func syntheticReadouts(_ d: StatisticalDevice, arrays: Int, reads: Int) -> (set: [Float], reset: [Float], cells: Int) {
    let per = d.rows * d.cols, cells = arrays * per
    var set = [Float](repeating: 0, count: reads * cells), reset = set
    for a in 0..<arrays {
        for k in 0..<reads {
            let f = d.sampleArray(array: a, state: .formed, read: k, threads: 2)
            let r = d.sampleArray(array: a, state: .reset, read: k, threads: 2)
            for i in 0..<per { set[k * cells + a * per + i] = Float(f[i]); reset[k * cells + a * per + i] = Float(r[i]) }
        }
    }
    return (set, reset, cells)
}

final class ReadoutsFitTests: XCTestCase {
    func testReadoutsServeTheSameInterfaceAsTheModel() throws {
        let p = TargetProfiles.rramLowPrecision  // 128 x 128
        let d = StatisticalDevice(profile: p, seed: 21)
        let s = syntheticReadouts(d, arrays: 2, reads: 3)
        let m = try MeasuredReadouts(set: s.set, setShape: [3, s.cells], reset: s.reset, resetShape: [3, s.cells],
                                     arrayRows: 128, arrayCols: 128)
        XCTAssertEqual(m.cells, 2 * 128 * 128)
        func check(_ src: some ConductanceSource) {
            for (a, r, c) in [(0, 0, 0), (1, 127, 127), (1, 5, 77), (0, 64, 3)] {
                for k in 0..<3 {
                    for st in CellState.allCases {
                        let model = Double(Float(d.conductance(array: a, row: r, col: c, state: st, read: k)))
                        XCTAssertEqual(src.conductance(array: a, row: r, col: c, state: st, read: k), model)
                    }
                }
                // Nominal = mean over the reads.
                let mean = (0..<3).map { Double(Float(d.conductance(array: a, row: r, col: c, state: .formed, read: $0))) }.reduce(0, +) / 3
                XCTAssertEqual(src.conductance(array: a, row: r, col: c, state: .formed, read: nil), mean, accuracy: 1e-9 * max(1, mean))
            }
        }
        check(m)
        // Wrap-around: array 2 is readout cells 0..<16384 again; read 3 is read 0 again.
        XCTAssertEqual(m.conductance(array: 2, row: 1, col: 2, state: .formed, read: 0), m.conductance(array: 0, row: 1, col: 2, state: .formed, read: 0))
        XCTAssertEqual(m.conductance(array: 0, row: 1, col: 2, state: .reset, read: 3), m.conductance(array: 0, row: 1, col: 2, state: .reset, read: 0))
        XCTAssertEqual(m.cellIndex(array: 1, row: 2, col: 3), (1 * 128 + 2) * 128 + 3)
        XCTAssertEqual(m.cellIndex(array: -1, row: 0, col: 0), 128 * 128)  // negative wraps into range
        // A placement's weights read through the protocol agree between model and readouts.
        let pl = try CrossbarMapper.place([LayerShape(name: "fc", fanIn: 100, fanOut: 30)], arrayRows: 128, arrayCols: 128)
        let w1 = differentialWeights(placement: pl, layer: 0, source: m, read: 1)
        let w2 = differentialWeights(placement: pl, layer: 0, source: d, read: 1)
        for i in w1.on.indices { XCTAssertEqual(w1.on[i], w2.on[i], accuracy: 1e-4 * max(1, abs(w2.on[i]))) }
    }

    func testUnitConversion() throws {
        let v: [Float] = [50e-6, 1e-6, 0.1e-6, 2e-6]  // siemens, [2 reads, 2 cells]
        let m = try MeasuredReadouts(set: v, setShape: [2, 2], reset: v, resetShape: [2, 2], arrayRows: 1, arrayCols: 2, unit: .siemens)
        XCTAssertEqual(m.conductance(array: 0, row: 0, col: 0, state: .formed, read: 0), 50, accuracy: 1e-4)
        XCTAssertEqual(m.conductance(array: 0, row: 0, col: 1, state: .formed, read: 1), 2, accuracy: 1e-5)
        XCTAssertEqual(try ConductanceUnit.parse("S"), .siemens)
        XCTAssertEqual(try ConductanceUnit.parse("µS"), .microSiemens)
        XCTAssertEqual(ConductanceUnit.milliSiemens.toMicroSiemens, 1000)
        XCTAssertThrowsError(try ConductanceUnit.parse("ohm")) { XCTAssertTrue("\($0)".contains("ohm")) }
    }

    func testBadReadoutsAreRejectedWithTheirName() {
        let ok: [Float] = [1, 2, 3, 4, 5, 6]
        func err(_ set: [Float], _ ss: [Int], _ reset: [Float], _ rs: [Int]) -> String {
            do {
                _ = try MeasuredReadouts(set: set, setShape: ss, reset: reset, resetShape: rs, arrayRows: 2, arrayCols: 2,
                                         source: ("chip-set.npy", "chip-reset.npy"))
                return ""
            } catch { return "\(error)" }
        }
        XCTAssertTrue(err(ok, [6], ok, [2, 3]).contains("chip-set.npy: readouts must have shape [reads, cells]"))
        XCTAssertTrue(err(ok, [2, 3], ok, [1, 2, 3]).contains("chip-reset.npy"))
        XCTAssertTrue(err(ok, [2, 4], ok, [2, 3]).contains("does not match"))
        XCTAssertTrue(err(ok, [2, 3], ok, [3, 2]).contains("same cells"))
        XCTAssertTrue(err(ok, [0, 3], [], [0, 3]).contains(">= 1 read"))
        var nan = ok; nan[4] = .nan
        let e = err(ok, [2, 3], nan, [2, 3])
        XCTAssertTrue(e.contains("chip-reset.npy") && e.contains("read 1, cell 1") && e.contains("not finite"), e)
        var inf = ok; inf[0] = .infinity
        XCTAssertTrue(err(inf, [2, 3], ok, [2, 3]).contains("not finite"))
        XCTAssertTrue(err(ok, [Int.max, 2], ok, [2, 3]).contains("does not match"))  // overflow-checked
    }

    func testFitRecoversTheGeneratingParameters() throws {
        let truth = TargetProfiles.rram40nmTaOx
        let d = StatisticalDevice(profile: truth, seed: 31)
        let s = syntheticReadouts(d, arrays: 1, reads: 4)
        let m = try MeasuredReadouts(set: s.set, setShape: [4, s.cells], reset: s.reset, resetShape: [4, s.cells],
                                     arrayRows: 512, arrayCols: 512)
        // Start from a deliberately different base: only geometry and V_form/sigma are kept.
        var base = TargetProfiles.rram40nmTaOx
        base.formed = ConductanceDistribution(shape: .normal, meanMicroSiemens: 10, stdMicroSiemens: 1)
        base.reset = ConductanceDistribution(shape: .normal, meanMicroSiemens: 5, stdMicroSiemens: 1)
        base.readNoise = ReadNoise(relative: 0.2, absoluteMicroSiemens: 1)
        let r = try ProfileFitter.fit(m, base: base, name: "chip-fit")
        let f = r.profile
        XCTAssertEqual(f.name, "chip-fit")
        XCTAssertNoThrow(try f.validate())
        XCTAssertEqual(r.formedFraction, truth.forming.expectedFormedFraction, accuracy: 0.003)
        XCTAssertEqual(f.forming.breakdownMeanVolts, 2.5, accuracy: 0.02)
        XCTAssertEqual(f.forming.expectedFormedFraction, r.formedFraction, accuracy: 1e-6)
        XCTAssertEqual(f.formed.shape, .lognormal)
        XCTAssertEqual(f.formed.meanMicroSiemens, 75, accuracy: 0.75)
        XCTAssertEqual(f.formed.stdMicroSiemens, 25, accuracy: 0.75)
        XCTAssertEqual(f.reset.shape, .lognormal)
        XCTAssertEqual(f.reset.meanMicroSiemens, 1.0, accuracy: 0.02)
        XCTAssertEqual(f.reset.stdMicroSiemens, 0.5, accuracy: 0.02)
        XCTAssertEqual(f.pristine.meanMicroSiemens, 0.1, accuracy: 0.005)
        XCTAssertEqual(f.pristine.stdMicroSiemens, 0.05, accuracy: 0.005)
        XCTAssertTrue(r.readNoiseEstimated)
        XCTAssertEqual(f.readNoise.relative, 0.02, accuracy: 0.001)
        XCTAssertEqual(f.readNoise.absoluteMicroSiemens, 0.02, accuracy: 0.003)
        XCTAssertEqual(r.stuckOnCells, 0)
        XCTAssertNil(f.stuckFaults)
        // The threshold separates pristine (~0.1 µS) from formed (tens of µS) cells.
        XCTAssertGreaterThan(r.formedThresholdMicroSiemens, 0.3)
        XCTAssertLessThan(r.formedThresholdMicroSiemens, 20)
    }

    func testFitFindsNormalShapeStuckOnCellsAndKeepsNoiseWithOneRead() throws {
        let truth = TargetProfiles.rramLowPrecision
        let d = StatisticalDevice(profile: truth, seed: 32)
        let s = syntheticReadouts(d, arrays: 8, reads: 1)
        let m = try MeasuredReadouts(set: s.set, setShape: [1, s.cells], reset: s.reset, resetShape: [1, s.cells],
                                     arrayRows: 128, arrayCols: 128)
        var base = truth
        base.readNoise = ReadNoise(relative: 0.123, absoluteMicroSiemens: 0.456)
        let r = try ProfileFitter.fit(m, base: base)
        XCTAssertEqual(r.profile.name, truth.name + "-fit")
        XCTAssertEqual(r.profile.formed.shape, .normal)
        XCTAssertFalse(r.readNoiseEstimated)
        XCTAssertEqual(r.profile.readNoise, base.readNoise)
        // Stuck-off cells look unformed: fraction = Phi(1) * (1 - 0.005).
        XCTAssertEqual(r.formedFraction, normalCDF(1) * 0.995, accuracy: 0.008)
        let stuck = try XCTUnwrap(r.profile.stuckFaults)
        XCTAssertEqual(stuck.stuckOnFraction, 0.005, accuracy: 0.0015)
        XCTAssertEqual(r.profile.formed.meanMicroSiemens, 40, accuracy: 1.5)
    }

    /// A memory without forming (every cell "formed"): the unimodal branch keeps the forming model.
    func testFitOfAnAllFormedMemoryKeepsTheFormingModel() throws {
        let p = TargetProfiles.pcmLike
        let d = StatisticalDevice(profile: p, seed: 33)
        let s = syntheticReadouts(d, arrays: 1, reads: 2)
        let m = try MeasuredReadouts(set: s.set, setShape: [2, s.cells], reset: s.reset, resetShape: [2, s.cells],
                                     arrayRows: 256, arrayCols: 256)
        let r = try ProfileFitter.fit(m, base: p)
        XCTAssertEqual(r.formedFraction, 1)
        XCTAssertEqual(r.profile.forming, p.forming)
        XCTAssertEqual(r.profile.forming.expectedFormedFraction, 1)
        XCTAssertNil(r.profile.drift)  // the drift-aged values are the fitted distributions
        XCTAssertTrue(r.notes.contains { $0.contains("drift") })
        // Fitted formed mean = mean of the drift-aged values, as sampled.
        let mask = d.formedMask(array: 0)
        XCTAssertTrue(mask.allSatisfy { $0 })
        let aged = Moments(d.sampleArray(array: 0, state: .formed, read: nil))
        XCTAssertEqual(r.profile.formed.meanMicroSiemens, aged.mean, accuracy: aged.mean * 0.002)
        XCTAssertLessThan(r.profile.formed.meanMicroSiemens, 20 * 0.85)  // drift lowered it from 20 µS
    }

    func testFitErrors() throws {
        let v: [Float] = [0.1, 0.1, 0.1, 0.1]
        let m = try MeasuredReadouts(set: v, setShape: [1, 4], reset: v, resetShape: [1, 4], arrayRows: 2, arrayCols: 2)
        XCTAssertThrowsError(try ProfileFitter.fit(m, base: TargetProfiles.rram40nmTaOx, formedThreshold: 1)) {
            XCTAssertTrue("\($0)".contains("no cell is above the formed threshold"))
        }
        XCTAssertThrowsError(try ProfileFitter.fit(m, base: TargetProfiles.rram40nmTaOx, formedThreshold: -1))
    }

    func testOtsuSeparatesTwoClustersAndReportsUnimodal() {
        let two = Array(repeating: 0.1, count: 100) + Array(repeating: 50.0, count: 900)
        let (t, bi) = ProfileFitter.otsu(two)
        XCTAssertTrue(bi)
        XCTAssertGreaterThan(t, 0.1)
        XCTAssertLessThan(t, 50)
        // Middle of the gap in log space, after flooring at 1% of the mean (45.01 µS).
        let floor = 0.01 * (100 * 0.1 + 900 * 50) / 1000
        XCTAssertEqual(log(t), (log(floor) + log(50)) / 2, accuracy: 0.05)
        let one = (0..<1000).map { 40 + Double($0 % 17) }
        XCTAssertFalse(ProfileFitter.otsu(one).bimodal)
        XCTAssertLessThan(ProfileFitter.otsu(one).threshold, 40)
    }
}
