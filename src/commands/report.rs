//! `veil report`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil report`.
pub fn run(args: ReportArgs) -> Result<(), CliError> {
    Err(format!(
        "veil report is not built yet (input {})",
        args.input.display()
    )
    .into())
}
