//! Ciphertext multiplication by the HPS method: exact extension of both operands from Q to
//! Q ∪ P, the tensor product in NTT form, then the t/Q scaling computed in floating point
//! and fixed point so that no big integer is touched per coefficient.

use super::{EvalError, Evaluator};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::params::LevelContext;
use crate::math::{for_each_block, BlockScratch, Coeff, Modulus, Ntt, NttTable, RnsPoly, BLOCK};
use rayon::prelude::*;

impl Evaluator {
    /// Extends a coefficient-form polynomial over Q_ℓ exactly (centred) to Q_ℓ ∪ P and
    /// transforms it.
    fn extend_to_qp(
        &self,
        c: &RnsPoly<Coeff>,
        lc: &LevelContext,
        level: usize,
        tables: &[&NttTable],
    ) -> RnsPoly<Ntt> {
        let n = self.params.degree();
        let k = lc.aux_count;
        let mut x = RnsPoly::<Coeff>::zero(level + k, n);
        let (qpart, ppart) = x.data_mut().split_at_mut(level * n);
        qpart.copy_from_slice(c.data());
        lc.q_to_aux.convert(c.data(), ppart, n);
        x.into_ntt(tables)
    }

    /// round(t/Q·x) mod Q_ℓ for x given over Q_ℓ ∪ P (coefficient form, |x| < Q·P/2^5).
    ///
    /// With M = Q·P and y_r = [x_r·(M/r)^{-1}]_r for every prime r, the centred x equals
    /// Σ_r y_r·M/r − K·M where K = round(Σ_r y_r/r) (exact in floating point because |x|/M is
    /// tiny). Then t·x/Q = Σ_i y_i·tP/q_i + Σ_j y_j·tP/p_j − K·tP, where only the first sum has
    /// fractional parts θ_i: round(t·x/Q) = Σ_i y_i·⌊tP/q_i⌋ + Σ_j y_j·(tP/p_j) − K·tP +
    /// round(Σ_i y_i·θ_i), evaluated modulo each q_s with precomputed residues and θ_i in 0.128
    /// fixed point. No big integer on this path.
    fn scale_down(&self, x: &RnsPoly<Coeff>, lc: &LevelContext, level: usize) -> RnsPoly<Coeff> {
        let n = self.params.degree();
        let qs = self.moduli(level);
        let all: Vec<Modulus> = qs
            .iter()
            .chain(&self.params.aux()[..lc.aux_count])
            .copied()
            .collect();
        let width = all.len();
        let ins: Vec<&[u64]> = x.data().chunks_exact(n).collect();
        let mut out = RnsPoly::<Coeff>::zero(level, n);
        for_each_block(out.data_mut(), n, level, |base, outs| {
            let len = outs.first().map_or(0, |o| o.len());
            let mut sc = BlockScratch::new(width);
            sc.load(
                &ins,
                base,
                len,
                &all,
                &lc.hps_inv_punct,
                &lc.hps_inv_punct_shoup,
            );
            sc.count_overflows(&lc.hps_inv_f64, len);
            // round(Σ_i y_i·θ_i): integer parts plus the rounded sum of the 64-bit fractions.
            let mut rounded = [0u128; BLOCK];
            let mut frac = [0u128; BLOCK];
            for (i, (&th, &tl)) in lc.hps_theta_hi.iter().zip(&lc.hps_theta_lo).enumerate() {
                let y = &sc.y[i * BLOCK..i * BLOCK + len];
                for ((r, f), &y) in rounded[..len].iter_mut().zip(&mut frac[..len]).zip(y) {
                    let hi = u128::from(y) * u128::from(th);
                    *r += hi >> 64;
                    *f += u128::from(hi as u64) + ((u128::from(y) * u128::from(tl)) >> 64);
                }
            }
            for (r, &f) in rounded[..len].iter_mut().zip(&frac[..len]) {
                *r += (f + (1u128 << 63)) >> 64;
            }
            for (si, o) in outs.iter_mut().enumerate() {
                let q = &qs[si];
                let row = &lc.hps_coeff[si * width..(si + 1) * width];
                let ktp = &lc.hps_ktp[si * (width + 1)..(si + 1) * (width + 1)];
                sc.combine(
                    row,
                    q,
                    len,
                    Some(&rounded),
                    |kk, r| q.sub(r, ktp[sc.v[kk]]),
                    o,
                );
            }
        });
        out
    }

    /// The tensor product of `a` with `b` (with itself when `b` is `None`), scaled by t/Q: the
    /// common core of [`Self::mul`] and [`Self::square`].
    fn tensor(&self, a: &Ciphertext, b: Option<&Ciphertext>) -> Result<Ciphertext, EvalError> {
        let level = a.level;
        let lc = self.level_ctx(level)?;
        let n = self.params.degree();
        let ring = self.params.ring();
        let tables: Vec<&NttTable> = ring
            .q_tables(level)
            .iter()
            .chain(&self.params.aux_tables()[..lc.aux_count])
            .collect();
        let moduli: Vec<Modulus> = self
            .moduli(level)
            .iter()
            .chain(&self.params.aux()[..lc.aux_count])
            .copied()
            .collect();
        let mut inputs: Vec<&RnsPoly<Coeff>> = a.polys.iter().collect();
        if let Some(b) = b {
            inputs.extend(b.polys.iter());
        }
        let mut ext: Vec<RnsPoly<Ntt>> = inputs
            .par_iter()
            .map(|p| self.extend_to_qp(p, lc, level, &tables))
            .collect();
        // The products overwrite the extended inputs coefficient by coefficient, so the only
        // new buffer is the cross term of a square.
        let parts: Vec<RnsPoly<Ntt>> = match ext.as_mut_slice() {
            [x0, x1] => {
                let cross = square_in_place(x0, x1, &moduli, n);
                let x1 = std::mem::replace(x1, RnsPoly::zero(0, n));
                let x0 = std::mem::replace(x0, RnsPoly::zero(0, n));
                vec![x0, cross, x1]
            }
            [x0, x1, y0, y1] => {
                multiply_in_place(x0, x1, y0, y1, &moduli, n);
                ext.truncate(3);
                ext
            }
            _ => {
                return Err(EvalError::UnsupportedSize {
                    size: a.size(),
                    max: 2,
                })
            }
        };
        let polys: Vec<RnsPoly<Coeff>> = parts
            .into_par_iter()
            .map(|d| self.scale_down(&d.into_coeff(&tables), lc, level))
            .collect();
        Ok(Ciphertext::new(self.params.clone(), polys, level))
    }

