//! Keys: the ternary secret key (zeroised on drop, redacted in `Debug`), the public key and
//! the relinearisation key for hybrid key switching. Keys depend only on the ring, so one key
//! set serves every plaintext modulus of that ring.

use super::ciphertext::Ciphertext;
use super::encoding::{add_scaled_plain, Plaintext};
use super::error::EvalError;
use super::params::{BfvParameters, RingContext};
use super::sampling::{error_poly, expand_seed, small_to_rns, ternary};
use crate::math::{BigUint, Coeff, Modulus, Ntt, RnsPoly};
use rand::{CryptoRng, Rng, RngCore};
use rayon::prelude::*;
use std::fmt;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The secret key s, a ternary polynomial. Stored in NTT form over q_0..q_{L-1}, p.
pub struct SecretKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) coeffs: Vec<i8>,
    pub(crate) ntt: RnsPoly<Ntt>,
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
            "SecretKey(ring={:016x}, <redacted>)",
            self.ring.fingerprint()
        )
    }
}

fn check_ring(ring: &RingContext, params: &BfvParameters) -> Result<(), EvalError> {
    if ring.fingerprint() != params.ring_fingerprint() {
        return Err(EvalError::KeyMismatch {
            expected: params.ring_fingerprint(),
            found: ring.fingerprint(),
        });
    }
    Ok(())
}

impl SecretKey {
    /// Samples a uniform ternary secret.
    pub fn generate(params: &BfvParameters, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let ring = params.ring().clone();
        let coeffs = ternary(rng, ring.degree());
        Self::from_coeffs(ring, coeffs)
    }

    pub(crate) fn from_coeffs(ring: Arc<RingContext>, coeffs: Vec<i8>) -> Self {
        let ntt = small_to_rns(&coeffs, ring.key_moduli()).into_ntt(ring.key_tables());
        SecretKey { ring, coeffs, ntt }
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
    fn s_at(&self, level: usize) -> Zeroizing<RnsPoly<Ntt>> {
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
    fn phase(&self, ct: &Ciphertext) -> Result<Zeroizing<RnsPoly<Coeff>>, EvalError> {
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
        let n = params.degree();
        let moduli: Vec<Modulus> = params.ring().q()[..level].to_vec();
        let t = params.plain_modulus();
        let q_values: Vec<u64> = moduli.iter().map(|m| m.value()).collect();
        let big_q = BigUint::product(&q_values);
        let half_q = big_q.shr(1);
        let puncts: Vec<BigUint> = q_values
            .iter()
            .map(|&q| big_q.div_rem_u64(q).map_or(BigUint::zero(), |(p, _)| p))
            .collect();
        for (i, m) in moduli.iter().enumerate() {
            let tw = m.mul(m.reduce(t), lc.dec_alpha[i]);
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
        let budget = i64::from(big_q.bits()) - i64::from(max.bits()) - 1;
        Ok(budget.max(0) as u32)
    }
}

/// The public key (b, a) = (−a·s + e, a) over q_0..q_{L-1}, NTT form; a is expanded from a
/// seed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: RnsPoly<Ntt>,
    pub(crate) a: RnsPoly<Ntt>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(ring={:016x})", self.ring.fingerprint())
    }
}

impl PublicKey {
    /// Generates the public key of `sk`.
    pub fn new(sk: &SecretKey, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let ring = sk.ring.clone();
        let seed: [u8; 32] = rng.gen();
        let b = Self::derive_b(sk, &seed, rng);
        let a = expand_seed(&seed, &ring.q()[..ring.max_level()], ring.degree(), 0);
        PublicKey { ring, seed, b, a }
    }

    fn derive_b(
        sk: &SecretKey,
        seed: &[u8; 32],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> RnsPoly<Ntt> {
        let ring = &sk.ring;
        let level = ring.max_level();
        let moduli = &ring.q()[..level];
        let mut a: Zeroizing<RnsPoly<Ntt>> =
            Zeroizing::new(expand_seed(seed, moduli, ring.degree(), 0));
        a.mul_assign(&sk.s_at(level), moduli);
        // The error's buffer becomes b itself.
        let mut b = error_poly(rng, ring.degree(), moduli).into_ntt(ring.q_tables(level));
        b.sub_assign(&a, moduli);
        b
    }

    pub(crate) fn from_parts(ring: Arc<RingContext>, seed: [u8; 32], b: RnsPoly<Ntt>) -> Self {
        let a = expand_seed(&seed, &ring.q()[..ring.max_level()], ring.degree(), 0);
        PublicKey { ring, seed, b, a }
    }

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }

