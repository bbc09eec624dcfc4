// The container: a 64-byte header, a section table (32 bytes per entry), and 64-byte aligned
// sections, each with its CRC-32. Layout in docs/FORMAT.md.
import DataIO

public enum FormatConstants {
    public static let magic: [UInt8] = Array("RRAMEDGE".utf8)
    public static let major: UInt16 = 1
    /// The newest minor this code writes and reads. The writer stores the lowest minor whose
    /// features the file uses: 0, 1 with weight generators, 2 with a layer-graph op (add, concat,
    /// upsampleBilinear, globalAvgPool), so files without them stay byte-identical older files.
    public static let minor: UInt16 = 2
    /// The minor that introduced the layer-graph ops.
    public static let graphOpsMinor: UInt16 = 2
    public static let headerSize = 64
    public static let entrySize = 32
    public static let alignment = 64
    /// Section table entry flag: a reader that does not know this kind must refuse the file.
    public static let flagRequired: UInt32 = 1
}

/// Section kinds of format 1.x.
public enum SectionKind: UInt32, Sendable, CaseIterable {
    case metadata = 1
    case graph = 2
    case tensorDirectory = 3
    case tensorData = 4
    case placement = 5
    /// 1.1: weight generators (optional; flagged required so that 1.0 readers refuse the file).
    case weightGenerators = 6

    public var name: String {
        switch self {
        case .metadata: return "metadata"
        case .graph: return "graph"
        case .tensorDirectory: return "tensor directory"
        case .tensorData: return "tensor data"
        case .placement: return "placement"
        case .weightGenerators: return "weight generators"
        }
    }
    /// Sections every 1.x file has.
    static let required: [SectionKind] = [.metadata, .graph, .tensorDirectory, .tensorData]
    /// Kinds written with the required flag: the required ones, and the optional ones a reader
    /// that does not know them cannot do without (a file with generated weights has no codes).
    static let flaggedRequired: [SectionKind] = required + [.weightGenerators]
}

/// One entry of the section table as stored.
public struct SectionEntry: Sendable, Equatable {
    public var kind: UInt32
    public var flags: UInt32
    public var offset: Int
    public var length: Int
    public var crc: UInt32
    public var name: String { SectionKind(rawValue: kind)?.name ?? "section kind \(kind)" }
}

/// The parsed, verified frame of a file: header fields plus its sections.
public struct Container: Sendable {
    public var major: UInt16
    public var minor: UInt16
    public var fileLength: Int
    public var sections: [SectionEntry]

    public func section(_ kind: SectionKind) -> SectionEntry? { sections.first { $0.kind == kind.rawValue } }

    @inline(__always) static func aligned(_ n: Int) -> Int { (n + 63) & ~63 }

    /// Assembles a file from section payloads (in the given order). Deterministic.
    static func assemble(_ payloads: [(kind: SectionKind, bytes: [UInt8])], minor: UInt16 = 0) -> [UInt8] {
        assembleRaw(payloads.map { (kind: $0.kind.rawValue, flags: SectionKind.flaggedRequired.contains($0.kind) ? FormatConstants.flagRequired : 0, bytes: $0.bytes) },
                    minor: minor)
    }

    /// Assembles raw (kind, flags, payload) sections; also used by tests to build hostile files.
    static func assembleRaw(_ payloads: [(kind: UInt32, flags: UInt32, bytes: [UInt8])], major: UInt16 = FormatConstants.major,
                            minor: UInt16 = 0) -> [UInt8] {
        let tableEnd = FormatConstants.headerSize + FormatConstants.entrySize * payloads.count
        var out = [UInt8](repeating: 0, count: aligned(tableEnd))
        var table = ByteWriter()
        for p in payloads {
            out.reserveCapacity(out.count + aligned(p.bytes.count))
            let offset = out.count
            out += p.bytes
            while out.count % FormatConstants.alignment != 0 { out.append(0) }
            table.u32(p.kind)
            table.u32(p.flags)
            table.u64(UInt64(offset))
            table.u64(UInt64(p.bytes.count))
            table.u32(CRC32.checksum(p.bytes))
            table.u32(0)
        }
        var h = ByteWriter()
        h.bytes += FormatConstants.magic
        h.u16(major)
        h.u16(minor)
        h.u32(UInt32(FormatConstants.headerSize))
        h.u64(UInt64(out.count))
        h.u64(UInt64(FormatConstants.headerSize))
        h.u32(UInt32(payloads.count))
        h.u32(UInt32(FormatConstants.entrySize))
        h.u32(0)                                   // flags
        h.bytes += [UInt8](repeating: 0, count: 12) // reserved
        h.u32(CRC32.checksum(table.bytes))
        h.u32(CRC32.checksum(h.bytes))
        out.replaceSubrange(0..<64, with: h.bytes)
        out.replaceSubrange(64..<(64 + table.bytes.count), with: table.bytes)
        return out
    }

    /// Rewrites every CRC (sections, table, header) so they match the bytes; used by the fuzzer
    /// to reach the checks behind the checksums. Leaves the bytes alone where fields are unreadable.
    public static func recomputeChecksums(_ b: inout [UInt8]) {
        guard b.count >= 64 else { return }
        let tableOffset = loadU64(b, 24)
        guard tableOffset <= UInt64(b.count) else { ByteWriter.patchU32(&b, at: 60, CRC32.checksum(b, range: 0..<60)); return }
        let t = Int(tableOffset)
        let n = min(Int(loadU32(b, 32)), (b.count - t) / 32)
        for i in 0..<n {
            let e = t + 32 * i
            let off = loadU64(b, e + 8), len = loadU64(b, e + 16)
            if off <= UInt64(b.count), len <= UInt64(b.count) - off {
                ByteWriter.patchU32(&b, at: e + 24, CRC32.checksum(b, range: Int(off)..<Int(off + len)))
            }
        }
        ByteWriter.patchU32(&b, at: 56, CRC32.checksum(b, range: t..<(t + 32 * n)))
        ByteWriter.patchU32(&b, at: 60, CRC32.checksum(b, range: 0..<60))
    }

