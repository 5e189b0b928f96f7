//! Galois keys, evaluation keys for rotations: one key-switching key per Galois element, for
//! exactly the elements asked for (a plan lists the rotations it needs). Like the
//! relinearisation key they reveal nothing about s without the secret, and their uniform
//! halves are expanded from a seed, which is what is stored and sent.

use super::secret::SecretKey;
use super::switching::{expand_a, expand_a_first, switching_b};
use super::KeyId;
use crate::bfv::error::EvalError;
use crate::bfv::galois::{automorphism_ntt, check_galois_element, inverse_element};
use crate::bfv::params::RingContext;
use crate::math::{Ntt, RnsPoly};
use rand::{CryptoRng, Rng, RngCore};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The key of one Galois element k. It switches from σ_k(s) to s, but is kept in the frame
/// σ_k^{-1}: component j is (b_j, a_j) = (−a_j·σ_k^{-1}(s) + e_j + [p·s in limb j], a_j), an
/// encryption of p·s under σ_k^{-1}(s) (the usual key with σ_k^{-1} applied to it). A
/// rotation then takes the inner product with the digits of c_1 as they are and applies σ_k
/// once to the two results, instead of permuting every digit: see `Evaluator::apply_galois`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct GaloisKey {
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly<Ntt>>,
    pub(crate) a: Vec<RnsPoly<Ntt>>,
}

impl GaloisKey {
    /// The key of `element` for `sk`, serving ciphertexts at levels up to `level` (at most
    /// the ring's L; see [`GaloisKeys::new_at_levels`]). The error factor is `None` for BFV;
    /// BGV passes the residues of the product T of its plaintext primes (see `switching_b`).
    pub(crate) fn new(
        sk: &SecretKey,
        element: u64,
        error_factor: Option<&[u64]>,
        level: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let ring = &sk.ring;
        let seed: [u8; 32] = rng.gen();
        let a = expand_a(ring, &seed);
        let inv = inverse_element(ring.degree(), element);
        let target = Zeroizing::new(automorphism_ntt(&sk.ntt, inv));
        let b = switching_b(ring, &sk.ntt, &target, &a, error_factor, rng);
        let mut key = GaloisKey { seed, b, a };
        key.limit(level);
        key
    }

    /// A key read back: `b` holds one component per level it serves.
    pub(crate) fn from_parts(ring: &RingContext, seed: [u8; 32], b: Vec<RnsPoly<Ntt>>) -> Self {
        let a = expand_a_first(ring, &seed, b.len());
        GaloisKey { a, seed, b }
    }

    /// Keeps the components that levels up to `level` read: a switch at level ℓ uses the first
    /// ℓ components, on the limbs of q_0..q_{ℓ-1} and p only.
    fn limit(&mut self, level: usize) {
        let level = level.clamp(1, self.b.len());
        self.b.truncate(level);
        self.a.truncate(level);
    }

    /// The highest level the key serves.
    pub(crate) fn level(&self) -> usize {
        self.b.len()
    }

    /// Refuses a switch at `level` when the key serves lower levels only.
    pub(crate) fn check_level(&self, element: u64, level: usize) -> Result<(), EvalError> {
        if level <= self.level() {
            return Ok(());
        }
        Err(EvalError::GaloisKeyLevel {
            element,
            key_level: self.level(),
            level,
        })
    }
}

/// Galois keys for a set of Galois elements (see [`crate::bfv::row_rotation_element`] and
/// [`crate::bfv::column_swap_element`] for the elements of slot rotations).
///
/// ```
/// use veil_runtime::bfv::*;
/// use rand::SeedableRng;
/// // Toy parameters, explicitly insecure.
/// let params = BfvParameters::builder()
///     .degree(1024).q_bits(&[50, 50]).special_bits(50).plain_modulus(65537)
///     .allow_insecure(true).build()?;
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let sk = SecretKey::generate(&params, &mut rng);
/// let n = params.degree();
/// let gk = GaloisKeys::new(&sk, &[row_rotation_element(n, 1), column_swap_element(n)], &mut rng)?;
/// let enc = Encoder::new(&params);
/// let ct = sk.encrypt(&enc.encode(&[1, 2, 3])?, &mut rng)?;
/// let ev = Evaluator::new(&params);
/// let out = enc.decode(&sk.decrypt(&ev.rotate_rows(&ct, 1, &gk)?)?)?;
/// assert_eq!(&out[..2], &[2, 3]);
/// // Slot 0 went round to the end of its row.
/// assert_eq!(out[n / 2 - 1], 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct GaloisKeys {
    pub(crate) ring: Arc<RingContext>,
    pub(crate) id: KeyId,
    pub(crate) keys: BTreeMap<u64, GaloisKey>,
}

