//! `veil eval PLAN --key eval.key BATCH -o RESULT [--chunks A..B]`: the server. It never
//! reads a secret key. It evaluates a batch one chunk at a time (read, evaluate, write, drop),
//! so memory holds one chunk whatever the batch's size; with `--chunk` or `--chunks` it
//! evaluates only those chunks and writes a partial result that `veil decrypt` joins with the
//! others.

use super::common::{in_file, load_context};
use crate::error::CliError;
use crate::keyio::{create_container, finish_container, load_eval, open_container};
use crate::memory::{human_bytes, peak_rss_bytes};
use crate::progress::StepBar;
use clap::Args;
use std::ops::Range;
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
    /// The encrypted result to write (a partial result with --chunk or --chunks).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Evaluate only this chunk (0-based; a chunk is n images, n the ring degree), e.g. a
    /// Kubernetes Indexed Job's completion index.
    #[arg(long, conflicts_with = "chunks")]
    pub chunk: Option<usize>,
    /// Evaluate only these chunks: `A..B` (A to B−1), `A..=B` (A to B) or `A`.
    #[arg(long, value_parser = parse_chunks)]
    pub chunks: Option<Range<usize>>,
}

/// Parses `A..B`, `A..=B` or `A` into a half-open, non-empty range of chunks.
fn parse_chunks(s: &str) -> Result<Range<usize>, String> {
    let number = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}` is not a range of chunks: use A..B, A..=B or A"))
    };
    let range = if let Some((a, b)) = s.split_once("..=") {
        number(a)?..number(b)?.saturating_add(1)
    } else if let Some((a, b)) = s.split_once("..") {
        number(a)?..number(b)?
    } else {
        let a = number(s)?;
        a..a.saturating_add(1)
    };
    if range.is_empty() {
        return Err(format!("`{s}` names no chunk"));
    }
    Ok(range)
}

/// Runs `veil eval`.
pub fn run(args: EvalArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let relin = load_eval(&context, &args.key)?;
    let mut reader = open_container(&context, ContainerKind::Batch, &args.batch)?;
    let header = *reader.header();
    if header.batch.key_set != relin.id() {
        let err = SessionError::KeySetMismatch {
            what: "batch",
            found: header.batch.key_set,
            expected: relin.id(),
        };
        return Err(format!(
            "{}: {err} ({} is not the eval.key of that key set)",
            args.batch.display(),
            args.key.display()
        )
        .into());
    }
    let held = header.chunk_range();
    let range = match (args.chunk, args.chunks.clone()) {
        (Some(c), _) => c..c.saturating_add(1),
        (None, Some(range)) => range,
        (None, None) => held.clone(),
    };
    if range.start < held.start || range.end > held.end {
        return Err(format!(
            "{}: chunks {range:?} are not in this batch, which holds chunks {held:?} ({} images \
             in chunks of {})",
            args.batch.display(),
            header.batch.images,
            context.slots()
        )
        .into());
    }
    if range.start > held.start {
        reader.skip_to(range.start).map_err(in_file(&args.batch))?;
    }
    let mut out = create_container(
        &context,
        ContainerKind::Result,
        &header.batch,
        range.clone(),
        &args.out,
    )?;
    let images: usize = range
        .clone()
        .map(|c| context.chunk_images(&header.batch, c).len())
        .sum();
    let runs = (range.len() * context.params().len()) as u64;
    let bar = StepBar::new("eval", runs * context.plan().steps.len() as u64, false);
    let started = Instant::now();
    for _ in range.clone() {
        let chunk = reader
            .next_chunk()
            .map_err(in_file(&args.batch))?
            .ok_or_else(|| {
                format!(
                    "{}: ends before chunk {}",
                    args.batch.display(),
                    reader.next_index()
                )
            })?;
        let result = context.eval_chunk(&relin, chunk, &bar)?;
        out.write_chunk(&result)
            .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    }
    bar.finish();
    if range.end == held.end {
        // The last chunk was read: the file must end here, as decrypt also requires.
        reader.finish().map_err(in_file(&args.batch))?;
    }
    let bytes = finish_container(out, &args.out)?;
    let seconds = started.elapsed().as_secs_f64();
    let part = if range == (0..header.chunks as usize) {
        String::new()
    } else {
        format!(" (chunks {range:?} of {}: a partial result)", header.chunks)
    };
    println!(
        "evaluated {images} images{part} in {seconds:.2} s ({:.1} images/s)",
        images as f64 / seconds.max(1e-9)
    );
    println!(
        "  {}: {} ({} per image)",
        args.out.display(),
        human_bytes(bytes as f64),
        human_bytes(bytes as f64 / images.max(1) as f64)
    );
    if let Some(peak) = peak_rss_bytes() {
        println!("  peak memory {}", human_bytes(peak as f64));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_chunks;

    #[test]
    fn chunk_ranges_parse() {
        assert_eq!(parse_chunks("3..5"), Ok(3..5));
        assert_eq!(parse_chunks("3..=5"), Ok(3..6));
        assert_eq!(parse_chunks("4"), Ok(4..5));
        assert_eq!(parse_chunks("5..5"), Err("`5..5` names no chunk".into()));
        assert!(parse_chunks("a..b").is_err());
        assert!(parse_chunks("-1").is_err());
    }
}
