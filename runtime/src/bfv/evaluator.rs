//! Homomorphic operations: linear algebra on ciphertexts (any size), HPS multiplication,
//! hybrid relinearisation and modulus switching. Everything is `Send + Sync` and free of
//! global state, so many operations can run in parallel.

use super::ciphertext::Ciphertext;
use super::encoding::{add_scaled_plain, Plaintext};
pub use super::error::EvalError;
use super::keys::RelinKey;
use super::params::{BfvParameters, LevelContext};
use crate::math::{
    for_each_block, pool, BlockScratch, Coeff, Modulus, Ntt, NttTable, RnsPoly, BLOCK,
};
use rayon::prelude::*;
use std::sync::Arc;

/// The homomorphic evaluator for one parameter set.
#[derive(Clone, Debug)]
pub struct Evaluator {
    params: Arc<BfvParameters>,
}

/// Divides x (over `moduli` plus one more prime `last`, coefficient form) by `last` with
/// rounding towards the centred residue: (x_i − [x_last]_centred)·last^{-1} mod q_i, plus
/// `base` when given.
fn mod_down_last_plus(
    x: &RnsPoly<Coeff>,
    base: Option<&RnsPoly<Coeff>>,
    moduli: &[Modulus],
    last: u64,
    inv: &[u64],
) -> RnsPoly<Coeff> {
    let n = x.degree();
    let level = moduli.len();
    let tail = x.limb(level);
    let mut out = RnsPoly::<Coeff>::zero(level, n);
    out.data_mut()
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(i, o)| {
            let (m, w) = (&moduli[i], inv[i]);
            let ws = m.shoup(w);
            if m.lifts_without_reduction(last) {
                for ((o, &a), &r) in o.iter_mut().zip(x.limb(i)).zip(tail) {
                    *o = m.mul_shoup_lanes(m.sub(a, m.lift_centred_small(r, last)), w, ws);
                }
            } else {
                for ((o, &a), &r) in o.iter_mut().zip(x.limb(i)).zip(tail) {
                    *o = m.mul_shoup(m.sub(a, m.lift_centred(r, last)), w, ws);
                }
            }
            if let Some(b) = base {
                for (o, &c) in o.iter_mut().zip(b.limb(i)) {
                    *o = m.add(*o, c);
                }
            }
        });
    out
}

