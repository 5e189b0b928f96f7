//! The wire format of encrypted batches and encrypted results, and how a file's first bytes
//! tell what it holds.
//!
//! Layout of format version 2 (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic: `VEILBTCH` (batch, client → server) or `VEILRSLT` (result, server → client) |
//! | 4 | format version (2) |
//! | 16 | key-set id ([`KeyId`]) of the keys the values are encrypted under |
//! | 8 | plan fingerprint (FNV-1a of the plan's canonical JSON) |
//! | 8 | number of images |
//! | 4 | slots per chunk (the ring degree) |
//! | 4 | number of chunks (⌈images / slots⌉) |
//! | 4 | number of plaintext primes |
//! | 4 | ciphertexts per chunk and prime |
//! | … | for each chunk, prime, ciphertext: u32 length, then the runtime's ciphertext encoding |
//! | 8 | checksum: FNV-1a of every byte before it |
//!
//! Readers check the magic and version, then the checksum, and only then look at the rest:
//! the header against the plan, the counts against the bytes present, then each ciphertext
//! (which carries its own parameter fingerprint, so one for another plaintext prime or ring is
//! caught too). The checksum detects accidental damage (a truncated upload, flipped bits); it
//! is not a MAC, and anyone can recompute it after changing a file on purpose.
//!
//! Version 1 (no key-set id, no checksum) is refused with a message naming the version.

use super::{Context, EncryptedBatch};
use crate::bfv::Ciphertext;
use crate::bfv::KeyId;
use crate::bfv::{MAGIC_PUBLIC_KEY, MAGIC_RELIN_KEY, MAGIC_SECRET_KEY};
use crate::math::{fnv1a, Fnv1a};
use crate::plan::PLAN_MAGIC;
use std::io::{self, Read, Write};
use thiserror::Error;

/// The container format version this build writes and reads.
pub const CONTAINER_VERSION: u32 = 2;
/// Bytes of the fixed-size header.
pub const HEADER_LEN: usize = 8 + 4 + KeyId::LEN + 8 + 8 + 4 + 4 + 4 + 4;
/// Bytes of the length prefix before each ciphertext.
pub const ITEM_PREFIX_LEN: usize = 4;
/// Bytes of the trailing checksum.
pub const CHECKSUM_LEN: usize = 8;
/// The most bytes a batch or result may hold, whatever its header declares: 64 GiB. A reader
/// also stops at the size that the header's image count allows for the plan (every ciphertext
/// at its largest), so a file is never read much beyond what it should hold.
pub const MAX_CONTAINER_BYTES: u64 = 64 << 30;

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
    } else if bytes.starts_with(MAGIC_PUBLIC_KEY) {
        Some(KeyKind::Public)
    } else if bytes.starts_with(MAGIC_RELIN_KEY) {
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

/// The fixed-size header of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Batch or result.
    pub kind: ContainerKind,
    /// The key set the values are encrypted under.
    pub key_set: KeyId,
    /// Fingerprint of the plan the container was made for.
    pub plan_fingerprint: u64,
    /// Number of images.
    pub images: u64,
    /// Slots per chunk.
    pub slots: u32,
    /// Number of chunks.
    pub chunks: u32,
    /// Number of plaintext primes.
    pub primes: u32,
    /// Ciphertexts per chunk and prime.
    pub values: u32,
}

/// Why a container could not be read.
#[derive(Debug, Error)]
pub enum ContainerError {
    /// Reading failed.
    #[error("cannot read: {0}")]
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
            "; older files carry no key-set id or checksum: make the file again with this build"
        } else {
            ""
        }
    )]
    Version {
        /// Version found.
        found: u32,
    },
    /// The checksum does not match: the bytes were damaged after they were written.
    #[error(
        "checksum mismatch: the file is damaged or truncated (stored {stored:016x}, computed \
         {computed:016x} over its first {covered} bytes); nothing in it was used"
    )]
    Checksum {
        /// The checksum in the file's last 8 bytes.
        stored: u64,
        /// The checksum of the bytes before them.
        computed: u64,
        /// Bytes covered.
        covered: u64,
    },
    /// The input holds more bytes than its header allows.
    #[error(
        "the file holds more than the {limit} bytes its header allows ({images} images); \
         refusing to read further"
    )]
    TooLarge {
        /// The most bytes allowed.
        limit: u64,
        /// Images the header declares.
        images: u64,
    },
    /// The file ends early.
    #[error("the file is truncated: {what} needs {needed} more bytes but only {left} remain")]
    Truncated {
        /// What was being read.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes left.
        left: u64,
    },
    /// The file was made for another plan or has inconsistent counts.
    #[error("{0}")]
    Mismatch(String),
    /// A ciphertext inside the container does not parse.
    #[error("{0}")]
    Item(String),
    /// Bytes remain after the last ciphertext.
    #[error("{0} unexpected bytes after the last ciphertext (before the checksum)")]
    Trailing(u64),
}

