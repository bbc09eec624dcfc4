// The only place threads are used. With Dispatch (Linux, macOS) parts run concurrently;
// without it (Embedded Swift, bare metal) they run one after another, with identical results.

#if canImport(Dispatch) && !hasFeature(Embedded)
import Dispatch
#endif

public enum KernelsParallel {
    /// Calls `body(part)` for `part in 0..<parts`, concurrently when possible. Each part must
    /// touch only its own memory.
    public static func forEach(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 { if parts == 1 { body(0) }; return }
        #if canImport(Dispatch) && !hasFeature(Embedded)
        withoutActuallyEscaping(body) { b in
            let box = UncheckedBox(b)
            DispatchQueue.concurrentPerform(iterations: parts) { box.value($0) }
        }
        #else
        for p in 0..<parts { body(p) }
        #endif
    }
}

@usableFromInline struct UncheckedBox<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ v: T) { value = v }
}