    /// Ciphertext product (both of size 2, same level); the result has size 3 and is not
    /// relinearised. HPS: exact extension to Q∪P, tensor in NTT form, t/Q scaling in P and
    /// conversion back to Q.
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check_pair(a, b)?;
        for c in [a, b] {
            if c.size() != 2 {
                return Err(EvalError::UnsupportedSize {
                    size: c.size(),
                    max: 2,
                });
            }
        }
        self.tensor(a, Some(b))
    }

    /// `a²` (size 2 in, size 3 out), cheaper than `mul(a, a)`.
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check(a)?;
        if a.size() != 2 {
            return Err(EvalError::UnsupportedSize {
                size: a.size(),
                max: 2,
            });
        }
        self.tensor(a, None)
    }
}

/// (x_0, x_1)² in NTT form over Q_ℓ ∪ P: x_0 becomes x_0², x_1 becomes x_1², and the cross term
/// 2·x_0·x_1, the only new buffer, is returned.
fn square_in_place(
    x0: &mut RnsPoly<Ntt>,
    x1: &mut RnsPoly<Ntt>,
    moduli: &[Modulus],
    n: usize,
) -> RnsPoly<Ntt> {
    let mut cross = RnsPoly::<Ntt>::zero(moduli.len(), n);
    x0.data_mut()
        .par_chunks_mut(n)
        .zip(x1.data_mut().par_chunks_mut(n))
        .zip(cross.data_mut().par_chunks_mut(n))
        .zip(moduli.par_iter())
        .for_each(|(((a, b), c), m)| {
            for ((a, b), c) in a.iter_mut().zip(b.iter_mut()).zip(c.iter_mut()) {
                let (u, v) = (*a, *b);
                *a = m.mul(u, u);
                let cross = m.mul(u, v);
                *c = m.add(cross, cross);
                *b = m.mul(v, v);
            }
        });
    cross
}

/// (x_0, x_1)·(y_0, y_1) in NTT form over Q_ℓ ∪ P, written over the inputs: x_0 becomes
/// x_0·y_0, x_1 becomes x_0·y_1 + x_1·y_0 and y_0 becomes x_1·y_1.
fn multiply_in_place(
    x0: &mut RnsPoly<Ntt>,
    x1: &mut RnsPoly<Ntt>,
    y0: &mut RnsPoly<Ntt>,
    y1: &RnsPoly<Ntt>,
    moduli: &[Modulus],
    n: usize,
) {
    x0.data_mut()
        .par_chunks_mut(n)
        .zip(x1.data_mut().par_chunks_mut(n))
        .zip(y0.data_mut().par_chunks_mut(n))
        .zip(y1.data().par_chunks(n))
        .zip(moduli.par_iter())
        .for_each(|((((a0, a1), b0), b1), m)| {
            for (((a0, a1), b0), &v1) in a0.iter_mut().zip(a1.iter_mut()).zip(b0.iter_mut()).zip(b1)
            {
                let (u0, u1, v0) = (*a0, *a1, *b0);
                *a0 = m.mul(u0, v0);
                *a1 = m
                    .reduce_u128(u128::from(u0) * u128::from(v1) + u128::from(u1) * u128::from(v0));
                *b0 = m.mul(u1, v1);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::super::support::setup;
    use super::*;
    use crate::bfv::params::tests::toy;

    #[test]
    fn mul_square_and_relinearise() {
        let mut s = setup(toy(4096), 14);
        let a = s.random(250);
        let b = s.random(250);
        let ca = s.encrypt(&a);
        let cb = s.encrypt(&b);
        let fresh = s.budget(&ca);
        let prod = s.ev.mul(&ca, &cb).unwrap();
        assert_eq!(prod.size(), 3);
        let expect = s.expect(|i| i128::from(a[i]) * i128::from(b[i]));
        assert_eq!(s.decrypt(&prod), expect);
        let sq = s.ev.square(&ca).unwrap();
        let expect_sq = s.expect(|i| i128::from(a[i]) * i128::from(a[i]));
        assert_eq!(s.decrypt(&sq), expect_sq);
        assert_eq!(s.decrypt(&s.ev.mul(&ca, &ca).unwrap()), expect_sq);
        let relin = s.ev.relinearize(&prod, &s.rk).unwrap();
        assert_eq!(relin.size(), 2);
        assert_eq!(s.decrypt(&relin), expect);
        println!(
            "n=4096 t=65537 logQ=150: fresh {fresh}, after mul {}, after relin {}",
            s.budget(&prod),
            s.budget(&relin)
        );
        assert!(s.budget(&relin) + 1 >= s.budget(&prod));
        assert!(matches!(
            s.ev.mul(&prod, &ca),
            Err(EvalError::UnsupportedSize { .. })
        ));
    }
}
