/// The scratch memory of one kernel call, booked when the call is lowered and granted when it
/// runs (oneDNN's registrar and grantor, `memory_tracking.hpp`): named slices of floats, one after
/// another. The memory planner places the whole booking in the arena; the kernel asks for each
/// slice by its key, so no kernel allocates and no byte escapes the plan.
public struct WorkspaceBooking: Hashable, Sendable {
    public private(set) var keys: [String] = []
    public private(set) var offsets: [Int] = []
    /// Floats of all slices together.
    public private(set) var floats = 0

    public init() {}

    /// Books `floats` floats under `key` (an empty slice books nothing).
    public mutating func book(_ key: String, floats n: Int) {
        guard n > 0 else { return }
        precondition(!keys.contains(key), "workspace slice '\(key)' booked twice")
        keys.append(key)
        offsets.append(floats)
        floats += n
    }

    /// A booking of one slice.
    public static func one(_ key: String, floats n: Int) -> WorkspaceBooking {
        var b = WorkspaceBooking()
        b.book(key, floats: n)
        return b
    }
}

/// A booking granted memory: the planner's block for the kernel. `slice(key)` is where a booked
/// slice starts (a slice not booked, being empty, gets the block's start).
public struct Workspace {
    public let base: UnsafeMutablePointer<Float>
    public let booking: WorkspaceBooking

    public init(base: UnsafeMutablePointer<Float>, booking: WorkspaceBooking) {
        (self.base, self.booking) = (base, booking)
    }

    public func slice(_ key: String) -> UnsafeMutablePointer<Float> {
        booking.keys.firstIndex(of: key).map { base + booking.offsets[$0] } ?? base
    }
}
