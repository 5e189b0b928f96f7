//! Rounded BGV components: uploads and results that travel in fewer bits, as BFV's do.
//!
//! A BGV message sits in the low bits of the phase `x = [c0 + c1·s (+ c2·s²)]_Q`, with
//! `x ≡ scale·m (mod t)`, so rounding a component to a multiple of `2^k` would add an error
//! that is not a multiple of `t` and destroy the message. Multiplying by `u = t⁻¹ mod Q`
//! turns the ciphertext into BFV's form: with `u·t = 1 + κ·Q` and `x = μ + t·e`
//! (`μ ∈ [0, t)`),
//!
//! `u·x ≡ (Q/t)·[κ·μ]_t + (μ/t + e)  (mod Q)`,
//!
//! a message in the high bits with noise below `|e| + 1`. So a component `c` travels as BFV's
//! rounding of `u·c` ([`crate::bfv::Ciphertext::round_low_bits`]'s [`Rounder`]: `k` low bits
//! of each coefficient dropped, the same width, the same exact integer arithmetic), and the
//! reader multiplies what it reads back by `t`. If the rounding moved `u·c` by `r`
//! (`|r| ≤ 2^(k−1)` per coefficient), the component read back is `t·(u·c + r) ≡ c + t·r
//! (mod Q)`: a move by a multiple of `t`, so the phase keeps its residue `scale·m` mod `t` and
//! its noise `e` grows by `r` (by `r·s`, `r·s²` for `c1`, `c2`). Nothing else changes: the
//! ciphertext stays in BGV form with the same scale, and decrypts as any other.
//!
//! For an upload (`c1` a seed, only `c0` sent) the component read back is `c0' = c0 + t·ρ`
//! with `|ρ| ≤ 2^(k−1)` and `u·c0'` a multiple of `2^k` modulo `Q`, which is what makes it
//! cheap to send. For results the server rounds every component after the last step, at the
//! output's final (smallest) modulus; the client's decryption sees noise `e + r0 + r1·s
//! (+ r2·s²)`, which must stay below `Q/(2t)`: exactly the condition BFV's rounded results
//! meet, so the compiler budgets both schemes' rounding with one rule.

use super::ciphertext::Ciphertext;
use crate::bfv::{check_counts, nothing_left, BfvParameters, EvalError, Rounder};
use crate::math::{Coeff, Modulus, Ntt, RnsPoly};

/// Rounds, writes and reads the components of BGV ciphertexts at one level by `k` bits.
pub(super) struct BgvRounder<'a> {
    params: &'a BfvParameters,
    level: usize,
    rounder: Rounder<'a>,
    /// `t⁻¹ mod q_i`: to BFV's form.
    to_high: Vec<u64>,
    /// `t mod q_i`: back to BGV's form.
    to_low: Vec<u64>,
}

impl<'a> BgvRounder<'a> {
    /// The rounder of `k` bits at `level`; `None` when `k` is 0 or not below the bits of `Q`,
    /// or `t` is not invertible modulo the q primes (parameters never allow that).
    pub(super) fn new(params: &'a BfvParameters, level: usize, k: u32) -> Option<Self> {
        let moduli = params.ring().q().get(..level)?;
        if k == 0 {
            return None;
        }
        let rounder = Rounder::new(moduli, k)?;
        let t = params.plain_modulus();
        let to_low: Vec<u64> = moduli.iter().map(|m| m.reduce(t)).collect();
        let to_high = moduli
            .iter()
            .zip(&to_low)
            .map(|(m, &t)| m.inv(t))
            .collect::<Option<Vec<u64>>>()?;
        Some(BgvRounder {
            params,
            level,
            rounder,
            to_high,
            to_low,
        })
    }

    fn moduli(&self) -> &'a [Modulus] {
        &self.params.ring().q()[..self.level]
    }

    /// Bits a rounded coefficient takes (BFV's width for the same `Q` and `k`).
    pub(super) fn width(&self) -> u32 {
        self.rounder.width()
    }

    /// `t⁻¹·c` in coefficient form.
    fn high(&self, c: &RnsPoly<Ntt>) -> RnsPoly<Coeff> {
        let mut x = c.clone();
        x.mul_scalar_assign(&self.to_high, self.moduli());
        x.into_coeff(self.params.ring().q_tables(self.level))
    }

    /// `t·x` in NTT form.
    fn low(&self, mut x: RnsPoly<Coeff>) -> RnsPoly<Ntt> {
        x.mul_scalar_assign(&self.to_low, self.moduli());
        x.into_ntt(self.params.ring().q_tables(self.level))
    }

    /// The component as the reader will see it: `t·round_k(t⁻¹·c)`, i.e. `c + t·ρ` with every
    /// `|ρ| ≤ 2^(k−1)`. Rounding it again changes nothing.
    pub(super) fn round(&self, c: &RnsPoly<Ntt>) -> RnsPoly<Ntt> {
        self.low(self.rounder.round_poly(&self.high(c)))
    }

    /// Appends the rounded coefficients of `t⁻¹·c` ([`Rounder::write`]).
    pub(super) fn write(&self, c: &RnsPoly<Ntt>, out: &mut Vec<u8>) {
        self.rounder.write(&self.high(c), out);
    }

    /// Reads `n` coefficients written by [`Self::write`] and multiplies them back by `t`.
    pub(super) fn read(&self, bytes: &[u8], n: usize) -> Result<RnsPoly<Ntt>, String> {
        Ok(self.low(self.rounder.read(bytes, n)?))
    }
}

