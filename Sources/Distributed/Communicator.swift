#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The processes of an `mpirun` launch, over Open MPI loaded at run time: nothing links against
/// MPI, so fn2e builds and runs single-process without it. `Communicator.world()` loads
/// `libmpi.so.40` (or `libmpi.so`, or `FN2E_MPI_LIBRARY`) only when the process was started by
/// `mpirun` (its environment has `OMPI_COMM_WORLD_SIZE` or `PMI_SIZE`), and initialises MPI then.
/// Open MPI's predefined handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, ...) are the addresses
/// of exported data symbols (`ompi_mpi_comm_world`, ...), so `dlsym` finds them as it finds functions.
public final class Communicator {
    public let rank: Int
    public let size: Int
    private let api: API

    /// The launch's communicator, initialised on first use; nil when the process was not started by
    /// `mpirun`. Throws when it was but Open MPI cannot be loaded or initialised.
    public static func world() throws -> Communicator? {
        try lock.withLock {
            if let done = shared { return try done.get() }
            let made = Result { try launchedByMPIRun ? Communicator(api: try API.load()) : nil }
            shared = made
            return try made.get()
        }
    }

    /// The communicator if `world()` made one, without making it.
    public static var current: Communicator? { lock.withLock { (try? shared?.get()) ?? nil } }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: Result<Communicator?, Error>?

    /// The variables by which `mpirun` (Open MPI's, or a PMI launcher) tells a process it is one rank of many.
    public static let launchVariables = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]

    public static var launchedByMPIRun: Bool {
        let env = ProcessInfo.processInfo.environment
        return launchVariables.contains { env[$0] != nil }
    }

    /// `environment` without what marks a process as a rank of an `mpirun` launch, for a child
    /// process that must run on its own (a recipe's training started by one rank).
    public static func standalone(_ environment: [String: String]) -> [String: String] {
        environment.filter { key, _ in !["OMPI_", "PMI_", "PMIX_"].contains { key.hasPrefix($0) } }
    }

    private init(api: API) throws {
        self.api = api
        var provided: Int32 = 0
        // MPI_THREAD_SERIALIZED (2): one thread at a time calls MPI (training runs on one thread;
        // the recipe's workers call nothing).
        try api.require(api.initThread(nil, nil, 2, &provided), "MPI_Init_thread")
        var r: Int32 = 0, s: Int32 = 0
        try api.require(api.commRank(api.commWorld, &r), "MPI_Comm_rank")
        try api.require(api.commSize(api.commWorld, &s), "MPI_Comm_size")
        (rank, size) = (Int(r), Int(s))
        // Every rank must finalize before it exits, or mpirun reports the job as failed.
        atexit { try? Communicator.shared?.get()?.finalize() }
    }

    private var finalized = false

    /// Ends MPI for this process (also done at exit); no call may follow.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = api.finalize()
    }

    /// Ends every rank of the launch with `code` (a failure on one rank would otherwise leave the
    /// others waiting in a collective).
    public func abort(_ code: Int32) -> Never {
        _ = api.abort(api.commWorld, code)
        exit(code)
    }

    // MARK: Collectives

    /// The elementwise sum over all ranks of `count` floats, in place on every rank. Large buffers go
    /// in pieces of at most 2^30 values (MPI counts are 32-bit).
    public func sumInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
        pieces(count) { api.check(api.allreduce(Communicator.inPlace, values + $0, Int32($1), api.float, api.sum, api.commWorld), "MPI_Allreduce") }
    }

    public func sumInPlace(_ values: UnsafeMutablePointer<Double>, count: Int) {
        pieces(count) { api.check(api.allreduce(Communicator.inPlace, values + $0, Int32($1), api.double, api.sum, api.commWorld), "MPI_Allreduce") }
    }

    /// The sum over all ranks of an array of doubles.
    public func sum(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { sumInPlace($0.baseAddress!, count: $0.count) }
        return v
    }

    /// Copies `bytes` bytes from `root`'s buffer into every other rank's.
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int = 0) {
        pieces(bytes) { api.check(api.bcast(buffer + $0, Int32($1), api.byte, Int32(root), api.commWorld), "MPI_Bcast") }
    }

    /// `root`'s array on every rank (other ranks' arrays are replaced, whatever their length).
    public func broadcast<T: BitwiseCopyable>(_ values: [T], root: Int = 0) -> [T] {
        let n = Int(sum([rank == root ? Double(values.count) : 0])[0])
        var out = rank == root ? values : [T](unsafeUninitializedCapacity: n) { _, c in c = n }
        out.withUnsafeMutableBytes { if $0.count > 0 { broadcast($0.baseAddress!, bytes: $0.count, root: root) } }
        return out
    }

    /// Every rank's string, in rank order, on every rank.
    public func allGather(_ text: String) -> [String] {
        let mine = Array(text.utf8)
        let lengths = sum((0..<size).map { $0 == rank ? Double(mine.count) : 0 }).map { Int($0) }
        // Each rank fills its own slot of a zeroed buffer; the sum assembles them (bytes as doubles are exact).
        var slots = [Double](repeating: 0, count: lengths.reduce(0, +))
        let start = lengths[..<rank].reduce(0, +)
        for (i, b) in mine.enumerated() { slots[start + i] = Double(b) }
        let all = sum(slots).map { UInt8($0) }
        var out: [String] = [], offset = 0
        for n in lengths {
            out.append(String(decoding: all[offset..<offset + n], as: UTF8.self))
            offset += n
        }
        return out
    }

    /// Waits until every rank has called it.
    public func barrier() {
        api.check(api.barrier(api.commWorld), "MPI_Barrier")
    }

    static let inPlace = UnsafeRawPointer(bitPattern: 1)  // Open MPI's MPI_IN_PLACE

    private func pieces(_ count: Int, _ body: (Int, Int) -> Void) {
        let most = 1 << 30
        var start = 0
        repeat {
            body(start, min(most, count - start))
            start += most
        } while start < count
    }
}

