//! Linear operations: sums and differences of ciphertexts, plaintexts and constants, products
//! with plaintexts and small integers, and weighted sums. None of them needs a key or changes
//! the modulus, and the noise grows additively (or by the weight's magnitude).

use super::{EvalError, Evaluator};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::encoding::{add_scaled_plain, Plaintext};
use crate::math::{pool, Coeff, Form, Modulus, RnsPoly};
use rayon::prelude::*;

impl Evaluator {
    /// `a + b` (sizes may differ; the result has the larger size).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, EvalError> {
        let mut r = a.clone();
        self.add_assign(&mut r, b)?;
        Ok(r)
    }

    /// `a += b`.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), EvalError> {
        self.check_pair(a, b)?;
        let moduli = self.moduli(a.level);
        for (i, p) in b.polys.iter().enumerate() {
            match a.polys.get_mut(i) {
                Some(q) => q.add_assign(p, moduli),
                None => a.polys.push(p.clone()),
            }
        }
        a.seed = None;
        a.low_bits = [0; 3];
        Ok(())
    }

    /// `a - b`.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, EvalError> {
        let mut r = a.clone();
        self.sub_assign(&mut r, b)?;
        Ok(r)
    }

    /// `a -= b`.
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), EvalError> {
        self.check_pair(a, b)?;
        let moduli = self.moduli(a.level);
        for (i, p) in b.polys.iter().enumerate() {
            match a.polys.get_mut(i) {
                Some(q) => q.sub_assign(p, moduli),
                None => {
                    let mut q = p.clone();
                    q.neg_assign(moduli);
                    a.polys.push(q);
                }
            }
        }
        a.seed = None;
        a.low_bits = [0; 3];
        Ok(())
    }

    /// `−a`.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check(a)?;
        let mut r = a.clone();
        let moduli = self.moduli(a.level);
        for p in &mut r.polys {
            p.neg_assign(moduli);
        }
        r.seed = None;
        r.low_bits = [0; 3];
        Ok(r)
    }

    /// `ct + pt` (slot-wise).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        self.check_pt(pt)?;
        let mut r = ct.clone();
        add_scaled_plain(&self.params, &mut r.polys[0], pt, ct.level, false);
        r.low_bits[0] = 0;
        Ok(r)
    }

    /// `ct − pt` (slot-wise).
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        self.check_pt(pt)?;
        let mut r = ct.clone();
        add_scaled_plain(&self.params, &mut r.polys[0], pt, ct.level, true);
        r.low_bits[0] = 0;
        Ok(r)
    }

    /// Adds the integer `c` (mod t) to every slot: `round(Q_ℓ·[c]_t/t)` on the constant
    /// coefficient (see `add_scaled_plain`: the rounding keeps the added error below one
    /// instead of up to t).
    pub fn add_constant(&self, ct: &Ciphertext, c: i128) -> Result<Ciphertext, EvalError> {
        let mut r = ct.clone();
        self.add_constant_assign(&mut r, c)?;
        Ok(r)
    }

    /// [`Self::add_constant`] in place (no copy of the ciphertext: a linear layer adds its biases
    /// to the sums it has just made).
    pub fn add_constant_assign(&self, ct: &mut Ciphertext, c: i128) -> Result<(), EvalError> {
        self.check(ct)?;
        let lc = self.level_ctx(ct.level)?;
        let m = self.params.plain().reduce_i128(c);
        let rounding = lc.delta_rounding(m);
        let moduli = self.moduli(ct.level);
        for (i, q) in moduli.iter().enumerate() {
            let limb = ct.polys[0].limb_mut(i);
            limb[0] = q.add(limb[0], q.add(q.mul(lc.delta[i], m), rounding));
        }
        ct.low_bits[0] = 0;
        Ok(())
    }

    /// Multiplies by a small signed integer: by |w|, then negates if w < 0, so the noise grows
    /// by |w| (not by t).
    pub fn mul_scalar(&self, ct: &Ciphertext, w: i64) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let polys = mul_scalar_polys(&ct.polys, w, self.moduli(ct.level));
        Ok(Ciphertext::new(self.params.clone(), polys, ct.level))
    }

    /// Slot-wise product with a plaintext (centred lift of its coefficients).
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        self.check_pt(pt)?;
        let level = ct.level;
        let moduli = self.moduli(level);
        let tables = self.params.ring().q_tables(level);
        let n = self.params.degree();
        let t = self.params.plain_modulus();
        let mut m = RnsPoly::<Coeff>::zero(level, n);
        for (limb, q) in m.data_mut().chunks_exact_mut(n).zip(moduli) {
            for (o, &v) in limb.iter_mut().zip(pt.coeffs()) {
                *o = q.lift_centred(v, t);
            }
        }
        let m = m.into_ntt(tables);
        let polys = ct
            .polys
            .par_iter()
            .map(|p| {
                let mut x = p.clone().into_ntt(tables);
                x.mul_assign(&m, moduli);
                x.into_coeff(tables)
            })
            .collect();
        Ok(Ciphertext::new(self.params.clone(), polys, level))
    }

    /// Σ w_i·ct_i with signed integer weights. Products are accumulated lazily in separate
    /// positive and negative 128-bit accumulators and reduced once per output coefficient.
    /// Inputs may mix sizes 2 and 3; the result has the largest size. Zero weights are skipped.
    pub fn dot(&self, cts: &[&Ciphertext], weights: &[i64]) -> Result<Ciphertext, EvalError> {
        if cts.len() != weights.len() {
            return Err(EvalError::LengthMismatch {
                ciphertexts: cts.len(),
                weights: weights.len(),
            });
        }
        let first = cts.first().ok_or(EvalError::Empty)?;
        for ct in cts {
            self.check_pair(first, ct)?;
        }
        let level = first.level;
        let terms: Vec<(&[RnsPoly<Coeff>], i64)> = cts
            .iter()
            .zip(weights)
            .map(|(c, &w)| (c.polys.as_slice(), w))
            .collect();
        let polys = dot_polys(&terms, self.moduli(level), self.params.degree());
        Ok(Ciphertext::new(self.params.clone(), polys, level))
    }
}

