//! BGV against BFV at the shipped CryptoNets plan's parameters: n = 16384, five 61-bit q
//! primes and a 61-bit special prime (log2 Q = 305), t the plan's first 55-bit plaintext prime;
//! the BGV keys serve both of the plan's plaintext primes. Ids are `scheme/op/n=…/logq=…`.
//! `cargo bench -p veil-runtime --bench bgv -- --warm-up-time 1 --measurement-time 3`;
//! prefix `RAYON_NUM_THREADS=1` for one thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;
use veil_runtime::{bfv, bgv};

/// `veil compile models/cryptonets-mnist.ron`: params.q_primes, special_primes, plain_primes.
const Q: [u64; 5] = [
    2305843009211596801,
    2305843009211400193,
    2305843009210580993,
    2305843009210515457,
    2305843009210023937,
];
const SPECIAL: u64 = 2305843009211662337;
const PLAIN: [u64; 2] = [36028797017456641, 36028797016178689];
const LABEL: &str = "n=16384/logq=305";
/// Inputs of the dot: a CryptoNets layer row reads 845 ciphertexts.
const DOT_INPUTS: usize = 845;
/// Rotations in the hoisted bench.
const ROTATIONS: usize = 8;

fn params() -> Arc<bfv::BfvParameters> {
    bfv::BfvParameters::builder()
        .degree(16384)
        .q_primes(Q.to_vec())
        .special_prime(SPECIAL)
        .plain_modulus(PLAIN[0])
        .build()
        .unwrap()
}

fn weights(rng: &mut ChaCha20Rng) -> Vec<i64> {
    (0..DOT_INPUTS).map(|_| rng.gen_range(-64..=64)).collect()
}

