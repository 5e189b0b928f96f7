//! `veil`: compile neural networks to BFV circuits and run them on encrypted data.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = veil::cli::Cli::parse();
    match veil::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
