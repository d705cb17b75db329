import Foundation

/// Expression class names across data sets: one table of spellings (CK+ says `anger`, FER2013
/// `angry`), so that a model trained on one data set is evaluated on another's labels. Names are
/// compared lowercased; a name in no group stands for itself.
public enum ClassNames {
    /// Each group lists the spellings of one class; the first is the canonical name (CK+'s).
    public static let aliases: [[String]] = [
        ["anger", "angry"],
        ["contempt", "contemptuous"],
        ["disgust", "disgusted"],
        ["fear", "fearful", "afraid", "scared"],
        ["happy", "happiness", "joy"],
        ["sadness", "sad"],
        ["surprise", "surprised"],
        ["neutral", "neutrality"],
    ]

    static let canonicalOf: [String: String] = {
        var m: [String: String] = [:]
        for group in aliases { for name in group { m[name] = group[0] } }
        return m
    }()

    /// The canonical name of a class name (itself, lowercased, when the table does not know it).
    public static func canonical(_ name: String) -> String {
        let n = name.trimmingCharacters(in: .whitespaces).lowercased()
        return canonicalOf[n] ?? n
    }

    /// How a data set's classes correspond to a model's.
    public struct Match: Equatable {
        /// For each data class, the model class of the same canonical name (nil: the model lacks it).
        public var modelClass: [Int?]
        public var dataClasses: [String]
        public var modelClasses: [String]
        /// Data classes the model lacks, and model classes the data lacks.
        public var dataOnly: [String] { zip(dataClasses, modelClass).filter { $0.1 == nil }.map(\.0) }
        public var modelOnly: [String] {
            let used = Set(modelClass.compactMap { $0 })
            return modelClasses.indices.filter { !used.contains($0) }.map { modelClasses[$0] }
        }

        /// `data = model` for every pair whose spellings differ, then what either side lacks.
        public var report: String {
            var lines: [String] = []
            let renamed = zip(dataClasses, modelClass).compactMap { d, m in m.flatMap { modelClasses[$0] == d ? nil : "\(d) = \(modelClasses[$0])" } }
            if !renamed.isEmpty { lines.append("classes matched by alias: " + renamed.joined(separator: ", ")) }
            if !dataOnly.isEmpty { lines.append("data classes the model lacks: " + dataOnly.joined(separator: ", ")) }
            if !modelOnly.isEmpty { lines.append("model classes the data lacks: " + modelOnly.joined(separator: ", ")) }
            return lines.joined(separator: "\n")
        }
    }

    /// Matches data classes to model classes by canonical name. Two classes of one side with the
    /// same canonical name are an error (the match would be ambiguous).
    public static func match(data: [String], model: [String]) throws -> Match {
        for (side, names) in [("model", model), ("data", data)] {
            var seen: [String: String] = [:]
            for n in names {
                if let other = seen[canonical(n)] { throw DataError("error: the \(side) classes '\(other)' and '\(n)' are the same class (\(canonical(n)))") }
                seen[canonical(n)] = n
            }
        }
        let index = Dictionary(uniqueKeysWithValues: model.enumerated().map { (canonical($0.element), $0.offset) })
        return Match(modelClass: data.map { index[canonical($0)] }, dataClasses: data, modelClasses: model)
    }
}
