//! The error of the scheme's operations. Encryption and decryption (keys) and the evaluator
//! fail in the same ways (wrong parameters, wrong ring, wrong level or size), so the type
//! lives below both and neither depends on the other for it.

use thiserror::Error;

/// Why an operation could not run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// Operand from another parameter set.
    #[error("operand is for parameters {found:016x} but {expected:016x} were expected")]
    ParamsMismatch {
        /// Expected fingerprint.
        expected: u64,
        /// Operand's fingerprint.
        found: u64,
    },
    /// Key from another ring.
    #[error("key is for ring {found:016x} but the operand's ring is {expected:016x}")]
    KeyMismatch {
        /// Operand's ring fingerprint.
        expected: u64,
        /// Key's ring fingerprint.
        found: u64,
    },
    /// Operands at different levels.
    #[error(
        "operands are at different levels ({left} and {right}); switch the higher one down first"
    )]
    LevelMismatch {
        /// Level of the first operand.
        left: usize,
        /// Level of the other.
        right: usize,
    },
    /// A ciphertext of unsupported size.
    #[error("ciphertext of size {size} is not supported here (at most {max}); relinearise first")]
    UnsupportedSize {
        /// Its size.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A level outside the modulus chain.
    #[error("level {level} is outside 1..={max}")]
    BadLevel {
        /// Requested.
        level: usize,
        /// Largest.
        max: usize,
    },
    /// Modulus switching can only go down.
    #[error("cannot switch a ciphertext from level {from} to level {to}")]
    CannotSwitch {
        /// Current level.
        from: usize,
        /// Target level.
        to: usize,
    },
    /// `dot` got different numbers of ciphertexts and weights.
    #[error("{ciphertexts} ciphertexts but {weights} weights")]
    LengthMismatch {
        /// Ciphertexts.
        ciphertexts: usize,
        /// Weights.
        weights: usize,
    },
    /// `dot` of nothing.
    #[error("dot product of zero ciphertexts")]
    Empty,
    /// Not the Galois element of an automorphism other than the identity.
    #[error("Galois element {element} is not an odd number in 3..{two_n}")]
    BadGaloisElement {
        /// The element given.
        element: u64,
        /// 2n: elements are odd residues modulo 2n.
        two_n: u64,
    },
    /// A rotation asked for a Galois key the key set does not hold.
    #[error(
        "no Galois key for {operation} (element {element}); the keys hold elements {present:?}: \
         generate keys for this element, or rotate in steps whose keys are present"
    )]
    MissingGaloisKey {
        /// The rotation asked for, in words ("row rotation by 3 steps").
        operation: String,
        /// Its Galois element.
        element: u64,
        /// The elements the keys hold, in increasing order.
        present: Vec<u64>,
    },
    /// A Galois key made for lower levels than the ciphertext's.
    #[error(
        "the Galois key of element {element} serves levels up to {key_level}, but the ciphertext \
         is at level {level}: generate the keys for the plan that rotates at this level"
    )]
    GaloisKeyLevel {
        /// The Galois element.
        element: u64,
        /// The highest level the key serves.
        key_level: usize,
        /// The ciphertext's level.
        level: usize,
    },
    /// BGV: operands whose messages carry different scale factors mod t.
    #[error(
        "operands carry different scales mod t ({left} and {right}); multiply one by the ratio \
         (mul_scalar) or switch both along the same chain first"
    )]
    ScaleMismatch {
        /// Scale of the first operand.
        left: u64,
        /// Scale of the other.
        right: u64,
    },
    /// BGV: a key made for other plaintext primes (its error is a multiple of their product
    /// only).
    #[error(
        "the key was made for plaintext primes {primes:?}, which do not include t={t}; \
         generate the keys with every plaintext prime of the plan"
    )]
    PlainModulusNotCovered {
        /// The operand's plaintext modulus.
        t: u64,
        /// The primes the key covers.
        primes: Vec<u64>,
    },
    /// BGV: the plaintext primes given for a key set are unusable.
    #[error("plaintext primes {primes:?} cannot serve a BGV key set: {reason}")]
    InvalidPlainPrimes {
        /// The primes given.
        primes: Vec<u64>,
        /// What is wrong.
        reason: &'static str,
    },
    /// Low bits that cannot be rounded away (see [`super::Ciphertext::round_low_bits`]).
    #[error("cannot round away {detail}")]
    LowBits {
        /// Which bits, and why not.
        detail: String,
    },
}
