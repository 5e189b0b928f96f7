//! The noise model against the runtime: compiled plans run on real ciphertexts, in both
//! schemes, and the measured budget of every register the plan keeps must be at least its
//! prediction (the model is conservative at every layer, not only at the output), and the
//! outputs' budget not far above it (the model is useful). A per-register table is printed.
//!
//! Both sides describe the same moment: `plan.registers[r].noise_budget_bits` is the state at
//! the end of the program (after any in-place relinearisation or modulus switch of `r`), and
//! [`run_plan_keeping_registers`] returns every register as it stands when the program ends.
//!
//! Inputs are rounded as the plan's compression rounds uploads, and the outputs are measured
//! once more after the rounding of results, against `plan.predicted_noise_budget_bits`, in
//! both schemes.
//!
//! BGV is measured with secret-key encryption only: its public-key encryption is being
//! reworked elsewhere (uploads switched down from Q·P); add a public-key case here when it
//! lands.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::path::Path;
use std::time::Instant;
use veil_compiler::ir::Graph;
use veil_compiler::testing::{chain, residual};
use veil_compiler::{compile_graph, compile_path, CompileOptions};
use veil_runtime::bfv::{Encoder, PublicKey, RelinKey, SecretKey};
use veil_runtime::bgv;
use veil_runtime::exec::{
    exact_scores, run_plan_keeping_registers, Backend, BgvBackend, EncryptedBackend,
};
use veil_runtime::plan::{Plan, Scheme};
use veil_runtime::security::SecurityLevel;

/// Largest accepted gap (bits) between measured and predicted budgets at the outputs.
const MAX_GAP_BITS: f64 = 25.0;

/// How the inputs are encrypted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Secret,
    Public,
}

/// Reduces an exact integer to the centred residue mod t the decoder returns.
fn centred(v: i128, t: u64) -> i128 {
    let t = i128::from(t);
    let r = v.rem_euclid(t);
    if r > t / 2 {
        r - t
    } else {
        r
    }
}

