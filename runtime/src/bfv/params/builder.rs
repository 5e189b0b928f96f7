//! The parameter builder: collects what the caller asked for (primes or their sizes, the
//! security level), validates it in a fixed order and names the first bound that is broken.
//! Each validation step is its own function so the order reads at a glance in `build`.

use super::{
    BfvParameters, ParamError, RingContext, MAX_DEGREE, MAX_LOG2_MODULUS, MAX_Q_PRIMES, MIN_DEGREE,
};
use crate::math::{is_prime, ntt_primes, MAX_PRIME_BITS};
use crate::security::SecurityLevel;
use std::sync::Arc;

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
        let BfvParametersBuilder {
            degree,
            q_primes,
            q_bits,
            special,
            special_bits,
            plain,
            plain_bits,
            security,
            insecure,
        } = self;
        let n = checked_degree(degree.unwrap_or(0))?;
        let q = ciphertext_primes(q_primes, q_bits, n)?;
        let special = special_prime(special, special_bits, n, &q)?;
        for &v in &q {
            check_prime("q", v, n)?;
        }
        check_prime("special prime", special, n)?;
        let mut all = q.clone();
        all.push(special);
        check_distinct(&all)?;
        check_special_size(&q, special)?;
        check_modulus_size(&all, n, security, insecure)?;
        let t = plain_modulus(plain, plain_bits, n, &all)?;
        let ring = Arc::new(RingContext::new(n, &q, special)?);
        BfvParameters::from_ring(ring, t, security, insecure)
    }
}

fn degree_error(degree: usize) -> ParamError {
    ParamError::Degree {
        degree,
        min: MIN_DEGREE,
        max: MAX_DEGREE,
    }
}

/// n must be a power of two in `MIN_DEGREE..=MAX_DEGREE`.
fn checked_degree(n: usize) -> Result<usize, ParamError> {
    if !(MIN_DEGREE..=MAX_DEGREE).contains(&n) || !n.is_power_of_two() {
        return Err(degree_error(n));
    }
    Ok(n)
}

/// The ciphertext primes: given, or generated from their sizes; 1..=`MAX_Q_PRIMES` of them.
fn ciphertext_primes(
    q_primes: Option<Vec<u64>>,
    q_bits: Option<Vec<u32>>,
    n: usize,
) -> Result<Vec<u64>, ParamError> {
    let q = match (q_primes, q_bits) {
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
    Ok(q)
}

/// The special prime: given, or generated from its size avoiding the q primes.
fn special_prime(
    special: Option<u64>,
    special_bits: Option<u32>,
    n: usize,
    q: &[u64],
) -> Result<u64, ParamError> {
    match (special, special_bits) {
        (Some(p), _) => Ok(p),
        (None, Some(bits)) => Ok(ntt_primes(bits, n, 1, q)?[0]),
        (None, None) => Err(ParamError::NoSpecialPrime),
    }
}

/// `v` must fit the arithmetic, be prime and be ≡ 1 mod 2n.
fn check_prime(what: &'static str, v: u64, n: usize) -> Result<(), ParamError> {
    let two_n = 2 * n as u64;
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
}

/// No prime may appear twice among the q primes and the special prime.
fn check_distinct(all: &[u64]) -> Result<(), ParamError> {
    for (i, &v) in all.iter().enumerate() {
        if all[..i].contains(&v) {
            return Err(ParamError::DuplicatePrime { value: v });
        }
    }
    Ok(())
}

/// Key switching needs the special prime at least as large (in bits) as every q prime.
fn check_special_size(q: &[u64], special: u64) -> Result<(), ParamError> {
    let q_bits = q.iter().map(|v| 64 - v.leading_zeros()).max().unwrap_or(0);
    let special_bits = 64 - special.leading_zeros();
    if special_bits < q_bits {
        return Err(ParamError::SpecialTooSmall {
            special_bits,
            q_bits,
        });
    }
    Ok(())
}

/// The whole modulus must fit the implementation and, unless the caller opted out, the bound
/// of the security level at degree n.
fn check_modulus_size(
    all: &[u64],
    n: usize,
    security: SecurityLevel,
    insecure: bool,
) -> Result<(), ParamError> {
    let log2_modulus: f64 = all.iter().map(|&v| (v as f64).log2()).sum();
    if log2_modulus > MAX_LOG2_MODULUS {
        return Err(ParamError::ModulusTooLarge {
            log2_modulus,
            max: MAX_LOG2_MODULUS,
        });
    }
    let max = security.max_log2_modulus(n).ok_or(degree_error(n))?;
    if log2_modulus > f64::from(max) && !insecure {
        return Err(ParamError::Insecure {
            log2_modulus,
            level: security,
            degree: n,
            max,
        });
    }
    Ok(())
}

/// The plaintext modulus: given, or the prime generated from its size avoiding every other
/// prime (checked later, against the ring, by `BfvParameters::from_ring`).
fn plain_modulus(
    plain: Option<u64>,
    plain_bits: Option<u32>,
    n: usize,
    all: &[u64],
) -> Result<u64, ParamError> {
    match (plain, plain_bits) {
        (Some(t), _) => Ok(t),
        (None, Some(bits)) => Ok(ntt_primes(bits, n, 1, all)?[0]),
        (None, None) => Err(ParamError::NoPlainModulus),
    }
}
