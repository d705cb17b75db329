import Foundation

/// One writer per run folder: an exclusive advisory lock (`flock`) on `DIR/run.lock`, held while a
/// process writes the folder. The kernel releases it when the process ends in any way, SIGKILL
/// included, so a lock is never stale; the file itself stays and says who held it last (pid, host,
/// command, time). Only rank 0 of a data-parallel run writes, so only rank 0 locks.
public final class RunLock {
    public static let fileName = "run.lock"
    public let directory: String
    private let fd: Int32

    /// Takes the lock of `directory` (created if need be). Held by another process: an error naming
    /// the folder and the holder, or with `wait`, a line through `log` and a wait until it is free.
    public init(directory: String, wait: Bool, log: (String) -> Void) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + Self.fileName
        // Close-on-exec: a child process (the recipe's trainings) must not inherit, and so keep, the lock.
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainingError("\(path): cannot open the run folder's lock file: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = Self.holder(path)
            guard errno == EWOULDBLOCK, wait else {
                close(fd)
                throw TrainingError("\(directory) is in use by another process (\(holder)): one process writes a run folder at a time; wait for it to finish, pass --wait-lock to wait, or choose another output folder")
            }
            log("waiting for \(directory), in use by \(holder) (--wait-lock)")
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    close(fd)
                    throw TrainingError("\(path): cannot lock: \(String(cString: strerror(errno)))")
                }
            }
            log("\(directory): lock taken")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let text = "pid \(getpid())\nhost \(String(cString: host))\ncommand \(CommandLine.arguments.joined(separator: " "))\nsince \(ISO8601DateFormatter().string(from: Date()))\n"
        ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { close(fd) }

    /// Who holds (or last held) the lock, from its file: "pid P on host H: command".
    static func holder(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let pid = fields["pid"] else { return "holder unknown" }
        return "pid \(pid) on host \(fields["host"] ?? "?")" + (fields["command"].map { ": \($0)" } ?? "")
    }

    /// Whether another process holds the lock of `directory` now (false when there is none).
    public static func isHeld(_ directory: String) -> Bool {
        let fd = open(directory + "/" + fileName, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return true
    }
}

/// The run's completion marker, `DIR/complete`: written last (temporary file and rename) when a
/// training finished, removed when one starts. A folder without it is unfinished, whatever else it holds.
public enum RunCompletion {
    public static let fileName = "complete"

    public static func mark(_ directory: String, step: Int) throws {
        let path = directory + "/" + fileName
        try "step \(step)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }

    public static func clear(_ directory: String) { unlink(directory + "/" + fileName) }

    /// Finished, and no process writing it now.
    public static func isFinished(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/" + fileName) && !RunLock.isHeld(directory)
    }
}
