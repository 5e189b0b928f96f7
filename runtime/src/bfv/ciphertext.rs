//! Ciphertexts: 2 or 3 coefficient-form RNS polynomials at some level.

use super::params::BfvParameters;
use crate::math::{Coeff, RnsPoly};
use std::fmt;
use std::sync::Arc;

/// A BFV ciphertext (c_0, c_1[, c_2]) over q_0..q_{level-1}, in coefficient form. Decrypts as
/// round(t/Q·[c_0 + c_1 s + c_2 s²]_Q) mod t.
#[derive(Clone)]
pub struct Ciphertext {
    pub(crate) params: Arc<BfvParameters>,
    pub(crate) polys: Vec<RnsPoly<Coeff>>,
    pub(crate) level: usize,
    /// For a fresh symmetric encryption: the seed c_1 was expanded from (stream 0).
    pub(crate) seed: Option<[u8; 32]>,
    /// Low bits rounded away in each component (see [`Ciphertext::round_low_bits`]): the
    /// coefficients are multiples of 2^k modulo Q and serialise in fewer bits. Every
    /// operation that changes a component must reset its entry (as it drops the seed).
    pub(crate) low_bits: [u32; 3],
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ciphertext(size={}, level={}, seeded={}, low_bits={:?}, params={:016x})",
            self.polys.len(),
            self.level,
            self.seed.is_some(),
            self.low_bits(),
            self.params.fingerprint()
        )
    }
}

impl PartialEq for Ciphertext {
    fn eq(&self, other: &Self) -> bool {
        self.params.fingerprint() == other.params.fingerprint()
            && self.level == other.level
            && self.polys == other.polys
    }
}
impl Eq for Ciphertext {}

impl Ciphertext {
    pub(crate) fn new(
        params: Arc<BfvParameters>,
        polys: Vec<RnsPoly<Coeff>>,
        level: usize,
    ) -> Self {
        Ciphertext {
            params,
            polys,
            level,
            seed: None,
            low_bits: [0; 3],
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    /// Number of q primes still present.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of polynomials (2 after relinearisation, 3 after a multiplication).
    pub fn size(&self) -> usize {
        self.polys.len()
    }

    /// The polynomials.
    pub fn polys(&self) -> &[RnsPoly<Coeff>] {
        &self.polys
    }

    /// Whether c_1 can be serialised as a 32-byte seed.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    /// Full parameter fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.params.fingerprint()
    }
}
