//! `veil compile`: model file → circuit plan, with a summary.

use crate::cli::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use veil_compiler::{CompileOptions, Compiled};
use veil_runtime::security::SecurityLevel;

/// Compiler settings shared by `veil compile` and `veil report`.
#[derive(Debug, Clone, Args)]
pub struct CompilerFlags {
    /// Target security level in bits.
    #[arg(long, default_value_t = 128, value_parser = parse_security)]
    pub security: u32,
    /// Bits of the largest integer weight of each row, sign included (2..=32).
    #[arg(long, default_value_t = veil_compiler::DEFAULT_WEIGHT_BITS)]
    pub weight_bits: u32,
    /// IDX file (.idx or .idx.gz) of calibration images: tighter value bounds from data
    /// (largest observed value with a 1-bit margin) instead of the guaranteed worst case.
    #[arg(long, value_name = "IDX")]
    pub calibrate: Option<PathBuf>,
    /// Noise budget (bits) every output must keep.
    #[arg(long, default_value_t = 10.0)]
    pub margin: f64,
    /// Allow parameters below 128-bit security (the plan records security 0). For tests only.
    #[arg(long)]
    pub insecure: bool,
}

impl CompilerFlags {
    /// The compiler options these flags describe.
    pub fn options(&self) -> CompileOptions {
        CompileOptions {
            security: if self.insecure {
                None
            } else {
                SecurityLevel::from_bits(self.security).or(Some(SecurityLevel::Bits128))
            },
            weight_bits: self.weight_bits,
            margin_bits: self.margin,
            calibrate: self.calibrate.clone(),
            ..CompileOptions::default()
        }
    }
}

fn parse_security(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(bits @ (128 | 192 | 256)) => Ok(bits),
        _ => Err(format!(
            "`{s}` is not a security level: use 128, 192 or 256 (or --insecure for tests)"
        )),
    }
}

/// Arguments of `veil compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Model file (.ron, or .json).
    pub model: PathBuf,
    /// Where to write the plan (default: the model path with extension .plan; a .json path
    /// writes JSON for inspection).
    #[arg(short, long, value_name = "PLAN")]
    pub output: Option<PathBuf>,
    /// Compiler settings.
    #[command(flatten)]
    pub flags: CompilerFlags,
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
    out
}

/// Writes `text` to standard output; a closed pipe (`veil report | head`) is not an error.
pub fn print_out(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Runs `veil compile`.
pub fn run(args: CompileArgs) -> Result<(), CliError> {
    let compiled = veil_compiler::compile_path(&args.model, &args.flags.options())?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.model.with_extension("plan"));
    compiled.plan.write_file(&output)?;
    print_out(&summary(&compiled, Some(&output)))
}

/// Compiles the model at `path` for `infer`, `bench` and the other commands that accept a
/// model in place of a plan; with `verbose`, prints the compile summary to standard error.
pub fn compile_for_run(
    path: &Path,
    options: &super::plan_source::PlanOptions,
    verbose: bool,
) -> Result<veil_runtime::plan::Plan, CliError> {
    let security = if options.insecure {
        None
    } else {
        Some(SecurityLevel::from_bits(options.security).ok_or_else(|| {
            format!(
                "`{}` is not a security level: use 128, 192 or 256",
                options.security
            )
        })?)
    };
    let compile_options = CompileOptions {
        security,
        weight_bits: options
            .weight_bits
            .unwrap_or(veil_compiler::DEFAULT_WEIGHT_BITS),
        calibrate: options.calibrate.clone(),
        margin_bits: options.margin,
        ..CompileOptions::default()
    };
    let compiled = veil_compiler::compile_path(path, &compile_options)?;
    if verbose {
        eprint!("{}", summary(&compiled, None));
    }
    Ok(compiled.plan)
}
