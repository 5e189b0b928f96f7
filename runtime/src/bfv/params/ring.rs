//! The ring: degree, ciphertext primes and the special key-switching prime, with the NTT
//! tables and constants that depend on nothing else. Keys depend only on this, so one key set
//! serves every plaintext modulus of the ring.

use super::ParamError;
use crate::math::{fnv1a, Modulus, NttTable};
use std::fmt;

/// The polynomial ring and modulus chain shared by every key: degree n, ciphertext primes
/// q_0..q_{L-1} and the special key-switching prime p. Keys depend only on this.
pub struct RingContext {
    degree: usize,
    q: Vec<Modulus>,
    special: Modulus,
    /// q_0..q_{L-1}, p.
    key_moduli: Vec<Modulus>,
    /// NTT tables for `key_moduli`.
    key_tables: Vec<NttTable>,
    /// p^{-1} mod q_i.
    special_inv_mod_q: Vec<u64>,
    /// p mod q_i.
    special_mod_q: Vec<u64>,
    log2_modulus: f64,
    fingerprint: u64,
}

impl fmt::Debug for RingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingContext")
            .field("degree", &self.degree)
            .field("q", &self.q_values())
            .field("special", &self.special.value())
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

impl PartialEq for RingContext {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}
impl Eq for RingContext {}

impl RingContext {
    pub(super) fn new(degree: usize, q: &[u64], special: u64) -> Result<Self, ParamError> {
        let internal = ParamError::Internal;
        let to_mod = |v: u64| Modulus::new(v).ok_or(internal("modulus out of range"));
        let qm = q
            .iter()
            .map(|&v| to_mod(v))
            .collect::<Result<Vec<_>, _>>()?;
        let sm = to_mod(special)?;
        let mut key_moduli = qm.clone();
        key_moduli.push(sm);
        let key_tables = key_moduli
            .iter()
            .map(|&m| NttTable::new(m, degree).ok_or(internal("no NTT for a prime")))
            .collect::<Result<Vec<_>, _>>()?;
        let special_inv_mod_q = qm
            .iter()
            .map(|m| {
                m.inv(special)
                    .ok_or(internal("special prime not invertible"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let special_mod_q = qm.iter().map(|m| m.reduce(special)).collect();
        let log2_modulus = key_moduli.iter().map(|m| (m.value() as f64).log2()).sum();
        let mut enc = b"veil-ring\0".to_vec();
        enc.extend_from_slice(&(degree as u64).to_le_bytes());
        enc.extend_from_slice(&(q.len() as u64).to_le_bytes());
        for &v in q {
            enc.extend_from_slice(&v.to_le_bytes());
        }
        enc.extend_from_slice(&special.to_le_bytes());
        Ok(RingContext {
            degree,
            q: qm,
            special: sm,
            key_moduli,
            key_tables,
            special_inv_mod_q,
            special_mod_q,
            log2_modulus,
            fingerprint: fnv1a(&enc),
        })
    }

    /// Ring degree n.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Number of ciphertext primes L (the level of a fresh ciphertext).
    pub fn max_level(&self) -> usize {
        self.q.len()
    }

    /// The ciphertext primes.
    pub fn q(&self) -> &[Modulus] {
        &self.q
    }

    /// The ciphertext primes as numbers.
    pub fn q_values(&self) -> Vec<u64> {
        self.q.iter().map(|m| m.value()).collect()
    }

    /// The special key-switching prime.
    pub fn special(&self) -> &Modulus {
        &self.special
    }

    /// q_0..q_{L-1} then p: the basis keys live in.
    pub fn key_moduli(&self) -> &[Modulus] {
        &self.key_moduli
    }

    /// NTT tables for [`Self::key_moduli`].
    pub fn key_tables(&self) -> &[NttTable] {
        &self.key_tables
    }

    /// NTT tables of the first `level` q primes.
    pub fn q_tables(&self, level: usize) -> &[NttTable] {
        &self.key_tables[..level]
    }

    pub(crate) fn special_inv_mod_q(&self) -> &[u64] {
        &self.special_inv_mod_q
    }

    pub(crate) fn special_mod_q(&self) -> &[u64] {
        &self.special_mod_q
    }

    /// log2(q_0 ⋯ q_{L-1} · p), the quantity the security standard bounds.
    pub fn log2_modulus(&self) -> f64 {
        self.log2_modulus
    }

    /// log2 of the ciphertext modulus at `level`.
    pub fn log2_q(&self, level: usize) -> f64 {
        self.q[..level.min(self.q.len())]
            .iter()
            .map(|m| (m.value() as f64).log2())
            .sum()
    }

    /// Stable 64-bit hash of (n, q primes, special prime).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}
