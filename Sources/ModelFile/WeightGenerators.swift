// Weight generators (format 1.1): the weights of a topology-optimized network are random by
// construction, a function of (seed, target profile, placement); only the masks are learned. A
// crossbar layer whose weights a generator reproduces stores the generator record instead of its
// int8 codes (docs/FORMAT.md section 8b). The reader regenerates the codes, checks their CRC-32
// and materializes the same `Program` as an explicit-codes file.
import DataIO
import Device
import FixedPoint
import Kernels
import Randomness

/// Where the signs of signed-constant weights come from.
public enum SignSource: Sendable, Equatable, Hashable {
    /// `Xoshiro256StarStar(seed: seed, stream: stream)`: weight `i` (index o * fanIn + i) is
    /// negative iff bit 63 of the stream's `i`-th draw is 1 (the training's software-TO draw).
    case stream(seed: UInt64, stream: UInt64)
    /// Stored sign bits `[outChannels, fanIn]`, bit-packed LSB-first; bit 1 = negative.
    case bits(PackedMask)
}

/// How a crossbar layer's weight codes are produced. In both kinds the program's effective code
/// of weight `i` is `mask[i] ? on[i] : off[i]`.
public enum WeightGenerator: Sendable, Equatable, Hashable {
    /// Software TO: `on[i] = ±magnitude` (sign from `signs`), `off[i] = 0`.
    case signedConstant(magnitude: Int, signs: SignSource)
    /// Hardware TO: the statistical device of the file's embedded target profile with `seed`,
    /// nominal read, on the file's placement: `on/off = Device.differentialCodes(...)` with the
    /// layer's `weightLSBMicroSiemens` and `weightBits`.
    case statisticalDevice(seed: UInt64)

    public var kindName: String {
        switch self {
        case .signedConstant(_, .stream): return "signed-constant (signs from the seed)"
        case .signedConstant(_, .bits): return "signed-constant (stored sign bits)"
        case .statisticalDevice: return "statistical-device"
        }
    }
}

/// Revision of the statistical device model a kind-2 record was made with. A reader refuses
/// any other revision (a changed cell model would silently give other weights).
public let statisticalDeviceModelRevision: UInt32 = 1

enum GeneratorKind: UInt8 { case signedConstant = 1, statisticalDevice = 2 }
enum SignSourceKind: UInt8 { case stream = 1, bits = 2 }

/// One decoded (not yet resolved) record.
struct GeneratorRecord {
    var layer: Int
    var generator: WeightGenerator
    var crc: UInt32
    var offset: Int
    /// Directory index of the stored sign bits (kind 1, bits), checked against the layer's shape later.
    var signTensor: Int?
    /// Its dims as stored (must be the layer's [outChannels, fanIn]).
    var signDims: [Int]? = nil
}

public enum WeightGeneration {
    /// The (on, off) codes of one layer, `count = outChannels * fanIn`. `placement` and `profile`
    /// are needed by `statisticalDevice` only. Throws a message (the caller adds section/offset).
    static func codes(_ g: WeightGenerator, layer: Int, params c: CrossbarParams, placement: CrossbarPlacement?,
                      device: StatisticalDevice?) throws(GeneratorFailure) -> (on: [Int8], off: [Int8]) {
        let n = c.outChannels * c.fanIn
        // the program is validated after resolution: check what the generation itself relies on
        guard (2...8).contains(c.weightBits) else { throw GeneratorFailure("weight bits \(c.weightBits) outside 2...8") }
        switch g {
        case .signedConstant(let mag, let signs):
            let top = (1 << (c.weightBits - 1)) - 1
            guard mag >= 1, mag <= top else {
                throw GeneratorFailure("magnitude \(mag) outside 1...\(top) (\(c.weightBits)-bit codes)")
            }
            var on = [Int8](repeating: Int8(mag), count: n)
            switch signs {
            case .stream(let seed, let stream):
                var rng = Xoshiro256StarStar(seed: seed, stream: stream)
                for i in 0..<n where rng.next() >> 63 != 0 { on[i] = Int8(-mag) }
            case .bits(let b):
                guard b.count == n, b.bytes.count == (n + 7) / 8 else { throw GeneratorFailure("\(b.count) sign bits for \(n) weights") }
                for i in 0..<n where b[i] { on[i] = Int8(-mag) }
            }
            return (on, [Int8](repeating: 0, count: n))
        case .statisticalDevice:
            guard let placement, let device else { throw GeneratorFailure("a statistical-device generator needs the placement and the embedded target profile") }
            guard let r = differentialCodes(placement: placement, layer: layer, source: device,
                                            lsbMicroSiemens: c.weightLSBMicroSiemens, bits: c.weightBits) else {
                throw GeneratorFailure("weight LSB \(c.weightLSBMicroSiemens) µS / \(c.weightBits) bits cannot be regenerated (LSB must be finite and > 0)")
            }
            return r
        }
    }

