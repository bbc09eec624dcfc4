import XCTest
import Randomness
@testable import Device

/// Statistics of a full 512x512 array against values derived analytically from the profile.
final class DeviceModelTests: XCTestCase {
    let profile = TargetProfiles.rram40nmTaOx
    lazy var device = StatisticalDevice(profile: profile, seed: 2026)

    /// Sample once per test class run (the expensive part), shared by the statistics tests.
    struct Sample {
        var mask: [Bool]
        var formed: [Double]
        var reset: [Double]
        var read0: [Double]
        var read1: [Double]
        var reset0: [Double]
    }
    nonisolated(unsafe) static var cache: Sample?

    func sample() -> Sample {
        if let s = Self.cache { return s }
        let d = device
        let s = Sample(mask: d.formedMask(array: 0, threads: 2),
                       formed: d.sampleArray(array: 0, state: .formed, read: nil, threads: 2),
                       reset: d.sampleArray(array: 0, state: .reset, read: nil, threads: 2),
                       read0: d.sampleArray(array: 0, state: .formed, read: 0, threads: 2),
                       read1: d.sampleArray(array: 0, state: .formed, read: 1, threads: 2),
                       reset0: d.sampleArray(array: 0, state: .reset, read: 0, threads: 2))
        Self.cache = s
        return s
    }

    func testFormedFractionMatchesPhi() {
        let s = sample()
        XCTAssertEqual(s.mask.count, 512 * 512)
        let frac = Double(s.mask.filter { $0 }.count) / Double(s.mask.count)
        // Phi((3.0 - 2.5) / 0.3) = Phi(5/3) = 0.952210 (table value); binomial sd 0.00042.
        XCTAssertEqual(frac, 0.952_210, accuracy: 0.003)
    }

    func testFormedResetPristineMomentsMatchProfile() {
        let s = sample()
        var fo: [Double] = [], re: [Double] = [], pr: [Double] = [], prReset: [Double] = []
        for i in s.mask.indices {
            if s.mask[i] { fo.append(s.formed[i]); re.append(s.reset[i]) } else { pr.append(s.formed[i]); prReset.append(s.reset[i]) }
        }
        let mf = Moments(fo), mr = Moments(re), mp = Moments(pr)
        XCTAssertEqual(mf.mean, 75, accuracy: 0.75)      // 1% (standard error 0.05)
        XCTAssertEqual(mf.std, 25, accuracy: 0.75)       // 3%
        XCTAssertEqual(mr.mean, 1.0, accuracy: 0.01)
        XCTAssertEqual(mr.std, 0.5, accuracy: 0.015)
        XCTAssertEqual(mp.mean, 0.1, accuracy: 0.003)    // ~12.5k cells
        XCTAssertEqual(mp.std, 0.05, accuracy: 0.003)
        // Lognormal shape: ln G is normal with mu = ln 75 - s^2/2, s^2 = ln(1 + (25/75)^2).
        let s2 = log(1 + (25.0 / 75) * (25.0 / 75))
        let logs = Moments(fo.map { log($0) })
        XCTAssertEqual(logs.mean, log(75) - s2 / 2, accuracy: 0.003)
        XCTAssertEqual(logs.std, s2.squareRoot(), accuracy: 0.003)
        // Cells that never formed stay pristine in both states.
        XCTAssertEqual(pr, prReset)
        // Every formed cell is far above every reset cell on average (the on/off window).
        XCTAssertGreaterThan(mf.mean / mr.mean, 50)
    }

    func testReadNoiseHasTheProfilesSize() {
        let s = sample()
        // Formed cells, formed state: (read - G) / G has std sqrt(rel^2 + abs^2 E[1/G^2]).
        var rel: [Double] = [], inv2 = 0.0, n = 0.0
        var absReset: [Double] = [], g2Reset = 0.0
        for i in s.mask.indices where s.mask[i] {
            rel.append((s.read0[i] - s.formed[i]) / s.formed[i])
            inv2 += 1 / (s.formed[i] * s.formed[i]); n += 1
            absReset.append(s.reset0[i] - s.reset[i]); g2Reset += s.reset[i] * s.reset[i]
        }
        let r = Moments(rel)
        let expectedRel = (0.02 * 0.02 + 0.02 * 0.02 * inv2 / n).squareRoot()
        XCTAssertEqual(r.mean, 0, accuracy: 0.0003)               // unbiased
        XCTAssertEqual(r.std, expectedRel, accuracy: expectedRel * 0.02)
        // Reset state: absolute deviations with std sqrt(rel^2 E[G^2] + abs^2).
        let a = Moments(absReset)
        let expectedAbs = (0.02 * 0.02 * g2Reset / n + 0.02 * 0.02).squareRoot()
        XCTAssertEqual(a.std, expectedAbs, accuracy: expectedAbs * 0.03)
        // Reads differ from each other and repeat exactly when asked again.
        XCTAssertNotEqual(s.read0, s.read1)
        XCTAssertEqual(device.conductance(array: 0, row: 7, col: 9, state: .formed, read: 1), s.read1[7 * 512 + 9])
        // Two reads of one cell are independent given the nominal value.
        let d0 = s.mask.indices.filter { s.mask[$0] }.map { (s.read0[$0] - s.formed[$0]) / s.formed[$0] }
        let d1 = s.mask.indices.filter { s.mask[$0] }.map { (s.read1[$0] - s.formed[$0]) / s.formed[$0] }
        XCTAssertEqual(TestSupport.correlation(d0, d1), 0, accuracy: 0.01)
    }

