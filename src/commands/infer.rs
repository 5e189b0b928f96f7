//! `veil infer MODEL_OR_PLAN --images FILE [--labels FILE]`: the whole pipeline in one process
//! (compile if given a model, keygen, encrypt, eval, decrypt), checked against the plaintext
//! reference, with accuracy, timings and sizes.

use super::common::print_out;
use super::common::{accuracy, load_images, load_labels};
use super::compile_flags::CompileFlags;
use super::plan_source::obtain_plan;
use super::round_trip::RoundTrips;
use crate::error::CliError;
use crate::memory::{human_bytes, peak_rss_bytes};
use crate::progress::StepBar;
use clap::Args;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use veil_runtime::plan::argmax;
use veil_runtime::session::{Context, EncryptionKey};

/// Arguments of `veil infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// A model file or an ONNX model (compiled first), or a compiled plan.
    pub model: PathBuf,
    /// Images: IDX (plain or .gz) or CSV, one image per row.
    #[arg(long)]
    pub images: PathBuf,
    /// Labels (IDX or one per line), to measure accuracy.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Use only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Compilation options, used when MODEL is a model file.
    #[command(flatten)]
    pub compile: CompileFlags,
}

/// Seconds per phase.
#[derive(Debug, Default, Serialize)]
pub struct PhaseSeconds {
    /// Compilation (0 when given a plan).
    pub compile: f64,
    /// Key generation.
    pub keygen: f64,
    /// Encryption.
    pub encrypt: f64,
    /// Evaluation.
    pub eval: f64,
    /// Decryption.
    pub decrypt: f64,
}

/// What `veil infer --json` prints.
#[derive(Debug, Serialize)]
pub struct InferReport {
    /// Images evaluated.
    pub images: usize,
    /// Accuracy of the decrypted predictions, percent (null without labels).
    pub accuracy_encrypted: Option<f64>,
    /// Accuracy of the plaintext reference run of the same plan, percent.
    pub accuracy_plain: Option<f64>,
    /// Images whose decrypted integer scores differ from the reference (must be 0).
    pub mismatches: usize,
    /// Smallest measured noise budget over all output ciphertexts, bits.
    pub noise_budget_measured_bits: u32,
    /// The compiler's predicted budget, bits.
    pub noise_budget_predicted_bits: f64,
    /// Seconds per phase.
    pub seconds: PhaseSeconds,
    /// Images per second, end to end (encrypt + eval + decrypt).
    pub images_per_second: f64,
    /// Images per second of the evaluation alone.
    pub eval_images_per_second: f64,
    /// Bytes uploaded per image (the encrypted batch).
    pub upload_bytes_per_image: f64,
    /// Bytes downloaded per image (the encrypted result).
    pub download_bytes_per_image: f64,
    /// Bytes uploaded per image when every slot of every batch is used (the cost per image of
    /// the format, independent of how many images this run had).
    pub upload_bytes_per_image_full_batch: f64,
    /// Bytes downloaded per image when every slot is used.
    pub download_bytes_per_image_full_batch: f64,
    /// Peak resident memory, bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Ring degree.
    pub n: usize,
    /// Plaintext primes.
    pub plain_primes: Vec<u64>,
    /// Worker threads.
    pub threads: usize,
    /// Input values outside the plan's declared range, clamped before encryption.
    pub clamped_inputs: usize,
    /// The compiler's warnings when MODEL was a model file (layers replaced to fit the
    /// scheme, …), the same lines `veil compile` prints.
    pub warnings: Vec<String>,
}