    /// CRC-32 of the on codes followed by the off codes (int8 bit patterns).
    static func crc(_ on: [Int8], _ off: [Int8]) -> UInt32 {
        var bytes = [UInt8](); bytes.reserveCapacity(on.count + off.count)
        for v in on { bytes.append(UInt8(bitPattern: v)) }
        for v in off { bytes.append(UInt8(bitPattern: v)) }
        return CRC32.checksum(bytes)
    }

    /// Effective codes `mask ? on : off`.
    static func effective(_ on: [Int8], _ off: [Int8], mask: PackedMask) -> [Int8] {
        var w = off
        for i in 0..<w.count where mask[i] { w[i] = on[i] }
        return w
    }

    /// The placement as Device sees it (layers from the program's crossbar layers: `Program.crossbarLayers`).
    static func devicePlacement(_ pl: Placement, _ p: Program) -> CrossbarPlacement {
        var layers: [LayerShape] = []
        for x in p.crossbarLayers { layers.append(LayerShape(name: "layer\(layers.count)", fanIn: x.params.fanIn, fanOut: x.params.outChannels)) }
        return CrossbarPlacement(arrayRows: pl.arrayRows, arrayCols: pl.arrayCols, layers: layers,
                                 tiles: pl.tiles.map { TilePlacement(layer: $0.layer, array: $0.array, rowOffset: $0.rowOffset, rows: $0.rows,
                                                                     inputOffset: $0.inputOffset, colOffset: $0.colOffset,
                                                                     outputOffset: $0.outputOffset, outputs: $0.outputs) },
                                 arrayCount: pl.arrayCount)
    }

    /// The statistical device of an embedded profile (canonical JSON): parsed, validated, its
    /// SHA-256 equal to the metadata's `target.sha256`, its geometry equal to the placement's.
    static func device(profileJSON: [UInt8], targetHash: String, placement: Placement?, seed: UInt64) throws(GeneratorFailure) -> StatisticalDevice {
        guard !profileJSON.isEmpty else { throw GeneratorFailure("no target profile is embedded") }
        let h = SHA256.hex(SHA256.hash(profileJSON))
        guard h == targetHash else {
            throw GeneratorFailure("the embedded target profile's SHA-256 \(h.prefix(16))... differs from target.sha256 \(targetHash.prefix(16))...")
        }
        let profile: TargetProfile
        do { profile = try TargetProfiles.decode(profileJSON, source: "embedded target profile") } catch {
            throw GeneratorFailure("\(error)")
        }
        guard let placement else { throw GeneratorFailure("a statistical-device generator needs the placement section") }
        guard placement.arrayRows == profile.arrayRows, placement.arrayCols == profile.arrayCols else {
            throw GeneratorFailure("placement arrays \(placement.arrayRows)x\(placement.arrayCols) differ from the profile's \(profile.arrayRows)x\(profile.arrayCols)")
        }
        do { return try StatisticalDevice(validating: profile, seed: seed) } catch { throw GeneratorFailure("\(error)") }
    }
}

struct GeneratorFailure: Error { var message: String; init(_ m: String) { message = m } }

