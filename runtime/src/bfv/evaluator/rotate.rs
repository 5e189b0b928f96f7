//! Rotations: Galois automorphisms of ciphertexts followed by a key switch back to s.
//!
//! A ciphertext (c_0, c_1) under s becomes (σ_k(c_0), σ_k(c_1)) under σ_k(s); switching
//! σ_k(c_1) back to s needs the Galois key of k. The keys are kept in the frame σ_k^{-1}
//! (see `keys/galois.rs`), so the key switch works on the digits of c_1 itself and σ_k is
//! applied once, at the end, to the two switched polynomials (coefficient form: a permutation
//! with sign flips):
//!
//!   (c_0', c_1') = (σ_k(c_0 + ⌊Σ_j d_j·b_j / p⌉), σ_k(⌊Σ_j d_j·a_j / p⌉)),
//!
//! with d_j the RNS digits of c_1. The decomposition (the ℓ·(ℓ+1) NTTs, most of a key switch)
//! does not depend on k, so [`Evaluator::rotate_many`] does it once for all the rotations of
//! one ciphertext (hoisting); each rotation then costs an inner product, 2(ℓ+1) inverse NTTs
//! and the permutation. A single rotation is a hoisted one with one element, so both give
//! the same ciphertexts bit for bit.

use super::key_switch::Decomposed;
use super::{EvalError, Evaluator};
use crate::bfv::ciphertext::Ciphertext;
use crate::bfv::galois::{
    automorphism_coeff, automorphism_ops, column_swap_op, find_keys, row_rotation_ops, GaloisOp,
};
use crate::bfv::keys::GaloisKeys;