/// `w·p` for every polynomial of `polys` (either form: the product by a scalar is the same
/// limb by limb), as [w]_q computed from |w| and negated exactly, so that the noise grows by
/// |w| only, in a single pass. BFV's and BGV's `mul_scalar`.
pub(crate) fn mul_scalar_polys<F: Form>(
    polys: &[RnsPoly<F>],
    w: i64,
    moduli: &[Modulus],
) -> Vec<RnsPoly<F>> {
    let factors: Vec<(u64, u64)> = moduli
        .iter()
        .map(|m| {
            let a = m.reduce(w.unsigned_abs());
            let f = if w < 0 { m.neg(a) } else { a };
            (f, m.shoup(f))
        })
        .collect();
    polys
        .par_iter()
        .map(|p| {
            let n = p.degree();
            let mut data = pool::take(p.data().len());
            data.resize(p.data().len(), 0);
            // Index-free loops over equal-length slices: these vectorise, where pushing
            // through `extend` does not.
            for (((dst, limb), m), &(f, fs)) in data
                .chunks_exact_mut(n)
                .zip(p.data().chunks_exact(n))
                .zip(moduli)
                .zip(&factors)
            {
                for (d, &x) in dst.iter_mut().zip(limb) {
                    *d = m.mul_shoup_lanes(x, f, fs);
                }
            }
            RnsPoly::from_raw(data, n).unwrap_or_else(|| RnsPoly::zero(moduli.len(), n))
        })
        .collect()
}

