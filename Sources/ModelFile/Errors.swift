// Typed errors of the model-file reader and writer. Every decoding error names the section
// it was found in and the absolute byte offset in the file.

public struct ModelFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The first 8 bytes are not "RRAMEDGE".
        case badMagic
        /// A major version this reader does not implement.
        case unsupportedVersion
        /// A structure runs past the end of the file or of its section.
        case truncated
        /// Header fields inconsistent (header size, file length, table position, entry size).
        case badHeader
        /// A stored CRC-32 does not match (header, section table or a section).
        case checksumMismatch
        /// Sections overlapping, out of the file, misaligned, duplicated, or non-zero padding.
        case badSectionTable
        /// A required section is absent.
        case missingSection
        /// A section kind this reader does not know, flagged as required.
        case unsupportedSection
        /// A count or size larger than the bytes that could hold it, or beyond a format limit.
        case countTooLarge
        /// An arithmetic product/sum of sizes overflows.
        case sizeOverflow
        /// An enum value (dtype, op kind, rounding rule, element kind, metadata type) unknown.
        case badEnum
        /// A string that is not valid UTF-8 (or empty where a name is required).
        case badString
        /// Metadata keys not strictly ascending (duplicate or unsorted).
        case badMetadataOrder
        /// A metadata value with the wrong type, a missing required key, or a bad value.
        case badMetadata
        /// A tensor entry inconsistent (byte length, alignment, overlap, outside the data section).
        case badTensor
        /// A tensor whose dtype or shape disagrees with the graph that references it.
        case tensorShapeMismatch
        /// The layer graph is inconsistent (indices, counts, limits).
        case badGraph
        /// A placement tile outside its arrays or layer.
        case badPlacement
        /// A weight generator record that cannot be resolved (profile, placement, parameters).
        case badGenerator
        /// Regenerated weight codes whose CRC-32 differs from the one the writer stored.
        case generatedWeightsMismatch
        /// The decoded program fails the Kernels program validation.
        case invalidProgram
        /// The bundle cannot be written (inconsistent in memory).
        case unencodable
        /// A file-system error.
        case io
    }

    public var kind: Kind
    /// "header", "section table", "metadata", "graph", "tensor directory", "tensor data", "placement", "weight generators", "file".
    public var section: String
    /// Absolute byte offset in the file where the problem was found.
    public var offset: Int
    public var message: String
    /// The file (or name passed to `decode`); empty when unknown.
    public var file: String = ""

    public init(_ kind: Kind, section: String, offset: Int, _ message: String) {
        self.kind = kind; self.section = section; self.offset = offset; self.message = message
    }

    public var description: String {
        (file.isEmpty ? "" : "\(file): ") + "\(kind.rawValue) in \(section) at byte \(offset): \(message)"
    }
}
