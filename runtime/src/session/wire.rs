//! The wire format of encrypted batches and encrypted results, written and read one chunk at
//! a time, and how a file's first bytes tell what it holds.
//!
//! Layout of format version 4 (all integers little-endian). The header:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic: `VEILBTCH` (batch, client → server) or `VEILRSLT` (result, server → client) |
//! | 4 | format version (4) |
//! | 16 | key-set id ([`KeyId`]) of the keys the values are encrypted under |
//! | 16 | batch id ([`BatchId`]), drawn at encryption and kept by every result of the batch |
//! | 8 | plan fingerprint (FNV-1a of the plan's canonical JSON) |
//! | 8 | number of images in the whole batch |
//! | 4 | slots per chunk (the ring degree) |
//! | 4 | number of chunks of the whole batch (⌈images / slots⌉) |
//! | 4 | number of plaintext primes |
//! | 4 | ciphertexts per chunk and prime |
//! | 4 | first chunk this file holds |
//! | 4 | number of chunks this file holds (all of them, or a shard's range) |
//! | 8 | header checksum: FNV-1a of the header's bytes before it |
//!
//! Then, for each chunk held, in order, one record:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | chunk index (within the whole batch) |
//! | 8 | length in bytes of the ciphertexts that follow |
//! | … | for each prime, ciphertext: u32 length, then the runtime's ciphertext encoding, with the low bits the plan's compression names rounded away |
//! | 8 | chunk checksum: FNV-1a of the whole header, then of this record's bytes before it |
//!
//! The file ends after the last record. A writer needs one chunk in memory, a reader one
//! chunk and one serialised ciphertext, whatever the batch's size; a reader can also skip to a
//! chunk by its record lengths, without reading the chunks before it.
//!
//! Readers check the magic and version, then the header's checksum, then the header against
//! the plan; and each record's checksum before the chunk is handed out (ciphertexts are parsed
//! as they stream past, but a chunk whose checksum fails is reported as damaged and dropped).
//! Because each record's checksum starts from the header's bytes, a record moved from another
//! batch or file fails too. A record's declared length is checked against the most a chunk
//! of the plan can take before anything is read. The checksums detect accidental damage (a
//! truncated upload, flipped bits); they are not a MAC, and anyone can recompute them after
//! changing a file on purpose.
//!
//! Each ciphertext must have exactly the low bits rounded away that the plan's
//! [`crate::plan::Compression`] names for its side (`c0` of an upload, every component of a
//! result); a ciphertext rounded otherwise is refused.
//!
//! Versions 1 (no key-set id, no checksum), 2 (one checksum over the whole file, which had
//! to be read whole) and 3 (every ciphertext whole) are refused with a message naming the
//! version.

use super::keys::{MAGIC_BGV_EVAL_KEYS, MAGIC_BGV_PUBLIC_KEYS, MAGIC_PACKED_EVAL_KEYS};
use super::Ciphertext;
use super::{BatchId, BatchInfo, Context, EncryptedBatch, EncryptedChunk};
use crate::bfv::KeyId;
use crate::bfv::{MAGIC_PUBLIC_KEY, MAGIC_RELIN_KEY, MAGIC_SECRET_KEY};
use crate::math::Fnv1a;
use crate::plan::PLAN_MAGIC;
use std::fmt::Display;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use thiserror::Error;

/// The container format version this build writes and reads.
pub const CONTAINER_VERSION: u32 = 4;
/// Bytes of the fixed-size header, its checksum included.
pub const HEADER_LEN: usize = 8 + 4 + KeyId::LEN + BatchId::LEN + 8 + 8 + 6 * 4 + CHECKSUM_LEN;
/// Bytes of a chunk record's index and length, before its ciphertexts.
pub const CHUNK_PREFIX_LEN: usize = 4 + 8;
/// Bytes of the length prefix before each ciphertext.
pub const ITEM_PREFIX_LEN: usize = 4;
/// Bytes of a checksum (after the header, and after each chunk record).
pub const CHECKSUM_LEN: usize = 8;

/// Which side of the exchange a container holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// Encrypted inputs, written by `veil encrypt`.
    Batch,
    /// Encrypted outputs, written by `veil eval`.
    Result,
}

impl ContainerKind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            ContainerKind::Batch => b"VEILBTCH",
            ContainerKind::Result => b"VEILRSLT",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ContainerKind::Batch => "an encrypted batch (from `veil encrypt`)",
            ContainerKind::Result => "an encrypted result (from `veil eval`)",
        }
    }
}

/// Which key a serialised key holds, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The client's secret key (`secret.key`).
    Secret,
    /// The public encryption key (`public.key`).
    Public,
    /// The server's evaluation (relinearisation) key (`eval.key`).
    Eval,
}

impl KeyKind {
    /// What a user calls this key.
    pub fn describe(self) -> &'static str {
        match self {
            KeyKind::Secret => "a secret key",
            KeyKind::Public => "a public key",
            KeyKind::Eval => "an evaluation (relinearisation) key",
        }
    }
}

/// Tells which key serialised bytes hold from their magic, without parsing them (the server
/// uses this to refuse a secret key unread).
pub fn key_kind(bytes: &[u8]) -> Option<KeyKind> {
    if bytes.starts_with(MAGIC_SECRET_KEY) {
        Some(KeyKind::Secret)
    } else if bytes.starts_with(MAGIC_PUBLIC_KEY) || bytes.starts_with(MAGIC_BGV_PUBLIC_KEYS) {
        Some(KeyKind::Public)
    } else if bytes.starts_with(MAGIC_RELIN_KEY)
        || bytes.starts_with(MAGIC_BGV_EVAL_KEYS)
        || bytes.starts_with(MAGIC_PACKED_EVAL_KEYS)
    {
        Some(KeyKind::Eval)
    } else {
        None
    }
}

