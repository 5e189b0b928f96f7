//! `veil eval`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil eval`.
pub fn run(args: EvalArgs) -> Result<(), CliError> {
    Err(format!(
        "veil eval is not built yet (input {})",
        args.input.display()
    )
    .into())
}
