//! Writing output files, and sets of files, atomically.
//!
//! Every file Veil writes goes to a temporary file in the destination folder first and is
//! renamed into place only when complete, so an interrupted run never leaves a half-written
//! key or batch behind. Secret keys are created with owner-only permissions (0600) from the
//! first byte, and written without a user-space buffer, which would keep a copy of the key in
//! freed memory.
//!
//! Temporary files and folders are named `.veil-tmp.<name>.<pid>.<random>` beside their
//! target. A run killed before it could clean up (kill -9, power loss) leaves one behind; the
//! next write of the same target removes those whose process is gone (on Linux, where
//! `/proc` tells; elsewhere they stay until removed by hand, and the prefix makes them easy to
//! find).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The prefix of every temporary file and folder Veil writes.
pub const TEMP_PREFIX: &str = ".veil-tmp.";

/// The folder `target` goes into and its file name.
fn split_target(target: &Path) -> io::Result<(PathBuf, String)> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    Ok((dir, name))
}

/// Removes the temporary files that runs killed while writing `target` left beside it (for
/// writers that do not go through [`AtomicFile`], such as the plan writer).
pub fn remove_stale_temps(target: &Path) {
    if let Ok((dir, name)) = split_target(target) {
        remove_stale(&dir, &name);
    }
}

/// A fresh temporary path for `name` in `dir`, after removing the stale ones.
fn temp_path(dir: &Path, name: &str) -> PathBuf {
    remove_stale(dir, name);
    let nonce: u64 = rand::random();
    dir.join(format!(
        "{TEMP_PREFIX}{name}.{}.{nonce:016x}",
        std::process::id()
    ))
}

/// Whether process `pid` may still be running: `false` only when `/proc` says it is gone.
fn may_be_running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Removes the temporary files and folders for `name` in `dir` that were left by processes
/// that no longer run. Best effort: failures are ignored.
fn remove_stale(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{TEMP_PREFIX}{name}.");
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        // `<pid>.<16 hex digits>` exactly. A `.old` folder (keys swapped out by `keygen
        // --force`) is never removed: if its run died before the new keys were moved in, it
        // holds the only copy of the old keys.
        let mut parts = rest.split('.');
        let (Some(pid), Some(nonce), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let well_formed = nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !well_formed || pid == std::process::id() || may_be_running(pid) {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// A file being written; it appears under its final name only after [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    temp: PathBuf,
    target: PathBuf,
    writer: Option<Sink>,
    /// Set once the rename succeeded; until then dropping removes the temporary file, also
    /// after a failed commit.
    committed: bool,
}

/// Where the bytes of an [`AtomicFile`] go.
#[derive(Debug)]
enum Sink {
    /// Ordinary files: through a large buffer.
    Buffered(BufWriter<File>),
    /// Owner-only files (secret keys): straight to the file, so that no buffer of ours holds
    /// a copy of the bytes.
    Direct(File),
}

impl Sink {
    fn into_file(self) -> io::Result<File> {
        match self {
            Sink::Buffered(w) => w.into_inner().map_err(|e| e.into_error()),
            Sink::Direct(f) => Ok(f),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Buffered(w) => w.write(buf),
            Sink::Direct(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Buffered(w) => w.flush(),
            Sink::Direct(f) => f.flush(),
        }
    }
}

impl AtomicFile {
    /// Starts writing `target`. With `owner_only`, the file is readable and writable by its
    /// owner only, and writes are not buffered (such files hold secrets).
    pub fn create(target: &Path, owner_only: bool) -> io::Result<Self> {
        let (dir, name) = split_target(target)?;
        let temp = temp_path(&dir, &name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if owner_only { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = owner_only;
        let file = options.open(&temp)?;
        let writer = if owner_only {
            Sink::Direct(file)
        } else {
            Sink::Buffered(BufWriter::with_capacity(1 << 20, file))
        };
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
            writer: Some(writer),
            committed: false,
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(writer) = self.writer.take() {
            let file = writer.into_file()?;
            file.sync_all()?;
        }
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.writer.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            self.writer = None;
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8], owner_only: bool) -> io::Result<()> {
    let mut file = AtomicFile::create(target, owner_only)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A folder being filled; it appears under its final name, with everything in it, only after
/// [`AtomicDir::commit`]. Created owner-only (0700): it may hold secrets.
#[derive(Debug)]
pub struct AtomicDir {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl AtomicDir {
    /// Starts a folder that will become `target`.
    pub fn create(target: &Path) -> io::Result<Self> {
        let (parent, name) = split_target(target)?;
        fs::create_dir_all(&parent)?;
        let temp = temp_path(&parent, &name);
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&temp)?;
        Ok(AtomicDir {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write a file of the folder before it is committed.
    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.join(name)
    }

    /// Renames the folder into place. Fails when `target` exists and is not empty (unless
    /// `replace`, which swaps the old folder out first): another run's files are never mixed
    /// with ours.
    pub fn commit(mut self, replace: bool) -> io::Result<()> {
        let old = if replace && self.target.exists() {
            let mut old = self.temp.clone().into_os_string();
            old.push(".old");
            let old = PathBuf::from(old);
            fs::rename(&self.target, &old)?;
            Some(old)
        } else {
            None
        };
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        if let Some(old) = old {
            fs::remove_dir_all(old)?;
        }
        Ok(())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let mut file = AtomicFile::create(&target, false).unwrap();
        file.write_all(b"hello").unwrap();
        assert!(!target.exists());
        file.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        {
            let mut file = AtomicFile::create(&target, false).unwrap();
            file.write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn temporary_files_of_dead_processes_are_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("batch.veil");
        // A process id that cannot be running (above the kernel's maximum, 2^22).
        let dead = dir
            .path()
            .join(format!("{TEMP_PREFIX}batch.veil.4194305.00000000deadbeef"));
        let dead_dir = dir
            .path()
            .join(format!("{TEMP_PREFIX}batch.veil.4194306.00000000deadbeef"));
        let swapped_out = dir.path().join(format!(
            "{TEMP_PREFIX}batch.veil.4194306.00000000deadbeef.old"
        ));
        // Ours (alive), another target's, and a name that is not ours: all kept.
        let alive = dir.path().join(format!(
            "{TEMP_PREFIX}batch.veil.{}.00000000deadbeef",
            std::process::id()
        ));
        let other = dir
            .path()
            .join(format!("{TEMP_PREFIX}result.veil.4194305.00000000deadbeef"));
        let foreign = dir.path().join(".batch.veil.swp");
        for path in [&dead, &alive, &other, &foreign, &swapped_out] {
            fs::write(path, b"x").unwrap();
        }
        fs::create_dir(&dead_dir).unwrap();
        fs::write(dead_dir.join("secret.key"), b"k").unwrap();
        write_atomic(&target, b"hello", false).unwrap();
        assert!(!dead.exists() && !dead_dir.exists());
        assert!(alive.exists() && other.exists() && foreign.exists() && swapped_out.exists());
        assert_eq!(fs::read(&target).unwrap(), b"hello");
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_files_have_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret.key");
        write_atomic(&target, b"k", true).unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn owner_only_files_are_not_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret.key");
        let mut file = AtomicFile::create(&target, true).unwrap();
        file.write_all(b"secret").unwrap();
        // Already in the file before any flush: no buffer of ours kept a copy.
        assert_eq!(fs::read(&file.temp).unwrap(), b"secret");
        file.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"secret");
    }
}
