// Writing a golden directory all or nothing, and reading one back with every checksum checked.
//
// Writing: every file goes into a fresh sibling `DIR.tmp-<pid>-<random>` (each file written
// atomically), which is then renamed to `DIR`. A failure removes the temporary directory and
// leaves `DIR` as it was. `DIR` may be absent or an empty directory; an earlier golden directory
// (a manifest of this format) is replaced only with `replace` (moved aside, the new one renamed
// in, the old one removed); anything else is refused.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DataIO
import Foundation
import Kernels

extension Golden {
    // MARK: manifest

    static func dtypeName(_ d: NPYDType) -> String {
        switch d {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        }
    }

    /// The manifest text for `g` whose files are `files` (stored name, stored bytes, array) and
    /// whose points alias `aliases` (deterministic: fixed key order, no time).
    static func manifest(_ g: GoldenSet, files: [(String, [UInt8], NPYArray)], aliases: [Int?], storage: Storage) -> String {
        func opt(_ v: Int?) -> String { v.map(String.init) ?? "null" }
        func optName(_ v: String?) -> String { v.map(jsonStringLiteral) ?? "null" }
        var s = "{\n"
        s += "  \"format\": \(jsonStringLiteral(formatName)),\n"
        s += "  \"version\": \(formatVersion),\n"
        s += "  \"model\": {\"sha256\": \(jsonStringLiteral(g.modelSHA256))},\n"
        s += "  \"count\": \(g.count),\n"
        s += "  \"floatCount\": \(g.floatCount),\n"
        s += "  \"logits\": \(jsonStringLiteral(g.points[g.logits].name)),\n"
        s += "  \"argmax\": \(jsonStringLiteral(storedName(argmaxFile, storage))),\n"
        s += "  \"labels\": \(g.labels == nil ? "null" : jsonStringLiteral(storedName(labelsFile, storage))),\n"
        s += "  \"points\": [\n"
        for (j, p) in g.points.enumerated() {
            let alias = aliases[j].map { g.points[$0].name }
            let file = alias == nil ? storedName(p.file, storage) : nil
            let floatFile = alias == nil && g.floatCount > 0 ? storedName(p.floatFile, storage) : nil
            s += "    {\"name\": \(jsonStringLiteral(p.name)), \"node\": \(opt(p.node)), \"tile\": \(opt(p.tile)), "
            s += "\"op\": \(jsonStringLiteral(p.op)), \"tensor\": \(opt(p.tensor)), \"kind\": \(jsonStringLiteral(p.kind.goldenName)), "
            s += "\"bits\": \(p.bits), \"shape\": [\(p.shape.c), \(p.shape.h), \(p.shape.w)], "
            s += "\"alias\": \(optName(alias)), \"file\": \(optName(file)), \"floatFile\": \(optName(floatFile))}"
            s += j + 1 < g.points.count ? ",\n" : "\n"
        }
        s += "  ],\n"
        s += "  \"files\": [\n"
        for (j, f) in files.enumerated() {
            s += "    {\"name\": \(jsonStringLiteral(f.0)), \"dtype\": \(jsonStringLiteral(dtypeName(f.2.dtype))), "
            s += "\"shape\": [\(f.2.shape.map(String.init).joined(separator: ", "))], \"bytes\": \(f.1.count), "
            s += "\"sha256\": \(jsonStringLiteral(SHA256.hex(SHA256.hash(f.1))))}"
            s += j + 1 < files.count ? ",\n" : "\n"
        }
        s += "  ]\n}\n"
        return s
    }

    /// Every file of the golden directory with its stored bytes, manifest last.
    public static func encode(_ g: GoldenSet, storage: Storage = Storage()) throws -> [(name: String, bytes: [UInt8])] {
        let arrays = try files(g, storage: storage).map { f -> (String, [UInt8], NPYArray) in
            let npy = NPY.encode(f.1)
            return (f.0, storage.compress ? try gzip(npy) : npy, f.1)
        }
        var out: [(name: String, bytes: [UInt8])] = arrays.map { ($0.0, $0.1) }
        out.append((manifestName, Array(manifest(g, files: arrays, aliases: aliases(g), storage: storage).utf8)))
        return out
    }

    // MARK: writing

    /// An earlier golden directory: a manifest of our format.
    static let directoryKind = AtomicDirectory.Kind(what: "golden directory") { dir in
        guard let m = try? readFileBytes(dir + "/" + manifestName),
              let o = try? JSONSerialization.jsonObject(with: Data(m)) as? [String: Any] else { return false }
        return o["format"] as? String == formatName
    }

    /// Writes `g` to `dir` all or nothing (DataIO's `AtomicDirectory`); returns the files
    /// written (name, size in bytes). `faultAfter` (tests only): fail after that many files.
    @discardableResult
    public static func write(_ g: GoldenSet, to dir: String, storage: Storage = Storage(), replace: Bool = false,
                             faultAfter: Int? = nil) throws -> [(name: String, bytes: Int)] {
        do { try AtomicDirectory.check(dir, kind: directoryKind, replace: replace) } catch { throw verifyError(error) }
        let files = try encode(g, storage: storage)
        do {
            try AtomicDirectory.write(files, to: dir, kind: directoryKind, replace: replace, faultAfter: faultAfter)
        } catch { throw verifyError(error) }
        return files.map { ($0.name, $0.bytes.count) }
    }

