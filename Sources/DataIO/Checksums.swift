// Checksums: CRC-32 (IEEE 802.3, the zlib/PNG/gzip polynomial) and SHA-256 (FIPS 180-4),
// written here so the package has no third-party dependency. Both are tested against
// published vectors in Tests/DataIOTests/ChecksumTests.swift.

/// CRC-32/IEEE (reflected polynomial 0xEDB88320, init 0xFFFFFFFF, final xor 0xFFFFFFFF):
/// `CRC32.checksum("123456789".utf8) == 0xCBF43926`.
public enum CRC32 {
    /// The byte-wise lookup table (slice-by-1).
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1) }
        return c
    }

    /// The CRC-32 of `bytes`.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        var s = State()
        s.update(bytes)
        return s.value
    }

    /// CRC-32 of `bytes[range]` of an array, without copying.
    public static func checksum(_ bytes: [UInt8], range: Range<Int>) -> UInt32 {
        var s = State()
        s.update(bytes, range: range)
        return s.value
    }

    /// Incremental CRC-32: feed any number of chunks, then read `value`.
    public struct State: Sendable, Equatable {
        var crc: UInt32 = 0xFFFF_FFFF
        public init() {}

        public mutating func update(_ bytes: some Collection<UInt8>) {
            let done = bytes.withContiguousStorageIfAvailable { buf -> Bool in
                update(buffer: buf)
                return true
            }
            if done == nil {
                let t = CRC32.table
                var c = crc
                for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
                crc = c
            }
        }

        public mutating func update(_ bytes: [UInt8], range: Range<Int>) {
            bytes.withUnsafeBufferPointer { buf in
                update(buffer: UnsafeBufferPointer(rebasing: buf[range]))
            }
        }

        mutating func update(buffer: UnsafeBufferPointer<UInt8>) {
            CRC32.table.withUnsafeBufferPointer { t in
                var c = crc
                for b in buffer { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
                crc = c
            }
        }

        /// The CRC of everything fed so far (the state is not consumed).
        public var value: UInt32 { crc ^ 0xFFFF_FFFF }
    }
}

/// SHA-256 (FIPS 180-4). Incremental: `var h = SHA256(); h.update(a); h.update(b); h.finalize()`.
public struct SHA256: Sendable {
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
    private var block = [UInt8](repeating: 0, count: 64)
    private var blockCount = 0
    private var totalBytes: UInt64 = 0

    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    public init() {}

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        for b in bytes {
            block[blockCount] = b
            blockCount += 1
            totalBytes &+= 1
            if blockCount == 64 { compress(); blockCount = 0 }
        }
    }

    /// The digest (32 bytes) of everything fed so far; `self` is not modified.
    public func finalize() -> [UInt8] {
        var copy = self
        let bitLength = totalBytes &* 8
        copy.update(CollectionOfOne(0x80))
        while copy.blockCount != 56 { copy.update(CollectionOfOne(0)) }
        for i in (0..<8).reversed() { copy.update(CollectionOfOne(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8)))) }
        let s = copy.h
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for w in [s.0, s.1, s.2, s.3, s.4, s.5, s.6, s.7] {
            out.append(UInt8(w >> 24)); out.append(UInt8((w >> 16) & 0xFF))
            out.append(UInt8((w >> 8) & 0xFF)); out.append(UInt8(w & 0xFF))
        }
        return out
    }

    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var s = SHA256()
        s.update(bytes)
        return s.finalize()
    }

    /// Lower-case hexadecimal of a digest (or any bytes).
    public static func hex(_ digest: [UInt8]) -> String {
        let d = Array("0123456789abcdef".utf8)
        var s: [UInt8] = []
        s.reserveCapacity(digest.count * 2)
        for b in digest { s.append(d[Int(b >> 4)]); s.append(d[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    private mutating func compress() {
        var w = [UInt32](repeating: 0, count: 64)
        for i in 0..<16 {
            w[i] = UInt32(block[4 * i]) << 24 | UInt32(block[4 * i + 1]) << 16 | UInt32(block[4 * i + 2]) << 8 | UInt32(block[4 * i + 3])
        }
        for i in 16..<64 {
            let s0 = SHA256.rotr(w[i - 15], 7) ^ SHA256.rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = SHA256.rotr(w[i - 2], 17) ^ SHA256.rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = h
        for i in 0..<64 {
            let s1 = SHA256.rotr(e, 6) ^ SHA256.rotr(e, 11) ^ SHA256.rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ s1 &+ ch &+ SHA256.k[i] &+ w[i]
            let s0 = SHA256.rotr(a, 2) ^ SHA256.rotr(a, 13) ^ SHA256.rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ maj
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e, h.5 &+ f, h.6 &+ g, h.7 &+ hh)
    }
}
