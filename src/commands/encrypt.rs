//! `veil encrypt`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil encrypt`.
pub fn run(args: EncryptArgs) -> Result<(), CliError> {
    Err(format!(
        "veil encrypt is not built yet (input {})",
        args.input.display()
    )
    .into())
}
