//! The encrypted backend: plan steps as BFV operations.

/// Runs plan steps on BFV ciphertexts of one plaintext prime.
#[derive(Debug)]
pub struct EncryptedBackend;
