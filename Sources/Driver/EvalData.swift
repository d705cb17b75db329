// `fn2e-run eval RUN --data INDEX [--detect]`: a trained run on any labelled image set, its classes
// matched to the model's through `ClassNames`; face crops as they are, or photos through MTCNN and
// the run's face template.
import Faces
import Foundation
import Plot
import Tensors
import Training

public struct DataEvaluation {
    public var match: ClassNames.Match
    /// `[data class][model class]`: how often the model called an image of each data class each of its classes.
    public var counts: [[Int]]
    /// Photos in which no face was found (with `--detect`), by data class.
    public var noFace: [(path: String, label: Int)] = []
    public var images: Int

    /// Counts over the data classes the model has: rows and columns in the model's class order
    /// (a model class the data lacks has an empty row).
    public var matched: Evaluation {
        var e = Evaluation(split: "data", classes: match.modelClasses.count)
        for (d, m) in match.modelClass.enumerated() {
            guard let m else { continue }
            for (p, n) in counts[d].enumerated() { e.confusion[m][p] += n }
            e.count += counts[d].reduce(0, +)
        }
        return e
    }

    /// Images of a class the model has, no-face photos included.
    var scored: Int { matched.count + noFace.filter { match.modelClass[$0.label] != nil }.count }

    public var text: String {
        let e = matched
        var s = match.report.isEmpty ? "" : match.report + "\n"
        for (d, name) in match.dataClasses.enumerated() where match.modelClass[d] == nil {
            let row = counts[d]
            s += "  \(name): \(row.reduce(0, +)) images, not in the accuracy; the model called them "
                + zip(match.modelClasses, row).filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "\n"
        }
        s += String(format: "accuracy %.2f%% (%d/%d), mean per-class %.2f%% over %d classes\n", 100 * e.accuracy, e.correct, e.count,
                    100 * e.meanClassAccuracy, e.confusion.filter { $0.reduce(0, +) > 0 }.count)
        if !noFace.isEmpty {
            s += String(format: "no face found in %d of %d photos; counting them as wrong: accuracy %.2f%% (%d/%d)\n", noFace.count, images,
                        100 * Double(e.correct) / Double(max(scored, 1)), e.correct, scored)
        }
        s += e.confusionText(match.modelClasses)
        if !noFace.isEmpty { s += "photos with no face found:\n" + noFace.map { "  \($0.path) (\(match.dataClasses[$0.label]))\n" }.joined() }
        return s
    }

    public var json: [String: Any] {
        let e = matched
        return ["model_classes": match.modelClasses, "data_classes": match.dataClasses,
                "data_only": match.dataOnly, "model_only": match.modelOnly, "counts_by_data_class": counts,
                "accuracy": e.accuracy, "mean_class_accuracy": e.meanClassAccuracy, "correct": e.correct, "count": e.count,
                "confusion": e.confusion, "images": images, "no_face": noFace.map(\.path)]
    }

    /// Evaluates the run in `runDirectory` on the images of `index` (rows whose `select` column has
    /// the value given, if any). With a detector, each image is a photo: its largest face is cut
    /// out with the run's template (`align`) and classified; photos without a face are listed.
    /// `overrides` change the run's settings that apply after training (`test_views`).
    public static func run(runDirectory: String, index: String, select: (column: String, value: String)? = nil, overrides: [String] = [],
                           detector: MTCNN? = nil, batch: Int = 64, progress: (Int, Int) -> Void = { _, _ in }) throws -> DataEvaluation {
        let predictor = try Predictor(runDirectory: runDirectory, overrides: overrides)
        guard !predictor.classes.isEmpty else { throw StageError("\(runDirectory)/model.safetensors records no class names") }
        let data = try Dataset.load(index: index, select: select.map { ($0.column, [$0.value]) })
        var result = DataEvaluation(match: try ClassNames.match(data: data.classes, model: predictor.classes),
                                    counts: Array(repeating: Array(repeating: 0, count: predictor.classes.count), count: data.classes.count),
                                    images: data.samples.count)
        let template = try detector.map { _ in try FaceTemplate.named(predictor.settings.string("align")) }
        var start = 0
        while start < data.samples.count {
            let chunk = Array(data.samples[start..<min(start + batch, data.samples.count)])
            var labels: [Int] = []
            let probabilities: [[Double]]
            if let detector, let template {
                var crops: [Tensor] = []
                for s in chunk {
                    let image = try Images.load(path: s.path, channels: 3)
                    let faces = try detector.detect(image)
                    guard let face = faces.max(by: { ($0.x2 - $0.x1) * ($0.y2 - $0.y1) < ($1.x2 - $1.x1) * ($1.y2 - $1.y1) }) else {
                        result.noFace.append((s.path, s.label))
                        continue
                    }
                    crops.append(Align.crop(image, landmarks: face.landmarks, template: template))
                    labels.append(s.label)
                }
                probabilities = crops.isEmpty ? [] : try predictor.probabilities(crops: crops)
            } else {
                probabilities = try predictor.probabilities(chunk.map(\.path))
                labels = chunk.map(\.label)
            }
            for (label, p) in zip(labels, probabilities) { result.counts[label][p.indices.max { p[$0] < p[$1] }!] += 1 }
            start += batch
            progress(min(start, data.samples.count), data.samples.count)
        }
        return result
    }

    /// Writes eval.txt, eval.json and confusion.png (the classes the model has) into `dir`, each
    /// to a temporary file renamed into place.
    public func write(to dir: String, title: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let files = [dir + "/eval.txt", dir + "/eval.json", dir + "/confusion.png"]
        try text.write(toFile: files[0], atomically: true, encoding: .utf8)
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: files[1]), options: .atomic)
        let temporary = files[2] + ".tmp-\(getpid()).png"
        do {
            try Plots.confusionMatrix(matched.confusion, classes: match.modelClasses, title: title).writePNG(temporary)
            guard rename(temporary, files[2]) == 0 else { throw StageError("\(files[2]): cannot write: \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
            throw error
        }
        return files
    }
}
