//! What every key-switching key shares: for a source secret `from` and a target secret `to`,
//! one RLWE encryption under `to` of p·from per q prime (hybrid key switching with RNS digits:
//! component j carries p·from only in limb j). The relinearisation key (from = s², to = s)
//! and the Galois keys (from = s, to = σ_k^{-1}(s)) are both built here, and so is BGV's
//! relinearisation key, whose error is scaled by the product of the plaintext primes
//! (`error_factor`) so that key switching adds noise that is a multiple of every t.

use crate::bfv::params::RingContext;
use crate::bfv::sampling::{error_poly, expand_seed};
use crate::math::{Ntt, RnsPoly};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The uniform halves a_j of a key-switching key, expanded from its seed (stream j), NTT form
/// over q_0..q_{L-1}, p.
pub(crate) fn expand_a(ring: &RingContext, seed: &[u8; 32]) -> Vec<RnsPoly<Ntt>> {
    expand_a_first(ring, seed, ring.max_level())
}

/// The first `count` of [`expand_a`]'s halves (a key serving levels up to `count`).
pub(crate) fn expand_a_first(
    ring: &RingContext,
    seed: &[u8; 32],
    count: usize,
) -> Vec<RnsPoly<Ntt>> {
    (0..count.min(ring.max_level()))
        .map(|j| expand_seed(seed, ring.key_moduli(), ring.degree(), j as u64))
        .collect()
}

/// The b_j = −a_j·to + f·e_j + [p·from in limb j] (NTT form over the key moduli) of the
/// key-switching key from `from` to `to` with uniform halves `a`. The error factor f is 1
/// (`None`, BFV) or given by its residue modulo each key prime (BGV: the product T of the
/// plaintext primes).
pub(crate) fn switching_b(
    ring: &RingContext,
    from: &RnsPoly<Ntt>,
    to: &RnsPoly<Ntt>,
    a: &[RnsPoly<Ntt>],
    error_factor: Option<&[u64]>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<RnsPoly<Ntt>> {
    let moduli = ring.key_moduli();
    let n = ring.degree();
    let mut b = Vec::with_capacity(a.len());
    for (j, aj) in a.iter().enumerate() {
        // The error's buffer becomes b_j itself.
        let mut e = error_poly(rng, n, moduli);
        if let Some(f) = error_factor {
            e.mul_scalar_assign(f, moduli);
        }
        let mut bj = e.into_ntt(ring.key_tables());
        let mut as_ = Zeroizing::new(aj.clone());
        as_.mul_assign(to, moduli);
        bj.sub_assign(&as_, moduli);
        let m = &moduli[j];
        let pm = ring.special_mod_q()[j];
        let pms = m.shoup(pm);
        // Read the source secret in place: no unwiped copy of a limb.
        for (x, &s) in bj.limb_mut(j).iter_mut().zip(from.limb(j)) {
            *x = m.add(*x, m.mul_shoup(s, pm, pms));
        }
        b.push(bj);
    }
    b
}
