//! Key files and encrypted-batch files on disk.
//!
//! `secret.key`, `public.key` and `eval.key` each hold one runtime-serialised key (magic,
//! version, ring fingerprint and key-set id included). The secret key is always its own file, written with
//! mode 0600; the server side loads only `eval.key` and refuses a secret key outright.

use crate::error::CliError;
use crate::files::{write_atomic, AtomicDir, AtomicFile};
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::{Path, PathBuf};
use veil_runtime::bfv::SerialError;
use veil_runtime::session::{key_kind, ContainerKind, KeyKind, MAX_KEY_BYTES};
use veil_runtime::session::{BatchInfo, ChunkReader, ChunkWriter};
use veil_runtime::session::{ClientKey, Context, EncryptionKey, KeySet, PublicKey, ServerKey};
use zeroize::Zeroizing;

/// File names `veil keygen` writes.
pub const SECRET_KEY_FILE: &str = "secret.key";
/// File names `veil keygen` writes.
pub const PUBLIC_KEY_FILE: &str = "public.key";
/// File names `veil keygen` writes.
pub const EVAL_KEY_FILE: &str = "eval.key";

/// Reads a key file whole, refusing one over [`MAX_KEY_BYTES`] (`/dev/zero` included)
/// without reading further.
fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_KEY_BYTES {
        return Err(format!(
            "{}: more than {MAX_KEY_BYTES} bytes, larger than any key; refusing to read it",
            path.display()
        )
        .into());
    }
    Ok(bytes)
}

/// Reads a key file into a buffer that is wiped when dropped (it may hold a secret key).
fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    read(path).map(Zeroizing::new)
}

/// The kind of key in a file, told from its first bytes only: the server uses this to refuse
/// a secret key without reading it.
fn peek_kind(path: &Path) -> Result<Option<KeyKind>, CliError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(key_kind(&head))
}

/// Refuses a file whose first bytes are not one of the `wanted` kinds of key, before reading
/// the rest of it (so `/dev/zero` or a huge file of another kind fails at once).
fn refuse_unless(path: &Path, wanted: &[KeyKind], expected: &str) -> Result<(), CliError> {
    let kind = peek_kind(path)?;
    if kind.is_some_and(|k| wanted.contains(&k)) {
        return Ok(());
    }
    if kind == Some(KeyKind::Secret) {
        return Err(format!(
            "{}: this is a SECRET key; the server is given only eval.key and never reads a \
             secret key",
            path.display()
        )
        .into());
    }
    Err(format!(
        "{}: expected {expected} but this is {}",
        path.display(),
        describe(kind)
    )
    .into())
}

fn describe(kind: Option<KeyKind>) -> &'static str {
    kind.map_or("not a Veil key file", KeyKind::describe)
}

/// A key file that does not parse, with the file named; a key of another ring is explained.
fn key_error(path: &Path, err: &SerialError) -> CliError {
    match err {
        SerialError::FingerprintMismatch { .. } => format!(
            "{}: {err}: the key was made for a plan with other parameters; generate keys for \
             this plan with `veil keygen PLAN -o DIR`",
            path.display()
        )
        .into(),
        SerialError::BadVersion {
            found, expected, ..
        } if found < expected => format!(
            "{}: {err}: the key was made by an older Veil and names no key set; generate new \
             keys with `veil keygen PLAN -o DIR` (and encrypt again under them)",
            path.display()
        )
        .into(),
        _ => format!("{}: {err}", path.display()).into(),
    }
}

/// Writes the three keys as a new folder `dir` (owner-only), all or nothing; returns the
/// paths and sizes written. Keys already in `dir` are kept, and this fails, unless `replace`:
/// every batch encrypted under them would become undecryptable.
pub fn write_keys(
    dir: &Path,
    keys: &KeySet,
    replace: bool,
) -> Result<Vec<(PathBuf, u64)>, CliError> {
    let key_files = [SECRET_KEY_FILE, PUBLIC_KEY_FILE, EVAL_KEY_FILE];
    if let Ok(entries) = std::fs::read_dir(dir) {
        let others: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !key_files.contains(&name.as_str()))
            .collect();
        if let Some(other) = others.first() {
            return Err(format!(
                "{} holds other files (such as {other}): keys go into a new or empty folder \
                 of their own",
                dir.display()
            )
            .into());
        }
    }
    let existing: Vec<&str> = key_files
        .into_iter()
        .filter(|name| dir.join(name).exists())
        .collect();
    if !existing.is_empty() && !replace {
        return Err(format!(
            "{} already holds {}: generating new keys would make every batch encrypted under \
             them undecryptable; choose another folder, or pass --force to replace them",
            dir.display(),
            existing.join(", ")
        )
        .into());
    }
    let folder =
        AtomicDir::create(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let items: [(&str, Zeroizing<Vec<u8>>, bool); 3] = [
        (SECRET_KEY_FILE, keys.client.to_bytes(), true),
        (
            PUBLIC_KEY_FILE,
            Zeroizing::new(keys.public.to_bytes()),
            false,
        ),
        (EVAL_KEY_FILE, Zeroizing::new(keys.server.to_bytes()), false),
    ];
    for (name, bytes, owner_only) in items {
        let path = folder.path(name);
        write_atomic(&path, &bytes, owner_only)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push((dir.join(name), bytes.len() as u64));
    }
    folder.commit(replace).map_err(|e| {
        format!(
            "cannot move the new keys into {} ({e}); another keygen may have written there",
            dir.display()
        )
    })?;
    Ok(written)
}

