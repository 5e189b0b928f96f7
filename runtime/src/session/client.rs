//! The client's side: encrypting raw images into a batch, decrypting a result into exact
//! integer scores.

use super::{
    BatchId, BatchInfo, Ciphertext, Context, EncryptedBatch, EncryptedChunk, EncryptionKey,
    SessionError,
};
use crate::bfv::{Encoder, Plaintext};
use crate::bgv;
use crate::exec::Crt;
use crate::plan::Scheme;
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// Decrypted scores.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// `scores[i]` are the integer class scores of image `i`; decode them with
    /// [`crate::plan::OutputDecoding::decode`] and classify with [`crate::plan::argmax`].
    pub scores: Vec<Vec<i128>>,
    /// Smallest measured invariant noise budget over all output ciphertexts, in bits.
    pub min_noise_budget_bits: u32,
}

impl Decrypted {
    /// Appends the scores of the next chunk and keeps the smaller budget.
    pub fn merge(&mut self, next: Decrypted) {
        self.scores.extend(next.scores);
        self.min_noise_budget_bits = self.min_noise_budget_bits.min(next.min_noise_budget_bits);
    }
}

impl Context {
    /// Starts a batch of `images` images encrypted under `key`: its size, key set, and a fresh
    /// random [`BatchId`] that its results keep. Its chunks are then made one at a time by
    /// [`Context::encrypt_chunk`].
    pub fn new_batch(
        &self,
        key: EncryptionKey<'_>,
        images: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<BatchInfo, SessionError> {
        if images == 0 {
            return Err(SessionError::NoImages);
        }
        Ok(BatchInfo {
            key_set: key.id(),
            id: BatchId::generate(rng),
            images,
        })
    }

    /// Encrypts chunk `index` of `batch`: `raw` holds the raw values of exactly the images
    /// [`Context::chunk_images`] names, image after image. `progress` is called once per
    /// ciphertext made. Returns the chunk and how many raw values lay outside the declared
    /// input range and were clamped to it.
    ///
    /// Each ciphertext draws its randomness from its own ChaCha20 stream seeded from `rng`, so
    /// ciphertexts are made in parallel and a seeded `rng` gives the same chunk every time.
    pub fn encrypt_chunk(
        &self,
        key: EncryptionKey<'_>,
        batch: &BatchInfo,
        index: usize,
        raw: &[f32],
        rng: &mut (impl RngCore + CryptoRng),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(EncryptedChunk, usize), SessionError> {
        self.check_key_set("batch", batch, key.id())?;
        let images = self.chunk_images(batch, index);
        let per_image = self.input_len();
        if images.is_empty() || raw.len() != images.len() * per_image {
            return Err(SessionError::ChunkLength {
                index,
                chunks: self.chunks_for(batch.images),
                expected: images.len() * per_image,
                found: raw.len(),
            });
        }
        let (columns, clamped) = self.input_slots(images.start, raw)?;
        let mut values = Vec::with_capacity(self.params.len());
        for (prime, params) in self.params.iter().enumerate() {
            let encoder = Encoder::new(params);
            let seeds: Vec<[u8; 32]> = columns
                .iter()
                .map(|_| {
                    let mut seed = [0u8; 32];
                    rng.fill_bytes(&mut seed);
                    seed
                })
                .collect();
            let cts: Result<Vec<Ciphertext>, SessionError> = columns
                .par_iter()
                .zip(seeds)
                .map(|(column, seed)| {
                    let mut local = ChaCha20Rng::from_seed(seed);
                    let pt = encoder.encode(column)?;
                    let ct = self.encrypt_one(key, prime, &pt, &mut local)?;
                    progress(1);
                    self.round_for_upload(ct)
                })
                .collect();
            values.push(cts?);
        }
        let chunk = EncryptedChunk {
            batch: *batch,
            index,
            values,
        };
        Ok((chunk, clamped))
    }

    /// Encrypts one plaintext of prime `prime` in the plan's scheme.
    fn encrypt_one(
        &self,
        key: EncryptionKey<'_>,
        prime: usize,
        pt: &Plaintext,
        rng: &mut ChaCha20Rng,
    ) -> Result<Ciphertext, SessionError> {
        let scheme = self.plan.params.scheme;
        let wrong = || SessionError::SchemeMismatch {
            expected: scheme,
            prime,
        };
        Ok(match (scheme, key) {
            (Scheme::Bfv, EncryptionKey::Client(client)) => {
                Ciphertext::Bfv(client.secret().encrypt(pt, rng)?)
            }
            (Scheme::Bfv, EncryptionKey::Public(pk)) => {
                Ciphertext::Bfv(pk.bfv().ok_or_else(wrong)?.encrypt(pt, rng)?)
            }
            (Scheme::Bgv, EncryptionKey::Client(client)) => {
                Ciphertext::Bgv(bgv::encrypt(client.secret(), pt, rng)?)
            }
            (Scheme::Bgv, EncryptionKey::Public(pk)) => {
                Ciphertext::Bgv(pk.bgv(prime).ok_or_else(wrong)?.encrypt(pt, rng)?)
            }
        })
    }

    /// Decrypts one ciphertext and measures its noise budget.
    fn decrypt_one(
        client: &super::ClientKey,
        ct: &Ciphertext,
    ) -> Result<(Plaintext, u32), SessionError> {
        let sk = client.secret();
        Ok(match ct {
            Ciphertext::Bfv(ct) => (sk.decrypt(ct)?, sk.noise_budget(ct)?),
            Ciphertext::Bgv(ct) => (bgv::decrypt(sk, ct)?, bgv::noise_budget_bits(sk, ct)?),
        })
    }

    /// Rounds away the low bits of `c0` the plan's [`crate::plan::Compression`] drops from
    /// uploads (the server reads the rounded coefficients back; decryption stays exact). A BGV
    /// `c0` is moved by a small multiple of t instead (see `bgv::Ciphertext::round_low_bits`).
    fn round_for_upload(&self, ct: Ciphertext) -> Result<Ciphertext, SessionError> {
        let k = self.plan.compression.upload_bits;
        Ok(match ct {
            ct if k == 0 => ct,
            Ciphertext::Bfv(ct) => Ciphertext::Bfv(ct.round_low_bits(&[k])?),
            Ciphertext::Bgv(ct) => Ciphertext::Bgv(ct.round_low_bits(&[k])?),
        })
    }

    /// Encrypts raw images (`raw` holds `count × input_len()` values, image after image) as
    /// one batch in memory: [`Context::new_batch`], then [`Context::encrypt_chunk`] for each
    /// chunk. `progress` is called once per ciphertext made. Returns the batch and how many
    /// raw values were clamped to the declared range.
    pub fn encrypt(
        &self,
        key: EncryptionKey<'_>,
        raw: &[f32],
        rng: &mut (impl RngCore + CryptoRng),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(EncryptedBatch, usize), SessionError> {
        let per_image = self.input_len();
        if per_image == 0 || !raw.len().is_multiple_of(per_image) {
            return Err(SessionError::RawLength {
                found: raw.len(),
                per_image,
            });
        }
        let info = self.new_batch(key, raw.len() / per_image, rng)?;
        let mut chunks = Vec::new();
        let mut clamped = 0;
        for index in 0..self.chunks_for(info.images) {
            let images = self.chunk_images(&info, index);
            let slice = &raw[images.start * per_image..images.end * per_image];
            let (chunk, c) = self.encrypt_chunk(key, &info, index, slice, rng, progress)?;
            clamped += c;
            chunks.push(chunk);
        }
        Ok((EncryptedBatch { info, chunks }, clamped))
    }

    /// Decrypts one chunk of a result into the exact integer scores of its images (in the
    /// order of [`Context::chunk_images`]), recombining the plaintext primes, and measures the
    /// noise budget.
    ///
    /// A chunk made under another key set than `client`'s is refused by its key-set id
    /// ([`SessionError::KeySetMismatch`]) before anything is decrypted.
    ///
    /// A chunk decrypted under the wrong key (or after the noise outgrew the message) gives
    /// residues that look uniform, so its recombined scores fall outside the output's
    /// guaranteed bound almost surely, while correct scores never do: such a chunk is refused
    /// with [`SessionError::ScoresOutOfBound`]. A budget of 0 bits alone is not refused:
    /// decryption is still exact anywhere below half the modulus.
    pub fn decrypt_chunk(
        &self,
        client: &super::ClientKey,
        chunk: &EncryptedChunk,
    ) -> Result<Decrypted, SessionError> {
        self.check_key_set("result", &chunk.batch, client.id())?;
        self.check_chunk(chunk, self.output_ciphertexts())?;
        let crt = Crt::new(&self.plan.params.plain_primes)?;
        let outputs = self.outputs();
        let in_chunk = self.chunk_images(&chunk.batch, chunk.index).len();
        let mut min_budget = u32::MAX;
        // residues[p][o][k]
        let mut residues: Vec<Vec<Vec<u64>>> = Vec::with_capacity(chunk.values.len());
        for (params, cts) in self.params.iter().zip(&chunk.values) {
            let encoder = Encoder::new(params);
            let decoded: Result<Vec<(Vec<u64>, u32)>, SessionError> = cts
                .par_iter()
                .map(|ct| {
                    if ct.scheme() != self.plan.params.scheme {
                        return Err(SessionError::SchemeMismatch {
                            expected: self.plan.params.scheme,
                            prime: 0,
                        });
                    }
                    let (pt, budget) = Self::decrypt_one(client, ct)?;
                    Ok((encoder.decode_unsigned(&pt)?, budget))
                })
                .collect();
            let decoded = decoded?;
            for (_, budget) in &decoded {
                min_budget = min_budget.min(*budget);
            }
            residues.push(decoded.into_iter().map(|(v, _)| v).collect());
        }
        let mut scores = vec![vec![0i128; outputs]; in_chunk];
        let mut buffer = vec![0u64; residues.len()];
        for (k, image) in scores.iter_mut().enumerate() {
            for (o, score) in image.iter_mut().enumerate() {
                let (ct, slot) = self.position(self.plan.output.register, o, k);
                for (p, per) in residues.iter().enumerate() {
                    buffer[p] = per[ct][slot];
                }
                *score = crt.recombine(&buffer)?;
            }
        }
        let decrypted = Decrypted {
            scores,
            min_noise_budget_bits: if min_budget == u32::MAX {
                0
            } else {
                min_budget
            },
        };
        self.check_scores_in_bound(&decrypted)?;
        Ok(decrypted)
    }

    /// Decrypts a whole result: [`Context::decrypt_chunk`] on each chunk, the scores joined
    /// in image order and the budget the smallest of any chunk.
    pub fn decrypt(
        &self,
        client: &super::ClientKey,
        result: &EncryptedBatch,
    ) -> Result<Decrypted, SessionError> {
        self.check_key_set("result", &result.info, client.id())?;
        self.check_batch(result)?;
        let mut all = Decrypted {
            scores: Vec::with_capacity(result.info.images),
            min_noise_budget_bits: u32::MAX,
        };
        for chunk in &result.chunks {
            let part = self.decrypt_chunk(client, chunk)?;
            all.merge(part);
        }
        if result.chunks.is_empty() {
            all.min_noise_budget_bits = 0;
        }
        Ok(all)
    }

    /// Refuses scores beyond the bound the plaintext primes were chosen for: the guaranteed
    /// one, or the calibrated one of a calibrated plan (its primes cover only that, so a score
    /// beyond it may have wrapped and cannot be trusted; and a bound past half the plaintext
    /// modulus would let any decryption pass).
    fn check_scores_in_bound(&self, decrypted: &Decrypted) -> Result<(), SessionError> {
        let bound_bits =
            self.plan
                .registers
                .get(self.plan.output.register)
                .map_or(f64::INFINITY, |r| {
                    r.calibrated_value_bits
                        .map_or(r.value_bits, |c| c.min(r.value_bits))
                });
        let bound = bound_bits.exp2() * (1.0 + 1e-12);
        let total: usize = decrypted.scores.iter().map(Vec::len).sum();
        let outside = decrypted
            .scores
            .iter()
            .flatten()
            .filter(|&&v| (v as f64).abs() > bound)
            .count();
        if outside == 0 {
            return Ok(());
        }
        Err(SessionError::ScoresOutOfBound {
            outside,
            total,
            bound_bits,
            budget_bits: decrypted.min_noise_budget_bits,
        })
    }
}
