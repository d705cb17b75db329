// `fn2e-run detect` and `fn2e-run predict --detect`: photos in (files, folders, CSV lists), faces
// out as CSV or JSON on stdout, optionally drawn on the photo. A photo that cannot be read is an
// error on stderr naming it; the other photos are still processed and the exit status is 1.
import Faces
import Foundation
import Kernels
import Plot
import Tensors
import Training

public enum FaceCommands {
    /// The photos named: files as they are, a folder's PNG/JPEG/BMP files (sorted), and a CSV's
    /// `path` column (else its first), relative paths resolved against the CSV's folder.
    public static func photos(_ args: [String]) throws -> [String] {
        let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "bmp"]
        var out: [String] = []
        for arg in args {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: arg, isDirectory: &isDir), isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: arg).sorted()
                out += names.filter { imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.map { (arg as NSString).appendingPathComponent($0) }
            } else if arg.lowercased().hasSuffix(".csv") {
                guard let text = try? String(contentsOfFile: arg, encoding: .utf8) else { throw StageError("\(arg): error: cannot read the photo list") }
                let rows = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                guard let header = rows.first else { throw StageError("\(arg): error: the photo list is empty") }
                let column = header.firstIndex(of: "path") ?? 0
                let base = (arg as NSString).deletingLastPathComponent
                for (k, row) in rows.enumerated().dropFirst(header.contains("path") ? 1 : 0) {
                    guard column < row.count, !row[column].isEmpty else { throw StageError("\(arg):\(k + 1): error: no photo path in column \(column + 1)") }
                    out.append(row[column].hasPrefix("/") ? row[column] : (base as NSString).appendingPathComponent(row[column]))
                }
            } else {
                out.append(arg)
            }
        }
        return out
    }

    /// A face template measured on a data set's crops (`FaceTemplate.measure`): every `every`-th
    /// row of `index` in its order (rows whose column has the value `select` gives, if any), read
    /// gray. Returns the template and how many crops it averages, of how many.
    public static func measureTemplate(index: String, select: (column: String, value: String)? = nil, every: Int, name: String,
                                       detector: MTCNN) throws -> (template: FaceTemplate, used: Int, crops: Int) {
        let data = try Dataset.load(index: index, select: select.map { ($0.column, [$0.value]) })
        let crops = try data.samples.enumerated().filter { $0.offset % max(every, 1) == 0 }.map { try Images.load(path: $0.element.path, channels: 1) }
        let (t, used) = try FaceTemplate.measure(crops, detector: detector, name: name)
        return (t, used, crops.count)
    }

    /// One photo's faces, with class probabilities when a model judged them.
    public struct Found {
        public var photo: String
        public var faces: [Face]
        public var probabilities: [[Double]] = []
    }

    /// Detects faces in each photo (and with `predictor`, cuts each out as the run's settings say and
    /// classifies it); returns the output of the command. Photos go in groups of `groupSize`, each
    /// group through the detector (and the classifier) together; `workers` threads take groups in
    /// turn, each with a detector of its own and OpenBLAS on one thread (the classifier is shared),
    /// so that one photo's decoding and small loops overlap another's GEMMs. The output is the same
    /// whatever the grouping and the number of workers.
    public static func run(_ photos: [String], detector: MTCNN, predictor: Predictor? = nil, annotate: String?, json: Bool,
                           workers: Int = Parallel.workers, groupSize: Int = 8) -> CommandOutput {
        let template: FaceTemplate?
        do {
            template = try predictor.map { try FaceTemplate.named($0.settings.string("align")) }
        } catch {
            return CommandOutput(stderr: "\(predictor?.settings.origins["align"] ?? "align"): error: \(error)\n", status: 1)
        }
        let groups = Self.groups(photos.count, size: groupSize, workers: workers)
        let threads = max(1, min(workers, groups.count))
        let detectors = [detector] + (1..<threads).map { _ in detector.copy() }
        var outcomes = [Result<Found, PhotoError>?](repeating: nil, count: photos.count)
        let lock = NSLock()
        var (next, done) = (0, 0)
        let bar = photos.count >= 20 && isatty(2) != 0
        let blasThreads = BLAS.threads
        if threads > 1 { (BLAS.threads, Parallel.serial) = (1, true) }
        DispatchQueue.concurrentPerform(iterations: threads) { w in
            while true {
                let g: Int = lock.withLock { defer { next += 1 }; return next }
                guard g < groups.count else { return }
                let found = detectGroup(Array(photos[groups[g]]), detector: detectors[w], predictor: predictor, template: template,
                                        annotate: annotate.map { path in { photo in
                                            photos.count == 1 ? path : (path as NSString).appendingPathComponent(((photo as NSString).lastPathComponent as NSString).deletingPathExtension + ".png")
                                        } }, lock: lock)
                lock.withLock {
                    for (k, r) in zip(groups[g], found) { outcomes[k] = r }
                    done += found.count
                    if bar { FileHandle.standardError.write(Data(progress(done, photos.count).utf8)) }
                }
            }
        }
        (BLAS.threads, Parallel.serial) = (blasThreads, false)
        if StageClock.enabled { FileHandle.standardError.write(Data(("photo pipeline, seconds per stage summed over \(threads) workers:\n" + StageClock.report()).utf8)) }
        if bar { FileHandle.standardError.write(Data("\n".utf8)) }
        var out = CommandOutput()
        var results: [Found] = []
        for outcome in outcomes {
            switch outcome! {
            case .success(let found):
                if found.faces.isEmpty { out.stderr += "\(found.photo): no face found\n" }
                results.append(found)
            case .failure(let e):
                out.stderr += e.message + "\n"
                out.status = 1
            }
        }
        out.stdout = json ? jsonText(results, classes: predictor?.classes ?? []) : csvText(results, classes: predictor?.classes ?? [])
        return out
    }

    /// Consecutive ranges covering `0..<count`: `size` photos each, but with several workers the last
    /// `workers · size` photos go in groups a quarter that size, so that the workers finish together
    /// instead of one working through a whole group alone at the end.
    public static func groups(_ count: Int, size: Int, workers: Int) -> [Range<Int>] {
        let tail = workers > 1 ? min(count, workers * max(1, size)) : 0
        func split(_ r: Range<Int>, _ n: Int) -> [Range<Int>] { stride(from: r.lowerBound, to: r.upperBound, by: n).map { $0..<min(r.upperBound, $0 + n) } }
        return split(0..<(count - tail), max(1, size)) + split((count - tail)..<count, max(1, size / 4))
    }

    /// A photo that could not be read or judged: the message names it.
    struct PhotoError: Error {
        var message: String
        init(_ photo: String, _ error: Error) {
            let text = "\(error)"
            message = text.hasPrefix(photo + ":") ? text : "\(photo): error: \(text)"
        }
    }

    /// One group of photos: decoded, their faces detected together and (with `predictor`, used under
    /// `lock`) classified together, then drawn where `annotate` says.
    static func detectGroup(_ photos: [String], detector: MTCNN, predictor: Predictor?, template: FaceTemplate?,
                            annotate: ((String) -> String)?, lock: NSLock) -> [Result<Found, PhotoError>] {
        var outcomes: [Result<Found, PhotoError>] = photos.map { .failure(PhotoError($0, StageError("not processed"))) }
        var images: [(k: Int, image: Tensor)] = []
        for (k, photo) in photos.enumerated() {
            do { images.append((k, try StageClock.time("decode") { try Images.load(path: photo, channels: 3) })) } catch { outcomes[k] = .failure(PhotoError(photo, error)) }
        }
        do {
            var found = zip(images, try StageClock.time("detection (all)") { try detector.detect(images.map(\.image)) }).map { Found(photo: photos[$0.k], faces: $1) }
            if let predictor, let template {
                let crops = StageClock.time("alignment") { zip(images, found).flatMap { img, f in f.faces.map { Align.crop(img.image, landmarks: $0.landmarks, template: template) } } }
                var probabilities = try lock.withLock { try StageClock.time("classifier") { try classify(crops, predictor) } }[...]
                for k in found.indices {
                    found[k].probabilities = Array(probabilities.prefix(found[k].faces.count))
                    probabilities = probabilities.dropFirst(found[k].faces.count)
                }
            }
            for (img, f) in zip(images, found) {
                do {
                    if let annotate { try writeAnnotated(img.image, f, classes: predictor?.classes ?? [], to: annotate(f.photo)) }
                    outcomes[img.k] = .success(f)
                } catch {
                    outcomes[img.k] = .failure(PhotoError(f.photo, error))
                }
            }
        } catch {
            for img in images { outcomes[img.k] = .failure(PhotoError(photos[img.k], error)) }
        }
        return outcomes
    }

    /// The classifier's probabilities for face crops, in batches of a few fixed sizes (padded with
    /// blank crops, whose rows are dropped).
    static func classify(_ crops: [Tensor], _ predictor: Predictor) throws -> [[Double]] {
        var out: [[Double]] = []
        for (range, batch) in Batches.split(crops.count, sizes: MTCNN.batchSizes) {
            let padding = Array(repeating: Tensor(zeros: crops[range.lowerBound].shape), count: batch - range.count)
            out += try predictor.probabilities(crops: Array(crops[range]) + padding).prefix(range.count)
        }
        return out
    }

    static func progress(_ done: Int, _ total: Int) -> String {
        let filled = 30 * done / max(total, 1)
        return "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "] \(done)/\(total) photos"
    }

    static let landmarkNames = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]

    /// One row per face: photo, face number, box, score, landmarks, then the predicted class and
    /// each class's probability when a model judged the faces.
    static func csvText(_ results: [Found], classes: [String]) -> String {
        var header = ["photo", "face", "x1", "y1", "x2", "y2", "score"] + landmarkNames.flatMap { ["\($0)_x", "\($0)_y"] }
        if !classes.isEmpty { header += ["predicted"] + classes }
        var lines = [header.joined(separator: ",")]
        for r in results {
            for (k, f) in r.faces.enumerated() {
                var cells = [csvField(r.photo), "\(k)"] + [f.x1, f.y1, f.x2, f.y2].map { String(format: "%.1f", $0) } + [String(format: "%.4f", f.score)]
                cells += f.landmarks.flatMap { [String(format: "%.1f", $0.x), String(format: "%.1f", $0.y)] }
                if k < r.probabilities.count {
                    let p = r.probabilities[k]
                    cells += [classes[p.indices.max { p[$0] < p[$1] }!]] + p.map { String(format: "%.4f", $0) }
                }
                lines.append(cells.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// A JSON array with one record per face.
    static func jsonText(_ results: [Found], classes: [String]) -> String {
        var records: [[String: Any]] = []
        for r in results {
            for (k, f) in r.faces.enumerated() {
                let px = { (v: Double) in (v * 100).rounded() / 100 }
                var rec: [String: Any] = ["photo": r.photo, "face": k, "box": [f.x1, f.y1, f.x2, f.y2].map(px), "score": f.score,
                                          "landmarks": f.landmarks.map { [px($0.x), px($0.y)] }]
                if k < r.probabilities.count {
                    let p = r.probabilities[k]
                    rec["class"] = classes[p.indices.max { p[$0] < p[$1] }!]
                    rec["probabilities"] = Dictionary(uniqueKeysWithValues: zip(classes, p))
                }
                records.append(rec)
            }
        }
        let data = (try? JSONSerialization.data(withJSONObject: records, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The photo with each face's box, landmarks and label (the top class and its probability, else
    /// the detector's score), written to a temporary file and renamed.
    static func writeAnnotated(_ image: Tensor, _ found: Found, classes: [String], to path: String) throws {
        let (h, w) = (image.shape[1], image.shape[2])
        var canvas = Canvas(width: w, height: h)
        canvas.drawImage(image, in: Rect(x: 0, y: 0, width: w, height: h), bilinear: false)
        let thick = max(2, min(w, h) / 200), scale = max(1, min(w, h) / 300)
        for (k, f) in found.faces.enumerated() {
            let color = Color.palette[k % Color.palette.count]
            let box = Rect(x: Int(f.x1.rounded()), y: Int(f.y1.rounded()), width: Int((f.x2 - f.x1).rounded()), height: Int((f.y2 - f.y1).rounded()))
            canvas.strokeRect(box, color, thickness: thick)
            for p in f.landmarks { canvas.fillCircle(p.x + 0.5, p.y + 0.5, radius: Double(thick) + 0.5, color) }
            var label = String(format: "face %.2f", f.score)
            if k < found.probabilities.count {
                let p = found.probabilities[k], best = p.indices.max { p[$0] < p[$1] }!
                label = String(format: "%@ %.0f%%", classes[best], 100 * p[best])
            }
            let th = Canvas.textHeight(scale: scale) + 4, tw = Canvas.textWidth(label, scale: scale) + 4
            let ty = box.y - th >= 0 ? box.y - th : box.maxY
            canvas.fillRect(Rect(x: box.x, y: ty, width: tw, height: th), color)
            canvas.text(label, x: box.x + 2, y: ty + 2, color: .white, scale: scale)
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let temporary = path + ".tmp-\(getpid()).png"
        do {
            try canvas.writePNG(temporary)
            guard rename(temporary, path) == 0 else { throw StageError("\(path): cannot write: \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
            throw error
        }
    }
}