/// The smallest budget over `values` (bits): the runtime's whole bits, or, with `log2_q` (the
/// register's log2 Q), a lower bound on the real-valued budget `log2 Q − log2 V − 1` to about
/// 2^-10 bit, where V is the largest phase coefficient the runtime's measure looks at.
///
/// The runtime rounds down to whole bits, which hides the fraction the model is judged on.
/// Multiplying a ciphertext by the integer w multiplies V by w exactly (while it does not wrap),
/// so the smallest w in (2^k, 2^(k+1)] at which the whole-bit budget drops once more than at
/// 2^k pins V: w·V ≥ 2^m > (w − 1)·V for m = bits(2^k·V).
fn register_budget<V>(
    values: &[V],
    budget: &dyn Fn(&V) -> u32,
    times: &dyn Fn(&V, i64) -> V,
    log2_q: Option<f64>,
) -> f64 {
    let whole: Vec<u32> = values.iter().map(budget).collect();
    let Some(&least) = whole.iter().min() else {
        return f64::INFINITY;
    };
    let Some(log2_q) = log2_q else {
        return f64::from(least);
    };
    // Room for the factor 2^(k+1) without wrapping.
    let k = least.saturating_sub(3).min(10);
    if k == 0 {
        return f64::from(least);
    }
    let bits_q = log2_q.floor() + 1.0;
    values
        .iter()
        .zip(&whole)
        .filter(|&(_, &b)| b == least)
        .map(|(ct, _)| {
            // budget(w·ct) = bits(Q) − bits(w·V) − 1; at w = 2^k it is least − k.
            let target = least - k - 1;
            let (mut lo, mut hi) = (1i64 << k, 1i64 << (k + 1));
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if budget(&times(ct, mid)) <= target {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            // m = bits(2^k·V) = bits(Q) − (least − k) − 1 and V < 2^m/(hi − 1).
            let m = bits_q - f64::from(least - k) - 1.0;
            log2_q - (m - ((hi - 1) as f64).log2()) - 1.0
        })
        .fold(f64::INFINITY, f64::min)
}

/// Runs `plan` (in its own scheme) once per plaintext prime on `images` random inputs in the
/// declared range, repeated over all slots, keeping every register; checks every decrypted
/// output against the exact integer evaluation and returns, per register, the smallest
/// measured budget over plaintext primes and values (`None` for a register no step wrote):
/// whole bits, or with `fine` a lower bound on the real-valued budget ([`register_budget`]).
///
/// The inputs are rounded as the plan's compression rounds uploads (their predicted noise
/// includes it). The outputs are then also rounded as results are for download, checked again
/// and measured: the second value is their smallest budget in whole bits (`None` when the plan
/// rounds no results).
fn measure(
    plan: &Plan,
    seed: u64,
    key: Key,
    images: usize,
    fine: bool,
) -> (Vec<Option<f64>>, Option<f64>) {
    let p = &plan.params;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let params_per_prime = plan.bfv_parameters().unwrap();
    let raw: Vec<Vec<f64>> = (0..images)
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
    let columns: Vec<Vec<i64>> = (0..plan.input.features.len())
        .map(|f| {
            (0..p.degree)
                .map(|slot| encoded[slot % encoded.len()][f])
                .collect()
        })
        .collect();
    let mut budgets: Vec<Option<f64>> = vec![None; plan.registers.len()];
    let mut fold = |r: usize, b: f64| {
        budgets[r] = Some(budgets[r].map_or(b, |old: f64| old.min(b)));
    };
    let log2_q = |r: usize| -> f64 {
        let level = plan.registers[r].level;
        p.q_primes[..level].iter().map(|&q| (q as f64).log2()).sum()
    };
    let check_output = |o: usize, decoded: &[i64], t: u64| {
        for (slot, &v) in decoded.iter().enumerate().take(raw.len()) {
            assert_eq!(
                i128::from(v),
                centred(expected[slot][o], t),
                "output {o}, slot {slot}, t = {t}"
            );
        }
    };
    let out_reg = plan.output.register;
    let upload = [plan.compression.upload_bits];
    let download = &plan.compression.download_bits;
    let mut downloaded: Option<f64> = None;
    let mut fold_downloaded = |b: u32| {
        downloaded = Some(downloaded.map_or(f64::from(b), |old: f64| old.min(f64::from(b))));
    };
    for (&t, params) in p.plain_primes.iter().zip(&params_per_prime) {
        let sk = SecretKey::generate(params, &mut rng);
        let encoder = Encoder::new(params);
        match p.scheme {
            Scheme::Bfv => {
                let rk = RelinKey::new(&sk, &mut rng);
                let pk = PublicKey::new(&sk, &mut rng);
                let inputs = columns
                    .iter()
                    .map(|column| {
                        let pt = encoder.encode(column).unwrap();
                        match key {
                            Key::Public => pk.encrypt(&pt, &mut rng).unwrap(),
                            Key::Secret => sk.encrypt(&pt, &mut rng).unwrap(),
                        }
                        .round_low_bits(&upload)
                        .unwrap()
                    })
                    .collect();
                let regs =
                    run_plan_keeping_registers(plan, &EncryptedBackend::new(params, &rk), inputs)
                        .unwrap();

                let backend = EncryptedBackend::new(params, &rk);
                for (r, values) in regs.iter().enumerate() {
                    if let Some(values) = values {
                        fold(
                            r,
                            register_budget(
                                values,
                                &|ct| sk.noise_budget(ct).unwrap(),
                                &|ct, w| backend.dot(&[ct], &[w], 0).unwrap(),
                                fine.then(|| log2_q(r)),
                            ),
                        );
                    }
                }
                for (o, ct) in regs[out_reg].iter().flatten().enumerate() {
                    check_output(o, &encoder.decode(&sk.decrypt(ct).unwrap()).unwrap(), t);
                    if !download.is_empty() {
                        let ct = ct.round_low_bits(download).unwrap();
                        check_output(o, &encoder.decode(&sk.decrypt(&ct).unwrap()).unwrap(), t);
                        fold_downloaded(sk.noise_budget(&ct).unwrap());
                    }
                }
            }
            Scheme::Bgv => {
                assert_eq!(
                    key,
                    Key::Secret,
                    "BGV public-key encryption is not measured"
                );
                let rk = bgv::RelinKey::new(&sk, &[t], &mut rng).unwrap();
                let inputs = columns
                    .iter()
                    .map(|column| {
                        bgv::encrypt(&sk, &encoder.encode(column).unwrap(), &mut rng)
                            .and_then(|ct| ct.round_low_bits(&upload))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let regs = run_plan_keeping_registers(plan, &BgvBackend::new(params, &rk), inputs)
                    .unwrap();
                let backend = BgvBackend::new(params, &rk);
                for (r, values) in regs.iter().enumerate() {
                    if let Some(values) = values {
                        fold(
                            r,
                            register_budget(
                                values,
                                &|ct| bgv::noise_budget_bits(&sk, ct).unwrap(),
                                &|ct, w| backend.dot(&[ct], &[w], 0).unwrap(),
                                fine.then(|| log2_q(r)),
                            ),
                        );
                    }
                }
                for (o, ct) in regs[out_reg].iter().flatten().enumerate() {
                    check_output(
                        o,
                        &encoder.decode(&bgv::decrypt(&sk, ct).unwrap()).unwrap(),
                        t,
                    );
                    if !download.is_empty() {
                        let ct = ct.round_low_bits(download).unwrap();
                        check_output(
                            o,
                            &encoder.decode(&bgv::decrypt(&sk, &ct).unwrap()).unwrap(),
                            t,
                        );
                        fold_downloaded(bgv::noise_budget_bits(&sk, &ct).unwrap());
                    }
                }
            }
        }
    }
    (budgets, downloaded)
}

/// Measures `plan` and checks every register: with `fine`, the real-valued budget (a lower
/// bound to 2^-10 bit, [`register_budget`]) is at least the prediction; without, measured + 1 ≥
/// predicted (the runtime reports whole bits, rounded down). Prints one line per register and
/// returns the output's gap (measured − predicted, bits).
fn check_plan(name: &str, plan: &Plan, key: Key, images: usize, fine: bool) -> f64 {
    let started = Instant::now();
    let (measured, downloaded) = measure(plan, 17, key, images, fine);
    let slack = if fine { 0.0 } else { 1.0 };
    println!(
        "{name} ({:?}, {key:?} key): n = {}, {} q primes, {} plaintext primes, depth {}, measured in {:.1} s",
        plan.params.scheme,
        plan.params.degree,
        plan.params.q_primes.len(),
        plan.params.plain_primes.len(),
        plan.depth,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {:>3} {:<28} {:>5} {:>4} {:>9} {:>8} {:>6}",
        "reg", "layer", "level", "size", "predicted", "measured", "gap"
    );
    let mut optimistic = Vec::new();
    for (r, (info, m)) in plan.registers.iter().zip(&measured).enumerate() {
        let Some(m) = *m else { continue };
        let predicted = info.noise_budget_bits;
        println!(
            "  r{r:<2} {:<28} {:>5} {:>4} {predicted:>9.2} {m:>8.2} {:>6.2}",
            info.name,
            info.level,
            info.ct_size,
            m - predicted
        );
        if m + slack < predicted {
            optimistic.push(format!(
                "r{r} {}: predicted {predicted:.2}, measured {m}",
                info.name
            ));
        }
    }
    // The output register's budget is the circuit's own; `predicted_noise_budget_bits` is the
    // budget of results after their low bits are rounded for download (whole bits measured).
    if let Some(m) = downloaded {
        let predicted = plan.predicted_noise_budget_bits;
        println!(
            "  {:<32} {:?} {predicted:>9.2} {m:>8.2} {:>6.2}",
            "downloaded (rounded)",
            plan.compression.download_bits,
            m - predicted
        );
        if m + 1.0 < predicted {
            optimistic.push(format!(
                "downloaded results: predicted {predicted:.2}, measured {m}"
            ));
        }
    }
    assert!(
        optimistic.is_empty(),
        "{name} ({:?}): the model is optimistic at {optimistic:?}",
        plan.params.scheme
    );
    let out = measured[plan.output.register].unwrap_or(0.0);
    out - plan.registers[plan.output.register].noise_budget_bits
}

/// [`check_plan`], and the output gap is at most [`MAX_GAP_BITS`].
fn check_plan_useful(name: &str, plan: &Plan, key: Key, images: usize, fine: bool) {
    let gap = check_plan(name, plan, key, images, fine);
    assert!(
        gap <= MAX_GAP_BITS,
        "{name} ({:?}): the model is {gap:.1} bits pessimistic at the output",
        plan.params.scheme
    );
}

fn options(security: Option<SecurityLevel>, scheme: Scheme) -> CompileOptions {
    CompileOptions {
        security,
        scheme: Some(scheme),
        ..CompileOptions::default()
    }
}

/// Compiles `g` for `scheme` and checks every register.
fn check(name: &str, g: Graph, security: Option<SecurityLevel>, scheme: Scheme, key: Key) {
    let compiled = compile_graph(g, &options(security, scheme)).unwrap();
    assert_eq!(compiled.plan.params.scheme, scheme);
    check_plan_useful(name, &compiled.plan, key, 8, true);
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

fn dense_only() -> Graph {
    chain(&[6], &["dense:5", "dense:3"])
}

fn conv_square_dense() -> Graph {
    chain(&[1, 6, 6], &["conv:2:3:1", "square", "flatten", "dense:3"])
}

fn maxpool_sumpool() -> Graph {
    chain(
        &[1, 8, 8],
        &[
            "conv:2:3:1",
            "relu",
            "maxpool:2:2",
            "sumpool:2:1",
            "flatten",
            "dense:3",
        ],
    )
}

#[test]
fn toy_parameters_depth_one() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        check(
            "dense-square-dense",
            chain(&[6], &["dense:4", "square", "dense:3"]),
            None,
            scheme,
            Key::Secret,
        );
    }
}

#[test]
fn toy_parameters_depth_two_public_key() {
    check(
        "small cryptonets",
        small_cryptonets(),
        None,
        Scheme::Bfv,
        Key::Public,
    );
}

#[test]
fn toy_parameters_depth_two() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        check(
            "small cryptonets",
            small_cryptonets(),
            None,
            scheme,
            Key::Secret,
        );
    }
}

