//! The executor: runs a [`crate::plan::Plan`] on a batch of values.
//!
//! The engine ([`run_plan`]) walks the plan's steps over a register file and frees every
//! register right after its last reader, so peak memory is bounded by the widest pair of
//! neighbouring layers rather than the whole network. What a "value" is comes from a
//! [`Backend`]: a BFV ciphertext for encrypted runs ([`EncryptedBackend`]), a BGV one
//! ([`BgvBackend`]), or plain slot
//! vectors for the reference run that encrypted results are compared against bit for bit
//! ([`ExactBackend`], over the integers, which also detects any value that would wrap around
//! the plaintext modulus).
//!
//! Plans whose values need several plaintext primes run once per prime; `Crt` recombines the
//! residues.

mod backend;
mod bgv;
mod crt;
mod encrypted;
mod engine;
mod error;
mod matmul;
mod packed;
mod reference;

pub use backend::{linear_by_rows, Backend};
pub use bgv::BgvBackend;
pub use crt::{Crt, CrtError};
pub use encrypted::EncryptedBackend;
pub use engine::{run_plan, run_plan_keeping_registers, step_label, NoProgress, Progress};
pub use error::ExecError;
pub use packed::{BfvPacked, BgvPacked, PackedBackend, PackedScheme, PreparedDiagonals};
pub use reference::{exact_registers, exact_scores, ExactBackend};
