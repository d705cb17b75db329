import ArgumentParser
import Driver
import Faces
import Foundation
import Kernels
import Tensors
import Training

/// The detector's options, shared by `detect` and `predict --detect`.
struct DetectorOptions: ParsableArguments {
    @Option(help: "Folder with MTCNN's det1-det3: fn2e's .fn2e + .safetensors, or the release's .prototxt + .caffemodel (default: Models/mtcnn, shipped with fn2e).") var mtcnn: String?
    @Option(help: "Smallest face searched for, in pixels.") var minSize = 20.0
    @Option(help: "Ratio between pyramid scales.") var factor = 0.709
    @Option(help: "P-Net, R-Net and O-Net face thresholds, comma separated.") var thresholds = "0.6,0.7,0.7"
    @Option(help: "NMS steps (within a scale, across scales, after R-Net, after O-Net) as THRESHOLD:Union|Min, comma separated.")
    var nms = "0.5:Union,0.7:Union,0.7:Union,0.7:Min"
    @Option(help: "Draw boxes, landmarks and labels on the photo into this PNG (several photos: a folder of PNGs).") var annotate: String?

    func detector() throws -> MTCNN {
        var s = MTCNNSettings()
        s.minSize = minSize
        s.factor = factor
        s.thresholds = try thresholds.split(separator: ",").map { t in
            guard let v = Double(t) else { throw ValidationError("--thresholds: '\(t)' is not a number") }
            return v
        }
        s.nms = try nms.split(separator: ",").map { step in
            let parts = step.split(separator: ":")
            guard parts.count == 2, let t = Double(parts[0]), let mode = NMSMode(rawValue: String(parts[1])) else {
                throw ValidationError("--nms: '\(step)' is not THRESHOLD:Union or THRESHOLD:Min")
            }
            return NMSStep(t, mode)
        }
        guard s.thresholds.count == 3, s.nms.count == 4 else { throw ValidationError("--thresholds takes 3 numbers and --nms 4 steps") }
        // The nets the project ships (Models/mtcnn, found from any working folder like Graphs/),
        // else the release's Caffe files in the shared data folder.
        let shipped = Resources.locate(MTCNN.shippedFolder)
        let env = ProcessInfo.processInfo.environment["FN2E_DATA"].map { ($0 as NSString).appendingPathComponent("caffe/mtcnn") }
        let candidates = [mtcnn, FileManager.default.fileExists(atPath: shipped + "/det1.fn2e") ? shipped : nil, env]
        guard let dir = candidates.compactMap({ $0 }).first else {
            throw ValidationError("no MTCNN nets: \(MTCNN.shippedFolder) is not found (\(Resources.missingHint)); or say where they are: --mtcnn DIR")
        }
        return try MTCNN(directory: dir, settings: s)
    }

    /// Runs the command; the ExitCode to throw (success included).
    func run(_ photos: [String], predictor: @autoclosure () throws -> Predictor?, json: Bool) throws -> ExitCode {
        do {
            let out = FaceCommands.run(try FaceCommands.photos(photos), detector: try detector(), predictor: try predictor(), annotate: annotate, json: json)
            FileHandle.standardError.write(Data(out.stderr.utf8))
            FileHandle.standardOutput.write(Data(out.stdout.utf8))
            return ExitCode(out.status)
        } catch let e as ValidationError {
            throw e
        } catch {
            return fail(error)
        }
    }
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Find faces in photos (MTCNN): boxes, scores and five landmarks as CSV or JSON.")
    @Argument(help: "Photos, folders of photos, or CSV lists of them (a `path` column, else the first).") var photos: [String]
    @Flag(help: "JSON (one record per face) instead of CSV.") var json = false
    @Option(help: "Time detection instead: each photo detected once to warm up, then this many times; the median seconds per photo and the BLAS core, as JSON lines.")
    var time: Int?
    @OptionGroup var faces: DetectorOptions

    func run() throws {
        startBLAS(verbose: false)
        guard let runs = time else { throw try faces.run(photos, predictor: nil, json: json) }
        do {
            let detector = try faces.detector()
            for photo in try FaceCommands.photos(photos) {
                let image = try Images.load(path: photo, channels: 3)
                let found = try detector.detect(image).count
                var seconds: [Double] = []
                for _ in 0..<max(1, runs) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = try detector.detect(image)
                    seconds.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                print(String(format: "{\"photo\": \"%@\", \"width\": %d, \"height\": %d, \"faces\": %d, \"seconds\": %.5f, \"runs\": %d, \"core\": \"%@\", \"threads\": %d}",
                             photo, image.shape[2], image.shape[1], found, seconds.sorted()[seconds.count / 2], seconds.count, BLAS.corename, BLAS.threads))
            }
        } catch {
            throw fail(error)
        }
    }
}

struct MeasureTemplate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "measure-template",
        abstract: "Measure a face template: MTCNN's mean landmarks on a data set's gray face crops, each upscaled 4x in a gray border (see docs/FACES.md).")
    @Argument(help: "CSV index (path,label,...) of square face crops that share one framing.") var data: String
    @Option(help: "The template's name.") var name: String
    @Option(help: "Use every Nth row of the index, in its order.") var every = 10
    @Option(name: .customLong("where"), help: "Only rows whose COLUMN has VALUE (e.g. usage=Training).") var selection: String?
    @OptionGroup var faces: DetectorOptions

    func run() throws {
        startBLAS(verbose: false)
        let select = try selection.map { w -> (column: String, value: String) in
            let parts = w.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--where expects COLUMN=VALUE, found '\(w)'") }
            return (parts[0], parts[1])
        }
        do {
            let m = try FaceCommands.measureTemplate(index: data, select: select, every: every, name: name, detector: try faces.detector())
            print("\(name): \(m.template.size)x\(m.template.size) \(m.template.gray ? "gray" : "RGB"), one face found in \(m.used) of \(m.crops) crops")
            print(m.template.points.map { String(format: "Point(x: %.2f, y: %.2f)", $0.x, $0.y) }.joined(separator: ", "))
        } catch {
            throw fail(error)
        }
    }
}