#[test]
fn secure_parameters_depth_two() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        check(
            "small cryptonets (128-bit)",
            small_cryptonets(),
            Some(SecurityLevel::Bits128),
            scheme,
            Key::Secret,
        );
    }
}

/// A small model's name and builder.
type NamedModel = (&'static str, fn() -> Graph);

#[test]
fn small_models_every_register() {
    let models: [NamedModel; 4] = [
        ("dense only", dense_only),
        ("conv-square-dense", conv_square_dense),
        ("residual add", residual),
        ("maxpool-sumpool", maxpool_sumpool),
    ];
    for (name, model) in models {
        for scheme in [Scheme::Bfv, Scheme::Bgv] {
            check(name, model(), None, scheme, Key::Secret);
        }
        check(name, model(), None, Scheme::Bfv, Key::Public);
    }
}

/// The shipped models at their 128-bit parameters (n = 16,384), both schemes, every register,
/// a handful of distinct images. About 8 minutes on 2 cores and several GiB (every register
/// is kept): `cargo test --release -p veil-compiler --test noise -- --ignored --nocapture shipped`.
///
/// BGV's output gap is not bounded here: at CryptoNets' second square the BGV model is about
/// 40 bits pessimistic (the worst-case `Σ|w|·e` of the 845→100 map, about 17 bits above the
/// measured noise, doubles in the square's `δ·e²`), beyond [`MAX_GAP_BITS`]; see
/// docs/parameters.md. BFV's is bounded.
#[test]
#[ignore = "minutes at n = 16384; run with --ignored (see the doc comment)"]
fn shipped_models_every_register() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for model in ["cryptonets-mnist", "cryptonets-fashion"] {
        let path = root.join("models").join(format!("{model}.ron"));
        for scheme in [Scheme::Bfv, Scheme::Bgv] {
            let compiled =
                compile_path(&path, &options(Some(SecurityLevel::Bits128), scheme)).unwrap();
            match scheme {
                Scheme::Bfv => check_plan_useful(model, &compiled.plan, Key::Secret, 4, false),
                Scheme::Bgv => {
                    let gap = check_plan(model, &compiled.plan, Key::Secret, 4, false);
                    println!("  output gap {gap:.1} bits (not bounded for BGV)");
                }
            }
        }
    }
}

