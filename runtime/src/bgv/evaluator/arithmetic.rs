//! Linear operations on NTT-form ciphertexts: sums, differences, products by signed integers,
//! weighted sums and constants. A weighted sum is the same limb by limb in either form, so the
//! kernels are BFV's. Noise grows additively, or by the weight's magnitude.

use super::{EvalError, Evaluator};
use crate::bfv::{dot_polys, mul_scalar_polys};
use crate::bgv::ciphertext::Ciphertext;
use crate::math::{Ntt, RnsPoly};

impl Evaluator {
    /// `a + b` (sizes may differ; the result has the larger size). Same level and scale.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, EvalError> {
        let mut r = a.clone();
        self.add_assign(&mut r, b)?;
        Ok(r)
    }

    /// `a += b`.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), EvalError> {
        self.check_pair(a, b, true)?;
        let moduli = self.moduli(a.level);
        for (i, p) in b.polys.iter().enumerate() {
            match a.polys.get_mut(i) {
                Some(q) => q.add_assign(p, moduli),
                None => a.polys.push(p.clone()),
            }
        }
        a.seed = None;
        Ok(())
    }

    /// `a − b`.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check_pair(a, b, true)?;
        let moduli = self.moduli(a.level);
        let mut r = a.clone();
        for (i, p) in b.polys.iter().enumerate() {
            match r.polys.get_mut(i) {
                Some(q) => q.sub_assign(p, moduli),
                None => {
                    let mut q = p.clone();
                    q.neg_assign(moduli);
                    r.polys.push(q);
                }
            }
        }
        r.seed = None;
        Ok(r)
    }

    /// `−a`.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check(a)?;
        let moduli = self.moduli(a.level);
        let mut r = a.clone();
        for p in &mut r.polys {
            p.neg_assign(moduli);
        }
        r.seed = None;
        Ok(r)
    }

    /// Multiplies by a signed integer: [w]_q from |w| negated exactly, so the noise grows by
    /// |w|, not by t. The scale is unchanged.
    pub fn mul_scalar(&self, ct: &Ciphertext, w: i64) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let polys = mul_scalar_polys(&ct.polys, w, self.moduli(ct.level));
        Ok(Ciphertext::new(
            self.params.clone(),
            polys,
            ct.level,
            ct.scale,
        ))
    }

    /// Σ w_i·ct_i with signed weights, accumulated lazily in 128 bits (one reduction per
    /// output coefficient). Inputs share level and scale and may mix sizes 2 and 3; the result
    /// has the largest size. Zero weights are skipped.
    pub fn dot(&self, cts: &[&Ciphertext], weights: &[i64]) -> Result<Ciphertext, EvalError> {
        if cts.len() != weights.len() {
            return Err(EvalError::LengthMismatch {
                ciphertexts: cts.len(),
                weights: weights.len(),
            });
        }
        let first = cts.first().ok_or(EvalError::Empty)?;
        for ct in cts {
            self.check_pair(first, ct, true)?;
        }
        let terms: Vec<(&[RnsPoly<Ntt>], i64)> = cts
            .iter()
            .zip(weights)
            .map(|(c, &w)| (c.polys.as_slice(), w))
            .collect();
        let polys = dot_polys(&terms, self.moduli(first.level), self.params.degree());
        Ok(Ciphertext::new(
            self.params.clone(),
            polys,
            first.level,
            first.scale,
        ))
    }

    /// Adds the integer `c` (mod t) to every slot. The message carries the factor `scale`, so
    /// k = [c·scale]_t (centred) is added to c_0; a constant polynomial is k in every NTT
    /// slot, so no transform is needed. The noise grows by at most t/2.
    pub fn add_constant(&self, ct: &Ciphertext, c: i128) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let t = self.params.plain();
        let k = t.mul(t.reduce_i128(c), ct.scale);
        let mut r = ct.clone();
        let n = self.params.degree();
        for (limb, q) in r.polys[0]
            .data_mut()
            .chunks_exact_mut(n)
            .zip(self.moduli(ct.level))
        {
            let kq = q.lift_centred(k, t.value());
            for x in limb.iter_mut() {
                *x = q.add(*x, kq);
            }
        }
        r.seed = None;
        Ok(r)
    }

    /// The same message with scale `target`: multiplies by r = [target·scale⁻¹]_t (centred),
    /// which costs up to log2(t/2) bits of noise (r is as large as t/2 in general). Used to
    /// align operands whose scales differ before a sum.
    pub fn rescale_to(&self, ct: &Ciphertext, target: u64) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let t = self.params.plain();
        if target == ct.scale {
            return Ok(ct.clone());
        }
        let ratio = self.scale_ratio(target, ct.scale)?;
        let mut r = self.mul_scalar(ct, ratio)?;
        r.scale = t.reduce(target);
        Ok(r)
    }

    /// [target·from⁻¹]_t, centred: the factor that turns a message of scale `from` into one of
    /// scale `target`.
    pub fn scale_ratio(&self, target: u64, from: u64) -> Result<i64, EvalError> {
        let t = self.params.plain();
        let inv = t.inv(from).ok_or(EvalError::ScaleMismatch {
            left: target,
            right: from,
        })?;
        if t.reduce(target) == 0 {
            return Err(EvalError::ScaleMismatch {
                left: target,
                right: from,
            });
        }
        Ok(crate::bfv::centre(t.mul(t.reduce(target), inv), t.value()))
    }
}
