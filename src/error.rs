//! The error type of the command line.

/// The error every command returns; `main` prints its whole `source()` chain.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;
