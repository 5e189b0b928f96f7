//! `veil bench MODEL_OR_PLAN [--batches K] [--json]`: a full-batch benchmark on random inputs
//! in the model's declared range, with per-phase and per-step timings.

use super::common::print_out;
use super::compile_flags::CompileFlags;
use super::plan_source::obtain_plan;
use super::round_trip::RoundTrips;
use crate::error::CliError;
use crate::memory::{human_bytes, peak_rss_bytes};
use crate::progress::StepBar;
use clap::Args;
use rand::Rng;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use veil_runtime::exec::Progress;
use veil_runtime::session::{Context, EncryptionKey};

/// Arguments of `veil bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A model file or an ONNX model (compiled first), or a compiled plan.
    pub model: PathBuf,
    /// Number of full batches (a full ciphertext's images each) to run; ignored with
    /// `--batch-size`, which runs exactly that many images (`--batch-size 1` measures the
    /// latency of one image).
    #[arg(long, default_value_t = 1)]
    pub batches: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Compilation options, used when MODEL is a model file.
    #[command(flatten)]
    pub compile: CompileFlags,
}

/// Time spent in one plan step, summed over batches and plaintext primes.
#[derive(Debug, Serialize, Clone)]
pub struct StepTime {
    /// The step.
    pub step: String,
    /// Seconds.
    pub seconds: f64,
}

/// What `veil bench --json` prints.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Images evaluated (`--batch-size`, or batches × images per ciphertext).
    pub images: usize,
    /// Worker threads.
    pub threads: usize,
    /// Ring degree.
    pub n: usize,
    /// The plan's layout: `slots` (one image per slot) or `packed` (one image per lane).
    pub layout: &'static str,
    /// Images one ciphertext serves (n in the slot layout).
    pub images_per_ciphertext: usize,
    /// Bytes of the evaluation-key file (relinearisation and Galois keys), uploaded once.
    pub eval_key_bytes: usize,
    /// Galois keys in it (0 in the slot layout).
    pub galois_keys: usize,
    /// Plaintext primes (one circuit run each).
    pub plain_primes: usize,
    /// Seconds: key generation.
    pub keygen_seconds: f64,
    /// Seconds: the server's one-time preparation of the plan (a packed plan's diagonals
    /// encoded for every plaintext prime; 0 for the slot layout), before any request.
    pub prepare_seconds: f64,
    /// Seconds: encryption.
    pub encrypt_seconds: f64,
    /// Seconds: evaluation.
    pub eval_seconds: f64,
    /// Seconds: decryption.
    pub decrypt_seconds: f64,
    /// Per plan step.
    pub eval_steps: Vec<StepTime>,
    /// Images per second, evaluation only.
    pub eval_images_per_second: f64,
    /// Images per second, encrypt + eval + decrypt.
    pub end_to_end_images_per_second: f64,
    /// Upload bytes per image.
    pub upload_bytes_per_image: f64,
    /// Download bytes per image.
    pub download_bytes_per_image: f64,
    /// Peak resident memory, bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// Collects per-step times while forwarding to a progress bar.
#[derive(Debug)]
struct StepTimer<'a> {
    bar: &'a StepBar,
    times: Mutex<Vec<StepTime>>,
}

impl Progress for StepTimer<'_> {
    fn step_started(&self, index: usize, total: usize, label: &str, outputs: usize) {
        self.bar.step_started(index, total, label, outputs);
    }

    fn step_finished(&self, index: usize, label: &str, elapsed: Duration) {
        self.bar.step_finished(index, label, elapsed);
        if let Ok(mut times) = self.times.lock() {
            if times.len() <= index {
                times.resize(
                    index + 1,
                    StepTime {
                        step: String::new(),
                        seconds: 0.0,
                    },
                );
            }
            times[index].step = label.to_string();
            times[index].seconds += elapsed.as_secs_f64();
        }
    }
}

/// Runs `veil bench`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        builder = builder.num_threads(threads);
    }
    let pool = builder.build()?;
    pool.install(|| bench(&args))
}

