import Foundation
import IR

/// Paths inside the repository, found from this file's location.
enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/IRTests/Support.swift
        return url.path
    }()
    static let goldens = root + "/Tests/Goldens"
    static let graphs = root + "/Graphs"

    static func files(in dir: String, prefix: String = "") -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".fn2e") && $0.hasPrefix(prefix) }.sorted().map { dir + "/" + $0 }
    }

    static func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
}

/// All diagnostics of a failed load, rendered, or nil when it loaded.
func loadErrors(_ text: String, file: String = "test.fn2e") -> String? {
    let sources = SourceManager()
    do {
        _ = try Loader.load(text: text, file: file, sources: sources)
        return nil
    } catch let list as DiagnosticList {
        return sources.render(list.diagnostics)
    } catch {
        return "\(error)"
    }
}