    func testSameSeedIdenticalWithOneAndTwoThreadsDifferentSeedDiffers() {
        let s = sample()  // sampled with 2 threads
        let d1 = StatisticalDevice(profile: profile, seed: 2026)
        let one = d1.sampleArray(array: 0, state: .formed, read: 0, threads: 1)
        XCTAssertEqual(one, s.read0)  // bit-identical
        XCTAssertEqual(d1.sampleArray(array: 0, state: .reset, read: nil, threads: 1), s.reset)
        XCTAssertEqual(d1.formedMask(array: 0, threads: 1), s.mask)
        let other = StatisticalDevice(profile: profile, seed: 2027).sampleArray(array: 0, state: .formed, read: 0, threads: 2)
        let same = zip(other, one).filter { $0 == $1 }.count
        XCTAssertLessThan(same, 100)
        // A different array of the same seed is a different array.
        let a1 = d1.sampleArray(array: 1, state: .formed, read: nil, threads: 2)
        XCTAssertEqual(TestSupport.correlation(a1, s.formed), 0, accuracy: 0.01)
    }

    func testValuesDoNotDependOnVisitOrder() {
        let s = sample()
        let d = StatisticalDevice(profile: profile, seed: 2026)
        let n = 512 * 512
        var fwd = [Double](repeating: 0, count: n), rev = fwd, rnd = fwd
        for i in 0..<n { fwd[i] = d.conductance(array: 0, row: i / 512, col: i % 512, state: .formed, read: nil) }
        for i in stride(from: n - 1, through: 0, by: -1) {
            rev[i] = d.conductance(array: 0, row: i / 512, col: i % 512, state: .formed, read: nil)
        }
        var g = Xoshiro256StarStar(seed: 99)
        for i in g.permutation(n) { rnd[i] = d.conductance(array: 0, row: i / 512, col: i % 512, state: .formed, read: nil) }
        XCTAssertEqual(fwd, s.formed)
        XCTAssertEqual(rev, s.formed)
        XCTAssertEqual(rnd, s.formed)
    }

    func testNeighbouringCellsAndStatesAreUncorrelated() {
        let s = sample()
        var a: [Double] = [], b: [Double] = [], f: [Double] = [], r: [Double] = []
        for row in 0..<512 {
            for col in 0..<511 where s.mask[row * 512 + col] && s.mask[row * 512 + col + 1] {
                a.append(s.formed[row * 512 + col]); b.append(s.formed[row * 512 + col + 1])
            }
        }
        for i in s.mask.indices where s.mask[i] { f.append(s.formed[i]); r.append(s.reset[i]) }
        XCTAssertEqual(TestSupport.correlation(a, b), 0, accuracy: 0.01)  // row neighbours
        XCTAssertEqual(TestSupport.correlation(f, r), 0, accuracy: 0.01)  // formed vs reset level of a cell
        // Vertical neighbours.
        var c: [Double] = [], e: [Double] = []
        for row in 0..<511 { for col in 0..<512 { c.append(s.formed[row * 512 + col]); e.append(s.formed[(row + 1) * 512 + col]) } }
        XCTAssertEqual(TestSupport.correlation(c, e), 0, accuracy: 0.01)
    }

