//! Commands that accept "a model or a plan" load a plan file directly, or compile a model file.

use super::common::{in_file, warn_if_insecure};
use crate::cli::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use veil_runtime::plan::{Plan, PLAN_MAGIC};

/// Compilation options for commands that may be given a model file.
#[derive(Debug, Args, Clone)]
pub struct PlanOptions {
    /// Security level in bits when compiling a model: 128, 192 or 256.
    #[arg(long, default_value_t = 128)]
    pub security: u32,
    /// Weight precision in bits when compiling a model (the compiler's default if omitted).
    #[arg(long)]
    pub weight_bits: Option<u32>,
    /// Calibration images for tighter value bounds when compiling a model.
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
    /// Noise budget (bits) every output must keep when compiling a model.
    #[arg(long, default_value_t = veil_compiler::params::model::DEFAULT_MARGIN_BITS)]
    pub margin: f64,
    /// Allow parameters below the requested security level (experiments only).
    #[arg(long)]
    pub insecure: bool,
}

impl Default for PlanOptions {
    /// The command line's defaults: 128-bit security, the compiler's weight precision and
    /// noise margin, no calibration.
    fn default() -> Self {
        PlanOptions {
            security: 128,
            weight_bits: None,
            calibrate: None,
            margin: veil_compiler::params::model::DEFAULT_MARGIN_BITS,
            insecure: false,
        }
    }
}

/// True when the file looks like a compiled plan (binary magic, or JSON with a format version).
pub fn is_plan_file(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    bytes.starts_with(PLAN_MAGIC)
        || (bytes.trim_ascii_start().starts_with(b"{")
            && String::from_utf8_lossy(&bytes[..bytes.len().min(4096)])
                .contains("\"format_version\""))
}

/// Loads the plan at `path`, or compiles the model at `path`. Returns the plan and whether it
/// was compiled. Warns on standard error when the plan's parameters are insecure.
pub fn obtain_plan(
    path: &Path,
    options: &PlanOptions,
    verbose: bool,
) -> Result<(Plan, bool), CliError> {
    let (plan, compiled) = if is_plan_file(path) {
        (Plan::read_file(path).map_err(in_file(path))?, false)
    } else {
        (
            crate::commands::compile::compile_for_run(path, options, verbose)?,
            true,
        )
    };
    warn_if_insecure(path, &plan);
    Ok((plan, compiled))
}
