//! Private inference as a library: a plan's client and server sides.
//!
//! The split follows who may hold what. A [`Context`] is public: the plan and the BFV
//! parameters it implies, identical on both sides. The client makes a [`KeySet`] and keeps its
//! [`ClientKey`] (the secret key: encrypts with seeded, half-size ciphertexts, and decrypts);
//! the server is given only the [`ServerKey`] (the relinearisation key: evaluates). Encryption
//! may also use the [`PublicKey`], for a party that must not decrypt.
//!
//! Inputs are plain slices of raw values, `count × plan.input_len()` of them, image after
//! image; each is encoded by the plan's one input rule ([`crate::plan::InputEncoding::encode`]).
//! Images travel in chunks of `n` (the ring degree): slot `k` of every ciphertext of a chunk
//! belongs to image `k` of that chunk, one ciphertext per input value the plan uses
//! (feature-major). A plan with several plaintext primes has one set of ciphertexts per prime,
//! all under the same keys; decryption recombines the residues by the Chinese remainder theorem
//! into the exact integer scores of [`Context::reference`].
//!
//! Every key of a [`KeySet`] and every batch and result made with it carry the set's
//! [`KeyId`]; every batch carries a random [`BatchId`], which its results keep. Evaluation and
//! decryption refuse values of another key set by name instead of computing noise, and
//! decryption refuses partial results of different batches.
//!
//! # Chunk by chunk
//!
//! A job of any size runs in constant memory: [`Context::new_batch`] fixes a batch's size and
//! ids, then each chunk is encrypted ([`Context::encrypt_chunk`]), written
//! ([`ChunkWriter`]), read back ([`ChunkReader`]), evaluated ([`Context::eval_chunk`]) and
//! decrypted ([`Context::decrypt_chunk`]) on its own, and dropped. Chunks are independent, so
//! a batch's chunks may be evaluated by different processes or machines
//! ([`ChunkReader::skip_to`] and a [`Header`] naming the chunks a file holds); [`assemble`]
//! orders their partial results and refuses gaps, overlaps and strangers. The whole-batch
//! functions ([`Context::encrypt`], [`Context::eval`], [`Context::decrypt`],
//! [`Context::write_batch`], [`Context::read_batch`]) are loops over the chunk functions.
//!
//! `wire` is the byte format of batches and results exchanged between the two sides.

mod client;
mod error;
mod keys;
mod server;
mod value;
mod wire;

pub use client::Decrypted;
pub use error::SessionError;
pub use keys::{
    ClientKey, EncryptionKey, KeySet, PublicKey, ServerKey, MAGIC_BGV_EVAL_KEYS,
    MAGIC_BGV_PUBLIC_KEYS, MAGIC_PACKED_EVAL_KEYS, MAX_KEY_BYTES,
};
pub use value::Ciphertext;
pub use wire::{
    assemble, chunk_encoded_len, encoded_len, key_kind, ChunkReader, ChunkWriter, ContainerError,
    ContainerKind, Header, KeyKind, PartsError, CHECKSUM_LEN, CHUNK_PREFIX_LEN, CONTAINER_VERSION,
    HEADER_LEN, ITEM_PREFIX_LEN,
};

use crate::bfv::{BfvParameters, KeyId};
use crate::exec::{run_plan, ExactBackend, NoProgress, PreparedDiagonals};
use crate::plan::{Plan, Scheme};
use rand::{CryptoRng, RngCore};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// The most memory a packed plan's prepared diagonals may take on the server (16 GiB, every
/// plaintext prime): CryptoNets-MNIST needs 0.15 GB.
pub const MAX_PREPARED_BYTES: u64 = 16 << 30;

/// A plan with the BFV parameters of each of its plaintext primes: everything both sides
/// share, and nothing secret.
#[derive(Debug)]
pub struct Context {
    plan: Plan,
    fingerprint: u64,
    params: Vec<Arc<BfvParameters>>,
    /// A packed plan's diagonals per plaintext prime, encoded on first use and kept (see
    /// [`Context::prepare`]).
    prepared: Vec<OnceLock<Arc<PreparedDiagonals>>>,
}

crate::random_id::random_id! {
    /// A batch's random identifier, drawn when it is encrypted and kept by its results, so that
    /// partial results of different batches are never put together.
    BatchId
}

/// What every chunk of a batch, and of its result, shares: the keys, the batch and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// The key set the values are encrypted under: evaluation and decryption refuse keys of
    /// another set.
    pub key_set: KeyId,
    /// The batch, drawn at encryption.
    pub id: BatchId,
    /// Number of images in the whole batch.
    pub images: usize,
}

