//! The encrypted backend: plan steps as BFV operations on ciphertexts of one plaintext prime.

use super::{Backend, ExecError};
use crate::bfv::{BfvParameters, Ciphertext, EvalError, Evaluator, RelinKey};
use std::sync::Arc;

/// Runs plan steps on BFV ciphertexts of one plaintext prime, with the server's evaluation key.
#[derive(Debug)]
pub struct EncryptedBackend<'k> {
    evaluator: Evaluator,
    relin_key: &'k RelinKey,
}

impl<'k> EncryptedBackend<'k> {
    /// A backend for ciphertexts under `params`, relinearising with `relin_key`.
    pub fn new(params: &Arc<BfvParameters>, relin_key: &'k RelinKey) -> Self {
        EncryptedBackend {
            evaluator: Evaluator::new(params),
            relin_key,
        }
    }
}

fn op(err: EvalError) -> ExecError {
    ExecError::Backend(Box::new(err))
}

impl Backend for EncryptedBackend<'_> {
    type Value = Ciphertext;

    fn dot(
        &self,
        inputs: &[&Ciphertext],
        weights: &[i64],
        bias: i128,
    ) -> Result<Ciphertext, ExecError> {
        let sum = self.evaluator.dot(inputs, weights).map_err(op)?;
        if bias == 0 {
            Ok(sum)
        } else {
            self.evaluator.add_constant(&sum, bias).map_err(op)
        }
    }

    fn square(&self, value: &Ciphertext) -> Result<Ciphertext, ExecError> {
        self.evaluator.square(value).map_err(op)
    }

    fn relinearize(&self, value: Ciphertext) -> Result<Ciphertext, ExecError> {
        if value.size() <= 2 {
            return Ok(value);
        }
        self.evaluator
            .relinearize(&value, self.relin_key)
            .map_err(op)
    }

    fn mod_switch(&self, value: Ciphertext, level: usize) -> Result<Ciphertext, ExecError> {
        if value.level() <= level {
            return Ok(value);
        }
        self.evaluator.mod_switch_to_level(&value, level).map_err(op)
    }
}
