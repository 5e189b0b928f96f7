//! The packed layout's noise model against the runtime: packed plans run on real ciphertexts
//! (the session's encryption, the packed executor), and the measured budget of every register
//! must be at least its prediction (whole bits: measured + 1 ≥ predicted), and the scores equal
//! the exact reference. A per-register table is printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::path::Path;
use veil_compiler::testing::chain;
use veil_compiler::{compile_graph, compile_path, CompileOptions, LayoutChoice};
use veil_runtime::exec::{run_plan_keeping_registers, BfvPacked, PackedBackend};
use veil_runtime::plan::Plan;
use veil_runtime::session::{Context, EncryptionKey};

fn packed() -> CompileOptions {
    CompileOptions {
        layout: LayoutChoice::Packed,
        ..CompileOptions::default()
    }
}

/// Per register, the smallest measured budget over plaintext primes (whole bits), after
/// checking the decrypted scores of a full ciphertext of random images against the reference.
fn measure(plan: &Plan, seed: u64, public: bool) -> Vec<Option<u32>> {
    let context = Context::new(plan.clone()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = context.keygen(&mut rng).unwrap();
    let images = context.slots();
    let raw: Vec<f32> = (0..images * context.input_len())
        .map(|_| rng.gen_range(plan.input.raw_min..=plan.input.raw_max) as f32)
        .collect();
    let key = if public {
        EncryptionKey::Public(&keys.public)
    } else {
        EncryptionKey::Client(&keys.client)
    };
    let (batch, _) = context.encrypt(key, &raw, &mut rng, &|_| {}).unwrap();
    let relin = keys.server.bfv().unwrap();
    let galois = keys.server.galois().unwrap();
    let sk = keys.client.secret();
    let mut budgets: Vec<Option<u32>> = vec![None; plan.registers.len()];
    for (prime, params) in context.params().iter().enumerate() {
        let input = batch.chunks[0].values[prime][0].clone().into_bfv().unwrap();
        let backend =
            PackedBackend::new(plan, params, BfvPacked::new(params, relin, galois)).unwrap();
        let regs = run_plan_keeping_registers(plan, &backend, vec![input]).unwrap();
        for (r, values) in regs.iter().enumerate() {
            if let Some(ct) = values.as_ref().and_then(|v| v.first()) {
                let b = sk.noise_budget(ct).unwrap();
                budgets[r] = Some(budgets[r].map_or(b, |old: u32| old.min(b)));
            }
        }
    }
    let result = context
        .eval(&keys.server, batch, &veil_runtime::exec::NoProgress)
        .unwrap();
    let scores = context.decrypt(&keys.client, &result).unwrap().scores;
    assert_eq!(scores, context.reference(&raw).unwrap());
    budgets
}

/// Measures `plan` and checks every register; prints the table and returns the output's gap.
fn check(name: &str, plan: &Plan, public: bool) -> f64 {
    let measured = measure(plan, 23, public);
    println!(
        "{name} (packed, {} key): n = {}, {} q primes, plaintext primes {:?}",
        if public { "public" } else { "secret" },
        plan.params.degree,
        plan.params.q_primes.len(),
        plan.params.plain_primes
    );
    println!(
        "  {:>3} {:<28} {:>5} {:>9} {:>8} {:>6}",
        "reg", "layer", "level", "predicted", "measured", "gap"
    );
    let mut optimistic = Vec::new();
    for (r, (info, m)) in plan.registers.iter().zip(&measured).enumerate() {
        let Some(m) = *m else { continue };
        let predicted = info.noise_budget_bits;
        let gap = f64::from(m) - predicted;
        println!(
            "  r{r:<2} {:<28} {:>5} {predicted:>9.2} {m:>8} {gap:>6.2}",
            info.name, info.level
        );
        if f64::from(m) + 1.0 < predicted {
            optimistic.push(format!("r{r} {}: {m} < {predicted:.2}", info.name));
        }
    }
    assert!(optimistic.is_empty(), "optimistic: {optimistic:?}");
    let out = plan.output.register;
    measured[out].map_or(0.0, |m| {
        f64::from(m) - plan.registers[out].noise_budget_bits
    })
}

#[test]
fn packed_small_models_are_conservative_at_every_register() {
    for (name, layers) in [
        (
            "dense",
            &["dense:6", "square", "dense:4", "square", "dense:3"][..],
        ),
        ("wide", &["dense:40", "square", "dense:10"][..]),
    ] {
        let compiled = compile_graph(chain(&[16], layers), &packed()).unwrap();
        for public in [false, true] {
            check(name, &compiled.plan, public);
        }
    }
}

#[test]
fn packed_cryptonets_is_conservative_at_every_register() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let compiled = compile_path(&models.join("cryptonets-mnist.ron"), &packed()).unwrap();
    let gap = check("cryptonets-mnist", &compiled.plan, false);
    println!("output gap {gap:.1} bits");
}
