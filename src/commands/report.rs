//! `veil report`: the per-layer table and parameter block of a model (compiled on the fly) or
//! of a plan file.

use super::common::print_out;
use super::common::{accuracy, in_file, load_images, load_labels};
use super::compile_flags::CompileFlags;
use super::plan_source::is_plan_file;
use crate::error::CliError;
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use veil_compiler::{CompileOptions, Compiled, Report};
use veil_runtime::exec::exact_scores;
use veil_runtime::plan::{argmax, Plan};

/// Arguments of `veil report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A model file (.ron, or .json), an ONNX model (with --input-range) or a plan file (.plan,
    /// or a JSON plan).
    pub input: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Print the IR before and after every pass (models only).
    #[arg(long)]
    pub ir: bool,
    /// Labelled images (IDX or CSV): report the accuracy of the float model (models only) and
    /// of the plan's exact integers (what the encrypted circuit computes) on them.
    #[arg(long, requires = "labels")]
    pub images: Option<PathBuf>,
    /// Labels of `--images` (IDX or CSV).
    #[arg(long, requires = "images")]
    pub labels: Option<PathBuf>,
    /// Use only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Compiler settings (models only).
    #[command(flatten)]
    pub flags: CompileFlags,
}

/// Accuracy on labelled images.
#[derive(Debug, Serialize)]
pub struct Accuracy {
    /// Images classified.
    pub images: usize,
    /// Percentage the float model (as loaded, before any replacement) gets right; `None` for
    /// a plan file.
    pub float: Option<f64>,
    /// Percentage the plan's exact integer evaluation gets right: what encrypted inference
    /// gives.
    pub plan: f64,
}

/// Classifies labelled images with the plan (and the float model when there is one).
fn accuracy_on(
    args: &ReportArgs,
    plan: &Plan,
    compiled: Option<&Compiled>,
) -> Result<Option<Accuracy>, CliError> {
    let (Some(images), Some(labels)) = (&args.images, &args.labels) else {
        return Ok(None);
    };
    let images = load_images(images, args.limit, plan)?;
    let labels = load_labels(labels, args.limit, &images, plan)?;
    let all: Vec<&[f32]> = images.iter().collect();
    let by_plan: Vec<usize> = all
        .par_iter()
        .map(|raw| exact_scores(plan, raw).map(|s| argmax(&s)))
        .collect::<Result<_, _>>()?;
    let float = match compiled {
        Some(compiled) => {
            let by_float: Vec<usize> = all
                .par_iter()
                .map(|raw| compiled.float_scores(raw).map(|s| argmax(&s)))
                .collect::<Result<_, _>>()?;
            Some(accuracy(&by_float, &labels))
        }
        None => None,
    };
    Ok(Some(Accuracy {
        images: images.count(),
        float,
        plan: accuracy(&by_plan, &labels),
    }))
}

fn accuracy_text(a: &Accuracy) -> String {
    let float = a
        .float
        .map_or_else(String::new, |f| format!("float model {f:.2}%, "));
    format!(
        "accuracy on {} images: {float}plan {:.2}% (exact integers, as encrypted inference)\n",
        a.images, a.plan
    )
}

/// Runs `veil report`.
pub fn run(args: ReportArgs) -> Result<(), CliError> {
    let (report, dumps, accuracy) = if !is_plan_file(&args.input) {
        let opts = CompileOptions {
            dump_ir: args.ir,
            ..args.flags.options()?
        };
        let compiled = veil_compiler::compile_path(&args.input, &opts)?;
        let accuracy = accuracy_on(&args, &compiled.plan, Some(&compiled))?;
        (compiled.report, compiled.ir_dumps, accuracy)
    } else {
        if args.ir {
            return Err(format!(
                "{}: --ir needs a model file; a plan holds no IR",
                args.input.display()
            )
            .into());
        }
        let plan = Plan::read_file(&args.input).map_err(in_file(&args.input))?;
        let accuracy = accuracy_on(&args, &plan, None)?;
        (Report::from_plan(&plan), Vec::new(), accuracy)
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
        if let (Some(a), Some(obj)) = (&accuracy, value.as_object_mut()) {
            obj.insert("accuracy".into(), serde_json::to_value(a)?);
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
        if let Some(a) = &accuracy {
            text.push_str(&accuracy_text(a));
        }
        print_out(&text)
    }
}
