//! BFV parameters: the ring (degree, ciphertext primes, special key-switching prime) and the
//! full parameter set (ring + plaintext modulus), validated on construction, with stable
//! fingerprints and every per-level constant precomputed. The ring, the per-level constants,
//! the builder and the error each have their own file; the limits and the full set live here.

mod builder;
mod error;
mod level;
mod ring;

pub use builder::BfvParametersBuilder;
pub use error::ParamError;
pub(crate) use level::LevelContext;
pub use ring::RingContext;

use crate::math::{fnv1a, Modulus, NttTable};
use crate::math::{is_prime, ntt_primes, MAX_PRIME_BITS};
use crate::security::SecurityLevel;
use std::fmt;
use std::sync::Arc;

/// Smallest supported ring degree.
pub const MIN_DEGREE: usize = 1024;
/// Largest supported ring degree.
pub const MAX_DEGREE: usize = 32768;
/// Largest supported number of ciphertext primes.
pub const MAX_Q_PRIMES: usize = 20;
/// Largest supported log2 of the whole modulus (Q·p), bounded by the internal big integers.
pub const MAX_LOG2_MODULUS: f64 = 1000.0;
/// Most primes (ciphertext + auxiliary) one multiplication handles.
pub const MAX_HPS_WIDTH: usize = 64;
/// Bit size of the auxiliary primes used by HPS multiplication.
pub const AUX_PRIME_BITS: u32 = 61;

/// Number of auxiliary primes a multiplication at a level with ciphertext modulus
/// `Q = 2^log2_q` extends to, in ring degree `n`: enough for the tensor product of centred
/// ciphertexts (below n·Q²/2) with 4 bits to spare, counting `AUX_PRIME_BITS − 1` bits per
/// prime. The compiler's cost model calls this too, so both sides count the same primes.
pub fn aux_prime_count(log2_q: f64, n: usize) -> usize {
    let need = log2_q + (n as f64).log2() + 4.0;
    (need / f64::from(AUX_PRIME_BITS - 1)).ceil() as usize
}

/// A complete BFV parameter set: a [`RingContext`] plus a plaintext modulus t.
pub struct BfvParameters {
    ring: Arc<RingContext>,
    plain: Modulus,
    plain_table: NttTable,
    security: SecurityLevel,
    insecure: bool,
    aux: Vec<Modulus>,
    aux_tables: Vec<NttTable>,
    levels: Vec<LevelContext>,
    fingerprint: u64,
}

impl fmt::Debug for BfvParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BfvParameters")
            .field("degree", &self.ring.degree())
            .field("q", &self.ring.q_values())
            .field("special", &self.ring.special().value())
            .field("t", &self.plain.value())
            .field("security", &self.security)
            .field("insecure", &self.insecure)
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

impl BfvParameters {
    /// Starts a builder.
    pub fn builder() -> BfvParametersBuilder {
        BfvParametersBuilder::default()
    }

