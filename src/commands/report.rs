//! `veil report`: the per-layer table and parameter block of a model (compiled on the fly) or
//! of a plan file.

use super::common::in_file;
use super::compile::{print_out, CompilerFlags};
use crate::cli::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use veil_compiler::{CompileOptions, Report};
use veil_runtime::plan::Plan;

/// Arguments of `veil report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A model file (.ron, or .json) or a plan file (.plan, or a JSON plan).
    pub input: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Print the IR before and after every pass (models only).
    #[arg(long)]
    pub ir: bool,
    /// Compiler settings (models only).
    #[command(flatten)]
    pub flags: CompilerFlags,
}

/// Whether `path` holds a model (rather than a plan).
fn is_model(path: &Path) -> Result<bool, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(match ext.as_str() {
        "ron" => true,
        "json" => {
            let text = std::fs::read_to_string(path).map_err(in_file(path))?;
            !text.contains("\"format_version\"")
        }
        _ => false,
    })
}

/// Runs `veil report`.
pub fn run(args: ReportArgs) -> Result<(), CliError> {
    let (report, dumps) = if is_model(&args.input)? {
        let opts = CompileOptions {
            dump_ir: args.ir,
            ..args.flags.options()
        };
        let compiled = veil_compiler::compile_path(&args.input, &opts)?;
        (compiled.report, compiled.ir_dumps)
    } else {
        if args.ir {
            return Err(format!(
                "{}: --ir needs a model file; a plan holds no IR",
                args.input.display()
            )
            .into());
        }
        let plan = Plan::read_file(&args.input).map_err(in_file(&args.input))?;
        (Report::from_plan(&plan), Vec::new())
    };
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if args.ir {
            if let Some(obj) = value.as_object_mut() {
                let ir: serde_json::Map<String, serde_json::Value> = dumps
                    .iter()
                    .map(|(stage, text)| (stage.clone(), serde_json::Value::String(text.clone())))
                    .collect();
                obj.insert("ir".into(), serde_json::Value::Object(ir));
            }
        }
        print_out(&format!("{}\n", serde_json::to_string_pretty(&value)?))
    } else {
        let mut text = String::new();
        for (stage, ir) in &dumps {
            let title = if stage == "input" {
                "IR as loaded".to_owned()
            } else if stage == "analysis" {
                "IR with analysis facts".to_owned()
            } else {
                format!("IR after {stage}")
            };
            text.push_str(&format!("== {title} ==\n{ir}\n"));
        }
        if !report.passes.is_empty() {
            text.push_str(&format!("passes: {}\n", report.passes.join(", ")));
        }
        for w in &report.warnings {
            text.push_str(&format!("warning: {w}\n"));
        }
        text.push_str(&report.to_text());
        print_out(&text)
    }
}