    func testDriftFollowsThePowerLaw() {
        let p = TargetProfiles.pcmLike
        let t0 = p.drift!.t0Seconds
        let at0 = StatisticalDevice(profile: p, seed: 5, timeSeconds: t0)
        let at1 = StatisticalDevice(profile: p, seed: 5, timeSeconds: 100 * t0)
        let at2 = StatisticalDevice(profile: p, seed: 5, timeSeconds: 10_000 * t0)
        var nus: [Double] = []
        for i in 0..<4096 {
            let (r, c) = (i / 64, i % 64)
            for state in CellState.allCases {
                let g0 = at0.conductance(array: 0, row: r, col: c, state: state, read: nil)
                let g1 = at1.conductance(array: 0, row: r, col: c, state: state, read: nil)
                let g2 = at2.conductance(array: 0, row: r, col: c, state: state, read: nil)
                // G(t) = G(t0) (t/t0)^-nu: the same nu explains both later times.
                let nu1 = -log(g1 / g0) / log(100.0), nu2 = -log(g2 / g0) / log(10_000.0)
                XCTAssertEqual(nu1, nu2, accuracy: 1e-9)
                XCTAssertGreaterThanOrEqual(nu1, -1e-12)
                if state == .formed { nus.append(nu1) }
            }
        }
        let m = Moments(nus)
        // nu ~ normal(0.05, 0.02) clamped at 0 (clamping moves the mean by < 0.0002).
        XCTAssertEqual(m.mean, 0.05, accuracy: 0.002)
        XCTAssertEqual(m.std, 0.02, accuracy: 0.002)
        // At t0 the formed distribution is the profile's normal(20, 4).
        let f0 = Moments((0..<4096).map { at0.conductance(array: 0, row: $0 / 64, col: $0 % 64, state: .formed, read: nil) })
        XCTAssertEqual(f0.mean, 20, accuracy: 0.3)
        XCTAssertEqual(f0.std, 4, accuracy: 0.3)
    }

    func testStuckCells() {
        let p = TargetProfiles.rramLowPrecision
        let d = StatisticalDevice(profile: p, seed: 11)
        var formed = 0, on = 0, off = 0
        for a in 0..<4 {
            let mask = d.formedMask(array: a)
            let f = d.sampleArray(array: a, state: .formed, read: nil)
            let r = d.sampleArray(array: a, state: .reset, read: nil)
            for i in mask.indices where mask[i] {
                formed += 1
                let (row, col) = (i / p.arrayCols, i % p.arrayCols)
                switch d.stuckKind(array: a, row: row, col: col) {
                case 1: on += 1; XCTAssertEqual(r[i], f[i])           // cannot be reset
                case 2: off += 1; XCTAssertEqual(f[i], r[i])          // never conducts like a formed cell
                default: XCTAssertNotEqual(f[i], r[i])
                }
            }
        }
        // 4 x 128 x 128 x Phi(1) ~ 55k formed cells; 0.5% each ~ 276 +- 17.
        XCTAssertEqual(Double(formed) / Double(4 * 128 * 128), normalCDF(1), accuracy: 0.01)
        XCTAssertEqual(Double(on) / Double(formed), 0.005, accuracy: 0.0012)
        XCTAssertEqual(Double(off) / Double(formed), 0.005, accuracy: 0.0012)
    }

    func testNormalShapeIsClampedAtItsMinimumAndReadsNeverNegative() {
        var p = TargetProfiles.rramLowPrecision
        p.formed = ConductanceDistribution(shape: .normal, meanMicroSiemens: 10, stdMicroSiemens: 10, minimumMicroSiemens: 2)
        p.readNoise = ReadNoise(relative: 0.5, absoluteMicroSiemens: 5)
        let d = StatisticalDevice(profile: p, seed: 3)
        let mask = d.formedMask(array: 0)
        let f = d.sampleArray(array: 0, state: .formed, read: nil)
        let fr = d.sampleArray(array: 0, state: .formed, read: 0)
        let formed = mask.indices.filter { mask[$0] && d.stuckKind(array: 0, row: $0 / 128, col: $0 % 128) == 0 }.map { f[$0] }
        XCTAssertEqual(formed.min(), 2)  // P(N(10,10) < 2) = Phi(-0.8) ~ 21% of cells sit at the clamp
        let clamped = Double(formed.filter { $0 == 2 }.count) / Double(formed.count)
        XCTAssertEqual(clamped, normalCDF(-0.8), accuracy: 0.02)
        XCTAssertGreaterThanOrEqual(fr.min()!, 0)
        XCTAssertTrue(fr.contains(0))  // the heavy noise does clamp some reads at 0
    }

    func testSampleStatisticsReportsTheModel() {
        let d = StatisticalDevice(profile: TargetProfiles.rramLowPrecision, seed: 8)
        let st = SampleStatistics(device: d, arrays: 2, reads: 2, threads: 2)
        XCTAssertEqual(st.cells, 2 * 128 * 128)
        XCTAssertEqual(st.formedFraction, normalCDF(1), accuracy: 0.01)
        XCTAssertEqual(st.expectedFormedFraction, normalCDF(1), accuracy: 1e-12)
        XCTAssertEqual(st.formed.count + st.pristine.count, st.cells)
        let expected = try! XCTUnwrap(st.expectedFormedReadNoise)
        XCTAssertEqual(try! XCTUnwrap(st.formedReadNoise), expected, accuracy: expected * 0.05)
        XCTAssertNil(SampleStatistics(device: d, arrays: 1, reads: 0).formedReadNoise)
    }
}
