//! BGV Galois keys, the evaluation keys of rotations: one key-switching key per Galois element,
//! for exactly the elements asked for. They are BFV's Galois keys with one change, the one
//! that separates the two schemes' relinearisation keys too: the error of every component is
//! multiplied by T = Π t_i, so what a key switch adds to the phase is a multiple of each
//! plaintext prime the keys serve. Generation, the σ_k⁻¹ frame and the seeded uniform halves
//! are BFV's (`bfv/keys/galois.rs`), shared rather than repeated.

use super::keys::{check_plain_primes, product_mod};
use crate::bfv::{generate_at_levels, EvalError, GaloisKey, KeyId, RingContext, SecretKey};
use rand::{CryptoRng, RngCore};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// BGV Galois keys for a set of Galois elements (see [`crate::bfv::row_rotation_element`] and
/// [`crate::bfv::column_swap_element`] for the elements of slot rotations), serving the
/// plaintext primes they were made for.
///
/// The key of element k holds, for each q prime j, (b_j, a_j) with
/// b_j + a_j·σ_k⁻¹(s) = T·e_j + [p·s in limb j] over Q·p (NTT form, a_j expanded from the
/// key's 32-byte seed): an encryption of p·s under σ_k⁻¹(s). A rotation key-switches the digits
/// of c_1 as they are and applies σ_k once at the end (see `Evaluator::apply_galois`).
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
/// let n = params.degree();
/// let elements = [bfv::row_rotation_element(n, 1), bfv::column_swap_element(n)];
/// let gk = bgv::GaloisKeys::new(&sk, &elements, &[65537], &mut rng)?;
/// let enc = bfv::Encoder::new(&params);
/// let ct = bgv::encrypt(&sk, &enc.encode(&[1, 2, 3])?, &mut rng)?;
/// let ev = bgv::Evaluator::new(&params);
/// let out = enc.decode(&bgv::decrypt(&sk, &ev.rotate_rows(&ct, 1, &gk)?)?)?;
/// assert_eq!(&out[..2], &[2, 3]);
/// // Slot 0 went round to the end of its row.
/// assert_eq!(out[n / 2 - 1], 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct GaloisKeys {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) id: KeyId,
    pub(crate) plain_primes: Vec<u64>,
    pub(crate) keys: BTreeMap<u64, GaloisKey>,
}

impl fmt::Debug for GaloisKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bgv::GaloisKeys(ring={:016x}, set={}, plain_primes={:?}, elements={:?})",
            self.ring.fingerprint(),
            self.id,
            self.plain_primes,
            self.elements()
        )
    }
}