    /// Parses and verifies header, table, CRCs and section geometry. Allocates only the
    /// section list, whose length is bounded by the file size / 32.
    public static func parse(_ b: [UInt8]) throws -> Container {
        func fail(_ k: ModelFileError.Kind, _ sec: String, _ off: Int, _ m: String) -> ModelFileError {
            ModelFileError(k, section: sec, offset: off, m)
        }
        guard b.count >= 8 else { throw fail(.truncated, "header", b.count, "file has \(b.count) bytes, the magic needs 8") }
        guard Array(b[0..<8]) == FormatConstants.magic else { throw fail(.badMagic, "header", 0, "not an rram-edge model file") }
        guard b.count >= FormatConstants.headerSize else {
            throw fail(.truncated, "header", b.count, "file has \(b.count) bytes, the header needs 64")
        }
        let major = UInt16(b[8]) | UInt16(b[9]) << 8
        let minor = UInt16(b[10]) | UInt16(b[11]) << 8
        guard major == FormatConstants.major else {
            throw fail(.unsupportedVersion, "header", 8, "format \(major).\(minor); this reader implements \(FormatConstants.major).x")
        }
        guard loadU32(b, 60) == CRC32.checksum(b, range: 0..<60) else {
            throw fail(.checksumMismatch, "header", 60, "header CRC-32 mismatch")
        }
        let headerSize = loadU32(b, 12), fileLength = loadU64(b, 16), tableOffset = loadU64(b, 24)
        let count = loadU32(b, 32), entrySize = loadU32(b, 36)
        guard headerSize == 64 else { throw fail(.badHeader, "header", 12, "header size \(headerSize), expected 64") }
        guard fileLength == UInt64(b.count) else {
            let k: ModelFileError.Kind = fileLength > UInt64(b.count) ? .truncated : .badHeader
            throw fail(k, "header", 16, "header says \(fileLength) bytes, file has \(b.count)")
        }
        guard entrySize == 32 else { throw fail(.badHeader, "header", 36, "section entry size \(entrySize), expected 32") }
        guard tableOffset == 64 else { throw fail(.badHeader, "header", 24, "section table at \(tableOffset), expected 64") }
        guard Int(count) <= (b.count - 64) / 32 else {
            throw fail(.countTooLarge, "header", 32, "\(count) sections do not fit in \(b.count - 64) bytes")
        }
        let n = Int(count)
        let tableEnd = 64 + 32 * n
        guard loadU32(b, 56) == CRC32.checksum(b, range: 64..<tableEnd) else {
            throw fail(.checksumMismatch, "section table", 64, "section table CRC-32 mismatch")
        }
        var sections: [SectionEntry] = []
        sections.reserveCapacity(n)
        var cursor = tableEnd   // sections are stored in table order, after the table
        for i in 0..<n {
            let e = 64 + 32 * i
            let kind = loadU32(b, e), flags = loadU32(b, e + 4)
            let off = loadU64(b, e + 8), len = loadU64(b, e + 16), crc = loadU32(b, e + 24)
            let sname = SectionKind(rawValue: kind)?.name ?? "section kind \(kind)"
            guard off % 64 == 0 else { throw fail(.badSectionTable, "section table", e + 8, "\(sname) at \(off) is not 64-byte aligned") }
            guard off <= UInt64(b.count), len <= UInt64(b.count) - off else {
                throw fail(.badSectionTable, "section table", e + 8, "\(sname) [\(off), +\(len)) runs past the end of the file (\(b.count))")
            }
            let o = Int(off), l = Int(len)
            guard o >= cursor else {
                throw fail(.badSectionTable, "section table", e + 8, "\(sname) at \(o) overlaps the table or the previous section (ends \(cursor)); sections are stored in table order")
            }
            // Every byte not in a section (padding) must be zero.
            if let z = b[cursor..<o].firstIndex(where: { $0 != 0 }) {
                throw fail(.badSectionTable, "file", z, "non-zero padding before \(sname)")
            }
            if SectionKind(rawValue: kind) != nil, sections.contains(where: { $0.kind == kind }) {
                throw fail(.badSectionTable, "section table", e, "duplicate \(sname) section")
            }
            if SectionKind(rawValue: kind) == nil, flags & FormatConstants.flagRequired != 0 {
                throw fail(.unsupportedSection, "section table", e, "unknown section kind \(kind) is flagged required")
            }
            guard crc == CRC32.checksum(b, range: o..<(o + l)) else {
                throw fail(.checksumMismatch, sname, o, "\(sname) CRC-32 mismatch")
            }
            sections.append(SectionEntry(kind: kind, flags: flags, offset: o, length: l, crc: crc))
            cursor = o + l
        }
        if let z = b[cursor..<b.count].firstIndex(where: { $0 != 0 }) {
            throw fail(.badSectionTable, "file", z, "non-zero bytes after the last section")
        }
        for k in SectionKind.required where !sections.contains(where: { $0.kind == k.rawValue }) {
            throw fail(.missingSection, "section table", 64, "required \(k.name) section is missing")
        }
        return Container(major: major, minor: minor, fileLength: b.count, sections: sections)
    }
}
