//! The server's side: evaluating a plan on an encrypted batch with the server key only.

use super::{Ciphertext, Context, EncryptedBatch, EncryptedChunk, ServerKey, SessionError};
use crate::bfv;
use crate::exec::{run_plan, BgvBackend, EncryptedBackend, Progress};
use crate::plan::Scheme;
use rayon::prelude::*;

impl Context {
    /// Evaluates the plan on one chunk, for every plaintext prime; the result chunk holds the
    /// output scores, encrypted, with the same batch and index. A chunk encrypted under another
    /// key set than `server`'s is refused before any work ([`SessionError::KeySetMismatch`]).
    pub fn eval_chunk(
        &self,
        server: &ServerKey,
        chunk: EncryptedChunk,
        progress: &dyn Progress,
    ) -> Result<EncryptedChunk, SessionError> {
        self.check_key_set("batch", &chunk.batch, server.id())?;
        self.check_chunk(&chunk, self.plan.input.features.len())?;
        let scheme = self.plan.params.scheme;
        let mut values = Vec::with_capacity(chunk.values.len());
        for (prime, (params, inputs)) in self.params.iter().zip(chunk.values).enumerate() {
            let wrong = || SessionError::SchemeMismatch {
                expected: scheme,
                prime,
            };
            let outputs = match scheme {
                Scheme::Bfv => {
                    let key = server.bfv().ok_or_else(wrong)?;
                    let inputs = inputs
                        .into_iter()
                        .map(Ciphertext::into_bfv)
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(wrong)?;
                    let backend = EncryptedBackend::new(params, key);
                    let outputs = run_plan(&self.plan, &backend, inputs, progress)?;
                    self.round_for_download(outputs)?
                        .into_iter()
                        .map(Ciphertext::Bfv)
                        .collect()
                }
                Scheme::Bgv => {
                    let key = server.bgv(prime).ok_or_else(wrong)?;
                    let inputs = inputs
                        .into_iter()
                        .map(Ciphertext::into_bgv)
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(wrong)?;
                    let backend = BgvBackend::new(params, key);
                    run_plan(&self.plan, &backend, inputs, progress)?
                        .into_iter()
                        .map(Ciphertext::Bgv)
                        .collect()
                }
            };
            values.push(outputs);
        }
        Ok(EncryptedChunk {
            batch: chunk.batch,
            index: chunk.index,
            values,
        })
    }

    /// Rounds away the low bits of the results' components that the plan's
    /// [`crate::plan::Compression`] drops from downloads: the compiler chose them so that the
    /// rounding, added to the circuit's noise, still decrypts exactly.
    fn round_for_download(
        &self,
        outputs: Vec<bfv::Ciphertext>,
    ) -> Result<Vec<bfv::Ciphertext>, SessionError> {
        let bits = &self.plan.compression.download_bits;
        if bits.iter().all(|&k| k == 0) {
            return Ok(outputs);
        }
        outputs
            .par_iter()
            .map(|ct| Ok(ct.round_low_bits(bits)?))
            .collect()
    }

    /// Evaluates a whole batch: [`Context::eval_chunk`] on each chunk in turn.
    pub fn eval(
        &self,
        server: &ServerKey,
        batch: EncryptedBatch,
        progress: &dyn Progress,
    ) -> Result<EncryptedBatch, SessionError> {
        self.check_key_set("batch", &batch.info, server.id())?;
        self.check_batch(&batch)?;
        let chunks = batch
            .chunks
            .into_iter()
            .map(|chunk| self.eval_chunk(server, chunk, progress))
            .collect::<Result<_, _>>()?;
        Ok(EncryptedBatch {
            info: batch.info,
            chunks,
        })
    }
}
