//! Hybrid key switching, and relinearisation with it: a polynomial is decomposed into one RNS
//! digit per q prime, each digit multiplied by its key component over Q_ℓ ∪ {p}, and the
//! special prime divided out again. The steps are separate functions so each can be read
//! alone; [`Decomposed`] keeps the digits so that one decomposition serves several keys
//! (hoisted rotations, in `rotate.rs`).

use super::mod_switch::mod_down_last_plus;
use super::{EvalError, Evaluator};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::keys::RelinKey;
use crate::bfv::params::RingContext;
use crate::math::{pool, Coeff, Modulus, Ntt, NttTable, RnsPoly, BLOCK};
use rayon::prelude::*;

impl Evaluator {
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
        let digits = Decomposed::new(ring, &ct.polys[2], level);
        let (c0, c1) = digits.switch(&rk.b, &rk.a, Some(&ct.polys[0]), Some(&ct.polys[1]));
        Ok(Ciphertext::new(self.params.clone(), vec![c0, c1], level))
    }
}

/// A polynomial over Q_ℓ decomposed for key switching: its RNS digits, lifted to Q_ℓ ∪ {p} and
/// in NTT form. The costly part of a key switch (ℓ·(ℓ+1) NTTs); [`Self::switch`] can then be
/// run with as many keys as wanted.
pub(super) struct Decomposed<'a> {
    ring: &'a RingContext,
    basis: KeyBasis<'a>,
    digits: Vec<RnsPoly<Ntt>>,
}

impl<'a> Decomposed<'a> {
    /// Decomposes `c` (coefficient form over q_0..q_{level-1}).
    pub(super) fn new(ring: &'a RingContext, c: &RnsPoly<Coeff>, level: usize) -> Self {
        let basis = KeyBasis::at_level(ring, level);
        let digits = decompose(c, None, &basis);
        Decomposed {
            ring,
            basis,
            digits,
        }
    }

    /// The key switch with the key (b_j, a_j) (NTT form over q_0..q_{L-1}, p; the first ℓ
    /// components are used): round(Σ_j digit_j·(b_j, a_j) / p) in coefficient form over Q_ℓ,
    /// plus `base0` and `base1` when given.
    pub(super) fn switch(
        &self,
        b: &[RnsPoly<Ntt>],
        a: &[RnsPoly<Ntt>],
        base0: Option<&RnsPoly<Coeff>>,
        base1: Option<&RnsPoly<Coeff>>,
    ) -> (RnsPoly<Coeff>, RnsPoly<Coeff>) {
        let basis = &self.basis;
        let level = basis.level;
        let (acc0, acc1) = key_inner_product(&self.digits, b, a, basis);
        let (k0, k1) = rayon::join(
            || acc0.into_coeff(&basis.tables),
            || acc1.into_coeff(&basis.tables),
        );
        let ring = self.ring;
        let qs = &ring.q()[..level];
        let p = ring.special().value();
        let inv = &ring.special_inv_mod_q()[..level];
        // Divide by p, rounding, and add the bases on the way.
        rayon::join(
            || mod_down_last_plus(&k0, base0, qs, p, inv),
            || mod_down_last_plus(&k1, base1, qs, p, inv),
        )
    }
}

/// The primes key switching works over at level ℓ: q_0..q_{ℓ-1}, then the special prime p.
pub(crate) struct KeyBasis<'a> {
    /// Index of each prime among the key's limbs (q_0..q_{L-1}, p).
    key_idx: Vec<usize>,
    pub(crate) moduli: Vec<Modulus>,
    pub(crate) tables: Vec<&'a NttTable>,
    /// ℓ, the number of digits.
    pub(crate) level: usize,
    /// Ring degree n.
    n: usize,
}

impl<'a> KeyBasis<'a> {
    pub(crate) fn at_level(ring: &'a RingContext, level: usize) -> Self {
        let special_idx = ring.max_level();
        let key_idx: Vec<usize> = (0..level).chain([special_idx]).collect();
        let moduli: Vec<Modulus> = key_idx.iter().map(|&i| ring.key_moduli()[i]).collect();
        let tables: Vec<&NttTable> = key_idx.iter().map(|&i| &ring.key_tables()[i]).collect();
        KeyBasis {
            key_idx,
            moduli,
            tables,
            level,
            n: ring.degree(),
        }
    }
}

