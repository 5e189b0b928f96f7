//! BFV parameters: the ring (degree, ciphertext primes, special key-switching prime) and the
//! full parameter set (ring + plaintext modulus), validated on construction, with stable
//! fingerprints and every per-level constant precomputed.

use crate::math::bigint::BigUint;
use crate::math::primes::{is_prime, ntt_primes, PrimeError, MAX_PRIME_BITS};
use crate::math::{fnv1a, BaseConverter, Modulus, NttTable};
use crate::security::SecurityLevel;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

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

/// Why a parameter set was rejected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ParamError {
    /// n is not a power of two in the supported range.
    #[error("ring degree n={degree} must be a power of two in {min}..={max}")]
    Degree {
        /// Requested degree.
        degree: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// Nothing said which ciphertext primes to use.
    #[error("no ciphertext primes: give q primes or their bit sizes")]
    NoCiphertextPrimes,
    /// Too many ciphertext primes.
    #[error("{count} ciphertext primes given; at most {max} are supported")]
    TooManyPrimes {
        /// Given.
        count: usize,
        /// Allowed.
        max: usize,
    },
    /// Nothing said which special prime to use.
    #[error("no special key-switching prime: give one or its bit size")]
    NoSpecialPrime,
    /// Nothing said which plaintext modulus to use.
    #[error("no plaintext modulus t: give one or its bit size")]
    NoPlainModulus,
    /// A supposed prime is composite.
    #[error("{what}={value} is not prime")]
    NotPrime {
        /// Which number ("q", "special prime", "t").
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A prime does not support the negacyclic NTT of this degree.
    #[error("{what}={value} is not ≡ 1 mod 2n={two_n}")]
    NotNttFriendly {
        /// Which number.
        what: &'static str,
        /// The value.
        value: u64,
        /// 2n.
        two_n: u64,
    },
    /// A prime is too large for the arithmetic.
    #[error("{what}={value} has {bits} bits; at most {max} are supported")]
    PrimeTooLarge {
        /// Which number.
        what: &'static str,
        /// The value.
        value: u64,
        /// Its size.
        bits: u32,
        /// Largest allowed size.
        max: u32,
    },
    /// The same prime appears twice.
    #[error("prime {value} appears more than once among the q primes and the special prime")]
    DuplicatePrime {
        /// The repeated prime.
        value: u64,
    },
    /// t must be smaller than every ciphertext prime.
    #[error("t={t} must be smaller than every q prime, but q_{index}={q}")]
    PlainNotBelowQ {
        /// Plaintext modulus.
        t: u64,
        /// Offending prime.
        q: u64,
        /// Its index.
        index: usize,
    },
    /// The special prime must be at least as large (in bits) as every q prime.
    #[error("the special prime has {special_bits} bits but q primes have up to {q_bits}; key switching needs special ≥ q in size")]
    SpecialTooSmall {
        /// Size of the special prime.
        special_bits: u32,
        /// Size of the largest q prime.
        q_bits: u32,
    },
    /// The modulus is too large for the requested security level.
    #[error("log2 of the modulus is {log2_modulus:.1} bits but {level} security at n={degree} allows at most {max}")]
    Insecure {
        /// log2(Q·p).
        log2_modulus: f64,
        /// Requested level.
        level: SecurityLevel,
        /// Ring degree.
        degree: usize,
        /// The standard's bound.
        max: u32,
    },
    /// The modulus exceeds what the implementation supports.
    #[error("log2 of the modulus is {log2_modulus:.1} bits; at most {max} are supported")]
    ModulusTooLarge {
        /// log2(Q·p).
        log2_modulus: f64,
        /// Supported bound.
        max: f64,
    },
    /// Prime generation failed.
    #[error("cannot generate primes: {0}")]
    Prime(#[from] PrimeError),
    /// An internal precomputation failed (should not happen for validated primes).
    #[error("internal precomputation failed: {0}")]
    Internal(&'static str),
}

/// The polynomial ring and modulus chain shared by every key: degree n, ciphertext primes
/// q_0..q_{L-1} and the special key-switching prime p. Keys depend only on this.
pub struct RingContext {
    degree: usize,
    q: Vec<Modulus>,
    special: Modulus,
    /// q_0..q_{L-1}, p.
    key_moduli: Vec<Modulus>,
    /// NTT tables for `key_moduli`.
    key_tables: Vec<NttTable>,
    /// p^{-1} mod q_i.
    special_inv_mod_q: Vec<u64>,
    /// p mod q_i.
    special_mod_q: Vec<u64>,
    log2_modulus: f64,
    fingerprint: u64,
}

impl fmt::Debug for RingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingContext")
            .field("degree", &self.degree)
            .field("q", &self.q_values())
            .field("special", &self.special.value())
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

impl PartialEq for RingContext {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}
impl Eq for RingContext {}

impl RingContext {
    fn new(degree: usize, q: &[u64], special: u64) -> Result<Self, ParamError> {
        let internal = ParamError::Internal;
        let to_mod = |v: u64| Modulus::new(v).ok_or(internal("modulus out of range"));
        let qm = q
            .iter()
            .map(|&v| to_mod(v))
            .collect::<Result<Vec<_>, _>>()?;
        let sm = to_mod(special)?;
        let mut key_moduli = qm.clone();
        key_moduli.push(sm);
        let key_tables = key_moduli
            .iter()
            .map(|&m| NttTable::new(m, degree).ok_or(internal("no NTT for a prime")))
            .collect::<Result<Vec<_>, _>>()?;
        let special_inv_mod_q = qm
            .iter()
            .map(|m| {
                m.inv(special)
                    .ok_or(internal("special prime not invertible"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let special_mod_q = qm.iter().map(|m| m.reduce(special)).collect();
        let log2_modulus = key_moduli.iter().map(|m| (m.value() as f64).log2()).sum();
        let mut enc = b"veil-ring\0".to_vec();
        enc.extend_from_slice(&(degree as u64).to_le_bytes());
        enc.extend_from_slice(&(q.len() as u64).to_le_bytes());
        for &v in q {
            enc.extend_from_slice(&v.to_le_bytes());
        }
        enc.extend_from_slice(&special.to_le_bytes());
        Ok(RingContext {
            degree,
            q: qm,
            special: sm,
            key_moduli,
            key_tables,
            special_inv_mod_q,
            special_mod_q,
            log2_modulus,
            fingerprint: fnv1a(&enc),
        })
    }

    /// Ring degree n.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Number of ciphertext primes L (the level of a fresh ciphertext).
    pub fn max_level(&self) -> usize {
        self.q.len()
    }

    /// The ciphertext primes.
    pub fn q(&self) -> &[Modulus] {
        &self.q
    }

    /// The ciphertext primes as numbers.
    pub fn q_values(&self) -> Vec<u64> {
        self.q.iter().map(|m| m.value()).collect()
    }

    /// The special key-switching prime.
    pub fn special(&self) -> &Modulus {
        &self.special
    }

    /// q_0..q_{L-1} then p: the basis keys live in.
    pub fn key_moduli(&self) -> &[Modulus] {
        &self.key_moduli
    }

    /// NTT tables for [`Self::key_moduli`].
    pub fn key_tables(&self) -> &[NttTable] {
        &self.key_tables
    }

    /// NTT tables of the first `level` q primes.
    pub fn q_tables(&self, level: usize) -> &[NttTable] {
        &self.key_tables[..level]
    }

    pub(crate) fn special_inv_mod_q(&self) -> &[u64] {
        &self.special_inv_mod_q
    }

    pub(crate) fn special_mod_q(&self) -> &[u64] {
        &self.special_mod_q
    }

    /// log2(q_0 ⋯ q_{L-1} · p), the quantity the security standard bounds.
    pub fn log2_modulus(&self) -> f64 {
        self.log2_modulus
    }

    /// log2 of the ciphertext modulus at `level`.
    pub fn log2_q(&self, level: usize) -> f64 {
        self.q[..level.min(self.q.len())]
            .iter()
            .map(|m| (m.value() as f64).log2())
            .sum()
    }

    /// Stable 64-bit hash of (n, q primes, special prime).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

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
            .field("degree", &self.ring.degree)
            .field("q", &self.ring.q_values())
            .field("special", &self.ring.special.value())
            .field("t", &self.plain.value())
            .field("security", &self.security)
            .field("insecure", &self.insecure)
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

fn split_fraction(numerator_mod: u64, q: u64) -> (u64, u64) {
    // numerator_mod / q as a 0.128 fixed-point fraction (numerator_mod < q).
    let hi_full = (u128::from(numerator_mod) << 64) / u128::from(q);
    let rem = (u128::from(numerator_mod) << 64) % u128::from(q);
    let lo = (rem << 64) / u128::from(q);
    (hi_full as u64, lo as u64)
}

impl BfvParameters {
    /// Starts a builder.
    pub fn builder() -> BfvParametersBuilder {
        BfvParametersBuilder::default()
    }

    fn from_ring(
        ring: Arc<RingContext>,
        t: u64,
        security: SecurityLevel,
        insecure: bool,
    ) -> Result<Arc<Self>, ParamError> {
        let n = ring.degree;
        let two_n = 2 * n as u64;
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
        for (index, q) in ring.q.iter().enumerate() {
            if t >= q.value() {
                return Err(ParamError::PlainNotBelowQ {
                    t,
                    q: q.value(),
                    index,
                });
            }
        }
        let internal = ParamError::Internal;
        let plain = Modulus::new(t).ok_or(internal("t out of range"))?;
        let plain_table = NttTable::new(plain, n).ok_or(internal("no NTT mod t"))?;

        // Auxiliary base P for HPS: the tensor product of centred ciphertexts is below n·Q²/2
        // in absolute value, so P ≥ 2^4·n·Q keeps it below Q·P/2^5, far enough from Q·P/2 for
        // the floating-point overflow count of the CRT reconstruction to be exact. Level ℓ
        // uses the shortest prefix P_ℓ of the list that satisfies this for Q_ℓ.
        let aux_needed = |log2_q: f64| aux_prime_count(log2_q, n);
        let count = aux_needed(ring.log2_q(ring.max_level()));
        let mut avoid = ring.q_values();
        avoid.push(ring.special.value());
        avoid.push(t);
        let aux_values = ntt_primes(AUX_PRIME_BITS, n, count, &avoid)?;
        let aux = aux_values
            .iter()
            .map(|&v| Modulus::new(v).ok_or(internal("aux prime")))
            .collect::<Result<Vec<_>, _>>()?;
        let aux_tables = aux
            .iter()
            .map(|&m| NttTable::new(m, n).ok_or(internal("aux NTT")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut levels = Vec::with_capacity(ring.max_level());
        for level in 1..=ring.max_level() {
            let aux_count = aux_needed(ring.log2_q(level)).min(count);
            let aux_values = &aux_values[..aux_count];
            let aux = &aux[..aux_count];
            let t_p = BigUint::product(aux_values).mul_u64(t);
            let qs = &ring.q[..level];
            let q_values: Vec<u64> = qs.iter().map(|m| m.value()).collect();
            let big_q = BigUint::product(&q_values);
            let (delta_big, q_mod_t) = big_q.div_rem_u64(t).ok_or(internal("t = 0"))?;
            let delta_frac = ((u128::from(q_mod_t) << 64) / u128::from(t)) as u64;
            let delta = q_values.iter().map(|&q| delta_big.rem_u64(q)).collect();
            let mut dec_alpha = Vec::new();
            for (i, qi) in qs.iter().enumerate() {
                let mut punct = 1u64;
                for (k, qk) in qs.iter().enumerate() {
                    if k != i {
                        punct = qi.mul(punct, qi.reduce(qk.value()));
                    }
                }
                dec_alpha.push(qi.inv(punct).ok_or(internal("Q/q_i not invertible"))?);
            }
            let dec_alpha_shoup = dec_alpha.iter().zip(qs).map(|(&a, m)| m.shoup(a)).collect();
            let (dec_theta_hi, dec_theta_lo) =
                q_values.iter().map(|&q| split_fraction(t, q)).unzip();

            // HPS scaling from M = Q_ℓ·P straight to Q_ℓ (see `Evaluator::scale_down`).
            let mut all: Vec<Modulus> = qs.to_vec();
            all.extend(aux.iter().copied());
            let width = all.len();
            if width > MAX_HPS_WIDTH {
                return Err(internal("too many primes for multiplication"));
            }
            let mut hps_inv_punct = Vec::with_capacity(width);
            for (r, mr) in all.iter().enumerate() {
                let mut punct = 1u64;
                for (r2, m2) in all.iter().enumerate() {
                    if r2 != r {
                        punct = mr.mul(punct, mr.reduce(m2.value()));
                    }
                }
                hps_inv_punct.push(mr.inv(punct).ok_or(internal("M/r not invertible"))?);
            }
            let hps_inv_punct_shoup = hps_inv_punct
                .iter()
                .zip(&all)
                .map(|(&a, m)| m.shoup(a))
                .collect();
            let hps_inv_f64 = all.iter().map(|m| 1.0 / m.value() as f64).collect();
            let mut hps_theta_hi = Vec::new();
            let mut hps_theta_lo = Vec::new();
            let mut omega_big = Vec::new();
            for &q in &q_values {
                let (quot, rem) = t_p.div_rem_u64(q).ok_or(internal("q = 0"))?;
                let (hi, lo) = split_fraction(rem, q);
                hps_theta_hi.push(hi);
                hps_theta_lo.push(lo);
                omega_big.push(quot);
            }
            for &p in aux_values {
                omega_big.push(t_p.div_rem_u64(p).ok_or(internal("p = 0"))?.0);
            }
            let mut hps_coeff = Vec::with_capacity(level * width);
            let mut hps_ktp = Vec::with_capacity(level * (width + 1));
            for m in qs {
                hps_coeff.extend(omega_big.iter().map(|w| w.rem_u64(m.value())));
                let tp = t_p.rem_u64(m.value());
                hps_ktp.extend((0..=width as u64).map(|k| m.mul(m.reduce(k), tp)));
            }
            let ms_inv_last = if level >= 2 {
                let last = q_values[level - 1];
                qs[..level - 1]
                    .iter()
                    .map(|m| m.inv(last).ok_or(internal("q not invertible")))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            levels.push(LevelContext {
                delta,
                delta_frac,
                dec_alpha,
                dec_alpha_shoup,
                dec_theta_hi,
                dec_theta_lo,
                ms_inv_last,
                aux_count,
                q_to_aux: BaseConverter::new(qs, aux).ok_or(internal("Q→P converter"))?,
                hps_inv_punct,
                hps_inv_punct_shoup,
                hps_inv_f64,
                hps_theta_hi,
                hps_theta_lo,
                hps_coeff,
                hps_ktp,
            });
        }
        let mut enc = b"veil-bfv\0".to_vec();
        enc.extend_from_slice(&ring.fingerprint.to_le_bytes());
        enc.extend_from_slice(&t.to_le_bytes());
        let fingerprint = fnv1a(&enc);
        Ok(Arc::new(BfvParameters {
            ring,
            plain,
            plain_table,
            security,
            insecure,
            aux,
            aux_tables,
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
        self.ring.degree
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
        self.ring.special.value()
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
            .is_some_and(|max| self.ring.log2_modulus <= f64::from(max))
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
        self.ring.fingerprint
    }
}

/// Builder for [`BfvParameters`]; see [`BfvParameters::builder`].
#[derive(Clone, Debug, Default)]
pub struct BfvParametersBuilder {
    degree: Option<usize>,
    q_primes: Option<Vec<u64>>,
    q_bits: Option<Vec<u32>>,
    special: Option<u64>,
    special_bits: Option<u32>,
    plain: Option<u64>,
    plain_bits: Option<u32>,
    security: SecurityLevel,
    insecure: bool,
}

impl BfvParametersBuilder {
    /// Ring degree n (power of two, 1024..=32768).
    pub fn degree(mut self, n: usize) -> Self {
        self.degree = Some(n);
        self
    }

    /// Explicit ciphertext primes (each ≡ 1 mod 2n, at most 61 bits).
    pub fn q_primes(mut self, primes: Vec<u64>) -> Self {
        self.q_primes = Some(primes);
        self
    }

    /// Ciphertext primes by bit size (generated with [`ntt_primes`]).
    pub fn q_bits(mut self, bits: &[u32]) -> Self {
        self.q_bits = Some(bits.to_vec());
        self
    }

    /// Explicit special key-switching prime.
    pub fn special_prime(mut self, p: u64) -> Self {
        self.special = Some(p);
        self
    }

    /// Special prime by bit size.
    pub fn special_bits(mut self, bits: u32) -> Self {
        self.special_bits = Some(bits);
        self
    }

    /// Explicit plaintext modulus t (prime, ≡ 1 mod 2n).
    pub fn plain_modulus(mut self, t: u64) -> Self {
        self.plain = Some(t);
        self
    }

    /// Plaintext modulus by bit size: the largest prime t < 2^bits with t ≡ 1 mod 2n.
    pub fn plain_bits(mut self, bits: u32) -> Self {
        self.plain_bits = Some(bits);
        self
    }

    /// Target security level (default 128-bit).
    pub fn security(mut self, level: SecurityLevel) -> Self {
        self.security = level;
        self
    }

    /// Opt into parameters beyond the security bound (tests and experiments only).
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.insecure = allow;
        self
    }

    /// Validates and precomputes; the error names the broken constraint.
    pub fn build(self) -> Result<Arc<BfvParameters>, ParamError> {
        let n = self.degree.unwrap_or(0);
        if !(MIN_DEGREE..=MAX_DEGREE).contains(&n) || !n.is_power_of_two() {
            return Err(ParamError::Degree {
                degree: n,
                min: MIN_DEGREE,
                max: MAX_DEGREE,
            });
        }
        let two_n = 2 * n as u64;
        let q = match (self.q_primes, self.q_bits) {
            (Some(q), _) => q,
            (None, Some(bits)) => {
                let mut chosen: Vec<u64> = Vec::new();
                for &b in &bits {
                    let p = ntt_primes(b, n, 1, &chosen)?;
                    chosen.extend(p);
                }
                chosen
            }
            (None, None) => return Err(ParamError::NoCiphertextPrimes),
        };
        if q.is_empty() {
            return Err(ParamError::NoCiphertextPrimes);
        }
        if q.len() > MAX_Q_PRIMES {
            return Err(ParamError::TooManyPrimes {
                count: q.len(),
                max: MAX_Q_PRIMES,
            });
        }
        let special = match (self.special, self.special_bits) {
            (Some(p), _) => p,
            (None, Some(bits)) => ntt_primes(bits, n, 1, &q)?[0],
            (None, None) => return Err(ParamError::NoSpecialPrime),
        };
        let check_prime = |what: &'static str, v: u64| -> Result<(), ParamError> {
            let bits = 64 - v.leading_zeros();
            if bits > MAX_PRIME_BITS {
                return Err(ParamError::PrimeTooLarge {
                    what,
                    value: v,
                    bits,
                    max: MAX_PRIME_BITS,
                });
            }
            if !is_prime(v) {
                return Err(ParamError::NotPrime { what, value: v });
            }
            if v % two_n != 1 {
                return Err(ParamError::NotNttFriendly {
                    what,
                    value: v,
                    two_n,
                });
            }
            Ok(())
        };
        for &v in &q {
            check_prime("q", v)?;
        }
        check_prime("special prime", special)?;
        let mut all = q.clone();
        all.push(special);
        for (i, &v) in all.iter().enumerate() {
            if all[..i].contains(&v) {
                return Err(ParamError::DuplicatePrime { value: v });
            }
        }
        let q_bits = q.iter().map(|v| 64 - v.leading_zeros()).max().unwrap_or(0);
        let special_bits = 64 - special.leading_zeros();
        if special_bits < q_bits {
            return Err(ParamError::SpecialTooSmall {
                special_bits,
                q_bits,
            });
        }
        let log2_modulus: f64 = all.iter().map(|&v| (v as f64).log2()).sum();
        if log2_modulus > MAX_LOG2_MODULUS {
            return Err(ParamError::ModulusTooLarge {
                log2_modulus,
                max: MAX_LOG2_MODULUS,
            });
        }
        let max = self
            .security
            .max_log2_modulus(n)
            .ok_or(ParamError::Degree {
                degree: n,
                min: MIN_DEGREE,
                max: MAX_DEGREE,
            })?;
        if log2_modulus > f64::from(max) && !self.insecure {
            return Err(ParamError::Insecure {
                log2_modulus,
                level: self.security,
                degree: n,
                max,
            });
        }
        let t = match (self.plain, self.plain_bits) {
            (Some(t), _) => t,
            (None, Some(bits)) => ntt_primes(bits, n, 1, &all)?[0],
            (None, None) => return Err(ParamError::NoPlainModulus),
        };
        let ring = Arc::new(RingContext::new(n, &q, special)?);
        BfvParameters::from_ring(ring, t, self.security, self.insecure)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
