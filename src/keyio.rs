//! Key files and encrypted-batch files on disk.
//!
//! `secret.key`, `public.key` and `eval.key` each hold one runtime-serialised key (magic,
//! version and ring fingerprint included). The secret key is always its own file, written with
//! mode 0600; the server side loads only `eval.key` and refuses a secret key outright.

use crate::container::{
    write_item, ContainerKind, ContainerReader, Header, HEADER_LEN, ITEM_PREFIX_LEN,
};
use crate::files::{write_atomic, AtomicFile};
use crate::pipeline::{Context, EncryptedBatch, KeySet, PipelineError};
use std::path::{Path, PathBuf};
use veil_runtime::bfv::serial::SerialError;
use veil_runtime::bfv::{Ciphertext, PublicKey, RelinKey, SecretKey};
use zeroize::Zeroizing;

/// File names `veil keygen` writes.
pub const SECRET_KEY_FILE: &str = "secret.key";
/// File names `veil keygen` writes.
pub const PUBLIC_KEY_FILE: &str = "public.key";
/// File names `veil keygen` writes.
pub const EVAL_KEY_FILE: &str = "eval.key";

/// Which key a file holds, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `secret.key`.
    Secret,
    /// `public.key`.
    Public,
    /// `eval.key`.
    Eval,
}

/// Tells which key a file holds from its magic bytes.
pub fn key_kind(bytes: &[u8]) -> Option<KeyKind> {
    if bytes.starts_with(veil_runtime::bfv::serial::MAGIC_SECRET_KEY) {
        Some(KeyKind::Secret)
    } else if bytes.starts_with(veil_runtime::bfv::serial::MAGIC_PUBLIC_KEY) {
        Some(KeyKind::Public)
    } else if bytes.starts_with(veil_runtime::bfv::serial::MAGIC_RELIN_KEY) {
        Some(KeyKind::Eval)
    } else {
        None
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PipelineError> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// Reads a key file into a buffer that is wiped when dropped (it may hold a secret key).
fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, PipelineError> {
    read(path).map(Zeroizing::new)
}

/// The kind of key in a file, told from its first bytes only: the server uses this to refuse
/// a secret key without reading it.
fn peek_kind(path: &Path) -> Result<Option<KeyKind>, PipelineError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(key_kind(&head))
}

fn describe(kind: Option<KeyKind>) -> &'static str {
    match kind {
        Some(KeyKind::Secret) => "a secret key",
        Some(KeyKind::Public) => "a public key",
        Some(KeyKind::Eval) => "an evaluation (relinearisation) key",
        None => "not a Veil key file",
    }
}

/// A key file that does not parse, with the file named; a key of another ring is explained.
fn key_error(path: &Path, err: &SerialError) -> PipelineError {
    match err {
        SerialError::FingerprintMismatch { .. } => format!(
            "{}: {err}: the key was made for a plan with other parameters; generate keys for \
             this plan with `veil keygen PLAN -o DIR`",
            path.display()
        )
        .into(),
        _ => format!("{}: {err}", path.display()).into(),
    }
}

/// Writes the three keys into `dir`; returns the paths and sizes written.
pub fn write_keys(dir: &Path, keys: &KeySet) -> Result<Vec<(PathBuf, u64)>, PipelineError> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let items: [(&str, Zeroizing<Vec<u8>>, bool); 3] = [
        (SECRET_KEY_FILE, keys.secret.to_bytes(), true),
        (
            PUBLIC_KEY_FILE,
            Zeroizing::new(keys.public.to_bytes()),
            false,
        ),
        (EVAL_KEY_FILE, Zeroizing::new(keys.relin.to_bytes()), false),
    ];
    for (name, bytes, owner_only) in items {
        let path = dir.join(name);
        write_atomic(&path, &bytes, owner_only)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push((path, bytes.len() as u64));
    }
    Ok(written)
}

/// Loads the client's secret key.
pub fn load_secret(context: &Context, path: &Path) -> Result<SecretKey, PipelineError> {
    let bytes = read_key(path)?;
    match key_kind(&bytes) {
        Some(KeyKind::Secret) => {
            SecretKey::from_bytes(&context.params[0], &bytes).map_err(|e| key_error(path, &e))
        }
        other => Err(format!(
            "{}: expected a secret key (secret.key) but this is {}",
            path.display(),
            describe(other)
        )
        .into()),
    }
}

/// Loads the server's evaluation key; a secret key is refused.
pub fn load_eval(context: &Context, path: &Path) -> Result<RelinKey, PipelineError> {
    if peek_kind(path)? == Some(KeyKind::Secret) {
        return Err(format!(
            "{}: this is a SECRET key; the server is given only eval.key and never reads a \
             secret key",
            path.display()
        )
        .into());
    }
    let bytes = read(path)?;
    match key_kind(&bytes) {
        Some(KeyKind::Eval) => {
            RelinKey::from_bytes(&context.params[0], &bytes).map_err(|e| key_error(path, &e))
        }
        Some(KeyKind::Secret) => Err(format!(
            "{}: this is a SECRET key; the server is given only eval.key and never reads a \
             secret key",
            path.display()
        )
        .into()),
        other => Err(format!(
            "{}: expected an evaluation key (eval.key) but this is {}",
            path.display(),
            describe(other)
        )
        .into()),
    }
}

