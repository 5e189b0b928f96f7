//! The constants of one level ℓ (ciphertexts over q_0..q_{ℓ-1}), precomputed once per parameter
//! set so that no operation touches a big integer per coefficient. Each family of constants
//! (plaintext scaling, decryption, HPS multiplication, modulus switching) is built by its own
//! function; the formulas they serve are in the evaluator and the keys.

use super::{ParamError, RingContext, MAX_HPS_WIDTH};
use crate::math::BigUint;
use crate::math::{BaseConverter, Modulus};

/// Constants for one level ℓ (ciphertexts over q_0..q_{ℓ-1}).
#[derive(Debug)]
pub(crate) struct LevelContext {
    /// floor(Q_ℓ / t) mod q_i.
    pub delta: Vec<u64>,
    /// floor((Q_ℓ mod t)·2^64 / t): the fractional part of Q_ℓ/t in 0.64 fixed point, so that
    /// plaintexts are scaled by round(Q_ℓ·m/t) rather than floor(Q_ℓ/t)·m.
    pub delta_frac: u64,
    /// (Q_ℓ/q_i)^{-1} mod q_i and Shoup constants (decryption).
    pub dec_alpha: Vec<u64>,
    pub dec_alpha_shoup: Vec<u64>,
    /// floor(t·2^64/q_i) and the next 64 fraction bits: t/q_i in 0.128 fixed point.
    pub dec_theta_hi: Vec<u64>,
    pub dec_theta_lo: Vec<u64>,
    /// q_{ℓ-1}^{-1} mod q_i for i < ℓ-1 (modulus switching to ℓ-1).
    pub ms_inv_last: Vec<u64>,
    /// Number of auxiliary primes P_ℓ (a prefix of the full auxiliary list) that
    /// multiplication at this level extends to: just enough for Q_ℓ's tensor products, so that
    /// products at lower levels are cheaper.
    pub aux_count: usize,
    /// Q_ℓ → P_ℓ base extension.
    pub q_to_aux: BaseConverter,
    /// (M/r)^{-1} mod r for every r in Q_ℓ ∪ P (M = Q_ℓ·P), with Shoup constants.
    pub hps_inv_punct: Vec<u64>,
    pub hps_inv_punct_shoup: Vec<u64>,
    /// 1/r as floating point, for the overflow count of the CRT sum.
    pub hps_inv_f64: Vec<f64>,
    /// frac(t·P/q_i) in 0.128 fixed point.
    pub hps_theta_hi: Vec<u64>,
    pub hps_theta_lo: Vec<u64>,
    /// `[s·w + r]`: floor(t·P/q_i) mod q_s for r = i < ℓ, and t·P/p_j mod q_s for r = ℓ + j.
    pub hps_coeff: Vec<u64>,
    /// `[s·(w+1) + K]` = K·t·P mod q_s.
    pub hps_ktp: Vec<u64>,
}

impl LevelContext {
    /// round(r·m/t) for a plaintext coefficient m < t, with r = Q_ℓ mod t: what scaling by
    /// round(Q_ℓ·m/t) adds to floor(Q_ℓ/t)·m (exact to within one; at most m, so below every
    /// q_i and in need of no reduction).
    #[inline]
    pub fn delta_rounding(&self, m: u64) -> u64 {
        ((u128::from(m) * u128::from(self.delta_frac) + (1u128 << 63)) >> 64) as u64
    }

    /// The constants of `level` for plaintext modulus `t`, multiplying through the auxiliary
    /// primes `aux` (already cut to the prefix this level needs; `aux_values` their values).
    pub(super) fn new(
        ring: &RingContext,
        level: usize,
        t: u64,
        aux_values: &[u64],
        aux: &[Modulus],
    ) -> Result<Self, ParamError> {
        let qs = &ring.q()[..level];
        let q_values: Vec<u64> = qs.iter().map(|m| m.value()).collect();
        let (delta, delta_frac) = delta_constants(&q_values, t)?;
        let dec = decryption_constants(qs, &q_values, t)?;
        let hps = hps_constants(qs, &q_values, aux_values, aux, t)?;
        let ms_inv_last = mod_switch_constants(qs, &q_values)?;
        Ok(LevelContext {
            delta,
            delta_frac,
            dec_alpha: dec.alpha,
            dec_alpha_shoup: dec.alpha_shoup,
            dec_theta_hi: dec.theta_hi,
            dec_theta_lo: dec.theta_lo,
            ms_inv_last,
            aux_count: aux.len(),
            q_to_aux: BaseConverter::new(qs, aux).ok_or(ParamError::Internal("Q→P converter"))?,
            hps_inv_punct: hps.inv_punct,
            hps_inv_punct_shoup: hps.inv_punct_shoup,
            hps_inv_f64: hps.inv_f64,
            hps_theta_hi: hps.theta_hi,
            hps_theta_lo: hps.theta_lo,
            hps_coeff: hps.coeff,
            hps_ktp: hps.ktp,
        })
    }
}

/// numerator_mod / q as a 0.128 fixed-point fraction (numerator_mod < q).
fn split_fraction(numerator_mod: u64, q: u64) -> (u64, u64) {
    let hi_full = (u128::from(numerator_mod) << 64) / u128::from(q);
    let rem = (u128::from(numerator_mod) << 64) % u128::from(q);
    let lo = (rem << 64) / u128::from(q);
    (hi_full as u64, lo as u64)
}

