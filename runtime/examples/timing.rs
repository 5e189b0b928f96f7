#![allow(clippy::unwrap_used)]
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_runtime::bfv::*;
use veil_runtime::math::*;

fn main() {
    let op = std::env::args().nth(1).unwrap_or_default();
    let reps: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(0);
    let params = BfvParameters::builder()
        .degree(8192)
        .q_bits(&[54, 54, 55])
        .special_bits(55)
        .plain_bits(20)
        .build()
        .unwrap();
    let n = 8192;
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
    let many: Vec<Ciphertext> = if op == "dot" {
        (0..845)
            .map(|i| ev.mul_scalar(&ct, i % 7 - 3).unwrap())
            .collect()
    } else {
        vec![]
    };
    let refs: Vec<&Ciphertext> = many.iter().collect();
    let w: Vec<i64> = (0..845).map(|_| rng.gen_range(-64..=64)).collect();
    for _ in 0..reps {
        match op.as_str() {
            "fwd" => table.forward(&mut a),
            "inv" => table.inverse(&mut a),
            "encpk" => {
                pk.encrypt(&pt, &mut rng).unwrap();
            }
            "encsk" => {
                sk.encrypt(&pt, &mut rng).unwrap();
            }
            "dec" => {
                sk.decrypt(&ct).unwrap();
            }
            "scalar" => {
                ev.mul_scalar(&ct, -7).unwrap();
            }
            "add" => {
                ev.add(&ct, &ct2).unwrap();
            }
            "mul" => {
                ev.mul(&ct, &ct2).unwrap();
            }
            "square" => {
                ev.square(&ct).unwrap();
            }
            "relin" => {
                ev.relinearize(&sq, &rk).unwrap();
            }
            "modsw" => {
                ev.mod_switch_to_next(&ct).unwrap();
            }
            "dot" => {
                ev.dot(&refs, &w).unwrap();
            }
            _ => {}
        }
    }
}
