/// The one error type of the Segmentation module: bad parameters, images of the wrong size,
/// arrays that do not fit together. `description` reads `FILE: PROBLEM`, or just `PROBLEM`
/// when no file is involved (an in-memory image, a setting).
public struct SegmentationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the problem was found in, if any.
    public let file: String?
    /// The problem in words, naming the offending value.
    public let problem: String

    public init(_ problem: String, file: String? = nil) {
        self.problem = problem
        self.file = file
    }

    public var description: String {
        if let f = file { return f + ": " + problem }
        return problem
    }
}
