//! `veil decrypt PLAN --key secret.key RESULT... [-o predictions.csv]`: the client reads the
//! predictions. RESULT is one whole result, or the partial results of one batch in any order
//! (from `veil eval --chunk`/`--chunks`); they are joined chunk by chunk, and gaps,
//! duplicates and results of other batches or keys are refused before anything is decrypted.

use super::common::{in_file, load_context, print_out};
use crate::error::CliError;
use crate::files::AtomicFile;
use crate::keyio::{load_secret, open_container, FileChunks};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_runtime::plan::argmax;
use veil_runtime::session::{assemble, ContainerKind, Header};
use veil_runtime::session::{Context, SessionError};

/// Arguments of `veil decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The compiled plan.
    pub plan: PathBuf,
    /// The secret key.
    #[arg(long)]
    pub key: PathBuf,
    /// The encrypted result from `veil eval`, or every partial result of one batch (any
    /// order).
    #[arg(required = true, num_args = 1..)]
    pub results: Vec<PathBuf>,
    /// Write predictions as CSV (image, class, decoded scores) here; otherwise print them.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
}

/// Runs `veil decrypt`.
pub fn run(args: DecryptArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let secret = load_secret(&context, &args.key)?;
    let mut parts: Vec<(&Path, FileChunks<'_>)> = Vec::with_capacity(args.results.len());
    for path in &args.results {
        parts.push((path, open_container(&context, ContainerKind::Result, path)?));
    }
    let headers: Vec<(String, Header)> = parts
        .iter()
        .map(|(path, reader)| (path.display().to_string(), *reader.header()))
        .collect();
    let order = assemble(&headers)?;
    for (path, header) in &headers {
        if header.batch.key_set != secret.id() {
            let err = SessionError::KeySetMismatch {
                what: "result",
                found: header.batch.key_set,
                expected: secret.id(),
            };
            return Err(format!("{path}: {err}").into());
        }
    }
    // Predictions are the client's private data: an owner-only file, or standard output once
    // every chunk is decrypted.
    let mut sink = match &args.out {
        Some(path) => Sink::File(
            AtomicFile::create(path, true)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        ),
        None => Sink::Held(Vec::new()),
    };
    let started = Instant::now();
    let plan = context.plan();
    let output = &plan.output;
    let mut line = String::from("image,class");
    for o in 0..context.outputs() {
        line.push_str(&format!(",score_{}", output.class_name(o)));
    }
    line.push('\n');
    let cannot = |e: std::io::Error| -> CliError {
        match &args.out {
            Some(path) => format!("cannot write {}: {e}", path.display()).into(),
            None => e.into(),
        }
    };
    sink.write_all(line.as_bytes()).map_err(cannot)?;
    let mut images = 0;
    let mut min_budget = u32::MAX;
    let mut parts: Vec<Option<(&Path, FileChunks<'_>)>> = parts.into_iter().map(Some).collect();
    for i in order {
        let Some((path, mut reader)) = parts[i].take() else {
            continue;
        };
        for chunk in reader.by_ref() {
            let chunk = chunk.map_err(in_file(path))?;
            let first = context.chunk_images(&chunk.batch, chunk.index).start;
            let decrypted = context
                .decrypt_chunk(&secret, &chunk)
                .map_err(|err| explain_refusal(path, &args.key, &context, err))?;
            min_budget = min_budget.min(decrypted.min_noise_budget_bits);
            for (k, scores) in decrypted.scores.iter().enumerate() {
                line.clear();
                line.push_str(&format!(
                    "{},{}",
                    first + k,
                    output.class_name(argmax(scores))
                ));
                for s in output.decode(scores) {
                    line.push_str(&format!(",{s:.6e}"));
                }
                line.push('\n');
                sink.write_all(line.as_bytes()).map_err(cannot)?;
            }
            images += decrypted.scores.len();
        }
        reader.finish().map_err(in_file(path))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if min_budget == 0 {
        eprintln!(
            "warning: 0 bits of noise budget left ({:.1} predicted); the scores are within the \
             plan's bounds, but the result was at the edge of decryptability",
            plan.predicted_noise_budget_bits
        );
    }
    match (sink, &args.out) {
        (Sink::File(file), Some(path)) => {
            file.commit().map_err(cannot)?;
            println!(
                "decrypted {images} predictions in {seconds:.2} s → {}",
                path.display()
            );
        }
        (Sink::Held(bytes), _) => print_out(&String::from_utf8_lossy(&bytes))?,
        (Sink::File(_), None) => {}
    }
    eprintln!(
        "minimum noise budget left: {} bits (predicted {:.1})",
        if min_budget == u32::MAX {
            0
        } else {
            min_budget
        },
        plan.predicted_noise_budget_bits
    );
    Ok(())
}

/// Where the predictions go: an owner-only file written as chunks are decrypted, or a buffer
/// printed once every chunk is decrypted (nothing is printed if one is refused).
enum Sink {
    File(AtomicFile),
    Held(Vec<u8>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Held(v) => v.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Held(_) => Ok(()),
        }
    }
}

/// A refused result, with what it means and what to do.
fn explain_refusal(result: &Path, key: &Path, context: &Context, err: SessionError) -> CliError {
    match err {
        SessionError::ScoresOutOfBound {
            outside,
            total,
            bound_bits,
            budget_bits,
        } => {
            let exhausted = if budget_bits == 0 {
                "noise budget exhausted, "
            } else {
                ""
            };
            format!(
                "{}: {exhausted}{outside} of {total} decrypted scores lie outside the plan's \
                 bound of 2^{bound_bits:.1} ({budget_bits} bits of noise budget left, {:.1} \
                 predicted): wrong key or a plan/parameters mismatch; the result decrypts to \
                 noise under {} (use the secret.key of the keygen whose keys encrypted and \
                 evaluated this batch)",
                result.display(),
                context.plan().predicted_noise_budget_bits,
                key.display()
            )
            .into()
        }
        other => format!("{}: {other}", result.display()).into(),
    }
}
