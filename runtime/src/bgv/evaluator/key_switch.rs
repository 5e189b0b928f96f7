//! Relinearisation by hybrid key switching, with BFV's decomposition and inner-product kernels
//! and the BGV division by the special prime p.
//!
//! Why the message survives: the key holds (b_j, a_j) with b_j + a_j·s ≡ T·e_j + p·s²·[j]
//! (mod Q·p), where [j] is 1 in limb j and 0 elsewhere, and T is a multiple of t. For the RNS
//! digits d_j of c_2 (d_j ≡ c_2 mod q_j), k = Σ_j d_j·(b_j, a_j) has phase
//! k_0 + k_1·s ≡ p·c_2·s² + T·E (mod Q·p), E = Σ_j d_j e_j, because Σ_j d_j·p·[j] ≡ p·c_2
//! modulo every q_i and both sides are 0 mod p. Dividing by p with δ ≡ k (mod p),
//! δ ≡ 0 (mod t) (see `mod_switch`) gives (c'_0, c'_1) with
//! p·(c'_0 + c'_1 s) ≡ p·c_2 s² + T·E − δ_0 − δ_1 s, so c'_0 + c'_1 s = c_2 s² + N (mod Q) with
//! p·N = T·E − δ_0 − δ_1 s ≡ 0 (mod t), hence N ≡ 0 (mod t) (p is invertible mod t): the
//! added noise N ≈ T·E/p is a multiple of t, and the message and scale are unchanged.

use super::mod_switch::divide_by_last;
use super::{EvalError, Evaluator};
use crate::bfv::{decompose, key_inner_product, KeyBasis, RingContext};
use crate::bgv::ciphertext::Ciphertext;
use crate::bgv::keys::check_covers;
use crate::bgv::relin::RelinKey;
use crate::math::{Ntt, RnsPoly};

/// The mod-down by the special prime p that ends key switching, for both halves at once:
/// `x[k]` is over q_0..q_{level-1}, p (limb `level` is p's); each result is
/// (x[k] − δ_k)/p (+ `base[k]`) over q_0..q_{level-1} with δ_k ≡ x[k] (mod p) and δ_k ≡ 0
/// (mod t), so the phase is divided by p and its residue mod t multiplied by p⁻¹ (see
/// `divide_by_last`). Public-key encryption ends with it too.
pub(crate) fn divide_by_special(
    ring: &RingContext,
    level: usize,
    t: u64,
    x: [&RnsPoly<Ntt>; 2],
    base: [Option<&RnsPoly<Ntt>>; 2],
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let moduli = &ring.q()[..level];
    let tables = ring.q_tables(level);
    let special = (ring.special(), &ring.key_tables()[ring.max_level()]);
    let inv = &ring.special_inv_mod_q()[..level];
    rayon::join(
        || divide_by_last(x[0], base[0], moduli, tables, special, inv, t),
        || divide_by_last(x[1], base[1], moduli, tables, special, inv, t),
    )
}

impl Evaluator {
    /// Turns a size-3 ciphertext into a size-2 one with the relinearisation key; size-2
    /// inputs are returned as they are. Level and scale are unchanged. Costs ℓ inverse NTTs
    /// (c_2), ℓ² forward NTTs (the digits; limb j of digit j is c_2's own NTT limb), then 2
    /// inverse and 2ℓ forward NTTs for the division by p.
    pub fn relinearize(&self, ct: &Ciphertext, rk: &RelinKey) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        let ring = self.params.ring();
        if rk.ring_fingerprint() != ring.fingerprint() {
            return Err(EvalError::KeyMismatch {
                expected: ring.fingerprint(),
                found: rk.ring_fingerprint(),
            });
        }
        let t = self.params.plain_modulus();
        check_covers(&rk.plain_primes, t)?;
        if ct.size() == 2 {
            return Ok(ct.clone());
        }
        let level = ct.level;
        let basis = KeyBasis::at_level(ring, level);
        let c2 = ct.polys[2].clone().into_coeff(ring.q_tables(level));
        let digits = decompose(&c2, Some(&ct.polys[2]), &basis);
        drop(c2);
        let (k0, k1) = key_inner_product(&digits, &rk.b, &rk.a, &basis);
        drop(digits);
        let (c0, c1) = divide_by_special(
            ring,
            level,
            t,
            [&k0, &k1],
            [Some(&ct.polys[0]), Some(&ct.polys[1])],
        );
        Ok(Ciphertext::new(
            self.params.clone(),
            vec![c0, c1],
            level,
            ct.scale,
        ))
    }
}
