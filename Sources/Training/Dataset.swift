import Foundation
import Tensors

/// One labelled image and the group (subject) it belongs to.
public struct Sample: Hashable {
    public var path: String
    public var label: Int
    public var group: String

    public init(path: String, label: Int, group: String) {
        (self.path, self.label, self.group) = (path, label, group)
    }
}

/// Labelled images from a CSV index (`path,label,...` with a header; optional group column) or a
/// folder of class folders. Class names map to label numbers in `classes` order.
public struct Dataset {
    public var samples: [Sample]
    public var classes: [String]
    /// Rows skipped because their image was missing or undecodable (only with `skipBad`).
    public var skipped = 0
    /// Samples per group in the whole index, before classes were dropped: folds are dealt from
    /// these, so every class subset of one index shares one subject-to-fold assignment.
    public var groupSizes: [String: Int] = [:]

    public init(samples: [Sample], classes: [String]) {
        self.samples = samples
        self.classes = classes
    }

    /// Reads an index. `classes` (if non-empty) fixes the label order and drops other classes;
    /// otherwise every class found is kept, sorted by name. Errors name the file and line.
    public static func load(index path: String, root: String? = nil, group: String = "subject",
                            classes wanted: [String] = []) throws -> Dataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError("\(path): error: no such file or folder")
        }
        let rows: [(path: String, label: String, group: String)]
        if isDir.boolValue {
            rows = try folderRows(path)
        } else {
            rows = try csvRows(path, root: root, groupColumn: group)
        }
        let found = Set(rows.map(\.label))
        let classes = wanted.isEmpty ? found.sorted() : wanted
        for c in wanted where !found.contains(c) {
            throw DataError("\(path): error: class '\(c)' has no samples (found: \(found.sorted().joined(separator: ", ")))")
        }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($0.element, $0.offset) })
        let samples = rows.compactMap { r in index[r.label].map { Sample(path: r.path, label: $0, group: r.group) } }
        guard !samples.isEmpty else { throw DataError("\(path): error: no samples") }
        var d = Dataset(samples: samples, classes: classes)
        for r in rows { d.groupSizes[r.group, default: 0] += 1 }
        return d
    }

    static func folderRows(_ dir: String) throws -> [(path: String, label: String, group: String)] {
        let fm = FileManager.default
        var rows: [(String, String, String)] = []
        for cls in try fm.contentsOfDirectory(atPath: dir).sorted() {
            var isDir: ObjCBool = false
            let sub = dir + "/" + cls
            guard fm.fileExists(atPath: sub, isDirectory: &isDir), isDir.boolValue, !cls.hasPrefix(".") else { continue }
            for f in try fm.contentsOfDirectory(atPath: sub).sorted() where imageExtensions.contains((f as NSString).pathExtension.lowercased()) {
                rows.append((sub + "/" + f, cls, f))
            }
        }
        return rows
    }

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "bmp", "pgm", "ppm", "tga", "gif"]

    static func csvRows(_ path: String, root: String?, groupColumn: String) throws -> [(path: String, label: String, group: String)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): error: cannot read") }
        guard let text = String(data: data, encoding: .utf8) else { throw DataError("\(path): error: not UTF-8 text") }
        let base = root ?? (path as NSString).deletingLastPathComponent
        // Character.isNewline covers "\r\n", which Swift treats as one character.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first else { throw DataError("\(path):1: error: empty index") }
        let columns = splitCSV(header)
        guard let pi = columns.firstIndex(of: "path"), let li = columns.firstIndex(of: "label") else {
            throw DataError("\(path):1:1: error: the header must name 'path' and 'label' columns, found \(columns.joined(separator: ","))")
        }
        let gi = columns.firstIndex(of: groupColumn)
        var rows: [(String, String, String)] = []
        for (n, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let f = splitCSV(line)
            guard f.count == columns.count else {
                throw DataError("\(path):\(n + 1):1: error: expected \(columns.count) columns, found \(f.count)")
            }
            guard !f[pi].isEmpty, !f[li].isEmpty else { throw DataError("\(path):\(n + 1):1: error: empty path or label") }
            let p = f[pi].hasPrefix("/") ? f[pi] : base + "/" + f[pi]
            rows.append((p, f[li], gi.map { f[$0] } ?? f[pi]))
        }
        return rows
    }

    /// Splits one CSV line; double quotes may wrap a field with commas.
    static func splitCSV(_ line: Substring) -> [String] {
        var out: [String] = []
        var field = ""
        var quoted = false
        for c in line {
            if c == "\"" { quoted.toggle() } else if c == ",", !quoted { out.append(field); field = "" } else { field.append(c) }
        }
        out.append(field)
        return out.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Samples per class.
    public func classCounts(_ indices: [Int]) -> [Int] {
        var c = [Int](repeating: 0, count: classes.count)
        for i in indices { c[samples[i].label] += 1 }
        return c
    }
}

public struct DataError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Subject-independent splits: grouped k-fold assignment, then a validation split of the groups of
/// the training folds. Deterministic for a seed.
public struct Splits {
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]

    /// Fold of every group: groups are shuffled by the seed, then dealt largest-first to the fold
    /// with the fewest samples so far, so folds are balanced and no group is in two folds.
    public static func foldOfGroup(_ data: Dataset, folds: Int, seed: UInt64) -> [String: Int] {
        var sizes = data.groupSizes
        if sizes.isEmpty { for s in data.samples { sizes[s.group, default: 0] += 1 } }
        var groups = sizes.keys.sorted()
        var rng = Xoshiro256(seed: seed ^ 0xF01D)
        groups.shuffle(using: &rng)
        groups.sort { sizes[$0]! > sizes[$1]! }  // stable: ties keep the shuffled order
        var load = [Int](repeating: 0, count: max(folds, 1))
        var fold: [String: Int] = [:]
        for g in groups {
            let f = load.indices.min { load[$0] < load[$1] }!
            fold[g] = f
            load[f] += sizes[g]!
        }
        return fold
    }

    /// Test = samples of fold `fold` (none when fold < 0); validation = `valFraction` of the
    /// remaining groups (at least one when the fraction is positive); train = the rest.
    public init(_ data: Dataset, folds: Int, fold: Int, valFraction: Double, seed: UInt64) throws {
        guard folds >= 2 || fold < 0 else { throw DataError("error: folds must be at least 2, found \(folds)") }
        guard fold < folds else { throw DataError("error: fold \(fold) does not exist (folds 0..\(folds - 1))") }
        let groupFold = fold < 0 ? [:] : Splits.foldOfGroup(data, folds: folds, seed: seed)
        var trainGroups = Array(Set(data.samples.map(\.group)).filter { groupFold[$0] != fold || fold < 0 }).sorted()
        var rng = Xoshiro256(seed: seed ^ 0x7A1)
        trainGroups.shuffle(using: &rng)
        let nVal = valFraction > 0 ? max(1, Int((Double(trainGroups.count) * valFraction).rounded())) : 0
        let valGroups = Set(trainGroups.prefix(nVal))
        train = []; validation = []; test = []
        for (i, s) in data.samples.enumerated() {
            if fold >= 0, groupFold[s.group] == fold { test.append(i) } else if valGroups.contains(s.group) { validation.append(i) } else { train.append(i) }
        }
        guard !train.isEmpty else { throw DataError("error: the training split is empty") }
    }
}
