//! Commands that accept "a model or a plan" load a plan file directly, or compile a model file.

use super::common::{in_file, warn_if_insecure};
use super::compile::summary;
use super::compile_flags::CompileFlags;
use crate::error::CliError;
use std::path::Path;
use veil_runtime::plan::{Plan, PLAN_MAGIC};

/// True when `path` names a compiled plan: a `.plan` extension (so that an unreadable or
/// damaged plan is reported as a plan), the binary plan magic, or JSON with a format version.
/// Anything else is taken for a model file.
pub fn is_plan_file(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("plan"))
    {
        return true;
    }
    // The first 4 KiB tell; an endless or huge file is not read whole.
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| {
        use std::io::Read;
        f.take(4096).read_to_end(&mut bytes)
    });
    if read.is_err() {
        return false;
    }
    bytes.starts_with(PLAN_MAGIC)
        || (bytes.trim_ascii_start().starts_with(b"{")
            && String::from_utf8_lossy(&bytes).contains("\"format_version\""))
}

/// A plan loaded or compiled for a run.
#[derive(Debug)]
pub struct ObtainedPlan {
    /// The plan.
    pub plan: Plan,
    /// Whether it was compiled from a model file in this run.
    pub compiled: bool,
    /// The compiler's warnings (layers replaced to fit the scheme, …); empty for a plan file.
    pub warnings: Vec<String>,
}

/// Loads the plan at `path`, or compiles the model at `path`; with `verbose`, prints the
/// compile summary (warnings included) to standard error. Warns on standard error when the
/// plan's parameters are insecure.
pub fn obtain_plan(
    path: &Path,
    options: &CompileFlags,
    verbose: bool,
) -> Result<ObtainedPlan, CliError> {
    let obtained = if is_plan_file(path) {
        ObtainedPlan {
            plan: Plan::read_file(path).map_err(in_file(path))?,
            compiled: false,
            warnings: Vec::new(),
        }
    } else {
        let compiled = veil_compiler::compile_path(path, &options.options()?)?;
        if verbose {
            eprint!("{}", summary(&compiled, None));
        }
        ObtainedPlan {
            plan: compiled.plan,
            compiled: true,
            warnings: compiled.warnings,
        }
    };
    warn_if_insecure(path, &obtained.plan);
    Ok(obtained)
}
