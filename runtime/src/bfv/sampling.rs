//! Samplers: ternary secrets, centred-binomial errors and uniform residues, all drawn from a
//! caller-provided cryptographic RNG. No branch or table index depends on a sampled value
//! except in rejection sampling of public uniform values.

use crate::math::{Coeff, Modulus, RnsPoly};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

/// Number of coin pairs of the centred binomial error distribution: variance η/2 = 10.5,
/// standard deviation ≈ 3.24 (the standard's σ = 3.2).
pub const CBD_ETA: u32 = 21;

/// A fresh OS-seeded ChaCha20 generator for production use.
pub fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

/// n coefficients uniform in {−1, 0, 1}.
pub fn ternary(rng: &mut (impl RngCore + CryptoRng), n: usize) -> Vec<i8> {
    (0..n)
        .map(|_| {
            // floor(3·r / 2^64) is uniform on {0,1,2} up to a 2^-64 bias.
            let r = rng.next_u64();
            ((u128::from(r) * 3) >> 64) as i8 - 1
        })
        .collect()
}

/// n coefficients from the centred binomial distribution with η = 21.
pub fn cbd(rng: &mut (impl RngCore + CryptoRng), n: usize) -> Vec<i8> {
    let mask = (1u64 << CBD_ETA) - 1;
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            let a = (r & mask).count_ones() as i8;
            let b = ((r >> CBD_ETA) & mask).count_ones() as i8;
            a - b
        })
        .collect()
}

/// A small signed polynomial reduced into each modulus.
pub fn small_to_rns(coeffs: &[i8], moduli: &[Modulus]) -> RnsPoly<Coeff> {
    let n = coeffs.len();
    let mut out = RnsPoly::zero(moduli.len(), n);
    for (limb, m) in out.data_mut().chunks_exact_mut(n).zip(moduli) {
        let p = m.value();
        for (o, &c) in limb.iter_mut().zip(coeffs) {
            // Branch-free: add p to negative values via the sign mask.
            let v = i64::from(c);
            let mask = (v >> 63) as u64;
            *o = (v as u64).wrapping_add(p & mask);
        }
    }
    out
}

/// A fresh centred-binomial error polynomial over `moduli`; the small coefficients are wiped
/// once reduced. The result is as secret as the error itself: wipe it before dropping it
/// unless it has become part of a public value.
pub fn error_poly(
    rng: &mut (impl RngCore + CryptoRng),
    n: usize,
    moduli: &[Modulus],
) -> RnsPoly<Coeff> {
    let e = Zeroizing::new(cbd(rng, n));
    small_to_rns(&e, moduli)
}

/// Fills `out` with residues uniform modulo `m` (rejection sampling).
pub fn uniform_limb(rng: &mut impl RngCore, m: &Modulus, out: &mut [u64]) {
    let p = m.value();
    let mask = if m.bits() >= 64 {
        u64::MAX
    } else {
        (1u64 << m.bits()) - 1
    };
    for o in out.iter_mut() {
        loop {
            let v = rng.next_u64() & mask;
            if v < p {
                *o = v;
                break;
            }
        }
    }
}

/// The uniform polynomial over `moduli` expanded from a 32-byte seed with ChaCha20.
pub fn expand_seed<F: crate::math::Form>(
    seed: &[u8; 32],
    moduli: &[Modulus],
    n: usize,
    stream: u64,
) -> RnsPoly<F> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(stream);
    let mut out = RnsPoly::zero(moduli.len(), n);
    for (limb, m) in out.data_mut().chunks_exact_mut(n).zip(moduli) {
        uniform_limb(&mut rng, m, limb);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_have_the_right_moments() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let n = 1 << 16;
        let s = ternary(&mut rng, n);
        assert!(s.iter().all(|&x| (-1..=1).contains(&x)));
        let zeros = s.iter().filter(|&&x| x == 0).count() as f64 / n as f64;
        assert!((zeros - 1.0 / 3.0).abs() < 0.01);
        let e = cbd(&mut rng, n);
        let var = e.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / n as f64;
        assert!((var.sqrt() - 3.24).abs() < 0.05, "sigma {}", var.sqrt());
        assert!(e.iter().all(|&x| x.unsigned_abs() <= 21));
    }

    #[test]
    fn seed_expansion_is_deterministic() {
        let m = [Modulus::new(65537).unwrap(), Modulus::new(12289).unwrap()];
        let a: RnsPoly<Coeff> = expand_seed(&[9; 32], &m, 64, 0);
        let b: RnsPoly<Coeff> = expand_seed(&[9; 32], &m, 64, 0);
        let c: RnsPoly<Coeff> = expand_seed(&[9; 32], &m, 64, 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.limb(1).iter().all(|&x| x < 12289));
    }
}
