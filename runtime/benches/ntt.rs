//! NTT and base-conversion benchmarks, one prime (NTT) or one level (conversion).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Duration;
use veil_runtime::math::{ntt_primes, BaseConverter, Modulus, NttTable};

fn bench_ntt(c: &mut Criterion) {
    let mut g = c.benchmark_group("ntt");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (n, logq, bits, limbs) in [(8192usize, 218, 55u32, 3usize), (16384, 438, 54, 7)] {
        let p = ntt_primes(bits, n, 1, &[]).unwrap()[0];
        let m = Modulus::new(p).unwrap();
        let table = NttTable::new(m, n).unwrap();
        let mut a: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
        g.bench_function(format!("forward/n={n}/logq={logq}/one_prime"), |b| {
            b.iter(|| table.forward(black_box(&mut a)))
        });
        g.bench_function(format!("inverse/n={n}/logq={logq}/one_prime"), |b| {
            b.iter(|| table.inverse(black_box(&mut a)))
        });
        let q: Vec<Modulus> = ntt_primes(bits, n, limbs, &[])
            .unwrap()
            .into_iter()
            .map(|v| Modulus::new(v).unwrap())
            .collect();
        let aux: Vec<Modulus> = ntt_primes(61, n, limbs + 1, &[])
            .unwrap()
            .into_iter()
            .map(|v| Modulus::new(v).unwrap())
            .collect();
        let conv = BaseConverter::new(&q, &aux).unwrap();
        let input: Vec<u64> = q
            .iter()
            .flat_map(|m| {
                (0..n)
                    .map(|_| rng.gen_range(0..m.value()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut out = vec![0u64; aux.len() * n];
        g.bench_function(
            format!("base_convert/n={n}/logq={logq}/{limbs}to{}", aux.len()),
            |b| b.iter(|| conv.convert(black_box(&input), &mut out, n)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_ntt);
criterion_main!(benches);
