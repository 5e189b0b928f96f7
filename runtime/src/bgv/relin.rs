//! The BGV relinearisation key: hybrid key switching with the special prime p, like BFV's, but
//! its error is a multiple of T = Π t_i, so the noise key switching adds is a multiple of
//! every plaintext prime it serves.

use super::keys::{check_plain_primes, product_mod};
use crate::bfv::{expand_a, switching_b, EvalError, KeyId, RingContext, SecretKey};
use crate::math::{Ntt, RnsPoly};
use rand::{CryptoRng, Rng, RngCore};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The BGV relinearisation key: for each q prime j, an encryption over Q·p under s of p·s²
/// in limb j only, with error T·e_j: (b_j, a_j) = (−a_j·s + T·e_j + [p·s² in limb j], a_j),
/// NTT form over q_0..q_{L-1}, p; a_j expanded from a seed (stream j). At level ℓ the first ℓ
/// components restricted to q_0..q_{ℓ-1}, p are used.
#[derive(Clone, PartialEq, Eq)]
pub struct RelinKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) id: KeyId,
    pub(crate) plain_primes: Vec<u64>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly<Ntt>>,
    pub(crate) a: Vec<RnsPoly<Ntt>>,
}

impl fmt::Debug for RelinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bgv::RelinKey(ring={:016x}, set={}, plain_primes={:?}, components={})",
            self.ring.fingerprint(),
            self.id,
            self.plain_primes,
            self.b.len()
        )
    }
}

impl RelinKey {
    /// The relinearisation key of `sk` for the plaintext primes `plain_primes` (a plan's
    /// `params.plain_primes`).
    pub fn new(
        sk: &SecretKey,
        plain_primes: &[u64],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, EvalError> {
        let ring = sk.ring().clone();
        let mut ring_primes = ring.q_values();
        ring_primes.push(ring.special().value());
        check_plain_primes(plain_primes, &ring_primes)?;
        let seed: [u8; 32] = rng.gen();
        let s = &sk.ntt;
        let mut s2 = Zeroizing::new(s.clone());
        s2.mul_assign(s, ring.key_moduli());
        let a = expand_a(&ring, &seed);
        let factor = product_mod(plain_primes, ring.key_moduli());
        let b = switching_b(&ring, &s2, s, &a, Some(&factor), rng);
        Ok(RelinKey {
            ring,
            id: sk.id(),
            plain_primes: plain_primes.to_vec(),
            seed,
            b,
            a,
        })
    }

    pub(crate) fn from_parts(
        ring: Arc<RingContext>,
        id: KeyId,
        plain_primes: Vec<u64>,
        seed: [u8; 32],
        b: Vec<RnsPoly<Ntt>>,
    ) -> Self {
        let a = expand_a(&ring, &seed);
        RelinKey {
            ring,
            id,
            plain_primes,
            seed,
            b,
            a,
        }
    }

    /// The id of the key set this key belongs to (its secret key's).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }

    /// The plaintext primes this key serves.
    pub fn plain_primes(&self) -> &[u64] {
        &self.plain_primes
    }
}