enum GeneratorCodec {
    /// Section payload: `string profile (canonical JSON, may be empty)`, `u32 count`, records.
    static func encode(profile: [UInt8], records: [(layer: Int, generator: WeightGenerator, crc: UInt32, signTensor: UInt32?)]) throws -> [UInt8] {
        var w = ByteWriter()
        w.u32(try ByteWriter.u32(profile.count, "profile length")); w.bytes += profile
        w.u32(try ByteWriter.u32(records.count, "generator count"))
        for r in records {
            w.u32(try ByteWriter.u32(r.layer, "layer"))
            switch r.generator {
            case .signedConstant(let mag, let signs):
                w.u8(GeneratorKind.signedConstant.rawValue); w.u8(0); w.u16(0); w.u32(r.crc)
                guard (1...127).contains(mag) else { throw ModelFileError(.unencodable, section: "writer", offset: 0, "layer \(r.layer): magnitude \(mag)") }
                w.u8(UInt8(mag))
                switch signs {
                case .stream(let seed, let stream):
                    w.u8(SignSourceKind.stream.rawValue); w.u16(0); w.u64(seed); w.u64(stream)
                case .bits:
                    w.u8(SignSourceKind.bits.rawValue); w.u16(0); w.u32(r.signTensor ?? UInt32.max)
                }
            case .statisticalDevice(let seed):
                w.u8(GeneratorKind.statisticalDevice.rawValue); w.u8(0); w.u16(0); w.u32(r.crc)
                w.u32(statisticalDeviceModelRevision); w.u64(seed)
            }
        }
        return w.bytes
    }

