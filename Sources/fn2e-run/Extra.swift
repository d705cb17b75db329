import ArgumentParser

/// Subcommands added by later stages (training, evaluation, the FaceNet2ExpNet recipe).
let extraRunCommands: [ParsableCommand.Type] = [BenchTrain.self]
