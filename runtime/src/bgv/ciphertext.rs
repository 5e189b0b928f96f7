//! BGV ciphertexts: 2 or 3 NTT-form polynomials, a level and the scale the message carries.

use crate::bfv::BfvParameters;
use crate::math::{Ntt, RnsPoly};
use std::fmt;
use std::sync::Arc;

/// A BGV ciphertext (c_0, c_1[, c_2]) over q_0..q_{level-1}, every polynomial in NTT form.
///
/// Meaning: the phase `x = [c_0 + c_1·s (+ c_2·s²)]_{Q_level}`, read centred, is an integer
/// polynomial with `x ≡ scale·m (mod t)` and ‖x‖∞ < Q_level/2, where m is the plaintext
/// polynomial (coefficients mod t) and `scale` ∈ [1, t) is a unit mod t. Decryption reduces x
/// mod t and multiplies by scale⁻¹ mod t. A fresh encryption has scale 1; a product's scale is
/// the product of its operands' scales; switching away prime q multiplies it by q⁻¹ mod t.
/// Sums need equal scales (and levels).
#[derive(Clone)]
pub struct Ciphertext {
    pub(crate) params: Arc<BfvParameters>,
    pub(crate) polys: Vec<RnsPoly<Ntt>>,
    pub(crate) level: usize,
    pub(crate) scale: u64,
    /// For a fresh symmetric encryption: the seed c_1 was expanded from, directly in NTT form
    /// (stream 0), so the upload carries 32 bytes instead of c_1.
    pub(crate) seed: Option<[u8; 32]>,
    /// Low bits rounded away in each component (see [`Ciphertext::round_low_bits`]): the
    /// component travels as the rounded coefficients of `t⁻¹·c_i`. Every operation that
    /// changes a component must reset it, as it drops the seed ([`Ciphertext::detach`]).
    pub(crate) low_bits: [u32; 3],
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bgv::Ciphertext(size={}, level={}, scale={}, seeded={}, low_bits={:?}, params={:016x})",
            self.polys.len(),
            self.level,
            self.scale,
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
            && self.scale == other.scale
            && self.polys == other.polys
    }
}
impl Eq for Ciphertext {}

impl Ciphertext {
    pub(crate) fn new(
        params: Arc<BfvParameters>,
        polys: Vec<RnsPoly<Ntt>>,
        level: usize,
        scale: u64,
    ) -> Self {
        Ciphertext {
            params,
            polys,
            level,
            scale,
            seed: None,
            low_bits: [0; 3],
        }
    }

    /// Forgets how the ciphertext travelled (its seed and rounded low bits): every operation
    /// that changes a component calls it, so the changed component serialises whole.
    pub(crate) fn detach(&mut self) {
        self.seed = None;
        self.low_bits = [0; 3];
    }

    /// The parameters (ring and plaintext modulus t).
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    /// Number of q primes still present.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of polynomials (2, or 3 after a product without relinearisation).
    pub fn size(&self) -> usize {
        self.polys.len()
    }

    /// The factor mod t the message carries (see the type's documentation).
    pub fn scale(&self) -> u64 {
        self.scale
    }

    /// The polynomials, NTT form.
    pub fn polys(&self) -> &[RnsPoly<Ntt>] {
        &self.polys
    }

    /// Whether c_1 can be serialised as a 32-byte seed.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    /// Full parameter fingerprint (ring and t).
    pub fn fingerprint(&self) -> u64 {
        self.params.fingerprint()
    }
}
