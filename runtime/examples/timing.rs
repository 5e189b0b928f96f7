//! Quick median timings of the BFV hot paths, without criterion's overhead.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p veil-runtime --example timing -- [n] [reps] [ops…]`
//! with n = 8192 (218-bit modulus, the default) or 16384 (438-bit modulus). Ops: fwd inv encpk
//! encsk dec add scalar mul square relin sqrelin modsw dot (default: all but dot). The main
//! thread is one of rayon's threads, as the executor's callers are.
#![allow(clippy::unwrap_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;
use veil_runtime::bfv::*;
use veil_runtime::math::*;

/// CPU time of every thread of this process in nanoseconds (Linux), so that timings stay
/// meaningful on a machine shared with other jobs; `None` elsewhere.
fn cpu_ns() -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Median (wall ms, CPU ms) per call over `reps` samples after a warm-up; each sample runs
/// `f` often enough to last about 20 ms, because the CPU clock only advances on scheduler ticks.
fn median_ms(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64();
    let batch = ((0.02 / once.max(1e-6)).ceil() as usize).max(1);
    let mut wall = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    for _ in 0..reps {
        let c0 = cpu_ns();
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        wall.push(start.elapsed().as_secs_f64() * 1e3 / batch as f64);
        if let (Some(a), Some(b)) = (c0, cpu_ns()) {
            cpu.push(b.saturating_sub(a) as f64 / 1e6 / batch as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    (median(&mut wall), median(&mut cpu))
}

fn main() {
    // The main thread joins rayon's pool, as the executor's workers are: the operations' inner
    // parallel loops then run on it instead of being handed to another thread and waited for.
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .unwrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(8192, |s| s.parse().unwrap());
    let reps: usize = args.get(1).map_or(21, |s| s.parse().unwrap());
    let ops: Vec<&str> = if args.len() > 2 {
        args[2..].iter().map(String::as_str).collect()
    } else {
        vec![
            "fwd", "inv", "encpk", "encsk", "dec", "add", "scalar", "mul", "square", "relin",
            "sqrelin", "modsw",
        ]
    };
    let (q_bits, special): (Vec<u32>, u32) = match n {
        8192 => (vec![54, 54, 55], 55),
        16384 => (vec![54; 7], 60),
        _ => panic!("n must be 8192 or 16384"),
    };
    let params = BfvParameters::builder()
        .degree(n)
        .q_bits(&q_bits)
        .special_bits(special)
        .plain_bits(20)
        .build()
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let m = params.ring().q()[0];
    let table = NttTable::new(m, n).unwrap();
    let mut a: Vec<u64> = (0..n).map(|_| rng.gen_range(0..m.value())).collect();
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::new(&sk, &mut rng);
    let rk = RelinKey::new(&sk, &mut rng);
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let v: Vec<i64> = (0..n).map(|_| rng.gen_range(-100..100)).collect();
    let pt = enc.encode(&v).unwrap();
    let ct = pk.encrypt(&pt, &mut rng).unwrap();
    let ct2 = pk.encrypt(&pt, &mut rng).unwrap();
    let sq = ev.square(&ct).unwrap();
    let seeded = sk.encrypt(&pt, &mut rng).unwrap();
    println!(
        "n={n} log2(Q·p)={:.1} t={} aux primes={} seeded ciphertext={} B full={} B",
        params.ring().log2_modulus(),
        params.plain_modulus(),
        params.aux_primes().len(),
        seeded.to_bytes().len(),
        ct.to_bytes().len()
    );
    for op in ops {
        let (wall, cpu) = match op {
            "fwd" => median_ms(reps, || table.forward(&mut a)),
            "inv" => median_ms(reps, || table.inverse(&mut a)),
            "encpk" => median_ms(reps, || drop(pk.encrypt(&pt, &mut rng).unwrap())),
            "encsk" => median_ms(reps, || drop(sk.encrypt(&pt, &mut rng).unwrap())),
            "dec" => median_ms(reps, || drop(sk.decrypt(&ct).unwrap())),
            "add" => median_ms(reps, || drop(ev.add(&ct, &ct2).unwrap())),
            "scalar" => median_ms(reps, || drop(ev.mul_scalar(&ct, -7).unwrap())),
            "mul" => median_ms(reps, || drop(ev.mul(&ct, &ct2).unwrap())),
            "square" => median_ms(reps, || drop(ev.square(&ct).unwrap())),
            "relin" => median_ms(reps, || drop(ev.relinearize(&sq, &rk).unwrap())),
            "sqrelin" => median_ms(reps, || {
                drop(ev.relinearize(&ev.square(&ct).unwrap(), &rk).unwrap())
            }),
            "modsw" => median_ms(reps, || drop(ev.mod_switch_to_next(&ct).unwrap())),
            "dot" => {
                let many: Vec<Ciphertext> = (0..845)
                    .map(|i| ev.mul_scalar(&ct, i % 7 - 3).unwrap())
                    .collect();
                let refs: Vec<&Ciphertext> = many.iter().collect();
                let w: Vec<i64> = (0..845).map(|_| rng.gen_range(-64..=64)).collect();
                median_ms(reps.min(5), || drop(ev.dot(&refs, &w).unwrap()))
            }
            other => {
                println!("unknown op {other}");
                continue;
            }
        };
        println!("{op:>8}: {wall:9.3} ms wall, {cpu:9.3} ms CPU");
    }
}