impl GaloisKeys {
    /// Generates the keys of `sk` for exactly `elements` (duplicates are generated once),
    /// serving the plaintext primes `plain_primes` (a plan's `params.plain_primes`). Each
    /// element must be odd and in 3..2n; the first that is not is reported, and the primes are
    /// checked as for [`crate::bgv::RelinKey::new`].
    pub fn new(
        sk: &SecretKey,
        elements: &[u64],
        plain_primes: &[u64],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, EvalError> {
        let top = sk.ring().max_level();
        let at: Vec<(u64, usize)> = elements.iter().map(|&k| (k, top)).collect();
        Self::new_at_levels(sk, &at, plain_primes, rng)
    }

    /// Like [`GaloisKeys::new`], but each key serves levels up to its own (see
    /// [`crate::bfv::GaloisKeys::new_at_levels`]).
    pub fn new_at_levels(
        sk: &SecretKey,
        elements: &[(u64, usize)],
        plain_primes: &[u64],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, EvalError> {
        let ring = sk.ring().clone();
        let mut ring_primes = ring.q_values();
        ring_primes.push(ring.special().value());
        check_plain_primes(plain_primes, &ring_primes)?;
        let factor = product_mod(plain_primes, ring.key_moduli());
        let keys = generate_at_levels(sk, elements, Some(&factor), rng)?;
        Ok(GaloisKeys {
            ring,
            id: sk.id(),
            plain_primes: plain_primes.to_vec(),
            keys,
        })
    }

    /// The elements held, in increasing order.
    pub fn elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// The highest level each element's key serves, by increasing element.
    pub fn levels(&self) -> Vec<(u64, usize)> {
        self.keys.iter().map(|(&k, key)| (k, key.level())).collect()
    }

    /// Whether the key of `element` is held.
    pub fn contains(&self, element: u64) -> bool {
        self.keys.contains_key(&element)
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no element is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id of the key set these keys belong to (their secret key's).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The plaintext primes these keys serve.
    pub fn plain_primes(&self) -> &[u64] {
        &self.plain_primes
    }

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }

    pub(crate) fn get(&self, element: u64) -> Option<&GaloisKey> {
        self.keys.get(&element)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::test_params::toy;
    use crate::bfv::{automorphism_ntt, column_swap_element, row_rotation_element};
    use crate::math::pool;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Each component satisfies b_j + a_j·σ_k⁻¹(s) − [p·s in limb j] = T·e_j: a multiple of T
    /// with a small cofactor, checked on the centred coefficients.
    #[test]
    fn bgv_galois_key_error_is_a_small_multiple_of_t() {
        let params = toy(1024);
        let ring = params.ring().clone();
        let n = ring.degree();
        let moduli = ring.key_moduli();
        let mut rng = ChaCha20Rng::seed_from_u64(70);
        let sk = SecretKey::generate(&params, &mut rng);
        let primes = [65537u64, 12289];
        let k = row_rotation_element(n, 3);
        let gk = GaloisKeys::new(&sk, &[k], &primes, &mut rng).unwrap();
        let key = gk.get(k).unwrap();
        // σ_k⁻¹ for k = g³ is σ for g⁻³.
        assert_eq!(inverse(n, k), row_rotation_element(n, -3));
        let target = automorphism_ntt(&sk.ntt, inverse(n, k));
        let big_t = 65537u64 * 12289;
        for (j, (b, a)) in key.b.iter().zip(&key.a).enumerate() {
            let mut x = a.clone();
            x.mul_assign(&target, moduli);
            x.add_assign(b, moduli);
            let m = &moduli[j];
            let pm = ring.special_mod_q()[j];
            let ps = sk
                .ntt
                .limb(j)
                .iter()
                .map(|&s| m.mul(s, pm))
                .collect::<Vec<_>>();
            for (v, &ps) in x.limb_mut(j).iter_mut().zip(&ps) {
                *v = m.sub(*v, ps);
            }
            let e = x.into_coeff(ring.key_tables());
            for (limb, m) in e.data().chunks_exact(n).zip(moduli) {
                for &v in limb {
                    let c = if v > m.value() / 2 {
                        -((m.value() - v) as i128)
                    } else {
                        v as i128
                    };
                    assert_eq!(c % i128::from(big_t), 0, "component {j}");
                    assert!(c.abs() <= 40 * i128::from(big_t), "component {j}: {c}");
                }
            }
        }
    }

    #[test]
    fn bgv_galois_keys_accessors_and_refusals() {
        let params = toy(1024);
        let n = params.degree();
        let mut rng = ChaCha20Rng::seed_from_u64(71);
        let sk = SecretKey::generate(&params, &mut rng);
        let swap = column_swap_element(n);
        let gk = GaloisKeys::new(&sk, &[swap, 3, swap], &[65537], &mut rng).unwrap();
        assert_eq!(gk.elements(), vec![3, swap]);
        assert!(gk.contains(3) && gk.contains(swap) && !gk.contains(9));
        assert_eq!((gk.len(), gk.is_empty()), (2, false));
        assert_eq!(gk.id(), sk.id());
        assert_eq!(gk.plain_primes(), &[65537]);
        assert_eq!(gk.ring_fingerprint(), params.ring_fingerprint());
        assert_eq!(
            format!("{gk:?}"),
            format!(
                "bgv::GaloisKeys(ring={:016x}, set={}, plain_primes=[65537], elements=[3, 2047])",
                params.ring_fingerprint(),
                sk.id()
            )
        );
        let empty = GaloisKeys::new(&sk, &[], &[65537], &mut rng).unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            GaloisKeys::new(&sk, &[3, 4], &[65537], &mut rng).unwrap_err(),
            EvalError::BadGaloisElement {
                element: 4,
                two_n: 2048
            }
        );
        let e = GaloisKeys::new(&sk, &[3], &[], &mut rng).unwrap_err();
        assert!(e.to_string().contains("the list is empty"), "{e}");
        let q0 = params.q_primes()[0];
        let e = GaloisKeys::new(&sk, &[3], &[q0], &mut rng).unwrap_err();
        assert!(matches!(e, EvalError::InvalidPlainPrimes { .. }), "{e}");
    }

    /// Key generation drops σ_k⁻¹(s) and every a_j·σ_k⁻¹(s) only after wiping them, with the
    /// error scaled by T as well.
    #[test]
    fn bgv_galois_keygen_drops_no_secret_unwiped() {
        let params = toy(2048);
        let ring = params.ring().clone();
        let n = ring.degree();
        let moduli = ring.key_moduli();
        let mut rng = ChaCha20Rng::seed_from_u64(72);
        let sk = SecretKey::generate(&params, &mut rng);
        let elements = [3u64, column_swap_element(n)];
        let (gk, dropped) =
            pool::recording(n, || GaloisKeys::new(&sk, &elements, &[65537], &mut rng));
        let gk = gk.unwrap();
        let mut secret = Vec::new();
        for (&k, key) in &gk.keys {
            let target = automorphism_ntt(&sk.ntt, inverse(n, k));
            for aj in &key.a {
                let mut at = aj.clone();
                at.mul_assign(&target, moduli);
                secret.push(at);
            }
            secret.push(target);
        }
        let leaked = secret
            .iter()
            .flat_map(|p| p.data().chunks_exact(n))
            .filter(|limb| dropped.contains(&pool::fingerprint(limb)))
            .count();
        assert_eq!(
            leaked, 0,
            "limbs of secret-derived values were dropped unwiped"
        );
    }

    /// k⁻¹ mod 2n by search (tests only).
    fn inverse(n: usize, k: u64) -> u64 {
        let two_n = 2 * n as u64;
        (1..two_n)
            .step_by(2)
            .find(|&x| x * k % two_n == 1)
            .unwrap_or(1)
    }
}
