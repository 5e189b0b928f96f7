//! The client's side: encrypting raw images into a batch, decrypting a result into exact
//! integer scores.

use super::{Context, EncryptedBatch, EncryptionKey, SessionError};
use crate::bfv::{Ciphertext, Encoder};
use crate::exec::Crt;
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

impl Context {
    /// Encrypts raw images (`raw` holds `count × input_len()` values, image after image) in
    /// chunks of `slots()`. `progress` is called once per ciphertext made. Returns the batch
    /// and how many raw values lay outside the declared input range and were clamped to it.
    ///
    /// Each ciphertext draws its randomness from its own ChaCha20 stream seeded from `rng`, so
    /// ciphertexts are made in parallel and a seeded `rng` gives the same batch every time.
    pub fn encrypt(
        &self,
        key: EncryptionKey<'_>,
        raw: &[f32],
        rng: &mut (impl RngCore + CryptoRng),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(EncryptedBatch, usize), SessionError> {
        let mut chunks = Vec::new();
        let mut clamped = 0;
        let mut images = 0;
        for chunk in self.image_chunks(raw)? {
            let (columns, c) = self.feature_major(chunk.first_image, chunk.raw)?;
            clamped += c;
            images += chunk.images;
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
                let cts: Result<Vec<Ciphertext>, SessionError> = columns
                    .par_iter()
                    .zip(seeds)
                    .map(|(column, seed)| {
                        let mut local = ChaCha20Rng::from_seed(seed);
                        let pt = encoder.encode(column)?;
                        let ct = match key {
                            EncryptionKey::Client(client) => {
                                client.secret().encrypt(&pt, &mut local)?
                            }
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
                images,
                key_set: key.id(),
                chunks,
            },
            clamped,
        ))
    }

    /// Decrypts a result, recombines the plaintext primes and measures the noise budget.
    ///
    /// A result made under another key set than `client`'s is refused by its key-set id
    /// ([`SessionError::KeySetMismatch`]) before anything is decrypted.
    ///
    /// A result decrypted under the wrong key (or after the noise outgrew the message) gives
    /// residues that look uniform, so its recombined scores fall outside the output's
    /// guaranteed bound almost surely, while correct scores never do: such a result is refused
    /// with [`SessionError::ScoresOutOfBound`]. A budget of 0 bits alone is not refused:
    /// decryption is still exact anywhere below half the modulus.
    pub fn decrypt(
        &self,
        client: &super::ClientKey,
        result: &EncryptedBatch,
    ) -> Result<Decrypted, SessionError> {
        self.check_key_set("result", result, client.id())?;
        self.check_shape(result, self.outputs())?;
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
                let decoded: Result<Vec<(Vec<u64>, u32)>, SessionError> = cts
                    .par_iter()
                    .map(|ct| {
                        let pt = client.secret().decrypt(ct)?;
                        let budget = client.secret().noise_budget(ct)?;
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
