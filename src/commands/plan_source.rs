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

/// Loads the plan at `path`, or compiles the model at `path`. Returns the plan and whether it
/// was compiled. Warns on standard error when the plan's parameters are insecure.
pub fn obtain_plan(
    path: &Path,
    options: &CompileFlags,
    verbose: bool,
) -> Result<(Plan, bool), CliError> {
    let (plan, compiled) = if is_plan_file(path) {
        (Plan::read_file(path).map_err(in_file(path))?, false)
    } else {
        (compile_for_run(path, options, verbose)?, true)
    };
    warn_if_insecure(path, &plan);
    Ok((plan, compiled))
}

/// Compiles the model at `path` for `infer`, `bench` and the other commands that accept a
/// model in place of a plan; with `verbose`, prints the compile summary to standard error.
pub fn compile_for_run(
    path: &Path,
    flags: &CompileFlags,
    verbose: bool,
) -> Result<veil_runtime::plan::Plan, CliError> {
    let compiled = veil_compiler::compile_path(path, &flags.options()?)?;
    if verbose {
        eprint!("{}", summary(&compiled, None));
    }
    Ok(compiled.plan)
}
