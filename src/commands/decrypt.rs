//! `veil decrypt PLAN --key secret.key RESULT [-o predictions.csv]`: the client reads the
//! predictions.

use super::common::load_context;
use crate::cli::CliError;
use crate::container::ContainerKind;
use crate::encoding::{argmax, decode_scores};
use crate::files::write_atomic;
use crate::keyio::{load_secret, read_batch};
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

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
    let decrypted = context.decrypt(&secret, &result)?;
    let seconds = started.elapsed().as_secs_f64();
    // A result that decrypts under the wrong key (or after the noise outgrew the message)
    // gives residues that look uniform, so their CRT values fall outside the output's
    // guaranteed bound almost surely; correct scores never do. A budget of 0 bits alone is not
    // proof: decryption is still exact anywhere below half the modulus.
    let bound_bits = context
        .plan
        .registers
        .get(context.plan.output.register)
        .map_or(f64::INFINITY, |r| r.value_bits);
    let bound = bound_bits.exp2() * (1.0 + 1e-12);
    let total: usize = decrypted.scores.iter().map(Vec::len).sum();
    let outside = decrypted
        .scores
        .iter()
        .flatten()
        .filter(|&&v| (v as f64).abs() > bound)
        .count();
    if outside > 0 {
        let exhausted = if decrypted.min_noise_budget_bits == 0 {
            "noise budget exhausted, "
        } else {
            ""
        };
        return Err(format!(
            "{}: {exhausted}{outside} of {total} decrypted scores lie outside the plan's bound of \
             2^{bound_bits:.1} ({} bits of noise budget left, {:.1} predicted): wrong key or a \
             plan/parameters mismatch; the result decrypts to noise under {} (use the \
             secret.key of the keygen whose keys encrypted and evaluated this batch)",
            args.result.display(),
            decrypted.min_noise_budget_bits,
            context.plan.predicted_noise_budget_bits,
            args.key.display()
        )
        .into());
    }
    if decrypted.min_noise_budget_bits == 0 {
        eprintln!(
            "warning: {}: 0 bits of noise budget left ({:.1} predicted); the scores are within \
             the plan's bounds, but the result was at the edge of decryptability",
            args.result.display(),
            context.plan.predicted_noise_budget_bits
        );
    }
    let names = &context.plan.output.class_names;
    let mut csv = String::from("image,class");
    for o in 0..context.outputs() {
        let name = names.get(o).cloned().unwrap_or_else(|| o.to_string());
        let _ = write!(csv, ",score_{name}");
    }
    csv.push('\n');
    for (i, scores) in decrypted.scores.iter().enumerate() {
        let class = argmax(scores);
        let label = names
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        let _ = write!(csv, "{i},{label}");
        for s in decode_scores(&context.plan.output, scores) {
            let _ = write!(csv, ",{s:.6e}");
        }
        csv.push('\n');
    }
    match &args.out {
        Some(path) => {
            write_atomic(path, csv.as_bytes(), false)
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
        decrypted.min_noise_budget_bits, context.plan.predicted_noise_budget_bits
    );
    Ok(())
}
