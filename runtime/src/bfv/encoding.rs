//! Plaintexts and SIMD batching: a vector of up to n integers modulo t becomes the polynomial
//! whose values at the n primitive 2n-th roots of unity modulo t are that vector (t ≡ 1 mod 2n
//! makes X^n + 1 split mod t). The slots are ordered so that Galois automorphisms rotate them:
//! see [`SLOT_GENERATOR`].
//! The scaling of a plaintext by Δ = Q/t into a ciphertext is an encoding rule too, so it lives
//! here, where encryption (keys) and the evaluator both import it.

use super::params::BfvParameters;
use crate::math::{Coeff, RnsPoly};
use rayon::prelude::*;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Why values could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// More values than slots.
    #[error("{given} values given but a plaintext has only n={slots} slots")]
    TooManyValues {
        /// Values given.
        given: usize,
        /// Slots available.
        slots: usize,
    },
    /// The plaintext belongs to other parameters.
    #[error("plaintext is for parameters {found:016x}, the encoder for {expected:016x}")]
    ParamsMismatch {
        /// Encoder's fingerprint.
        expected: u64,
        /// Plaintext's fingerprint.
        found: u64,
    },
}

/// A plaintext polynomial with coefficients in [0, t), tied to one parameter set.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext {
    params: Arc<BfvParameters>,
    coeffs: Vec<u64>,
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Plaintext(n={}, t={}, params={:016x})",
            self.coeffs.len(),
            self.params.plain_modulus(),
            self.params.fingerprint()
        )
    }
}

impl PartialEq for BfvParameters {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint() == other.fingerprint()
    }
}
impl Eq for BfvParameters {}

impl Plaintext {
    /// Wraps coefficients already reduced modulo t (the caller guarantees length n, values < t).
    pub(crate) fn from_coeffs(params: Arc<BfvParameters>, coeffs: Vec<u64>) -> Self {
        Plaintext { params, coeffs }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    /// Polynomial coefficients in [0, t).
    pub fn coeffs(&self) -> &[u64] {
        &self.coeffs
    }

    /// Full parameter fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.params.fingerprint()
    }
}

/// The generator of the slot order. The n slots form two rows of n/2: slot r·n/2 + c holds the
/// plaintext's value at ζ^e with e = (−1)^r·g^c mod 2n, g = 3 (ζ a primitive 2n-th root of
/// unity modulo t; g has order n/2 and −1 is not among its powers). The automorphism
/// X ↦ X^{g^s} then rotates both rows left by s steps and X ↦ X^{−1} swaps them (see
/// [`crate::bfv::row_rotation_element`]).
pub const SLOT_GENERATOR: u64 = 3;

/// For each slot, the index of its evaluation point in the output of the NTT modulo t (which
/// holds the value at ζ^{2·bitrev(j)+1} at index j).
fn slot_to_ntt_index(n: usize) -> Vec<usize> {
    let two_n = 2 * n as u64;
    let bits = n.trailing_zeros();
    let rev = |x: u64| (x.reverse_bits() >> (64 - bits)) as usize;
    let half = n / 2;
    let mut index = vec![0usize; n];
    let mut e = 1u64;
    for c in 0..half {
        index[c] = rev((e - 1) / 2);
        index[half + c] = rev((two_n - e - 1) / 2);
        e = e * SLOT_GENERATOR % two_n;
    }
    index
}

/// SIMD batching encoder for one parameter set.
#[derive(Clone, Debug)]
pub struct Encoder {
    params: Arc<BfvParameters>,
    /// [`slot_to_ntt_index`] for the degree.
    slot_index: Arc<Vec<usize>>,
}

impl Encoder {
    /// An encoder for `params`.
    pub fn new(params: &Arc<BfvParameters>) -> Self {
        Encoder {
            params: params.clone(),
            slot_index: Arc::new(slot_to_ntt_index(params.degree())),
        }
    }

    /// Values in slot order → polynomial coefficients.
    fn slots_to_coeffs(&self, values: &[u64]) -> Vec<u64> {
        let mut ntt = vec![0u64; values.len()];
        for (&v, &j) in values.iter().zip(self.slot_index.iter()) {
            ntt[j] = v;
        }
        self.params.plain_table().inverse(&mut ntt);
        ntt
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    /// Encodes up to n signed integers (reduced mod t; missing slots are zero).
    pub fn encode(&self, values: &[i64]) -> Result<Plaintext, EncodeError> {
        let n = self.params.degree();
        if values.len() > n {
            return Err(EncodeError::TooManyValues {
                given: values.len(),
                slots: n,
            });
        }
        let t = self.params.plain();
        let mut slots = vec![0u64; n];
        for (s, &v) in slots.iter_mut().zip(values) {
            *s = t.reduce_i64(v);
        }
        Ok(Plaintext::from_coeffs(
            self.params.clone(),
            self.slots_to_coeffs(&slots),
        ))
    }

    /// Encodes unsigned values (reduced mod t).
    pub fn encode_unsigned(&self, values: &[u64]) -> Result<Plaintext, EncodeError> {
        let n = self.params.degree();
        if values.len() > n {
            return Err(EncodeError::TooManyValues {
                given: values.len(),
                slots: n,
            });
        }
        let t = self.params.plain();
        let mut slots = vec![0u64; n];
        for (s, &v) in slots.iter_mut().zip(values) {
            *s = t.reduce(v);
        }
        Ok(Plaintext::from_coeffs(
            self.params.clone(),
            self.slots_to_coeffs(&slots),
        ))
    }

    /// The plaintext with `value` (mod t) in every slot: the constant polynomial.
    pub fn encode_constant(&self, value: i128) -> Plaintext {
        let mut coeffs = vec![0u64; self.params.degree()];
        coeffs[0] = self.params.plain().reduce_i128(value);
        Plaintext::from_coeffs(self.params.clone(), coeffs)
    }

    fn check(&self, pt: &Plaintext) -> Result<(), EncodeError> {
        if pt.fingerprint() != self.params.fingerprint() {
            return Err(EncodeError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: pt.fingerprint(),
            });
        }
        Ok(())
    }