    /// The full set for `ring` and plaintext modulus `t`: checks t against the ring, then
    /// precomputes the auxiliary base and the constants of every level.
    fn from_ring(
        ring: Arc<RingContext>,
        t: u64,
        security: SecurityLevel,
        insecure: bool,
    ) -> Result<Arc<Self>, ParamError> {
        let n = ring.degree();
        check_plain_modulus(&ring, t)?;
        let internal = ParamError::Internal;
        let plain = Modulus::new(t).ok_or(internal("t out of range"))?;
        let plain_table = NttTable::new(plain, n).ok_or(internal("no NTT mod t"))?;
        let count = aux_prime_count(ring.log2_q(ring.max_level()), n);
        let aux = AuxBase::new(&ring, t, count)?;
        // Level ℓ uses the shortest prefix P_ℓ of the auxiliary list that is enough for Q_ℓ.
        let levels = (1..=ring.max_level())
            .map(|level| {
                let aux_count = aux_prime_count(ring.log2_q(level), n).min(count);
                LevelContext::new(
                    &ring,
                    level,
                    t,
                    &aux.values[..aux_count],
                    &aux.moduli[..aux_count],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fingerprint = parameters_fingerprint(&ring, t);
        Ok(Arc::new(BfvParameters {
            ring,
            plain,
            plain_table,
            security,
            insecure,
            aux: aux.moduli,
            aux_tables: aux.tables,
            levels,
            fingerprint,
        }))
    }

    /// The same ring (and therefore the same keys) with another plaintext modulus.
    pub fn with_plain_modulus(&self, t: u64) -> Result<Arc<Self>, ParamError> {
        Self::from_ring(self.ring.clone(), t, self.security, self.insecure)
    }

    /// The ring shared by all parameter sets that differ only in t.
    pub fn ring(&self) -> &Arc<RingContext> {
        &self.ring
    }

    /// Ring degree n (also the number of slots).
    pub fn degree(&self) -> usize {
        self.ring.degree()
    }

    /// The plaintext modulus t.
    pub fn plain_modulus(&self) -> u64 {
        self.plain.value()
    }

    pub(crate) fn plain(&self) -> &Modulus {
        &self.plain
    }

    pub(crate) fn plain_table(&self) -> &NttTable {
        &self.plain_table
    }

    /// Number of ciphertext primes (the level of fresh ciphertexts).
    pub fn max_level(&self) -> usize {
        self.ring.max_level()
    }

    /// The ciphertext primes.
    pub fn q_primes(&self) -> Vec<u64> {
        self.ring.q_values()
    }

    /// The special key-switching prime.
    pub fn special_prime(&self) -> u64 {
        self.ring.special().value()
    }

    /// The auxiliary primes used internally by multiplication.
    pub fn aux_primes(&self) -> Vec<u64> {
        self.aux.iter().map(|m| m.value()).collect()
    }

    pub(crate) fn aux(&self) -> &[Modulus] {
        &self.aux
    }

    pub(crate) fn aux_tables(&self) -> &[NttTable] {
        &self.aux_tables
    }

    /// The requested security level.
    pub fn security(&self) -> SecurityLevel {
        self.security
    }

    /// Whether the caller opted into parameters beyond the security bound.
    pub fn is_insecure_allowed(&self) -> bool {
        self.insecure
    }

    /// Whether the modulus satisfies the bound of the requested security level.
    pub fn meets_security(&self) -> bool {
        self.security
            .max_log2_modulus(self.degree())
            .is_some_and(|max| self.ring.log2_modulus() <= f64::from(max))
    }

    pub(crate) fn level(&self, level: usize) -> Option<&LevelContext> {
        level.checked_sub(1).and_then(|i| self.levels.get(i))
    }

    /// Stable 64-bit hash of (ring fingerprint, t).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Fingerprint of the ring alone (what keys carry).
    pub fn ring_fingerprint(&self) -> u64 {
        self.ring.fingerprint()
    }
}

/// t must fit the arithmetic, be prime, be ≡ 1 mod 2n (for batching) and lie below every q
/// prime.
fn check_plain_modulus(ring: &RingContext, t: u64) -> Result<(), ParamError> {
    let two_n = 2 * ring.degree() as u64;
    if 64 - t.leading_zeros() > MAX_PRIME_BITS {
        return Err(ParamError::PrimeTooLarge {
            what: "t",
            value: t,
            bits: 64 - t.leading_zeros(),
            max: MAX_PRIME_BITS,
        });
    }
    if !is_prime(t) {
        return Err(ParamError::NotPrime {
            what: "t",
            value: t,
        });
    }
    if t % two_n != 1 {
        return Err(ParamError::NotNttFriendly {
            what: "t",
            value: t,
            two_n,
        });
    }
    for (index, q) in ring.q().iter().enumerate() {
        if t >= q.value() {
            return Err(ParamError::PlainNotBelowQ {
                t,
                q: q.value(),
                index,
            });
        }
    }
    Ok(())
}

/// The auxiliary base P for HPS, `count` primes distinct from the ring's and from t, with
/// their NTT tables. The tensor product of centred ciphertexts is below n·Q²/2 in absolute
/// value, so P ≥ 2^4·n·Q keeps it below Q·P/2^5, far enough from Q·P/2 for the floating-point
/// overflow count of the CRT reconstruction to be exact.
struct AuxBase {
    values: Vec<u64>,
    moduli: Vec<Modulus>,
    tables: Vec<NttTable>,
}

impl AuxBase {
    fn new(ring: &RingContext, t: u64, count: usize) -> Result<Self, ParamError> {
        let n = ring.degree();
        let internal = ParamError::Internal;
        let mut avoid = ring.q_values();
        avoid.push(ring.special().value());
        avoid.push(t);
        let values = ntt_primes(AUX_PRIME_BITS, n, count, &avoid)?;
        let moduli = values
            .iter()
            .map(|&v| Modulus::new(v).ok_or(internal("aux prime")))
            .collect::<Result<Vec<_>, _>>()?;
        let tables = moduli
            .iter()
            .map(|&m| NttTable::new(m, n).ok_or(internal("aux NTT")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuxBase {
            values,
            moduli,
            tables,
        })
    }
}

/// Stable 64-bit hash of (ring fingerprint, t).
fn parameters_fingerprint(ring: &RingContext, t: u64) -> u64 {
    let mut enc = b"veil-bfv\0".to_vec();
    enc.extend_from_slice(&ring.fingerprint().to_le_bytes());
    enc.extend_from_slice(&t.to_le_bytes());
    fnv1a(&enc)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::math::ntt_primes;

    /// The real set of the 128-bit tests: n = 8192, q of 54 + 54 + 55 bits, a 55-bit special
    /// prime and a 20-bit t.
    pub fn secure_8192() -> Arc<BfvParameters> {
        BfvParameters::builder()
            .degree(8192)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_bits(20)
            .build()
            .unwrap()
    }

    /// A toy set for logic tests: n=2048, three 50-bit q primes (insecure).
    pub fn toy(n: usize) -> Arc<BfvParameters> {
        BfvParameters::builder()
            .degree(n)
            .q_bits(&[50, 50, 50])
            .special_bits(51)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap()
    }

    #[test]
    fn security_check_refuses_n4096_with_218_bits() {
        let err = BfvParameters::builder()
            .degree(4096)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_modulus(65537)
            .build()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ParamError::Insecure { max: 109, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("128-bit security at n=4096 allows at most 109"),
            "{msg}"
        );
        // The same modulus at n=8192 is fine.
        let ok = BfvParameters::builder()
            .degree(8192)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_bits(20)
            .build()
            .unwrap();
        assert!(ok.meets_security());
        assert!(ok.ring().log2_modulus() <= 218.0);
        // Opting in accepts it.
        assert!(BfvParameters::builder()
            .degree(4096)
            .q_bits(&[54, 54, 55])
            .special_bits(55)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .is_ok());
    }

    #[test]
    fn errors_name_the_broken_bound() {
        let base = || {
            BfvParameters::builder()
                .degree(2048)
                .q_bits(&[40, 40])
                .special_bits(40)
                .allow_insecure(true)
        };
        let e = base().plain_modulus(65539).build().unwrap_err();
        assert!(
            matches!(e, ParamError::NotNttFriendly { what: "t", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("t=65539 is not ≡ 1 mod 2n=4096"));
        let e = base().plain_modulus(65537 * 3).build().unwrap_err();
        assert_eq!(e.to_string(), format!("t={} is not prime", 65537 * 3));
        let e = BfvParameters::builder()
            .degree(3000)
            .q_bits(&[40])
            .special_bits(40)
            .plain_modulus(65537)
            .build()
            .unwrap_err();
        assert!(matches!(e, ParamError::Degree { degree: 3000, .. }));
        let q = ntt_primes(40, 2048, 1, &[]).unwrap()[0];
        let e = BfvParameters::builder()
            .degree(2048)
            .q_primes(vec![q, q])
            .special_bits(41)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap_err();
        assert_eq!(e, ParamError::DuplicatePrime { value: q });
        let e = BfvParameters::builder()
            .degree(2048)
            .q_bits(&[20])
            .special_bits(21)
            .plain_modulus(ntt_primes(21, 2048, 1, &[]).unwrap()[0])
            .allow_insecure(true)
            .build()
            .unwrap_err();
        assert!(matches!(e, ParamError::PlainNotBelowQ { .. }), "{e}");
        let e = base()
            .special_bits(30)
            .plain_modulus(65537)
            .build()
            .unwrap_err();
        assert!(matches!(e, ParamError::SpecialTooSmall { .. }), "{e}");
        let e = base().build().unwrap_err();
        assert_eq!(e, ParamError::NoPlainModulus);
    }

    #[test]
    fn fingerprints_separate_ring_and_plaintext() {
        let a = toy(2048);
        let b = a.with_plain_modulus(12289).unwrap();
        assert_eq!(a.ring_fingerprint(), b.ring_fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let c = toy(2048);
        assert_eq!(a.fingerprint(), c.fingerprint());
        assert!(a.with_plain_modulus(12289 + 2).is_err());
        // Aux base is big enough for HPS.
        let log2_p: f64 = a.aux_primes().iter().map(|&p| (p as f64).log2()).sum();
        assert!(log2_p > 150.0 + 11.0 + 4.0);
        assert!(format!("{a:?}").contains("t: 65537"));
    }
}
