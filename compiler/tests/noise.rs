//! The noise model against the runtime: compiled plans run on real ciphertexts, and the
//! measured budget of every output must be at least the prediction (the model is
//! conservative) and not far above it (the model is useful). The gap is printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_compiler::ir::Graph;
use veil_compiler::testing::chain;
use veil_compiler::{compile_graph, CompileOptions};
use veil_runtime::bfv::{Encoder, PublicKey, RelinKey, SecretKey};
use veil_runtime::exec::{exact_scores, run_plan, EncryptedBackend, NoProgress};
use veil_runtime::plan::Plan;
use veil_runtime::security::SecurityLevel;

/// Largest accepted gap (bits) between measured and predicted budgets.
const MAX_GAP_BITS: f64 = 25.0;

/// Runs `plan` once per plaintext prime on `slots` random inputs in the declared range
/// (secret-key or public-key encryption), checks every decrypted output against the exact
/// integer evaluation and returns the smallest measured budget.
fn measure(plan: &Plan, seed: u64, public: bool) -> u32 {
    let p = &plan.params;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let params_per_prime = plan.bfv_parameters().unwrap();
    let raw: Vec<Vec<f64>> = (0..8)
        .map(|_| {
            let (lo, hi) = (plan.input.raw_min, plan.input.raw_max);
            (0..plan.input_len())
                .map(|_| rng.gen_range(lo..=hi))
                .collect()
        })
        .collect();
    let encoded: Vec<Vec<i64>> = raw
        .iter()
        .map(|x| plan.input.encode(x).unwrap().values)
        .collect();
    let expected: Vec<Vec<i128>> = raw.iter().map(|x| exact_scores(plan, x).unwrap()).collect();
    let mut min_budget = u32::MAX;
    for (&t, params) in p.plain_primes.iter().zip(&params_per_prime) {
        let sk = SecretKey::generate(params, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let encoder = Encoder::new(params);
        let inputs = (0..plan.input.features.len())
            .map(|f| {
                let column: Vec<i64> = (0..p.degree)
                    .map(|slot| encoded[slot % encoded.len()][f])
                    .collect();
                let pt = encoder.encode(&column).unwrap();
                let ct = if public {
                    pk.encrypt(&pt, &mut rng).unwrap()
                } else {
                    sk.encrypt(&pt, &mut rng).unwrap()
                };
                // What crosses the wire: the plan's low bits of c0 rounded away.
                ct.round_low_bits(&plan.compression.upload()).unwrap()
            })
            .collect();
        let out = run_plan(
            plan,
            &EncryptedBackend::new(params, &rk),
            inputs,
            &NoProgress,
        )
        .unwrap();
        for (o, ct) in out.iter().enumerate() {
            // The results as the client receives them, rounded as the plan says.
            let ct = &ct.round_low_bits(&plan.compression.download_bits).unwrap();
            min_budget = min_budget.min(sk.noise_budget(ct).unwrap());
            let decoded = encoder.decode(&sk.decrypt(ct).unwrap()).unwrap();
            for (slot, &v) in decoded.iter().enumerate().take(raw.len()) {
                let want = expected[slot][o].rem_euclid(i128::from(t));
                let want = if want > i128::from(t / 2) {
                    want - i128::from(t)
                } else {
                    want
                };
                assert_eq!(i128::from(v), want, "output {o}, slot {slot}, t = {t}");
            }
        }
    }
    min_budget
}

fn check(name: &str, g: Graph, security: Option<SecurityLevel>, public: bool) {
    let compiled = compile_graph(
        g,
        &CompileOptions {
            security,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    let plan = &compiled.plan;
    let predicted = plan.predicted_noise_budget_bits;
    let measured = f64::from(measure(plan, 17, public));
    println!(
        "{name}: n = {}, {} q primes, {} plaintext primes, depth {}: predicted {predicted:.1} bits, measured {measured} bits, gap {:.1}",
        plan.params.degree,
        plan.params.q_primes.len(),
        plan.params.plain_primes.len(),
        plan.depth,
        measured - predicted
    );
    // The runtime reports whole bits, rounded down.
    assert!(
        measured + 1.0 >= predicted,
        "{name}: the model is optimistic"
    );
    assert!(
        measured - predicted <= MAX_GAP_BITS,
        "{name}: the model is {:.1} bits pessimistic",
        measured - predicted
    );
}

fn small_cryptonets() -> Graph {
    chain(
        &[1, 8, 8],
        &[
            "conv:3:3:2:1",
            "square",
            "sumpool:3:1:1",
            "conv:4:3:1",
            "flatten",
            "dense:5",
            "square",
            "dense:3",
        ],
    )
}

#[test]
fn toy_parameters_depth_one() {
    check(
        "dense-square-dense",
        chain(&[6], &["dense:4", "square", "dense:3"]),
        None,
        false,
    );
}

#[test]
fn toy_parameters_depth_two_public_key() {
    check(
        "small cryptonets (public key)",
        small_cryptonets(),
        None,
        true,
    );
}

#[test]
fn secure_parameters_depth_two() {
    check(
        "small cryptonets (128-bit)",
        small_cryptonets(),
        Some(SecurityLevel::Bits128),
        false,
    );
}
