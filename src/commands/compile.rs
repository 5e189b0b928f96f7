//! `veil compile`: model file → circuit plan, with a summary.

use super::common::print_out;
use super::compile_flags::CompileFlags;
use crate::error::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use veil_compiler::Compiled;

/// Arguments of `veil compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Model file (.ron or .json) or ONNX model (with --input-range).
    pub model: PathBuf,
    /// Where to write the plan (default: the model path with extension .plan; a .json path
    /// writes JSON for inspection).
    #[arg(short, long, value_name = "PLAN")]
    pub output: Option<PathBuf>,
    /// Compiler settings.
    #[command(flatten)]
    pub flags: CompileFlags,
}

/// The summary `veil compile` prints.
pub fn summary(compiled: &Compiled, written: Option<&Path>) -> String {
    let mut out = String::new();
    let plan = &compiled.plan;
    match written {
        Some(p) => out.push_str(&format!("compiled `{}` into {}\n", plan.model, p.display())),
        None => out.push_str(&format!("compiled `{}`\n", plan.model)),
    }
    out.push_str(&format!("passes: {}\n", compiled.report.passes.join(", ")));
    for w in &compiled.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let layers: Vec<String> = compiled
        .report
        .layers
        .iter()
        .filter(|l| l.op != "input")
        .map(|l| format!("{} ({})", l.name, l.op))
        .collect();
    out.push_str(&format!("circuit: {}\n", layers.join(" → ")));
    out.push_str(&compiled.report.params_text());
    out.push_str(&compiled.report.layout_text());
    out
}

/// Runs `veil compile`.
pub fn run(args: CompileArgs) -> Result<(), CliError> {
    let compiled = veil_compiler::compile_path(&args.model, &args.flags.options()?)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.model.with_extension("plan"));
    crate::files::remove_stale_temps(&output);
    compiled.plan.write_file(&output)?;
    print_out(&summary(&compiled, Some(&output)))
}
