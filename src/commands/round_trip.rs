//! One chunk through the whole client → server → client path in one process, timed and sized
//! phase by phase and checked against the plaintext reference: what `infer` and `bench` both
//! do for every chunk of their job.

use crate::error::CliError;
use crate::progress::StepBar;
use veil_runtime::exec::Progress;
use veil_runtime::session::{
    chunk_encoded_len, BatchInfo, Context, Decrypted, EncryptionKey, KeySet, HEADER_LEN,
};

/// Seconds, bytes and counts summed over the chunks of a job.
#[derive(Debug)]
pub struct RoundTrips {
    /// Seconds encrypting.
    pub encrypt: f64,
    /// Seconds evaluating.
    pub eval: f64,
    /// Seconds decrypting.
    pub decrypt: f64,
    /// Bytes of the batch file these chunks make (header included).
    pub upload: usize,
    /// Bytes of the result file.
    pub download: usize,
    /// Input values clamped to the declared range.
    pub clamped: usize,
    /// Images whose decrypted scores differ from the reference (must stay 0).
    pub mismatches: usize,
}

impl Default for RoundTrips {
    fn default() -> Self {
        RoundTrips {
            encrypt: 0.0,
            eval: 0.0,
            decrypt: 0.0,
            upload: HEADER_LEN,
            download: HEADER_LEN,
            clamped: 0,
            mismatches: 0,
        }
    }
}

impl RoundTrips {
    /// Encrypts chunk `index` of `batch` (its raw images `raw`) with the client key, evaluates
    /// it with the server key (reporting steps to `progress`), decrypts it, and compares it
    /// with the plaintext reference. Adds its figures to the totals and returns the decrypted
    /// scores and the reference's; the chunk's ciphertexts are dropped before returning.
    #[allow(clippy::too_many_arguments)]
    pub fn run_chunk(
        &mut self,
        context: &Context,
        keys: &KeySet,
        batch: &BatchInfo,
        index: usize,
        raw: &[f32],
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
        bar: &StepBar,
        progress: &dyn Progress,
    ) -> Result<(Decrypted, Vec<Vec<i128>>), CliError> {
        let chunks = context.chunks_for(batch.images);
        let client = EncryptionKey::Client(&keys.client);
        bar.message(format!("chunk {}/{chunks}: encrypting", index + 1));
        let t = std::time::Instant::now();
        let (chunk, clamped) = context.encrypt_chunk(client, batch, index, raw, rng, &|_| {})?;
        self.encrypt += t.elapsed().as_secs_f64();
        self.clamped += clamped;
        self.upload += chunk_encoded_len(&chunk);

        let t = std::time::Instant::now();
        let result = context.eval_chunk(&keys.server, chunk, progress)?;
        self.eval += t.elapsed().as_secs_f64();
        self.download += chunk_encoded_len(&result);

        bar.message(format!("chunk {}/{chunks}: decrypting", index + 1));
        let t = std::time::Instant::now();
        let decrypted = context.decrypt_chunk(&keys.client, &result)?;
        self.decrypt += t.elapsed().as_secs_f64();
        drop(result);

        let reference = context.reference(raw)?;
        self.mismatches += decrypted
            .scores
            .iter()
            .zip(&reference)
            .filter(|(a, b)| a != b)
            .count();
        Ok((decrypted, reference))
    }
}
