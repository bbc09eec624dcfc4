// Streaming reader of IDX image files (plain or gzip), so `edgecli run` never holds a whole
// data set: the header is checked against the model's input shape first, then images are read
// in batches as 8-bit pixels. Float IDX (0x0D float32, 0x0E float64) holds intensities in
// [0, 1] (x = pixel / 255) and is converted to pixels round(x * 255); NaN, infinities and
// values outside [0, 1] are errors naming the image and pixel.
import CZlib
import DataIO
import Kernels
import ModelFile

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Bad input data: the message names the file and what is wrong where.
public struct InputError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

@inline(__always) func sysRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, p, n) }

/// Bytes of a file, inflated on the fly when it starts with the gzip magic 1f 8b.
final class ByteStream {
    let path: String
    let fd: Int32
    var gz: Bool = false
    var strm = z_stream()
    var inBuf = [UInt8](repeating: 0, count: 1 << 16)
    var inLen = 0, inPos = 0
    var eofFile = false, streamEnd = false
    /// Decompressed (logical) bytes delivered so far.
    var offset = 0

    init(path: String) throws {
        self.path = path
        var f: Int32
        repeat { f = open(path, O_RDONLY | O_CLOEXEC) } while f < 0 && errno == EINTR
        guard f >= 0 else { throw InputError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        var st = stat()
        if fstat(f, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { close(f); throw InputError("\(path): is a directory") }
        fd = f
        try fill()
        if inLen - inPos >= 2, inBuf[0] == 0x1F, inBuf[1] == 0x8B {
            gz = true
            let rc = inflateInit2_(&strm, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else { close(fd); throw InputError("\(path): zlib init failed (\(rc))") }
        }
    }
    deinit { if gz { inflateEnd(&strm) }; close(fd) }

    private func fill() throws {
        guard !eofFile else { return }
        if inPos > 0 { inBuf.removeSubrange(0..<inPos); inLen -= inPos; inPos = 0; inBuf += [UInt8](repeating: 0, count: (1 << 16) - inBuf.count) }
        while inLen < inBuf.count {
            let n = inBuf.withUnsafeMutableBytes { sysRead(fd, $0.baseAddress! + inLen, $0.count - inLen) }
            if n < 0 { if errno == EINTR { continue }; throw InputError("\(path): read failed (\(String(cString: strerror(errno))))") }
            if n == 0 { eofFile = true; break }
            inLen += n
        }
    }

    /// Reads up to `count` bytes; fewer only at the end of the data.
    func read(into dst: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        var got = 0
        while got < count {
            if !gz {
                if inPos == inLen { inPos = 0; inLen = 0; try fill(); if inLen == 0 { break } }
                let k = min(count - got, inLen - inPos)
                inBuf.withUnsafeBytes { (dst + got).update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self) + inPos, count: k) }
                inPos += k; got += k
                continue
            }
            if streamEnd { break }
            if inPos == inLen { inPos = 0; inLen = 0; try fill() }
            let avail = inLen - inPos
            let rc: Int32 = inBuf.withUnsafeMutableBufferPointer { ib in
                strm.next_in = ib.baseAddress! + inPos
                strm.avail_in = UInt32(avail)
                strm.next_out = dst + got
                strm.avail_out = UInt32(count - got)
                return inflate(&strm, Z_NO_FLUSH)
            }
            let used = avail - Int(strm.avail_in)
            inPos += used
            let produced = (count - got) - Int(strm.avail_out)
            got += produced
            switch rc {
            case Z_OK: if used == 0 && produced == 0 && eofFile { throw InputError("\(path): truncated gzip stream (compressed data ends early, after \(offset + got) bytes)") }
            case Z_STREAM_END: streamEnd = true
            case Z_BUF_ERROR:
                if eofFile && inPos == inLen { throw InputError("\(path): truncated gzip stream (compressed data ends early, after \(offset + got) bytes)") }
            default:
                let msg = strm.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                throw InputError("\(path): corrupt gzip stream: \(msg)")
            }
        }
        offset += got
        return got
    }

    func readExactly(_ count: Int, what: String) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        let n = try b.withUnsafeMutableBufferPointer { try read(into: $0.baseAddress!, count: count) }
        guard n == count else { throw InputError("\(path): truncated: \(what) needs \(count) bytes at offset \(offset - n), only \(n) left") }
        return b
    }