impl Header {
    /// Writes the header.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(self.kind.magic())?;
        out.write_all(&CONTAINER_VERSION.to_le_bytes())?;
        out.write_all(&self.key_set.to_bytes())?;
        out.write_all(&self.plan_fingerprint.to_le_bytes())?;
        out.write_all(&self.images.to_le_bytes())?;
        for v in [self.slots, self.chunks, self.primes, self.values] {
            out.write_all(&v.to_le_bytes())?;
        }
        Ok(())
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

    /// Checks the header against what the plan expects.
    pub fn check(
        &self,
        plan_fingerprint: u64,
        slots: usize,
        primes: usize,
        values: usize,
    ) -> Result<(), ContainerError> {
        self.check_plan(plan_fingerprint)?;
        let expected_chunks = self.images.div_ceil(u64::from(self.slots.max(1)));
        if self.slots as usize != slots
            || self.primes as usize != primes
            || self.values as usize != values
            || u64::from(self.chunks) != expected_chunks
            || self.images == 0
        {
            return Err(ContainerError::Mismatch(format!(
                "inconsistent header: {} images in {} chunks of {} slots with {} primes × {} \
                 ciphertexts, but the plan has {} slots, {} primes and {} ciphertexts",
                self.images,
                self.chunks,
                self.slots,
                self.primes,
                self.values,
                slots,
                primes,
                values
            )));
        }
        Ok(())
    }
}

