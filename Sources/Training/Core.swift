// Core storage and threading of the training engine.
//
// * `FloatBuffer`: a fixed-size, 64-byte-aligned Float32 allocation owned by a class, so hot
//   loops work on raw pointers with no copy-on-write or exclusivity checks and nothing is
//   allocated inside the batch loop (every layer allocates its activations, gradients and
//   scratch once, for the largest batch, in `configure`).
// * `WorkPool`: runs a FIXED number of chunks on `threads` workers. Results never depend on
//   the thread count: every chunk writes only its own outputs (or its own partial sums, which
//   the caller reduces in chunk order), and a worker's scratch is reused only across chunks
//   whose results do not depend on it.
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>
    /// The allocation `ptr` lies in (64-byte aligned inside it).
    private let base: UnsafeMutableRawPointer

    /// `count` zeros. The memory comes from `calloc`, whose large blocks are fresh zero pages
    /// that use no memory until written: a buffer a run never touches (the gradients of a
    /// network that only evaluates, such as the U-Net read at a whole image's size) costs
    /// address space, not resident memory.
    public init(count: Int) {
        self.count = count
        guard let raw = calloc(max(count, 1) * 4 + 128, 1) else { fatalError("FloatBuffer: out of memory for \(count) floats") }
        base = raw
        let misalignment = Int(bitPattern: raw) & 63
        ptr = (raw + (misalignment == 0 ? 0 : 64 - misalignment)).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        for i in 0..<values.count { ptr[i] = values[i] }
    }

    deinit { free(base) }

    @inlinable public func zero() { ptr.update(repeating: 0, count: count) }
    @inlinable public var array: [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }
    @inlinable public func copy(from a: [Float]) {
        precondition(a.count == count)
        a.withUnsafeBufferPointer { ptr.update(from: $0.baseAddress!, count: count) }
    }
    @inlinable public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }
}

/// A raw pointer that may cross into `concurrentPerform` closures (each chunk writes disjoint parts).
public struct SendablePtr: @unchecked Sendable {
    public let p: UnsafeMutablePointer<Float>
    @inlinable public init(_ p: UnsafeMutablePointer<Float>) { self.p = p }
}

/// Fixed chunking of a batch and the workers that run the chunks.
public final class WorkPool: @unchecked Sendable {
    /// Number of chunks a batch is split into, independent of the thread count (determinism).
    public static let chunks = 4
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, min(threads, 64)) }

    /// Sample range of chunk `c` of `batch` samples.
    @inlinable @inline(__always)
    public static func range(_ c: Int, of batch: Int) -> Range<Int> {
        (c * batch / chunks)..<((c + 1) * batch / chunks)
    }

    /// Runs `body(item, worker)` for every item in 0..<items; worker in 0..<threads. Items are
    /// dealt round-robin; each item must write only outputs that belong to it.
    @inlinable
    public func run(_ items: Int, _ body: (Int, Int) -> Void) {
        if threads == 1 || items <= 1 {
            for i in 0..<items { body(i, 0) }
            return
        }
        let t = min(threads, items)
        withoutActuallyEscaping(body) { b in
            let box = UnsafeSendableClosure(b)
            DispatchQueue.concurrentPerform(iterations: t) { w in
                var i = w
                while i < items { box.f(i, w); i += t }
            }
        }
    }

    /// The batch's fixed chunks: `body(chunk, sampleRange, worker)`.
    @inlinable
    public func chunks(batch: Int, _ body: (Int, Range<Int>, Int) -> Void) {
        run(Self.chunks) { c, w in
            let r = Self.range(c, of: batch)
            if !r.isEmpty { body(c, r, w) }
        }
    }

    /// Splits 0..<n into `threads`-independent blocks of `grain` and runs them (element-wise work).
    @inlinable
    public func blocks(_ n: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        let nb = (n + grain - 1) / grain
        run(nb) { b, _ in body((b * grain)..<min(n, (b + 1) * grain)) }
    }
}

public struct UnsafeSendableClosure: @unchecked Sendable {
    public let f: (Int, Int) -> Void
    @inlinable public init(_ f: @escaping (Int, Int) -> Void) { self.f = f }
}

/// Errors of the training engine (bad configuration, bad data, unreadable run directories).
public struct TrainingError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
