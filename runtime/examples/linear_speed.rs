//! Times the 845→100 linear layer on size-3 ciphertexts at n = 8192: blocked product vs one
//! `dot` per row. `cargo run --release -p veil-runtime --example linear_speed`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;
use veil_runtime::bfv::{BfvParameters, Ciphertext, Encoder, Evaluator, RelinKey, SecretKey};
use veil_runtime::exec::{linear_by_rows, Backend, EncryptedBackend};
use veil_runtime::plan::IntMatrix;

fn main() {
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
    let sq = evaluator.square(&fresh).unwrap();
    let inputs: Vec<Ciphertext> = (0..845).map(|_| sq.clone()).collect();
    let refs: Vec<&Ciphertext> = inputs.iter().collect();
    let (rows, cols) = (100, 845);
    let mut matrix = IntMatrix {
        rows,
        cols,
        row_ptr: vec![0],
        col_idx: vec![],
        values: vec![],
    };
    for _ in 0..rows {
        for c in 0..cols {
            matrix.col_idx.push(c as u32);
            matrix.values.push(rng.gen_range(-127..=127));
        }
        matrix.row_ptr.push(matrix.values.len());
    }
    let bias = vec![0i128; rows];
    let backend = EncryptedBackend::new(&params, &rk);
    let t = Instant::now();
    let a = backend.linear(&refs, &matrix, &bias).unwrap();
    println!("blocked: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let b = linear_by_rows(&backend, &refs, &matrix, &bias).unwrap();
    println!("by rows: {:.3} s", t.elapsed().as_secs_f64());
    assert!(a == b);
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(evaluator.square(&fresh).unwrap());
    }
    println!(
        "square: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(evaluator.relinearize(&sq, &rk).unwrap());
    }
    println!("relin: {:.2} ms", t.elapsed().as_secs_f64() * 1000.0 / 20.0);
}