/// One chunk of encrypted values: `values[p][v]` is value `v` under plaintext prime `p` (an
/// input value of a batch, or an output score of a result), slot `k` belonging to image
/// `index × slots + k` of the batch.
#[derive(Debug)]
pub struct EncryptedChunk {
    /// The batch the chunk belongs to.
    pub batch: BatchInfo,
    /// Which chunk of the batch (0-based).
    pub index: usize,
    /// The ciphertexts.
    pub values: Vec<Vec<Ciphertext>>,
}

/// A whole batch (or result) in memory: every chunk, in order. Convenient for small jobs; a
/// large one goes chunk by chunk (see the module's documentation).
#[derive(Debug)]
pub struct EncryptedBatch {
    /// What the chunks share.
    pub info: BatchInfo,
    /// The chunks, `chunks[c].index == c`.
    pub chunks: Vec<EncryptedChunk>,
}

impl Context {
    /// Validates `plan` and builds the parameters it names, checked against its security level.
    pub fn new(plan: Plan) -> Result<Self, SessionError> {
        plan.validate()?;
        let params = plan.bfv_parameters()?;
        let fingerprint = plan.fingerprint();
        let prepared = params.iter().map(|_| OnceLock::new()).collect();
        let context = Context {
            plan,
            fingerprint,
            params,
            prepared,
        };
        context.check_packed_sizes()?;
        Ok(context)
    }

    /// Bytes of the evaluation-key file of a key set for this plan: the relinearisation key(s)
    /// and, for a packed plan, the Galois keys at the levels the plan rotates at (per plaintext
    /// prime under BGV), the key list's framing left out (a few bytes per key).
    pub fn eval_key_bytes(&self) -> usize {
        let Some(params) = self.params.first() else {
            return 0;
        };
        let top = params.ring().max_level();
        let sets = match self.plan.params.scheme {
            Scheme::Bfv => 1,
            Scheme::Bgv => self.params.len(),
        };
        // A relinearisation key has the size of a Galois key serving every level.
        let relin = crate::bfv::GaloisKeys::serialized_len_at_level(params, top);
        let galois: usize = self
            .plan
            .packing
            .as_ref()
            .and_then(|p| p.galois_levels(&self.plan).ok())
            .unwrap_or_default()
            .iter()
            .map(|&(_, level)| crate::bfv::GaloisKeys::serialized_len_at_level(params, level))
            .sum();
        sets.saturating_mul(relin.saturating_add(galois))
    }

    /// Refuses a packed plan whose keys could not be read back ([`MAX_KEY_BYTES`]) or whose
    /// prepared diagonals would take more than [`MAX_PREPARED_BYTES`]: a plan, like any file,
    /// may come from an attacker, and its rotations and diagonals decide what the client
    /// generates and the server holds.
    fn check_packed_sizes(&self) -> Result<(), SessionError> {
        let Some(packing) = &self.plan.packing else {
            return Ok(());
        };
        let keys = self.eval_key_bytes() as u64;
        if keys > MAX_KEY_BYTES {
            return Err(SessionError::PackedTooLarge {
                what: "evaluation keys",
                bytes: keys,
                limit: MAX_KEY_BYTES,
            });
        }
        let schedules = packing
            .schedules(&self.plan)
            .map_err(|e| SessionError::Plan(crate::plan::ValidationError::Packing(e)))?;
        let n = self.plan.params.degree as u64;
        let prepared: u64 = schedules
            .iter()
            .zip(crate::plan::Packing::linear_levels(&self.plan))
            .map(|(s, level)| s.diagonals() as u64 * level as u64 * n * 8)
            .fold(0u64, u64::saturating_add)
            .saturating_mul(self.params.len() as u64);
        if prepared > MAX_PREPARED_BYTES {
            return Err(SessionError::PackedTooLarge {
                what: "prepared diagonals",
                bytes: prepared,
                limit: MAX_PREPARED_BYTES,
            });
        }
        Ok(())
    }

    /// Encodes a packed plan's diagonals for every plaintext prime now, rather than on the
    /// first evaluation (a server does this once, before requests arrive; `veil bench` times
    /// it apart). Nothing to do for a slot-layout plan.
    pub fn prepare(&self) -> Result<(), SessionError> {
        for prime in 0..self.params.len() {
            self.prepared(prime)?;
        }
        Ok(())
    }