    static func verifyError(_ e: AtomicDirectoryError) -> VerifyError {
        VerifyError(e.kind == .outputExists ? .outputExists : .io, path: e.path, e.message)
    }

    // MARK: reading

    static func manifestError(_ path: String, _ m: String) -> VerifyError { VerifyError(.badManifest, path: path, m) }

    /// Decodes a stored NPY file: `NAME.npy` as is, `NAME.npy.gz` gunzipped first (at most
    /// `elements` * 8 bytes of payload plus a header, so a gzip bomb is an error). Errors name `path`.
    public static func decodeStored(_ bytes: [UInt8], path: String, elements: Int) throws -> NPYArray {
        var npy = bytes
        if path.hasSuffix(".gz") {
            let (payload, o1) = Swift.max(elements, 0).multipliedReportingOverflow(by: 8)
            let limit = o1 ? Int.max : payload.addingReportingOverflow(1 << 17).partialValue
            do { npy = try Gzip.decompress(bytes, name: path, limit: limit) } catch {
                throw VerifyError(.badArray, path: path, "not a valid gzip-compressed NPY file: \(error)")
            }
        }
        do { return try NPY.decode(npy, name: path) } catch {
            throw VerifyError(.badArray, path: path, "not a valid NPY file: \(error)")
        }
    }

