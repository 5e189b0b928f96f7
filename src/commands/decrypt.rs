//! `veil decrypt PLAN --key secret.key RESULT [-o predictions.csv]`: the client reads the
//! predictions.

use super::common::load_context;
use crate::error::CliError;
use crate::files::write_atomic;
use crate::keyio::{load_secret, read_batch};
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use veil_runtime::plan::argmax;
use veil_runtime::session::ContainerKind;
use veil_runtime::session::{Context, SessionError};

/// Arguments of `veil decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The compiled plan.
    pub plan: PathBuf,
    /// The secret key.
    #[arg(long)]
    pub key: PathBuf,
    /// The encrypted result from `veil eval`.
    pub result: PathBuf,
    /// Write predictions as CSV (image, class, decoded scores) here; otherwise print them.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
}

/// Runs `veil decrypt`.
pub fn run(args: DecryptArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let secret = load_secret(&context, &args.key)?;
    let result = read_batch(&context, ContainerKind::Result, &args.result)?;
    let started = Instant::now();
    let decrypted = context
        .decrypt(&secret, &result)
        .map_err(|err| explain_refusal(&args, &context, err))?;
    let seconds = started.elapsed().as_secs_f64();
    let plan = context.plan();
    if decrypted.min_noise_budget_bits == 0 {
        eprintln!(
            "warning: {}: 0 bits of noise budget left ({:.1} predicted); the scores are within \
             the plan's bounds, but the result was at the edge of decryptability",
            args.result.display(),
            plan.predicted_noise_budget_bits
        );
    }
    let output = &plan.output;
    let mut csv = String::from("image,class");
    for o in 0..context.outputs() {
        let _ = write!(csv, ",score_{}", output.class_name(o));
    }
    csv.push('\n');
    for (i, scores) in decrypted.scores.iter().enumerate() {
        let _ = write!(csv, "{i},{}", output.class_name(argmax(scores)));
        for s in output.decode(scores) {
            let _ = write!(csv, ",{s:.6e}");
        }
        csv.push('\n');
    }
    match &args.out {
        Some(path) => {
            write_atomic(path, csv.as_bytes(), true)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!(
                "decrypted {} predictions in {seconds:.2} s → {}",
                decrypted.scores.len(),
                path.display()
            );
        }
        None => print!("{csv}"),
    }
    eprintln!(
        "minimum noise budget left: {} bits (predicted {:.1})",
        decrypted.min_noise_budget_bits, plan.predicted_noise_budget_bits
    );
    Ok(())
}

/// A refused result, with what it means and what to do.
fn explain_refusal(args: &DecryptArgs, context: &Context, err: SessionError) -> CliError {
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
                args.result.display(),
                context.plan().predicted_noise_budget_bits,
                args.key.display()
            )
            .into()
        }
        other => format!("{}: {other}", args.result.display()).into(),
    }
}
