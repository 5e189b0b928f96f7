//! `veil decrypt`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil decrypt`.
pub fn run(args: DecryptArgs) -> Result<(), CliError> {
    Err(format!(
        "veil decrypt is not built yet (input {})",
        args.input.display()
    )
    .into())
}