    /// Reads a golden directory (format versions 1 and 2): parses the manifest, checks every
    /// listed file's size and SHA-256 (of the stored bytes), decompresses `.npy.gz` files, checks
    /// each array's dtype and shape against the manifest and the point list, and resolves
    /// aliased points to the values of the point they alias.
    public static func read(dir rawDir: String) throws -> GoldenSet {
        let dir = AtomicDirectory.normalized(rawDir)
        guard directoryExists(dir) else { throw VerifyError(.io, path: dir, "golden directory does not exist") }
        let mpath = dir + "/" + manifestName
        let mbytes: [UInt8]
        do { mbytes = try readFileBytes(mpath) } catch { throw VerifyError(.badManifest, path: mpath, "cannot read: \(error)") }
        guard let root = try? JSONSerialization.jsonObject(with: Data(mbytes)) as? [String: Any] else {
            throw manifestError(mpath, "not a JSON object")
        }
        guard root["format"] as? String == formatName else { throw manifestError(mpath, "format is not \"\(formatName)\"") }
        guard let version = root["version"] as? Int, readableVersions.contains(version) else {
            throw manifestError(mpath, "unsupported version \(root["version"] ?? "none") (this tool reads \(readableVersions.lowerBound) to \(readableVersions.upperBound))")
        }
        guard let model = root["model"] as? [String: Any], let sha = model["sha256"] as? String else {
            throw manifestError(mpath, "missing model.sha256")
        }
        guard let count = root["count"] as? Int, count >= 1 else { throw manifestError(mpath, "missing or bad count") }
        let floatCount: Int
        if version == 1 { floatCount = count } else {
            guard let k = root["floatCount"] as? Int, (0...count).contains(k) else {
                throw manifestError(mpath, "missing floatCount, or not in 0...count (\(count))")
            }
            floatCount = k
        }
        guard let rawPoints = root["points"] as? [[String: Any]], !rawPoints.isEmpty else { throw manifestError(mpath, "missing points") }
        guard let rawFiles = root["files"] as? [[String: Any]] else { throw manifestError(mpath, "missing files") }
        guard let logitsName = root["logits"] as? String else { throw manifestError(mpath, "missing logits") }

        // Checksums first: every file listed must exist with the recorded size and SHA-256.
        var arrays: [String: NPYArray] = [:]
        for (k, f) in rawFiles.enumerated() {
            guard let name = f["name"] as? String, !name.contains("/"), !name.hasPrefix("."), name != manifestName,
                  let want = f["sha256"] as? String, let size = f["bytes"] as? Int,
                  let dt = f["dtype"] as? String, let shape = f["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }) else {
                throw manifestError(mpath, "files[\(k)]: needs name, dtype, shape, bytes, sha256")
            }
            guard name.hasSuffix(".npy") || (version >= 2 && name.hasSuffix(".npy.gz")) else {
                throw manifestError(mpath, "files[\(k)]: \(name) is neither NAME.npy nor NAME.npy.gz")
            }
            let path = dir + "/" + name
            let bytes: [UInt8]
            do { bytes = try readFileBytes(path) } catch { throw VerifyError(.io, path: path, "listed in the manifest but cannot be read: \(error)") }
            let got = SHA256.hex(SHA256.hash(bytes))
            guard bytes.count == size, got == want else {
                throw VerifyError(.checksum, path: path, "does not match the manifest: \(bytes.count) bytes, SHA-256 \(got); manifest says \(size) bytes, SHA-256 \(want)")
            }
            let elements = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            let a = try decodeStored(bytes, path: path, elements: elements)
            guard dtypeName(a.dtype) == dt, a.shape == shape else {
                throw VerifyError(.badArray, path: path, "holds \(dtypeName(a.dtype)) \(a.shape); the manifest says \(dt) \(shape)")
            }
            arrays[name] = a
        }

        func array(_ name: String, _ what: String) throws -> NPYArray {
            guard let a = arrays[name] else { throw manifestError(mpath, "\(what) file \(name) is not listed in files") }
            return a
        }
        /// The stored name of NPY file `plain` as the manifest gives it: `plain` or `plain.gz` (version 2).
        func stored(_ given: String, _ plain: String) -> Bool { given == plain || (version >= 2 && given == plain + ".gz") }
        var points: [GoldenPoint] = [], values: [[Int32]] = [], floats: [[Float]] = [], isAlias: [Bool] = []
        for (k, rp) in rawPoints.enumerated() {
            guard let name = rp["name"] as? String, let op = rp["op"] as? String,
                  let kindName = rp["kind"] as? String, let kind = ElementKind(goldenName: kindName),
                  let bits = rp["bits"] as? Int, let shape = rp["shape"] as? [Int], shape.count == 3, shape.allSatisfy({ $0 >= 1 }) else {
                throw manifestError(mpath, "points[\(k)]: needs name, op, kind, bits, shape (C,H,W)")
            }
            let p = GoldenPoint(name: name, node: rp["node"] as? Int, tile: rp["tile"] as? Int, op: op, tensor: rp["tensor"] as? Int,
                                kind: kind, bits: bits, shape: TensorShape(c: shape[0], h: shape[1], w: shape[2]))
            let alias = version >= 2 ? rp["alias"] as? String : nil
            let file = rp["file"] as? String, floatFile = rp["floatFile"] as? String
            if let alias {
                // An alias: the values (and float values) of an earlier stored point with as many values per image.
                guard file == nil, floatFile == nil else { throw manifestError(mpath, "points[\(k)] \(name): an alias (of \(alias)) has no file and no floatFile") }
                guard let src = points.firstIndex(where: { $0.name == alias }), !isAlias[src],
                      points[src].shape.count == p.shape.count else {
                    throw manifestError(mpath, "points[\(k)] \(name): alias \(alias) is not an earlier stored point with \(p.shape.count) values per image")
                }
                values.append(values[src]); floats.append(floats[src])
            } else {
                guard let file, stored(file, p.file) else {
                    throw manifestError(mpath, "points[\(k)] \(name): file must be \(p.file)\(version >= 2 ? " or \(p.file).gz" : "")")
                }
                let ia = try array(file, "point \(name)")
                values.append(try integerValues(ia, path: dir + "/" + file, point: p, count: count))
                if floatCount == 0 {
                    guard floatFile == nil else { throw manifestError(mpath, "points[\(k)] \(name): floatCount is 0 but a floatFile is given") }
                    floats.append([])
                } else {
                    guard let floatFile, stored(floatFile, p.floatFile) else {
                        throw manifestError(mpath, "points[\(k)] \(name): floatFile must be \(p.floatFile)\(version >= 2 ? " or \(p.floatFile).gz" : "")")
                    }
                    let fa = try array(floatFile, "point \(name)")
                    guard fa.dtype == .float32, fa.shape == p.arrayShape(count: floatCount) else {
                        throw VerifyError(.badArray, path: dir + "/" + floatFile, "must be float32 \(p.arrayShape(count: floatCount))")
                    }
                    floats.append(try fa.float32s())
                }
            }
            points.append(p)
            isAlias.append(alias != nil)
        }
        guard let logits = points.firstIndex(where: { $0.name == logitsName }) else { throw manifestError(mpath, "logits \(logitsName) is not a point") }
        guard let amName = root["argmax"] as? String, stored(amName, argmaxFile) else {
            throw manifestError(mpath, "argmax must be \(argmaxFile)\(version >= 2 ? " or \(argmaxFile).gz" : "")")
        }
        let am = try array(amName, "argmax")
        let ls = points[logits].shape
        let amShape = ls.h * ls.w == 1 ? [count] : [count, ls.h, ls.w]
        guard am.dtype == .int32, am.shape == amShape else { throw VerifyError(.badArray, path: dir + "/" + amName, "must be int32 \(amShape) (the logits' per-pixel argmax)") }
        var labels: [Int32]? = nil
        if let ln = root["labels"] as? String {
            let la = try array(ln, "labels")
            guard la.dtype == .int32, la.shape == [count] else { throw VerifyError(.badArray, path: dir + "/" + ln, "must be int32 [\(count)]") }
            labels = try la.int32s()
        }
        return GoldenSet(modelSHA256: sha, count: count, points: points, values: values, floats: floats, floatCount: floatCount,
                         logits: logits, argmax: try am.int32s(), labels: labels)
    }
}