    /// The packed plan's prepared diagonals for prime `prime` (`None` for a slot plan).
    fn prepared(&self, prime: usize) -> Result<Option<Arc<PreparedDiagonals>>, SessionError> {
        let (Some(_), Some(cell), Some(params)) = (
            &self.plan.packing,
            self.prepared.get(prime),
            self.params.get(prime),
        ) else {
            return Ok(None);
        };
        if let Some(ready) = cell.get() {
            return Ok(Some(ready.clone()));
        }
        let made = Arc::new(PreparedDiagonals::new(&self.plan, params)?);
        Ok(Some(cell.get_or_init(|| made).clone()))
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The plan's fingerprint (see [`Plan::fingerprint`]), computed once.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Parameters per plaintext prime (all on the same ring).
    pub fn params(&self) -> &[Arc<BfvParameters>] {
        &self.params
    }

    /// Images per chunk: n (one per slot) in the slot layout, n / lane packed.
    pub fn slots(&self) -> usize {
        self.plan.images_per_ciphertext()
    }

    /// Ciphertexts per plaintext prime of an uploaded chunk: one per input value in the slot
    /// layout, one packed.
    pub fn input_ciphertexts(&self) -> usize {
        self.plan.ciphertexts_of(self.plan.input.register)
    }

    /// Ciphertexts per plaintext prime of a result chunk.
    pub fn output_ciphertexts(&self) -> usize {
        self.plan.ciphertexts_of(self.plan.output.register)
    }

    /// Where value `value` of register `register` of image `image` (of a chunk) sits: its
    /// ciphertext and slot. In the slot layout, ciphertext `value`, slot `image`; packed, the
    /// one ciphertext, at the image's lane base plus the value's lane slot.
    fn position(&self, register: usize, value: usize, image: usize) -> (usize, usize) {
        match &self.plan.packing {
            None => (value, image),
            Some(p) => {
                let base = p.lane_base(self.plan.params.degree, image);
                let offset = p.layouts[register][value] as usize;
                (0, base + offset)
            }
        }
    }

    /// Number of chunks `images` images take.
    pub fn chunks_for(&self, images: usize) -> usize {
        images.div_ceil(self.slots())
    }

    /// Number of raw values one image has.
    pub fn input_len(&self) -> usize {
        self.plan.input_len()
    }

    /// Number of output values (class scores) per image.
    pub fn outputs(&self) -> usize {
        self.plan.output_len()
    }

    /// Generates a fresh key set on the plan's ring, for the plan's scheme.
    pub fn keygen(&self, rng: &mut (impl RngCore + CryptoRng)) -> Result<KeySet, SessionError> {
        KeySet::generate(self, rng)
    }

    /// Runs the plan on the integers (the plaintext reference the encrypted scores must equal
    /// bit for bit), with wrap-around detection. `raw` holds the images one after another.
    pub fn reference(&self, raw: &[f32]) -> Result<Vec<Vec<i128>>, SessionError> {
        let backend = ExactBackend::for_plain_primes(&self.plan.params.plain_primes);
        let outputs = self.outputs();
        let mut scores = Vec::new();
        for chunk in self.image_chunks(raw)? {
            let columns = self.feature_major(chunk.first_image, chunk.raw)?;
            let inputs = columns
                .into_iter()
                .map(|c| c.into_iter().map(i128::from).collect())
                .collect();
            let out = run_plan(&self.plan, &backend, inputs, &NoProgress)?;
            for k in 0..chunk.images {
                scores.push((0..outputs).map(|o| out[o][k]).collect());
            }
        }
        Ok(scores)
    }

    /// Images of `batch` that chunk `index` holds (empty past the last chunk).
    pub fn chunk_images(&self, batch: &BatchInfo, index: usize) -> Range<usize> {
        let start = index.saturating_mul(self.slots()).min(batch.images);
        start..start.saturating_add(self.slots()).min(batch.images)
    }

    /// Refuses values encrypted under another key set than `key`'s.
    fn check_key_set(
        &self,
        what: &'static str,
        batch: &BatchInfo,
        key: KeyId,
    ) -> Result<(), SessionError> {
        if batch.key_set == key {
            return Ok(());
        }
        Err(SessionError::KeySetMismatch {
            what,
            found: batch.key_set,
            expected: key,
        })
    }

    /// Refuses a chunk that is not one of its batch's, or whose prime and value counts are not
    /// the plan's (`values` ciphertexts per prime).
    fn check_chunk(&self, chunk: &EncryptedChunk, values: usize) -> Result<(), SessionError> {
        let chunks = self.chunks_for(chunk.batch.images);
        let primes = self.params.len();
        let ok = chunk.index < chunks
            && chunk.values.len() == primes
            && chunk.values.iter().all(|cts| cts.len() == values);
        if ok {
            return Ok(());
        }
        Err(SessionError::BatchShape {
            expected: format!("chunk < {chunks} with {primes} primes × {values} ciphertexts"),
            found: format!(
                "chunk {} with {} primes × {:?} ciphertexts",
                chunk.index,
                chunk.values.len(),
                chunk.values.iter().map(Vec::len).collect::<Vec<_>>()
            ),
        })
    }

    /// Refuses a whole batch whose chunks are not its own, in order, all present.
    fn check_batch(&self, batch: &EncryptedBatch) -> Result<(), SessionError> {
        let chunks = self.chunks_for(batch.info.images);
        let in_order = batch
            .chunks
            .iter()
            .enumerate()
            .all(|(c, chunk)| chunk.index == c && chunk.batch == batch.info);
        if batch.chunks.len() == chunks && in_order {
            return Ok(());
        }
        Err(SessionError::BatchShape {
            expected: format!(
                "chunks 0..{chunks} of batch {} for {} images, in order",
                batch.info.id, batch.info.images
            ),
            found: format!(
                "{} chunks: {:?}",
                batch.chunks.len(),
                batch.chunks.iter().map(|c| c.index).collect::<Vec<_>>()
            ),
        })
    }

    /// Splits raw images into chunks of at most `slots()` images.
    fn image_chunks<'a>(&self, raw: &'a [f32]) -> Result<Vec<RawChunk<'a>>, SessionError> {
        let len = self.input_len();
        if len == 0 || !raw.len().is_multiple_of(len) {
            return Err(SessionError::RawLength {
                found: raw.len(),
                per_image: len,
            });
        }
        Ok(raw
            .chunks(self.slots() * len)
            .enumerate()
            .map(|(index, chunk)| RawChunk {
                first_image: index * self.slots(),
                images: chunk.len() / len,
                raw: chunk,
            })
            .collect())
    }

    /// Encodes the images of one chunk and places every value in its ciphertext's slot
    /// ([`Context::position`]): `slots[c][s]` is slot `s` of input ciphertext `c` (in the slot
    /// layout, `slots[f][k]` is input value `f` of image `k`). Also returns how many raw
    /// values were clamped to the declared range.
    fn input_slots(
        &self,
        first_image: usize,
        raw: &[f32],
    ) -> Result<(Vec<Vec<i64>>, usize), SessionError> {
        let input = &self.plan.input;
        let images = raw.len() / self.input_len().max(1);
        let width = match self.plan.packing {
            Some(_) => self.plan.params.degree,
            None => images,
        };
        let mut slots: Vec<Vec<i64>> = vec![vec![0; width]; self.input_ciphertexts()];
        let mut clamped = 0;
        for (offset, image) in raw.chunks(self.input_len()).enumerate() {
            let encoded = input.encode(image).map_err(|source| SessionError::Input {
                image: first_image + offset,
                source,
            })?;
            clamped += encoded.clamped;
            for (f, v) in encoded.values.into_iter().enumerate() {
                let (ct, slot) = self.position(input.register, f, offset);
                slots[ct][slot] = v;
            }
        }
        Ok((slots, clamped))
    }

    /// Encodes the images of one chunk feature-major, for the exact reference: `columns[f][k]`
    /// is input value `f` of image `k`, whatever the layout.
    fn feature_major(
        &self,
        first_image: usize,
        raw: &[f32],
    ) -> Result<Vec<Vec<i64>>, SessionError> {
        let input = &self.plan.input;
        let mut columns: Vec<Vec<i64>> = vec![Vec::new(); input.features.len()];
        for (offset, image) in raw.chunks(self.input_len()).enumerate() {
            let encoded = input.encode(image).map_err(|source| SessionError::Input {
                image: first_image + offset,
                source,
            })?;
            for (column, v) in columns.iter_mut().zip(encoded.values) {
                column.push(v);
            }
        }
        Ok(columns)
    }
}

/// The raw values of the images of one chunk.
struct RawChunk<'a> {
    first_image: usize,
    images: usize,
    raw: &'a [f32],
}

#[cfg(test)]
mod packed_tests;
#[cfg(test)]
mod tests;
