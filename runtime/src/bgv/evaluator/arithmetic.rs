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
        a.detach();
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
        r.detach();
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
        r.detach();
        Ok(r)
    }

    /// Multiplies by a signed integer: `[w]_q` from |w| negated exactly, so the noise grows by
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
        let first = self.check_dot(cts, weights)?;
        for ct in cts {
            self.check_pair(first, ct, true)?;
        }
        Ok(self.dot_unchecked(cts, weights, first.level, first.scale))
    }

    /// [`Self::dot`] for inputs of any scales (same level): the result takes the most common
    /// scale among the inputs, and the weight of every input with another scale s_i is
    /// multiplied by the ratio [target·s_i⁻¹]_t and reduced, centred, mod t. Such a folded
    /// weight is as large as t/2 in general, so that input's noise grows by up to log2(t/2)
    /// bits instead of log2|w|; inputs already at the target scale keep their weights.
    pub fn dot_any_scale(
        &self,
        cts: &[&Ciphertext],
        weights: &[i64],
    ) -> Result<Ciphertext, EvalError> {
        let first = self.check_dot(cts, weights)?;
        for ct in cts {
            self.check_pair(first, ct, false)?;
        }
        let target = most_common_scale(cts).unwrap_or(first.scale);
        let t = self.params.plain();
        let folded = cts
            .iter()
            .zip(weights)
            .map(|(ct, &w)| {
                if ct.scale == target || w == 0 {
                    Ok(w)
                } else {
                    let ratio = t.reduce_i64(self.scale_ratio(target, ct.scale)?);
                    Ok(crate::bfv::centre(t.mul(t.reduce_i64(w), ratio), t.value()))
                }
            })
            .collect::<Result<Vec<i64>, EvalError>>()?;
        Ok(self.dot_unchecked(cts, &folded, first.level, target))
    }

    fn check_dot<'a>(
        &self,
        cts: &[&'a Ciphertext],
        weights: &[i64],
    ) -> Result<&'a Ciphertext, EvalError> {
        if cts.len() != weights.len() {
            return Err(EvalError::LengthMismatch {
                ciphertexts: cts.len(),
                weights: weights.len(),
            });
        }
        cts.first().copied().ok_or(EvalError::Empty)
    }

    fn dot_unchecked(
        &self,
        cts: &[&Ciphertext],
        weights: &[i64],
        level: usize,
        scale: u64,
    ) -> Ciphertext {
        let terms: Vec<(&[RnsPoly<Ntt>], i64)> = cts
            .iter()
            .zip(weights)
            .map(|(c, &w)| (c.polys.as_slice(), w))
            .collect();
        let polys = dot_polys(&terms, self.moduli(level), self.params.degree());
        Ciphertext::new(self.params.clone(), polys, level, scale)
    }

    /// Adds the integer `c` (mod t) to every slot. The message carries the factor `scale`, so
    /// k = [c·scale]_t (centred) is added to c_0; a constant polynomial is k in every NTT
    /// slot, so no transform is needed. The noise grows by at most t/2.
    pub fn add_constant(&self, ct: &Ciphertext, c: i128) -> Result<Ciphertext, EvalError> {
        let mut r = ct.clone();
        self.add_constant_assign(&mut r, c)?;
        Ok(r)
    }

    /// [`Self::add_constant`] in place (no copy of the ciphertext: a linear layer adds its biases
    /// to the sums it has just made).
    pub fn add_constant_assign(&self, ct: &mut Ciphertext, c: i128) -> Result<(), EvalError> {
        self.check(ct)?;
        let t = self.params.plain();
        let k = t.mul(t.reduce_i128(c), ct.scale);
        let n = self.params.degree();
        let level = ct.level;
        for (limb, q) in ct.polys[0]
            .data_mut()
            .chunks_exact_mut(n)
            .zip(self.moduli(level))
        {
            let kq = q.lift_centred(k, t.value());
            for x in limb.iter_mut() {
                *x = q.add(*x, kq);
            }
        }
        ct.detach();
        Ok(())
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

/// The scale most inputs carry (the first such on ties); `None` for no inputs.
pub(crate) fn most_common_scale(cts: &[&Ciphertext]) -> Option<u64> {
    let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for ct in cts {
        *counts.entry(ct.scale).or_default() += 1;
    }
    let mut best: Option<(u64, usize)> = None;
    for ct in cts {
        let count = counts.get(&ct.scale).copied().unwrap_or(0);
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((ct.scale, count));
        }
    }
    best.map(|(s, _)| s)
}
