//! Rotations: a Galois automorphism σ_k of the ciphertext, then a key switch from σ_k(s) back
//! to s with the BGV Galois key of k.
//!
//! Why the message and the scale survive: σ_k is a ring automorphism, so (σ_k(c_0), σ_k(c_1))
//! has phase σ_k(x) under σ_k(s), and σ_k(x) ≡ scale·σ_k(m) (mod t) with the same scale (a
//! constant is fixed by σ_k) and the same infinity norm. The key of k is kept in the frame
//! σ_k⁻¹ (`bgv/galois.rs`): with the digits d_j of c_1 as they are,
//! K = Σ_j d_j·(b_j, a_j) has K_0 + K_1·σ_k⁻¹(s) ≡ p·c_1·s + T·E (mod Q·p), E = Σ_j d_j·e_j.
//! The division by p with the BGV correction (`divide_by_special`, as in relinearisation)
//! turns it into (c'_0, c'_1) with c'_0 + c'_1·σ_k⁻¹(s) = c_1·s + N, N ≡ 0 (mod t), and then
//!
//!   (σ_k(c_0 + c'_0), σ_k(c'_1)) has phase σ_k(c_0 + c_1·s + N) = σ_k(x) + σ_k(N)
//!
//! under s: the rotated message, the scale unchanged, noise grown by ‖N‖ ≈ T·‖E‖/p plus the
//! rounding of the division (≈ t·‖s‖). In NTT form σ_k is a permutation of the evaluation
//! points, the same for every prime, so it costs no transform.
//!
//! The decomposition of c_1 (ℓ inverse NTTs, then ℓ² forward ones) does not depend on k, so
//! [`Evaluator::rotate_many`] does it once for all the rotations of one ciphertext (hoisting);
//! each rotation then costs an inner product, the division by p (2 inverse and 2ℓ forward
//! NTTs) and the permutation. A single rotation is a hoisted one with one element, so both
//! give the same ciphertexts bit for bit.

use super::key_switch::divide_by_special;
use super::{EvalError, Evaluator};
use crate::bfv::{
    automorphism_ntt, automorphism_ops, column_swap_op, decompose, find_keys, key_inner_product,
    row_rotation_ops, GaloisOp, KeyBasis,
};
use crate::bgv::ciphertext::Ciphertext;
use crate::bgv::galois::GaloisKeys;
use crate::bgv::keys::check_covers;

impl Evaluator {
    /// Rotates both rows of slots left by `steps` (slot c receives slot c + steps, cyclically
    /// within each row of n/2 slots; negative steps rotate right). Needs the key of
    /// [`row_rotation_element`]`(n, steps)`; a rotation by a multiple of n/2 is the identity
    /// and needs none. Level and scale are unchanged.
    pub fn rotate_rows(
        &self,
        ct: &Ciphertext,
        steps: i64,
        keys: &GaloisKeys,
    ) -> Result<Ciphertext, EvalError> {
        let mut out = self.rotate_many(ct, &[steps], keys)?;
        out.pop().ok_or(EvalError::Empty)
    }

    /// Swaps the two rows of slots (what SEAL calls rotating the columns). Needs the key of
    /// [`column_swap_element`]`(n)` = 2n − 1.
    pub fn rotate_columns(
        &self,
        ct: &Ciphertext,
        keys: &GaloisKeys,
    ) -> Result<Ciphertext, EvalError> {
        let op = column_swap_op(self.params.degree());
        let mut out = self.galois_hoisted(ct, &[op], keys)?;
        out.pop().ok_or(EvalError::Empty)
    }

