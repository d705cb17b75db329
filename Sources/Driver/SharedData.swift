import Foundation

/// The shared data folder (`FN2E_DATA`: CK+, the MTCNN and dlib models), read in place and never
/// copied into the repository.
public enum SharedData {
    /// `$FN2E_DATA/<relative>` when it exists; otherwise nil and why (a test's skip message).
    public static func find(_ relative: String) -> (path: String?, reason: String) {
        guard let root = ProcessInfo.processInfo.environment["FN2E_DATA"], !root.isEmpty else {
            return (nil, "FN2E_DATA is not set; point it at the shared data folder (e.g. FN2E_DATA=../shared/data) to run this test")
        }
        let path = (root as NSString).appendingPathComponent(relative)
        return FileManager.default.fileExists(atPath: path) ? (path, "") : (nil, "\(path) is missing")
    }
}
