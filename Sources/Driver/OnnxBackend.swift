// The ONNX backend node tests (written by Tools/onnx/backend_cases.py) run through fn2e: every case
// whose ops the importer claims is imported, run on its inputs and compared with its expected
// outputs within the suite's own tolerance (rtol 1e-3, atol 1e-7, as onnx.backend.test's runner).
//
// fn2e graphs compute from their first input; a case's other inputs (weights, shapes, bounds) are
// given to the importer as initializers, which is how such values reach fn2e from real models.
import Foundation
import IR
import OnnxImport
import Runtime
import Tensors

public enum OnnxBackend {
    public enum Outcome: String, Sendable {
        case passed, failed, refused
    }

    public struct CaseResult: Sendable {
        public var name: String
        /// The op types of the case's nodes, in order, without repeats.
        public var ops: [String]
        public var outcome: Outcome
        /// Why it failed or was refused (empty when passed).
        public var reason: String
    }

    /// Whether every op of the model is one the importer claims.
    static func claimed(_ model: OnnxModel) -> Bool {
        model.graph.nodes.allSatisfy { OnnxToIR.supportedOps.contains($0.opType) && ($0.domain.isEmpty || $0.domain == "ai.onnx") }
    }

    /// Runs every claimed case under `directory` (case folders whose name contains `filter`, when given).
    public static func run(directory: String, filter: String? = nil) throws -> [CaseResult] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        var results: [CaseResult] = []
        for name in names where filter.map({ name.contains($0) }) ?? true {
            let folder = (directory as NSString).appendingPathComponent(name)
            let path = folder + "/model.onnx"
            guard FileManager.default.fileExists(atPath: path), let model = try? OnnxModel(path: path), claimed(model) else { continue }
            var ops: [String] = []
            for n in model.graph.nodes where !ops.contains(n.opType) { ops.append(n.opType) }
            var result = CaseResult(name: name, ops: ops, outcome: .passed, reason: "")
            do {
                try runCase(model, folder: folder)
            } catch let e as CaseFailure {
                result.outcome = .failed
                result.reason = e.message
            } catch let e as OnnxError {
                result.outcome = .refused
                result.reason = e.message
            } catch {
                result.outcome = .failed
                result.reason = "\(error)".replacingOccurrences(of: "\n", with: " ")
            }
            results.append(result)
        }
        return results
    }

    struct CaseFailure: Error {
        var message: String
    }

    static func runCase(_ model: OnnxModel, folder: String) throws {
        let sets = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("test_data_set_") }.sorted()
        guard !sets.isEmpty else { throw CaseFailure(message: "no test_data_set folder") }
        for set in sets {
            let dir = folder + "/" + set
            var inputs: [OnnxTensor] = []
            while FileManager.default.fileExists(atPath: dir + "/input_\(inputs.count).pb") {
                inputs.append(try OnnxTensor(path: dir + "/input_\(inputs.count).pb"))
            }
            var outputs: [OnnxTensor] = []
            while FileManager.default.fileExists(atPath: dir + "/output_\(outputs.count).pb") {
                outputs.append(try OnnxTensor(path: dir + "/output_\(outputs.count).pb"))
            }
            // Inputs after the first become initializers (named as the graph's inputs are).
            var m = model
            let graphInputs = m.graph.inputs.filter { i in !m.graph.initializers.contains { $0.name == i.name } }
            if inputs.isEmpty && outputs.isEmpty {
                throw OnnxError(file: dir, "no input or output tensors: the case's data are of kinds Tools/onnx/backend_cases.py does not write (sequences, optionals, small floats)")
            }
            guard inputs.count <= graphInputs.count, outputs.count == m.graph.outputs.count else {
                throw CaseFailure(message: "\(inputs.count) inputs and \(outputs.count) outputs for a graph of \(graphInputs.count) and \(m.graph.outputs.count)")
            }
            var fed: [(String, Tensor)] = []
            for (k, t) in inputs.enumerated() {
                let name = graphInputs[k].name
                if k == 0 && t.isFloat {
                    fed.append((name, Tensor(shape: t.dims, data: t.floats)))
                } else {
                    var c = t
                    c.name = name
                    m.graph.initializers.append(c)
                }
            }
            let imported = try OnnxToIR.convert(m, name: "backend", file: "model.onnx")
            let ex = try Importing.executor(imported.graph, weights: imported.weights, batch: fed.first?.1.shape.first ?? 1, keepAll: false)
            var feeds: [String: Tensor] = [:]
            for (name, t) in fed { feeds[imported.names[name] ?? name] = t }
            let got = try ex.run(inputs: feeds)
            for (j, want) in outputs.enumerated() {
                let name = m.graph.outputs[j].name
                guard let value = imported.names[name], let y = got[value] ?? ex.tensor(value) else {
                    throw CaseFailure(message: "output '\(name)' was not computed")
                }
                guard y.shape == want.dims || (y.count == 1 && want.count == 1) else {
                    throw CaseFailure(message: "output '\(name)' has shape \(y.shape), expected \(want.dims)")
                }
                let expected = want.values
                var worst = 0.0
                for (a, b) in zip(y.data, expected) {
                    let (a, b) = (Double(a), b)
                    if a.isNaN && b.isNaN || a == b { continue }
                    let excess = abs(a - b) - (1e-7 + 1e-3 * abs(b))
                    if !(excess <= 0) { worst = max(worst, excess.isNaN ? .infinity : abs(a - b)) }
                }
                if worst > 0 {
                    throw CaseFailure(message: "output '\(name)' differs by up to \(worst) beyond rtol 1e-3, atol 1e-7")
                }
            }
        }
    }

    /// Per op: cases run, passed, failed, refused.
    public static func table(_ results: [CaseResult]) -> String {
        var rows: [String: (Int, Int, Int, Int)] = [:]
        for r in results {
            for op in r.ops {
                var row = rows[op] ?? (0, 0, 0, 0)
                row.0 += 1
                switch r.outcome {
                case .passed: row.1 += 1
                case .failed: row.2 += 1
                case .refused: row.3 += 1
                }
                rows[op] = row
            }
        }
        var out = "| ONNX op | cases | passed | failed | refused |\n|---|---|---|---|---|\n"
        for op in rows.keys.sorted() {
            let r = rows[op]!
            out += "| \(op) | \(r.0) | \(r.1) | \(r.2) | \(r.3) |\n"
        }
        let passed = results.filter { $0.outcome == .passed }.count, failed = results.filter { $0.outcome == .failed }.count
        out += "\n\(results.count) cases run: \(passed) passed, \(failed) failed, \(results.count - passed - failed) refused\n"
        return out
    }

    /// `fn2e-compile onnx-backend DIR`: every case's outcome, then the per-op table; status 1 when one failed.
    public static func command(directory: String, filter: String?) -> CommandOutput {
        var out = CommandOutput()
        do {
            let results = try run(directory: directory, filter: filter)
            for r in results {
                out.stdout += "\(r.outcome.rawValue.uppercased()) \(r.name) [\(r.ops.joined(separator: ","))]" + (r.reason.isEmpty ? "" : ": \(r.reason)") + "\n"
            }
            out.stdout += "\n" + table(results)
            if results.contains(where: { $0.outcome == .failed }) { out.status = 1 }
        } catch {
            OnnxImportDriver.report(error, into: &out)
        }
        return out
    }
}
