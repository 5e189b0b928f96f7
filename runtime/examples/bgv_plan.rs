//! Runs a compiled plan with BGV (and optionally BFV) on random inputs in every slot, checks
//! the CRT-recombined result against the exact integer reference slot by slot, and prints
//! timings and output noise budgets.
//!
//! `cargo run --release -p veil-runtime --example bgv_plan -- PLAN.json [--one-key] [--bfv]`
//! (`veil compile models/cryptonets-mnist.ron -o PLAN.json` makes one). By default BGV uses a
//! relinearisation key per plaintext prime; `--one-key` uses one key for all of them (error
//! T = Π t_i); `--bfv` also runs BFV for comparison.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::path::Path;
use std::time::Instant;
use veil_runtime::exec::{run_plan, BgvBackend, Crt, EncryptedBackend, ExactBackend, NoProgress};
use veil_runtime::plan::Plan;
use veil_runtime::{bfv, bgv};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .expect("usage: bgv_plan PLAN.json [--one-key] [--bfv]");
    let one_key = args.iter().any(|a| a == "--one-key");
    let with_bfv = args.iter().any(|a| a == "--bfv");
    let plan = Plan::read_file(Path::new(path)).unwrap();
    let params = plan.bfv_parameters().unwrap();
    let primes = plan.params.plain_primes.clone();
    let n = plan.params.degree;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = bfv::SecretKey::generate(&params[0], &mut rng);
    let max = plan.input.max_abs;
    let features: Vec<Vec<i64>> = (0..plan.input_len())
        .map(|_| (0..n).map(|_| rng.gen_range(0..=max)).collect())
        .collect();
    let start = Instant::now();
    let reference = run_plan(
        &plan,
        &ExactBackend::for_plain_primes(&primes),
        features
            .iter()
            .map(|f| f.iter().map(|&v| i128::from(v)).collect())
            .collect(),
        &NoProgress,
    )
    .unwrap();
    println!("reference: {:.1} s", start.elapsed().as_secs_f64());
    let crt = Crt::new(&primes).unwrap();
    let one = bgv::RelinKey::new(&sk, &primes, &mut rng).unwrap();
    let mut bgv_slots = Vec::new();
    let mut bfv_slots = Vec::new();
    for p in &params {
        let t = p.plain_modulus();
        let encoder = bfv::Encoder::new(p);
        let own;
        let rk = if one_key {
            &one
        } else {
            own = bgv::RelinKey::new(&sk, &[t], &mut rng).unwrap();
            &own
        };
        let start = Instant::now();
        let inputs: Vec<bgv::Ciphertext> = features
            .iter()
            .map(|f| bgv::encrypt(&sk, &encoder.encode(f).unwrap(), &mut rng).unwrap())
            .collect();
        let enc_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let out = run_plan(&plan, &BgvBackend::new(p, rk), inputs, &NoProgress).unwrap();
        let eval_s = start.elapsed().as_secs_f64();
        let budgets: Vec<u32> = out
            .iter()
            .map(|ct| bgv::noise_budget_bits(&sk, ct).unwrap())
            .collect();
        println!(
            "BGV t={t}: encrypt {enc_s:.1} s, eval {eval_s:.1} s, output level {}, budgets {:?}",
            out[0].level(),
            budgets
        );
        bgv_slots.push(
            out.iter()
                .map(|ct| {
                    encoder
                        .decode_unsigned(&bgv::decrypt(&sk, ct).unwrap())
                        .unwrap()
                })
                .collect::<Vec<_>>(),
        );
        if with_bfv {
            let rk = bfv::RelinKey::new(&sk, &mut rng);
            let inputs: Vec<bfv::Ciphertext> = features
                .iter()
                .map(|f| sk.encrypt(&encoder.encode(f).unwrap(), &mut rng).unwrap())
                .collect();
            let start = Instant::now();
            let out = run_plan(&plan, &EncryptedBackend::new(p, &rk), inputs, &NoProgress).unwrap();
            let budgets: Vec<u32> = out.iter().map(|ct| sk.noise_budget(ct).unwrap()).collect();
            println!(
                "BFV t={t}: eval {:.1} s, budgets {budgets:?}",
                start.elapsed().as_secs_f64()
            );
            bfv_slots.push(
                out.iter()
                    .map(|ct| encoder.decode_unsigned(&sk.decrypt(ct).unwrap()).unwrap())
                    .collect::<Vec<_>>(),
            );
        }
    }
    let mut wrong = 0;
    for (o, want) in reference.iter().enumerate() {
        for (k, &w) in want.iter().enumerate() {
            let residues: Vec<u64> = bgv_slots.iter().map(|s| s[o][k]).collect();
            if crt.recombine(&residues).unwrap() != w {
                wrong += 1;
            }
        }
    }
    println!(
        "BGV: {wrong} of {} output slots differ from the reference",
        reference.len() * n
    );
    if with_bfv {
        println!(
            "BFV and BGV residues {}",
            if bfv_slots == bgv_slots {
                "are identical"
            } else {
                "DIFFER"
            }
        );
    }
}
