import CBLAS
import Foundation

/// OpenBLAS configuration: which kernel set (core) it runs, how many threads, and the start-up
/// dance that picks a core the CPU really supports (OpenBLAS' own detection can pick a core whose
/// instructions a virtual CPU lacks, which gives wrong GEMM results, not a crash).
public enum BLAS {
    /// The OpenBLAS core in use, e.g. "Haswell" (`openblas_get_corename`).
    public static var corename: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
    /// Threads OpenBLAS uses for GEMM (set to 1 where our own threads each run GEMMs).
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
    /// OpenBLAS' build configuration string (`openblas_get_config`).
    public static var configString: String { openblas_get_config().map { String(cString: $0) } ?? "unknown" }

    /// Chooses the OpenBLAS core from CPU flags: SkylakeX with AVX-512 F/VL/BW/DQ, Haswell with
    /// AVX2 + FMA, Prescott with SSE3, else nil.
    public static func bestCoreType(cpuFlags flags: Set<String>) -> String? {
        if ["avx512f", "avx512vl", "avx512bw", "avx512dq"].allSatisfy(flags.contains) { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        if flags.contains("sse3") || flags.contains("pni") { return "Prescott" }
        return nil
    }

    /// The `flags` of the first processor in /proc/cpuinfo (empty if unreadable).
    public static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// What an executable sets before OpenBLAS loads, given its environment: the core from the CPU
    /// flags when `OPENBLAS_CORETYPE` is unset (OpenBLAS' own detection may pick one the virtual CPU
    /// cannot run), and `OPENBLAS_THREAD_TIMEOUT=4` when unset: after each GEMM OpenBLAS' idle
    /// threads otherwise spin for 2^28 cycles, taking a core from fn2e's own loops between GEMMs
    /// (Winograd transforms, pooling) on a 2-core machine; 2^4 puts them to sleep at once (VGG-Face
    /// forward 7-15% faster in paired runs). Variables already set are respected.
    public static func startupEnvironment(_ env: [String: String], cpuFlags flags: Set<String>) -> [String: String] {
        var set: [String: String] = [:]
        if env["OPENBLAS_CORETYPE"] == nil, let core = bestCoreType(cpuFlags: flags) { set["OPENBLAS_CORETYPE"] = core }
        if env["OPENBLAS_THREAD_TIMEOUT"] == nil { set["OPENBLAS_THREAD_TIMEOUT"] = "4" }
        return set
    }

    /// Call first thing in an executable. Sets what `startupEnvironment` asks for and re-executes
    /// /proc/self/exe with the same arguments (OpenBLAS reads its variables only at load time);
    /// `FN2E_REEXECED=1` stops a second round. Returns only when no re-exec happened.
    public static func selectCoreAndReexecIfNeeded(arguments: [String] = CommandLine.arguments) {
        let env = ProcessInfo.processInfo.environment
        if env["FN2E_REEXECED"] == "1" { return }
        let set = startupEnvironment(env, cpuFlags: cpuFlags())
        if set.isEmpty { return }
        reexec(arguments: arguments, setting: set)
    }

    /// Multiplies random 67×45 and 45×53 matrices with `cblas_sgemm` and naively in Double; true if
    /// the max relative error is at most 1e-4. On failure prints a warning to stderr and, when
    /// `reexecOnFailure` and not already on the Prescott fallback, re-executes once with
    /// `OPENBLAS_CORETYPE=Prescott`.
    @discardableResult
    public static func sanityCheckGEMM(reexecOnFailure: Bool = true, arguments: [String] = CommandLine.arguments) -> Bool {
        let (m, k, n) = (67, 45, 53)
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> Float {  // xorshift64*: self-contained so Kernels needs no RNG module
            seed ^= seed >> 12; seed ^= seed << 25; seed ^= seed >> 27
            return Float((seed &* 0x2545_F491_4F6C_DD1D) >> 40) / Float(1 << 24) * 2 - 1
        }
        let a = (0..<(m * k)).map { _ in next() }, b = (0..<(k * n)).map { _ in next() }
        var c = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        var worst = 0.0
        for i in 0..<m { for j in 0..<n {
            var ref = 0.0, mag = 0.0
            for p in 0..<k { ref += Double(a[i * k + p]) * Double(b[p * n + j]); mag += abs(Double(a[i * k + p]) * Double(b[p * n + j])) }
            worst = max(worst, abs(Double(c[i * n + j]) - ref) / max(mag, 1e-30))
        } }
        if worst <= 1e-4 { return true }
        let msg = "fn2e: warning: OpenBLAS core \(corename) gives wrong sgemm results (max relative error \(worst))\n"
        FileHandle.standardError.write(msg.data(using: .utf8)!)
        let env = ProcessInfo.processInfo.environment
        if reexecOnFailure && env["OPENBLAS_CORETYPE"] != "Prescott" && env["FN2E_GEMM_FALLBACK"] != "1" {
            FileHandle.standardError.write("fn2e: warning: re-running with OPENBLAS_CORETYPE=Prescott\n".data(using: .utf8)!)
            setenv("FN2E_GEMM_FALLBACK", "1", 1)
            reexec(arguments: arguments, setting: ["OPENBLAS_CORETYPE": "Prescott"])
        }
        return false
    }

    /// Best GFLOP/s of a 1024×1024 square `cblas_sgemm` over repeated runs lasting about `seconds`.
    public static func measurePeakGFLOPS(seconds: Double = 1, size n: Int = 1024) -> Double {
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = 0.0
        let start = Date()
        repeat {
            let t0 = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            best = max(best, 2 * Double(n) * Double(n) * Double(n) / max(dt, 1e-9) / 1e9)
        } while Date().timeIntervalSince(start) < seconds
        return best
    }

    /// Sets the variables and FN2E_REEXECED=1, then replaces this process with /proc/self/exe.
    private static func reexec(arguments: [String], setting variables: [String: String]) -> Void {
        for (k, v) in variables { setenv(k, v, 1) }
        setenv("FN2E_REEXECED", "1", 1)
        var cargs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // Only reached if execv failed: carry on as we are.
        let msg = "fn2e: warning: could not re-execute with \(variables): \(String(cString: strerror(errno)))\n"
        FileHandle.standardError.write(msg.data(using: .utf8)!)
        for p in cargs { free(p) }
    }
}
