//! `veil import`: an ONNX model → a model file (RON) plus a safetensors file, so that the
//! network can be read, edited and versioned in Veil's declarative format.

use super::common::print_out;
use super::model_flags::ModelFlags;
use crate::error::CliError;
use clap::Args;
use std::path::PathBuf;
use veil_compiler::onnx;

/// Arguments of `veil import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// ONNX model file (recognised by content).
    pub model: PathBuf,
    /// Model file to write (default: the ONNX path with extension .ron); the weights are
    /// written beside it as `<stem>.safetensors`.
    #[arg(short, long, value_name = "RON")]
    pub output: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
    /// Input range and class names.
    #[command(flatten)]
    pub flags: ModelFlags,
}

/// Runs `veil import`.
pub fn run(args: ImportArgs) -> Result<(), CliError> {
    if !onnx::is_onnx(&args.model) {
        return Err(format!(
            "{}: not an ONNX model (a protobuf ModelProto with a graph)",
            args.model.display()
        )
        .into());
    }
    let imported = onnx::read(&args.model, &args.flags.import_options())?;
    // Check the whole model as the compiler will before writing anything.
    let loaded = veil_compiler::model::from_parts(
        &args.model,
        imported.model.clone(),
        imported.tensors.clone(),
    );
    veil_compiler::ir::build::build(&loaded)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.model.with_extension("ron"));
    if output == args.model {
        return Err(format!(
            "{}: the output would replace the ONNX file; give another path with -o",
            output.display()
        )
        .into());
    }
    let written = imported.write_files(&args.model, &output, args.force)?;
    let mut out = format!(
        "imported `{}` ({} layers) into {}\n",
        imported.model.name,
        imported.model.layers.len(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    for note in &imported.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    print_out(&out)
}
