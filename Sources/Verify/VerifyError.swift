// Errors of the Verify module: every one names what is wrong and where (file, point, element).

/// Why golden vectors or a dump cannot be written, read or compared.
public struct VerifyError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A file or directory cannot be read or written.
        case io
        /// `manifest.json` is missing, not JSON, or not of this format/version.
        case badManifest
        /// A file's bytes do not match the SHA-256 (or size) the manifest records.
        case checksum
        /// An array has the wrong dtype, shape or element count.
        case badArray
        /// The golden directory describes another program structure than the model.
        case modelMismatch
        /// Bad input images/labels, count or options.
        case badInput
        /// The output directory exists and must not be replaced.
        case outputExists
        /// The fast engine and the reference engine computed different values (a Kernels bug).
        case engineDisagreement
    }
    public var kind: Kind
    /// The file or directory concerned ("" when none).
    public var path: String
    public var message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind; self.path = path; self.message = message
    }
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