/// What a file that is not the expected container holds, told from its first bytes.
fn identify(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(8)];
    let what = match key_kind(bytes) {
        Some(KeyKind::Secret) => Some("a secret key (secret.key)"),
        Some(KeyKind::Public) => Some("a public key (public.key)"),
        Some(KeyKind::Eval) => Some("an evaluation key (eval.key)"),
        None => [ContainerKind::Batch, ContainerKind::Result]
            .into_iter()
            .find(|kind| head.starts_with(kind.magic()))
            .map(ContainerKind::describe)
            .or_else(|| head.starts_with(PLAN_MAGIC).then_some("a compiled plan")),
    };
    match what {
        Some(what) => format!("it is {what}"),
        None if head.is_empty() => "the file is empty".to_owned(),
        None => format!(
            "the file starts with {:?}",
            String::from_utf8_lossy(head).into_owned()
        ),
    }
}

/// The fixed-size header of a container: which batch, which plan, and which of the batch's
/// chunks the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Batch or result.
    pub kind: ContainerKind,
    /// The key set, the batch id and the batch's number of images.
    pub batch: BatchInfo,
    /// Fingerprint of the plan the container was made for.
    pub plan_fingerprint: u64,
    /// Slots per chunk.
    pub slots: u32,
    /// Number of chunks of the whole batch.
    pub chunks: u32,
    /// Number of plaintext primes.
    pub primes: u32,
    /// Ciphertexts per chunk and prime.
    pub values: u32,
    /// The first chunk the file holds.
    pub first: u32,
    /// How many chunks the file holds, from `first` on.
    pub held: u32,
}

/// Why a container could not be read or written.
#[derive(Debug, Error)]
pub enum ContainerError {
    /// Reading or writing failed.
    #[error("cannot read or write: {0}")]
    Io(#[from] io::Error),
    /// The file is of another kind.
    #[error("this is not {expected}: {found}")]
    Magic {
        /// What was expected.
        expected: &'static str,
        /// What the file holds instead, as far as its first bytes tell.
        found: String,
    },
    /// Unsupported version.
    #[error(
        "format version {found} is not supported (this build reads version \
         {CONTAINER_VERSION}{})",
        if *found < CONTAINER_VERSION {
            "; the file was made by an older Veil: make it again with this build"
        } else {
            ""
        }
    )]
    Version {
        /// Version found.
        found: u32,
    },
    /// A checksum does not match: the bytes were damaged after they were written.
    #[error(
        "checksum mismatch in {what} (record at byte {at}): the file is damaged (stored \
         {stored:016x}, computed {computed:016x}); nothing in it was used"
    )]
    Checksum {
        /// The header, or which chunk.
        what: String,
        /// Byte offset of the header or record.
        at: u64,
        /// The checksum in the file.
        stored: u64,
        /// The checksum of the bytes it covers.
        computed: u64,
    },
    /// The file ends early.
    #[error("the file is truncated: it ends inside {what} (at byte {at})")]
    Truncated {
        /// What was being read.
        what: String,
        /// Where the file ends.
        at: u64,
    },
    /// A chunk record declares more bytes than a chunk of the plan can take.
    #[error(
        "the record of chunk {index} (at byte {at}) declares {declared} bytes, more than the \
         {limit} a chunk of this plan can take: the file is damaged"
    )]
    ChunkTooLarge {
        /// The chunk.
        index: u32,
        /// Byte offset of the record.
        at: u64,
        /// Bytes declared.
        declared: u64,
        /// The most bytes a chunk can take.
        limit: u64,
    },
    /// The file was made for another plan, has inconsistent counts, or is not what was asked
    /// for.
    #[error("{0}")]
    Mismatch(String),
    /// A ciphertext inside the container does not parse.
    #[error("{0}")]
    Item(String),
    /// Bytes remain after what the file should hold.
    #[error("unexpected bytes after {what} (at byte {at})")]
    Trailing {
        /// What they follow.
        what: String,
        /// Where they start.
        at: u64,
    },
}

/// Why partial results cannot be joined into a whole batch (see [`assemble`]).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PartsError {
    /// No part was given.
    #[error("no partial result was given")]
    None,
    /// A part is of another key set.
    #[error(
        "{part} was made under key set {found} but {first} under key set {expected}: partial \
         results of one batch share its keys"
    )]
    OtherKeySet {
        /// The odd part.
        part: String,
        /// Its key set.
        found: KeyId,
        /// The first part.
        first: String,
        /// The first part's key set.
        expected: KeyId,
    },
    /// A part is of another batch (or plan).
    #[error(
        "{part} belongs to batch {found} but {first} to batch {expected}: partial results of \
         different batches cannot be joined"
    )]
    OtherBatch {
        /// The odd part.
        part: String,
        /// Its batch id (and size).
        found: String,
        /// The first part.
        first: String,
        /// The first part's batch id (and size).
        expected: String,
    },
    /// Two parts hold the same chunk.
    #[error("chunk {chunk} is in both {a} and {b}: give each chunk once")]
    Overlap {
        /// The chunk held twice.
        chunk: u32,
        /// One part.
        a: String,
        /// The other.
        b: String,
    },
    /// Chunks are missing.
    #[error(
        "chunks {}..{} of the batch's {chunks} are missing: evaluate them (`veil eval \
         --chunks {}..{}`) and give their results too",
        missing.start, missing.end, missing.start, missing.end
    )]
    Gap {
        /// The first run of missing chunks.
        missing: Range<u32>,
        /// Chunks of the whole batch.
        chunks: u32,
    },
}