/// Runs `veil infer`.
pub fn run(args: InferArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let obtained = obtain_plan(&args.model, &args.compile, !args.json)?;
    let (plan, warnings) = (obtained.plan, obtained.warnings);
    let compile_seconds = if obtained.compiled {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let context = Context::new(plan).map_err(super::common::in_file(&args.model))?;
    let images = load_images(&args.images, args.limit, context.plan())?;
    let labels = match &args.labels {
        Some(path) => Some(load_labels(path, args.limit, &images, context.plan())?),
        None => None,
    };
    let quiet = args.json;
    let mut rng = veil_runtime::bfv::os_rng();

    let t = Instant::now();
    let keys = context.keygen(&mut rng)?;
    let keygen = t.elapsed().as_secs_f64();

    // One chunk at a time: encrypt, evaluate, decrypt, compare, drop; memory holds the
    // images and one chunk whatever their number. The bar counts plan steps; the time spent
    // encrypting and decrypting each chunk is part of the rate its estimate uses.
    let count = images.count();
    let client = EncryptionKey::Client(&keys.client);
    let batch = context.new_batch(client, count, &mut rng)?;
    let chunks = context.chunks_for(count);
    let primes = context.params().len();
    let per_image = context.input_len();
    let bar = StepBar::new(
        "infer",
        (chunks * primes * context.plan().steps.len()) as u64,
        quiet,
    );
    let mut totals = RoundTrips::default();
    let mut min_budget = u32::MAX;
    let mut predicted = Vec::with_capacity(count);
    let mut predicted_plain = Vec::with_capacity(count);
    for index in 0..chunks {
        let range = context.chunk_images(&batch, index);
        let raw = &images.pixels()[range.start * per_image..range.end * per_image];
        let (decrypted, reference) =
            totals.run_chunk(&context, &keys, &batch, index, raw, &mut rng, &bar, &bar)?;
        min_budget = min_budget.min(decrypted.min_noise_budget_bits);
        predicted.extend(decrypted.scores.iter().map(|s| argmax(s)));
        predicted_plain.extend(reference.iter().map(|s| argmax(s)));
    }
    bar.finish();
    let RoundTrips {
        encrypt,
        eval,
        decrypt,
        upload,
        download,
        clamped,
        mismatches,
    } = totals;
    // Slots in the batches sent: the sizes above divided by these give the per-image cost of
    // full batches, which a partly filled last batch would otherwise hide.
    let full = context.chunks_for(count).max(1) * context.slots();
    let report = InferReport {
        images: count,
        accuracy_encrypted: labels.as_ref().map(|l| accuracy(&predicted, l)),
        accuracy_plain: labels.as_ref().map(|l| accuracy(&predicted_plain, l)),
        mismatches,
        noise_budget_measured_bits: if min_budget == u32::MAX {
            0
        } else {
            min_budget
        },
        noise_budget_predicted_bits: context.plan().predicted_noise_budget_bits,
        seconds: PhaseSeconds {
            compile: compile_seconds,
            keygen,
            encrypt,
            eval,
            decrypt,
        },
        images_per_second: count as f64 / (encrypt + eval + decrypt).max(1e-9),
        eval_images_per_second: count as f64 / eval.max(1e-9),
        upload_bytes_per_image: upload as f64 / count as f64,
        download_bytes_per_image: download as f64 / count as f64,
        upload_bytes_per_image_full_batch: upload as f64 / full as f64,
        download_bytes_per_image_full_batch: download as f64 / full as f64,
        peak_memory_bytes: peak_rss_bytes(),
        n: context.slots(),
        plain_primes: context.plan().params.plain_primes.clone(),
        threads: rayon::current_num_threads(),
        clamped_inputs: clamped,
        warnings,
    };
    if clamped > 0 {
        eprintln!(
            "warning: {clamped} input values lay outside the declared range and were clamped"
        );
    }
    if args.json {
        print_out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        print_out(&format_report(&report))?;
    }
    if mismatches > 0 {
        return Err(format!(
            "{mismatches} images decrypted to scores that differ from the plaintext reference"
        )
        .into());
    }
    Ok(())
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a (no --labels)".to_string(), |v| format!("{v:.2}%"))
}

/// The human-readable report (printed through `print_out`, which tolerates a closed pipe).
fn format_report(r: &InferReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "encrypted inference on {} images (n = {}, {} plaintext prime(s), {} threads)",
        r.images,
        r.n,
        r.plain_primes.len(),
        r.threads
    );
    let _ = writeln!(
        out,
        "  accuracy, encrypted        {}",
        percent(r.accuracy_encrypted)
    );
    let _ = writeln!(
        out,
        "  accuracy, plaintext plan   {}",
        percent(r.accuracy_plain)
    );
    let _ = writeln!(out, "  mismatches vs reference    {}", r.mismatches);
    let _ = writeln!(
        out,
        "  noise budget left          {} bits measured, {:.1} bits predicted",
        r.noise_budget_measured_bits, r.noise_budget_predicted_bits
    );
    let s = &r.seconds;
    let _ = writeln!(out,
        "  seconds                    compile {:.2}, keygen {:.2}, encrypt {:.2}, eval {:.2}, decrypt {:.2}",
        s.compile, s.keygen, s.encrypt, s.eval, s.decrypt
    );
    let _ = writeln!(
        out,
        "  throughput                 {:.1} images/s end to end, {:.1} images/s eval",
        r.images_per_second, r.eval_images_per_second
    );
    let _ = writeln!(
        out,
        "  per image                  {} up, {} down ({} up, {} down in full batches of {})",
        human_bytes(r.upload_bytes_per_image),
        human_bytes(r.download_bytes_per_image),
        human_bytes(r.upload_bytes_per_image_full_batch),
        human_bytes(r.download_bytes_per_image_full_batch),
        r.n
    );
    if let Some(peak) = r.peak_memory_bytes {
        let _ = writeln!(
            out,
            "  peak memory                {}",
            human_bytes(peak as f64)
        );
    }
    out
}
