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
use crate::math::{Coeff, Modulus, Ntt, NttTable, RnsPoly};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// NTT(t·e + m) over `moduli` (NTT tables `tables`) for a fresh error e and, when given, the
/// message m (coefficients mod t, lifted centred): the part of a fresh BGV ciphertext that
/// carries message and noise. Its buffer must become part of a public value (or be wiped).
pub(super) fn noisy_message(
    params: &BfvParameters,
    message: Option<&[u64]>,
    moduli: &[Modulus],
    tables: &[NttTable],
    rng: &mut (impl RngCore + CryptoRng),
) -> RnsPoly<Ntt> {
    let n = params.degree();
    let t = params.plain_modulus();
    let mut x = error_poly(rng, n, moduli);
    let t_mod: Vec<u64> = moduli.iter().map(|m| m.reduce(t)).collect();
    x.mul_scalar_assign(&t_mod, moduli);
    if let Some(message) = message {
        for (limb, q) in x.data_mut().chunks_exact_mut(n).zip(moduli) {
            for (o, &v) in limb.iter_mut().zip(message) {
                *o = q.add(*o, q.lift_centred(v, t));
            }
        }
    }
    x.into_ntt(tables)
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
    let mut c0 = noisy_message(params, Some(pt.coeffs()), moduli, ring.q_tables(level), rng);
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

/// log2‖x‖∞ of the centred phase x, not rounded to whole bits: for tests that hold the noise
/// against a model more finely than [`noise_budget_bits`] can.
#[cfg(test)]
pub(crate) fn noise_log2(sk: &SecretKey, ct: &Ciphertext) -> Result<f64, EvalError> {
    let mut x = phase(sk, ct)?;
    let params = ct.params();
    let level = ct.level();
    let lc = params.level(level).ok_or(EvalError::BadLevel {
        level,
        max: params.max_level(),
    })?;
    let moduli = &params.ring().q()[..level];
    let (_, v) = crate::bfv::phase_norm(&mut x, moduli, &lc.dec_alpha, 1);
    Ok(v.log2())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::test_params::toy;
    use crate::bfv::Encoder;
    use crate::bgv::{Evaluator, PublicKey, RelinKey};
    use crate::math::{pool, Form};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn limbs<F: Form>(p: &RnsPoly<F>) -> impl Iterator<Item = &[u64]> {
        p.data().chunks_exact(p.degree())
    }

    /// As for BFV: nothing derived from s, from a phase or from a product with s reaches the
    /// buffer stock unwiped on the key, encryption, relinearisation and decryption paths.
    #[test]
    fn bgv_no_secret_derived_value_is_dropped_unwiped() {
        let params = toy(4096);
        let ring = params.ring().clone();
        let n = ring.degree();
        let level = ring.max_level();
        let moduli = &ring.q()[..level];
        let key_moduli = ring.key_moduli();
        let t = params.plain_modulus();
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let pt = enc.encode(&[7, -8, 9]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let ((sk, pk, rk, cts), dropped) = pool::recording(n, || {
            let sk = SecretKey::generate(&params, &mut rng);
            let pk = PublicKey::new(&sk, &[t], &mut rng).unwrap();
            let rk = RelinKey::new(&sk, &[t], &mut rng).unwrap();
            let by_pk = pk.encrypt(&pt, &mut rng).unwrap();
            let by_sk = encrypt(&sk, &pt, &mut rng).unwrap();
            let sq = ev.square(&by_sk).unwrap();
            let relin = ev.relinearize(&sq, &rk).unwrap();
            let cts = [by_pk, by_sk, sq, relin];
            for ct in &cts {
                assert!(noise_budget_bits(&sk, ct).unwrap() > 0);
                assert!(!decrypt(&sk, ct).unwrap().coeffs().is_empty());
            }
            (sk, pk, rk, cts)
        });
        let s = sk.s_at(level);
        let mut secret: Vec<RnsPoly<Ntt>> = vec![sk.ntt.clone()];
        let mut s2 = sk.ntt.clone();
        s2.mul_assign(&sk.ntt, key_moduli);
        secret.push(s2);
        for aj in &rk.a {
            let mut as_ = aj.clone();
            as_.mul_assign(&sk.ntt, key_moduli);
            secret.push(as_);
        }
        let mut pk_as = pk.a.clone();
        pk_as.mul_assign(&sk.ntt, key_moduli);
        secret.push(pk_as);
        let mut phases: Vec<RnsPoly<Coeff>> = Vec::new();
        for ct in &cts {
            let mut c1s = ct.polys[1].clone();
            c1s.mul_assign(&s, moduli);
            secret.push(c1s);
            phases.push(RnsPoly::clone(&phase(&sk, ct).unwrap()));
        }
        let leaked = secret
            .iter()
            .flat_map(limbs)
            .chain(phases.iter().flat_map(limbs))
            .filter(|limb| dropped.contains(&pool::fingerprint(limb)))
            .count();
        assert_eq!(
            leaked, 0,
            "limbs of secret-derived values were dropped unwiped"
        );
    }
}
