import Foundation
import Tensors
@testable import Training
import XCTest

/// One writer per run folder, through the real `fn2e-run train`: a second process on a folder in
/// use is refused (naming the folder and the holder) or waits with --wait-lock, and the first's
/// results are those of an undisturbed run; a SIGKILLed holder leaves no lock behind.
final class RunLockTests: XCTestCase {
    /// Writes the toy settings (`iterations` steps into `name`'s folder) to a file; returns it and the output folder.
    static func settingsFile(_ name: String, iterations: Int = 60) throws -> (String, String) {
        let s = try Toy.settings(name, ["iterations": String(iterations), "eval_interval": "20", "checkpoint_interval": "20"])
        let file = Toy.dir + "/\(name).train"
        try s.fileText.write(toFile: file, atomically: true, encoding: .utf8)
        return (file, s.path("output"))
    }

    /// Starts `fn2e-run ARGS` with one thread, its stderr to `log`.
    static func start(_ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try RecipeSmokeTests.executable())
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(["FN2E_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"]) { $1 }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    static func run(_ args: [String], log: String) throws -> Int32 {
        let p = try start(args, log: log)
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Waits until `condition` holds (polling), failing after a minute.
    static func waitFor(_ what: String, _ condition: () -> Bool) throws {
        let end = Date().addingTimeInterval(60)
        while !condition() {
            guard Date() < end else { throw TrainingError("timed out waiting for \(what)") }
            usleep(5000)
        }
    }

    /// The holder's pid written into the lock file.
    static func holderIs(_ p: Process, _ dir: String) -> Bool {
        Toy.text(dir + "/" + RunLock.fileName).hasPrefix("pid \(p.processIdentifier)\n")
    }

    static func assertSameRun(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try Toy.assertSameTensors(a + "/model.safetensors", b + "/model.safetensors", file: file, line: line)
        let strip = { (path: String) in Toy.text(path).replacingOccurrences(of: #""(seconds|elapsed|time|images_per_second|wall)[a-z_]*":[^,}]*,?"#, with: "", options: .regularExpression) }
        XCTAssertEqual(strip(a + "/metrics.jsonl"), strip(b + "/metrics.jsonl"), file: file, line: line)
        XCTAssertTrue(RunCompletion.isFinished(b), file: file, line: line)
    }

    func testSecondProcessIsRefusedOrWaitsAndTheFirstIsUndisturbed() throws {
        let (reference, refOut) = try Self.settingsFile("lock-reference")
        XCTAssertEqual(try Self.run(["train", reference], log: Toy.dir + "/lock-reference.log"), 0, Toy.text(Toy.dir + "/lock-reference.log"))
        let (settings, out) = try Self.settingsFile("lock-shared")
        let first = try Self.start(["train", settings], log: Toy.dir + "/lock-first.log")
        try Self.waitFor("the first process to take the lock") { Self.holderIs(first, out) || !first.isRunning }
        // Stopped while it holds the lock, so the second surely finds it held.
        kill(first.processIdentifier, SIGSTOP)
        let refusedLog = Toy.dir + "/lock-refused.log"
        XCTAssertEqual(try Self.run(["train", settings], log: refusedLog), 1)
        let refused = Toy.text(refusedLog)
        XCTAssert(refused.contains("\(out) is in use by another process (pid \(first.processIdentifier) on host "), refused)
        XCTAssert(refused.contains("pass --wait-lock to wait"), refused)

        let waitLog = Toy.dir + "/lock-waiting.log"
        let waiting = try Self.start(["train", settings, "--wait-lock"], log: waitLog)
        try Self.waitFor("the second process to wait") { Toy.text(waitLog).contains("waiting for \(out), in use by pid \(first.processIdentifier)") }
        XCTAssertTrue(waiting.isRunning)
        kill(first.processIdentifier, SIGCONT)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0, Toy.text(Toy.dir + "/lock-first.log"))
        waiting.waitUntilExit()
        XCTAssertEqual(waiting.terminationStatus, 0, Toy.text(waitLog))
        XCTAssert(Toy.text(waitLog).contains("\(out): lock taken"), Toy.text(waitLog))
        try Self.assertSameRun(refOut, out)
    }

    func testLockOfAKilledProcessDoesNotBlock() throws {
        let (reference, refOut) = try Self.settingsFile("lock-reference-2")
        XCTAssertEqual(try Self.run(["train", reference], log: Toy.dir + "/lock-reference-2.log"), 0)
        let (settings, out) = try Self.settingsFile("lock-killed")
        let first = try Self.start(["train", settings], log: Toy.dir + "/lock-killed.log")
        try Self.waitFor("the first process to take the lock") { Self.holderIs(first, out) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + RunLock.fileName), "the lock file stays; the lock does not")
        XCTAssertFalse(RunLock.isHeld(out))
        XCTAssertFalse(RunCompletion.isFinished(out))
        let log = Toy.dir + "/lock-after-kill.log"
        XCTAssertEqual(try Self.run(["train", settings], log: log), 0, Toy.text(log))
        try Self.assertSameRun(refOut, out)
    }

    /// In one process: the lock's error, its holder line, and the completion marker.
    func testLockAndMarkerInProcess() throws {
        let dir = Toy.output("lock-inprocess")
        var lock: RunLock? = try RunLock(directory: dir, wait: false, log: { _ in })
        XCTAssertTrue(Toy.text(dir + "/run.lock").hasPrefix("pid \(getpid())\nhost "))
        XCTAssertFalse(RunCompletion.isFinished(dir))
        try RunCompletion.mark(dir, step: 3)
        XCTAssertFalse(RunCompletion.isFinished(dir), "held by a writer: not finished for anyone else")
        XCTAssertThrowsError(try RunLock(directory: dir, wait: false, log: { _ in })) {
            XCTAssert("\($0)".hasPrefix("\(dir) is in use by another process (pid \(getpid()) on host "), "\($0)")
        }
        XCTAssertNotNil(lock)
        lock = nil
        XCTAssertTrue(RunCompletion.isFinished(dir))
    }
}