fn bench(args: &BenchArgs) -> Result<(), CliError> {
    let plan = obtain_plan(&args.model, &args.compile, !args.json)?.plan;
    let context = Context::new(plan)?;
    let n = context.slots();
    let count = args
        .compile
        .batch_size
        .unwrap_or(n * args.batches.max(1))
        .max(1);
    let batches = context.chunks_for(count);
    let input = &context.plan().input;
    let per_image = context.input_len();
    let mut rng = veil_runtime::bfv::os_rng();
    let quiet = args.json;

    let t = Instant::now();
    let keys = context.keygen(&mut rng)?;
    let keygen_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    context.prepare()?;
    let prepare_seconds = t.elapsed().as_secs_f64();

    // One batch of n images at a time: random inputs, encrypt, evaluate, decrypt, compare,
    // drop; memory holds one chunk whatever the number of batches.
    let client = EncryptionKey::Client(&keys.client);
    let batch = context.new_batch(client, count, &mut rng)?;
    let primes = context.params().len();
    let bar = StepBar::new(
        "bench",
        (batches * primes * context.plan().steps.len()) as u64,
        quiet,
    );
    let timer = StepTimer {
        bar: &bar,
        times: Mutex::new(Vec::new()),
    };
    let mut totals = RoundTrips::default();
    for index in 0..batches {
        let pixels: Vec<f32> = (0..context.chunk_images(&batch, index).len() * per_image)
            .map(|_| {
                let raw = if input.raw_max > input.raw_min {
                    rng.gen_range(input.raw_min..=input.raw_max)
                } else {
                    input.raw_min
                };
                raw.round() as f32
            })
            .collect();
        totals.run_chunk(
            &context, &keys, &batch, index, &pixels, &mut rng, &bar, &timer,
        )?;
    }
    bar.finish();
    let RoundTrips {
        encrypt: encrypt_seconds,
        eval: eval_seconds,
        decrypt: decrypt_seconds,
        upload,
        download,
        mismatches,
        ..
    } = totals;

    let report = BenchReport {
        images: count,
        threads: rayon::current_num_threads(),
        n: context.plan().params.degree,
        layout: if context.plan().packing.is_some() {
            "packed"
        } else {
            "slots"
        },
        images_per_ciphertext: n,
        eval_key_bytes: keys.server.to_bytes().len(),
        galois_keys: keys.server.galois_count(),
        plain_primes: context.params().len(),
        keygen_seconds,
        prepare_seconds,
        encrypt_seconds,
        eval_seconds,
        decrypt_seconds,
        eval_steps: timer
            .times
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            // A step that ran inside the one before it (a square fused into its linear map)
            // reports under that step.
            .filter(|t| !t.step.is_empty())
            .collect(),
        eval_images_per_second: count as f64 / eval_seconds.max(1e-9),
        end_to_end_images_per_second: count as f64
            / (encrypt_seconds + eval_seconds + decrypt_seconds).max(1e-9),
        upload_bytes_per_image: upload as f64 / count as f64,
        download_bytes_per_image: download as f64 / count as f64,
        peak_memory_bytes: peak_rss_bytes(),
    };
    if args.json {
        print_out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        print_out(&format_report(&report))?;
    }
    if mismatches > 0 {
        return Err(format!("{mismatches} images differ from the plaintext reference").into());
    }
    Ok(())
}

/// The human-readable report (printed through `print_out`, which tolerates a closed pipe).
fn format_report(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "benchmark: {} images (n = {}, {} layout, {} images per ciphertext), {} plaintext prime(s), {} threads",
        r.images, r.n, r.layout, r.images_per_ciphertext, r.plain_primes, r.threads
    );
    let _ = writeln!(out, "  {:<40} {:>9}", "phase", "seconds");
    let _ = writeln!(out, "  {:<40} {:>9.3}", "keygen", r.keygen_seconds);
    let _ = writeln!(
        out,
        "  {:<40} {:>9.3}",
        "prepare (once per server)", r.prepare_seconds
    );
    let _ = writeln!(out, "  {:<40} {:>9.3}", "encrypt", r.encrypt_seconds);
    let _ = writeln!(out, "  {:<40} {:>9.3}", "eval", r.eval_seconds);
    for step in &r.eval_steps {
        let _ = writeln!(
            out,
            "  {:<40} {:>9.3}",
            format!("  {}", step.step),
            step.seconds
        );
    }
    let _ = writeln!(out, "  {:<40} {:>9.3}", "decrypt", r.decrypt_seconds);
    let _ = writeln!(
        out,
        "  images/s: {:.1} eval, {:.1} end to end",
        r.eval_images_per_second, r.end_to_end_images_per_second
    );
    let _ = writeln!(
        out,
        "  per image: {} up, {} down",
        human_bytes(r.upload_bytes_per_image),
        human_bytes(r.download_bytes_per_image)
    );
    let _ = writeln!(
        out,
        "  evaluation keys: {} ({} Galois keys), uploaded once",
        human_bytes(r.eval_key_bytes as f64),
        r.galois_keys
    );
    if let Some(peak) = r.peak_memory_bytes {
        let _ = writeln!(out, "  peak memory: {}", human_bytes(peak as f64));
    }
    out
}
