//! The secret key: the only key that can decrypt, so it stays on the client. Its coefficients
//! are zeroised on drop and redacted in `Debug`, and every temporary derived from s (a·s, the
//! phase, s²) is wiped before its buffer is dropped.

use super::{check_ring, KeyId};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::encoding::{add_scaled_plain, Plaintext};
use crate::bfv::error::EvalError;
use crate::bfv::params::{BfvParameters, RingContext};
use crate::bfv::sampling::{error_poly, expand_seed, small_to_rns, ternary};
use crate::math::{BigUint, Coeff, Modulus, Ntt, RnsPoly};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use std::fmt;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The secret key s, a ternary polynomial. Stored in NTT form over q_0..q_{L-1}, p.
pub struct SecretKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) coeffs: Vec<i8>,
    pub(crate) ntt: RnsPoly<Ntt>,
    pub(crate) id: KeyId,
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.coeffs.zeroize();
        self.ntt.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey(ring={:016x}, set={}, <redacted>)",
            self.ring.fingerprint(),
            self.id
        )
    }
}

impl SecretKey {
    /// Samples a uniform ternary secret, then the id of the key set it starts.
    pub fn generate(params: &BfvParameters, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let ring = params.ring().clone();
        let coeffs = ternary(rng, ring.degree());
        let id = KeyId::generate(rng);
        Self::from_coeffs(ring, coeffs, id)
    }

    pub(crate) fn from_coeffs(ring: Arc<RingContext>, coeffs: Vec<i8>, id: KeyId) -> Self {
        let ntt = small_to_rns(&coeffs, ring.key_moduli()).into_ntt(ring.key_tables());
        SecretKey {
            ring,
            coeffs,
            ntt,
            id,
        }
    }

    /// The id of the key set this key starts (shared by the keys derived from it).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The ring this key belongs to.
    pub fn ring(&self) -> &Arc<RingContext> {
        &self.ring
    }

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }

    /// s restricted to the first `level` q primes, NTT form.
    /// Zeroised when dropped, like every temporary derived from s (a·s included).
    pub(crate) fn s_at(&self, level: usize) -> Zeroizing<RnsPoly<Ntt>> {
        let idx: Vec<usize> = (0..level).collect();
        Zeroizing::new(self.ntt.select_limbs(&idx))
    }

    /// Symmetric encryption: c_1 = a expanded from a fresh 32-byte seed, c_0 = −a·s + e + Δm.
    /// The ciphertext remembers the seed so it serialises at half size.
    pub fn encrypt(
        &self,
        pt: &Plaintext,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Ciphertext, EvalError> {
        let params = pt.params();
        check_ring(&self.ring, params)?;
        let n = self.ring.degree();
        let level = self.ring.max_level();
        let moduli = &self.ring.q()[..level];
        let tables = self.ring.q_tables(level);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a: RnsPoly<Coeff> = expand_seed(&seed, moduli, n, 0);
        // a·s changes form in place (no copy) and is wiped once c_0 holds it.
        let mut as_ = a.clone().into_ntt(tables);
        as_.mul_assign(&self.s_at(level), moduli);
        let as_ = Zeroizing::new(as_.into_coeff(tables));
        // The error's buffer becomes c_0 itself.
        let mut c0 = error_poly(rng, n, moduli);
        c0.sub_assign(&as_, moduli);
        add_scaled_plain(params, &mut c0, pt, level, false);
        let mut ct = Ciphertext::new(params.clone(), vec![c0, a], level);
        ct.seed = Some(seed);
        Ok(ct)
    }

    /// [c_0 + c_1 s + c_2 s²]_Q in coefficient form. It reveals the message (and, with the
    /// ciphertext, s), so it is wiped when dropped, as are c_1·s, s² and c_2·s² on the way.
    pub(super) fn phase(&self, ct: &Ciphertext) -> Result<Zeroizing<RnsPoly<Coeff>>, EvalError> {
        check_ring(&self.ring, ct.params())?;
        if ct.size() < 2 || ct.size() > 3 {
            return Err(EvalError::UnsupportedSize {
                size: ct.size(),
                max: 3,
            });
        }
        let level = ct.level();
        let moduli = &self.ring.q()[..level];
        let tables = self.ring.q_tables(level);
        let s = self.s_at(level);
        // c_1·s; its buffer becomes the phase (forms change in place).
        let mut acc = ct.polys[1].clone().into_ntt(tables);
        acc.mul_assign(&s, moduli);
        if ct.size() == 3 {
            let mut s2 = s.clone();
            s2.mul_assign(&s, moduli);
            // c_2·s² reveals s² wherever c_2 is invertible.
            let mut c2 = Zeroizing::new(ct.polys[2].clone().into_ntt(tables));
            c2.mul_assign(&s2, moduli);
            acc.add_assign(&c2, moduli);
        }
        let mut x = Zeroizing::new(acc.into_coeff(tables));
        x.add_assign(&ct.polys[0], moduli);
        Ok(x)
    }

    /// Decrypts a ciphertext of size 2 or 3 at any level.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext, EvalError> {
        let mut x = self.phase(ct)?;
        let params = ct.params();
        let level = ct.level();
        let lc = params.level(level).ok_or(EvalError::BadLevel {
            level,
            max: params.max_level(),
        })?;
        let n = params.degree();
        let moduli = &params.ring().q()[..level];
        let t = params.plain();
        // y_i = x_i (Q/q_i)^{-1} mod q_i, in place.
        for (i, m) in moduli.iter().enumerate() {
            let (w, ws) = (lc.dec_alpha[i], lc.dec_alpha_shoup[i]);
            for v in x.limb_mut(i) {
                *v = m.mul_shoup(*v, w, ws);
            }
        }
        let data = x.data();
        let mut out = vec![0u64; n];
        out.par_iter_mut().enumerate().for_each(|(k, o)| {
            let mut int = 0u128;
            let mut frac = 0u128;
            for i in 0..level {
                let y = u128::from(data[i * n + k]);
                let hi = y * u128::from(lc.dec_theta_hi[i]);
                int += hi >> 64;
                frac += u128::from(hi as u64) + ((y * u128::from(lc.dec_theta_lo[i])) >> 64);
            }
            let r = int + ((frac + (1u128 << 63)) >> 64);
            *o = t.reduce_u128(r);
        });
        Ok(Plaintext::from_coeffs(params.clone(), out))
    }

    /// The invariant noise budget in bits, as SEAL defines it: with
    /// v = ‖[t·(c_0 + c_1 s + c_2 s²)]_Q‖_∞ (centred), the budget is
    /// bits(Q) − bits(v) − 1, clamped at 0. Decryption is correct while it is positive.
    pub fn noise_budget(&self, ct: &Ciphertext) -> Result<u32, EvalError> {
        let mut x = self.phase(ct)?;
        let params = ct.params();
        let level = ct.level();
        let lc = params.level(level).ok_or(EvalError::BadLevel {
            level,
            max: params.max_level(),
        })?;
        let moduli = &params.ring().q()[..level];
        Ok(budget_bits(
            &mut x,
            moduli,
            &lc.dec_alpha,
            params.plain_modulus(),
        ))
    }
}

