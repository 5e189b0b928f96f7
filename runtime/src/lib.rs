//! Veil's runtime: a BFV homomorphic-encryption scheme of our own and the executor that
//! runs compiled circuit plans on encrypted batches.
//!
//! Layers point one way: [`math`] (modular arithmetic, NTT, RNS) → [`bfv`] (parameters, keys,
//! encoding, ciphertexts, evaluator) → [`plan`] (the compiler's output) → [`exec`].

pub mod bfv;
pub mod exec;
pub mod math;
pub mod plan;
pub mod security;