public struct MPIError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The entry points and handles fn2e uses, found by name in the loaded library.
private struct API {
    typealias Handle = UnsafeMutableRawPointer
    let initThread: @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?,
                                    Int32, UnsafeMutablePointer<Int32>?) -> Int32
    let commRank: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let commSize: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let allreduce: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    let bcast: @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    let barrier: @convention(c) (Handle) -> Int32
    let finalize: @convention(c) () -> Int32
    let abort: @convention(c) (Handle, Int32) -> Int32
    let commWorld: Handle, float: Handle, double: Handle, byte: Handle, sum: Handle

    /// Where Open MPI is looked for: `FN2E_MPI_LIBRARY` alone when set, else Debian's soname, then the
    /// development link.
    static var candidates: [String] {
        if let p = ProcessInfo.processInfo.environment["FN2E_MPI_LIBRARY"], !p.isEmpty { return [p] }
        return ["libmpi.so.40", "libmpi.so"]
    }

    static let symbols = ["MPI_Init_thread", "MPI_Comm_rank", "MPI_Comm_size", "MPI_Allreduce", "MPI_Bcast", "MPI_Barrier",
                          "MPI_Finalize", "MPI_Abort", "ompi_mpi_comm_world", "ompi_mpi_float", "ompi_mpi_double",
                          "ompi_mpi_byte", "ompi_mpi_op_sum"]

    static func load() throws -> API {
        var reasons: [String] = []
        for name in candidates {
            // RTLD_GLOBAL: Open MPI's plugins resolve symbols of libmpi and libopen-pal.
            guard let lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL) else {
                reasons.append(String(cString: dlerror()))
                continue
            }
            let found = symbols.map { dlsym(lib, $0) }
            let missing = zip(symbols, found).filter { $0.1 == nil }.map(\.0)
            guard missing.isEmpty else {
                reasons.append("\(name) is not Open MPI's libmpi: it lacks \(missing.joined(separator: ", "))")
                dlclose(lib)
                continue
            }
            let p = found.map { $0! }
            func fn<T>(_ i: Int) -> T { unsafeBitCast(p[i], to: T.self) }
            return API(initThread: fn(0), commRank: fn(1), commSize: fn(2), allreduce: fn(3), bcast: fn(4), barrier: fn(5),
                       finalize: fn(6), abort: fn(7), commWorld: p[8], float: p[9], double: p[10], byte: p[11], sum: p[12])
        }
        throw MPIError("started by mpirun (\(Communicator.launchVariables.joined(separator: " or ")) is set) but Open MPI's library could not be loaded: "
                       + reasons.joined(separator: "; ") + ". Install it (Debian: apt-get install openmpi-bin libopenmpi-dev) or set FN2E_MPI_LIBRARY to its path")
    }

    /// MPI's default error handler aborts the job, so a code other than MPI_SUCCESS (0) is reached
    /// only when a handler was changed; it is fatal all the same.
    func check(_ code: Int32, _ call: String) {
        if code != 0 { FileHandle.standardError.write(Data("error: \(call) returned \(code)\n".utf8)); _ = abort(commWorld, code); exit(1) }
    }

    func require(_ code: Int32, _ call: String) throws {
        if code != 0 { throw MPIError("\(call) returned MPI error \(code)") }
    }
}
