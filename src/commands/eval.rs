//! `veil eval PLAN --key eval.key BATCH -o RESULT`: the server. It never reads a secret key.

use super::common::load_context;
use crate::error::CliError;
use crate::keyio::{load_eval, read_batch, write_batch};
use crate::memory::{human_bytes, peak_rss_bytes};
use crate::progress::StepBar;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use veil_runtime::session::{ContainerKind, SessionError};

/// Arguments of `veil eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The compiled plan.
    pub plan: PathBuf,
    /// The evaluation key (eval.key). A secret key is refused.
    #[arg(long)]
    pub key: PathBuf,
    /// The encrypted batch from `veil encrypt`.
    pub batch: PathBuf,
    /// The encrypted result to write.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

/// Runs `veil eval`.
pub fn run(args: EvalArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let relin = load_eval(&context, &args.key)?;
    let batch = read_batch(&context, ContainerKind::Batch, &args.batch)?;
    let images = batch.images;
    let runs = (batch.chunks.len() * context.params().len()) as u64;
    let bar = StepBar::new("eval", runs * context.plan().steps.len() as u64, false);
    let started = Instant::now();
    let result = context.eval(&relin, batch, &bar).map_err(|e| match e {
        SessionError::KeySetMismatch { .. } => format!(
            "{}: {e} ({} is not the eval.key of that key set)",
            args.batch.display(),
            args.key.display()
        )
        .into(),
        other => CliError::from(other),
    })?;
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let bytes = write_batch(&context, ContainerKind::Result, &result, &args.out)?;
    println!(
        "evaluated {images} images in {seconds:.2} s ({:.1} images/s)",
        images as f64 / seconds.max(1e-9)
    );
    println!(
        "  {}: {} ({} per image)",
        args.out.display(),
        human_bytes(bytes as f64),
        human_bytes(bytes as f64 / images as f64)
    );
    if let Some(peak) = peak_rss_bytes() {
        println!("  peak memory {}", human_bytes(peak as f64));
    }
    Ok(())
}
