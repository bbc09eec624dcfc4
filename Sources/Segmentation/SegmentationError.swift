/// The one error type of the Segmentation module: bad parameters, images of the wrong size,
/// data-set files that do not fit together. `description` reads `FILE: PROBLEM`, or just
/// `PROBLEM` when no file is involved (an in-memory image, a setting).
public struct SegmentationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the problem was found in, if any.
    public let file: String?
    /// The problem in words, naming the offending value.
    public let problem: String

    public init(file: String? = nil, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String {
        if let f = file { return f + ": " + problem }
        return problem
    }
}
