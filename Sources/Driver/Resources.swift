import Foundation

/// Finds the project's resource files (the recipes and graphs in `Graphs/`) from anywhere, so that
/// defaults such as `Graphs/onet.recipe` work outside the checkout.
public enum Resources {
    /// The folder that holds `Graphs/`: `FN2E_HOME` when set; else the checkout the running executable
    /// was built in (`<checkout>/.build/<config>/fn2e-run`, so the first folder above the executable
    /// that has `Graphs/`); nil when neither is found.
    public static var home: String? {
        if let h = ProcessInfo.processInfo.environment["FN2E_HOME"], !h.isEmpty { return h }
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Graphs").path) { return dir.path }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// A resource path such as `Graphs/onet.recipe`: as given when it exists from the working folder
    /// (or is absolute), else under `home`. A path found in neither place comes back as given, so
    /// the error that follows names it; `missingHint` says how to point at the files.
    public static func locate(_ path: String) -> String {
        let fm = FileManager.default
        if path.hasPrefix("/") || fm.fileExists(atPath: path) { return path }
        if let h = home, fm.fileExists(atPath: h + "/" + path) { return h + "/" + path }
        return path
    }

    /// What to add to a "cannot read" error for a resource path.
    public static let missingHint = "run from the fn2e checkout, or set FN2E_HOME to it (the folder that holds Graphs/)"
}