/// The main thread joins rayon's pool (as in the BFV benches), so inner parallel loops run on
/// it as they do on the executor's workers.
fn bench_schemes(c: &mut Criterion) {
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    let params = params();
    let n = params.degree();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = bfv::SecretKey::generate(&params, &mut rng);
    let enc = bfv::Encoder::new(&params);
    let values: Vec<i64> = (0..n).map(|_| rng.gen_range(-255..=255)).collect();
    let pt = enc.encode(&values).unwrap();

    {
        let rk = bgv::RelinKey::new(&sk, &PLAIN, &mut rng).unwrap();
        let pk = bgv::PublicKey::new(&sk, &PLAIN, &mut rng).unwrap();
        let ev = bgv::Evaluator::new(&params);
        let ct = pk.encrypt(&pt, &mut rng).unwrap();
        let sq = ev.square(&ct).unwrap();
        let mut g = c.benchmark_group("bgv");
        g.sample_size(10);
        g.bench_function(format!("encrypt_seeded/{LABEL}"), |b| {
            b.iter(|| bgv::encrypt(&sk, black_box(&pt), &mut rng).unwrap())
        });
        g.bench_function(format!("encrypt_pk/{LABEL}"), |b| {
            b.iter(|| pk.encrypt(black_box(&pt), &mut rng).unwrap())
        });
        g.bench_function(format!("decrypt/{LABEL}"), |b| {
            b.iter(|| bgv::decrypt(&sk, black_box(&ct)).unwrap())
        });
        g.bench_function(format!("mul_scalar/{LABEL}"), |b| {
            b.iter(|| ev.mul_scalar(black_box(&ct), -7).unwrap())
        });
        g.bench_function(format!("square/{LABEL}"), |b| {
            b.iter(|| ev.square(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("relinearize/{LABEL}"), |b| {
            b.iter(|| ev.relinearize(black_box(&sq), &rk).unwrap())
        });
        g.bench_function(format!("mod_switch_size2/{LABEL}"), |b| {
            b.iter(|| ev.mod_switch_to_next(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("mod_switch_size3/{LABEL}"), |b| {
            b.iter(|| ev.mod_switch_to_next(black_box(&sq)).unwrap())
        });
        // Rotations: one row rotation, and eight sharing one decomposition of c_1 (the baby
        // steps of a diagonal product), at the top level.
        let steps: Vec<i64> = (1..=ROTATIONS as i64).collect();
        let elements: Vec<u64> = steps
            .iter()
            .map(|&s| bfv::row_rotation_element(n, s))
            .collect();
        let gk = bgv::GaloisKeys::new(&sk, &elements, &PLAIN, &mut rng).unwrap();
        eprintln!(
            "bgv Galois keys {LABEL}: {} bytes per element ({} for {ROTATIONS})",
            bgv::GaloisKeys::serialized_len_per_key(&params),
            gk.serialized_len()
        );
        let relin = ev.relinearize(&sq, &rk).unwrap();
        g.bench_function(format!("rotate/{LABEL}"), |b| {
            b.iter(|| ev.rotate_rows(black_box(&relin), 1, &gk).unwrap())
        });
        g.bench_function(format!("rotate_hoisted{ROTATIONS}/{LABEL}"), |b| {
            b.iter(|| ev.rotate_many(black_box(&relin), &steps, &gk).unwrap())
        });
        let many: Vec<bgv::Ciphertext> = (0..DOT_INPUTS)
            .map(|i| ev.mul_scalar(&ct, (i % 5) as i64 - 2).unwrap())
            .collect();
        let refs: Vec<&bgv::Ciphertext> = many.iter().collect();
        let w = weights(&mut rng);
        g.bench_function(format!("dot845/{LABEL}"), |b| {
            b.iter(|| ev.dot(black_box(&refs), black_box(&w)).unwrap())
        });
        g.finish();
    }

    {
        let rk = bfv::RelinKey::new(&sk, &mut rng);
        let pk = bfv::PublicKey::new(&sk, &mut rng);
        let ev = bfv::Evaluator::new(&params);
        let ct = pk.encrypt(&pt, &mut rng).unwrap();
        let sq = ev.square(&ct).unwrap();
        let mut g = c.benchmark_group("bfv");
        g.sample_size(10);
        g.bench_function(format!("encrypt_seeded/{LABEL}"), |b| {
            b.iter(|| sk.encrypt(black_box(&pt), &mut rng).unwrap())
        });
        g.bench_function(format!("encrypt_pk/{LABEL}"), |b| {
            b.iter(|| pk.encrypt(black_box(&pt), &mut rng).unwrap())
        });
        g.bench_function(format!("decrypt/{LABEL}"), |b| {
            b.iter(|| sk.decrypt(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("mul_scalar/{LABEL}"), |b| {
            b.iter(|| ev.mul_scalar(black_box(&ct), -7).unwrap())
        });
        g.bench_function(format!("square/{LABEL}"), |b| {
            b.iter(|| ev.square(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("relinearize/{LABEL}"), |b| {
            b.iter(|| ev.relinearize(black_box(&sq), &rk).unwrap())
        });
        g.bench_function(format!("mod_switch_size2/{LABEL}"), |b| {
            b.iter(|| ev.mod_switch_to_next(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("mod_switch_size3/{LABEL}"), |b| {
            b.iter(|| ev.mod_switch_to_next(black_box(&sq)).unwrap())
        });
        let steps: Vec<i64> = (1..=ROTATIONS as i64).collect();
        let elements: Vec<u64> = steps
            .iter()
            .map(|&s| bfv::row_rotation_element(n, s))
            .collect();
        let gk = bfv::GaloisKeys::new(&sk, &elements, &mut rng).unwrap();
        let relin = ev.relinearize(&sq, &rk).unwrap();
        g.bench_function(format!("rotate/{LABEL}"), |b| {
            b.iter(|| ev.rotate_rows(black_box(&relin), 1, &gk).unwrap())
        });
        g.bench_function(format!("rotate_hoisted{ROTATIONS}/{LABEL}"), |b| {
            b.iter(|| ev.rotate_many(black_box(&relin), &steps, &gk).unwrap())
        });
        let many: Vec<bfv::Ciphertext> = (0..DOT_INPUTS)
            .map(|i| ev.mul_scalar(&ct, (i % 5) as i64 - 2).unwrap())
            .collect();
        let refs: Vec<&bfv::Ciphertext> = many.iter().collect();
        let w = weights(&mut rng);
        g.bench_function(format!("dot845/{LABEL}"), |b| {
            b.iter(|| ev.dot(black_box(&refs), black_box(&w)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench_schemes);
criterion_main!(benches);