/// Parses the fixed-size header at the start of `bytes`: magic, version, then the fields.
fn parse_header(bytes: &[u8], kind: ContainerKind) -> Result<Header, ContainerError> {
    if bytes.len() < 8 || &bytes[..8] != kind.magic() {
        return Err(ContainerError::Magic {
            expected: kind.describe(),
            found: identify(bytes),
        });
    }
    let field = |at: usize, len: usize| bytes.get(at..at + len);
    let u32_at = |at: usize| field(at, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |at: usize| {
        field(at, 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    let truncated = || ContainerError::Truncated {
        what: "the header".into(),
        needed: (HEADER_LEN.saturating_sub(bytes.len())) as u64,
        left: 0,
    };
    let version = u32_at(8).ok_or_else(truncated)?;
    if version != CONTAINER_VERSION {
        return Err(ContainerError::Version { found: version });
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated());
    }
    let mut id = [0u8; KeyId::LEN];
    id.copy_from_slice(&bytes[12..12 + KeyId::LEN]);
    let at = 12 + KeyId::LEN;
    let get32 = |i: usize| u32_at(i).ok_or_else(truncated);
    let get64 = |i: usize| u64_at(i).ok_or_else(truncated);
    Ok(Header {
        kind,
        key_set: KeyId::from_bytes(id),
        plan_fingerprint: get64(at)?,
        images: get64(at + 8)?,
        slots: get32(at + 16)?,
        chunks: get32(at + 20)?,
        primes: get32(at + 24)?,
        values: get32(at + 28)?,
    })
}

/// Reads a container from bytes already in memory.
#[derive(Debug)]
pub struct ContainerReader<'a> {
    /// The bytes between the header and the checksum.
    bytes: &'a [u8],
    pos: usize,
    /// The header.
    pub header: Header,
}

impl<'a> ContainerReader<'a> {
    /// Parses the header of a container of kind `kind` and verifies the checksum over the
    /// whole container, before anything else in it is looked at.
    pub fn new(bytes: &'a [u8], kind: ContainerKind) -> Result<Self, ContainerError> {
        let header = parse_header(bytes, kind)?;
        let Some(content_end) = bytes
            .len()
            .checked_sub(CHECKSUM_LEN)
            .filter(|&end| end >= HEADER_LEN)
        else {
            return Err(ContainerError::Truncated {
                what: "the checksum".into(),
                needed: CHECKSUM_LEN as u64,
                left: (bytes.len() - HEADER_LEN) as u64,
            });
        };
        let mut stored = [0u8; CHECKSUM_LEN];
        stored.copy_from_slice(&bytes[content_end..]);
        let stored = u64::from_le_bytes(stored);
        let computed = fnv1a(&bytes[..content_end]);
        if stored != computed {
            return Err(ContainerError::Checksum {
                stored,
                computed,
                covered: content_end as u64,
            });
        }
        Ok(ContainerReader {
            bytes: &bytes[..content_end],
            pos: HEADER_LEN,
            header,
        })
    }

    /// Byte offset of the next item in the file.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes between the header and the checksum.
    pub fn body_len(&self) -> usize {
        self.bytes.len() - HEADER_LEN
    }

    /// The next ciphertext's bytes; `what` names it in errors.
    pub fn next_item(&mut self, what: impl FnOnce() -> String) -> Result<&'a [u8], ContainerError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if left < ITEM_PREFIX_LEN as u64 {
            return Err(ContainerError::Truncated {
                what: format!("{} at byte {}", what(), self.pos),
                needed: ITEM_PREFIX_LEN as u64,
                left,
            });
        }
        let b = &self.bytes[self.pos..self.pos + ITEM_PREFIX_LEN];
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let start = self.pos;
        self.pos += ITEM_PREFIX_LEN;
        let left = (self.bytes.len() - self.pos) as u64;
        if (len as u64) > left {
            return Err(ContainerError::Truncated {
                what: format!("{} at byte {start}", what()),
                needed: len as u64,
                left,
            });
        }
        let item = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(item)
    }

    /// Fails if bytes remain before the checksum.
    pub fn finish(self) -> Result<(), ContainerError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if left > 0 {
            return Err(ContainerError::Trailing(left));
        }
        Ok(())
    }
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Fnv1a,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one length-prefixed item.
pub fn write_item(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ciphertext over 4 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

impl Context {
    /// Writes a batch or result in the container format to `out`, one ciphertext at a time,
    /// followed by the checksum. Returns the number of bytes written.
    pub fn write_batch(
        &self,
        kind: ContainerKind,
        batch: &EncryptedBatch,
        out: impl Write,
    ) -> Result<u64, ContainerError> {
        let count = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| ContainerError::Mismatch(format!("{n} {what}")))
        };
        let values = batch
            .chunks
            .first()
            .and_then(|c| c.first())
            .map_or(0, Vec::len);
        let header = Header {
            kind,
            key_set: batch.key_set,
            plan_fingerprint: self.fingerprint(),
            images: batch.images as u64,
            slots: count(self.slots(), "slots")?,
            chunks: count(batch.chunks.len(), "chunks")?,
            primes: count(self.params().len(), "primes")?,
            values: count(values, "values")?,
        };
        let mut out = Hashing {
            inner: out,
            hash: Fnv1a::new(),
        };
        header.write(&mut out)?;
        for ct in batch.chunks.iter().flatten().flatten() {
            write_item(&mut out, &ct.to_bytes())?;
        }
        let sum = out.hash.finish();
        out.inner.write_all(&sum.to_le_bytes())?;
        out.inner.flush()?;
        Ok(encoded_len(batch) as u64)
    }

    /// Serialises a batch or result into the container format.
    pub fn batch_to_bytes(
        &self,
        kind: ContainerKind,
        batch: &EncryptedBatch,
    ) -> Result<Vec<u8>, ContainerError> {
        let mut out = Vec::with_capacity(encoded_len(batch));
        self.write_batch(kind, batch, &mut out)?;
        Ok(out)
    }

    /// The most bytes a container of `kind` declaring `images` images can hold for this plan
    /// (every ciphertext at its largest), capped at [`MAX_CONTAINER_BYTES`].
    pub fn max_container_len(&self, kind: ContainerKind, images: u64) -> u64 {
        let chunks = images.div_ceil(self.slots().max(1) as u64);
        let values = match kind {
            ContainerKind::Batch => self.plan().input.features.len(),
            ContainerKind::Result => self.outputs(),
        } as u64;
        let item = self
            .params()
            .iter()
            .map(|p| Ciphertext::max_serialized_len(p) as u64)
            .max()
            .unwrap_or(0)
            + ITEM_PREFIX_LEN as u64;
        chunks
            .saturating_mul(self.params().len() as u64)
            .saturating_mul(values)
            .saturating_mul(item)
            .saturating_add((HEADER_LEN + CHECKSUM_LEN) as u64)
            .min(MAX_CONTAINER_BYTES)
    }

    /// Reads a batch or result from `input`: the header first, then no more bytes than the
    /// header's image count allows for this plan (see [`Context::max_container_len`]), then
    /// everything is checked as by [`Context::batch_from_bytes`]. Memory grows with the bytes
    /// actually read, never with a declared count.
    pub fn read_batch(
        &self,
        kind: ContainerKind,
        mut input: impl Read,
    ) -> Result<EncryptedBatch, ContainerError> {
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        input
            .by_ref()
            .take(HEADER_LEN as u64)
            .read_to_end(&mut bytes)?;
        let header = parse_header(&bytes, kind)?;
        let limit = self.max_container_len(kind, header.images);
        let rest = limit.saturating_sub(HEADER_LEN as u64);
        input.take(rest.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            // The likeliest reason is a file made for another plan: say so.
            header.check_plan(self.fingerprint())?;
            return Err(ContainerError::TooLarge {
                limit,
                images: header.images,
            });
        }
        self.batch_from_bytes(kind, &bytes)
    }

    /// Reads a batch or result from bytes: magic and version, then the checksum, then the
    /// header against the plan and its counts against the bytes present, then each
    /// ciphertext. Nothing is sized from the header's counts before the bytes that back them
    /// have been checked.
    pub fn batch_from_bytes(
        &self,
        kind: ContainerKind,
        bytes: &[u8],
    ) -> Result<EncryptedBatch, ContainerError> {
        let mut reader = ContainerReader::new(bytes, kind)?;
        let values = match kind {
            ContainerKind::Batch => self.plan().input.features.len(),
            ContainerKind::Result => self.outputs(),
        };
        reader.header.check(
            self.fingerprint(),
            self.slots(),
            self.params().len(),
            values,
        )?;
        let header = reader.header;
        let items = u64::from(header.chunks)
            .saturating_mul(self.params().len() as u64)
            .saturating_mul(values as u64);
        let body = reader.body_len() as u64;
        if items.saturating_mul(ITEM_PREFIX_LEN as u64) > body {
            return Err(ContainerError::Mismatch(format!(
                "the header declares {} images in {} chunks, {items} ciphertexts, but only \
                 {body} bytes follow it",
                header.images, header.chunks
            )));
        }
        let mut chunks = Vec::new();
        for c in 0..header.chunks as usize {
            let mut per_prime = Vec::new();
            for (p, params) in self.params().iter().enumerate() {
                let mut cts = Vec::new();
                for v in 0..values {
                    let at = reader.offset();
                    let what = || format!("ciphertext {v} of prime {p} in chunk {c}");
                    let item = reader.next_item(what)?;
                    let ct = Ciphertext::from_bytes(params, item).map_err(|e| {
                        ContainerError::Item(format!("{} at byte {at}: {e}", what()))
                    })?;
                    cts.push(ct);
                }
                per_prime.push(cts);
            }
            chunks.push(per_prime);
        }
        reader.finish()?;
        Ok(EncryptedBatch {
            images: usize::try_from(header.images)
                .map_err(|_| ContainerError::Mismatch(format!("{} images", header.images)))?,
            key_set: header.key_set,
            chunks,
        })
    }
}

