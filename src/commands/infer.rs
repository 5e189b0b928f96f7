//! `veil infer`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil infer`.
pub fn run(args: InferArgs) -> Result<(), CliError> {
    Err(format!(
        "veil infer is not built yet (input {})",
        args.input.display()
    )
    .into())
}
