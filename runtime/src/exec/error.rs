//! Errors raised while executing a plan.

use crate::plan::InputError;
use thiserror::Error;

/// Why a plan could not be executed.
#[derive(Debug, Error)]
pub enum ExecError {
    /// The raw input does not fit the plan's input encoding.
    #[error("input: {0}")]
    Input(#[from] InputError),
    /// The input register was given the wrong number of values.
    #[error("the plan's input register holds {expected} values but {found} were given")]
    InputCount {
        /// Values the plan expects.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A step read a register that holds no values (never written or already freed).
    #[error("step {step} ({name}) reads register {register}, which holds no values")]
    MissingRegister {
        /// Index of the step.
        step: usize,
        /// Name of the step.
        name: String,
        /// The register.
        register: usize,
    },
    /// An exact (integer) evaluation overflowed or exceeded the plaintext range.
    #[error("value out of range in step {step} ({name}), output {row}: {detail}")]
    Overflow {
        /// Index of the step.
        step: usize,
        /// Name of the step.
        name: String,
        /// Output index within the step.
        row: usize,
        /// What overflowed.
        detail: String,
    },
    /// A slot vector has the wrong length.
    #[error("slot vectors differ in length: {expected} and {found}")]
    SlotCount {
        /// One length.
        expected: usize,
        /// The other.
        found: usize,
    },
    /// A homomorphic operation failed.
    #[error("step {step} ({name}): {source}")]
    Operation {
        /// Index of the step.
        step: usize,
        /// Name of the step.
        name: String,
        /// The failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Other backend failure, before the step is known.
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl From<crate::bfv::EvalError> for ExecError {
    /// A scheme operation's failure (BFV and BGV share the error type), before the engine adds
    /// the step.
    fn from(err: crate::bfv::EvalError) -> Self {
        ExecError::Backend(Box::new(err))
    }
}
