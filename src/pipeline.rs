//! The private-inference pipeline shared by the commands: keys, encryption of image batches,
//! evaluation, decryption with CRT recombination, and the plaintext reference.
//!
//! Images are processed in chunks of `n` (the ring degree): slot `k` of every ciphertext of a
//! chunk belongs to image `k` of that chunk. A plan with several plaintext primes has one set of
//! ciphertexts per prime; the keys are shared by all primes.

use crate::data::Images;
use crate::encoding::feature_major;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::sync::Arc;
use veil_runtime::bfv::{BfvParameters, Ciphertext, Encoder, PublicKey, RelinKey, SecretKey};
use veil_runtime::exec::crt::Crt;
use veil_runtime::exec::{run_plan, EncryptedBackend, ExactBackend, Progress};
use veil_runtime::plan::Plan;
use veil_runtime::security::SecurityLevel;

/// The error type of the pipeline.
pub type PipelineError = Box<dyn std::error::Error + Send + Sync>;

/// A plan with the BFV parameters for each of its plaintext primes.
#[derive(Debug)]
pub struct Context {
    /// The plan.
    pub plan: Plan,
    /// Fingerprint of the plan, stored in batch and result files.
    pub fingerprint: u64,
    /// Parameters per plaintext prime (same ring).
    pub params: Vec<Arc<BfvParameters>>,
}

/// A key that can encrypt: the client's secret key (seeded, half-size ciphertexts) or the
/// public key.
#[derive(Debug, Clone, Copy)]
pub enum EncryptionKey<'a> {
    /// Symmetric encryption.
    Secret(&'a SecretKey),
    /// Public-key encryption.
    Public(&'a PublicKey),
}

/// The three keys `veil keygen` makes.
#[derive(Debug)]
pub struct KeySet {
    /// The client's secret key.
    pub secret: SecretKey,
    /// The public encryption key.
    pub public: PublicKey,
    /// The server's relinearisation key.
    pub relin: RelinKey,
}

/// Encrypted images: `chunks[c][p][f]` is feature `f` of chunk `c` under plaintext prime `p`.
#[derive(Debug)]
pub struct EncryptedBatch {
    /// Number of images.
    pub images: usize,
    /// The ciphertexts.
    pub chunks: Vec<Vec<Vec<Ciphertext>>>,
}

/// Decrypted outputs.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// `scores[i]` are the integer class scores of image `i`.
    pub scores: Vec<Vec<i128>>,
    /// Smallest measured invariant noise budget over all output ciphertexts, in bits.
    pub min_noise_budget_bits: u32,
}

impl Context {
    /// Builds the parameters the plan names, checking them against its security level.
    pub fn new(plan: Plan) -> Result<Self, PipelineError> {
        plan.validate()?;
        let p = &plan.params;
        let special = *p
            .special_primes
            .first()
            .ok_or("the plan names no special prime for key switching")?;
        let (&first_t, rest) = p
            .plain_primes
            .split_first()
            .ok_or("the plan names no plaintext prime")?;
        let mut builder = BfvParameters::builder()
            .degree(p.degree)
            .q_primes(p.q_primes.clone())
            .special_prime(special)
            .plain_modulus(first_t);
        builder = match SecurityLevel::from_bits(p.security_bits) {
            Some(level) => builder.security(level),
            None if p.security_bits == 0 => builder.allow_insecure(true),
            None => {
                return Err(format!(
                    "the plan asks for {}-bit security; only 128, 192 and 256 exist",
                    p.security_bits
                )
                .into())
            }
        };
        let base = builder.build()?;
        let mut params = vec![base.clone()];
        for &t in rest {
            params.push(base.with_plain_modulus(t)?);
        }
        let fingerprint = crate::files::fnv1a(&serde_json::to_vec(&plan)?);
        Ok(Context {
            plan,
            fingerprint,
            params,
        })
    }

    /// Slots per ciphertext (images per chunk).
    pub fn slots(&self) -> usize {
        self.plan.params.degree
    }

    /// Number of output values (classes).
    pub fn outputs(&self) -> usize {
        self.plan
            .registers
            .get(self.plan.output.register)
            .map_or(0, |r| r.len)
    }

    /// Generates a fresh key set.
    pub fn keygen(&self, rng: &mut ChaCha20Rng) -> KeySet {
        let secret = SecretKey::generate(&self.params[0], rng);
        let public = PublicKey::new(&secret, rng);
        let relin = RelinKey::new(&secret, rng);
        KeySet {
            secret,
            public,
            relin,
        }
    }

