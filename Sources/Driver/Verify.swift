// `fn2e-run verify DIR`: every file of a run folder (or of a recipe's output folder, recursively)
// read back and checked the way fn2e checks it before use.
import Foundation
import IR
import Tensors
import Training

public enum FolderVerifier {
    public struct Report {
        /// One line per file or run folder: "ok", "note" or "error", the path, what was found.
        public var lines: [String] = []
        public var problems = 0
        public var text: String { lines.joined(separator: "\n") + "\n" + (problems == 0 ? "verify: no problems\n" : "verify: \(problems) problem\(problems == 1 ? "" : "s")\n") }
    }

    /// Checks `directory` and everything under it: safetensors files against their checksums (a
    /// file without them is a note), graphs (.fn2e) parsed and verified, metrics.jsonl line by
    /// line; a run folder (one with settings.txt) without its completion marker, or in use by a
    /// process now, is a note; leftover temporary files and set-aside damaged checkpoints too.
    public static func verify(_ directory: String) -> Report {
        var r = Report()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            r.lines.append("error: \(directory): not a folder")
            r.problems = 1
            return r
        }
        let files = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).sorted()
        for rel in [""] + files {
            let path = rel.isEmpty ? directory : directory + "/" + rel
            let name = (rel as NSString).lastPathComponent
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                guard FileManager.default.fileExists(atPath: path + "/settings.txt") else { continue }
                if RunLock.isHeld(path) {
                    r.lines.append("note: \(path): in use by a process now (its files may change)")
                } else if !FileManager.default.fileExists(atPath: path + "/" + RunCompletion.fileName) {
                    r.lines.append("note: \(path): unfinished run (no completion marker)")
                }
                continue
            }
            if name.contains(".tmp-") {
                r.lines.append("note: \(path): temporary file of an interrupted write (the next run in the folder removes it)")
            } else if name.hasSuffix(".damaged") {
                r.lines.append("note: \(path): a damaged checkpoint set aside by --resume")
            } else if name.hasSuffix(".safetensors") {
                do {
                    let (n, checked) = try SafeTensors.verify(path: path)
                    r.lines.append(checked ? "ok: \(path): \(n) tensors, checksums match" : "note: \(path): \(n) tensors, no fn2e checksums (written by another program): not verified")
                } catch {
                    r.lines.append("error: \(error)")
                    r.problems += 1
                }
            } else if name.hasSuffix(".fn2e") {
                do {
                    _ = try Loader.load(path: path)
                    r.lines.append("ok: \(path): graph parses and verifies")
                } catch {
                    r.lines.append("error: \(path): graph does not load: \(error)")
                    r.problems += 1
                }
            } else if name.hasSuffix(".jsonl") {
                let lines = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self).split(separator: "\n")
                let bad = lines.indices.filter { (try? JSONSerialization.jsonObject(with: Data(lines[$0].utf8))) == nil }
                if let first = bad.first {
                    r.lines.append("error: \(path):\(first + 1): \(bad.count) line\(bad.count == 1 ? " is" : "s are") not JSON")
                    r.problems += 1
                } else {
                    r.lines.append("ok: \(path): \(lines.count) JSON lines")
                }
            }
        }
        return r
    }
}