    /// Decodes the records (structure and enums only; resolution needs the graph, masks and
    /// placement). Sign-bit tensors are claimed in `used` (each stored tensor is referenced once).
    static func decode(_ b: [UInt8], _ s: SectionEntry, _ entries: [TensorEntry], used: inout [Bool],
                       budget: DecodeBudget) throws -> (profile: [UInt8], records: [GeneratorRecord]) {
        var r = ByteReader(b, from: s.offset, to: s.offset + s.length, section: "weight generators")
        let pa = r.pos
        let plen = Int(try r.u32("profile length"))
        guard plen <= r.remaining, plen <= 1 << 20 else { throw r.error(.countTooLarge, "profile length \(plen) exceeds the \(r.remaining) bytes left (or 1 MiB)", at: pa) }
        try budget.charge(plen, "embedded profile", section: "weight generators", offset: pa)
        let profile = Array(b[r.pos..<(r.pos + plen)])
        r.pos += plen
        // smallest record: 12-byte head + 4-byte kind-1 head + 4-byte tensor index = 20 bytes
        let n = try r.count("generator count", limit: min(FormatLimits.maxItems, r.remaining / 20))
        try budget.charge(n * MemoryLayout<GeneratorRecord>.stride, "generator records", section: "weight generators", offset: r.pos)
        var out: [GeneratorRecord] = []
        out.reserveCapacity(n)
        var last = -1
        for i in 0..<n {
            let at = r.pos
            let layer = try r.count("layer", limit: FormatLimits.maxItems)
            guard layer > last else { throw r.error(.badGraph, "generator \(i): layer \(layer) not after layer \(last) (records are sorted by layer, one per layer)", at: at) }
            last = layer
            let ka = r.pos
            let rawKind = try r.u8("generator kind")
            guard let kind = GeneratorKind(rawValue: rawKind) else { throw r.error(.badEnum, "generator \(i) (layer \(layer)): kind \(rawKind)", at: ka) }
            guard try r.u8("reserved") == 0 else { throw r.error(.badGraph, "generator \(i): reserved byte not 0", at: ka + 1) }
            try r.zero16("reserved")
            let crc = try r.u32("codes CRC-32")
            switch kind {
            case .signedConstant:
                let ma = r.pos
                let mag = Int(try r.u8("magnitude"))
                guard mag >= 1, mag <= 127 else { throw r.error(.badEnum, "generator \(i) (layer \(layer)): magnitude \(mag) outside 1...127", at: ma) }
                let sa = r.pos
                let rawSrc = try r.u8("sign source")
                guard let src = SignSourceKind(rawValue: rawSrc) else { throw r.error(.badEnum, "generator \(i) (layer \(layer)): sign source \(rawSrc)", at: sa) }
                try r.zero16("reserved")
                switch src {
                case .stream:
                    let seed = try r.u64("sign seed"), stream = try r.u64("sign stream")
                    out.append(GeneratorRecord(layer: layer, generator: .signedConstant(magnitude: mag, signs: .stream(seed: seed, stream: stream)), crc: crc, offset: at))
                case .bits:
                    let ta = r.pos
                    let t = try r.u32("sign tensor")
                    guard Int(t) < entries.count else { throw r.error(.badGraph, "generator \(i) (layer \(layer)): sign tensor \(t) of \(entries.count)", at: ta) }
                    guard !used[Int(t)] else { throw r.error(.badGraph, "generator \(i) (layer \(layer)): tensor '\(entries[Int(t)].name)' referenced twice", at: ta) }
                    used[Int(t)] = true
                    let e = entries[Int(t)]
                    guard e.dtype == .bits, e.dims.count == 2 else {
                        throw r.error(.tensorShapeMismatch, "generator \(i) (layer \(layer)): sign tensor '\(e.name)' is \(e.dtype.name)\(e.dims), needs bits[out, fanIn]", at: ta)
                    }
                    try budget.charge(e.byteLength, "sign bits", section: "weight generators", offset: ta)
                    let bytes = TensorCodec.uint8s(b, e)
                    let count = e.count
                    if count % 8 != 0, let lastByte = bytes.last, lastByte >> UInt8(count % 8) != 0 {
                        throw ModelFileError(.badTensor, section: "tensor data", offset: e.offset + e.byteLength - 1, "sign bits '\(e.name)' have bits set past their \(count) elements")
                    }
                    out.append(GeneratorRecord(layer: layer, generator: .signedConstant(magnitude: mag, signs: .bits(PackedMask(count: count, bytes: bytes))),
                                               crc: crc, offset: at, signTensor: Int(t), signDims: e.dims))
                }
            case .statisticalDevice:
                let va = r.pos
                let rev = try r.u32("device model revision")
                guard rev == statisticalDeviceModelRevision else {
                    throw r.error(.badEnum, "generator \(i) (layer \(layer)): device model revision \(rev); this reader regenerates revision \(statisticalDeviceModelRevision) only", at: va)
                }
                let seed = try r.u64("device seed")
                out.append(GeneratorRecord(layer: layer, generator: .statisticalDevice(seed: seed), crc: crc, offset: at))
            }
        }
        if r.remaining != 0 { throw r.error(.badGraph, "\(r.remaining) unread bytes after the generator records") }
        return (profile, out)
    }
}

/// The decoder's in-memory budget: what decoding may hold (decoded arrays, records, regenerated
/// weights, estimated from the in-memory strides) is at most `32 x fileLength + 1 MiB`, checked
/// before each allocation (docs/FORMAT.md section 9). 32: a generated layer costs 3 bytes per
/// weight while it is resolved (on, off, effective codes) = 24 bytes per stored mask byte.
final class DecodeBudget {
    static let factor = 32
    static let allowance = 1 << 20
    let limit: Int
    let factor: Int
    private(set) var used = 0
    init(fileLength: Int, factor: Int = DecodeBudget.factor) {
        self.factor = factor
        limit = factor * max(0, fileLength) + DecodeBudget.allowance
    }

    func charge(_ bytes: Int, _ what: String, section: String, offset: Int) throws {
        let (u, o) = used.addingReportingOverflow(max(0, bytes))
        guard !o, bytes >= 0, u <= limit else {
            throw ModelFileError(.countTooLarge, section: section, offset: offset,
                                 "\(what) would bring the decoded size to \(o ? Int.max : u) bytes, over the budget of \(limit) (\(factor) x file size + 1 MiB)")
        }
        used = u
    }
    /// Array header estimate (heap object header + count + capacity).
    static let arrayHeader = 32
}
