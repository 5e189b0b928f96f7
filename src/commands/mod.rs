//! One module per `veil` subcommand.

pub mod bench;
pub mod common;
pub mod compile;
pub mod compile_flags;
pub mod decrypt;
pub mod encrypt;
pub mod eval;
pub mod import;
pub mod infer;
pub mod keygen;
pub mod model_flags;
pub mod plan_source;
pub mod report;
pub mod round_trip;
