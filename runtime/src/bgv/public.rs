//! The BGV public key: encrypts without the secret. Its error is a multiple of T = Π t_i, so
//! one key encrypts for every plaintext prime of a plan.

use super::ciphertext::Ciphertext;
use super::keys::{check_covers, check_plain_primes, product_mod};
use super::secret::noisy_message;
use crate::bfv::{
    check_ring, error_poly, expand_seed, small_to_rns, ternary, EvalError, KeyId, Plaintext,
    RingContext, SecretKey,
};
use crate::math::{Ntt, RnsPoly};
use rand::{CryptoRng, Rng, RngCore};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The BGV public key (b, a) = (−a·s + T·e, a) over q_0..q_{L-1}, NTT form, with a expanded
/// from a seed and T the product of the plaintext primes it serves.
///
/// Encryption computes (b·u + t·e_0 + m, a·u + t·e_1) for ternary u, whose phase is
/// m + T·e·u + t·(e_0 + e_1·s) ≡ m (mod t) for every t dividing T.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) id: KeyId,
    pub(crate) plain_primes: Vec<u64>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: RnsPoly<Ntt>,
    pub(crate) a: RnsPoly<Ntt>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bgv::PublicKey(ring={:016x}, set={}, plain_primes={:?})",
            self.ring.fingerprint(),
            self.id,
            self.plain_primes
        )
    }
}

impl PublicKey {
    /// The public key of `sk` for the plaintext primes `plain_primes` (a plan's
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
        let level = ring.max_level();
        let moduli = &ring.q()[..level];
        let seed: [u8; 32] = rng.gen();
        let a: RnsPoly<Ntt> = expand_seed(&seed, moduli, ring.degree(), 0);
        let mut as_ = Zeroizing::new(a.clone());
        as_.mul_assign(&sk.s_at(level), moduli);
        // The error's buffer becomes b itself.
        let mut e = error_poly(rng, ring.degree(), moduli);
        e.mul_scalar_assign(&product_mod(plain_primes, moduli), moduli);
        let mut b = e.into_ntt(ring.q_tables(level));
        b.sub_assign(&as_, moduli);
        Ok(PublicKey {
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
        b: RnsPoly<Ntt>,
    ) -> Self {
        let a = expand_seed(&seed, &ring.q()[..ring.max_level()], ring.degree(), 0);
        PublicKey {
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

    /// Public-key encryption at the top level with scale 1: (b·u + t·e_0 + m, a·u + t·e_1).
    /// Refuses a plaintext modulus the key was not made for.
    pub fn encrypt(
        &self,
        pt: &Plaintext,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Ciphertext, EvalError> {
        let params = pt.params();
        check_ring(&self.ring, params)?;
        check_covers(&self.plain_primes, params.plain_modulus())?;
        let n = self.ring.degree();
        let level = self.ring.max_level();
        let moduli = &self.ring.q()[..level];
        let tables = self.ring.q_tables(level);
        let u = {
            let u_small = Zeroizing::new(ternary(rng, n));
            Zeroizing::new(small_to_rns(&u_small, moduli).into_ntt(tables))
        };
        // The noisy parts' buffers become c_0 and c_1.
        let mut c0 = noisy_message(params, Some(pt), level, rng);
        let mut c1 = noisy_message(params, None, level, rng);
        let mut bu = Zeroizing::new(self.b.clone());
        bu.mul_assign(&u, moduli);
        c0.add_assign(&bu, moduli);
        let mut au = Zeroizing::new(self.a.clone());
        au.mul_assign(&u, moduli);
        c1.add_assign(&au, moduli);
        Ok(Ciphertext::new(params.clone(), vec![c0, c1], level, 1))
    }
}