/// A key loaded for encryption.
#[derive(Debug)]
pub enum LoadedEncryptionKey {
    /// `secret.key`: symmetric, seeded (half-size) ciphertexts.
    Secret(SecretKey),
    /// `public.key`.
    Public(PublicKey),
}

/// Loads a secret or public key for encryption.
pub fn load_encryption_key(
    context: &Context,
    path: &Path,
) -> Result<LoadedEncryptionKey, PipelineError> {
    let bytes = read_key(path)?;
    match key_kind(&bytes) {
        Some(KeyKind::Secret) => SecretKey::from_bytes(&context.params[0], &bytes)
            .map(LoadedEncryptionKey::Secret)
            .map_err(|e| key_error(path, &e)),
        Some(KeyKind::Public) => PublicKey::from_bytes(&context.params[0], &bytes)
            .map(LoadedEncryptionKey::Public)
            .map_err(|e| key_error(path, &e)),
        other => Err(format!(
            "{}: expected secret.key or public.key but this is {}",
            path.display(),
            describe(other)
        )
        .into()),
    }
}

/// Serialises a batch or result into a container; returns its bytes.
pub fn batch_bytes(
    context: &Context,
    kind: ContainerKind,
    batch: &EncryptedBatch,
) -> Result<Vec<u8>, PipelineError> {
    let values = batch
        .chunks
        .first()
        .and_then(|c| c.first())
        .map_or(0, Vec::len);
    let header = Header {
        kind,
        plan_fingerprint: context.fingerprint,
        images: batch.images as u64,
        slots: u32::try_from(context.slots())?,
        chunks: u32::try_from(batch.chunks.len())?,
        primes: u32::try_from(context.params.len())?,
        values: u32::try_from(values)?,
    };
    let mut out = Vec::new();
    header.write(&mut out)?;
    for per_prime in &batch.chunks {
        for cts in per_prime {
            for ct in cts {
                write_item(&mut out, &ct.to_bytes())?;
            }
        }
    }
    Ok(out)
}

/// Size in bytes of [`batch_bytes`]'s output, computed without serialising anything.
pub fn batch_len(batch: &EncryptedBatch) -> usize {
    let items: usize = batch
        .chunks
        .iter()
        .flatten()
        .flatten()
        .map(|ct| ITEM_PREFIX_LEN + ct.serialized_len())
        .sum();
    HEADER_LEN + items
}

/// Writes a batch or result file atomically; returns the number of bytes written.
pub fn write_batch(
    context: &Context,
    kind: ContainerKind,
    batch: &EncryptedBatch,
    path: &Path,
) -> Result<u64, PipelineError> {
    use std::io::Write;
    let bytes = batch_bytes(context, kind, batch)?;
    let mut file = AtomicFile::create(path, false)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.commit())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(bytes.len() as u64)
}

/// Reads a batch or result from bytes, checking it against the plan.
pub fn parse_batch(
    context: &Context,
    kind: ContainerKind,
    bytes: &[u8],
) -> Result<EncryptedBatch, PipelineError> {
    let mut reader = ContainerReader::new(bytes, kind)?;
    let values = match kind {
        ContainerKind::Batch => context.plan.input.features.len(),
        ContainerKind::Result => context.outputs(),
    };
    reader.header.check(
        context.fingerprint,
        context.slots(),
        context.params.len(),
        values,
    )?;
    let header = reader.header;
    let mut chunks = Vec::with_capacity(header.chunks as usize);
    for c in 0..header.chunks as usize {
        let mut per_prime = Vec::with_capacity(context.params.len());
        for (p, params) in context.params.iter().enumerate() {
            let mut cts = Vec::with_capacity(values);
            for v in 0..values {
                let what = || format!("ciphertext {v} of prime {p} in chunk {c}");
                let item = reader.next_item(what)?;
                let ct =
                    Ciphertext::from_bytes(params, item).map_err(|e| format!("{}: {e}", what()))?;
                cts.push(ct);
            }
            per_prime.push(cts);
        }
        chunks.push(per_prime);
    }
    reader.finish()?;
    Ok(EncryptedBatch {
        images: header.images as usize,
        chunks,
    })
}

/// Reads a batch or result file.
pub fn read_batch(
    context: &Context,
    kind: ContainerKind,
    path: &Path,
) -> Result<EncryptedBatch, PipelineError> {
    let bytes = read(path)?;
    parse_batch(context, kind, &bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}