impl fmt::Debug for GaloisKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GaloisKeys(ring={:016x}, set={}, elements={:?})",
            self.ring.fingerprint(),
            self.id,
            self.elements()
        )
    }
}

impl GaloisKeys {
    /// Generates the keys of `sk` for exactly `elements` (duplicates are generated once).
    /// Each must be odd and in 3..2n; the first that is not is reported.
    pub fn new(
        sk: &SecretKey,
        elements: &[u64],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, EvalError> {
        let top = sk.ring.max_level();
        let at: Vec<(u64, usize)> = elements.iter().map(|&k| (k, top)).collect();
        Self::new_at_levels(sk, &at, rng)
    }

    /// Like [`GaloisKeys::new`], but the key of each (element, level) serves ciphertexts at
    /// levels up to `level` only, and holds (and serialises) that many components on that many
    /// q primes and p: ℓ·(ℓ + 1) polynomial limbs instead of L·(L + 1). A plan that rotates at
    /// lower levels (after modulus switching) needs only these. A repeated element keeps its
    /// highest level.
    pub fn new_at_levels(
        sk: &SecretKey,
        elements: &[(u64, usize)],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, EvalError> {
        let keys = generate_at_levels(sk, elements, None, rng)?;
        Ok(GaloisKeys {
            ring: sk.ring.clone(),
            id: sk.id,
            keys,
        })
    }

    /// The highest level each element's key serves, by increasing element.
    pub fn levels(&self) -> Vec<(u64, usize)> {
        self.keys.iter().map(|(&k, key)| (k, key.level())).collect()
    }

    /// The elements held, in increasing order.
    pub fn elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
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

    /// Fingerprint of the ring.
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }

    pub(crate) fn get(&self, element: u64) -> Option<&GaloisKey> {
        self.keys.get(&element)
    }
}

/// The keys of `elements` (checked, duplicates at their highest level) with error factor
/// `error_factor`: BFV's and BGV's Galois keys alike.
pub(crate) fn generate_at_levels(
    sk: &SecretKey,
    elements: &[(u64, usize)],
    error_factor: Option<&[u64]>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<BTreeMap<u64, GaloisKey>, EvalError> {
    let n = sk.ring.degree();
    let mut wanted: BTreeMap<u64, usize> = BTreeMap::new();
    for &(k, level) in elements {
        check_galois_element(n, k)?;
        let at = wanted.entry(k).or_default();
        *at = (*at).max(level.clamp(1, sk.ring.max_level()));
    }
    Ok(wanted
        .into_iter()
        .map(|(k, level)| (k, GaloisKey::new(sk, k, error_factor, level, rng)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::params::tests::toy;
    use crate::math::pool;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Key generation drops σ_k^{-1}(s) and every a_j·σ_k^{-1}(s) only after wiping them.
    #[test]
    fn no_secret_derived_value_is_dropped_unwiped() {
        let params = toy(2048);
        let ring = params.ring().clone();
        let n = ring.degree();
        let moduli = ring.key_moduli();
        let mut rng = ChaCha20Rng::seed_from_u64(61);
        let sk = SecretKey::generate(&params, &mut rng);
        let elements = [3u64, 2 * n as u64 - 1];
        let (gk, dropped) = pool::recording(n, || GaloisKeys::new(&sk, &elements, &mut rng));
        let gk = gk.unwrap();
        let mut secret = Vec::new();
        for (&k, key) in &gk.keys {
            let target = automorphism_ntt(&sk.ntt, inverse_element(n, k));
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
}
