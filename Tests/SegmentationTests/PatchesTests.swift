import XCTest
import Randomness
@testable import Segmentation

final class PatchesTests: XCTestCase {
    /// `images` images of h x w with distinct values, labels = value parity, a disc-shaped FOV.
    func scene(images: Int, h: Int, w: Int) -> (values: [Float], labels: [UInt8], fov: [UInt8]) {
        let px = h * w
        var v = [Float](repeating: 0, count: images * px), l = [UInt8](repeating: 0, count: images * px), f = l
        for i in 0..<images * px {
            v[i] = Float(i) / Float(images * px)
            l[i] = UInt8(i % 2)
            let (y, x) = ((i % px) / w, i % w)
            let dy = Double(y) - Double(h) / 2, dx = Double(x) - Double(w) / 2
            f[i] = dy * dy + dx * dx < Double(min(h, w) * min(h, w)) / 9 ? 1 : 0
        }
        return (v, l, f)
    }

    func testEveryPatchIsItsWindowAndCentredInsideTheFOV() throws {
        let (h, w, n, size) = (40, 37, 3, 16)
        let (v, l, f) = scene(images: n, h: h, w: w)
        let set = try XCTUnwrap(Patches.random(values: v, labels: l, fov: f, images: n, height: h, width: w, size: size, total: 50, seed: 7))
        XCTAssertEqual(set.count, 50)
        // 50 = 17 + 17 + 16, in image order
        XCTAssertEqual(set.origins.map(\.image), Array(repeating: 0, count: 17) + Array(repeating: 1, count: 17) + Array(repeating: 2, count: 16))
        for (p, o) in set.origins.enumerated() {
            XCTAssertEqual(f[o.image * h * w + (o.y + size / 2) * w + o.x + size / 2], 1, "patch \(p): centre outside the FOV")
            for y in 0..<size {
                for x in 0..<size {
                    let src = o.image * h * w + (o.y + y) * w + o.x + x, dst = (p * size + y) * size + x
                    guard set.values[dst] == v[src], set.labels[dst] == l[src] else {
                        return XCTFail("patch \(p) pixel (\(y), \(x)): expected \(v[src])/\(l[src]), got \(set.values[dst])/\(set.labels[dst])")
                    }
                }
            }
        }
    }

    func testTheSameSeedGivesTheSameBytesAndAnotherSeedOthers() throws {
        let (v, l, f) = scene(images: 2, h: 30, w: 30)
        let a = Patches.random(values: v, labels: l, fov: f, images: 2, height: 30, width: 30, size: 8, total: 20, seed: 1)
        let b = Patches.random(values: v, labels: l, fov: f, images: 2, height: 30, width: 30, size: 8, total: 20, seed: 1)
        let c = Patches.random(values: v, labels: l, fov: f, images: 2, height: 30, width: 30, size: 8, total: 20, seed: 2)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testTheDrawsAreTheDocumentedOnes() throws {
        // an all-ones FOV accepts the first draw: the corners are (int(below:), int(below:)) pairs
        let (h, w, size) = (20, 25, 6)
        let v = [Float](repeating: 0, count: h * w), l = [UInt8](repeating: 0, count: h * w), f = [UInt8](repeating: 1, count: h * w)
        let set = try XCTUnwrap(Patches.random(values: v, labels: l, fov: f, images: 1, height: h, width: w, size: size, total: 9, seed: 5))
        var rng = Xoshiro256StarStar(seed: 5, stream: Patches.stream)
        for (p, o) in set.origins.enumerated() {
            let top = rng.int(below: h - size + 1), left = rng.int(below: w - size + 1)
            XCTAssertEqual([o.y, o.x], [top, left], "patch \(p)")
        }
    }

    func testNoFOVPixelIsRefusedNotALoop() {
        let v = [Float](repeating: 0, count: 100), l = [UInt8](repeating: 0, count: 100)
        var f = [UInt8](repeating: 0, count: 100)
        f[0] = 1   // a corner: no 8x8 patch is centred there
        XCTAssertNil(Patches.random(values: v, labels: l, fov: f, images: 1, height: 10, width: 10, size: 8, total: 3, seed: 1))
    }

    func testSplitIsAPermutationIntoTwoDisjointParts() throws {
        let (v, l, f) = scene(images: 2, h: 30, w: 30)
        let set = try XCTUnwrap(Patches.random(values: v, labels: l, fov: f, images: 2, height: 30, width: 30, size: 8, total: 40, seed: 3))
        let (tr, va) = Patches.split(set, validation: 4, seed: 3)
        XCTAssertEqual([tr.count, va.count], [36, 4])
        var rng = Xoshiro256StarStar(seed: 3, stream: Patches.stream + 1)
        let perm = rng.permutation(40)
        let all = tr.origins + va.origins
        for (k, src) in perm.enumerated() {
            XCTAssertTrue(all[k] == set.origins[src], "position \(k)")
            let part = k < 36 ? tr : va, j = k < 36 ? k : k - 36
            XCTAssertEqual(Array(part.values[j * 64 ..< (j + 1) * 64]), Array(set.values[src * 64 ..< (src + 1) * 64]), "position \(k)")
        }
    }

    func testCentreCropTakesTheMiddle() throws {
        let set = PatchSet(count: 1, size: 5, values: (0..<25).map(Float.init), labels: (0..<25).map { UInt8($0) }, origins: [(0, 10, 20)])
        let c = set.centreCrop(3)
        XCTAssertEqual(c.values, [6, 7, 8, 11, 12, 13, 16, 17, 18])
        XCTAssertEqual(c.labels, [6, 7, 8, 11, 12, 13, 16, 17, 18])
        XCTAssertTrue(c.origins[0] == (0, 11, 21))
    }
}
