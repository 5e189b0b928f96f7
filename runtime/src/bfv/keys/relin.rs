//! The relinearisation key, an evaluation key: the server needs it to multiply, and it
//! reveals nothing about s without the secret. Built for hybrid key switching with one RNS
//! digit per q prime and the special prime p.

use super::secret::SecretKey;
use super::KeyId;
use crate::bfv::params::RingContext;
use crate::bfv::sampling::{error_poly, expand_seed};
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
        let moduli = ring.key_moduli();
        let n = ring.degree();
        let mut s2 = Zeroizing::new(sk.ntt.clone());
        s2.mul_assign(&sk.ntt, moduli);
        let a = Self::expand(&ring, &seed);
        let mut b = Vec::with_capacity(ring.max_level());
        for (j, aj) in a.iter().enumerate() {
            // The error's buffer becomes b_j itself.
            let mut bj = error_poly(rng, n, moduli).into_ntt(ring.key_tables());
            let mut as_ = Zeroizing::new(aj.clone());
            as_.mul_assign(&sk.ntt, moduli);
            bj.sub_assign(&as_, moduli);
            let m = &moduli[j];
            let pm = ring.special_mod_q()[j];
            let pms = m.shoup(pm);
            // Read s² in place: no unwiped copy of a limb.
            for (x, &s) in bj.limb_mut(j).iter_mut().zip(s2.limb(j)) {
                *x = m.add(*x, m.mul_shoup(s, pm, pms));
            }
            b.push(bj);
        }
        RelinKey {
            ring,
            id: sk.id,
            seed,
            b,
            a,
        }
    }

    pub(crate) fn expand(ring: &RingContext, seed: &[u8; 32]) -> Vec<RnsPoly<Ntt>> {
        (0..ring.max_level())
            .map(|j| expand_seed(seed, ring.key_moduli(), ring.degree(), j as u64))
            .collect()
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