/// The rounding a modulus switch adds, measured where it matters: fresh secret-key
/// ciphertexts of random plaintexts under the shipped CryptoNets parameters (n = 16,384, five
/// 61-bit q primes, both 55-bit plaintext primes), switched 5 → 4 primes, in both schemes.
/// Prints the largest rounding `V/t` over all coefficients (V the runtime's phase measure,
/// recovered to 2^-10 bit) beside the model's floor. About 80 s on 2 cores:
/// `cargo test --release -p veil-compiler --test noise -- --ignored --nocapture switch_floor`.
#[test]
#[ignore = "80 s at n = 16384; run with --ignored (see the doc comment)"]
fn switch_floor_at_cryptonets_primes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("models").join("cryptonets-mnist.ron");
    let plan = compile_path(&path, &options(Some(SecurityLevel::Bits128), Scheme::Bfv))
        .unwrap()
        .plan;
    let p = &plan.params;
    let n = p.degree;
    let level = p.q_primes.len() - 1;
    let log2_q: f64 = p.q_primes[..level].iter().map(|&q| (q as f64).log2()).sum();
    let floor = veil_compiler::params::model::switch_rounding(n, 2);
    let count = 784;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for (&t, params) in p.plain_primes.iter().zip(&plan.bfv_parameters().unwrap()) {
        let sk = SecretKey::generate(params, &mut rng);
        let encoder = Encoder::new(params);
        let plain: Vec<Vec<i64>> = (0..count)
            .map(|_| (0..n).map(|_| rng.gen_range(-255..=255)).collect())
            .collect();
        let started = Instant::now();
        let bfv_budget = {
            let rk = RelinKey::new(&sk, &mut rng);
            let backend = EncryptedBackend::new(params, &rk);
            let cts: Vec<_> = plain
                .iter()
                .map(|m| {
                    let ct = sk.encrypt(&encoder.encode(m).unwrap(), &mut rng).unwrap();
                    backend.mod_switch(ct, level).unwrap()
                })
                .collect();
            register_budget(
                &cts,
                &|ct| sk.noise_budget(ct).unwrap(),
                &|ct, w| backend.dot(&[ct], &[w], 0).unwrap(),
                Some(log2_q),
            )
        };
        let bgv_budget = {
            let rk = bgv::RelinKey::new(&sk, &[t], &mut rng).unwrap();
            let backend = BgvBackend::new(params, &rk);
            let cts: Vec<_> = plain
                .iter()
                .map(|m| {
                    let ct = bgv::encrypt(&sk, &encoder.encode(m).unwrap(), &mut rng).unwrap();
                    backend.mod_switch(ct, level).unwrap()
                })
                .collect();
            register_budget(
                &cts,
                &|ct| bgv::noise_budget_bits(&sk, ct).unwrap(),
                &|ct, w| backend.dot(&[ct], &[w], 0).unwrap(),
                Some(log2_q),
            )
        };
        // budget = log2 Q' − log2 V − 1, and V = t·(rounding) in both schemes' measure.
        let rounding = |budget: f64| (log2_q - budget - 1.0 - (t as f64).log2()).exp2();
        println!(
            "t = {t}: {count} ciphertexts × {n} coefficients switched {} → {level}: largest rounding BFV {:.1}, BGV {:.1} (model floor {floor:.1}, old (1 + δ)/2 = {:.1}); {:.1} s",
            level + 1,
            rounding(bfv_budget),
            rounding(bgv_budget),
            (1.0 + veil_compiler::params::model::expansion(n)) / 2.0,
            started.elapsed().as_secs_f64()
        );
        assert!(rounding(bfv_budget) <= floor && rounding(bgv_budget) <= floor);
    }
}
