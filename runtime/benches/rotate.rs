//! Rotation benchmarks at n=8192 (218-bit modulus) and n=16384 (438-bit modulus), the sets of
//! the `bfv` bench: one row rotation, eight rotations of one ciphertext hoisted against eight
//! single ones, the column swap, Galois key generation per element, and the diagonal method's
//! inner loop (a ciphertext to evaluation form, a diagonal encoded, 16 products summed).
//! `cargo bench -p veil-runtime --bench rotate -- --warm-up-time 1 --measurement-time 3`;
//! `VEIL_BENCH_8192_ONLY=1` skips the larger set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;
use veil_runtime::bfv::{
    column_swap_element, row_rotation_element, BfvParameters, Encoder, Evaluator, GaloisKeys,
    PublicKey, SecretKey,
};

fn sets() -> Vec<(String, Arc<BfvParameters>)> {
    let mut v = vec![(
        "n=8192/logq=218".to_string(),
        BfvParameters::builder()
            .degree(8192)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_bits(20)
            .build()
            .unwrap(),
    )];
    if std::env::var("VEIL_BENCH_8192_ONLY").is_err() {
        v.push((
            "n=16384/logq=438".to_string(),
            BfvParameters::builder()
                .degree(16384)
                .q_bits(&[54, 54, 54, 54, 54, 54, 54])
                .special_bits(60)
                .plain_bits(20)
                .build()
                .unwrap(),
        ));
    }
    v
}

/// Baby steps of a diagonal-method matrix-vector product: rotations by 1..=8.
const STEPS: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn bench_rotate(c: &mut Criterion) {
    // As in the `bfv` bench: the main thread joins rayon's pool.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    for (label, params) in sets() {
        let n = params.degree();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let mut elements: Vec<u64> = STEPS.iter().map(|&s| row_rotation_element(n, s)).collect();
        elements.push(column_swap_element(n));
        let gk = GaloisKeys::new(&sk, &elements, &mut rng).unwrap();
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let values: Vec<i64> = (0..n).map(|_| rng.gen_range(-100..=100)).collect();
        let ct = pk.encrypt(&enc.encode(&values).unwrap(), &mut rng).unwrap();
        println!(
            "[{label}] Galois key: {} B per element ({} elements: {} B)",
            GaloisKeys::serialized_len_per_key(&params),
            gk.len(),
            gk.serialized_len()
        );

        let mut g = c.benchmark_group("rotate");
        g.sample_size(10);
        g.bench_function(format!("rotate/{label}"), |b| {
            b.iter(|| ev.rotate_rows(black_box(&ct), 1, &gk).unwrap())
        });
        g.bench_function(format!("rotate_columns/{label}"), |b| {
            b.iter(|| ev.rotate_columns(black_box(&ct), &gk).unwrap())
        });
        g.bench_function(format!("rotate_hoisted_8/{label}"), |b| {
            b.iter(|| ev.rotate_many(black_box(&ct), &STEPS, &gk).unwrap())
        });
        g.bench_function(format!("rotate_single_8/{label}"), |b| {
            b.iter(|| {
                STEPS
                    .iter()
                    .map(|&s| ev.rotate_rows(black_box(&ct), s, &gk).unwrap())
                    .collect::<Vec<_>>()
            })
        });
        // The diagonal method's inner loop: one ciphertext to evaluation form, one diagonal
        // encoded and lifted, and a sum of 16 diagonal products.
        let pt = enc.encode(&values).unwrap();
        let level = ct.level();
        let ntt_ct = ev.to_ntt(&ct).unwrap();
        let ntt_pt = ev.plain_to_ntt(&pt, level).unwrap();
        g.bench_function(format!("to_ntt/{label}"), |b| {
            b.iter(|| ev.to_ntt(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("encode_diagonal/{label}"), |b| {
            b.iter(|| {
                let pt = enc.encode(black_box(&values)).unwrap();
                ev.plain_to_ntt(&pt, level).unwrap()
            })
        });
        let terms: Vec<_> = (0..16).map(|_| (&ntt_ct, &ntt_pt)).collect();
        g.bench_function(format!("dot_plain_16/{label}"), |b| {
            b.iter(|| ev.dot_plain(black_box(&terms)).unwrap())
        });
        let one = [row_rotation_element(n, 1)];
        g.bench_function(format!("galois_keygen_per_element/{label}"), |b| {
            b.iter(|| GaloisKeys::new(&sk, black_box(&one), &mut rng).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench_rotate);
criterion_main!(benches);