impl Ciphertext {
    /// Rounds away the low `bits[i]` bits of component `i` (0: kept exact; missing entries
    /// count as 0) in the way the module documentation describes: the component becomes
    /// `c + t·ρ` with `|ρ| ≤ 2^(k−1)` per coefficient and serialises in
    /// [`crate::bfv::rounded_width`]`(Q, k)` bits per coefficient. The message and the scale
    /// are unchanged; the noise grows by `ρ0 + ρ1·s (+ ρ2·s²)`, which the caller must have
    /// budgeted (decryption is exact while the noise stays below `Q/(2t)`).
    ///
    /// A seeded `c1` stays seeded when it keeps its bits.
    ///
    /// ```
    /// use veil_runtime::{bfv, bgv};
    /// use rand::SeedableRng;
    /// // Toy parameters, explicitly insecure.
    /// let params = bfv::BfvParameters::builder()
    ///     .degree(1024).q_bits(&[50, 50]).special_bits(51).plain_modulus(65537)
    ///     .allow_insecure(true).build()?;
    /// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    /// let sk = bfv::SecretKey::generate(&params, &mut rng);
    /// let enc = bfv::Encoder::new(&params);
    /// let ct = bgv::encrypt(&sk, &enc.encode(&[3, -4])?, &mut rng)?;
    /// // 100-bit Q, 17-bit t: the noise has room for far more than 2^60.
    /// let small = ct.round_low_bits(&[60])?;
    /// assert!(small.to_bytes().len() < ct.to_bytes().len() * 2 / 3);
    /// assert_eq!(&enc.decode(&bgv::decrypt(&sk, &small)?)?[..2], &[3, -4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn round_low_bits(&self, bits: &[u32]) -> Result<Ciphertext, EvalError> {
        check_counts(bits, self.size())?;
        let mut out = self.clone();
        for (i, &k) in bits.iter().enumerate() {
            if k == 0 {
                continue;
            }
            let rounder = BgvRounder::new(&self.params, self.level, k)
                .ok_or_else(|| nothing_left(k, i, &self.params.ring().q_values()[..self.level]))?;
            out.polys[i] = rounder.round(&self.polys[i]);
            out.low_bits[i] = k;
            if i == 1 {
                out.seed = None;
            }
        }
        Ok(out)
    }

    /// Low bits rounded away in each component, as [`Ciphertext::round_low_bits`] set them
    /// (all 0 for a ciphertext serialised whole).
    pub fn low_bits(&self) -> &[u32] {
        &self.low_bits[..self.size().min(self.low_bits.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::test_params::toy;
    use crate::bfv::{modulus_bits, Encoder, SecretKey};
    use crate::bgv::{decrypt, encrypt, Evaluator, RelinKey};
    use crate::math::BigUint;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The coefficients of `p` (coefficient form) as integers in `[0, Q)`.
    fn composed(p: &RnsPoly<Coeff>, moduli: &[Modulus]) -> Vec<BigUint> {
        let q: Vec<u64> = moduli.iter().map(Modulus::value).collect();
        let big_q = BigUint::product(&q);
        // CRT: Σ x_i·(Q/q_i)·((Q/q_i)⁻¹ mod q_i) mod Q.
        (0..p.degree())
            .map(|k| {
                let mut z = BigUint::zero();
                for (i, m) in moduli.iter().enumerate() {
                    let punct = big_q.div_rem_u64(m.value()).map(|(x, _)| x).unwrap();
                    let inv = m.inv(m.reduce(punct.rem_u64(m.value()))).unwrap();
                    z = z.add(&punct.mul_u64(m.mul(p.limb(i)[k], inv)));
                }
                z.div_rem(&big_q).map(|(_, r)| r).unwrap()
            })
            .collect()
    }

    /// The upload rule, checked on integers: `c0' ≡ c0 (mod t)` after `c0' − c0 = t·ρ` is taken
    /// modulo Q, `|ρ| ≤ 2^(k−1)`, `t⁻¹·c0'` a multiple of `2^k` modulo Q, rounding is idempotent
    /// and what is written reads back to the rounded component.
    #[test]
    fn an_upload_moves_c0_by_a_small_multiple_of_t() {
        let params = toy(1024);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sk = SecretKey::generate(&params, &mut rng);
        let enc = Encoder::new(&params);
        let values: Vec<i64> = (0..1024).map(|i| (i * 91) % 2001 - 1000).collect();
        let ct = encrypt(&sk, &enc.encode(&values).unwrap(), &mut rng).unwrap();
        let level = ct.level();
        let moduli = &params.ring().q()[..level];
        let tables = params.ring().q_tables(level);
        let q: Vec<u64> = moduli.iter().map(Modulus::value).collect();
        let big_q = BigUint::product(&q);
        let t = params.plain_modulus();
        let u = moduli
            .iter()
            .map(|m| m.inv(m.reduce(t)).unwrap())
            .collect::<Vec<_>>();
        for k in [1, 2, 17, 40, 63, 64, 65] {
            let up = ct.round_low_bits(&[k]).unwrap();
            assert!(up.is_seeded());
            assert_eq!(up.low_bits(), &[k, 0]);
            assert_eq!(up.scale(), ct.scale());
            let before = composed(&ct.polys[0].clone().into_coeff(tables), moduli);
            let after = composed(&up.polys[0].clone().into_coeff(tables), moduli);
            let half = BigUint::from_u64(1).shl(k - 1);
            let mut high = up.polys[0].clone();
            high.mul_scalar_assign(&u, moduli);
            let high = composed(&high.into_coeff(tables), moduli);
            for ((a, b), h) in before.iter().zip(&after).zip(&high) {
                // d = c0' − c0 modulo Q, centred: t·ρ.
                let d = b.add(&big_q).sub(a).div_rem(&big_q).unwrap().1;
                let (neg, mag) = if d.shl(1) > big_q {
                    (true, big_q.sub(&d))
                } else {
                    (false, d)
                };
                let (rho, rem) = mag.div_rem_u64(t).unwrap();
                assert_eq!(rem, 0, "k = {k}: the move is not a multiple of t");
                assert!(rho <= half, "k = {k}: |ρ| = {rho:?} (negative: {neg})");
                assert_eq!(
                    h.shr(k).shl(k),
                    *h,
                    "k = {k}: t⁻¹·c0' is not a multiple of 2^k"
                );
            }
            assert_eq!(up.round_low_bits(&[k]).unwrap(), up);
            let bytes = up.to_bytes();
            assert_eq!(bytes.len(), up.serialized_len());
            let back = Ciphertext::from_bytes(&params, &bytes).unwrap();
            assert_eq!(back, up);
            assert_eq!(back.low_bits(), up.low_bits());
            assert!(back.is_seeded());
            assert_eq!(enc.decode(&decrypt(&sk, &back).unwrap()).unwrap(), values);
        }
        // Writing an unrounded ciphertext marked as rounded rounds it on the way: the written
        // form of the rounded one is the same bytes.
        let k = 30;
        let mut marked = ct.clone();
        marked.low_bits[0] = k;
        assert_eq!(
            marked.to_bytes(),
            ct.round_low_bits(&[k]).unwrap().to_bytes()
        );
    }

    /// Results: every component of a product, at a lower level and with a scale other than 1,
    /// rounded and read back, decrypts to the same integers; the measured noise grows by no
    /// more than the rounding's bound.
    #[test]
    fn rounded_results_decrypt_exactly_with_their_scale() {
        let params = toy(2048);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let sk = SecretKey::generate(&params, &mut rng);
        let t = params.plain_modulus();
        let rk = RelinKey::new(&sk, &[t], &mut rng).unwrap();
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let values: Vec<i64> = (0..2048).map(|i| (i * 37) % 201 - 100).collect();
        let squares: Vec<i64> = values.iter().map(|v| v * v).collect();
        let ct = encrypt(&sk, &enc.encode(&values).unwrap(), &mut rng).unwrap();
        let sq = ev.square(&ct).unwrap();
        let down = ev.mod_switch_to_next(&sq).unwrap();
        assert_ne!(down.scale(), 1);
        let relin = ev
            .mod_switch_to_next(&ev.relinearize(&sq, &rk).unwrap())
            .unwrap();
        let q_bits = modulus_bits(&params.ring().q_values()[..down.level()]);
        let t_bits = 64 - t.leading_zeros();
        let before = crate::bgv::secret::noise_log2(&sk, &down).unwrap();
        for (ct, bits) in [
            (&down, vec![q_bits - t_bits - 12, q_bits - t_bits - 30, 8]),
            (&relin, vec![q_bits - t_bits - 10, q_bits - t_bits - 28]),
        ] {
            let r = ct.round_low_bits(&bits).unwrap();
            assert!(!r.is_seeded());
            assert_eq!(r.low_bits(), &bits[..]);
            let back = Ciphertext::from_bytes(&params, &r.to_bytes()).unwrap();
            assert_eq!(back, r);
            assert_eq!(back.scale(), ct.scale());
            assert_eq!(enc.decode(&decrypt(&sk, &back).unwrap()).unwrap(), squares);
            assert!(r.to_bytes().len() < ct.to_bytes().len());
        }
        // The noise after rounding c0 by k: at most t·2^(k−1) more in the phase.
        let k = 20;
        let r = down.round_low_bits(&[k]).unwrap();
        let after = crate::bgv::secret::noise_log2(&sk, &r).unwrap();
        let bound = (before.exp2() + (t as f64) * f64::from(k - 1).exp2()).log2();
        assert!(after <= bound + 1e-9, "{after} > {bound}");
        // Far too many bits: the message is gone; as many as Q has: refused.
        let gone = down.round_low_bits(&[q_bits - 2, q_bits - 2]).unwrap();
        assert_ne!(enc.decode(&decrypt(&sk, &gone).unwrap()).unwrap(), squares);
        let err = down.round_low_bits(&[q_bits]).unwrap_err();
        assert!(err.to_string().contains("leaves nothing"), "{err}");
        assert!(relin.round_low_bits(&[1, 1, 1]).is_err());
    }

    /// The identity the rounding rests on: `t⁻¹·(c0, c1)` is a BFV ciphertext of
    /// `[κ·scale·m]_t` with `κ = −Q⁻¹ mod t`, at the ciphertext's level and with its scale.
    #[test]
    fn times_t_inverse_is_a_bfv_ciphertext_of_kappa_scale_m() {
        let params = toy(2048);
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let sk = SecretKey::generate(&params, &mut rng);
        let t = params.plain_modulus();
        let rk = RelinKey::new(&sk, &[t], &mut rng).unwrap();
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let values: Vec<i64> = (0..2048).map(|i| (i * 53) % 301 - 150).collect();
        let squares: Vec<i64> = values.iter().map(|v| v * v).collect();
        let ct = encrypt(&sk, &enc.encode(&values).unwrap(), &mut rng).unwrap();
        let fresh_and_switched = [
            ct.clone(),
            ev.mod_switch_to_next(&ev.relinearize(&ev.square(&ct).unwrap(), &rk).unwrap())
                .unwrap(),
        ];
        for (ct, m) in fresh_and_switched.iter().zip([&values, &squares]) {
            let level = ct.level();
            let moduli = &params.ring().q()[..level];
            let u: Vec<u64> = moduli.iter().map(|q| q.inv(q.reduce(t)).unwrap()).collect();
            let polys = ct
                .polys()
                .iter()
                .map(|p| {
                    let mut x = p.clone();
                    x.mul_scalar_assign(&u, moduli);
                    x.into_coeff(params.ring().q_tables(level))
                })
                .collect();
            let high = crate::bfv::Ciphertext::new(params.clone(), polys, level);
            let tm = params.plain();
            let q_mod_t = moduli
                .iter()
                .fold(1, |a, q| tm.mul(a, tm.reduce(q.value())));
            let kappa = tm.sub(0, tm.inv(q_mod_t).unwrap());
            let factor = tm.mul(kappa, ct.scale());
            let want: Vec<u64> = enc
                .encode(m)
                .unwrap()
                .coeffs()
                .iter()
                .map(|&c| tm.mul(c, factor))
                .collect();
            assert_eq!(
                sk.decrypt(&high).unwrap().coeffs(),
                &want[..],
                "level {level}"
            );
            // Its BFV budget is BGV's, give or take the bit of the t in the noise's measure.
            let bfv = i64::from(sk.noise_budget(&high).unwrap());
            let bgv = i64::from(crate::bgv::noise_budget_bits(&sk, ct).unwrap());
            assert!((bfv - bgv).abs() <= 1, "BFV {bfv}, BGV {bgv}");
        }
    }

    /// An operation on a rounded ciphertext forgets the rounding (the changed component
    /// serialises whole), as it forgets the seed.
    #[test]
    fn operations_forget_the_rounding() {
        let params = toy(1024);
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let sk = SecretKey::generate(&params, &mut rng);
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let ct = encrypt(&sk, &enc.encode(&[5, 6]).unwrap(), &mut rng).unwrap();
        let up = ct.round_low_bits(&[20]).unwrap();
        let sum = ev.add(&up, &up).unwrap();
        assert_eq!(sum.low_bits(), &[0, 0]);
        assert!(!sum.is_seeded());
        let back = Ciphertext::from_bytes(&params, &sum.to_bytes()).unwrap();
        assert_eq!(back, sum);
        assert_eq!(
            &enc.decode(&decrypt(&sk, &back).unwrap()).unwrap()[..2],
            &[10, 12]
        );
    }
}
