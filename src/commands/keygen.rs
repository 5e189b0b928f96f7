//! `veil keygen PLAN -o DIR`: the client's key generation.

use super::common::{in_file, load_context};
use crate::error::CliError;
use crate::keyio::write_keys;
use crate::memory::human_bytes;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `veil keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The compiled plan.
    pub plan: PathBuf,
    /// Folder to write secret.key, public.key and eval.key into.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Replace keys already in the folder (batches encrypted under them become
    /// undecryptable).
    #[arg(long)]
    pub force: bool,
}

/// Runs `veil keygen`.
pub fn run(args: KeygenArgs) -> Result<(), CliError> {
    let context = load_context(&args.plan)?;
    let started = Instant::now();
    let keys = context.keygen(&mut veil_runtime::bfv::os_rng())?;
    let seconds = started.elapsed().as_secs_f64();
    let written = write_keys(&args.out, &keys, args.force).map_err(in_file(&args.out))?;
    println!("generated key set {} in {seconds:.2} s", keys.id());
    for (path, bytes) in written {
        println!("  {:<40} {}", path.display(), human_bytes(bytes as f64));
    }
    println!("keep secret.key on the client; give the server only eval.key (and the plan)");
    Ok(())
}