fn mod_down_last(x: &RnsPoly<Coeff>, moduli: &[Modulus], last: u64, inv: &[u64]) -> RnsPoly<Coeff> {
    mod_down_last_plus(x, None, moduli, last, inv)
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &Arc<BfvParameters>) -> Self {
        Evaluator {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    fn check(&self, ct: &Ciphertext) -> Result<(), EvalError> {
        if ct.fingerprint() != self.params.fingerprint() {
            return Err(EvalError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: ct.fingerprint(),
            });
        }
        if ct.size() < 2 || ct.size() > 3 {
            return Err(EvalError::UnsupportedSize {
                size: ct.size(),
                max: 3,
            });
        }
        Ok(())
    }

    fn check_pt(&self, pt: &Plaintext) -> Result<(), EvalError> {
        if pt.fingerprint() != self.params.fingerprint() {
            return Err(EvalError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: pt.fingerprint(),
            });
        }
        Ok(())
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<(), EvalError> {
        self.check(a)?;
        self.check(b)?;
        if a.level() != b.level() {
            return Err(EvalError::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        Ok(())
    }

    fn moduli(&self, level: usize) -> &[Modulus] {
        &self.params.ring().q()[..level]
    }

    fn level_ctx(&self, level: usize) -> Result<&LevelContext, EvalError> {
        self.params.level(level).ok_or(EvalError::BadLevel {
            level,
            max: self.params.max_level(),
        })
    }

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
        Ok(r)
    }

    /// `ct + pt` (slot-wise).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        self.check_pt(pt)?;
        let mut r = ct.clone();
        add_scaled_plain(&self.params, &mut r.polys[0], pt, ct.level, false);
        Ok(r)
    }

    /// `ct − pt` (slot-wise).
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        self.check_pt(pt)?;
        let mut r = ct.clone();
        add_scaled_plain(&self.params, &mut r.polys[0], pt, ct.level, true);
        Ok(r)
    }

    /// Adds the integer `c` (mod t) to every slot: round(Q_ℓ·[c]_t/t) on the constant
    /// coefficient (see [`add_scaled_plain`]: the rounding keeps the added error below one
    /// instead of up to t).
    pub fn add_constant(&self, ct: &Ciphertext, c: i128) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let lc = self.level_ctx(ct.level)?;
        let m = self.params.plain().reduce_i128(c);
        let rounding = lc.delta_rounding(m);
        let mut r = ct.clone();
        let moduli = self.moduli(ct.level);
        for (i, q) in moduli.iter().enumerate() {
            let limb = r.polys[0].limb_mut(i);
            limb[0] = q.add(limb[0], q.add(q.mul(lc.delta[i], m), rounding));
        }
        Ok(r)
    }

    /// Multiplies by a small signed integer: by |w|, then negates if w < 0, so the noise grows
    /// by |w| (not by t).
    pub fn mul_scalar(&self, ct: &Ciphertext, w: i64) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let moduli = self.moduli(ct.level);
        let n = self.params.degree();
        // [w]_q computed from |w| and negated exactly: the product is the same residue as
        // |w|·ct negated, so the noise grows by |w| only, in a single pass.
        let factors: Vec<(u64, u64)> = moduli
            .iter()
            .map(|m| {
                let a = m.reduce(w.unsigned_abs());
                let f = if w < 0 { m.neg(a) } else { a };
                (f, m.shoup(f))
            })
            .collect();
        let polys = ct
            .polys
            .par_iter()
            .map(|p| {
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
            .collect();
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
        let size = cts.iter().map(|c| c.size()).max().unwrap_or(2);
        let n = self.params.degree();
        let moduli = self.moduli(level);
        let terms: Vec<(&Ciphertext, u64, bool)> = cts
            .iter()
            .zip(weights)
            .filter(|(_, &w)| w != 0)
            .map(|(c, &w)| (*c, w.unsigned_abs(), w < 0))
            .collect();
        let mut polys = Vec::with_capacity(size);
        for c in 0..size {
            let mut out = RnsPoly::<Coeff>::zero(level, n);
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
                    for &(ct, wabs, is_neg) in &terms {
                        let Some(poly) = ct.polys.get(c) else {
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
        Ok(Ciphertext::new(self.params.clone(), polys, level))
    }

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
                let x1 = std::mem::replace(x1, RnsPoly::zero(0, n));
                let x0 = std::mem::replace(x0, RnsPoly::zero(0, n));
                vec![x0, cross, x1]
            }
            [x0, x1, y0, y1] => {
                x0.data_mut()
                    .par_chunks_mut(n)
                    .zip(x1.data_mut().par_chunks_mut(n))
                    .zip(y0.data_mut().par_chunks_mut(n))
                    .zip(y1.data().par_chunks(n))
                    .zip(moduli.par_iter())
                    .for_each(|((((a0, a1), b0), b1), m)| {
                        for (((a0, a1), b0), &v1) in
                            a0.iter_mut().zip(a1.iter_mut()).zip(b0.iter_mut()).zip(b1)
                        {
                            let (u0, u1, v0) = (*a0, *a1, *b0);
                            *a0 = m.mul(u0, v0);
                            *a1 = m.reduce_u128(
                                u128::from(u0) * u128::from(v1) + u128::from(u1) * u128::from(v0),
                            );
                            *b0 = m.mul(u1, v1);
                        }
                    });
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

    /// Turns a size-3 ciphertext into a size-2 one with the relinearisation key (hybrid key
    /// switching: one RNS digit per q prime, special prime p). Size-2 inputs are returned as is.
    pub fn relinearize(&self, ct: &Ciphertext, rk: &RelinKey) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let ring = self.params.ring();
        if rk.ring_fingerprint() != ring.fingerprint() {
            return Err(EvalError::KeyMismatch {
                expected: ring.fingerprint(),
                found: rk.ring_fingerprint(),
            });
        }
        if ct.size() == 2 {
            return Ok(ct.clone());
        }
        let level = ct.level;
        let n = self.params.degree();
        let special_idx = ring.max_level();
        let key_idx: Vec<usize> = (0..level).chain([special_idx]).collect();
        let moduli: Vec<Modulus> = key_idx.iter().map(|&i| ring.key_moduli()[i]).collect();
        let tables: Vec<&NttTable> = key_idx.iter().map(|&i| &ring.key_tables()[i]).collect();
        let c2 = &ct.polys[2];
        // Digit j is the residue of c_2 modulo q_j, lifted (centred) to every key prime.
        let digits: Vec<RnsPoly<Ntt>> = (0..level)
            .into_par_iter()
            .map(|j| {
                let src = c2.limb(j);
                let qj = moduli[j].value();
                let mut data = pool::take((level + 1) * n);
                for (mi, m) in moduli.iter().enumerate() {
                    if mi == j {
                        data.extend_from_slice(src);
                    } else if m.lifts_without_reduction(qj) {
                        data.extend(src.iter().map(|&x| m.lift_centred_small(x, qj)));
                    } else {
                        data.extend(src.iter().map(|&x| m.lift_centred(x, qj)));
                    }
                }
                RnsPoly::<Coeff>::from_raw(data, n)
                    .unwrap_or_else(|| RnsPoly::zero(level + 1, n))
                    .into_ntt(&tables)
            })
            .collect();
        // Σ_j digit_j·(b_j, a_j), accumulated in 128 bits and reduced once: primes have at most
        // 61 bits and there are at most 20 digits, so the sum stays below 2^127.
        let mut acc0 = RnsPoly::<Ntt>::zero(level + 1, n);
        let mut acc1 = RnsPoly::<Ntt>::zero(level + 1, n);
        acc0.data_mut()
            .par_chunks_mut(n)
            .zip(acc1.data_mut().par_chunks_mut(n))
            .enumerate()
            .for_each(|(mi, (o0, o1))| {
                let m = &moduli[mi];
                let kl = key_idx[mi];
                for (blk, (o0, o1)) in o0.chunks_mut(BLOCK).zip(o1.chunks_mut(BLOCK)).enumerate() {
                    let range = blk * BLOCK..blk * BLOCK + o0.len();
                    let mut s0 = [0u128; BLOCK];
                    let mut s1 = [0u128; BLOCK];
                    let part = |j: usize| {
                        let d = &digits[j].limb(mi)[range.clone()];
                        let b = &rk.b[j].limb(kl)[range.clone()];
                        let a = &rk.a[j].limb(kl)[range.clone()];
                        d.iter().zip(b.iter().zip(a))
                    };
                    let mul = |x: u64, y: u64| u128::from(x) * u128::from(y);
                    // Up to three digits summed in registers per pass over the accumulators.
                    let mut j = 0;
                    while j < level {
                        let sums = s0.iter_mut().zip(s1.iter_mut());
                        match level - j {
                            1 => {
                                for ((s0, s1), (&d, (&b, &a))) in sums.zip(part(j)) {
                                    *s0 += mul(d, b);
                                    *s1 += mul(d, a);
                                }
                                j += 1;
                            }
                            2 => {
                                for ((s0, s1), ((&d0, (&b0, &a0)), (&d1, (&b1, &a1)))) in
                                    sums.zip(part(j).zip(part(j + 1)))
                                {
                                    *s0 += mul(d0, b0) + mul(d1, b1);
                                    *s1 += mul(d0, a0) + mul(d1, a1);
                                }
                                j += 2;
                            }
                            _ => {
                                for (
                                    (s0, s1),
                                    (((&d0, (&b0, &a0)), (&d1, (&b1, &a1))), (&d2, (&b2, &a2))),
                                ) in sums.zip(part(j).zip(part(j + 1)).zip(part(j + 2)))
                                {
                                    *s0 += mul(d0, b0) + mul(d1, b1) + mul(d2, b2);
                                    *s1 += mul(d0, a0) + mul(d1, a1) + mul(d2, a2);
                                }
                                j += 3;
                            }
                        }
                    }
                    for (((o0, o1), &s0), &s1) in o0.iter_mut().zip(o1.iter_mut()).zip(&s0).zip(&s1)
                    {
                        *o0 = m.reduce_u128(s0);
                        *o1 = m.reduce_u128(s1);
                    }
                }
            });
        let (k0, k1) = rayon::join(|| acc0.into_coeff(&tables), || acc1.into_coeff(&tables));
        let qs = self.moduli(level);
        let p = ring.special().value();
        let inv = &ring.special_inv_mod_q()[..level];
        let (c0, c1) = rayon::join(
            || mod_down_last_plus(&k0, Some(&ct.polys[0]), qs, p, inv),
            || mod_down_last_plus(&k1, Some(&ct.polys[1]), qs, p, inv),
        );
        Ok(Ciphertext::new(self.params.clone(), vec![c0, c1], level))
    }

    /// Drops the last q prime, dividing by it with rounding (noise shrinks proportionally).
    pub fn mod_switch_to_next(&self, ct: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let level = ct.level;
        if level < 2 {
            return Err(EvalError::CannotSwitch {
                from: level,
                to: level.saturating_sub(1),
            });
        }
        let lc = self.level_ctx(level)?;
        let qs = self.moduli(level - 1);
        let last = self.params.ring().q()[level - 1].value();
        let polys = ct
            .polys
            .par_iter()
            .map(|p| mod_down_last(p, qs, last, &lc.ms_inv_last))
            .collect();
        Ok(Ciphertext::new(self.params.clone(), polys, level - 1))
    }

    /// Switches down to `level` (1 ≤ level ≤ current level).
    pub fn mod_switch_to_level(
        &self,
        ct: &Ciphertext,
        level: usize,
    ) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        if level == 0 || level > ct.level {
            return Err(EvalError::CannotSwitch {
                from: ct.level,
                to: level,
            });
        }
        let mut cur = ct.clone();
        while cur.level > level {
            cur = self.mod_switch_to_next(&cur)?;
        }
        Ok(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::keys::{PublicKey, SecretKey};
    use crate::bfv::params::tests::toy;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    struct Setup {
        params: Arc<BfvParameters>,
        sk: SecretKey,
        pk: PublicKey,
        rk: RelinKey,
        enc: Encoder,
        ev: Evaluator,
        rng: ChaCha20Rng,
    }

    fn setup(params: Arc<BfvParameters>, seed: u64) -> Setup {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        Setup {
            enc: Encoder::new(&params),
            ev: Evaluator::new(&params),
            params,
            sk,
            pk,
            rk,
            rng,
        }
    }

    impl Setup {
        fn random(&mut self, bound: i64) -> Vec<i64> {
            let n = self.params.degree();
            (0..n).map(|_| self.rng.gen_range(-bound..=bound)).collect()
        }
        fn encrypt(&mut self, v: &[i64]) -> Ciphertext {
            let pt = self.enc.encode(v).unwrap();
            self.sk.encrypt(&pt, &mut self.rng).unwrap()
        }
        fn decrypt(&self, ct: &Ciphertext) -> Vec<i64> {
            self.enc.decode(&self.sk.decrypt(ct).unwrap()).unwrap()
        }
        fn budget(&self, ct: &Ciphertext) -> u32 {
            self.sk.noise_budget(ct).unwrap()
        }
        fn modt(&self, v: i128) -> i64 {
            let t = i128::from(self.params.plain_modulus());
            let r = v.rem_euclid(t);
            (if r > t / 2 { r - t } else { r }) as i64
        }
        fn expect(&self, f: impl Fn(usize) -> i128) -> Vec<i64> {
            (0..self.params.degree()).map(|i| self.modt(f(i))).collect()
        }
    }

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<BfvParameters>();
        check::<Ciphertext>();
        check::<Plaintext>();
        check::<Evaluator>();
        check::<Encoder>();
        check::<SecretKey>();
        check::<PublicKey>();
        check::<RelinKey>();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]
        /// Every evaluator operation, slot by slot, against the same computation on plain
        /// integers reduced mod t (toy parameters, n=1024).
        #[test]
        fn every_operation_matches_plain_arithmetic_mod_t(
            seed in any::<u64>(),
            w in any::<i64>(),
            small in -2000i64..2000,
            c in any::<i64>(),
        ) {
            let mut s = setup(toy(1024), seed);
            let a = s.random(i64::MAX / 4);
            let b = s.random(40_000);
            let ca = s.encrypt(&a);
            let pb = s.enc.encode(&b).unwrap();
            let cb = s.pk.encrypt(&pb, &mut s.rng.clone()).unwrap();
            prop_assert_eq!(s.decrypt(&ca), s.expect(|i| i128::from(a[i])));
            prop_assert_eq!(s.decrypt(&cb), s.expect(|i| i128::from(b[i])));
            let ev = s.ev.clone();
            let (x, y) = (|i: usize| i128::from(a[i]), |i: usize| i128::from(b[i]));
            let cases: Vec<(&str, Ciphertext, Vec<i64>)> = vec![
                ("add", ev.add(&ca, &cb).unwrap(), s.expect(|i| x(i) + y(i))),
                ("sub", ev.sub(&ca, &cb).unwrap(), s.expect(|i| x(i) - y(i))),
                ("neg", ev.neg(&ca).unwrap(), s.expect(|i| -x(i))),
                ("add_plain", ev.add_plain(&ca, &pb).unwrap(), s.expect(|i| x(i) + y(i))),
                ("sub_plain", ev.sub_plain(&ca, &pb).unwrap(), s.expect(|i| x(i) - y(i))),
                (
                    "add_constant",
                    ev.add_constant(&ca, i128::from(c)).unwrap(),
                    s.expect(|i| x(i) + i128::from(c)),
                ),
                ("mul_scalar", ev.mul_scalar(&ca, w).unwrap(), s.expect(|i| x(i) * i128::from(w))),
                ("mul_plain", ev.mul_plain(&ca, &pb).unwrap(), s.expect(|i| x(i) * y(i))),
                (
                    "dot",
                    ev.dot(&[&ca, &cb, &ca], &[small, -3, w]).unwrap(),
                    s.expect(|i| x(i) * i128::from(small) - 3 * y(i) + x(i) * i128::from(w)),
                ),
                ("mul", ev.mul(&ca, &cb).unwrap(), s.expect(|i| x(i) * y(i))),
                ("square", ev.square(&cb).unwrap(), s.expect(|i| y(i) * y(i))),
                (
                    "mul+relinearize",
                    ev.relinearize(&ev.mul(&ca, &cb).unwrap(), &s.rk).unwrap(),
                    s.expect(|i| x(i) * y(i)),
                ),
                (
                    "mul+mod_switch",
                    ev.mod_switch_to_next(&ev.mul(&ca, &cb).unwrap()).unwrap(),
                    s.expect(|i| x(i) * y(i)),
                ),
            ];
            for (name, ct, expect) in cases {
                prop_assert_eq!(s.decrypt(&ct), expect, "{}", name);
            }
        }
    }

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

    #[test]
    fn depth_three_circuit() {
        let params = BfvParameters::builder()
            .degree(4096)
            .q_bits(&[55, 55, 55, 55])
            .special_bits(56)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut s = setup(params, 15);
        let a = s.random(5);
        let ca = s.encrypt(&a);
        // ((a²)² · a)² + 3a: depth 3 with relinearisation after each product.
        let rk = &s.rk;
        let x2 = s.ev.relinearize(&s.ev.square(&ca).unwrap(), rk).unwrap();
        let x4 = s.ev.relinearize(&s.ev.square(&x2).unwrap(), rk).unwrap();
        let x5 = s.ev.relinearize(&s.ev.mul(&x4, &ca).unwrap(), rk).unwrap();
        let x10 = s.ev.relinearize(&s.ev.square(&x5).unwrap(), rk).unwrap();
        let out = s.ev.add(&x10, &s.ev.mul_scalar(&ca, 3).unwrap()).unwrap();
        let expect = s.expect(|i| i128::from(a[i]).pow(10) + 3 * i128::from(a[i]));
        println!(
            "depth-3 budgets: x2 {} x4 {} x5 {} x10 {}",
            s.budget(&x2),
            s.budget(&x4),
            s.budget(&x5),
            s.budget(&x10)
        );
        assert!(s.budget(&out) > 0);
        assert_eq!(s.decrypt(&out), expect);
    }

    #[test]
    fn deferred_relinearisation() {
        let mut s = setup(toy(2048), 16);
        let vals: Vec<Vec<i64>> = (0..6).map(|_| s.random(100)).collect();
        let sq: Vec<Ciphertext> = vals
            .iter()
            .map(|v| {
                let c = s.encrypt(v);
                s.ev.square(&c).unwrap()
            })
            .collect();
        let w = [3i64, -2, 0, 5, -7, 1];
        let refs: Vec<&Ciphertext> = sq.iter().collect();
        let d = s.ev.dot(&refs, &w).unwrap();
        let d = s.ev.add_constant(&d, -17).unwrap();
        let r = s.ev.relinearize(&d, &s.rk).unwrap();
        let expect = s.expect(|j| {
            (0..6)
                .map(|i| i128::from(vals[i][j]).pow(2) * i128::from(w[i]))
                .sum::<i128>()
                - 17
        });
        assert_eq!(s.decrypt(&d), expect);
        assert_eq!(s.decrypt(&r), expect);
    }

    #[test]
    fn modulus_switching_keeps_the_message() {
        let mut s = setup(toy(2048), 17);
        let a = s.random(1000);
        let ca = s.encrypt(&a);
        let sq = s.ev.relinearize(&s.ev.square(&ca).unwrap(), &s.rk).unwrap();
        let expect = s.expect(|i| i128::from(a[i]).pow(2));
        let mut cur = sq.clone();
        println!("level 3: budget {}", s.budget(&cur));
        for level in [2usize, 1] {
            cur = s.ev.mod_switch_to_next(&cur).unwrap();
            assert_eq!(cur.level(), level);
            println!("level {level}: budget {}", s.budget(&cur));
            assert_eq!(s.decrypt(&cur), expect);
        }
        assert!(matches!(
            s.ev.mod_switch_to_next(&cur),
            Err(EvalError::CannotSwitch { .. })
        ));
        // Operations work at lower levels too, where multiplication extends to fewer
        // auxiliary primes.
        let aux_at = |level| s.params.level(level).map(|lc| lc.aux_count);
        assert!(aux_at(2) < aux_at(3), "{:?} {:?}", aux_at(2), aux_at(3));
        let low = s.ev.mod_switch_to_level(&ca, 2).unwrap();
        let low_sq =
            s.ev.relinearize(&s.ev.square(&low).unwrap(), &s.rk)
                .unwrap();
        assert_eq!(low_sq.level(), 2);
        assert_eq!(s.decrypt(&low_sq), expect);
        let low_size3 =
            s.ev.mod_switch_to_level(&s.ev.square(&ca).unwrap(), 1)
                .unwrap();
        assert_eq!(s.decrypt(&low_size3), expect);
        assert!(matches!(
            s.ev.add(&ca, &low),
            Err(EvalError::LevelMismatch { left: 3, right: 2 })
        ));
        assert!(matches!(
            s.ev.mod_switch_to_level(&low, 3),
            Err(EvalError::CannotSwitch { .. })
        ));
    }

    #[test]
    fn keys_are_shared_across_plaintext_moduli() {
        let mut s = setup(toy(2048), 18);
        let p2 = s.params.with_plain_modulus(12289).unwrap();
        let enc2 = Encoder::new(&p2);
        let ev2 = Evaluator::new(&p2);
        let v: Vec<i64> = (0..2048).map(|i| i % 100 - 50).collect();
        let ct = s.pk.encrypt(&enc2.encode(&v).unwrap(), &mut s.rng).unwrap();
        let sq = ev2.relinearize(&ev2.square(&ct).unwrap(), &s.rk).unwrap();
        let out = enc2.decode(&s.sk.decrypt(&sq).unwrap()).unwrap();
        let expect: Vec<i64> = v.iter().map(|x| x * x).collect();
        assert_eq!(out, expect);
        // Mixing parameter sets in one operation is refused.
        let ct1 = s.encrypt(&v);
        assert!(matches!(
            s.ev.add(&ct1, &ct),
            Err(EvalError::ParamsMismatch { .. })
        ));
        // A key from another ring is refused.
        let other = BfvParameters::builder()
            .degree(2048)
            .q_bits(&[50, 50])
            .special_bits(51)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk2 = SecretKey::generate(&other, &mut rng);
        let rk2 = RelinKey::new(&sk2, &mut rng);
        assert!(matches!(
            sk2.decrypt(&ct1),
            Err(EvalError::KeyMismatch { .. })
        ));
        assert!(matches!(
            s.ev.relinearize(&s.ev.square(&ct1).unwrap(), &rk2),
            Err(EvalError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn secure_n8192_square_relin_dot() {
        let params = BfvParameters::builder()
            .degree(8192)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_bits(20)
            .build()
            .unwrap();
        assert!(params.meets_security());
        let mut s = setup(params, 19);
        let xs: Vec<Vec<i64>> = (0..4).map(|_| s.random(300)).collect();
        let cts: Vec<Ciphertext> = xs
            .iter()
            .map(|v| {
                let pt = s.enc.encode(v).unwrap();
                s.pk.encrypt(&pt, &mut s.rng).unwrap()
            })
            .collect();
        let fresh = s.budget(&cts[0]);
        let sq: Vec<Ciphertext> = cts
            .iter()
            .map(|c| s.ev.relinearize(&s.ev.square(c).unwrap(), &s.rk).unwrap())
            .collect();
        let w = [5i64, -3, 2, -1];
        let refs: Vec<&Ciphertext> = sq.iter().collect();
        let out = s.ev.dot(&refs, &w).unwrap();
        let expect = s.expect(|j| {
            (0..4)
                .map(|i| i128::from(xs[i][j]).pow(2) * i128::from(w[i]))
                .sum()
        });
        println!(
            "n=8192 logQ=163 t={}: fresh {fresh}, square+relin {}, dot {}",
            s.params.plain_modulus(),
            s.budget(&sq[0]),
            s.budget(&out)
        );
        assert_eq!(s.decrypt(&out), expect);
        let low = s.ev.mod_switch_to_level(&out, 1).unwrap();
        println!("after switching to 1 prime: {}", s.budget(&low));
        assert_eq!(s.decrypt(&low), expect);
    }
}
