//! `veil encrypt PLAN --key KEY --images FILE -o BATCH`: the client's upload.

use super::common::{load_context, load_images};
use crate::error::CliError;
use crate::keyio::{load_encryption_key, write_batch};
use crate::memory::human_bytes;
use crate::progress::StepBar;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use veil_runtime::session::ContainerKind;

/// Arguments of `veil encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The compiled plan.
    pub plan: PathBuf,
    /// secret.key (seeded, half-size ciphertexts) or public.key.
    #[arg(long)]
    pub key: PathBuf,
    /// Images: IDX (plain or .gz) or CSV, one image per row.
    #[arg(long)]
    pub images: PathBuf,
    /// The encrypted batch to write.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Encrypt only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Runs `veil encrypt`.
pub fn run(args: EncryptArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let images = load_images(&args.images, args.limit, context.plan())?;
    let key = load_encryption_key(&context, &args.key)?;
    let chunks = context.chunks_for(images.count());
    let primes = context.params().len();
    let values = context.plan().input.features.len();
    let total = (chunks * primes * values) as u64;
    let bar = StepBar::new("encrypt", total, false);
    let started = Instant::now();
    let (batch, clamped) = context.encrypt(
        key.as_encryption_key(),
        images.pixels(),
        &mut veil_runtime::bfv::os_rng(),
        &|n| bar.inc(n),
    )?;
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let bytes = write_batch(&context, ContainerKind::Batch, &batch, &args.out)?;
    if clamped > 0 {
        eprintln!("warning: {clamped} input values lay outside the model's declared range and were clamped");
    }
    println!(
        "encrypted {} images ({} chunks × {} primes × {} ciphertexts) in {seconds:.2} s",
        images.count(),
        chunks,
        primes,
        values
    );
    println!(
        "  {}: {} ({} per image)",
        args.out.display(),
        human_bytes(bytes as f64),
        human_bytes(bytes as f64 / images.count() as f64)
    );
    Ok(())
}