/// Σ w_i·polys_i over `moduli` with signed weights (either form: a weighted sum is the same
/// limb by limb). Products are accumulated lazily in separate positive and negative 128-bit
/// accumulators and reduced once per output coefficient, so a negative weight costs |w| in
/// noise, not t. Terms may have 2 or 3 polynomials (a missing one counts as zero); the result
/// has the largest count. Zero weights are skipped. BFV's and BGV's `dot`.
pub(crate) fn dot_polys<F: Form>(
    terms: &[(&[RnsPoly<F>], i64)],
    moduli: &[Modulus],
    n: usize,
) -> Vec<RnsPoly<F>> {
    let level = moduli.len();
    let size = terms.iter().map(|(p, _)| p.len()).max().unwrap_or(2);
    let terms: Vec<(&[RnsPoly<F>], u64, bool)> = terms
        .iter()
        .filter(|(_, w)| *w != 0)
        .map(|&(p, w)| (p, w.unsigned_abs(), w < 0))
        .collect();
    let mut polys = Vec::with_capacity(size);
    for c in 0..size {
        let mut out = RnsPoly::<F>::zero(level, n);
        out.data_mut()
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, out)| {
                let m = &moduli[i];
                let qm1 = u128::from(m.value() - 1);
                let mut pos = vec![0u128; n];
                let mut neg = vec![0u128; n];
                let mut pos_bound = 0u128;
                let mut neg_bound = 0u128;
                for &(polys, wabs, is_neg) in &terms {
                    let Some(poly) = polys.get(c) else {
                        continue;
                    };
                    let w = m.reduce(wabs);
                    if w == 0 {
                        continue;
                    }
                    let term = qm1 * u128::from(w);
                    let (acc, bound) = if is_neg {
                        (&mut neg, &mut neg_bound)
                    } else {
                        (&mut pos, &mut pos_bound)
                    };
                    if *bound > u128::MAX - term {
                        for a in acc.iter_mut() {
                            *a = u128::from(m.reduce_u128(*a));
                        }
                        *bound = qm1;
                    }
                    *bound += term;
                    let w = u128::from(w);
                    for (a, &x) in acc.iter_mut().zip(poly.limb(i)) {
                        *a += u128::from(x) * w;
                    }
                }
                for ((o, &p), &q) in out.iter_mut().zip(&pos).zip(&neg) {
                    *o = m.sub(m.reduce_u128(p), m.reduce_u128(q));
                }
            });
        polys.push(out);
    }
    polys
}

#[cfg(test)]
mod tests {
    use super::super::support::setup;
    use super::*;
    use crate::bfv::params::tests::toy;
    use crate::bfv::params::BfvParameters;

    #[test]
    fn linear_operations_match_plain_arithmetic() {
        let mut s = setup(toy(2048), 11);
        let a = s.random(30000);
        let b = s.random(30000);
        let ca = s.encrypt(&a);
        let pb = s.enc.encode(&b).unwrap();
        let cb = s.pk.encrypt(&pb, &mut s.rng.clone()).unwrap();
        let ev = s.ev.clone();
        let f = |i: usize| (i128::from(a[i]), i128::from(b[i]));
        assert_eq!(
            s.decrypt(&ev.add(&ca, &cb).unwrap()),
            s.expect(|i| f(i).0 + f(i).1)
        );
        assert_eq!(
            s.decrypt(&ev.sub(&ca, &cb).unwrap()),
            s.expect(|i| f(i).0 - f(i).1)
        );
        assert_eq!(s.decrypt(&ev.neg(&ca).unwrap()), s.expect(|i| -f(i).0));
        assert_eq!(
            s.decrypt(&ev.add_plain(&ca, &pb).unwrap()),
            s.expect(|i| f(i).0 + f(i).1)
        );
        assert_eq!(
            s.decrypt(&ev.sub_plain(&ca, &pb).unwrap()),
            s.expect(|i| f(i).0 - f(i).1)
        );
        assert_eq!(
            s.decrypt(&ev.add_constant(&ca, -123_456_789).unwrap()),
            s.expect(|i| f(i).0 - 123_456_789)
        );
        for w in [0i64, 1, -1, 7, -300, 65537 * 2 + 5, i64::MIN + 1] {
            let r = ev.mul_scalar(&ca, w).unwrap();
            assert_eq!(s.decrypt(&r), s.expect(|i| f(i).0 * i128::from(w)), "w={w}");
        }
        assert_eq!(
            s.decrypt(&ev.mul_plain(&ca, &pb).unwrap()),
            s.expect(|i| f(i).0 * f(i).1)
        );
        let mut acc = ca.clone();
        ev.add_assign(&mut acc, &cb).unwrap();
        ev.sub_assign(&mut acc, &cb).unwrap();
        assert_eq!(s.decrypt(&acc), a);
    }