    /// True when no data byte follows (trailing bytes are an error for IDX).
    func atEnd() throws -> Bool {
        var b: UInt8 = 0
        return try read(into: &b, count: 1) == 0
    }
}

/// IDX header: element type byte and dimensions; refuses other containers with a named error.
func readIDXHeader(_ s: ByteStream) throws -> (type: UInt8, dims: [Int]) {
    let head = try s.readExactly(4, what: "the IDX header")
    if head == [0x93, 0x4E, 0x55, 0x4D] { throw InputError("\(s.path): is an NPY array, not an IDX file (images are read from IDX .idx / .idx.gz files, e.g. t10k-images-idx3-ubyte.gz)") }
    if head[0] == 0x50, head[1] == 0x4B { throw InputError("\(s.path): is a zip archive, not an IDX file") }
    guard head[0] == 0, head[1] == 0 else { throw InputError("\(s.path): not an IDX file (bad magic \(head.map { String($0, radix: 16) }))") }
    guard [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E].contains(head[2]) else { throw InputError("\(s.path): unknown IDX element type 0x\(String(head[2], radix: 16))") }
    let nd = Int(head[3])
    guard nd >= 1 else { throw InputError("\(s.path): IDX with zero dimensions") }
    let d = try s.readExactly(4 * nd, what: "the IDX dimensions")
    var dims: [Int] = []
    for i in 0..<nd {
        var v = 0
        for b in 0..<4 { v = v << 8 | Int(d[4 * i + b]) }
        dims.append(v)
    }
    return (head[2], dims)
}

/// Images streamed from an IDX file as 8-bit pixels matching a model's input shape.
public final class ImageStream {
    public let path: String
    public let count: Int
    public let shape: TensorShape
    let type: UInt8
    let stream: ByteStream
    /// Feature models (DATAPATH.md section 15.1): float inputs become `featureBits`-bit DAC codes
    /// (`FeatureEncoding`), uint8 inputs are already codes (at most `2^featureBits - 1`).
    public let featureBits: Int?
    public private(set) var delivered = 0

    /// Opens `path` and checks its header against `shape`: `N x H x W` (C == 1) or `N x C x H x W`,
    /// element uint8 (pixels) or float32/float64 (intensities in [0, 1]).
    public init(path: String, shape: TensorShape, featureBits: Int? = nil) throws {
        self.path = path; self.shape = shape; self.featureBits = featureBits
        stream = try ByteStream(path: path)
        let (t, dims) = try readIDXHeader(stream)
        type = t
        let want = shape.c == 1 ? "N x \(shape.h) x \(shape.w) (or N x 1 x \(shape.h) x \(shape.w))" : "N x \(shape.c) x \(shape.h) x \(shape.w)"
        let okShape = (dims.count == 3 && shape.c == 1 && dims[1] == shape.h && dims[2] == shape.w)
            || (dims.count == 4 && dims[1] == shape.c && dims[2] == shape.h && dims[3] == shape.w)
        guard okShape else { throw InputError("\(path): images are \(dims.map(String.init).joined(separator: " x ")), the model reads \(want)") }
        guard [0x08, 0x0D, 0x0E].contains(t) else {
            throw InputError("\(path): element type 0x\(String(t, radix: 16)): images must be uint8 pixels (0x08) or float32/float64 intensities in [0, 1]")
        }
        count = dims[0]
    }

    var itemSize: Int { type == 0x08 ? 1 : (type == 0x0D ? 4 : 8) }

