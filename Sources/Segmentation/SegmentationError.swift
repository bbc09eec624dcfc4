/// The one error type of Segmentation. `description` reads `FILE: PROBLEM`, or `PROBLEM` when
/// no file is involved (e.g. in-memory arrays of mismatched lengths).
public struct SegmentationError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String?
    public let problem: String

    public init(_ problem: String, file: String? = nil) {
        self.problem = problem
        self.file = file
    }

    public var description: String {
        if let f = file { return "\(f): \(problem)" }
        return problem
    }
}
