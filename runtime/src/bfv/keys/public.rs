//! The public key: encrypts without the secret, so a client can hand it to anyone who should
//! be able to produce ciphertexts. Its `a` half is expanded from a seed, which is what is
//! stored and sent.

use super::secret::SecretKey;
use super::{check_ring, KeyId};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::encoding::{add_scaled_plain, Plaintext};
use crate::bfv::error::EvalError;
use crate::bfv::params::RingContext;
use crate::bfv::sampling::{error_poly, expand_seed, small_to_rns, ternary};
use crate::math::{Ntt, RnsPoly};
use rand::{CryptoRng, Rng, RngCore};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The public key (b, a) = (−a·s + e, a) over q_0..q_{L-1}, NTT form; a is expanded from a
/// seed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) id: KeyId,
    pub(crate) seed: [u8; 32],
    pub(crate) b: RnsPoly<Ntt>,
    pub(crate) a: RnsPoly<Ntt>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey(ring={:016x}, set={})",
            self.ring.fingerprint(),
            self.id
        )
    }
}

impl PublicKey {
    /// Generates the public key of `sk`.
    pub fn new(sk: &SecretKey, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let ring = sk.ring.clone();
        let seed: [u8; 32] = rng.gen();
        let b = Self::derive_b(sk, &seed, rng);
        let a = expand_seed(&seed, &ring.q()[..ring.max_level()], ring.degree(), 0);
        PublicKey {
            ring,
            id: sk.id,
            seed,
            b,
            a,
        }
    }

    fn derive_b(
        sk: &SecretKey,
        seed: &[u8; 32],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> RnsPoly<Ntt> {
        let ring = &sk.ring;
        let level = ring.max_level();
        let moduli = &ring.q()[..level];
        let mut a: Zeroizing<RnsPoly<Ntt>> =
            Zeroizing::new(expand_seed(seed, moduli, ring.degree(), 0));
        a.mul_assign(&sk.s_at(level), moduli);
        // The error's buffer becomes b itself.
        let mut b = error_poly(rng, ring.degree(), moduli).into_ntt(ring.q_tables(level));
        b.sub_assign(&a, moduli);
        b
    }

    pub(crate) fn from_parts(
        ring: Arc<RingContext>,
        id: KeyId,
        seed: [u8; 32],
        b: RnsPoly<Ntt>,
    ) -> Self {
        let a = expand_seed(&seed, &ring.q()[..ring.max_level()], ring.degree(), 0);
        PublicKey {
            ring,
            id,
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

    /// Public-key encryption: (b·u + e_0 + Δm, a·u + e_1) with ternary u.
    pub fn encrypt(
        &self,
        pt: &Plaintext,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Ciphertext, EvalError> {
        let params = pt.params();
        check_ring(&self.ring, params)?;
        let n = self.ring.degree();
        let level = self.ring.max_level();
        let moduli = &self.ring.q()[..level];
        let tables = self.ring.q_tables(level);
        // The ephemeral u and the errors reveal the message given the ciphertext: all wiped.
        let u = {
            let u_small = Zeroizing::new(ternary(rng, n));
            Zeroizing::new(small_to_rns(&u_small, moduli).into_ntt(tables))
        };
        // b·u and a·u change form in place and become c_0 and c_1.
        let mut bu = self.b.clone();
        bu.mul_assign(&u, moduli);
        let mut au = self.a.clone();
        au.mul_assign(&u, moduli);
        let (mut c0, mut c1) = rayon::join(|| bu.into_coeff(tables), || au.into_coeff(tables));
        let e0 = Zeroizing::new(error_poly(rng, n, moduli));
        c0.add_assign(&e0, moduli);
        let e1 = Zeroizing::new(error_poly(rng, n, moduli));
        c1.add_assign(&e1, moduli);
        add_scaled_plain(params, &mut c0, pt, level, false);
        Ok(Ciphertext::new(params.clone(), vec![c0, c1], level))
    }
}
