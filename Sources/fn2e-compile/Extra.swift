import ArgumentParser

/// Subcommands that later pipeline stages add (gradients, schedules).
let extraCompileCommands: [ParsableCommand.Type] = [ImportCommand.self]