impl Evaluator {
    /// Rotates both rows of slots left by `steps` (slot c receives slot c + steps, cyclically
    /// within each row of n/2 slots; negative steps rotate right). Needs the key of
    /// [`row_rotation_element`]`(n, steps)`; a rotation by a multiple of n/2 is the identity.
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
    /// decomposes c_1 once, then switches and permutes per element. The elements go one after
    /// the other: each step is parallel over the primes already, and one rotation's
    /// temporaries at a time keep the memory flat.
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
        let qs = self.moduli(level);
        let digits = Decomposed::new(ring, &ct.polys[1], level);
        Ok(found
            .iter()
            .map(|&(k, key)| match key {
                None => ct.clone(),
                Some(key) => {
                    let (c0, c1) = digits.switch(&key.b, &key.a, Some(&ct.polys[0]), None);
                    let (c0, c1) = rayon::join(
                        || automorphism_coeff(&c0, qs, k),
                        || automorphism_coeff(&c1, qs, k),
                    );
                    Ciphertext::new(self.params.clone(), vec![c0, c1], level)
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::support::{setup, Setup};
    use super::*;
    use crate::bfv::keys::SecretKey;
    use crate::bfv::params::tests::toy;
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
        GaloisKeys::new(&s.sk, &elements, &mut s.rng).unwrap()
    }

    /// Insecure toy parameters (n = 2048): every kind of element, at the top level and one
    /// below, against the slot rotation of the plaintext.
    #[test]
    fn rotations_match_the_rotated_plaintext() {
        let mut s = setup(toy(2048), 41);
        let n = s.params.degree() as i64;
        let steps = [1i64, 2, 7, -1, -5, n / 2 - 1, 300, 0, n / 2];
        let gk = keys_for(&mut s, &steps, true);
        let v = s.random(30_000);
        let ct = s.encrypt(&v);
        let low = s.ev.mod_switch_to_next(&ct).unwrap();
        for c in [&ct, &low] {
            for &st in &steps {
                let r = s.ev.rotate_rows(c, st, &gk).unwrap();
                assert_eq!(r.level(), c.level());
                assert_eq!(s.decrypt(&r), rotated(&v, st), "steps {st}");
            }
            let sw = s.ev.rotate_columns(c, &gk).unwrap();
            assert_eq!(s.decrypt(&sw), swapped(&v));
        }
        // Rotations compose: 2 then −1 then the swap.
        let r = s.ev.rotate_rows(&ct, 2, &gk).unwrap();
        let r = s.ev.rotate_rows(&r, -1, &gk).unwrap();
        let r = s.ev.rotate_columns(&r, &gk).unwrap();
        assert_eq!(s.decrypt(&r), swapped(&rotated(&v, 1)));
        assert!(s.budget(&r) > 0);
    }

    #[test]
    fn keys_for_lower_levels_rotate_there_and_refuse_above() {
        let mut s = setup(toy(1024), 45);
        let n = s.params.degree();
        let (k1, k2) = (row_rotation_element(n, 1), row_rotation_element(n, 2));
        let gk =
            GaloisKeys::new_at_levels(&s.sk, &[(k1, 2), (k2, 1), (k1, 1)], &mut s.rng).unwrap();
        assert_eq!(gk.levels(), vec![(3, 2), (9, 1)]);
        let full = GaloisKeys::new(&s.sk, &[k1, k2], &mut s.rng).unwrap();
        assert!(gk.serialized_len() < full.serialized_len() * 2 / 3);
        let back = GaloisKeys::from_bytes(&s.params, &gk.to_bytes()).unwrap();
        assert_eq!(back.levels(), gk.levels());
        let v = s.random(1000);
        let top = s.encrypt(&v);
        let two = s.ev.mod_switch_to_next(&top).unwrap();
        let one = s.ev.mod_switch_to_next(&two).unwrap();
        for keys in [&gk, &back] {
            assert_eq!(
                s.decrypt(&s.ev.rotate_rows(&two, 1, keys).unwrap()),
                rotated(&v, 1)
            );
            assert_eq!(
                s.decrypt(&s.ev.rotate_rows(&one, 2, keys).unwrap()),
                rotated(&v, 2)
            );
            let err = s.ev.rotate_rows(&top, 1, keys).unwrap_err().to_string();
            assert!(err.contains("serves levels up to 2"), "{err}");
            assert!(s.ev.rotate_many(&two, &[1, 2], keys).is_err());
        }
    }

    #[test]
    fn hoisted_rotations_equal_single_ones() {
        let mut s = setup(toy(1024), 42);
        let steps = [1i64, 3, -2, 0, 100, 1];
        let gk = keys_for(&mut s, &steps, false);
        let v = s.random(1000);
        let ct = s.encrypt(&v);
        let sq = s.ev.relinearize(&s.ev.square(&ct).unwrap(), &s.rk).unwrap();
        for c in [&ct, &sq] {
            let many = s.ev.rotate_many(c, &steps, &gk).unwrap();
            assert_eq!(many.len(), steps.len());
            for (&st, m) in steps.iter().zip(&many) {
                let single = s.ev.rotate_rows(c, st, &gk).unwrap();
                assert_eq!(&single, m, "steps {st}");
            }
        }
        let out: Vec<Vec<i64>> =
            s.ev.rotate_many(&sq, &steps, &gk)
                .unwrap()
                .iter()
                .map(|c| s.decrypt(c))
                .collect();
        let squares = s.expect(|i| i128::from(v[i]).pow(2));
        for (&st, o) in steps.iter().zip(&out) {
            assert_eq!(o, &rotated(&squares, st));
        }
    }

    /// The automorphism alone: σ_k(ct) decrypts under σ_k(s) (a key built from the permuted
    /// coefficients) to the rotated message, before any key switch.
    #[test]
    fn the_automorphism_alone_moves_the_secret() {
        let mut s = setup(toy(1024), 43);
        let n = s.params.degree();
        let v = s.random(500);
        let ct = s.encrypt(&v);
        let k = row_rotation_element(n, 5);
        let mut coeffs = vec![0i8; n];
        for (i, &c) in s.sk.coeffs.iter().enumerate() {
            let j = i * k as usize % (2 * n);
            if j < n {
                coeffs[j] = c;
            } else {
                coeffs[j - n] = -c;
            }
        }
        let sk_k = SecretKey::from_coeffs(s.sk.ring().clone(), coeffs, s.sk.id());
        let qs = &s.params.ring().q()[..ct.level()];
        let polys = ct
            .polys()
            .iter()
            .map(|p| automorphism_coeff(p, qs, k))
            .collect();
        let moved = Ciphertext::new(s.params.clone(), polys, ct.level());
        let out = s.enc.decode(&sk_k.decrypt(&moved).unwrap()).unwrap();
        assert_eq!(out, rotated(&v, 5));
    }

    #[test]
    fn missing_and_wrong_keys_are_clear_errors() {
        let mut s = setup(toy(1024), 44);
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
        let e = GaloisKeys::new(&s.sk, &[3, 2048 + 3], &mut s.rng).unwrap_err();
        assert_eq!(
            e,
            EvalError::BadGaloisElement {
                element: 2051,
                two_n: 2048
            }
        );
        assert!(GaloisKeys::new(&s.sk, &[1], &mut s.rng).is_err());
        // Duplicates are generated once; the identity needs no key.
        let dup = GaloisKeys::new(&s.sk, &[9, 3, 9], &mut s.rng).unwrap();
        assert_eq!(dup.elements(), vec![3, 9]);
        assert_eq!(s.ev.rotate_rows(&ct, 0, &dup).unwrap(), ct);
        // A size-3 ciphertext must be relinearised first.
        let sq = s.ev.square(&ct).unwrap();
        assert!(matches!(
            s.ev.rotate_rows(&sq, 1, &gk),
            Err(EvalError::UnsupportedSize { size: 3, max: 2 })
        ));
        // Keys of another ring.
        let other = toy(2048);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk2 = SecretKey::generate(&other, &mut rng);
        let gk2 = GaloisKeys::new(&sk2, &[3], &mut rng).unwrap();
        assert!(matches!(
            s.ev.rotate_rows(&ct, 1, &gk2),
            Err(EvalError::KeyMismatch { .. })
        ));
    }

    /// A real 128-bit set (n = 8192, 163-bit Q): rotations are exact and cost a few bits of
    /// budget, hoisted or not.
    #[test]
    fn secure_n8192_rotation_noise() {
        let params = crate::bfv::params::tests::secure_8192();
        assert!(params.meets_security());
        let mut s = setup(params, 45);
        let steps = [1i64, -1, 64, 4095];
        let gk = keys_for(&mut s, &steps, true);
        let v = s.random(100_000);
        let pt = s.enc.encode(&v).unwrap();
        let ct = s.pk.encrypt(&pt, &mut s.rng).unwrap();
        let fresh = s.budget(&ct);
        let many = s.ev.rotate_many(&ct, &steps, &gk).unwrap();
        let mut worst = fresh;
        for (&st, r) in steps.iter().zip(&many) {
            assert_eq!(s.decrypt(r), rotated(&v, st));
            worst = worst.min(s.budget(r));
        }
        let sw = s.ev.rotate_columns(&ct, &gk).unwrap();
        assert_eq!(s.decrypt(&sw), swapped(&v));
        // Ten rotations in a row.
        let mut chain = ct.clone();
        for _ in 0..10 {
            chain = s.ev.rotate_rows(&chain, 1, &gk).unwrap();
        }
        assert_eq!(s.decrypt(&chain), rotated(&v, 10));
        let after_ten = s.budget(&chain);
        // After a product the key-switching noise is negligible.
        let sq = s.ev.relinearize(&s.ev.square(&ct).unwrap(), &s.rk).unwrap();
        let sq_rot = s.ev.rotate_rows(&sq, 1, &gk).unwrap();
        println!(
            "n=8192 logQ=163 t={}: fresh {fresh} bits, one rotation {worst}, ten rotations \
             {after_ten}, square+relin {} -> rotated {}",
            s.params.plain_modulus(),
            s.budget(&sq),
            s.budget(&sq_rot)
        );
        assert!(after_ten > 0);
        assert!(
            fresh - worst <= 2,
            "one rotation cost {} bits",
            fresh - worst
        );
        assert!(
            fresh - after_ten <= 3,
            "ten rotations cost {} bits",
            fresh - after_ten
        );
        assert!(s.budget(&sq) - s.budget(&sq_rot) <= 1);
    }
}
