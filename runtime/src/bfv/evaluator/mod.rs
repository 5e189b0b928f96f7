//! Homomorphic operations: linear algebra on ciphertexts (any size), HPS multiplication,
//! hybrid relinearisation, rotations (Galois automorphisms) and modulus switching. Everything is `Send + Sync` and free of
//! global state, so many operations can run in parallel. One file per operation family; this
//! one holds the evaluator itself and the operand checks every family shares.

mod arithmetic;
mod diagonal;
mod key_switch;
mod mod_switch;
mod multiply;
mod rotate;

pub(crate) use arithmetic::{dot_polys, mul_scalar_polys};
pub(crate) use diagonal::{check_terms, dot_ntt};
pub use diagonal::{NttCiphertext, NttPlaintext};
pub(crate) use key_switch::{decompose, key_inner_product, KeyBasis};

use super::ciphertext::Ciphertext;
use super::encoding::Plaintext;
pub use super::error::EvalError;
use super::params::{BfvParameters, LevelContext};
use crate::math::Modulus;
use std::sync::Arc;

/// The homomorphic evaluator for one parameter set.
#[derive(Clone, Debug)]
pub struct Evaluator {
    params: Arc<BfvParameters>,
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &Arc<BfvParameters>) -> Self {
        Evaluator {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    fn check(&self, ct: &Ciphertext) -> Result<(), EvalError> {
        if ct.fingerprint() != self.params.fingerprint() {
            return Err(EvalError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: ct.fingerprint(),
            });
        }
        if ct.size() < 2 || ct.size() > 3 {
            return Err(EvalError::UnsupportedSize {
                size: ct.size(),
                max: 3,
            });
        }
        Ok(())
    }

    fn check_pt(&self, pt: &Plaintext) -> Result<(), EvalError> {
        if pt.fingerprint() != self.params.fingerprint() {
            return Err(EvalError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: pt.fingerprint(),
            });
        }
        Ok(())
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<(), EvalError> {
        self.check(a)?;
        self.check(b)?;
        if a.level() != b.level() {
            return Err(EvalError::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        Ok(())
    }

    fn moduli(&self, level: usize) -> &[Modulus] {
        &self.params.ring().q()[..level]
    }

    fn level_ctx(&self, level: usize) -> Result<&LevelContext, EvalError> {
        self.params.level(level).ok_or(EvalError::BadLevel {
            level,
            max: self.params.max_level(),
        })
    }
}

/// The fixture every evaluator test starts from: one key set, an encoder and an evaluator for
/// a parameter set, and a seeded generator.
#[cfg(test)]
mod support {
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::keys::{PublicKey, RelinKey, SecretKey};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    pub(super) struct Setup {
        pub(super) params: Arc<BfvParameters>,
        pub(super) sk: SecretKey,
        pub(super) pk: PublicKey,
        pub(super) rk: RelinKey,
        pub(super) enc: Encoder,
        pub(super) ev: Evaluator,
        pub(super) rng: ChaCha20Rng,
    }

    pub(super) fn setup(params: Arc<BfvParameters>, seed: u64) -> Setup {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        Setup {
            enc: Encoder::new(&params),
            ev: Evaluator::new(&params),
            params,
            sk,
            pk,
            rk,
            rng,
        }
    }

    impl Setup {
        pub(super) fn random(&mut self, bound: i64) -> Vec<i64> {
            let n = self.params.degree();
            (0..n).map(|_| self.rng.gen_range(-bound..=bound)).collect()
        }
        pub(super) fn encrypt(&mut self, v: &[i64]) -> Ciphertext {
            let pt = self.enc.encode(v).unwrap();
            self.sk.encrypt(&pt, &mut self.rng).unwrap()
        }
        pub(super) fn decrypt(&self, ct: &Ciphertext) -> Vec<i64> {
            self.enc.decode(&self.sk.decrypt(ct).unwrap()).unwrap()
        }
        pub(super) fn budget(&self, ct: &Ciphertext) -> u32 {
            self.sk.noise_budget(ct).unwrap()
        }
        pub(super) fn modt(&self, v: i128) -> i64 {
            let t = i128::from(self.params.plain_modulus());
            let r = v.rem_euclid(t);
            (if r > t / 2 { r - t } else { r }) as i64
        }
        pub(super) fn expect(&self, f: impl Fn(usize) -> i128) -> Vec<i64> {
            (0..self.params.degree()).map(|i| self.modt(f(i))).collect()
        }
    }
}

/// Tests that cross operation families: every operation against plain arithmetic, whole
/// circuits, and parameter or key mismatches.
#[cfg(test)]
mod tests {
    use super::support::setup;
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::keys::{PublicKey, RelinKey, SecretKey};
    use crate::bfv::params::tests::toy;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<BfvParameters>();
        check::<Ciphertext>();
        check::<Plaintext>();
        check::<Evaluator>();
        check::<Encoder>();
        check::<SecretKey>();
        check::<PublicKey>();
        check::<RelinKey>();
        check::<crate::bfv::keys::GaloisKeys>();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]
        /// Every evaluator operation, slot by slot, against the same computation on plain
        /// integers reduced mod t (toy parameters, n=1024).
        #[test]
        fn every_operation_matches_plain_arithmetic_mod_t(
            seed in any::<u64>(),
            w in any::<i64>(),
            small in -2000i64..2000,
            c in any::<i64>(),
        ) {
            let mut s = setup(toy(1024), seed);
            let a = s.random(i64::MAX / 4);
            let b = s.random(40_000);
            let ca = s.encrypt(&a);
            let pb = s.enc.encode(&b).unwrap();
            let cb = s.pk.encrypt(&pb, &mut s.rng.clone()).unwrap();
            prop_assert_eq!(s.decrypt(&ca), s.expect(|i| i128::from(a[i])));
            prop_assert_eq!(s.decrypt(&cb), s.expect(|i| i128::from(b[i])));
            let ev = s.ev.clone();
            let (x, y) = (|i: usize| i128::from(a[i]), |i: usize| i128::from(b[i]));
            let cases: Vec<(&str, Ciphertext, Vec<i64>)> = vec![
                ("add", ev.add(&ca, &cb).unwrap(), s.expect(|i| x(i) + y(i))),
                ("sub", ev.sub(&ca, &cb).unwrap(), s.expect(|i| x(i) - y(i))),
                ("neg", ev.neg(&ca).unwrap(), s.expect(|i| -x(i))),
                ("add_plain", ev.add_plain(&ca, &pb).unwrap(), s.expect(|i| x(i) + y(i))),
                ("sub_plain", ev.sub_plain(&ca, &pb).unwrap(), s.expect(|i| x(i) - y(i))),
                (
                    "add_constant",
                    ev.add_constant(&ca, i128::from(c)).unwrap(),
                    s.expect(|i| x(i) + i128::from(c)),
                ),
                ("mul_scalar", ev.mul_scalar(&ca, w).unwrap(), s.expect(|i| x(i) * i128::from(w))),
                ("mul_plain", ev.mul_plain(&ca, &pb).unwrap(), s.expect(|i| x(i) * y(i))),
                (
                    "dot",
                    ev.dot(&[&ca, &cb, &ca], &[small, -3, w]).unwrap(),
                    s.expect(|i| x(i) * i128::from(small) - 3 * y(i) + x(i) * i128::from(w)),
                ),
                ("mul", ev.mul(&ca, &cb).unwrap(), s.expect(|i| x(i) * y(i))),
                ("square", ev.square(&cb).unwrap(), s.expect(|i| y(i) * y(i))),
                (
                    "mul+relinearize",
                    ev.relinearize(&ev.mul(&ca, &cb).unwrap(), &s.rk).unwrap(),
                    s.expect(|i| x(i) * y(i)),
                ),
                (
                    "mul+mod_switch",
                    ev.mod_switch_to_next(&ev.mul(&ca, &cb).unwrap()).unwrap(),
                    s.expect(|i| x(i) * y(i)),
                ),
            ];
            for (name, ct, expect) in cases {
                prop_assert_eq!(s.decrypt(&ct), expect, "{}", name);
            }
        }
    }

    #[test]
    fn depth_three_circuit() {
        let params = BfvParameters::builder()
            .degree(4096)
            .q_bits(&[55, 55, 55, 55])
            .special_bits(56)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut s = setup(params, 15);
        let a = s.random(5);
        let ca = s.encrypt(&a);
        // ((a²)² · a)² + 3a: depth 3 with relinearisation after each product.
        let rk = &s.rk;
        let x2 = s.ev.relinearize(&s.ev.square(&ca).unwrap(), rk).unwrap();
        let x4 = s.ev.relinearize(&s.ev.square(&x2).unwrap(), rk).unwrap();
        let x5 = s.ev.relinearize(&s.ev.mul(&x4, &ca).unwrap(), rk).unwrap();
        let x10 = s.ev.relinearize(&s.ev.square(&x5).unwrap(), rk).unwrap();
        let out = s.ev.add(&x10, &s.ev.mul_scalar(&ca, 3).unwrap()).unwrap();
        let expect = s.expect(|i| i128::from(a[i]).pow(10) + 3 * i128::from(a[i]));
        println!(
            "depth-3 budgets: x2 {} x4 {} x5 {} x10 {}",
            s.budget(&x2),
            s.budget(&x4),
            s.budget(&x5),
            s.budget(&x10)
        );
        assert!(s.budget(&out) > 0);
        assert_eq!(s.decrypt(&out), expect);
    }

    #[test]
    fn keys_are_shared_across_plaintext_moduli() {
        let mut s = setup(toy(2048), 18);
        let p2 = s.params.with_plain_modulus(12289).unwrap();
        let enc2 = Encoder::new(&p2);
        let ev2 = Evaluator::new(&p2);
        let v: Vec<i64> = (0..2048).map(|i| i % 100 - 50).collect();
        let ct = s.pk.encrypt(&enc2.encode(&v).unwrap(), &mut s.rng).unwrap();
        let sq = ev2.relinearize(&ev2.square(&ct).unwrap(), &s.rk).unwrap();
        let out = enc2.decode(&s.sk.decrypt(&sq).unwrap()).unwrap();
        let expect: Vec<i64> = v.iter().map(|x| x * x).collect();
        assert_eq!(out, expect);
        // Mixing parameter sets in one operation is refused.
        let ct1 = s.encrypt(&v);
        assert!(matches!(
            s.ev.add(&ct1, &ct),
            Err(EvalError::ParamsMismatch { .. })
        ));
        // A key from another ring is refused.
        let other = BfvParameters::builder()
            .degree(2048)
            .q_bits(&[50, 50])
            .special_bits(51)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk2 = SecretKey::generate(&other, &mut rng);
        let rk2 = RelinKey::new(&sk2, &mut rng);
        assert!(matches!(
            sk2.decrypt(&ct1),
            Err(EvalError::KeyMismatch { .. })
        ));
        assert!(matches!(
            s.ev.relinearize(&s.ev.square(&ct1).unwrap(), &rk2),
            Err(EvalError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn secure_n8192_square_relin_dot() {
        let params = crate::bfv::params::tests::secure_8192();
        assert!(params.meets_security());
        let mut s = setup(params, 19);
        let xs: Vec<Vec<i64>> = (0..4).map(|_| s.random(300)).collect();
        let cts: Vec<Ciphertext> = xs
            .iter()
            .map(|v| {
                let pt = s.enc.encode(v).unwrap();
                s.pk.encrypt(&pt, &mut s.rng).unwrap()
            })
            .collect();
        let fresh = s.budget(&cts[0]);
        let sq: Vec<Ciphertext> = cts
            .iter()
            .map(|c| s.ev.relinearize(&s.ev.square(c).unwrap(), &s.rk).unwrap())
            .collect();
        let w = [5i64, -3, 2, -1];
        let refs: Vec<&Ciphertext> = sq.iter().collect();
        let out = s.ev.dot(&refs, &w).unwrap();
        let expect = s.expect(|j| {
            (0..4)
                .map(|i| i128::from(xs[i][j]).pow(2) * i128::from(w[i]))
                .sum()
        });
        println!(
            "n=8192 logQ=163 t={}: fresh {fresh}, square+relin {}, dot {}",
            s.params.plain_modulus(),
            s.budget(&sq[0]),
            s.budget(&out)
        );
        assert_eq!(s.decrypt(&out), expect);
        let low = s.ev.mod_switch_to_level(&out, 1).unwrap();
        println!("after switching to 1 prime: {}", s.budget(&low));
        assert_eq!(s.decrypt(&low), expect);
    }
}
