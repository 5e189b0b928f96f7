//! Modulus switching with the BGV correction, and the division by one prime it shares with
//! the end of key switching.
//!
//! Dividing a ciphertext by the prime r it drops must keep the message mod t. With
//! δ ≡ c (mod r) and δ ≡ 0 (mod t), namely δ = t·[c·t⁻¹]_r (centred, |δ| ≤ t·r/2), every
//! c − δ is divisible by r, and c' = (c − δ)/r satisfies, for the phase x' of c',
//! r·x' = x − Σ_j δ_j·s^j ≡ x (mod t). So x' ≡ r⁻¹·x (mod t): the message is unchanged up to
//! the known factor r⁻¹ mod t (the scale), and the noise shrinks by r while gaining about
//! t·‖s‖ from the δ_j. In NTT form only the dropped limb goes back to coefficients (to read
//! δ), and δ goes forward once per remaining prime.

use super::{EvalError, Evaluator};
use crate::bgv::ciphertext::Ciphertext;
use crate::math::{pool, Modulus, Ntt, NttTable, RnsPoly};
use rayon::prelude::*;

/// (x − δ)·r⁻¹ (+ `base`) over the first `moduli.len()` limbs of `x`, where limb
/// `moduli.len()` of `x` is x mod r (`last`, with NTT table `last_table`), δ ≡ x (mod r) and
/// δ ≡ 0 (mod t). Everything in NTT form; `inv` holds r⁻¹ mod q_i.
pub(crate) fn divide_by_last(
    x: &RnsPoly<Ntt>,
    base: Option<&RnsPoly<Ntt>>,
    moduli: &[Modulus],
    tables: &[NttTable],
    last: (&Modulus, &NttTable),
    inv: &[u64],
    t: u64,
) -> RnsPoly<Ntt> {
    let (r, r_table) = last;
    let n = x.degree();
    let level = moduli.len();
    // w = [x·t⁻¹]_r in coefficient form, so that δ = t·w (centred).
    let mut w = pool::take(n);
    w.extend_from_slice(x.limb(level));
    r_table.inverse(&mut w);
    let t_inv = r.inv(t).unwrap_or(0);
    let t_inv_shoup = r.shoup(t_inv);
    for v in w.iter_mut() {
        *v = r.mul_shoup(*v, t_inv, t_inv_shoup);
    }
    let rv = r.value();
    let mut out = RnsPoly::<Ntt>::zero(level, n);
    out.data_mut()
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(i, o)| {
            let m = &moduli[i];
            // o ← NTT_i(lift(w)), then o ← x_i·r⁻¹ − o·(t·r⁻¹).
            if m.lifts_without_reduction(rv) {
                for (o, &v) in o.iter_mut().zip(&w) {
                    *o = m.lift_centred_small(v, rv);
                }
            } else {
                for (o, &v) in o.iter_mut().zip(&w) {
                    *o = m.lift_centred(v, rv);
                }
            }
            tables[i].forward(o);
            let a = inv[i];
            let a_shoup = m.shoup(a);
            let b = m.mul(m.reduce(t), a);
            let b_shoup = m.shoup(b);
            for (o, &xi) in o.iter_mut().zip(x.limb(i)) {
                *o = m.sub(m.mul_shoup(xi, a, a_shoup), m.mul_shoup(*o, b, b_shoup));
            }
            if let Some(base) = base {
                for (o, &c) in o.iter_mut().zip(base.limb(i)) {
                    *o = m.add(*o, c);
                }
            }
        });
    pool::give(w);
    out
}

impl Evaluator {
    /// Drops the last q prime q_{ℓ−1}: c' = (c − δ)/q_{ℓ−1} with the BGV correction δ (see the
    /// module documentation), for ciphertexts of size 2 or 3. The noise shrinks by about
    /// log2 q_{ℓ−1} bits (down to the floor t·‖s‖ the correction adds); the scale is multiplied
    /// by q_{ℓ−1}⁻¹ mod t.
    pub fn mod_switch_to_next(&self, ct: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let level = ct.level;
        if level < 2 {
            return Err(EvalError::CannotSwitch {
                from: level,
                to: level.saturating_sub(1),
            });
        }
        let lc = self.params.level(level).ok_or(EvalError::BadLevel {
            level,
            max: self.params.max_level(),
        })?;
        let ring = self.params.ring();
        let last = &ring.q()[level - 1];
        let last_table = &ring.q_tables(level)[level - 1];
        let moduli = self.moduli(level - 1);
        let tables = ring.q_tables(level - 1);
        let t = self.params.plain();
        let polys = ct
            .polys
            .par_iter()
            .map(|p| {
                divide_by_last(
                    p,
                    None,
                    moduli,
                    tables,
                    (last, last_table),
                    &lc.ms_inv_last,
                    t.value(),
                )
            })
            .collect();
        let q_inv_t = t.inv(last.value()).ok_or(EvalError::BadLevel {
            level,
            max: self.params.max_level(),
        })?;
        let scale = t.mul(ct.scale, q_inv_t);
        Ok(Ciphertext::new(
            self.params.clone(),
            polys,
            level - 1,
            scale,
        ))
    }

    /// Switches down to `level` (1 ≤ level ≤ current level), one prime at a time.
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
