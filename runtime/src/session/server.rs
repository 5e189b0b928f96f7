//! The server's side: evaluating a plan on an encrypted batch with the server key only.

use super::{Context, EncryptedBatch, ServerKey, SessionError};
use crate::exec::{run_plan, EncryptedBackend, Progress};

impl Context {
    /// Evaluates the plan on every chunk and plaintext prime of `batch`; the result holds the
    /// output scores, encrypted, in the same layout. A batch encrypted under another key set
    /// than `server`'s is refused before any work ([`SessionError::KeySetMismatch`]).
    pub fn eval(
        &self,
        server: &ServerKey,
        batch: EncryptedBatch,
        progress: &dyn Progress,
    ) -> Result<EncryptedBatch, SessionError> {
        self.check_key_set("batch", &batch, server.id())?;
        self.check_shape(&batch, self.plan.input.features.len())?;
        let mut chunks = Vec::with_capacity(batch.chunks.len());
        for per_prime in batch.chunks {
            let mut outputs = Vec::with_capacity(per_prime.len());
            for (params, inputs) in self.params.iter().zip(per_prime) {
                let backend = EncryptedBackend::new(params, server.relin());
                outputs.push(run_plan(&self.plan, &backend, inputs, progress)?);
            }
            chunks.push(outputs);
        }
        Ok(EncryptedBatch {
            images: batch.images,
            key_set: batch.key_set,
            chunks,
        })
    }
}
