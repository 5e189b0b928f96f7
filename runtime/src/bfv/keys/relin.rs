//! The relinearisation key, an evaluation key: the server needs it to multiply, and it
//! reveals nothing about s without the secret. Built for hybrid key switching with one RNS
//! digit per q prime and the special prime p.

use super::secret::SecretKey;
use super::switching::{expand_a, switching_b};
use super::KeyId;
use crate::bfv::params::RingContext;
use crate::math::{Ntt, RnsPoly};
use rand::{CryptoRng, Rng, RngCore};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The relinearisation key: for each q prime j, an encryption over Q·p of p·s²·e_j, where
/// e_j ≡ 1 mod q_j and ≡ 0 mod the other primes (hybrid key switching with RNS digits).
/// Component j is (b_j, a_j) = (−a_j s + e'_j + [p·s² in limb j], a_j), NTT form, a_j from a
/// seed. At level ℓ the first ℓ components restricted to q_0..q_{ℓ-1}, p are used.
#[derive(Clone, PartialEq, Eq)]
pub struct RelinKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) id: KeyId,
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly<Ntt>>,
    pub(crate) a: Vec<RnsPoly<Ntt>>,
}

impl fmt::Debug for RelinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RelinKey(ring={:016x}, set={}, components={})",
            self.ring.fingerprint(),
            self.id,
            self.b.len()
        )
    }
}

impl RelinKey {
    /// Generates the relinearisation key of `sk`.
    pub fn new(sk: &SecretKey, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let ring = sk.ring.clone();
        let seed: [u8; 32] = rng.gen();
        let mut s2 = Zeroizing::new(sk.ntt.clone());
        s2.mul_assign(&sk.ntt, ring.key_moduli());
        let a = Self::expand(&ring, &seed);
        let b = switching_b(&ring, &s2, &sk.ntt, &a, None, rng);
        RelinKey {
            ring,
            id: sk.id,
            seed,
            b,
            a,
        }
    }

    pub(crate) fn expand(ring: &RingContext, seed: &[u8; 32]) -> Vec<RnsPoly<Ntt>> {
        expand_a(ring, seed)
    }

    /// The id of the key set this key belongs to (its secret key's).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }
}
