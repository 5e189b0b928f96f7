//! `veil bench`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil bench`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    Err(format!(
        "veil bench is not built yet (input {})",
        args.input.display()
    )
    .into())
}