/// For each prime r of `primes`, the inverse modulo r of the product of all the others
/// ((M/r)^{-1} mod r, M the product of `primes`).
fn inverse_punctured_products(
    primes: &[Modulus],
    what: &'static str,
) -> Result<Vec<u64>, ParamError> {
    let mut out = Vec::with_capacity(primes.len());
    for (i, mi) in primes.iter().enumerate() {
        let mut punct = 1u64;
        for (k, mk) in primes.iter().enumerate() {
            if k != i {
                punct = mi.mul(punct, mi.reduce(mk.value()));
            }
        }
        out.push(mi.inv(punct).ok_or(ParamError::Internal(what))?);
    }
    Ok(out)
}

/// Plaintext scaling: floor(Q_ℓ/t) mod each q_i, and frac(Q_ℓ/t) in 0.64 fixed point.
fn delta_constants(q_values: &[u64], t: u64) -> Result<(Vec<u64>, u64), ParamError> {
    let big_q = BigUint::product(q_values);
    let (delta_big, q_mod_t) = big_q.div_rem_u64(t).ok_or(ParamError::Internal("t = 0"))?;
    let delta_frac = ((u128::from(q_mod_t) << 64) / u128::from(t)) as u64;
    let delta = q_values.iter().map(|&q| delta_big.rem_u64(q)).collect();
    Ok((delta, delta_frac))
}

/// Decryption constants of one level (see `SecretKey::decrypt`).
struct DecryptionConstants {
    alpha: Vec<u64>,
    alpha_shoup: Vec<u64>,
    theta_hi: Vec<u64>,
    theta_lo: Vec<u64>,
}

/// (Q_ℓ/q_i)^{-1} mod q_i with Shoup constants, and t/q_i in 0.128 fixed point.
fn decryption_constants(
    qs: &[Modulus],
    q_values: &[u64],
    t: u64,
) -> Result<DecryptionConstants, ParamError> {
    let alpha = inverse_punctured_products(qs, "Q/q_i not invertible")?;
    let alpha_shoup = alpha.iter().zip(qs).map(|(&a, m)| m.shoup(a)).collect();
    let (theta_hi, theta_lo) = q_values.iter().map(|&q| split_fraction(t, q)).unzip();
    Ok(DecryptionConstants {
        alpha,
        alpha_shoup,
        theta_hi,
        theta_lo,
    })
}

/// HPS multiplication constants of one level (see `Evaluator::scale_down`).
struct HpsConstants {
    inv_punct: Vec<u64>,
    inv_punct_shoup: Vec<u64>,
    inv_f64: Vec<f64>,
    theta_hi: Vec<u64>,
    theta_lo: Vec<u64>,
    coeff: Vec<u64>,
    ktp: Vec<u64>,
}

/// HPS scaling from M = Q_ℓ·P straight to Q_ℓ (see `Evaluator::scale_down`).
fn hps_constants(
    qs: &[Modulus],
    q_values: &[u64],
    aux_values: &[u64],
    aux: &[Modulus],
    t: u64,
) -> Result<HpsConstants, ParamError> {
    let internal = ParamError::Internal;
    let level = qs.len();
    let t_p = BigUint::product(aux_values).mul_u64(t);
    let mut all: Vec<Modulus> = qs.to_vec();
    all.extend(aux.iter().copied());
    let width = all.len();
    if width > MAX_HPS_WIDTH {
        return Err(internal("too many primes for multiplication"));
    }
    let inv_punct = inverse_punctured_products(&all, "M/r not invertible")?;
    let inv_punct_shoup = inv_punct
        .iter()
        .zip(&all)
        .map(|(&a, m)| m.shoup(a))
        .collect();
    let inv_f64 = all.iter().map(|m| 1.0 / m.value() as f64).collect();
    let mut theta_hi = Vec::new();
    let mut theta_lo = Vec::new();
    let mut omega_big = Vec::new();
    for &q in q_values {
        let (quot, rem) = t_p.div_rem_u64(q).ok_or(internal("q = 0"))?;
        let (hi, lo) = split_fraction(rem, q);
        theta_hi.push(hi);
        theta_lo.push(lo);
        omega_big.push(quot);
    }
    for &p in aux_values {
        omega_big.push(t_p.div_rem_u64(p).ok_or(internal("p = 0"))?.0);
    }
    let mut coeff = Vec::with_capacity(level * width);
    let mut ktp = Vec::with_capacity(level * (width + 1));
    for m in qs {
        coeff.extend(omega_big.iter().map(|w| w.rem_u64(m.value())));
        let tp = t_p.rem_u64(m.value());
        ktp.extend((0..=width as u64).map(|k| m.mul(m.reduce(k), tp)));
    }
    Ok(HpsConstants {
        inv_punct,
        inv_punct_shoup,
        inv_f64,
        theta_hi,
        theta_lo,
        coeff,
        ktp,
    })
}

/// q_{ℓ-1}^{-1} mod q_i for i < ℓ-1, for switching down to level ℓ-1 (empty at level 1).
fn mod_switch_constants(qs: &[Modulus], q_values: &[u64]) -> Result<Vec<u64>, ParamError> {
    let level = qs.len();
    if level < 2 {
        return Ok(Vec::new());
    }
    let last = q_values[level - 1];
    qs[..level - 1]
        .iter()
        .map(|m| m.inv(last).ok_or(ParamError::Internal("q not invertible")))
        .collect()
}
