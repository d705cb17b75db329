import ArgumentParser

/// Subcommands beyond inference and benchmarks: training, evaluation, prediction, the recipe.
let extraRunCommands: [ParsableCommand.Type] = [Train.self, Eval.self, PlotCommand.self, Predict.self, Visualize.self,
                                                FaceNet2ExpNet.self, SynthesizeFaces.self, BenchTrain.self]