    #[test]
    fn noise_grows_with_weight_magnitude_not_t() {
        let mut s = setup(toy(2048), 12);
        let a = s.random(100);
        let ca = s.encrypt(&a);
        let fresh = s.budget(&ca);
        let neg3 = s.budget(&s.ev.mul_scalar(&ca, -3).unwrap());
        let pos3 = s.budget(&s.ev.mul_scalar(&ca, 3).unwrap());
        let big = s.budget(&s.ev.mul_scalar(&ca, 1 << 20).unwrap());
        println!("fresh {fresh}, ×3 {pos3}, ×−3 {neg3}, ×2^20 {big}");
        assert!(neg3 + 3 >= fresh && neg3 == pos3);
        assert!(fresh - big >= 19 && fresh - big <= 22);
    }

    /// Plaintexts and constants are scaled by round(Q·m/t): a fresh ciphertext and one with a
    /// negative constant added keep the budget of the encryption error alone, about
    /// log2(Q/t) − 12 bits, even with a large t (floor(Q/t)·m would leave an error up to t,
    /// i.e. cost another log2 t bits).
    #[test]
    fn scaling_by_rounded_delta_keeps_fresh_noise_small() {
        let params = BfvParameters::builder()
            .degree(2048)
            .q_bits(&[60, 60])
            .special_bits(61)
            .plain_bits(40)
            .allow_insecure(true)
            .build()
            .unwrap();
        let log2_q_over_t = params.ring().log2_q(2) - (params.plain_modulus() as f64).log2();
        let mut s = setup(params, 21);
        let t = s.params.plain_modulus() as i64;
        let a: Vec<i64> = s.random(t / 2 - 1);
        let ca = s.encrypt(&a);
        let fresh = f64::from(s.budget(&ca));
        assert!(
            fresh >= log2_q_over_t - 14.0,
            "fresh {fresh} of {log2_q_over_t}"
        );
        let shifted = s.ev.add_constant(&ca, -(t as i128) / 3).unwrap();
        let after = f64::from(s.budget(&shifted));
        assert!(after + 1.0 >= fresh, "constant cost {} bits", fresh - after);
        assert_eq!(
            s.decrypt(&shifted),
            s.expect(|i| i128::from(a[i]) - i128::from(t) / 3)
        );
    }

    #[test]
    fn dot_with_negative_weights_and_mixed_sizes() {
        let mut s = setup(toy(2048), 13);
        let k = 20;
        let vals: Vec<Vec<i64>> = (0..k).map(|_| s.random(50)).collect();
        let cts: Vec<Ciphertext> = vals.iter().map(|v| s.encrypt(v)).collect();
        // Make a few of them size 3 by squaring.
        let mut mixed = cts.clone();
        for i in [1usize, 5, 9] {
            mixed[i] = s.ev.square(&cts[i]).unwrap();
        }
        let weights: Vec<i64> = (0..k as i64)
            .map(|i| (i - 10) * 37 + if i % 3 == 0 { 0 } else { 1 })
            .collect();
        let refs: Vec<&Ciphertext> = mixed.iter().collect();
        let out = s.ev.dot(&refs, &weights).unwrap();
        assert_eq!(out.size(), 3);
        let expect = s.expect(|j| {
            (0..k)
                .map(|i| {
                    let v = i128::from(vals[i][j]);
                    let v = if [1, 5, 9].contains(&i) { v * v } else { v };
                    v * i128::from(weights[i])
                })
                .sum()
        });
        assert_eq!(s.decrypt(&out), expect);
        let out2 = s.ev.relinearize(&out, &s.rk).unwrap();
        assert_eq!(s.decrypt(&out2), expect);
        // Huge weights force intermediate folding of the accumulators.
        let big: Vec<i64> = (0..k)
            .map(|i| if i % 2 == 0 { i64::MAX } else { i64::MIN + 1 })
            .collect();
        let refs2: Vec<&Ciphertext> = cts.iter().collect();
        let out = s.ev.dot(&refs2, &big).unwrap();
        let expect = s.expect(|j| {
            (0..k)
                .map(|i| i128::from(vals[i][j]) * i128::from(big[i]))
                .sum()
        });
        assert_eq!(s.decrypt(&out), expect);
        assert!(matches!(
            s.ev.dot(&refs2, &big[1..]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert_eq!(s.ev.dot(&[], &[]).unwrap_err(), EvalError::Empty);
    }
}