/// Orders the partial results of one batch, given each one's name and header, into the whole
/// batch: returns the indices of `parts` in chunk order. Refuses parts of different key sets,
/// batches or plans, a chunk held twice, and missing chunks.
pub fn assemble(parts: &[(impl Display, Header)]) -> Result<Vec<usize>, PartsError> {
    let Some((first_name, first)) = parts.first() else {
        return Err(PartsError::None);
    };
    let describe = |h: &Header| {
        format!(
            "{} ({} images, plan {:016x})",
            h.batch.id, h.batch.images, h.plan_fingerprint
        )
    };
    for (name, header) in parts {
        if header.batch.key_set != first.batch.key_set {
            return Err(PartsError::OtherKeySet {
                part: name.to_string(),
                found: header.batch.key_set,
                first: first_name.to_string(),
                expected: first.batch.key_set,
            });
        }
        let same = header.batch == first.batch
            && header.kind == first.kind
            && header.plan_fingerprint == first.plan_fingerprint
            && header.chunks == first.chunks;
        if !same {
            return Err(PartsError::OtherBatch {
                part: name.to_string(),
                found: describe(header),
                first: first_name.to_string(),
                expected: describe(first),
            });
        }
    }
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| (parts[i].1.first, parts[i].1.held));
    let mut next = 0u32;
    let mut previous: Option<usize> = None;
    for &i in &order {
        let header = &parts[i].1;
        if header.first < next {
            let a = previous.map_or_else(String::new, |p| parts[p].0.to_string());
            return Err(PartsError::Overlap {
                chunk: header.first,
                a,
                b: parts[i].0.to_string(),
            });
        }
        if header.first > next {
            return Err(PartsError::Gap {
                missing: next..header.first,
                chunks: first.chunks,
            });
        }
        next = header.first.saturating_add(header.held);
        previous = Some(i);
    }
    if next < first.chunks {
        return Err(PartsError::Gap {
            missing: next..first.chunks,
            chunks: first.chunks,
        });
    }
    Ok(order)
}

impl Header {
    /// The header's bytes, its checksum last.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(self.kind.magic());
        put(&CONTAINER_VERSION.to_le_bytes());
        put(&self.batch.key_set.to_bytes());
        put(&self.batch.id.to_bytes());
        put(&self.plan_fingerprint.to_le_bytes());
        put(&(self.batch.images as u64).to_le_bytes());
        for v in [
            self.slots,
            self.chunks,
            self.primes,
            self.values,
            self.first,
            self.held,
        ] {
            put(&v.to_le_bytes());
        }
        let mut hash = Fnv1a::new();
        hash.update(&out[..HEADER_LEN - CHECKSUM_LEN]);
        out[HEADER_LEN - CHECKSUM_LEN..].copy_from_slice(&hash.finish().to_le_bytes());
        out
    }

    /// The chunks the file holds.
    pub fn chunk_range(&self) -> Range<usize> {
        let first = self.first as usize;
        first..first + self.held as usize
    }

    /// Whether the file holds every chunk of its batch.
    pub fn is_whole(&self) -> bool {
        self.first == 0 && self.held == self.chunks
    }

    /// Checks the header's plan fingerprint.
    pub fn check_plan(&self, plan_fingerprint: u64) -> Result<(), ContainerError> {
        if self.plan_fingerprint != plan_fingerprint {
            return Err(ContainerError::Mismatch(format!(
                "the file was made for another plan (fingerprint {:016x}, this plan is {:016x})",
                self.plan_fingerprint, plan_fingerprint
            )));
        }
        Ok(())
    }

    /// Checks the header against what the plan expects, and its counts against each other.
    pub fn check(
        &self,
        plan_fingerprint: u64,
        slots: usize,
        primes: usize,
        values: usize,
    ) -> Result<(), ContainerError> {
        self.check_plan(plan_fingerprint)?;
        let expected_chunks = (self.batch.images as u64).div_ceil(u64::from(self.slots.max(1)));
        let end = u64::from(self.first) + u64::from(self.held);
        if self.slots as usize != slots
            || self.primes as usize != primes
            || self.values as usize != values
            || u64::from(self.chunks) != expected_chunks
            || self.batch.images == 0
            || self.held == 0
            || end > u64::from(self.chunks)
        {
            return Err(ContainerError::Mismatch(format!(
                "inconsistent header: {} images in {} chunks of {} slots with {} primes × {} \
                 ciphertexts, holding chunks {}..{end}, but the plan has {} slots, {} primes \
                 and {} ciphertexts",
                self.batch.images,
                self.chunks,
                self.slots,
                self.primes,
                self.values,
                self.first,
                slots,
                primes,
                values
            )));
        }
        Ok(())
    }
}

