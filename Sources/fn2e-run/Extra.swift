import ArgumentParser

/// Subcommands beyond inference and benchmarks: training and evaluation.
let extraRunCommands: [ParsableCommand.Type] = [Train.self, Eval.self, PlotCommand.self, FaceNet2ExpNet.self]
