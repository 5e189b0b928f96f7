//! Sums of products with plaintext vectors, the inner loop of the diagonal method.
//!
//! A packed matrix-vector product multiplies a few rotated ciphertexts by many plaintexts (one
//! per diagonal) and sums the products. [`Evaluator::mul_plain`] would transform both operands
//! for every product; here each ciphertext is transformed once ([`NttCiphertext`]), each
//! plaintext once per level ([`NttPlaintext`]), and [`Evaluator::dot_plain`] multiplies and
//! adds in evaluation form, leaving one inverse transform per component for the whole sum.

use super::{EvalError, Evaluator};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::encoding::Plaintext;
use crate::math::{Ntt, RnsPoly};
use rayon::prelude::*;

/// Products summed in 128 bits between reductions: 31 products below 2^122 plus a reduced
/// residue stay below 2^127.
const LAZY_TERMS: usize = 31;

/// A ciphertext's components in evaluation (NTT) form, ready for many plaintext products.
#[derive(Clone, Debug)]
pub struct NttCiphertext {
    polys: Vec<RnsPoly<Ntt>>,
    level: usize,
    fingerprint: u64,
}

/// A plaintext's centred lift to the q primes of one level, in evaluation form.
#[derive(Clone, Debug)]
pub struct NttPlaintext {
    pub(crate) poly: RnsPoly<Ntt>,
    pub(crate) level: usize,
    pub(crate) fingerprint: u64,
}

impl NttPlaintext {
    /// The level it was lifted to.
    pub fn level(&self) -> usize {
        self.level
    }
}

impl NttCiphertext {
    /// The level the components are at.
    pub fn level(&self) -> usize {
        self.level
    }
}

impl Evaluator {
    /// Transforms `ct`'s components for [`Evaluator::dot_plain`].
    pub fn to_ntt(&self, ct: &Ciphertext) -> Result<NttCiphertext, EvalError> {
        self.check(ct)?;
        let tables = self.params.ring().q_tables(ct.level);
        let polys = ct
            .polys
            .par_iter()
            .map(|p| p.clone().into_ntt(tables))
            .collect();
        Ok(NttCiphertext {
            polys,
            level: ct.level,
            fingerprint: ct.fingerprint(),
        })
    }

    /// Lifts `pt` (coefficients centred mod t) to the q primes of `level` and transforms it.
    pub fn plain_to_ntt(&self, pt: &Plaintext, level: usize) -> Result<NttPlaintext, EvalError> {
        self.check_pt(pt)?;
        self.level_ctx(level)?;
        let n = self.params.degree();
        let t = self.params.plain_modulus();
        let mut m = RnsPoly::zero(level, n);
        for (limb, q) in m.data_mut().chunks_exact_mut(n).zip(self.moduli(level)) {
            for (o, &v) in limb.iter_mut().zip(pt.coeffs()) {
                *o = q.lift_centred(v, t);
            }
        }
        Ok(NttPlaintext {
            poly: m.into_ntt(self.params.ring().q_tables(level)),
            level,
            fingerprint: self.params.fingerprint(),
        })
    }

    /// `Σ_i pt_i ⊙ ct_i` (slot-wise products summed), in coefficient form. Every term must be
    /// at one level and of one size; the noise of each product grows by the plaintext's
    /// polynomial (about δ·t/2), not by its slot values.
    pub fn dot_plain(
        &self,
        terms: &[(&NttCiphertext, &NttPlaintext)],
    ) -> Result<Ciphertext, EvalError> {
        let (level, size) = check_terms(
            self.params.fingerprint(),
            terms
                .iter()
                .map(|(ct, pt)| ((ct.fingerprint, ct.level, ct.polys.len()), *pt)),
        )?;
        let tables = self.params.ring().q_tables(level);
        let polys = dot_ntt(
            terms_of(terms),
            self.moduli(level),
            self.params.degree(),
            size,
        )
        .into_par_iter()
        .map(|p| p.into_coeff(tables))
        .collect();
        Ok(Ciphertext::new(self.params.clone(), polys, level))
    }
}

