//! What can go wrong between a plan and its results.

use crate::bfv::{EncodeError, EvalError, KeyId, ParamError};
use crate::exec::CrtError;
use crate::exec::ExecError;
use crate::plan::{InputError, ValidationError};
use thiserror::Error;

/// Why a session operation failed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The plan is malformed.
    #[error("invalid plan: {0}")]
    Plan(#[from] ValidationError),
    /// The plan's parameters do not build (or miss their security level).
    #[error("the plan's parameters: {0}")]
    Params(#[from] ParamError),
    /// The raw values are not a whole number of images.
    #[error("{found} raw values are not a whole number of images of {per_image} values")]
    RawLength {
        /// Raw values given.
        found: usize,
        /// Raw values per image.
        per_image: usize,
    },
    /// A key or ciphertext of another scheme than the plan's.
    #[error("the plan runs {expected}, but a key or ciphertext for plaintext prime {prime} is of another scheme")]
    SchemeMismatch {
        /// The plan's scheme.
        expected: crate::plan::Scheme,
        /// Index of the plaintext prime.
        prime: usize,
    },
    /// A packed plan's server key holds no Galois keys (rotations are impossible without).
    #[error("the plan runs in the packed layout, which rotates, but the server key holds no Galois keys: generate the key set for this plan")]
    MissingGaloisKeys,
    /// A packed plan that needs more than a limit of keys or server memory.
    #[error("the plan's packed layout needs {bytes} bytes of {what}, above the limit of {limit}: compile it with --galois-key-cost higher, or use the slot layout")]
    PackedTooLarge {
        /// What is too large.
        what: &'static str,
        /// Bytes it needs.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A batch needs at least one image.
    #[error("a batch needs at least one image")]
    NoImages,
    /// The raw values given for one chunk are not those of its images.
    #[error(
        "chunk {index} of {chunks} needs {expected} raw values (its images' values), but {found} \
         were given"
    )]
    ChunkLength {
        /// The chunk.
        index: usize,
        /// Chunks in the batch.
        chunks: usize,
        /// Raw values the chunk's images have.
        expected: usize,
        /// Raw values given.
        found: usize,
    },
    /// One image does not fit the plan's input.
    #[error("image {image}: {source}")]
    Input {
        /// Which image (0-based).
        image: usize,
        /// What is wrong with it.
        source: InputError,
    },
    /// Slot encoding failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A scheme operation (encryption, decryption, noise measurement) failed.
    #[error(transparent)]
    Scheme(#[from] EvalError),
    /// Running the plan failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The plaintext primes cannot be recombined.
    #[error("recombining the plaintext primes: {0}")]
    Crt(#[from] CrtError),
    /// A batch does not have the shape the plan gives it.
    #[error("the batch has {found} but the plan needs {expected}")]
    BatchShape {
        /// What the plan needs.
        expected: String,
        /// What the batch has.
        found: String,
    },
    /// The values were encrypted under another key set than the key given.
    #[error(
        "the {what} was made under key set {found}, but the key given belongs to key set \
         {expected}: use the keys from the `veil keygen` run that encrypted it"
    )]
    KeySetMismatch {
        /// "batch" or "result".
        what: &'static str,
        /// The key set of the values.
        found: KeyId,
        /// The key set of the key.
        expected: KeyId,
    },
    /// Decrypted scores fall outside the output's bound (the guaranteed one, or the calibrated
    /// one of a calibrated plan): the result decrypts to noise (wrong key, or a plan or
    /// parameter mismatch), or an input drove a calibrated plan beyond the values it was
    /// calibrated for. Correct scores of a guaranteed plan never do.
    #[error(
        "{outside} of {total} decrypted scores lie outside the plan's bound of \
         2^{bound_bits:.1} ({budget_bits} bits of noise budget left)"
    )]
    ScoresOutOfBound {
        /// Scores outside the bound.
        outside: usize,
        /// Scores decrypted.
        total: usize,
        /// log2 of the bound.
        bound_bits: f64,
        /// Smallest measured noise budget, in bits.
        budget_bits: u32,
    },
}
