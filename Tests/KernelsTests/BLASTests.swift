import Kernels
import XCTest

// These tests never set or unset OPENBLAS_CORETYPE (it only takes effect at load time, and the
// re-exec would replace the test process).
final class BLASTests: XCTestCase {
    func testCoreSelection() {
        XCTAssertEqual(BLAS.bestCoreType(cpuFlags: ["sse3", "avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq"]), "SkylakeX")
        XCTAssertEqual(BLAS.bestCoreType(cpuFlags: ["sse3", "avx2", "fma", "avx512f"]), "Haswell")
        XCTAssertEqual(BLAS.bestCoreType(cpuFlags: ["sse3", "avx2"]), "Prescott")
        XCTAssertEqual(BLAS.bestCoreType(cpuFlags: ["pni"]), "Prescott")
        XCTAssertNil(BLAS.bestCoreType(cpuFlags: []))
        XCTAssertFalse(BLAS.cpuFlags().isEmpty, "/proc/cpuinfo has flags")
        let avx2: Set<String> = ["sse3", "avx2", "fma"]
        XCTAssertEqual(BLAS.startupEnvironment([:], cpuFlags: avx2), ["OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_THREAD_TIMEOUT": "4"])
        XCTAssertEqual(BLAS.startupEnvironment(["OPENBLAS_CORETYPE": "Prescott"], cpuFlags: avx2), ["OPENBLAS_THREAD_TIMEOUT": "4"])
        XCTAssertEqual(BLAS.startupEnvironment(["OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_THREAD_TIMEOUT": "28"], cpuFlags: avx2), [:])
    }

    func testConfigAndSanity() {
        XCTAssertFalse(BLAS.corename.isEmpty)
        XCTAssertGreaterThan(BLAS.threads, 0)
        XCTAssertFalse(BLAS.configString.isEmpty)
        XCTAssertTrue(BLAS.sanityCheckGEMM(reexecOnFailure: false), "sgemm disagrees with a Double product on core \(BLAS.corename)")
        XCTAssertGreaterThan(BLAS.measurePeakGFLOPS(seconds: 0.05, size: 256), 0)
    }
}