/// Parses the fixed-size header at the start of `bytes`: magic, version, checksum, then the
/// fields.
fn parse_header(bytes: &[u8], kind: ContainerKind) -> Result<Header, ContainerError> {
    if bytes.len() < 8 || &bytes[..8] != kind.magic() {
        return Err(ContainerError::Magic {
            expected: kind.describe(),
            found: identify(bytes),
        });
    }
    let truncated = || ContainerError::Truncated {
        what: "the header".into(),
        at: bytes.len() as u64,
    };
    let version = bytes
        .get(8..12)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(truncated)?;
    if version != CONTAINER_VERSION {
        return Err(ContainerError::Version { found: version });
    }
    let Some(bytes) = bytes.get(..HEADER_LEN) else {
        return Err(truncated());
    };
    let mut fields = Fields {
        bytes,
        at: 12,
        checksum: Fnv1a::new(),
    };
    fields.checksum.update(&bytes[..12]);
    let key_set = KeyId::from_bytes(fields.array());
    let id = BatchId::from_bytes(fields.array());
    let plan_fingerprint = u64::from_le_bytes(fields.array());
    let images = u64::from_le_bytes(fields.array());
    let mut u32s = [0u32; 6];
    for v in &mut u32s {
        *v = u32::from_le_bytes(fields.array());
    }
    let computed = fields.checksum.finish();
    let stored = u64::from_le_bytes(fields.array());
    if stored != computed {
        return Err(ContainerError::Checksum {
            what: "the header".into(),
            at: 0,
            stored,
            computed,
        });
    }
    let images = usize::try_from(images)
        .map_err(|_| ContainerError::Mismatch(format!("{images} images")))?;
    let [slots, chunks, primes, values, first, held] = u32s;
    Ok(Header {
        kind,
        batch: BatchInfo {
            key_set,
            id,
            images,
        },
        plan_fingerprint,
        slots,
        chunks,
        primes,
        values,
        first,
        held,
    })
}

/// Fixed-size fields read in order from a header known to be long enough, hashed as they go.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    checksum: Fnv1a,
}

impl Fields<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(b) = self.bytes.get(self.at..self.at + N) {
            out.copy_from_slice(b);
            self.checksum.update(b);
        }
        self.at += N;
        out
    }
}

/// Bytes of one chunk's record, computed without serialising.
pub fn chunk_encoded_len(chunk: &EncryptedChunk) -> usize {
    CHUNK_PREFIX_LEN + chunk_body_len(chunk) + CHECKSUM_LEN
}

/// Bytes of a chunk's ciphertexts, with their length prefixes.
fn chunk_body_len(chunk: &EncryptedChunk) -> usize {
    chunk
        .values
        .iter()
        .flatten()
        .map(|ct| ITEM_PREFIX_LEN + ct.serialized_len())
        .sum()
}

/// Size in bytes of [`Context::batch_to_bytes`]'s output, computed without serialising.
pub fn encoded_len(batch: &EncryptedBatch) -> usize {
    HEADER_LEN + batch.chunks.iter().map(chunk_encoded_len).sum::<usize>()
}

/// Writes a container one chunk at a time: the header when made, then each chunk's record as
/// it is given, in order; [`ChunkWriter::finish`] checks every chunk the header promised was
/// written. Holds no chunk itself.
#[derive(Debug)]
pub struct ChunkWriter<W> {
    out: W,
    header: Header,
    header_hash: Fnv1a,
    next: usize,
    written: u64,
}

impl<W: Write> ChunkWriter<W> {
    /// Writes `header` to `out` and returns the writer for its chunks.
    pub fn new(header: Header, mut out: W) -> Result<Self, ContainerError> {
        let bytes = header.to_bytes();
        out.write_all(&bytes)?;
        let mut header_hash = Fnv1a::new();
        header_hash.update(&bytes);
        Ok(ChunkWriter {
            out,
            header,
            header_hash,
            next: header.first as usize,
            written: HEADER_LEN as u64,
        })
    }

    /// The header written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Writes the next chunk's record; returns its size in bytes. The chunk must be the next
    /// one the header names, of the header's batch and shape.
    pub fn write_chunk(&mut self, chunk: &EncryptedChunk) -> Result<u64, ContainerError> {
        let h = &self.header;
        let end = h.chunk_range().end;
        if chunk.batch != h.batch || chunk.index != self.next || self.next >= end {
            return Err(ContainerError::Mismatch(format!(
                "chunk {} of batch {} given where chunk {} of batch {} belongs (the file holds \
                 chunks {:?})",
                chunk.index,
                chunk.batch.id,
                self.next,
                h.batch.id,
                h.chunk_range()
            )));
        }
        let shape_ok = chunk.values.len() == h.primes as usize
            && chunk.values.iter().all(|v| v.len() == h.values as usize);
        if !shape_ok {
            return Err(ContainerError::Mismatch(format!(
                "chunk {} has {} primes, not the header's {} × {} ciphertexts",
                chunk.index,
                chunk.values.len(),
                h.primes,
                h.values
            )));
        }
        let body = chunk_body_len(chunk) as u64;
        let mut hash = self.header_hash;
        let mut put = |out: &mut W, bytes: &[u8]| -> io::Result<()> {
            hash.update(bytes);
            out.write_all(bytes)
        };
        put(&mut self.out, &(chunk.index as u32).to_le_bytes())?;
        put(&mut self.out, &body.to_le_bytes())?;
        for ct in chunk.values.iter().flatten() {
            let bytes = ct.to_bytes();
            let len = u32::try_from(bytes.len()).map_err(|_| {
                ContainerError::Mismatch(format!("a ciphertext of {} bytes", bytes.len()))
            })?;
            put(&mut self.out, &len.to_le_bytes())?;
            put(&mut self.out, &bytes)?;
        }
        self.out.write_all(&hash.finish().to_le_bytes())?;
        let record = (CHUNK_PREFIX_LEN + CHECKSUM_LEN) as u64 + body;
        self.written += record;
        self.next += 1;
        Ok(record)
    }

