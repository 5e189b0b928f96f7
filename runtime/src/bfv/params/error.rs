//! Why a parameter set was rejected. Every variant carries the bad value and the bound it
//! broke, so the message tells the caller what to change.

use crate::math::PrimeError;
use crate::security::SecurityLevel;
use thiserror::Error;

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
