import Foundation
import Tensors

/// One labelled image, the group (subject) it belongs to, and its value in a fixed split's column
/// (`usage`: Training, PublicTest; empty without one).
public struct Sample: Hashable {
    public var path: String
    public var label: Int
    public var group: String
    public var part: String

    public init(path: String, label: Int, group: String, part: String = "") {
        (self.path, self.label, self.group, self.part) = (path, label, group, part)
    }
}

/// A split given by a column of the index: rows whose `column` is `train` are trained on (and give
/// the validation rows), those whose value is `test` are the test set, the others are unused.
/// Written `COLUMN:TRAIN/TEST`, e.g. `usage:Training/PublicTest`.
public struct FixedSplit: Equatable, Sendable {
    public var column: String, train: String, test: String

    public init(column: String, train: String, test: String) { (self.column, self.train, self.test) = (column, train, test) }

    /// Parses `COLUMN:TRAIN/TEST`; nil when it is not of that form.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let values = parts[1].split(separator: "/", omittingEmptySubsequences: false)
        guard values.count == 2, !parts[0].isEmpty, !values[0].isEmpty, !values[1].isEmpty, values[0] != values[1] else { return nil }
        (column, train, test) = (String(parts[0]), String(values[0]), String(values[1]))
    }

    public var text: String { "\(column):\(train)/\(test)" }
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
    /// With `select`, only rows whose `column` holds one of `values` are kept, and each sample gets
    /// its value (`part`); the column must exist.
    public static func load(index path: String, root: String? = nil, group: String = "subject",
                            classes wanted: [String] = [], select: (column: String, values: Set<String>)? = nil) throws -> Dataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError("\(path): error: no such file or folder")
        }
        let rows: [Row]
        if isDir.boolValue {
            if let select { throw DataError("\(path): error: a folder of class folders has no column '\(select.column)' to select rows by; use a CSV index") }
            rows = try folderRows(path)
        } else {
            rows = try csvRows(path, root: root, groupColumn: group, partColumn: select?.column).filter { select?.values.contains($0.part) ?? true }
            if let select, rows.isEmpty {
                throw DataError("\(path): error: no row has \(select.column) = \(select.values.sorted().joined(separator: " or "))")
            }
        }
        let found = Set(rows.map(\.label))
        let classes = wanted.isEmpty ? found.sorted() : wanted
        for c in wanted where !found.contains(c) {
            throw DataError("\(path): error: class '\(c)' has no samples (found: \(found.sorted().joined(separator: ", ")))")
        }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($0.element, $0.offset) })
        let samples = rows.compactMap { r in index[r.label].map { Sample(path: r.path, label: $0, group: r.group, part: r.part) } }
        guard !samples.isEmpty else { throw DataError("\(path): error: no samples") }
        var d = Dataset(samples: samples, classes: classes)
        for r in rows { d.groupSizes[r.group, default: 0] += 1 }
        return d
    }

    typealias Row = (path: String, label: String, group: String, part: String)

    static func folderRows(_ dir: String) throws -> [Row] {
        let fm = FileManager.default
        var rows: [Row] = []
        for cls in try fm.contentsOfDirectory(atPath: dir).sorted() {
            var isDir: ObjCBool = false
            let sub = dir + "/" + cls
            guard fm.fileExists(atPath: sub, isDirectory: &isDir), isDir.boolValue, !cls.hasPrefix(".") else { continue }
            for f in try fm.contentsOfDirectory(atPath: sub).sorted() where imageExtensions.contains((f as NSString).pathExtension.lowercased()) {
                rows.append((sub + "/" + f, cls, f, ""))
            }
        }
        return rows
    }

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "bmp", "pgm", "ppm", "tga", "gif"]

    static func csvRows(_ path: String, root: String?, groupColumn: String, partColumn: String? = nil) throws -> [Row] {
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
        var si: Int?
        if let partColumn {
            guard let i = columns.firstIndex(of: partColumn) else {
                throw DataError("\(path):1:1: error: no column '\(partColumn)' to split by (columns: \(columns.joined(separator: ",")))")
            }
            si = i
        }
        var rows: [Row] = []
        for (n, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let f = splitCSV(line)
            guard f.count == columns.count else {
                throw DataError("\(path):\(n + 1):1: error: expected \(columns.count) columns, found \(f.count)")
            }
            guard !f[pi].isEmpty, !f[li].isEmpty else { throw DataError("\(path):\(n + 1):1: error: empty path or label") }
            let p = f[pi].hasPrefix("/") ? f[pi] : base + "/" + f[pi]
            rows.append((p, f[li], gi.map { f[$0] } ?? f[pi], si.map { f[$0] } ?? ""))
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

/// Training, validation and test rows, deterministic for a seed: either grouped k-fold (a test fold;
/// validation = whole groups of the other folds) or a fixed split by a column (validation drawn
/// from the training rows, stratified by class). Either way an optional training subset follows.
public struct Splits {
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]

    /// The splits a run's settings ask for: `split` (a column) or `group`/`folds`/`fold`, then
    /// `val_fraction` (or with a split `val_count`, drawn stratified like a training subset) and
    /// `train_subset`, all drawn with `split_seed` (default: `seed`).
    public init(_ data: Dataset, settings: Settings) throws {
        let seed = UInt64(settings.int(settings.string("split_seed").isEmpty ? "seed" : "split_seed"))
        if let split = FixedSplit(settings.string("split")) {
            try self.init(data, split: split, valFraction: settings.double("val_fraction"), seed: seed)
            if settings.int("val_count") > 0 {
                guard settings.double("val_fraction") == 0 else { throw DataError("error: set val_fraction or val_count, not both") }
                let rows = train
                validation = try Splits.subset(rows, of: data, size: settings.int("val_count"), seed: seed ^ 0x7A1)
                let held = Set(validation)
                train = rows.filter { !held.contains($0) }
            }
        } else {
            guard settings.int("val_count") == 0 else { throw DataError("error: val_count needs a fixed split (split = COLUMN:TRAIN/TEST); with k-fold, set val_fraction") }
            try self.init(data, folds: settings.int("folds"), fold: settings.int("fold"), valFraction: settings.double("val_fraction"), seed: seed)
        }
        let n = settings.int("train_subset")
        if n > 0 { train = try Splits.subset(train, of: data, size: n, seed: seed) }
    }

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

    /// A fixed split: test = rows whose column holds `split.test`; validation = round(`valFraction`
    /// x n) of each class's n rows holding `split.train`, chosen by the seed; train = the rest of
    /// those. Rows with other values are in no split (and groups play no part).
    public init(_ data: Dataset, split: FixedSplit, valFraction: Double, seed: UInt64) throws {
        guard valFraction >= 0, valFraction < 1 else { throw DataError("error: val_fraction must be in [0, 1), found \(valFraction)") }
        var byClass = [[Int]](repeating: [], count: data.classes.count)
        test = []
        for (i, s) in data.samples.enumerated() {
            if s.part == split.train { byClass[s.label].append(i) } else if s.part == split.test { test.append(i) }
        }
        var held = Set<Int>()
        for (c, rows) in byClass.enumerated() {
            var rng = Xoshiro256(seed: seed ^ 0x7A1 ^ (UInt64(c + 1) &* 0x9E37_79B9_7F4A_7C15))
            held.formUnion(rows.shuffled(using: &rng).prefix(Int((Double(rows.count) * valFraction).rounded())))
        }
        let rows = byClass.joined().sorted()
        train = rows.filter { !held.contains($0) }
        validation = rows.filter { held.contains($0) }
        guard !train.isEmpty else {
            throw DataError("error: no training rows: no sample has \(split.column) = \(split.train) (with the classes kept)")
        }
    }

    /// `size` of the `rows`, stratified by class and nested: each class's rows are put in an order
    /// drawn by the seed (the class's own generator); the k-th of a class's n rows gets the priority
    /// (k + 0.5) / n; the subset is the `size` rows of lowest priority (ties in class order). So the
    /// subset of 500 lies inside that of 1,000, every class has its share of `size` to within one
    /// row, and the subset depends only on the rows, the classes and the seed (not on the method or
    /// the training seed when `split_seed` is fixed). Returned in index order.
    public static func subset(_ rows: [Int], of data: Dataset, size: Int, seed: UInt64) throws -> [Int] {
        guard size <= rows.count else { throw DataError("error: train_subset \(size) is more than the \(rows.count) training rows") }
        var byClass = [[Int]](repeating: [], count: data.classes.count)
        for i in rows.sorted() { byClass[data.samples[i].label].append(i) }
        var ranked: [(priority: Double, label: Int, row: Int)] = []
        for (c, members) in byClass.enumerated() {
            var rng = Xoshiro256(seed: seed ^ 0x5B5E7 ^ (UInt64(c + 1) &* 0xD1B5_4A32_D192_ED03))
            for (k, i) in members.shuffled(using: &rng).enumerated() {
                ranked.append(((Double(k) + 0.5) / Double(members.count), c, i))
            }
        }
        ranked.sort { ($0.priority, $0.label) < ($1.priority, $1.label) }
        return ranked.prefix(size).map(\.row).sorted()
    }
}

extension Splits {
    /// Decodes the images the splits use (a training subset leaves most of a large index unread),
    /// keeps only their samples in `data`, and renumbers the splits; with `skipBad`, an unreadable
    /// image is dropped from its split and counted, else it is an error naming the file.
    public mutating func decode(_ data: inout Dataset, with pre: Preprocess, skipBad: Bool) throws -> [Tensor] {
        var images: [Tensor] = [], kept: [Sample] = [], position: [Int: Int] = [:]
        for i in (train + validation + test).sorted() {
            do {
                images.append(try pre.decode(data.samples[i].path))
                position[i] = kept.count
                kept.append(data.samples[i])
            } catch {
                if !skipBad { throw error }
                data.skipped += 1
            }
        }
        data.samples = kept
        (train, validation, test) = (train.compactMap { position[$0] }, validation.compactMap { position[$0] }, test.compactMap { position[$0] })
        guard !train.isEmpty else { throw DataError("error: no readable training image") }
        return images
    }
}
