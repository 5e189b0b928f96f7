//! Helpers shared by the commands: loading plans and data with the file named in errors.

use crate::data::{self, Images, Labels};
use crate::error::CliError;
use std::path::Path;
use veil_runtime::plan::Plan;
use veil_runtime::session::Context;

/// Wraps an error with the file it concerns.
pub fn in_file<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> CliError + '_ {
    move |err| format!("{}: {err}", path.display()).into()
}

/// Loads a plan file and builds its parameters.
pub fn load_context(path: &Path) -> Result<Context, CliError> {
    let plan = Plan::read_file(path).map_err(in_file(path))?;
    let context = Context::new(plan).map_err(in_file(path))?;
    warn_if_insecure(path, context.plan());
    Ok(context)
}

/// Warns on standard error when `plan` was compiled with `--insecure` (security 0 bits);
/// `path` is the plan or model file it came from.
pub fn warn_if_insecure(path: &Path, plan: &Plan) {
    if plan.security().is_none() {
        eprintln!(
            "warning: {} uses INSECURE parameters (compiled with --insecure)",
            path.display()
        );
    }
}

/// Loads images, keeping at most `limit`, and checks their size against the plan; the reader
/// is told both first, so a file of other images or far more images than wanted is refused or
/// cut short before its pixels are read.
pub fn load_images(path: &Path, limit: Option<usize>, plan: &Plan) -> Result<Images, CliError> {
    let request = data::ImageRequest {
        values_per_image: Some(plan.input_len()),
        limit,
    };
    let mut images = data::load_images_with(path, request)?;
    if let Some(limit) = limit {
        images.truncate(limit);
    }
    let expected = plan.input_len();
    if images.pixels_per_image() != expected {
        return Err(format!(
            "{}: images have {} values ({}×{}) but the model expects {} (shape {:?})",
            path.display(),
            images.pixels_per_image(),
            images.rows(),
            images.cols(),
            expected,
            plan.input.shape
        )
        .into());
    }
    if images.is_empty() {
        return Err(format!("{}: no images", path.display()).into());
    }
    Ok(images)
}

/// Loads labels, keeping at most `limit`, and checks them against the images and against the
/// plan's number of classes (a label no prediction can equal is a mismatched file).
pub fn load_labels(
    path: &Path,
    limit: Option<usize>,
    images: &Images,
    plan: &Plan,
) -> Result<Labels, CliError> {
    let mut labels = data::load_labels(path)?;
    if let Some(limit) = limit {
        labels.truncate(limit);
    }
    data::check_labels(images, &labels)?;
    let classes = plan.output_len();
    if let Some(max) = labels.max().filter(|&m| m as usize >= classes) {
        return Err(format!(
            "{}: label {max} is not a class of the model, which has {classes} (0..={})",
            path.display(),
            classes.saturating_sub(1)
        )
        .into());
    }
    Ok(labels)
}

/// Percentage of predictions equal to the labels.
pub fn accuracy(predictions: &[usize], labels: &Labels) -> f64 {
    if predictions.is_empty() {
        return 0.0;
    }
    let correct = predictions
        .iter()
        .zip(labels.iter())
        .filter(|(p, l)| **p as u64 == u64::from(*l))
        .count();
    100.0 * correct as f64 / predictions.len() as f64
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
