//! `veil encrypt PLAN --key KEY --images FILE -o BATCH`: the client's upload.

use super::common::{load_context, load_images};
use crate::cli::CliError;
use crate::container::ContainerKind;
use crate::keyio::{load_encryption_key, write_batch, LoadedEncryptionKey};
use crate::memory::human_bytes;
use crate::pipeline::EncryptionKey;
use crate::progress::StepBar;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

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
    let images = load_images(&args.images, args.limit, &context)?;
    let key = load_encryption_key(&context, &args.key)?;
    let key_ref = match &key {
        LoadedEncryptionKey::Secret(sk) => EncryptionKey::Secret(sk),
        LoadedEncryptionKey::Public(pk) => EncryptionKey::Public(pk),
    };
    let chunks = images.count().div_ceil(context.slots());
    let total = (chunks * context.params.len() * context.plan.input.features.len()) as u64;
    let bar = StepBar::new("encrypt", total, false);
    let started = Instant::now();
    let (batch, clamped) =
        context.encrypt(key_ref, &images, &mut veil_runtime::bfv::os_rng(), &|n| {
            bar.inc(n)
        })?;
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
        context.params.len(),
        context.plan.input.features.len()
    );
    println!(
        "  {}: {} ({} per image)",
        args.out.display(),
        human_bytes(bytes as f64),
        human_bytes(bytes as f64 / images.count() as f64)
    );
    Ok(())
}