    /// Public-key encryption: (b·u + e_0 + Δm, a·u + e_1) with ternary u.
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
        // The ephemeral u and the errors reveal the message given the ciphertext: all wiped.
        let u = {
            let u_small = Zeroizing::new(ternary(rng, n));
            Zeroizing::new(small_to_rns(&u_small, moduli).into_ntt(tables))
        };
        // b·u and a·u change form in place and become c_0 and c_1.
        let mut bu = self.b.clone();
        bu.mul_assign(&u, moduli);
        let mut au = self.a.clone();
        au.mul_assign(&u, moduli);
        let (mut c0, mut c1) = rayon::join(|| bu.into_coeff(tables), || au.into_coeff(tables));
        let e0 = Zeroizing::new(error_poly(rng, n, moduli));
        c0.add_assign(&e0, moduli);
        let e1 = Zeroizing::new(error_poly(rng, n, moduli));
        c1.add_assign(&e1, moduli);
        add_scaled_plain(params, &mut c0, pt, level, false);
        Ok(Ciphertext::new(params.clone(), vec![c0, c1], level))
    }
}

/// The relinearisation key: for each q prime j, an encryption over Q·p of p·s²·e_j, where
/// e_j ≡ 1 mod q_j and ≡ 0 mod the other primes (hybrid key switching with RNS digits).
/// Component j is (b_j, a_j) = (−a_j s + e'_j + [p·s² in limb j], a_j), NTT form, a_j from a
/// seed. At level ℓ the first ℓ components restricted to q_0..q_{ℓ-1}, p are used.
#[derive(Clone, PartialEq, Eq)]
pub struct RelinKey {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly<Ntt>>,
    pub(crate) a: Vec<RnsPoly<Ntt>>,
}

impl fmt::Debug for RelinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RelinKey(ring={:016x}, components={})",
            self.ring.fingerprint(),
            self.b.len()
        )
    }
}

impl RelinKey {
    /// Generates the relinearisation key of `sk`.
    pub fn new(sk: &SecretKey, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let ring = sk.ring.clone();
        let seed: [u8; 32] = rng.gen();
        let moduli = ring.key_moduli();
        let n = ring.degree();
        let mut s2 = Zeroizing::new(sk.ntt.clone());
        s2.mul_assign(&sk.ntt, moduli);
        let a = Self::expand(&ring, &seed);
        let mut b = Vec::with_capacity(ring.max_level());
        for (j, aj) in a.iter().enumerate() {
            // The error's buffer becomes b_j itself.
            let mut bj = error_poly(rng, n, moduli).into_ntt(ring.key_tables());
            let mut as_ = Zeroizing::new(aj.clone());
            as_.mul_assign(&sk.ntt, moduli);
            bj.sub_assign(&as_, moduli);
            let m = &moduli[j];
            let pm = ring.special_mod_q()[j];
            let pms = m.shoup(pm);
            // Read s² in place: no unwiped copy of a limb.
            for (x, &s) in bj.limb_mut(j).iter_mut().zip(s2.limb(j)) {
                *x = m.add(*x, m.mul_shoup(s, pm, pms));
            }
            b.push(bj);
        }
        RelinKey { ring, seed, b, a }
    }

    pub(crate) fn expand(ring: &RingContext, seed: &[u8; 32]) -> Vec<RnsPoly<Ntt>> {
        (0..ring.max_level())
            .map(|j| expand_seed(seed, ring.key_moduli(), ring.degree(), j as u64))
            .collect()
    }

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::evaluator::Evaluator;
    use crate::bfv::params::tests::toy;
    use crate::math::{pool, Form};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn limbs<F: Form>(p: &RnsPoly<F>) -> impl Iterator<Item = &[u64]> {
        p.data().chunks_exact(p.degree())
    }

