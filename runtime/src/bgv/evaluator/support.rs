//! The fixture of the BGV tests: one key set for a list of plaintext primes, an encoder and
//! an evaluator for one of them, and a seeded generator.

use super::Evaluator;
use crate::bfv::{BfvParameters, Encoder, SecretKey};
use crate::bgv::{decrypt, encrypt, noise_budget_bits, Ciphertext, PublicKey, RelinKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;

pub(crate) struct Setup {
    pub(crate) params: Arc<BfvParameters>,
    pub(crate) sk: SecretKey,
    pub(crate) pk: PublicKey,
    pub(crate) rk: RelinKey,
    pub(crate) enc: Encoder,
    pub(crate) ev: Evaluator,
    pub(crate) rng: ChaCha20Rng,
}

/// Keys for `primes` (which must include the plaintext modulus of `params`).
pub(crate) fn setup_for(params: Arc<BfvParameters>, primes: &[u64], seed: u64) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::new(&sk, primes, &mut rng).unwrap();
    let rk = RelinKey::new(&sk, primes, &mut rng).unwrap();
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

pub(crate) fn setup(params: Arc<BfvParameters>, seed: u64) -> Setup {
    let t = params.plain_modulus();
    setup_for(params, &[t], seed)
}

impl Setup {
    pub(crate) fn random(&mut self, bound: i64) -> Vec<i64> {
        let n = self.params.degree();
        (0..n).map(|_| self.rng.gen_range(-bound..=bound)).collect()
    }
    pub(crate) fn encrypt(&mut self, v: &[i64]) -> Ciphertext {
        let pt = self.enc.encode(v).unwrap();
        encrypt(&self.sk, &pt, &mut self.rng).unwrap()
    }
    pub(crate) fn encrypt_pk(&mut self, v: &[i64]) -> Ciphertext {
        let pt = self.enc.encode(v).unwrap();
        self.pk.encrypt(&pt, &mut self.rng).unwrap()
    }
    pub(crate) fn decrypt(&self, ct: &Ciphertext) -> Vec<i64> {
        self.enc.decode(&decrypt(&self.sk, ct).unwrap()).unwrap()
    }
    pub(crate) fn budget(&self, ct: &Ciphertext) -> u32 {
        noise_budget_bits(&self.sk, ct).unwrap()
    }
    pub(crate) fn modt(&self, v: i128) -> i64 {
        let t = i128::from(self.params.plain_modulus());
        let r = v.rem_euclid(t);
        (if r > t / 2 { r - t } else { r }) as i64
    }
    pub(crate) fn expect(&self, f: impl Fn(usize) -> i128) -> Vec<i64> {
        (0..self.params.degree()).map(|i| self.modt(f(i))).collect()
    }
}