    /// Checks that every chunk was written, flushes, and returns the output and the number of
    /// bytes written.
    pub fn finish(mut self) -> Result<(W, u64), ContainerError> {
        let end = self.header.chunk_range().end;
        if self.next != end {
            return Err(ContainerError::Mismatch(format!(
                "only chunks {}..{} of the {:?} the header promises were written",
                self.header.first,
                self.next,
                self.header.chunk_range()
            )));
        }
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

/// Reads a container one chunk at a time: the header is read and checked when it is made,
/// then each call to [`ChunkReader::next_chunk`] (or the iterator) reads, verifies and returns
/// one chunk. Memory holds one chunk and one serialised ciphertext at most, whatever the
/// file's size; nothing is sized from a count in the file before the bytes behind it have been
/// bounded by the plan.
#[derive(Debug)]
pub struct ChunkReader<'c, R> {
    context: &'c Context,
    input: R,
    header: Header,
    header_hash: Fnv1a,
    next: usize,
    offset: u64,
    body_limit: u64,
    item_limit: usize,
    buffer: Vec<u8>,
}

/// A soft failure inside a chunk record: reported only if the record's checksum holds.
type Soft = Option<ContainerError>;

impl<'c, R: Read> ChunkReader<'c, R> {
    /// Reads and checks the header of a container of kind `kind` for `context`'s plan.
    pub fn new(
        context: &'c Context,
        kind: ContainerKind,
        mut input: R,
    ) -> Result<Self, ContainerError> {
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        input
            .by_ref()
            .take(HEADER_LEN as u64)
            .read_to_end(&mut bytes)?;
        let header = parse_header(&bytes, kind)?;
        let values = context.values_of(kind);
        header.check(
            context.fingerprint(),
            context.slots(),
            context.params().len(),
            values,
        )?;
        let item_limit = context
            .params()
            .iter()
            .map(|p| Ciphertext::max_serialized_len(context.plan().params.scheme, p))
            .max()
            .unwrap_or(0);
        let body_limit = (context.params().len() as u64)
            .saturating_mul(values as u64)
            .saturating_mul((item_limit + ITEM_PREFIX_LEN) as u64);
        let mut header_hash = Fnv1a::new();
        header_hash.update(&bytes);
        Ok(ChunkReader {
            context,
            input,
            header,
            header_hash,
            next: header.first as usize,
            offset: HEADER_LEN as u64,
            body_limit,
            item_limit,
            buffer: Vec::new(),
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The index of the chunk the next read returns.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// Fills `buf` from the input, hashing it; the end of the input is a truncation.
    fn fill(
        &mut self,
        buf: &mut [u8],
        hash: &mut Fnv1a,
        what: impl FnOnce() -> String,
    ) -> Result<(), ContainerError> {
        fill(&mut self.input, buf, &mut self.offset, what)?;
        hash.update(buf);
        Ok(())
    }

    /// Reads, hashes and discards `len` bytes.
    fn drain(
        &mut self,
        mut len: u64,
        hash: &mut Fnv1a,
        index: usize,
    ) -> Result<(), ContainerError> {
        let mut scratch = [0u8; 1 << 14];
        while len > 0 {
            let n = len.min(scratch.len() as u64) as usize;
            self.fill(&mut scratch[..n], hash, || format!("chunk {index}"))?;
            len -= n as u64;
        }
        Ok(())
    }

    /// Reads the next ciphertext of a record with `remaining` body bytes left. Errors of the
    /// input (truncation) are returned; errors of the record's content are returned as the
    /// inner `Err`, to be reported only if the record's checksum holds.
    fn item(
        &mut self,
        prime: usize,
        value: usize,
        index: usize,
        remaining: &mut u64,
        hash: &mut Fnv1a,
    ) -> Result<Result<Ciphertext, ContainerError>, ContainerError> {
        let at = self.offset;
        let what = || format!("ciphertext {value} of prime {prime} in chunk {index}");
        if *remaining < ITEM_PREFIX_LEN as u64 {
            return Ok(Err(ContainerError::Mismatch(format!(
                "{} at byte {at} lies beyond its chunk's declared length",
                what()
            ))));
        }
        let mut prefix = [0u8; ITEM_PREFIX_LEN];
        self.fill(&mut prefix, hash, what)?;
        *remaining -= ITEM_PREFIX_LEN as u64;
        let len = u32::from_le_bytes(prefix) as usize;
        if len as u64 > *remaining || len > self.item_limit {
            return Ok(Err(ContainerError::Mismatch(format!(
                "{} at byte {at} declares {len} bytes, but its chunk has {} left and a \
                 ciphertext of this plan takes at most {}",
                what(),
                *remaining,
                self.item_limit
            ))));
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        buffer.resize(len, 0);
        let filled = self.fill(&mut buffer, hash, what);
        *remaining -= len as u64;
        let parsed = filled.map(|()| {
            let params = &self.context.params()[prime];
            let ct = Ciphertext::from_bytes(self.context.plan().params.scheme, params, &buffer)
                .map_err(|e| ContainerError::Item(format!("{} at byte {at}: {e}", what())))?;
            let expected = self.context.low_bits_of(self.header.kind);
            let rounded = |i: usize| ct.low_bits().get(i).copied().unwrap_or(0);
            if (0..3).any(|i| rounded(i) != expected.get(i).copied().unwrap_or(0)) {
                return Err(ContainerError::Item(format!(
                    "{} at byte {at} has {:?} low bits rounded away, but the plan rounds away \
                     {expected:?}",
                    what(),
                    ct.low_bits()
                )));
            }
            Ok(ct)
        });
        self.buffer = buffer;
        parsed
    }

    /// Reads, verifies and returns the next chunk, or `None` after the last chunk the file
    /// holds. After an error the reader returns `None`.
    pub fn next_chunk(&mut self) -> Result<Option<EncryptedChunk>, ContainerError> {
        if self.next >= self.header.chunk_range().end {
            return Ok(None);
        }
        let read = self.read_record();
        match read {
            Ok(chunk) => {
                self.next += 1;
                Ok(Some(chunk))
            }
            Err(e) => {
                self.next = self.header.chunk_range().end;
                Err(e)
            }
        }
    }

    fn read_record(&mut self) -> Result<EncryptedChunk, ContainerError> {
        let index = self.next;
        let at = self.offset;
        let mut hash = self.header_hash;
        let (found, len) = self.record_prefix(&mut hash)?;
        let mut remaining = len;
        let mut failure: Soft = None;
        let primes = self.context.params().len();
        let values = self.header.values as usize;
        let mut chunk = Vec::with_capacity(primes);
        'outer: for p in 0..primes {
            let mut cts = Vec::with_capacity(values);
            for v in 0..values {
                match self.item(p, v, index, &mut remaining, &mut hash)? {
                    Ok(ct) => cts.push(ct),
                    Err(e) => {
                        failure = Some(e);
                        break 'outer;
                    }
                }
            }
            chunk.push(cts);
        }
        if failure.is_none() && remaining > 0 {
            failure = Some(ContainerError::Trailing {
                what: format!("the last ciphertext of chunk {index} ({remaining} bytes)"),
                at: self.offset,
            });
        }
        self.drain(remaining, &mut hash, index)?;
        let computed = hash.finish();
        let mut stored = [0u8; CHECKSUM_LEN];
        fill(&mut self.input, &mut stored, &mut self.offset, || {
            format!("the checksum of chunk {index}")
        })?;
        let stored = u64::from_le_bytes(stored);
        if stored != computed {
            return Err(ContainerError::Checksum {
                what: format!("chunk {index}"),
                at,
                stored,
                computed,
            });
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        if found as usize != index {
            return Err(ContainerError::Mismatch(format!(
                "the record at byte {at} holds chunk {found} where chunk {index} belongs"
            )));
        }
        Ok(EncryptedChunk {
            batch: self.header.batch,
            index,
            values: chunk,
        })
    }

    /// Reads a record's chunk index and body length, and bounds the length by the plan.
    fn record_prefix(&mut self, hash: &mut Fnv1a) -> Result<(u32, u64), ContainerError> {
        let index = self.next;
        let at = self.offset;
        let mut prefix = [0u8; CHUNK_PREFIX_LEN];
        self.fill(&mut prefix, hash, || format!("the record of chunk {index}"))?;
        let [a, b, c, d, rest @ ..] = prefix;
        let found = u32::from_le_bytes([a, b, c, d]);
        let len = u64::from_le_bytes(rest);
        if len > self.body_limit {
            return Err(ContainerError::ChunkTooLarge {
                index: found,
                at,
                declared: len,
                limit: self.body_limit,
            });
        }
        Ok((found, len))
    }

    /// After the last chunk: fails if the input holds more bytes.
    pub fn finish(mut self) -> Result<(), ContainerError> {
        let mut byte = [0u8; 1];
        loop {
            match self.input.read(&mut byte) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(ContainerError::Trailing {
                        what: format!("the last chunk ({})", self.next.saturating_sub(1)),
                        at: self.offset,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl<R: Read + Seek> ChunkReader<'_, R> {
    /// Moves to chunk `index` without reading the chunks before it: each skipped record's
    /// index and length are read and checked, and its ciphertexts are seeked over. (Skipped
    /// records are not verified; the chunks read afterwards are.)
    pub fn skip_to(&mut self, index: usize) -> Result<(), ContainerError> {
        let range = self.header.chunk_range();
        if index < self.next || index >= range.end {
            return Err(ContainerError::Mismatch(format!(
                "chunk {index} is not ahead in this file, which holds chunks {range:?} of the \
                 batch's {} (next: {})",
                self.header.chunks, self.next
            )));
        }
        while self.next < index {
            let at = self.offset;
            let mut hash = Fnv1a::new();
            let (found, len) = self.record_prefix(&mut hash)?;
            if found as usize != self.next {
                return Err(ContainerError::Mismatch(format!(
                    "the file is damaged: the record at byte {at} names chunk {found} where \
                     chunk {} belongs",
                    self.next
                )));
            }
            let skip = len + CHECKSUM_LEN as u64;
            let step = i64::try_from(skip)
                .map_err(|_| ContainerError::Mismatch(format!("a record of {skip} bytes")))?;
            self.input.seek(SeekFrom::Current(step))?;
            self.offset += skip;
            self.next += 1;
        }
        Ok(())
    }
}

impl<R: Read> Iterator for ChunkReader<'_, R> {
    type Item = Result<EncryptedChunk, ContainerError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

/// Fills `buf` from `input`, advancing `offset`; the end of the input is a truncation.
fn fill(
    input: &mut impl Read,
    buf: &mut [u8],
    offset: &mut u64,
    what: impl FnOnce() -> String,
) -> Result<(), ContainerError> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => {
                return Err(ContainerError::Truncated {
                    what: what(),
                    at: *offset + done as u64,
                })
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    *offset += buf.len() as u64;
    Ok(())
}

impl Context {
    /// Ciphertexts per chunk and prime in a container of `kind`.
    fn values_of(&self, kind: ContainerKind) -> usize {
        match kind {
            ContainerKind::Batch => self.input_ciphertexts(),
            ContainerKind::Result => self.output_ciphertexts(),
        }
    }

    /// Low bits the plan rounds away from each component of a ciphertext in a container of
    /// `kind`.
    fn low_bits_of(&self, kind: ContainerKind) -> Vec<u32> {
        match kind {
            ContainerKind::Batch => self.plan().compression.upload().to_vec(),
            ContainerKind::Result => self.plan().compression.download_bits.clone(),
        }
    }

    /// The header of a container of `kind` holding chunks `chunks` of `batch`.
    pub fn header(
        &self,
        kind: ContainerKind,
        batch: &BatchInfo,
        chunks: Range<usize>,
    ) -> Result<Header, ContainerError> {
        let count = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| ContainerError::Mismatch(format!("{n} {what}")))
        };
        let total = self.chunks_for(batch.images);
        if chunks.is_empty() || chunks.end > total {
            return Err(ContainerError::Mismatch(format!(
                "chunks {chunks:?} are not a range of the batch's {total} chunks"
            )));
        }
        Ok(Header {
            kind,
            batch: *batch,
            plan_fingerprint: self.fingerprint(),
            slots: count(self.slots(), "slots")?,
            chunks: count(total, "chunks")?,
            primes: count(self.params().len(), "primes")?,
            values: count(self.values_of(kind), "values")?,
            first: count(chunks.start, "chunks")?,
            held: count(chunks.len(), "chunks")?,
        })
    }

    /// Starts writing a container of `kind` holding chunks `chunks` of `batch` to `out`: writes
    /// the header and returns the writer for the chunks.
    pub fn chunk_writer<W: Write>(
        &self,
        kind: ContainerKind,
        batch: &BatchInfo,
        chunks: Range<usize>,
        out: W,
    ) -> Result<ChunkWriter<W>, ContainerError> {
        ChunkWriter::new(self.header(kind, batch, chunks)?, out)
    }

    /// Starts reading a container of `kind` from `input`: reads and checks the header and
    /// returns the reader for the chunks.
    pub fn chunk_reader<R: Read>(
        &self,
        kind: ContainerKind,
        input: R,
    ) -> Result<ChunkReader<'_, R>, ContainerError> {
        ChunkReader::new(self, kind, input)
    }

    /// Writes a whole batch or result in the container format to `out`, chunk by chunk.
    /// Returns the number of bytes written.
    pub fn write_batch(
        &self,
        kind: ContainerKind,
        batch: &EncryptedBatch,
        out: impl Write,
    ) -> Result<u64, ContainerError> {
        let mut writer = self.chunk_writer(kind, &batch.info, 0..batch.chunks.len(), out)?;
        for chunk in &batch.chunks {
            writer.write_chunk(chunk)?;
        }
        Ok(writer.finish()?.1)
    }

    /// Serialises a whole batch or result into the container format.
    pub fn batch_to_bytes(
        &self,
        kind: ContainerKind,
        batch: &EncryptedBatch,
    ) -> Result<Vec<u8>, ContainerError> {
        let mut out = Vec::with_capacity(encoded_len(batch));
        self.write_batch(kind, batch, &mut out)?;
        Ok(out)
    }

    /// Reads a whole batch or result from `input`, chunk by chunk (see [`ChunkReader`]); a
    /// file holding only some of its batch's chunks is refused (join partial results chunk by
    /// chunk with [`assemble`]).
    pub fn read_batch(
        &self,
        kind: ContainerKind,
        input: impl Read,
    ) -> Result<EncryptedBatch, ContainerError> {
        let mut reader = self.chunk_reader(kind, input)?;
        let header = *reader.header();
        if !header.is_whole() {
            return Err(ContainerError::Mismatch(format!(
                "the file holds chunks {:?} of the batch's {}, not the whole batch",
                header.chunk_range(),
                header.chunks
            )));
        }
        let chunks = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        reader.finish()?;
        Ok(EncryptedBatch {
            info: header.batch,
            chunks,
        })
    }

    /// Reads a whole batch or result from bytes, as [`Context::read_batch`] does.
    pub fn batch_from_bytes(
        &self,
        kind: ContainerKind,
        bytes: &[u8],
    ) -> Result<EncryptedBatch, ContainerError> {
        self.read_batch(kind, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            kind: ContainerKind::Batch,
            batch: BatchInfo {
                key_set: KeyId::from_bytes([7; KeyId::LEN]),
                id: BatchId::from_bytes([9; BatchId::LEN]),
                images: 3,
            },
            plan_fingerprint: 42,
            slots: 2,
            chunks: 2,
            primes: 1,
            values: 1,
            first: 0,
            held: 2,
        }
    }

    #[test]
    fn header_round_trip() {
        let bytes = header().to_bytes();
        assert_eq!(bytes.len(), 92);
        let back = parse_header(&bytes, ContainerKind::Batch).unwrap();
        assert_eq!(back, header());
        back.check(42, 2, 1, 1).unwrap();
    }

    #[test]
    fn every_header_truncation_and_bit_flip_is_an_error() {
        let bytes = header().to_bytes();
        for cut in 0..bytes.len() {
            let err = parse_header(&bytes[..cut], ContainerKind::Batch).unwrap_err();
            let expected = match cut {
                0..8 => matches!(err, ContainerError::Magic { .. }),
                _ => matches!(err, ContainerError::Truncated { .. }),
            };
            assert!(expected, "{cut}: {err}");
        }
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes;
                flipped[at] ^= 1 << bit;
                let err = parse_header(&flipped, ContainerKind::Batch).unwrap_err();
                let expected = match at {
                    0..8 => matches!(err, ContainerError::Magic { .. }),
                    8..12 => matches!(err, ContainerError::Version { .. }),
                    _ => matches!(err, ContainerError::Checksum { .. }),
                };
                assert!(expected, "byte {at} bit {bit}: {err}");
            }
        }
    }

    #[test]
    fn inconsistent_counts_with_a_valid_checksum_are_clear_errors() {
        for (images, chunks, first, held) in [
            (usize::MAX, u32::MAX, 0, 1),
            (3, 9, 0, 9),
            (0, 0, 0, 0),
            (5, 2, 0, 2),
            (3, 2, 0, 0),
            (3, 2, 1, 2),
            (3, 2, u32::MAX, 2),
        ] {
            let h = Header {
                batch: BatchInfo {
                    images,
                    ..header().batch
                },
                chunks,
                first,
                held,
                ..header()
            };
            let parsed = parse_header(&h.to_bytes(), ContainerKind::Batch).unwrap();
            let err = parsed.check(42, 2, 1, 1).unwrap_err();
            assert!(
                err.to_string().starts_with("inconsistent header"),
                "{images} {chunks} {first} {held}: {err}"
            );
        }
    }

    #[test]
    fn older_versions_are_named() {
        let mut bytes = header().to_bytes();
        for old in [1u32, 2, 3] {
            bytes[8..12].copy_from_slice(&old.to_le_bytes());
            let err = parse_header(&bytes, ContainerKind::Batch).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "format version {old} is not supported (this build reads version 4; the \
                     file was made by an older Veil: make it again with this build)"
                )
            );
        }
        bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
        let err = parse_header(&bytes, ContainerKind::Batch).unwrap_err();
        assert_eq!(
            err.to_string(),
            "format version 9 is not supported (this build reads version 4)"
        );
    }

    #[test]
    fn wrong_kind_and_plan_are_rejected() {
        let bytes = header().to_bytes();
        let err = parse_header(&bytes, ContainerKind::Result).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is not an encrypted result (from `veil eval`): it is an encrypted batch \
             (from `veil encrypt`)"
        );
        let err = parse_header(b"VESK\x02rest", ContainerKind::Batch).unwrap_err();
        assert!(err.to_string().ends_with("it is a secret key (secret.key)"));
        let err = parse_header(b"hello", ContainerKind::Batch).unwrap_err();
        assert!(err.to_string().ends_with("the file starts with \"hello\""));
        let err = parse_header(b"", ContainerKind::Batch).unwrap_err();
        assert!(err.to_string().ends_with("the file is empty"));
        let parsed = parse_header(&bytes, ContainerKind::Batch).unwrap();
        let err = parsed.check(7, 2, 1, 1).unwrap_err();
        assert!(err.to_string().contains("another plan"));
        let err = parsed.check(42, 2, 2, 1).unwrap_err();
        assert!(err.to_string().contains("inconsistent header"));
    }

