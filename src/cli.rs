//! Command-line interface: one subcommand per step of the private-inference pipeline.

use crate::commands;
use crate::error::CliError;
use clap::{Parser, Subcommand};

/// Compile neural networks into BFV circuits and run them on encrypted data.
#[derive(Debug, Parser)]
#[command(name = "veil", version, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a model file into a circuit plan.
    Compile(commands::compile::CompileArgs),
    /// Convert an ONNX model into a model file plus a safetensors weights file.
    Import(commands::import::ImportArgs),
    /// Print a per-layer report of a model or plan.
    Report(commands::report::ReportArgs),
    /// Generate secret, public and evaluation keys for a plan.
    Keygen(commands::keygen::KeygenArgs),
    /// Encrypt images for a plan (the client).
    Encrypt(commands::encrypt::EncryptArgs),
    /// Evaluate a plan on an encrypted batch (the server; never reads a secret key).
    Eval(commands::eval::EvalArgs),
    /// Decrypt an encrypted result into predictions (the client).
    Decrypt(commands::decrypt::DecryptArgs),
    /// Compile, generate keys, encrypt, evaluate and decrypt in one process.
    Infer(commands::infer::InferArgs),
    /// Benchmark a plan on a full batch of random inputs.
    Bench(commands::bench::BenchArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Compile(args) => commands::compile::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Encrypt(args) => commands::encrypt::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Decrypt(args) => commands::decrypt::run(args),
        Command::Infer(args) => commands::infer::run(args),
        Command::Bench(args) => commands::bench::run(args),
    }
}