/// The RNS digits of c_2: digit j is the residue of c_2 modulo q_j, lifted (centred) to every
/// key prime, in NTT form. When c_2's NTT form is at hand (`c2_ntt`, BGV), limb j of digit j is
/// copied from it instead of being transformed again.
pub(crate) fn decompose(
    c2: &RnsPoly<Coeff>,
    c2_ntt: Option<&RnsPoly<Ntt>>,
    basis: &KeyBasis<'_>,
) -> Vec<RnsPoly<Ntt>> {
    let KeyBasis {
        moduli,
        tables,
        level,
        n,
        ..
    } = basis;
    let (level, n) = (*level, *n);
    (0..level)
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
            let digit =
                RnsPoly::<Coeff>::from_raw(data, n).unwrap_or_else(|| RnsPoly::zero(level + 1, n));
            match c2_ntt {
                None => digit.into_ntt(tables),
                Some(c2_ntt) => {
                    let mut digit = digit.into_ntt_except(tables, j);
                    digit.limb_mut(j).copy_from_slice(c2_ntt.limb(j));
                    digit
                }
            }
        })
        .collect()
}

/// Σ_j digit_j·(b_j, a_j), accumulated in 128 bits and reduced once: primes have at most
/// 61 bits and there are at most 20 digits, so the sum stays below 2^127.
pub(crate) fn key_inner_product(
    digits: &[RnsPoly<Ntt>],
    b: &[RnsPoly<Ntt>],
    a: &[RnsPoly<Ntt>],
    basis: &KeyBasis<'_>,
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let (level, n) = (basis.level, basis.n);
    let mut acc0 = RnsPoly::<Ntt>::zero(level + 1, n);
    let mut acc1 = RnsPoly::<Ntt>::zero(level + 1, n);
    acc0.data_mut()
        .par_chunks_mut(n)
        .zip(acc1.data_mut().par_chunks_mut(n))
        .enumerate()
        .for_each(|(mi, (o0, o1))| accumulate_limb(o0, o1, mi, digits, (b, a), basis));
    (acc0, acc1)
}

/// One limb (key prime number `mi`) of [`key_inner_product`], block by block.
fn accumulate_limb(
    o0: &mut [u64],
    o1: &mut [u64],
    mi: usize,
    digits: &[RnsPoly<Ntt>],
    (kb, ka): (&[RnsPoly<Ntt>], &[RnsPoly<Ntt>]),
    basis: &KeyBasis<'_>,
) {
    let level = basis.level;
    let m = &basis.moduli[mi];
    let kl = basis.key_idx[mi];
    for (blk, (o0, o1)) in o0.chunks_mut(BLOCK).zip(o1.chunks_mut(BLOCK)).enumerate() {
        let range = blk * BLOCK..blk * BLOCK + o0.len();
        let mut s0 = [0u128; BLOCK];
        let mut s1 = [0u128; BLOCK];
        let part = |j: usize| {
            let d = &digits[j].limb(mi)[range.clone()];
            let b = &kb[j].limb(kl)[range.clone()];
            let a = &ka[j].limb(kl)[range.clone()];
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
                    for ((s0, s1), (((&d0, (&b0, &a0)), (&d1, (&b1, &a1))), (&d2, (&b2, &a2)))) in
                        sums.zip(part(j).zip(part(j + 1)).zip(part(j + 2)))
                    {
                        *s0 += mul(d0, b0) + mul(d1, b1) + mul(d2, b2);
                        *s1 += mul(d0, a0) + mul(d1, a1) + mul(d2, a2);
                    }
                    j += 3;
                }
            }
        }
        for (((o0, o1), &s0), &s1) in o0.iter_mut().zip(o1.iter_mut()).zip(&s0).zip(&s1) {
            *o0 = m.reduce_u128(s0);
            *o1 = m.reduce_u128(s1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::support::setup;
    use crate::bfv::ciphertext::Ciphertext;
    use crate::bfv::params::tests::toy;

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
}
