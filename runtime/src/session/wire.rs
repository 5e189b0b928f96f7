//! The wire format of encrypted batches and encrypted results, and how a file's first bytes
//! tell what it holds.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic: `VEILBTCH` (batch, client → server) or `VEILRSLT` (result, server → client) |
//! | 4 | format version (1) |
//! | 8 | plan fingerprint (FNV-1a of the plan's canonical JSON) |
//! | 8 | number of images |
//! | 4 | slots per chunk (the ring degree) |
//! | 4 | number of chunks (⌈images / slots⌉) |
//! | 4 | number of plaintext primes |
//! | 4 | ciphertexts per chunk and prime |
//! | … | for each chunk, prime, ciphertext: u32 length, then the runtime's ciphertext encoding |
//!
//! Each ciphertext encoding carries its own parameter fingerprint, so a ciphertext for another
//! plaintext prime or ring is caught too.

use super::{Context, EncryptedBatch};
use crate::bfv::Ciphertext;
use crate::bfv::{MAGIC_PUBLIC_KEY, MAGIC_RELIN_KEY, MAGIC_SECRET_KEY};
use crate::plan::PLAN_MAGIC;
use std::io::{self, Write};
use thiserror::Error;

const VERSION: u32 = 1;
/// Bytes of the fixed-size header.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 4 + 4 + 4;
/// Bytes of the length prefix before each ciphertext.
pub const ITEM_PREFIX_LEN: usize = 4;

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
    #[error("format version {found} is not supported (this build reads version {VERSION})")]
    Version {
        /// Version found.
        found: u32,
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
    #[error("{0} unexpected bytes after the last ciphertext")]
    Trailing(u64),
}

impl Header {
    /// Writes the header.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(self.kind.magic())?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&self.plan_fingerprint.to_le_bytes())?;
        out.write_all(&self.images.to_le_bytes())?;
        for v in [self.slots, self.chunks, self.primes, self.values] {
            out.write_all(&v.to_le_bytes())?;
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
        if self.plan_fingerprint != plan_fingerprint {
            return Err(ContainerError::Mismatch(format!(
                "the file was made for another plan (fingerprint {:016x}, this plan is {:016x})",
                self.plan_fingerprint, plan_fingerprint
            )));
        }
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

/// Reads a container from bytes already in memory.
#[derive(Debug)]
pub struct ContainerReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The header.
    pub header: Header,
}

impl<'a> ContainerReader<'a> {
    /// Parses the header of a container of kind `kind`.
    pub fn new(bytes: &'a [u8], kind: ContainerKind) -> Result<Self, ContainerError> {
        if bytes.len() < 8 || &bytes[..8] != kind.magic() {
            return Err(ContainerError::Magic {
                expected: kind.describe(),
                found: identify(bytes),
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(ContainerError::Truncated {
                what: "the header".into(),
                needed: (HEADER_LEN - bytes.len()) as u64,
                left: 0,
            });
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let version = u32_at(8);
        if version != VERSION {
            return Err(ContainerError::Version { found: version });
        }
        let header = Header {
            kind,
            plan_fingerprint: u64_at(12),
            images: u64_at(20),
            slots: u32_at(28),
            chunks: u32_at(32),
            primes: u32_at(36),
            values: u32_at(40),
        };
        Ok(ContainerReader {
            bytes,
            pos: HEADER_LEN,
            header,
        })
    }

    /// The next ciphertext's bytes; `what` names it in errors.
    pub fn next_item(&mut self, what: impl FnOnce() -> String) -> Result<&'a [u8], ContainerError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if left < 4 {
            return Err(ContainerError::Truncated {
                what: what(),
                needed: 4,
                left,
            });
        }
        let b = &self.bytes[self.pos..self.pos + 4];
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        self.pos += 4;
        let left = (self.bytes.len() - self.pos) as u64;
        if (len as u64) > left {
            return Err(ContainerError::Truncated {
                what: what(),
                needed: len as u64,
                left,
            });
        }
        let item = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(item)
    }

    /// Fails if bytes remain.
    pub fn finish(self) -> Result<(), ContainerError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if left > 0 {
            return Err(ContainerError::Trailing(left));
        }
        Ok(())
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
    /// Serialises a batch or result into the container format.
    pub fn batch_to_bytes(
        &self,
        kind: ContainerKind,
        batch: &EncryptedBatch,
    ) -> Result<Vec<u8>, ContainerError> {
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
            plan_fingerprint: self.fingerprint(),
            images: batch.images as u64,
            slots: count(self.slots(), "slots")?,
            chunks: count(batch.chunks.len(), "chunks")?,
            primes: count(self.params().len(), "primes")?,
            values: count(values, "values")?,
        };
        let mut out = Vec::with_capacity(encoded_len(batch));
        header.write(&mut out)?;
        for ct in batch.chunks.iter().flatten().flatten() {
            write_item(&mut out, &ct.to_bytes())?;
        }
        Ok(out)
    }

    /// Reads a batch or result from bytes, checking it against the plan. Nothing is sized from
    /// the header's counts before the bytes that back them have been read.
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
        let mut chunks = Vec::new();
        for c in 0..header.chunks as usize {
            let mut per_prime = Vec::new();
            for (p, params) in self.params().iter().enumerate() {
                let mut cts = Vec::new();
                for v in 0..values {
                    let what = || format!("ciphertext {v} of prime {p} in chunk {c}");
                    let item = reader.next_item(what)?;
                    let ct = Ciphertext::from_bytes(params, item)
                        .map_err(|e| ContainerError::Item(format!("{}: {e}", what())))?;
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
    HEADER_LEN + items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let header = Header {
            kind: ContainerKind::Batch,
            plan_fingerprint: 42,
            images: 3,
            slots: 2,
            chunks: 2,
            primes: 1,
            values: 1,
        };
        let mut out = Vec::new();
        header.write(&mut out).unwrap();
        write_item(&mut out, b"abc").unwrap();
        write_item(&mut out, b"de").unwrap();
        out
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let mut reader = ContainerReader::new(&bytes, ContainerKind::Batch).unwrap();
        reader.header.check(42, 2, 1, 1).unwrap();
        assert_eq!(reader.next_item(|| "a".into()).unwrap(), b"abc");
        assert_eq!(reader.next_item(|| "b".into()).unwrap(), b"de");
        reader.finish().unwrap();
    }

    #[test]
    fn truncation_is_reported_with_the_item() {
        let bytes = sample();
        let cut = &bytes[..bytes.len() - 1];
        let mut reader = ContainerReader::new(cut, ContainerKind::Batch).unwrap();
        reader.next_item(|| "a".into()).unwrap();
        let err = reader.next_item(|| "ciphertext 2".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file is truncated: ciphertext 2 needs 2 more bytes but only 1 remain"
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
        let err = ContainerReader::new(b"VESK\x01rest", ContainerKind::Batch).unwrap_err();
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
