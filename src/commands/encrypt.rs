//! `veil encrypt PLAN --key KEY --images FILE -o BATCH`: the client's upload.

use super::common::{load_context, load_images};
use crate::error::CliError;
use crate::keyio::{create_container, finish_container, load_encryption_key};
use crate::memory::{human_bytes, peak_rss_bytes};
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

/// Runs `veil encrypt`: one chunk at a time, each written to the file as soon as it is made,
/// so memory holds the images and one chunk whatever their number.
pub fn run(args: EncryptArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let images = load_images(&args.images, args.limit, context.plan())?;
    let key = load_encryption_key(&context, &args.key)?;
    let key = key.as_encryption_key();
    let mut rng = veil_runtime::bfv::os_rng();
    let batch = context.new_batch(key, images.count(), &mut rng)?;
    let chunks = context.chunks_for(images.count());
    let primes = context.params().len();
    let values = context.input_ciphertexts();
    let total = (chunks * primes * values) as u64;
    let mut out = create_container(&context, ContainerKind::Batch, &batch, 0..chunks, &args.out)?;
    let bar = StepBar::new("encrypt", total, false);
    let started = Instant::now();
    let per_image = context.input_len();
    let mut clamped = 0;
    for index in 0..chunks {
        bar.message(format!("chunk {}/{chunks}", index + 1));
        let range = context.chunk_images(&batch, index);
        let raw = &images.pixels()[range.start * per_image..range.end * per_image];
        let (chunk, c) =
            context.encrypt_chunk(key, &batch, index, raw, &mut rng, &|n| bar.inc(n))?;
        clamped += c;
        out.write_chunk(&chunk)
            .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    }
    bar.finish();
    let bytes = finish_container(out, &args.out)?;
    let seconds = started.elapsed().as_secs_f64();
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
        "  {}: {} ({} per image), batch {}",
        args.out.display(),
        human_bytes(bytes as f64),
        human_bytes(bytes as f64 / images.count() as f64),
        batch.id
    );
    if let Some(peak) = peak_rss_bytes() {
        println!("  peak memory {}", human_bytes(peak as f64));
    }
    Ok(())
}