/// Checks the terms of a `dot_plain`, each given as ((ciphertext parameters fingerprint, level,
/// size), plaintext): at least one, all made for parameters `fingerprint`, at one level and
/// of one size. Returns that level and size.
pub(crate) fn check_terms<'a>(
    fingerprint: u64,
    terms: impl Iterator<Item = ((u64, usize, usize), &'a NttPlaintext)>,
) -> Result<(usize, usize), EvalError> {
    let mut shape = None;
    for ((ct_fingerprint, level, size), pt) in terms {
        for found in [ct_fingerprint, pt.fingerprint] {
            if found != fingerprint {
                return Err(EvalError::ParamsMismatch {
                    expected: fingerprint,
                    found,
                });
            }
        }
        let (want_level, want_size) = *shape.get_or_insert((level, size));
        for right in [level, pt.level] {
            if right != want_level {
                return Err(EvalError::LevelMismatch {
                    left: want_level,
                    right,
                });
            }
        }
        if size != want_size {
            return Err(EvalError::UnsupportedSize {
                size,
                max: want_size,
            });
        }
    }
    shape.ok_or(EvalError::Empty)
}

/// The (components, plaintext) pairs of `terms`.
fn terms_of<'a>(
    terms: &'a [(&'a NttCiphertext, &'a NttPlaintext)],
) -> Vec<(&'a [RnsPoly<Ntt>], &'a RnsPoly<Ntt>)> {
    terms
        .iter()
        .map(|(ct, pt)| (ct.polys.as_slice(), &pt.poly))
        .collect()
}

/// `Σ_i pt_i ⊙ c_i` component by component, in evaluation form over `moduli` (every `c_i` has
/// `size` components): the kernel BFV's and BGV's `dot_plain` share. Products of two residues
/// below 2^61 are below 2^122, so they add up in 128 bits and are reduced once per
/// [`LAZY_TERMS`].
pub(crate) fn dot_ntt(
    terms: Vec<(&[RnsPoly<Ntt>], &RnsPoly<Ntt>)>,
    moduli: &[crate::math::Modulus],
    n: usize,
    size: usize,
) -> Vec<RnsPoly<Ntt>> {
    (0..size)
        .into_par_iter()
        .map(|component| {
            let mut acc = RnsPoly::<Ntt>::zero(moduli.len(), n);
            acc.data_mut()
                .par_chunks_exact_mut(n)
                .zip(moduli)
                .enumerate()
                .for_each(|(limb, (out, q))| {
                    let mut wide = vec![0u128; n];
                    for batch in terms.chunks(LAZY_TERMS) {
                        for (ct, pt) in batch {
                            let a = ct[component].limb(limb);
                            let b = pt.limb(limb);
                            for ((w, &x), &y) in wide.iter_mut().zip(a).zip(b) {
                                *w += u128::from(x) * u128::from(y);
                            }
                        }
                        for w in wide.iter_mut() {
                            *w = u128::from(q.reduce_u128(*w));
                        }
                    }
                    for (o, w) in out.iter_mut().zip(wide) {
                        *o = w as u64;
                    }
                });
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::support::setup;
    use crate::bfv::params::tests::toy;

    #[test]
    fn dot_plain_equals_the_sum_of_slotwise_products() {
        let mut s = setup(toy(2048), 11);
        let (a, b) = (s.random(20), s.random(20));
        let (u, v) = (s.random(9), s.random(9));
        let (ca, cb) = (s.encrypt(&a), s.encrypt(&b));
        let (pu, pv) = (s.enc.encode(&u).unwrap(), s.enc.encode(&v).unwrap());
        let level = ca.level();
        let (na, nb) = (s.ev.to_ntt(&ca).unwrap(), s.ev.to_ntt(&cb).unwrap());
        let (nu, nv) = (
            s.ev.plain_to_ntt(&pu, level).unwrap(),
            s.ev.plain_to_ntt(&pv, level).unwrap(),
        );
        let sum = s.ev.dot_plain(&[(&na, &nu), (&nb, &nv)]).unwrap();
        let expected =
            s.expect(|i| i128::from(a[i]) * i128::from(u[i]) + i128::from(b[i]) * i128::from(v[i]));
        assert_eq!(s.decrypt(&sum), expected);
        let single = s.ev.mul_plain(&ca, &pu).unwrap();
        assert_eq!(s.ev.dot_plain(&[(&na, &nu)]).unwrap(), single);
    }

    #[test]
    fn mismatched_levels_are_refused() {
        let mut s = setup(toy(2048), 12);
        let a = s.random(5);
        let ca = s.encrypt(&a);
        let pt = s.enc.encode(&a).unwrap();
        let na = s.ev.to_ntt(&ca).unwrap();
        let low = s.ev.plain_to_ntt(&pt, ca.level() - 1).unwrap();
        assert!(s.ev.dot_plain(&[(&na, &low)]).is_err());
        assert!(s.ev.dot_plain(&[]).is_err());
    }
}