    /// Dropped buffers keep their contents (in the pool, or freed), so every temporary derived
    /// from s, from the encryption randomness or from a phase must be wiped first. Records what
    /// the key, encryption and decryption paths drop, then looks for each such value in it.
    #[test]
    fn no_secret_derived_value_is_dropped_unwiped() {
        let params = toy(4096);
        let ring = params.ring().clone();
        let n = ring.degree();
        let level = ring.max_level();
        let moduli = &ring.q()[..level];
        let tables = ring.q_tables(level);
        let key_moduli = ring.key_moduli();
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let pt = enc.encode(&[7, -8, 9]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let ((sk, pk, rk, u_small, e0, e1, cts), dropped) = pool::recording(n, || {
            let sk = SecretKey::generate(&params, &mut rng);
            let pk = PublicKey::new(&sk, &mut rng);
            let rk = RelinKey::new(&sk, &mut rng);
            // Public-key encryption draws u, then e_0 and e_1: replay them from a copy.
            let mut replay = rng.clone();
            let u_small = ternary(&mut replay, n);
            let e0 = error_poly(&mut replay, n, moduli);
            let e1 = error_poly(&mut replay, n, moduli);
            let by_pk = pk.encrypt(&pt, &mut rng).unwrap();
            let by_sk = sk.encrypt(&pt, &mut rng).unwrap();
            let sq = ev.square(&by_sk).unwrap();
            let relin = ev.relinearize(&sq, &rk).unwrap();
            let cts = [by_pk, by_sk, sq, relin];
            for (ct, want) in cts
                .iter()
                .zip([[7, -8, 9], [7, -8, 9], [49, 64, 81], [49, 64, 81]])
            {
                assert_eq!(ct.level(), level);
                assert_eq!(enc.decode(&sk.decrypt(ct).unwrap()).unwrap()[..3], want);
                assert!(sk.noise_budget(ct).unwrap() > 0);
            }
            let back = SecretKey::from_bytes(&params, &sk.to_bytes()).unwrap();
            assert_eq!(back.coeffs, sk.coeffs);
            (sk, pk, rk, u_small, e0, e1, cts)
        });

        let mut secret: Vec<RnsPoly<Ntt>> = Vec::new();
        let mut secret_coeff: Vec<RnsPoly<Coeff>> = vec![
            small_to_rns(&sk.coeffs, key_moduli),
            small_to_rns(&u_small, moduli),
            e0,
            e1,
        ];
        let s = sk.s_at(level);
        let mut s2 = sk.ntt.clone();
        s2.mul_assign(&sk.ntt, key_moduli);
        let mut s2_level = s.clone();
        s2_level.mul_assign(&s, moduli);
        for aj in &rk.a {
            let mut as_ = aj.clone();
            as_.mul_assign(&sk.ntt, key_moduli);
            secret.push(as_);
        }
        let mut pk_as = pk.a.clone();
        pk_as.mul_assign(&s, moduli);
        secret.push(pk_as);
        secret.push(small_to_rns(&u_small, moduli).into_ntt(tables));
        // c_1·s (for a fresh symmetric encryption, a·s) in both forms, c_2·s², the phases.
        for ct in &cts {
            let mut c1s = ct.polys[1].clone().into_ntt(tables);
            c1s.mul_assign(&s, moduli);
            secret_coeff.push(c1s.clone().into_coeff(tables));
            secret.push(c1s);
            if let Some(c2) = ct.polys.get(2) {
                let mut c2s2 = c2.clone().into_ntt(tables);
                c2s2.mul_assign(&s2_level, moduli);
                secret.push(c2s2);
            }
            secret_coeff.push(RnsPoly::clone(&sk.phase(ct).unwrap()));
        }
        secret.push(sk.ntt.clone());
        secret.push(s2);

        let leaked = secret
            .iter()
            .flat_map(limbs)
            .chain(secret_coeff.iter().flat_map(limbs))
            .filter(|limb| dropped.contains(&pool::fingerprint(limb)))
            .count();
        assert_eq!(
            leaked, 0,
            "limbs of secret-derived values were dropped unwiped"
        );
    }
}
