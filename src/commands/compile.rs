//! `veil compile`.

use crate::cli::CliError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `veil compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Input file.
    pub input: PathBuf,
}

/// Runs `veil compile`.
pub fn run(args: CompileArgs) -> Result<(), CliError> {
    Err(format!(
        "veil compile is not built yet (input {})",
        args.input.display()
    )
    .into())
}