    /// Slot values in [0, t).
    pub fn decode_unsigned(&self, pt: &Plaintext) -> Result<Vec<u64>, EncodeError> {
        self.check(pt)?;
        let mut ntt = pt.coeffs.clone();
        self.params.plain_table().forward(&mut ntt);
        Ok(self.slot_index.iter().map(|&j| ntt[j]).collect())
    }

    /// Slot values centred in (−t/2, t/2].
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<i64>, EncodeError> {
        let t = self.params.plain_modulus();
        Ok(self
            .decode_unsigned(pt)?
            .into_iter()
            .map(|v| centre(v, t))
            .collect())
    }
}

/// The representative of `v mod t` in (−t/2, t/2].
pub fn centre(v: u64, t: u64) -> i64 {
    if v > t / 2 {
        -((t - v) as i64)
    } else {
        v as i64
    }
}

/// c_0 ← c_0 ± round(Q_ℓ·m/t), computed as floor(Q_ℓ/t)·m + round(r·m/t) with r = Q_ℓ mod t
/// (the second term from a 0.64 fixed-point r/t, exact to within one). Scaling by floor(Q_ℓ/t)
/// alone would leave an error r·m/t, up to t in every coefficient, in every fresh ciphertext
/// and after every added constant; with the rounding the error is at most about one.
pub(crate) fn add_scaled_plain(
    params: &BfvParameters,
    c0: &mut RnsPoly<Coeff>,
    pt: &Plaintext,
    level: usize,
    subtract: bool,
) {
    let Some(lc) = params.level(level) else {
        return;
    };
    let n = params.degree();
    let moduli = &params.ring().q()[..level];
    let m = pt.coeffs();
    // Derived from the message (on the client, the user's data), so wiped after use.
    let rounding: zeroize::Zeroizing<Vec<u64>> =
        zeroize::Zeroizing::new(m.iter().map(|&v| lc.delta_rounding(v)).collect());
    c0.data_mut()
        .par_chunks_mut(n)
        .zip(moduli.par_iter())
        .zip(lc.delta.par_iter())
        .for_each(|((limb, q), &d)| {
            let ds = q.shoup(d);
            for ((x, &v), &r) in limb.iter_mut().zip(m).zip(rounding.iter()) {
                let dm = q.add(q.mul_shoup(v, d, ds), r);
                *x = if subtract {
                    q.sub(*x, dm)
                } else {
                    q.add(*x, dm)
                };
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::params::tests::toy;
    use proptest::prelude::*;

    #[test]
    fn constants_fill_every_slot() {
        let params = toy(1024);
        let enc = Encoder::new(&params);
        let pt = enc.encode_constant(-5);
        assert!(enc.decode(&pt).unwrap().iter().all(|&v| v == -5));
        let pt = enc.encode_constant(65537 * 7 + 3);
        assert!(enc.decode(&pt).unwrap().iter().all(|&v| v == 3));
    }

    #[test]
    fn too_many_values_is_an_error() {
        let params = toy(1024);
        let enc = Encoder::new(&params);
        let e = enc.encode(&vec![1; 1025]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1025 values given but a plaintext has only n=1024 slots"
        );
        let other = params.with_plain_modulus(12289).unwrap();
        let pt = Encoder::new(&other).encode(&[1]).unwrap();
        assert!(matches!(
            enc.decode(&pt),
            Err(EncodeError::ParamsMismatch { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn encode_decode_round_trip(values in proptest::collection::vec(any::<i64>(), 0..1024)) {
            let params = toy(1024);
            let t = 65537i128;
            let enc = Encoder::new(&params);
            let pt = enc.encode(&values).unwrap();
            let back = enc.decode(&pt).unwrap();
            for (i, &b) in back.iter().enumerate() {
                let v = values.get(i).copied().unwrap_or(0);
                let expect = i128::from(v).rem_euclid(t);
                let expect = if expect > t / 2 { expect - t } else { expect };
                prop_assert_eq!(i128::from(b), expect);
            }
        }
    }
}