    /// Every row rotation of `steps` of one ciphertext, hoisted: c_1 is decomposed once and the
    /// decomposition shared. Returns the rotations in the order given, each identical to
    /// [`Self::rotate_rows`] with the same steps.
    pub fn rotate_many(
        &self,
        ct: &Ciphertext,
        steps: &[i64],
        keys: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>, EvalError> {
        let ops = row_rotation_ops(self.params.degree(), steps);
        self.galois_hoisted(ct, &ops, keys)
    }

    /// Applies the automorphism X ↦ X^k (k odd, in 3..2n) and switches back to s with the
    /// Galois key of k. The slot rotations above are named uses of this.
    pub fn apply_galois(
        &self,
        ct: &Ciphertext,
        element: u64,
        keys: &GaloisKeys,
    ) -> Result<Ciphertext, EvalError> {
        let mut out = self.apply_galois_many(ct, &[element], keys)?;
        out.pop().ok_or(EvalError::Empty)
    }

    /// [`Self::apply_galois`] for several elements, hoisted as in [`Self::rotate_many`].
    pub fn apply_galois_many(
        &self,
        ct: &Ciphertext,
        elements: &[u64],
        keys: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>, EvalError> {
        let ops = automorphism_ops(self.params.degree(), elements)?;
        self.galois_hoisted(ct, &ops, keys)
    }

    /// The shared path: checks, finds every key (element 1 is the identity and needs none),
    /// decomposes c_1 once, then switches, divides by p and permutes per element, one element
    /// after the other (each step is parallel over the primes, and one rotation's temporaries
    /// at a time keep the memory flat).
    fn galois_hoisted(
        &self,
        ct: &Ciphertext,
        ops: &[GaloisOp],
        keys: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>, EvalError> {
        self.check(ct)?;
        let ring = self.params.ring();
        if keys.ring_fingerprint() != ring.fingerprint() {
            return Err(EvalError::KeyMismatch {
                expected: ring.fingerprint(),
                found: keys.ring_fingerprint(),
            });
        }
        let t = self.params.plain_modulus();
        check_covers(keys.plain_primes(), t)?;
        if ct.size() != 2 {
            return Err(EvalError::UnsupportedSize {
                size: ct.size(),
                max: 2,
            });
        }
        let level = ct.level;
        let found = find_keys(ops, level, |k| keys.get(k), || keys.elements())?;
        if found.iter().all(|(_, key)| key.is_none()) {
            return Ok(found.iter().map(|_| ct.clone()).collect());
        }
        let basis = KeyBasis::at_level(ring, level);
        let c1 = ct.polys[1].clone().into_coeff(ring.q_tables(level));
        let digits = decompose(&c1, Some(&ct.polys[1]), &basis);
        drop(c1);
        Ok(found
            .iter()
            .map(|&(k, key)| match key {
                None => ct.clone(),
                Some(key) => {
                    let (k0, k1) = key_inner_product(&digits, &key.b, &key.a, &basis);
                    let (c0, c1) =
                        divide_by_special(ring, level, t, [&k0, &k1], [Some(&ct.polys[0]), None]);
                    let (c0, c1) =
                        rayon::join(|| automorphism_ntt(&c0, k), || automorphism_ntt(&c1, k));
                    Ciphertext::new(self.params.clone(), vec![c0, c1], level, ct.scale)
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::support::{setup, setup_for, Setup};
    use super::*;
    use crate::bfv::test_params::{secure_8192, toy};
    use crate::bfv::SecretKey;
    use crate::bfv::{column_swap_element, row_rotation_element};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// `v` with both rows rotated left by `steps`.
    fn rotated(v: &[i64], steps: i64) -> Vec<i64> {
        let half = v.len() / 2;
        let s = steps.rem_euclid(half as i64) as usize;
        (0..v.len())
            .map(|i| v[i / half * half + (i % half + s) % half])
            .collect()
    }

    fn swapped(v: &[i64]) -> Vec<i64> {
        let half = v.len() / 2;
        v[half..].iter().chain(&v[..half]).copied().collect()
    }

    fn keys_for(s: &mut Setup, steps: &[i64], swap: bool) -> GaloisKeys {
        let n = s.params.degree();
        let mut elements: Vec<u64> = steps
            .iter()
            .map(|&st| row_rotation_element(n, st))
            .filter(|&k| k != 1)
            .collect();
        if swap {
            elements.push(column_swap_element(n));
        }
        let t = s.params.plain_modulus();
        GaloisKeys::new(&s.sk, &elements, &[t], &mut s.rng).unwrap()
    }

    /// Insecure toy parameters (n = 2048): every kind of element, at the top level, one level
    /// down (scale q⁻¹ mod t) and after a product, relinearisation and switch (another scale),
    /// against the slot permutation of the plaintext.
    #[test]
    fn bgv_rotations_match_the_rotated_plaintext() {
        let mut s = setup(toy(2048), 81);
        let n = s.params.degree() as i64;
        let steps = [1i64, 2, 7, -1, -5, n / 2 - 1, 300, 0, n / 2];
        let gk = keys_for(&mut s, &steps, true);
        let v = s.random(30_000);
        let ct = s.encrypt(&v);
        let low = s.ev.mod_switch_to_next(&ct).unwrap();
        assert_ne!(low.scale(), 1);
        let w = s.random(100);
        let cw = s.encrypt_pk(&w);
        let cw = s.ev.mod_switch_to_next(&cw).unwrap();
        let prod =
            s.ev.relinearize(&s.ev.mul(&low, &cw).unwrap(), &s.rk)
                .unwrap();
        let prod = s.ev.mod_switch_to_next(&prod).unwrap();
        assert_ne!(prod.scale(), low.scale());
        let product = s.expect(|i| i128::from(v[i]) * i128::from(w[i]));
        for (c, want) in [(&ct, &v), (&low, &v), (&prod, &product)] {
            for &st in &steps {
                let r = s.ev.rotate_rows(c, st, &gk).unwrap();
                assert_eq!((r.level(), r.scale()), (c.level(), c.scale()));
                assert_eq!(s.decrypt(&r), rotated(want, st), "steps {st}");
            }
            let sw = s.ev.rotate_columns(c, &gk).unwrap();
            assert_eq!(sw.scale(), c.scale());
            assert_eq!(s.decrypt(&sw), swapped(want));
            let k = column_swap_element(n as usize);
            assert_eq!(s.ev.apply_galois(c, k, &gk).unwrap(), sw);
        }
        // Rotations compose: 2, then −1, then the swap; and the result still computes.
        let r = s.ev.rotate_rows(&low, 2, &gk).unwrap();
        let r = s.ev.rotate_rows(&r, -1, &gk).unwrap();
        let r = s.ev.rotate_columns(&r, &gk).unwrap();
        assert_eq!(s.decrypt(&r), swapped(&rotated(&v, 1)));
        let sum = s.ev.add(&r, &s.ev.rotate_rows(&low, 1, &gk).unwrap());
        let sum = s.ev.rotate_columns(&sum.unwrap(), &gk).unwrap();
        let twice = rotated(&v, 1)
            .iter()
            .zip(swapped(&rotated(&v, 1)))
            .map(|(&a, b)| i128::from(a) + i128::from(b))
            .collect::<Vec<_>>();
        assert_eq!(s.decrypt(&sum), swapped(&s.expect(|i| twice[i])));
        assert!(s.budget(&sum) > 0);
    }

    #[test]
    fn bgv_hoisted_rotations_equal_single_ones() {
        let mut s = setup(toy(1024), 82);
        let steps = [1i64, 3, -2, 0, 100, 1];
        let gk = keys_for(&mut s, &steps, false);
        let v = s.random(1000);
        let ct = s.encrypt(&v);
        let sq = s.ev.relinearize(&s.ev.square(&ct).unwrap(), &s.rk).unwrap();
        let low = s.ev.mod_switch_to_next(&sq).unwrap();
        for c in [&ct, &sq, &low] {
            let many = s.ev.rotate_many(c, &steps, &gk).unwrap();
            assert_eq!(many.len(), steps.len());
            for (&st, m) in steps.iter().zip(&many) {
                let single = s.ev.rotate_rows(c, st, &gk).unwrap();
                assert_eq!(&single, m, "steps {st}");
                assert_eq!(single.polys(), m.polys());
            }
            let elements: Vec<u64> = steps
                .iter()
                .map(|&st| row_rotation_element(1024, st))
                .filter(|&k| k != 1)
                .collect();
            let by_element = s.ev.apply_galois_many(c, &elements, &gk).unwrap();
            let nontrivial: Vec<&Ciphertext> = steps
                .iter()
                .zip(&many)
                .filter(|(&st, _)| row_rotation_element(1024, st) != 1)
                .map(|(_, m)| m)
                .collect();
            assert_eq!(by_element.iter().collect::<Vec<_>>(), nontrivial);
        }
        let squares = s.expect(|i| i128::from(v[i]).pow(2));
        for (&st, o) in steps
            .iter()
            .zip(s.ev.rotate_many(&low, &steps, &gk).unwrap())
        {
            assert_eq!(s.decrypt(&o), rotated(&squares, st));
        }
    }

    /// One key set for several plaintext primes: the keys' error is a multiple of T, so the
    /// same Galois keys rotate exactly under each prime.
    #[test]
    fn bgv_galois_keys_serve_every_plaintext_prime() {
        let base = toy(1024);
        let t0 = base.plain_modulus();
        let t1 = crate::math::ntt_primes(30, 1024, 1, &[t0]).unwrap()[0];
        let mut s = setup_for(base.clone(), &[t0, t1], 83);
        let gk = GaloisKeys::new(&s.sk, &[3, 2047], &[t0, t1], &mut s.rng).unwrap();
        for t in [t0, t1] {
            let params = base.with_plain_modulus(t).unwrap();
            let enc = crate::bfv::Encoder::new(&params);
            let ev = Evaluator::new(&params);
            let v: Vec<i64> = (0..1024).map(|i| (i % 301) - 150).collect();
            let ct = crate::bgv::encrypt(&s.sk, &enc.encode(&v).unwrap(), &mut s.rng).unwrap();
            let ct = ev.mod_switch_to_next(&ct).unwrap();
            let r = ev.rotate_columns(&ev.rotate_rows(&ct, 1, &gk).unwrap(), &gk);
            let got = enc
                .decode(&crate::bgv::decrypt(&s.sk, &r.unwrap()).unwrap())
                .unwrap();
            assert_eq!(got, swapped(&rotated(&v, 1)), "t={t}");
        }
    }

    #[test]
    fn bgv_missing_and_wrong_keys_are_clear_errors() {
        let mut s = setup(toy(1024), 84);
        let n = s.params.degree();
        let gk = keys_for(&mut s, &[1, 2], false);
        let ct = s.encrypt(&[1, 2, 3]);
        let e = s.ev.rotate_rows(&ct, 3, &gk).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no Galois key for a row rotation by 3 steps (element 27); the keys hold elements \
             [3, 9]: generate keys for this element, or rotate in steps whose keys are present"
        );
        let e = s.ev.rotate_many(&ct, &[1, -1], &gk).unwrap_err();
        assert!(
            matches!(&e, EvalError::MissingGaloisKey { element, .. }
                if *element == row_rotation_element(n, -1)),
            "{e}"
        );
        let e = s.ev.rotate_columns(&ct, &gk).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("no Galois key for the column swap (element 2047)"));
        let e = s.ev.apply_galois(&ct, 4, &gk).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Galois element 4 is not an odd number in 3..2048"
        );
        // The identity needs no key and returns the ciphertext as it is.
        assert_eq!(s.ev.rotate_rows(&ct, 0, &gk).unwrap(), ct);
        assert_eq!(s.ev.rotate_rows(&ct, n as i64 / 2, &gk).unwrap(), ct);
        // A size-3 ciphertext must be relinearised first.
        let sq = s.ev.square(&ct).unwrap();
        assert!(matches!(
            s.ev.rotate_rows(&sq, 1, &gk),
            Err(EvalError::UnsupportedSize { size: 3, max: 2 })
        ));
        // Keys made for other plaintext primes.
        let other_t = GaloisKeys::new(&s.sk, &[3], &[12289], &mut s.rng).unwrap();
        let e = s.ev.rotate_rows(&ct, 1, &other_t).unwrap_err();
        assert!(
            matches!(e, EvalError::PlainModulusNotCovered { t: 65537, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("do not include t=65537"), "{e}");
        // Keys of another ring.
        let other = toy(2048);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk2 = SecretKey::generate(&other, &mut rng);
        let gk2 = GaloisKeys::new(&sk2, &[3], &[65537], &mut rng).unwrap();
        assert!(matches!(
            s.ev.rotate_rows(&ct, 1, &gk2),
            Err(EvalError::KeyMismatch { .. })
        ));
        // A ciphertext of other parameters.
        let ev2 = Evaluator::new(&other);
        assert!(matches!(
            ev2.rotate_rows(&ct, 1, &gk2),
            Err(EvalError::ParamsMismatch { .. })
        ));
    }

    /// The real 128-bit set (n = 8192, 163-bit Q, 20-bit t): rotations are exact and cost a few
    /// bits of budget, hoisted or not; after a product the key-switching noise is negligible.
    /// Measured (seed 85): seeded fresh 138 → one rotation 133 → ten 131; public-key fresh
    /// 135 → 133 → 131; square + relin 103 → 103; switched 80 → 78.
    #[test]
    fn bgv_secure_n8192_rotation_noise() {
        let params = secure_8192();
        assert!(params.meets_security());
        let mut s = setup(params, 85);
        let steps = [1i64, -1, 64, 4095];
        let gk = keys_for(&mut s, &steps, true);
        let v = s.random(100_000);
        let mut report = Vec::new();
        for (label, ct) in [("seeded", s.encrypt(&v)), ("public-key", s.encrypt_pk(&v))] {
            let fresh = s.budget(&ct);
            let many = s.ev.rotate_many(&ct, &steps, &gk).unwrap();
            let mut worst = fresh;
            for (&st, r) in steps.iter().zip(&many) {
                assert_eq!(s.decrypt(r), rotated(&v, st));
                worst = worst.min(s.budget(r));
            }
            let sw = s.ev.rotate_columns(&ct, &gk).unwrap();
            assert_eq!(s.decrypt(&sw), swapped(&v));
            worst = worst.min(s.budget(&sw));
            let mut chain = ct.clone();
            for _ in 0..10 {
                chain = s.ev.rotate_rows(&chain, 1, &gk).unwrap();
            }
            assert_eq!(s.decrypt(&chain), rotated(&v, 10));
            let ten = s.budget(&chain);
            report.push(format!("{label}: fresh {fresh}, one {worst}, ten {ten}"));
            // The key switch ends with a division by p whose rounding (≈ t·‖s‖) and
            // T·E/p terms sit a few bits above a fresh seeded ciphertext's noise t·e, about
            // where public-key encryption (which ends with the same division) lands.
            let (one, ten_cap) = if label == "seeded" { (6, 8) } else { (2, 4) };
            assert!(
                fresh - worst <= one,
                "{label}: one rotation cost {}",
                fresh - worst
            );
            assert!(
                fresh - ten <= ten_cap,
                "{label}: ten rotations cost {}",
                fresh - ten
            );
            assert!(
                worst - ten <= 3,
                "{label}: nine more rotations cost {}",
                worst - ten
            );
        }
        let ct = s.encrypt_pk(&v);
        let sq = s.ev.relinearize(&s.ev.square(&ct).unwrap(), &s.rk).unwrap();
        let sq_rot = s.ev.rotate_rows(&sq, 1, &gk).unwrap();
        let low = s.ev.mod_switch_to_next(&sq).unwrap();
        let low_rot = s.ev.rotate_rows(&low, 1, &gk).unwrap();
        let squares = s.expect(|i| i128::from(v[i]).pow(2));
        assert_eq!(s.decrypt(&sq_rot), rotated(&squares, 1));
        assert_eq!(s.decrypt(&low_rot), rotated(&squares, 1));
        println!(
            "BGV n=8192 logQ=163 t={}: {}; square+relin {} -> rotated {}; switched {} -> \
             rotated {}",
            s.params.plain_modulus(),
            report.join("; "),
            s.budget(&sq),
            s.budget(&sq_rot),
            s.budget(&low),
            s.budget(&low_rot)
        );
        assert!(s.budget(&sq) - s.budget(&sq_rot) <= 1);
        assert!(s.budget(&low) - s.budget(&low_rot) <= 2);
        // Keys shared by two plaintext primes pay log2 T in what the key switch adds: here
        // about the second prime's 20 bits on a fresh ciphertext.
        let t = s.params.plain_modulus();
        let t1 = crate::math::ntt_primes(20, 8192, 1, &[t]).unwrap()[0];
        let shared = GaloisKeys::new(&s.sk, &[3], &[t, t1], &mut s.rng).unwrap();
        let fresh = s.budget(&ct);
        let r = s.ev.rotate_rows(&ct, 1, &shared).unwrap();
        assert_eq!(s.decrypt(&r), rotated(&v, 1));
        println!(
            "keys for t and a second 20-bit prime: public-key fresh {fresh} -> one rotation {}; \
             {} key bytes per element",
            s.budget(&r),
            crate::bgv::GaloisKeys::serialized_len_per_key(&s.params)
        );
        assert!(fresh - s.budget(&r) <= 24);
    }
}
