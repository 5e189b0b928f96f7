//! The executor's hot kernels on CryptoNets-sized layers at n = 8192 with three 54-bit primes:
//! the dense 845→100 map on size-3 ciphertexts (squares not yet relinearised) and the sparse
//! 784→845 convolution (25 taps per row), each as the blocked matrix product and as one `dot`
//! per row. `RAYON_NUM_THREADS=1 cargo bench -p veil-runtime --bench linear`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::time::Duration;
use veil_runtime::bfv::{BfvParameters, Ciphertext, Encoder, Evaluator, RelinKey, SecretKey};
use veil_runtime::exec::{linear_by_rows, Backend, EncryptedBackend};

#[path = "support/matrix.rs"]
mod support;
use support::seeded_matrix as matrix;

fn linear(c: &mut Criterion) {
    let params = BfvParameters::builder()
        .degree(8192)
        .q_bits(&[54, 54, 54])
        .special_bits(55)
        .plain_bits(20)
        .build()
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::generate(&params, &mut rng);
    let rk = RelinKey::new(&sk, &mut rng);
    let encoder = Encoder::new(&params);
    let evaluator = Evaluator::new(&params);
    let fresh = sk
        .encrypt(&encoder.encode(&[1, 2, 3]).unwrap(), &mut rng)
        .unwrap();
    let squared = evaluator.square(&fresh).unwrap();
    let backend = EncryptedBackend::new(&params, &rk);

    let mut group = c.benchmark_group("linear n=8192 3 primes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));

    let size3: Vec<Ciphertext> = (0..845).map(|_| squared.clone()).collect();
    let refs: Vec<&Ciphertext> = size3.iter().collect();
    let dense = matrix(100, 845, 845, &mut rng);
    let bias = vec![0i128; 100];
    group.bench_function("845->100 dense, size 3, blocked", |b| {
        b.iter(|| backend.linear(&refs, &dense, &bias).unwrap())
    });
    group.bench_function("845->100 dense, size 3, dot per row", |b| {
        b.iter(|| linear_by_rows(&backend, &refs, &dense, &bias).unwrap())
    });

    let size2: Vec<Ciphertext> = (0..784).map(|_| fresh.clone()).collect();
    let refs: Vec<&Ciphertext> = size2.iter().collect();
    let conv = matrix(845, 784, 25, &mut rng);
    let bias = vec![0i128; 845];
    group.bench_function("784->845 conv (25 taps), blocked", |b| {
        b.iter(|| backend.linear(&refs, &conv, &bias).unwrap())
    });
    group.bench_function("784->845 conv (25 taps), dot per row", |b| {
        b.iter(|| linear_by_rows(&backend, &refs, &conv, &bias).unwrap())
    });
    group.finish();
}

criterion_group!(benches, linear);
criterion_main!(benches);
