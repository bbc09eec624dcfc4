// Errors of the export: every one names what is wrong and where; nothing is written when one
// is thrown (see `ExportDirectory`).

public struct ExportError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The model has no crossbar placement (the export needs to know which cell holds which weight).
        case noPlacement
        /// The placement does not fit the program (geometry, overlap, coverage, row tiles).
        case badPlacement
        /// The program or its metadata is inconsistent (invalid program, mask or conductance counts).
        case invalidModel
        /// The images would be larger than the export's limit.
        case tooLarge
        /// The output directory exists and is not an export to replace, or is not a directory.
        case outputExists
        /// A file system operation failed.
        case io
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}
