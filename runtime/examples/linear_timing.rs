//! Wall-clock timings of the executor's linear kernels on the shapes of the CryptoNets plan:
//! the sparse 784→845 convolution (25 taps per row) on fresh size-2 ciphertexts and the dense
//! 845→100 map on size-3 squares, at the ring degree and levels the compiler picks for the
//! shipped model (n = 16384, five 60-bit primes for the convolution, three for the dense map).
//!
//! `cargo run --release -p veil-runtime --example linear_timing -- [reps]`; set
//! `RAYON_NUM_THREADS` to choose the thread count. Prints the best and median of `reps` runs
//! and the multiply-accumulate rate.
#![allow(clippy::unwrap_used)]

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::time::Instant;
use veil_runtime::bfv::{BfvParameters, Ciphertext, Encoder, Evaluator, RelinKey, SecretKey};
use veil_runtime::exec::{Backend, EncryptedBackend};

#[path = "../benches/support/matrix.rs"]
mod support;
use support::seeded_matrix as matrix;

fn time(label: &str, reps: usize, macs: f64, mut f: impl FnMut()) {
    let mut samples: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let best = samples[0];
    let median = samples[samples.len() / 2];
    println!(
        "{label:<40} best {:8.1} ms  median {:8.1} ms  {:5.2} G multiply-adds/s",
        best * 1e3,
        median * 1e3,
        macs / best / 1e9
    );
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let n = 16384;
    let params = BfvParameters::builder()
        .degree(n)
        .q_bits(&[60, 60, 60, 60, 60])
        .special_bits(60)
        .plain_bits(55)
        .build()
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::generate(&params, &mut rng);
    let rk = RelinKey::new(&sk, &mut rng);
    let encoder = Encoder::new(&params);
    let evaluator = Evaluator::new(&params);
    let values: Vec<i64> = (0..n as i64).map(|i| i % 256).collect();
    let fresh = sk
        .encrypt(&encoder.encode(&values).unwrap(), &mut rng)
        .unwrap();
    let backend = EncryptedBackend::new(&params, &rk);
    println!("n = {n}, {} threads", rayon::current_num_threads());

    let inputs: Vec<Ciphertext> = (0..784).map(|_| fresh.clone()).collect();
    let refs: Vec<&Ciphertext> = inputs.iter().collect();
    let conv = matrix(845, 784, 25, &mut rng);
    let bias = vec![0i128; 845];
    let macs = conv.nnz() as f64 * 2.0 * 5.0 * n as f64;
    time("784->845 conv, size 2, 5 primes", reps, macs, || {
        backend.linear(&refs, &conv, &bias).unwrap();
    });
    drop(inputs);

    let low = evaluator.mod_switch_to_level(&fresh, 3).unwrap();
    let squared = evaluator.square(&low).unwrap();
    let inputs: Vec<Ciphertext> = (0..845).map(|_| squared.clone()).collect();
    let refs: Vec<&Ciphertext> = inputs.iter().collect();
    let dense = matrix(100, 845, 845, &mut rng);
    let bias = vec![0i128; 100];
    let macs = dense.nnz() as f64 * 3.0 * 3.0 * n as f64;
    time("845->100 dense, size 3, 3 primes", reps, macs, || {
        backend.linear(&refs, &dense, &bias).unwrap();
    });
}