    /// Encrypts `images` (all of them, in chunks of `n`). `progress` is called once per
    /// ciphertext made. Returns the batch and how many raw values were clamped to the
    /// declared input range.
    pub fn encrypt(
        &self,
        key: EncryptionKey<'_>,
        images: &Images,
        rng: &mut ChaCha20Rng,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(EncryptedBatch, usize), PipelineError> {
        let slots = self.slots();
        let mut chunks = Vec::new();
        let mut clamped = 0;
        let mut all: Vec<&[f32]> = images.iter().collect();
        for (chunk_index, chunk) in all.chunks_mut(slots).enumerate() {
            let (columns, c) =
                feature_major(&self.plan.input, chunk_index * slots, chunk.iter().copied())?;
            clamped += c;
            let mut per_prime = Vec::with_capacity(self.params.len());
            for params in &self.params {
                let encoder = Encoder::new(params);
                let seeds: Vec<[u8; 32]> = columns
                    .iter()
                    .map(|_| {
                        let mut seed = [0u8; 32];
                        rng.fill_bytes(&mut seed);
                        seed
                    })
                    .collect();
                let cts: Result<Vec<Ciphertext>, PipelineError> = columns
                    .par_iter()
                    .zip(seeds)
                    .map(|(column, seed)| {
                        let mut local = ChaCha20Rng::from_seed(seed);
                        let pt = encoder.encode(column)?;
                        let ct = match key {
                            EncryptionKey::Secret(sk) => sk.encrypt(&pt, &mut local)?,
                            EncryptionKey::Public(pk) => pk.encrypt(&pt, &mut local)?,
                        };
                        progress(1);
                        Ok(ct)
                    })
                    .collect();
                per_prime.push(cts?);
            }
            chunks.push(per_prime);
        }
        Ok((
            EncryptedBatch {
                images: images.count(),
                chunks,
            },
            clamped,
        ))
    }

    /// Evaluates the plan on every chunk and prime of `batch` with the relinearisation key.
    pub fn eval(
        &self,
        relin: &RelinKey,
        batch: EncryptedBatch,
        progress: &dyn Progress,
    ) -> Result<EncryptedBatch, PipelineError> {
        let mut chunks = Vec::with_capacity(batch.chunks.len());
        for per_prime in batch.chunks {
            let mut outputs = Vec::with_capacity(per_prime.len());
            for (params, inputs) in self.params.iter().zip(per_prime) {
                let backend = EncryptedBackend::new(params, relin);
                outputs.push(run_plan(&self.plan, &backend, inputs, progress)?);
            }
            chunks.push(outputs);
        }
        Ok(EncryptedBatch {
            images: batch.images,
            chunks,
        })
    }

    /// Decrypts a result, recombining the plaintext primes, and measures the noise budget.
    pub fn decrypt(
        &self,
        secret: &SecretKey,
        result: &EncryptedBatch,
    ) -> Result<Decrypted, PipelineError> {
        let crt = Crt::new(&self.plan.params.plain_primes)?;
        let slots = self.slots();
        let outputs = self.outputs();
        let mut scores = vec![vec![0i128; outputs]; result.images];
        let mut min_budget = u32::MAX;
        for (chunk_index, per_prime) in result.chunks.iter().enumerate() {
            let first = chunk_index * slots;
            let in_chunk = result.images.saturating_sub(first).min(slots);
            // residues[p][o][k]
            let mut residues: Vec<Vec<Vec<u64>>> = Vec::with_capacity(per_prime.len());
            for (params, cts) in self.params.iter().zip(per_prime) {
                let encoder = Encoder::new(params);
                let decoded: Result<Vec<(Vec<u64>, u32)>, PipelineError> = cts
                    .par_iter()
                    .map(|ct| {
                        let pt = secret.decrypt(ct)?;
                        let budget = secret.noise_budget(ct)?;
                        Ok((encoder.decode_unsigned(&pt)?, budget))
                    })
                    .collect();
                let decoded = decoded?;
                for (_, budget) in &decoded {
                    min_budget = min_budget.min(*budget);
                }
                residues.push(decoded.into_iter().map(|(v, _)| v).collect());
            }
            let mut buffer = vec![0u64; residues.len()];
            for k in 0..in_chunk {
                for o in 0..outputs {
                    for (p, per) in residues.iter().enumerate() {
                        buffer[p] = per[o][k];
                    }
                    scores[first + k][o] = crt.recombine(&buffer)?;
                }
            }
        }
        Ok(Decrypted {
            scores,
            min_noise_budget_bits: if min_budget == u32::MAX {
                0
            } else {
                min_budget
            },
        })
    }

    /// Runs the plan on the integers (the plaintext reference), with wrap-around detection.
    pub fn reference(&self, images: &Images) -> Result<Vec<Vec<i128>>, PipelineError> {
        let backend = ExactBackend::for_plain_primes(&self.plan.params.plain_primes);
        let outputs = self.outputs();
        let mut scores = Vec::with_capacity(images.count());
        let mut all: Vec<&[f32]> = images.iter().collect();
        for (chunk_index, chunk) in all.chunks_mut(self.slots()).enumerate() {
            let (columns, _) = feature_major(
                &self.plan.input,
                chunk_index * self.slots(),
                chunk.iter().copied(),
            )?;
            let inputs: Vec<Vec<i128>> = columns
                .into_iter()
                .map(|c| c.into_iter().map(i128::from).collect())
                .collect();
            let out = run_plan(
                &self.plan,
                &backend,
                inputs,
                &veil_runtime::exec::NoProgress,
            )?;
            for k in 0..chunk.len() {
                scores.push((0..outputs).map(|o| out[o][k]).collect());
            }
        }
        Ok(scores)
    }
}