    /// Reads up to `max` images into `dst` (capacity `max * shape.count`); returns how many.
    public func next(into dst: UnsafeMutablePointer<UInt8>, max: Int) throws -> Int {
        let n = Swift.min(max, count - delivered)
        guard n > 0 else { return 0 }
        let per = shape.count
        if type == 0x08 {
            let got = try stream.read(into: dst, count: n * per)
            guard got == n * per else { throw InputError("\(path): truncated: the header promises \(count) images, the data ends in image \(delivered + got / per)") }
            if let fb = featureBits {
                let top = UInt8((1 << fb) - 1)
                for k in 0..<(n * per) where dst[k] > top {
                    throw InputError("\(path): sample \(delivered + k / per), feature \(k % per): code \(dst[k]) exceeds the model's \(fb)-bit input codes (uint8 input of a feature model holds DAC codes; give float features in [0, 1] instead)")
                }
            }
        } else {
            let isz = itemSize
            var raw = [UInt8](repeating: 0, count: per * isz)
            for i in 0..<n {
                let got = try raw.withUnsafeMutableBufferPointer { try stream.read(into: $0.baseAddress!, count: per * isz) }
                guard got == per * isz else { throw InputError("\(path): truncated: the header promises \(count) images, the data ends in image \(delivered + i)") }
                for k in 0..<per {
                    var v: Double
                    if isz == 4 {
                        var u: UInt32 = 0
                        for b in 0..<4 { u = u << 8 | UInt32(raw[k * 4 + b]) }
                        v = Double(Float(bitPattern: u))
                    } else {
                        var u: UInt64 = 0
                        for b in 0..<8 { u = u << 8 | UInt64(raw[k * 8 + b]) }
                        v = Double(bitPattern: u)
                    }
                    if let fb = featureBits {
                        // DATAPATH.md 15.1: the feature's DAC code (float64 input is rounded to float32 first)
                        guard let c = FeatureEncoding.code(Float(v), bits: fb), v.isFinite, v >= 0, v <= 1 else {
                            throw InputError("\(path): sample \(delivered + i), feature \(k) (row \(k / shape.w % shape.h), column \(k % shape.w)): value \(v) is not a number in [0, 1]")
                        }
                        dst[i * per + k] = c
                        continue
                    }
                    guard v.isFinite else { throw InputError("\(path): image \(delivered + i), pixel \(k): value \(v) is not a number in [0, 1]") }
                    guard v >= 0, v <= 1 else { throw InputError("\(path): image \(delivered + i), pixel \(k): value \(v) outside [0, 1]") }
                    dst[i * per + k] = UInt8((v * 255).rounded(.toNearestOrAwayFromZero))
                }
            }
        }
        delivered += n
        if delivered == count, try !stream.atEnd() {
            throw InputError("\(path): trailing bytes after the \(count) images the header declares")
        }
        return n
    }

    /// Reads all images (for small sets: calibration, tests).
    public func readAll(limit: Int = Int.max) throws -> [UInt8] {
        let n = Swift.min(limit, count - delivered)
        var out = [UInt8](repeating: 0, count: n * shape.count)
        var done = 0
        while done < n {
            let k = try out.withUnsafeMutableBufferPointer { try next(into: $0.baseAddress! + done * shape.count, max: n - done) }
            if k == 0 { break }
            done += k
        }
        return out
    }
}

/// The input code bits of a feature model (metadata `input.kind` = `features`, written by freeze
/// for spoken digit; the bits are its input quantizer's output bits), nil for a pixel model.
public func inputFeatureBits(_ b: ModelBundle) -> Int? {
    guard case .string("features")? = b.metadata.extra["input.kind"] else { return nil }
    for n in b.program.nodes { if case .inputQuant(let a) = n.op { return a.outBits } }
    return nil
}

/// Reads an IDX label file (uint8, 1-d), checking the count and the class range.
public func readLabels(path: String, count: Int? = nil, classes: Int) throws -> [UInt8] {
    let s = try ByteStream(path: path)
    let (t, dims) = try readIDXHeader(s)
    guard t == 0x08, dims.count == 1 else { throw InputError("\(path): labels must be a 1-d uint8 IDX array, got type 0x\(String(t, radix: 16)) with \(dims.count) dimensions") }
    if let count, dims[0] != count { throw InputError("\(path): \(dims[0]) labels for \(count) images") }
    let labels = try s.readExactly(dims[0], what: "\(dims[0]) labels")
    guard try s.atEnd() else { throw InputError("\(path): trailing bytes after \(dims[0]) labels") }
    if let i = labels.firstIndex(where: { Int($0) >= classes }) { throw InputError("\(path): label \(i) is \(labels[i]), the model has \(classes) classes") }
    return labels
}