/// Loads the client's secret key.
pub fn load_secret(context: &Context, path: &Path) -> Result<ClientKey, CliError> {
    refuse_unless(path, &[KeyKind::Secret], "a secret key (secret.key)")?;
    let bytes = read_key(path)?;
    match key_kind(&bytes) {
        Some(KeyKind::Secret) => {
            ClientKey::from_bytes(context, &bytes).map_err(|e| key_error(path, &e))
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
pub fn load_eval(context: &Context, path: &Path) -> Result<ServerKey, CliError> {
    refuse_unless(path, &[KeyKind::Eval], "an evaluation key (eval.key)")?;
    let bytes = read(path)?;
    match key_kind(&bytes) {
        Some(KeyKind::Eval) => {
            ServerKey::from_bytes(context, &bytes).map_err(|e| key_error(path, &e))
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
    Secret(ClientKey),
    /// `public.key`.
    Public(PublicKey),
}

/// Loads a secret or public key for encryption.
pub fn load_encryption_key(
    context: &Context,
    path: &Path,
) -> Result<LoadedEncryptionKey, CliError> {
    refuse_unless(
        path,
        &[KeyKind::Secret, KeyKind::Public],
        "secret.key or public.key",
    )?;
    let bytes = read_key(path)?;
    match key_kind(&bytes) {
        Some(KeyKind::Secret) => ClientKey::from_bytes(context, &bytes)
            .map(LoadedEncryptionKey::Secret)
            .map_err(|e| key_error(path, &e)),
        Some(KeyKind::Public) => PublicKey::from_bytes(context, &bytes)
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

/// A batch or result file being read one chunk at a time.
pub type FileChunks<'c> = ChunkReader<'c, BufReader<File>>;

/// A batch or result file being written one chunk at a time; it appears under its name only
/// once [`finish_container`] has written every chunk.
pub type FileChunkWriter = ChunkWriter<AtomicFile>;

/// Opens a batch or result file and checks its header against the plan; its chunks are then
/// read one at a time (see `ChunkReader`).
pub fn open_container<'c>(
    context: &'c Context,
    kind: ContainerKind,
    path: &Path,
) -> Result<FileChunks<'c>, CliError> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    context
        .chunk_reader(kind, BufReader::with_capacity(1 << 20, file))
        .map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Starts writing a batch or result file holding chunks `chunks` of `batch`.
pub fn create_container(
    context: &Context,
    kind: ContainerKind,
    batch: &BatchInfo,
    chunks: Range<usize>,
    path: &Path,
) -> Result<FileChunkWriter, CliError> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    let file = AtomicFile::create(path, false).map_err(|e| cannot(&e))?;
    context
        .chunk_writer(kind, batch, chunks, file)
        .map_err(|e| cannot(&e).into())
}

/// Writes every chunk's record, then syncs and renames the file into place; returns the
/// number of bytes written.
pub fn finish_container(writer: FileChunkWriter, path: &Path) -> Result<u64, CliError> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    let (file, bytes) = writer.finish().map_err(|e| cannot(&e))?;
    file.commit().map_err(|e| cannot(&e))?;
    Ok(bytes)
}

impl LoadedEncryptionKey {
    /// The key as the session's encryption key.
    pub fn as_encryption_key(&self) -> EncryptionKey<'_> {
        match self {
            LoadedEncryptionKey::Secret(client) => EncryptionKey::Client(client),
            LoadedEncryptionKey::Public(public) => EncryptionKey::Public(public),
        }
    }
}
