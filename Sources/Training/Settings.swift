import Foundation

/// A run's settings: `key = value` lines in a file users read and version (`#` comments), then
/// `--set key=value` overrides from the command line. One table (`Settings.keys`) lists every key
/// with its default and meaning; parsing, validation and the printed table all read it.
public struct Settings {
    public struct Key {
        public var name: String
        public var defaultValue: String
        public var help: String
    }

    public static let keys: [Key] = [
        Key(name: "graph", defaultValue: "", help: "training graph file (.fn2e); its loss is trained"),
        Key(name: "graph_name", defaultValue: "", help: "graph in the file (default: its last graph)"),
        Key(name: "include", defaultValue: "", help: "folders searched for imported graph files (comma separated), e.g. an imported face net"),
        Key(name: "loss", defaultValue: "", help: "loss value (default: the graph's first loss output, else its only scalar output)"),
        Key(name: "logits", defaultValue: "", help: "class scores for evaluation (default: softmax_cross_entropy's input)"),
        Key(name: "weights", defaultValue: "", help: "initial weights: [PREFIX=]FILE.safetensors, comma separated"),
        Key(name: "data", defaultValue: "", help: "CSV index (path,label,...) or a folder of class folders"),
        Key(name: "root", defaultValue: "", help: "folder the CSV paths are relative to (default: the CSV's folder)"),
        Key(name: "group", defaultValue: "subject", help: "CSV column that groups samples for k-fold (no group in two folds)"),
        Key(name: "folds", defaultValue: "10", help: "number of grouped folds"),
        Key(name: "fold", defaultValue: "0", help: "the held-out test fold (0-based); -1 trains on everything"),
        Key(name: "split", defaultValue: "", help: "a fixed split instead of k-fold, COLUMN:TRAIN/TEST (e.g. usage:Training/PublicTest): rows whose COLUMN is TRAIN are trained on, TEST the test set, others unused"),
        Key(name: "val_fraction", defaultValue: "0", help: "validation held out of the training rows: this fraction of the groups (k-fold), of each class's rows (split)"),
        Key(name: "val_count", defaultValue: "0", help: "with split: this many validation rows instead of a fraction, stratified by class (each class within one row of its share)"),
        Key(name: "train_subset", defaultValue: "0", help: "train on this many of the training rows (0: all): stratified by class, nested (a smaller subset lies in a larger), drawn after validation"),
        Key(name: "split_seed", defaultValue: "", help: "seed of the folds, validation and training subset (default: seed); fix it to keep them across seeds"),
        Key(name: "classes", defaultValue: "", help: "class names in label order (default: all, sorted); others are dropped"),
        Key(name: "channels", defaultValue: "1", help: "1 (grayscale) or 3 (RGB; gray images are replicated)"),
        Key(name: "resize", defaultValue: "", help: "HxW images are resized to before cropping (default: the graph's input size)"),
        Key(name: "crop_mode", defaultValue: "center", help: "center or random crop to the graph's input size"),
        Key(name: "crop_pad", defaultValue: "0", help: "random crops may reach this many pixels beyond the image (edge pixels repeated)"),
        Key(name: "mirror", defaultValue: "false", help: "random horizontal mirror in training"),
        Key(name: "rotate", defaultValue: "0", help: "random rotation in training, up to +-this many degrees, about the crop's centre"),
        Key(name: "zoom", defaultValue: "0", help: "random scale in training, up to +-this fraction (0.1: 0.9x to 1.1x)"),
        Key(name: "brightness", defaultValue: "0", help: "random brightness in training: up to +-this many gray levels (0-255) added"),
        Key(name: "contrast", defaultValue: "0", help: "random contrast in training: pixels scaled about mid-gray (127.5) by 1 +-up to this fraction"),
        Key(name: "test_views", defaultValue: "1", help: "views of each image whose class probabilities evaluation and prediction average: 1 (the centre crop), 2 (it and its mirror), 10 (the centre and the four farthest crops training's random crops reach, each also mirrored; needs crop_mode = random)"),
        Key(name: "equalize", defaultValue: "none", help: "none, or hist: each image's histogram equalized (OpenCV's equalizeHist) as it is read, in training, evaluation and prediction"),
        Key(name: "mean", defaultValue: "0", help: "subtracted from pixels (0-255)"),
        Key(name: "scale", defaultValue: "1", help: "multiplies pixels after the mean"),
        Key(name: "transpose", defaultValue: "false", help: "swap H and W (for MATLAB-trained Caffe models)"),
        Key(name: "align", defaultValue: "ckplus48", help: "face template `predict --detect` and `eval --detect` cut faces out of photos with (ckplus48, fer2013: gray 48x48 in CK+48's or FER2013's framing)"),
        Key(name: "solver", defaultValue: "sgd", help: "sgd (Caffe momentum SGD) or adam"),
        Key(name: "lr", defaultValue: "0.01", help: "base learning rate"),
        Key(name: "momentum", defaultValue: "0.9", help: "SGD momentum"),
        Key(name: "weight_decay", defaultValue: "0.0005", help: "L2 weight decay (times each parameter's decay_mult)"),
        Key(name: "beta1", defaultValue: "0.9", help: "Adam beta1"),
        Key(name: "beta2", defaultValue: "0.999", help: "Adam beta2"),
        Key(name: "epsilon", defaultValue: "1e-8", help: "Adam epsilon"),
        Key(name: "lr_policy", defaultValue: "fixed", help: "fixed, step, multistep, poly or cosine"),
        Key(name: "gamma", defaultValue: "0.1", help: "step and multistep decay factor"),
        Key(name: "stepsize", defaultValue: "1000", help: "step policy: iterations between decays"),
        Key(name: "stepvalues", defaultValue: "", help: "multistep policy: iterations of the decays, comma separated"),
        Key(name: "power", defaultValue: "1", help: "poly policy exponent"),
        Key(name: "warmup", defaultValue: "0", help: "iterations of linear learning-rate warm-up"),
        Key(name: "batch", defaultValue: "32", help: "batch size"),
        Key(name: "epochs", defaultValue: "0", help: "epochs to train (or set iterations)"),
        Key(name: "iterations", defaultValue: "0", help: "steps to train (overrides epochs when > 0)"),
        Key(name: "eval_interval", defaultValue: "0", help: "steps between evaluations (0: each epoch)"),
        Key(name: "checkpoint_interval", defaultValue: "0", help: "steps between checkpoints (0: each epoch)"),
        Key(name: "display", defaultValue: "10", help: "steps between progress lines"),
        Key(name: "seed", defaultValue: "1", help: "seed for initializers, splits, data order, augmentation, dropout"),
        Key(name: "output", defaultValue: "runs/run", help: "run folder: checkpoints, metrics.jsonl, settings"),
        Key(name: "skip_bad", defaultValue: "false", help: "skip missing or undecodable images (counted) instead of failing"),
        Key(name: "target_scale", defaultValue: "", help: "frozen f32[1] parameter multiplying a regression target (mul); set to 1 / RMS of the target over the training split"),
        Key(name: "cache_frozen", defaultValue: "true", help: "compute the frozen part (a face net's targets) once per image and augmentation"),
        Key(name: "frozen_store", defaultValue: "", help: "folder where frozen results are kept and shared by runs, addressed by content (the recipe sets one)"),
    ]