/// The noise budget of a phase x (coefficient form over `moduli`, destroyed on the way), the
/// one definition both schemes use: with v = ‖[factor·x]_Q‖_∞ (centred), bits(Q) − bits(v) − 1,
/// clamped at 0. BFV passes factor = t (its phase is Δm + e, and t·(Δm + e) ≡ t·e up to the
/// rounding of Δ); BGV passes 1 (its phase is scale·m + t·e, small as it stands). `alpha` holds
/// (Q/q_i)^{-1} mod q_i.
pub(crate) fn budget_bits(
    x: &mut RnsPoly<Coeff>,
    moduli: &[Modulus],
    alpha: &[u64],
    factor: u64,
) -> u32 {
    let (big_q, max) = phase_norm(x, moduli, alpha, factor);
    let budget = i64::from(big_q.bits()) - i64::from(max.bits()) - 1;
    budget.max(0) as u32
}

/// Q and v = ‖[factor·x]_Q‖_∞ (centred) for [`budget_bits`]; tests read the exact
/// log2(Q/2) − log2 v from them where whole bits are too coarse.
pub(crate) fn phase_norm(
    x: &mut RnsPoly<Coeff>,
    moduli: &[Modulus],
    alpha: &[u64],
    factor: u64,
) -> (BigUint, BigUint) {
    let level = moduli.len();
    let n = x.degree();
    let q_values: Vec<u64> = moduli.iter().map(|m| m.value()).collect();
    let big_q = BigUint::product(&q_values);
    let half_q = big_q.shr(1);
    let puncts: Vec<BigUint> = q_values
        .iter()
        .map(|&q| big_q.div_rem_u64(q).map_or(BigUint::zero(), |(p, _)| p))
        .collect();
    for (i, m) in moduli.iter().enumerate() {
        let tw = m.mul(m.reduce(factor), alpha[i]);
        let tws = m.shoup(tw);
        for v in x.limb_mut(i) {
            *v = m.mul_shoup(*v, tw, tws);
        }
    }
    let data = x.data();
    let max = (0..n)
        .into_par_iter()
        .map(|k| {
            let mut z = BigUint::zero();
            for i in 0..level {
                z = z.add(&puncts[i].mul_u64(data[i * n + k]));
            }
            while z >= big_q {
                z = z.sub(&big_q);
            }
            if z > half_q {
                big_q.sub(&z)
            } else {
                z
            }
        })
        .max()
        .unwrap_or_default();
    (big_q, max)
}
