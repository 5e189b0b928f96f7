//! What only the secret key does in BGV: seeded symmetric encryption (the upload form),
//! decryption and noise measurement. The secret key is BFV's [`SecretKey`] (the same ternary
//! distribution and NTT form over every prime), so one key set serves both schemes. Every
//! temporary derived from s, from the encryption error or from a phase is wiped before its
//! buffer is dropped.

use super::ciphertext::Ciphertext;
use crate::bfv::{
    budget_bits, check_ring, error_poly, expand_seed, BfvParameters, EvalError, Plaintext,
    SecretKey,
};
use crate::math::{Coeff, Ntt, RnsPoly};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// NTT(t·e + m) over the first `level` q primes for a fresh error e (and the plaintext m when
/// given, lifted centred): the part of a fresh BGV ciphertext that carries message and noise.
/// Its buffer must become part of a public value (or be wiped).
pub(super) fn noisy_message(
    params: &BfvParameters,
    pt: Option<&Plaintext>,
    level: usize,
    rng: &mut (impl RngCore + CryptoRng),
) -> RnsPoly<Ntt> {
    let ring = params.ring();
    let n = ring.degree();
    let moduli = &ring.q()[..level];
    let t = params.plain_modulus();
    let mut x = error_poly(rng, n, moduli);
    let t_mod: Vec<u64> = moduli.iter().map(|m| m.reduce(t)).collect();
    x.mul_scalar_assign(&t_mod, moduli);
    if let Some(pt) = pt {
        for (limb, q) in x.data_mut().chunks_exact_mut(n).zip(moduli) {
            for (o, &v) in limb.iter_mut().zip(pt.coeffs()) {
                *o = q.add(*o, q.lift_centred(v, t));
            }
        }
    }
    x.into_ntt(ring.q_tables(level))
}

/// Symmetric encryption at the top level with scale 1: c_1 = a expanded from a fresh 32-byte
/// seed directly in NTT form, c_0 = −a·s + t·e + m. The ciphertext keeps the seed, so it
/// serialises at about half size.
pub fn encrypt(
    sk: &SecretKey,
    pt: &Plaintext,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Ciphertext, EvalError> {
    let params = pt.params();
    check_ring(sk.ring(), params)?;
    let ring = params.ring();
    let level = ring.max_level();
    let moduli = &ring.q()[..level];
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let a: RnsPoly<Ntt> = expand_seed(&seed, moduli, ring.degree(), 0);
    let mut as_ = Zeroizing::new(a.clone());
    as_.mul_assign(&sk.s_at(level), moduli);
    // The noisy message's buffer becomes c_0 itself.
    let mut c0 = noisy_message(params, Some(pt), level, rng);
    c0.sub_assign(&as_, moduli);
    let mut ct = Ciphertext::new(params.clone(), vec![c0, a], level, 1);
    ct.seed = Some(seed);
    Ok(ct)
}

/// [c_0 + c_1 s + c_2 s²]_Q in coefficient form, wiped when dropped (it reveals the message).
fn phase(sk: &SecretKey, ct: &Ciphertext) -> Result<Zeroizing<RnsPoly<Coeff>>, EvalError> {
    check_ring(sk.ring(), ct.params())?;
    if !(2..=3).contains(&ct.size()) {
        return Err(EvalError::UnsupportedSize {
            size: ct.size(),
            max: 3,
        });
    }
    let level = ct.level();
    let ring = ct.params().ring();
    let moduli = &ring.q()[..level];
    let s = sk.s_at(level);
    // c_1·s; its buffer becomes the phase (the form changes in place).
    let mut acc = ct.polys[1].clone();
    acc.mul_assign(&s, moduli);
    if let Some(c2) = ct.polys.get(2) {
        let mut s2 = s.clone();
        s2.mul_assign(&s, moduli);
        let mut c2s2 = Zeroizing::new(c2.clone());
        c2s2.mul_assign(&s2, moduli);
        acc.add_assign(&c2s2, moduli);
    }
    acc.add_assign(&ct.polys[0], moduli);
    Ok(Zeroizing::new(acc.into_coeff(ring.q_tables(level))))
}

/// Decrypts a ciphertext of size 2 or 3 at any level: the centred phase reduced mod t, times
/// scale⁻¹ mod t. The result is the plaintext polynomial itself (no scaling, bit-exact).
pub fn decrypt(sk: &SecretKey, ct: &Ciphertext) -> Result<Plaintext, EvalError> {
    let mut x = phase(sk, ct)?;
    let params: &Arc<BfvParameters> = ct.params();
    let level = ct.level();
    let lc = params.level(level).ok_or(EvalError::BadLevel {
        level,
        max: params.max_level(),
    })?;
    let n = params.degree();
    let moduli = &params.ring().q()[..level];
    let t = params.plain();
    // x = Σ y_i·(Q/q_i) − v·Q with y_i = [x_i·(Q/q_i)^{-1}]_{q_i} and v = round(Σ y_i/q_i):
    // exact for the centred x, since |x| < Q/2 leaves Σ y_i/q_i far from a half-integer.
    let punct_mod_t: Vec<u64> = (0..level)
        .map(|i| {
            moduli
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != i)
                .fold(1u64, |acc, (_, m)| t.mul(acc, t.reduce(m.value())))
        })
        .collect();
    let q_mod_t = moduli
        .iter()
        .fold(1u64, |acc, m| t.mul(acc, t.reduce(m.value())));
    let inv_q: Vec<f64> = moduli.iter().map(|m| 1.0 / m.value() as f64).collect();
    for (i, m) in moduli.iter().enumerate() {
        let (w, ws) = (lc.dec_alpha[i], lc.dec_alpha_shoup[i]);
        for v in x.limb_mut(i) {
            *v = m.mul_shoup(*v, w, ws);
        }
    }
    let unscale = t.inv(ct.scale()).ok_or(EvalError::ScaleMismatch {
        left: ct.scale(),
        right: 1,
    })?;
    let data = x.data();
    let mut out = vec![0u64; n];
    out.par_iter_mut().enumerate().for_each(|(k, o)| {
        let mut acc = 0u128;
        let mut sum = 0.0f64;
        for i in 0..level {
            let y = data[i * n + k];
            acc += u128::from(y) * u128::from(punct_mod_t[i]);
            sum += y as f64 * inv_q[i];
        }
        let v = sum.round() as u64;
        let r = t.sub(t.reduce_u128(acc), t.mul(t.reduce(v), q_mod_t));
        *o = t.mul(r, unscale);
    });
    Ok(Plaintext::from_coeffs(params.clone(), out))
}

/// The noise budget in bits, with BFV's meaning ([`SecretKey::noise_budget`]): how many bits
/// the noise may still grow before decryption fails, bits(Q_ℓ) − bits(‖x‖∞) − 1 for the centred
/// phase x (clamped at 0). Decryption is correct while it is positive.
pub fn noise_budget_bits(sk: &SecretKey, ct: &Ciphertext) -> Result<u32, EvalError> {
    let mut x = phase(sk, ct)?;
    let params = ct.params();
    let level = ct.level();
    let lc = params.level(level).ok_or(EvalError::BadLevel {
        level,
        max: params.max_level(),
    })?;
    let moduli = &params.ring().q()[..level];
    Ok(budget_bits(&mut x, moduli, &lc.dec_alpha, 1))
}
