//! Modulus switching: dropping the last q prime and dividing by it with rounding, which
//! shrinks the noise in proportion. The same division by one prime finishes key switching
//! (there the prime is the special prime p), so it is shared from here.

use super::{EvalError, Evaluator};
use crate::bfv::ciphertext::Ciphertext;
use crate::math::{Coeff, Modulus, RnsPoly};
use rayon::prelude::*;

/// Divides x (over `moduli` plus one more prime `last`, coefficient form) by `last` with
/// rounding towards the centred residue: (x_i − [x_last]_centred)·last^{-1} mod q_i, plus
/// `base` when given.
pub(super) fn mod_down_last_plus(
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
    use super::super::support::setup;
    use super::*;
    use crate::bfv::params::tests::toy;

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
}
