//! BFV benchmarks at n=8192 (218-bit modulus) and n=16384 (438-bit modulus), ~20-bit t.
//! Run single-threaded for comparison with other libraries:
//! `RAYON_NUM_THREADS=1 cargo bench -p veil-runtime --bench bfv`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;
use std::time::Duration;
use veil_runtime::bfv::{
    BfvParameters, Ciphertext, Encoder, Evaluator, PublicKey, RelinKey, SecretKey,
};

struct Set {
    label: String,
    params: Arc<BfvParameters>,
}

fn sets() -> Vec<Set> {
    let mut v = vec![Set {
        label: "n=8192/logq=218".into(),
        params: BfvParameters::builder()
            .degree(8192)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_bits(20)
            .build()
            .unwrap(),
    }];
    if std::env::var("VEIL_BENCH_8192_ONLY").is_err() {
        v.push(Set {
            label: "n=16384/logq=438".into(),
            params: BfvParameters::builder()
                .degree(16384)
                .q_bits(&[54, 54, 54, 54, 54, 54, 54])
                .special_bits(60)
                .plain_bits(20)
                .build()
                .unwrap(),
        });
    }
    v
}

/// The main thread joins rayon's pool, so that the operations' inner parallel loops run on it
/// as they do on the executor's workers, rather than being handed over to another thread and
/// waited for one by one.
fn bench_bfv(c: &mut Criterion) {
    // Fails only when a global pool exists already; the measurements are then as before.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    for set in sets() {
        let params = &set.params;
        let label = &set.label;
        let n = params.degree();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = SecretKey::generate(params, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        let enc = Encoder::new(params);
        let ev = Evaluator::new(params);
        let values: Vec<i64> = (0..n).map(|_| rng.gen_range(-100..=100)).collect();
        let pt = enc.encode(&values).unwrap();
        let ct = pk.encrypt(&pt, &mut rng).unwrap();
        let ct2 = pk.encrypt(&pt, &mut rng).unwrap();
        let sq = ev.square(&ct).unwrap();

        let fresh_seeded = sk.encrypt(&pt, &mut rng).unwrap();
        let low = ev.mod_switch_to_level(&ct, 1).unwrap();
        println!(
            "[{label}] serialised sizes: fresh seeded {} B, full {} B, size 3 {} B, after switching to 1 prime {} B; relin key {} B, public key {} B",
            fresh_seeded.to_bytes().len(),
            ct.to_bytes().len(),
            sq.to_bytes().len(),
            low.to_bytes().len(),
            rk.to_bytes().len(),
            pk.to_bytes().len()
        );

        let mut g = c.benchmark_group("bfv");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        g.bench_function(format!("encrypt_pk/{label}"), |b| {
            b.iter(|| pk.encrypt(black_box(&pt), &mut rng).unwrap())
        });
        g.bench_function(format!("encrypt_sk/{label}"), |b| {
            b.iter(|| sk.encrypt(black_box(&pt), &mut rng).unwrap())
        });
        g.bench_function(format!("decrypt/{label}"), |b| {
            b.iter(|| sk.decrypt(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("add/{label}"), |b| {
            b.iter(|| ev.add(black_box(&ct), black_box(&ct2)).unwrap())
        });
        g.bench_function(format!("mul_scalar/{label}"), |b| {
            b.iter(|| ev.mul_scalar(black_box(&ct), -7).unwrap())
        });
        g.bench_function(format!("mul/{label}"), |b| {
            b.iter(|| ev.mul(black_box(&ct), black_box(&ct2)).unwrap())
        });
        g.bench_function(format!("square/{label}"), |b| {
            b.iter(|| ev.square(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("relinearize/{label}"), |b| {
            b.iter(|| ev.relinearize(black_box(&sq), &rk).unwrap())
        });
        g.bench_function(format!("square_relin/{label}"), |b| {
            b.iter(|| {
                ev.relinearize(&ev.square(black_box(&ct)).unwrap(), &rk)
                    .unwrap()
            })
        });
        g.bench_function(format!("mod_switch/{label}"), |b| {
            b.iter(|| ev.mod_switch_to_next(black_box(&ct)).unwrap())
        });
        g.bench_function(format!("serialize_seeded/{label}"), |b| {
            b.iter(|| black_box(&fresh_seeded).to_bytes())
        });
        let bytes = fresh_seeded.to_bytes();
        g.bench_function(format!("deserialize_seeded/{label}"), |b| {
            b.iter(|| Ciphertext::from_bytes(params, black_box(&bytes)).unwrap())
        });
        // dot of 845 distinct ciphertexts with small signed weights (a dense layer's row).
        let k = 845;
        let many: Vec<Ciphertext> = (0..k)
            .map(|i| ev.mul_scalar(&ct, (i % 5) as i64 - 2).unwrap())
            .map(|c| ev.add(&c, &ct2).unwrap())
            .collect();
        let refs: Vec<&Ciphertext> = many.iter().collect();
        let weights: Vec<i64> = (0..k).map(|_| rng.gen_range(-64..=64)).collect();
        g.bench_function(format!("dot845/{label}"), |b| {
            b.iter(|| ev.dot(black_box(&refs), black_box(&weights)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench_bfv);
criterion_main!(benches);
