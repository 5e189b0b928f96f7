//! `veil keygen`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil keygen`.
pub fn run(args: KeygenArgs) -> Result<(), CliError> {
    Err(format!(
        "veil keygen is not built yet (input {})",
        args.input.display()
    )
    .into())
}