    /// Values by key, and where each came from (`file:line` or `--set`).
    public private(set) var values: [String: String] = [:]
    public private(set) var origins: [String: String] = [:]
    /// The folder relative paths are resolved against.
    public var baseDirectory: String = "."

    public init() {
        for k in Settings.keys { values[k.name] = k.defaultValue; origins[k.name] = "default" }
    }

    /// Reads `key = value` lines; errors name the file, line and column.
    public init(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError("\(path): error: cannot read the settings file")
        }
        try self.init(text: String(decoding: data, as: UTF8.self), file: path)
    }

    /// Reads `key = value` lines as if they were the file `path` (relative paths resolve against its folder).
    public init(text: String, file path: String) throws {
        self.init()
        baseDirectory = (path as NSString).deletingLastPathComponent
        if baseDirectory.isEmpty { baseDirectory = "." }
        for l in try KeyValueLine.parse(text, file: path) {
            try set(l.key, try Settings.expand(l.value, at: l.place), origin: "\(path):\(l.line)", at: l.place)
        }
    }

    /// Sets a key, checking that it exists and that its value has the right form.
    public mutating func set(_ key: String, _ value: String, origin: String, at place: String? = nil) throws {
        let where_ = place.map { "\($0): " } ?? ""
        guard let spec = Settings.keys.first(where: { $0.name == key }) else {
            let near = Settings.keys.map(\.name).filter { $0.hasPrefix(String(key.prefix(2))) }
            throw SettingsError("\(where_)error: unknown setting '\(key)'" + (near.isEmpty ? "" : " (did you mean \(near.joined(separator: ", "))?)"))
        }
        if let problem = Settings.validate(spec.name, value) {
            throw SettingsError("\(where_)error: setting '\(key)' \(problem)")
        }
        values[key] = value
        origins[key] = origin
    }

    /// Replaces `${NAME}` by the environment variable NAME; an unset variable is an error.
    static func expand(_ value: String, at place: String) throws -> String {
        var out = ""
        var rest = Substring(value)
        while let r = rest.range(of: "${") {
            out += rest[..<r.lowerBound]
            guard let close = rest[r.upperBound...].firstIndex(of: "}") else { throw SettingsError("\(place): error: unclosed '${'") }
            let name = String(rest[r.upperBound..<close])
            guard let v = ProcessInfo.processInfo.environment[name] else {
                throw SettingsError("\(place): error: environment variable \(name) is not set")
            }
            out += v
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// Applies `key=value` overrides from the command line.
    public mutating func override(_ assignments: [String]) throws {
        for a in assignments {
            guard let eq = a.firstIndex(of: "=") else { throw SettingsError("error: --set expects key=value, found '\(a)'") }
            try set(String(a[..<eq]), String(a[a.index(after: eq)...]), origin: "--set")
        }
    }

    static let numeric: Set<String> = ["lr", "momentum", "weight_decay", "beta1", "beta2", "epsilon", "gamma", "power",
                                       "mean", "scale", "val_fraction", "rotate", "zoom", "brightness", "contrast"]
    /// Settings that may not be negative.
    static let nonNegative: Set<String> = ["val_fraction", "val_count", "train_subset", "crop_pad", "rotate", "zoom", "brightness", "contrast"]
    static let integers: Set<String> = ["folds", "fold", "channels", "stepsize", "warmup", "batch", "epochs", "iterations",
                                        "eval_interval", "checkpoint_interval", "display", "seed", "train_subset", "crop_pad", "val_count"]
    static let booleans: Set<String> = ["mirror", "transpose", "skip_bad", "cache_frozen"]
    static let words: [String: [String]] = ["solver": ["sgd", "adam"], "crop_mode": ["center", "random"],
                                            "lr_policy": ["fixed", "step", "multistep", "poly", "cosine"], "equalize": ["none", "hist"],
                                            "test_views": ["1", "2", "10"]]

    static func validate(_ key: String, _ v: String) -> String? {
        if nonNegative.contains(key), let x = Double(v), x < 0 { return "may not be negative, found '\(v)'" }
        if key == "split", !v.isEmpty, FixedSplit(v) == nil { return "expects COLUMN:TRAIN/TEST (e.g. usage:Training/PublicTest), found '\(v)'" }
        if key == "split_seed", !v.isEmpty, Int(v) == nil { return "expects an integer, found '\(v)'" }
        if key == "zoom", let x = Double(v), x >= 1 { return "must be below 1, found '\(v)'" }
        if numeric.contains(key) { return Double(v).map { $0.isFinite ? nil : "must be finite" } ?? "expects a number, found '\(v)'" }
        if integers.contains(key) { return Int(v) == nil ? "expects an integer, found '\(v)'" : nil }
        if booleans.contains(key) { return ["true", "false"].contains(v) ? nil : "expects true or false, found '\(v)'" }
        if let ws = words[key] { return ws.contains(v) ? nil : "expects one of \(ws.joined(separator: ", ")), found '\(v)'" }
        if key == "resize", !v.isEmpty, Settings.size(v) == nil { return "expects HxW, found '\(v)'" }
        if key == "stepvalues", !v.isEmpty, v.split(separator: ",").contains(where: { Int($0.trimmingCharacters(in: .whitespaces)) == nil }) {
            return "expects comma-separated integers, found '\(v)'"
        }
        return nil
    }

    static func size(_ s: String) -> (Int, Int)? {
        let parts = s.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return (parts[0], parts[1])
    }

    // MARK: Typed access

    public func string(_ k: String) -> String { values[k] ?? "" }
    public func int(_ k: String) -> Int { Int(string(k)) ?? 0 }
    public func double(_ k: String) -> Double { Double(string(k)) ?? 0 }
    public func bool(_ k: String) -> Bool { string(k) == "true" }
    public func list(_ k: String) -> [String] {
        string(k).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    public var resize: (Int, Int)? { Settings.size(string("resize")) }
    /// Training draws rotations, scales, brightness or contrast from a continuum: a frozen part's
    /// results are then never reused, so they are not cached (see `Preprocess.continuous`).
    public var augmentsContinuously: Bool { ["rotate", "zoom", "brightness", "contrast"].contains { double($0) > 0 } }

    /// A path setting resolved against the settings file's folder.
    public func path(_ k: String) -> String { resolve(string(k), key: k) }

    /// A relative path of setting `key`: relative to the settings file's folder when the file set
    /// it, to the working folder when the command line did.
    public func resolve(_ p: String, key: String) -> String {
        let fromFile = origins[key].map { $0 != "--set" && $0 != "default" } ?? false
        return p.isEmpty || p.hasPrefix("/") || baseDirectory == "." || !fromFile ? p : baseDirectory + "/" + p
    }

    /// The `include` folders, resolved.
    public var includes: [String] { list("include").map { resolve($0, key: "include") } }

    /// The `weights` entries as (prefix, resolved file).
    public var weightFiles: [(prefix: String, file: String)] {
        list("weights").map { spec in
            var prefix = "", file = spec
            if let eq = spec.firstIndex(of: "=") { prefix = String(spec[..<eq]); file = String(spec[spec.index(after: eq)...]) }
            return (prefix, resolve(file, key: "weights"))
        }
    }

    /// The table printed at the start of a run: every key, its value, and where it came from.
    public var table: String {
        let w = Settings.keys.map(\.name.count).max() ?? 0
        return Settings.keys.map { k in
            let v = values[k.name] ?? ""
            let o = origins[k.name] ?? ""
            return k.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + (v.isEmpty ? "-" : v)
                + (o == "default" ? "" : "   (\(o))")
        }.joined(separator: "\n")
    }

    /// The settings as a file that reads back to the same values from any folder: paths are made absolute.
    public var fileText: String {
        func absolute(_ p: String) -> String {
            p.isEmpty || p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        }
        return Settings.keys.map { k -> String in
            var v = values[k.name] ?? ""
            if ["graph", "data", "root", "output"].contains(k.name) { v = absolute(path(k.name)) }
            if k.name == "include" { v = includes.map(absolute).joined(separator: ",") }
            if k.name == "weights" { v = weightFiles.map { ($0.prefix.isEmpty ? "" : $0.prefix + "=") + absolute($0.file) }.joined(separator: ",") }
            return "\(k.name) = \(v)"
        }.joined(separator: "\n") + "\n"
    }
}

public struct SettingsError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// One `key = value` line of a settings or recipe file, the one parser both read through: `#`
/// starts a comment, blank lines are skipped, and a line without `=` is an error naming the file,
/// line and column.
public struct KeyValueLine {
    public var key: String
    public var value: String
    public var line: Int
    /// `path:line:col` of the line's first character, for messages.
    public var place: String

    public static func parse(_ text: String, file path: String) throws -> [KeyValueLine] {
        var out: [KeyValueLine] = []
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if line.allSatisfy(\.isWhitespace) { continue }
            let col = (line.firstIndex { !$0.isWhitespace }.map { line.distance(from: line.startIndex, to: $0) } ?? 0) + 1
            let place = "\(path):\(i + 1):\(col)"
            guard let eq = line.firstIndex(of: "=") else { throw SettingsError("\(place): error: expected 'key = value'") }
            out.append(KeyValueLine(key: line[..<eq].trimmingCharacters(in: .whitespaces),
                                    value: line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces), line: i + 1, place: place))
        }
        return out
    }
}
