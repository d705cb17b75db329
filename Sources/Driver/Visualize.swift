import Foundation
import Plot
import Tensors
import Training

/// For units (channels) of one layer of a trained run, the images of the run's data set that
/// activate each unit most, with the unit's activation map laid over them: one PNG grid, a row per
/// unit. Units are chosen by the caller, or the most active ones on average.
public func visualizeUnits(runDirectory dir: String, layer: String, units chosen: [Int], topUnits: Int,
                           imagesPerUnit: Int, output: String) throws -> String {
    let p = try Predictor(runDirectory: dir)
    var data = try Dataset.load(index: p.settings.path("data"),
                                root: p.settings.string("root").isEmpty ? nil : p.settings.path("root"),
                                group: p.settings.string("group"), classes: p.settings.list("classes"))
    let images = try p.pre.decode(&data, skipBad: p.settings.bool("skip_bad"))
    // Per image and unit: the peak activation, and the map (kept for the winners only later).
    var peaks: [[Float]] = []
    var shape: [Int] = []
    let batch = 32
    for start in stride(from: 0, to: images.count, by: batch) {
        let chunk = Array(images[start..<min(start + batch, images.count)])
        let act = try p.run(p.batch(chunk), outputs: [layer])[layer]!
        guard act.shape.count == 4 else { throw StageError("'%\(layer)' is \(act.shape), not a [N,C,H,W] feature map") }
        shape = act.shape
        let (c, hw) = (act.shape[1], act.shape[2] * act.shape[3])
        for n in 0..<chunk.count {
            peaks.append((0..<c).map { u in act.data[(n * c + u) * hw..<(n * c + u + 1) * hw].max()! })
        }
    }
    let channels = shape[1]
    for u in chosen where u < 0 || u >= channels { throw StageError("'%\(layer)' has \(channels) units; \(u) is not one") }
    let units = chosen.isEmpty
        ? Array((0..<channels).sorted { a, b in
            peaks.reduce(0) { $0 + $1[a] } > peaks.reduce(0) { $0 + $1[b] } }.prefix(topUnits))
        : chosen
    var rows: [[GridImage]] = []
    for u in units {
        // One image per group (subject): frames of one sequence would otherwise fill the row.
        var seen: Set<String> = []
        let top = peaks.indices.sorted { peaks[$0][u] > peaks[$1][u] }
            .filter { seen.insert(data.samples[$0].group).inserted }.prefix(imagesPerUnit)
        let maps = try p.run(p.batch(top.map { images[$0] }), outputs: [layer])[layer]!
        let (h, w) = (maps.shape[2], maps.shape[3])
        rows.append(top.enumerated().map { k, i in
            let base = (k * channels + u) * h * w
            let heat = Tensor(shape: [h, w], data: Array(maps.data[base..<base + h * w]).map { max(0, $0) })
            let gray = images[i].shape[0] == 1 ? images[i] : Tensor(shape: [1] + Array(images[i].shape.dropFirst()),
                                                                   data: Array(images[i].data.prefix(images[i].shape[1] * images[i].shape[2])))
            return GridImage(gray, heat: heat, caption: "\(data.classes[data.samples[i].label]) \(String(format: "%.2g", peaks[i][u]))")
        })
    }
    let title = "\(layer): top \(imagesPerUnit) images of \(units.count) units (\((dir as NSString).lastPathComponent))"
    try Plots.imageGrid(rows: rows, rowLabels: units.map { "unit \($0)" }, title: title).writePNG(output)
    return output
}