/// Size in bytes of [`Context::batch_to_bytes`]'s output, computed without serialising.
pub fn encoded_len(batch: &EncryptedBatch) -> usize {
    let items: usize = batch
        .chunks
        .iter()
        .flatten()
        .flatten()
        .map(|ct| ITEM_PREFIX_LEN + ct.serialized_len())
        .sum();
    HEADER_LEN + items + CHECKSUM_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            kind: ContainerKind::Batch,
            key_set: KeyId::from_bytes([7; KeyId::LEN]),
            plan_fingerprint: 42,
            images: 3,
            slots: 2,
            chunks: 2,
            primes: 1,
            values: 1,
        }
    }

    /// Appends the checksum of everything in `out`.
    fn seal(mut out: Vec<u8>) -> Vec<u8> {
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        header().write(&mut out).unwrap();
        write_item(&mut out, b"abc").unwrap();
        write_item(&mut out, b"de").unwrap();
        seal(out)
    }

    /// Reads every item of `bytes` as the two-item sample.
    fn read_all(bytes: &[u8]) -> Result<(), ContainerError> {
        let mut reader = ContainerReader::new(bytes, ContainerKind::Batch)?;
        reader.header.check(42, 2, 1, 1)?;
        reader.next_item(|| "a".into())?;
        reader.next_item(|| "b".into())?;
        reader.finish()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        assert_eq!(bytes.len(), HEADER_LEN + 4 + 3 + 4 + 2 + CHECKSUM_LEN);
        let mut reader = ContainerReader::new(&bytes, ContainerKind::Batch).unwrap();
        assert_eq!(reader.header, header());
        reader.header.check(42, 2, 1, 1).unwrap();
        assert_eq!(reader.next_item(|| "a".into()).unwrap(), b"abc");
        assert_eq!(reader.next_item(|| "b".into()).unwrap(), b"de");
        reader.finish().unwrap();
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let err = read_all(&bytes[..cut]).unwrap_err();
            let msg = err.to_string();
            match cut {
                0..8 => assert!(matches!(err, ContainerError::Magic { .. }), "{cut}: {msg}"),
                8..=67 => assert!(
                    matches!(err, ContainerError::Truncated { .. }),
                    "{cut}: {msg}"
                ),
                _ => assert!(
                    matches!(err, ContainerError::Checksum { .. }),
                    "{cut}: {msg}"
                ),
            }
        }
    }

    #[test]
    fn every_bit_flip_is_caught_before_the_content_is_used() {
        let bytes = sample();
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                let err = read_all(&flipped).unwrap_err();
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
    fn inflated_lengths_with_a_valid_checksum_are_clear_errors() {
        // Item length 2^32 - 1 although two bytes follow.
        let mut out = Vec::new();
        header().write(&mut out).unwrap();
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        out.extend_from_slice(b"ab");
        let err = read_all(&seal(out)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file is truncated: a at byte 60 needs 4294967295 more bytes but only 2 remain"
        );
        // Counts that disagree with the plan, or with each other.
        for (images, chunks) in [(u64::MAX, u32::MAX), (3, 9), (0, 0), (5, 2)] {
            let mut out = Vec::new();
            Header {
                images,
                chunks,
                ..header()
            }
            .write(&mut out)
            .unwrap();
            let err = read_all(&seal(out)).unwrap_err();
            assert!(
                err.to_string().starts_with("inconsistent header"),
                "{images} {chunks}: {err}"
            );
        }
        // Bytes after the last item.
        let mut out = Vec::new();
        header().write(&mut out).unwrap();
        write_item(&mut out, b"abc").unwrap();
        write_item(&mut out, b"de").unwrap();
        out.push(0);
        let err = read_all(&seal(out)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 unexpected bytes after the last ciphertext (before the checksum)"
        );
    }

    #[test]
    fn an_old_version_is_named() {
        let mut bytes = sample();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let err = ContainerReader::new(&bytes, ContainerKind::Batch).unwrap_err();
        assert_eq!(
            err.to_string(),
            "format version 1 is not supported (this build reads version 2; older files carry \
             no key-set id or checksum: make the file again with this build)"
        );
        bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
        let err = ContainerReader::new(&bytes, ContainerKind::Batch).unwrap_err();
        assert_eq!(
            err.to_string(),
            "format version 9 is not supported (this build reads version 2)"
        );
    }

    #[test]
    fn wrong_kind_and_plan_are_rejected() {
        let bytes = sample();
        let err = ContainerReader::new(&bytes, ContainerKind::Result).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is not an encrypted result (from `veil eval`): it is an encrypted batch \
             (from `veil encrypt`)"
        );
        let err = ContainerReader::new(b"VESK\x02rest", ContainerKind::Batch).unwrap_err();
        assert!(err.to_string().ends_with("it is a secret key (secret.key)"));
        let err = ContainerReader::new(b"hello", ContainerKind::Batch).unwrap_err();
        assert!(err.to_string().ends_with("the file starts with \"hello\""));
        let err = ContainerReader::new(b"", ContainerKind::Batch).unwrap_err();
        assert!(err.to_string().ends_with("the file is empty"));
        let reader = ContainerReader::new(&bytes, ContainerKind::Batch).unwrap();
        let err = reader.header.check(7, 2, 1, 1).unwrap_err();
        assert!(err.to_string().contains("another plan"));
        let err = reader.header.check(42, 2, 2, 1).unwrap_err();
        assert!(err.to_string().contains("inconsistent header"));
    }
}