    /// A part: the header of chunks `first..first + held` of the sample batch.
    fn part(first: u32, held: u32) -> (String, Header) {
        let h = Header {
            batch: BatchInfo {
                images: 10,
                ..header().batch
            },
            chunks: 5,
            first,
            held,
            ..header()
        };
        (format!("part{first}+{held}"), h)
    }

    #[test]
    fn parts_are_ordered_and_gaps_overlaps_and_strangers_refused() {
        let parts = [part(3, 2), part(0, 1), part(1, 2)];
        assert_eq!(assemble(&parts).unwrap(), vec![1, 2, 0]);
        assert_eq!(assemble(&[part(0, 5)]).unwrap(), vec![0]);
        let err = assemble(&[part(0, 1), part(3, 2)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chunks 1..3 of the batch's 5 are missing: evaluate them (`veil eval --chunks \
             1..3`) and give their results too"
        );
        let err = assemble(&[part(0, 4)]).unwrap_err();
        assert_eq!(
            err,
            PartsError::Gap {
                missing: 4..5,
                chunks: 5
            }
        );
        let err = assemble(&[part(0, 3), part(2, 3)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chunk 2 is in both part0+3 and part2+3: give each chunk once"
        );
        let err = assemble(&[part(0, 5), part(0, 5)]).unwrap_err();
        assert!(matches!(err, PartsError::Overlap { chunk: 0, .. }), "{err}");
        let mut stranger = part(3, 2);
        stranger.1.batch.id = BatchId::from_bytes([1; BatchId::LEN]);
        let err = assemble(&[part(0, 3), stranger.clone()]).unwrap_err();
        assert!(
            err.to_string().starts_with("part3+2 belongs to batch 0101"),
            "{err}"
        );
        stranger.1.batch.key_set = KeyId::from_bytes([2; KeyId::LEN]);
        let err = assemble(&[part(0, 3), stranger]).unwrap_err();
        assert!(matches!(err, PartsError::OtherKeySet { .. }), "{err}");
        let none: [(String, Header); 0] = [];
        assert_eq!(assemble(&none).unwrap_err(), PartsError::None);
    }
}
