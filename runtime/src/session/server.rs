//! The server's side: evaluating a plan on an encrypted batch with the server key only.

use super::{Ciphertext, Context, EncryptedBatch, EncryptedChunk, ServerKey, SessionError};
use crate::bfv::BfvParameters;
use crate::exec::{
    run_plan, BfvPacked, BgvBackend, BgvPacked, EncryptedBackend, PackedBackend, PackedScheme,
    Progress,
};
use crate::plan::Scheme;
use crate::{bfv, bgv};
use rayon::prelude::*;
use std::sync::Arc;

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
        self.check_chunk(&chunk, self.input_ciphertexts())?;
        let mut values = Vec::with_capacity(chunk.values.len());
        for (prime, inputs) in chunk.values.into_iter().enumerate() {
            values.push(self.eval_prime(server, prime, inputs, progress)?);
        }
        Ok(EncryptedChunk {
            batch: chunk.batch,
            index: chunk.index,
            values,
        })
    }

    /// Runs the packed plan with `scheme`'s backend, on this server's prepared diagonals for
    /// plaintext prime `prime` (made on first use).
    fn run_packed<S: PackedScheme>(
        &self,
        prime: usize,
        params: &Arc<BfvParameters>,
        scheme: S,
        inputs: Vec<S::Ct>,
        progress: &dyn Progress,
    ) -> Result<Vec<S::Ct>, SessionError> {
        let mut backend = PackedBackend::new(&self.plan, params, scheme)?;
        if let Some(prepared) = self.prepared(prime)? {
            backend = backend.with_prepared(prepared);
        }
        Ok(run_plan(&self.plan, &backend, inputs, progress)?)
    }

    /// Runs the plan on the ciphertexts of plaintext prime `prime`, in the plan's scheme.
    fn eval_prime(
        &self,
        server: &ServerKey,
        prime: usize,
        inputs: Vec<Ciphertext>,
        progress: &dyn Progress,
    ) -> Result<Vec<Ciphertext>, SessionError> {
        let scheme = self.plan.params.scheme;
        let wrong = || SessionError::SchemeMismatch {
            expected: scheme,
            prime,
        };
        let params = self.params.get(prime).ok_or_else(wrong)?;
        Ok(match scheme {
            Scheme::Bfv => {
                let key = server.bfv().ok_or_else(wrong)?;
                let inputs = all_of(inputs, Ciphertext::into_bfv).ok_or_else(wrong)?;
                let outputs = match (&self.plan.packing, server.galois()) {
                    (None, _) => run_plan(
                        &self.plan,
                        &EncryptedBackend::new(params, key),
                        inputs,
                        progress,
                    )?,
                    (Some(_), Some(galois)) => {
                        let scheme = BfvPacked::new(params, key, galois);
                        self.run_packed(prime, params, scheme, inputs, progress)?
                    }
                    (Some(_), None) => return Err(SessionError::MissingGaloisKeys),
                };
                let bits = &self.plan.compression.download_bits;
                wrap(
                    round_results(outputs, bits, bfv::Ciphertext::round_low_bits)?,
                    Ciphertext::Bfv,
                )
            }
            Scheme::Bgv => {
                let key = server.bgv(prime).ok_or_else(wrong)?;
                let inputs = all_of(inputs, Ciphertext::into_bgv).ok_or_else(wrong)?;
                let outputs = match (&self.plan.packing, server.bgv_galois(prime)) {
                    (None, _) => {
                        run_plan(&self.plan, &BgvBackend::new(params, key), inputs, progress)?
                    }
                    (Some(_), Some(galois)) => {
                        let scheme = BgvPacked::new(params, key, galois);
                        self.run_packed(prime, params, scheme, inputs, progress)?
                    }
                    (Some(_), None) => return Err(SessionError::MissingGaloisKeys),
                };
                let bits = &self.plan.compression.download_bits;
                wrap(
                    round_results(outputs, bits, bgv::Ciphertext::round_low_bits)?,
                    Ciphertext::Bgv,
                )
            }
        })
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

/// Rounds away the low bits of the results' components that the plan's
/// [`crate::plan::Compression`] drops from downloads (`round` is the scheme's
/// `round_low_bits`): the compiler chose them so that the rounding, added to the circuit's
/// noise, still decrypts exactly.
fn round_results<T: Sync + Send>(
    outputs: Vec<T>,
    bits: &[u32],
    round: fn(&T, &[u32]) -> Result<T, bfv::EvalError>,
) -> Result<Vec<T>, SessionError> {
    if bits.iter().all(|&k| k == 0) {
        return Ok(outputs);
    }
    outputs.par_iter().map(|ct| Ok(round(ct, bits)?)).collect()
}

/// Every ciphertext as one scheme's, or `None` if any is of the other.
fn all_of<T>(values: Vec<Ciphertext>, unwrap: fn(Ciphertext) -> Option<T>) -> Option<Vec<T>> {
    values.into_iter().map(unwrap).collect()
}

/// One scheme's ciphertexts as session ciphertexts.
fn wrap<T>(values: Vec<T>, kind: fn(T) -> Ciphertext) -> Vec<Ciphertext> {
    values.into_iter().map(kind).collect()
}
