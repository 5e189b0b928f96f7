//! Reading and writing plan files.
//!
//! Two encodings share one data model:
//!
//! - **JSON** (`.json`): the whole [`Plan`] as pretty JSON, for inspection.
//! - **Binary** (any other extension, e.g. `.plan`):
//!
//!   | bytes | content |
//!   | --- | --- |
//!   | 8 | magic `VEILPLAN` |
//!   | 4 | format version, u32 little-endian |
//!   | 8 | header length `h`, u64 little-endian |
//!   | h | JSON header: the plan with every `Linear` step's `matrix.row_ptr`, `col_idx`, `values` and `bias` left empty |
//!   | … | blob: for each `Linear` step in program order, `row_ptr` (`rows + 1` × u64), `col_idx` (nnz × u32), `values` (nnz × i64), `bias` (`rows` × i128), all little-endian; nnz = `row_ptr[rows]` |
//!   | 8 | FNV-1a 64 checksum of every byte before it, u64 little-endian |
//!
//! Files are written atomically (a temporary file in the same directory, then a rename), and
//! every plan read is validated with [`Plan::validate`] before it is returned.

use super::{Plan, Step, ValidationError, PLAN_FORMAT_VERSION};
use crate::math::fnv1a;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The first eight bytes of a binary plan file.
pub const PLAN_MAGIC: &[u8; 8] = b"VEILPLAN";

/// The most bytes a plan file may hold (binary or JSON): 1 GiB. The plans of the models in
/// `models/` take a few megabytes; [`Plan::read_file`] stops reading here, so an endless or
/// enormous input fails fast instead of filling memory.
pub const MAX_PLAN_BYTES: u64 = 1 << 30;

/// Why a plan could not be read or written.
#[derive(Debug, Error)]
pub enum PlanError {
    /// The file is larger than [`MAX_PLAN_BYTES`].
    #[error("the plan file {} holds more than {limit} bytes; refusing to read it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Reading or writing the file failed (the cause is the `source`).
    #[error("cannot read or write the plan file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with `VEILPLAN`.
    #[error("not a Veil plan file (the first bytes are not `VEILPLAN`; JSON plans need the `.json` extension)")]
    BadMagic,
    /// The file was written by an incompatible version.
    #[error("plan format version {found} is not supported (this build reads version {supported}); recompile the model")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The file ends early.
    #[error(
        "plan file is truncated: {what} needs {needed} more bytes but only {available} remain"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// The checksum does not match the content.
    #[error("plan file is corrupt: checksum {found:#018x} does not match the content ({expected:#018x})")]
    Checksum {
        /// Stored checksum.
        found: u64,
        /// Checksum of the content.
        expected: u64,
    },
    /// Bytes follow the checksum.
    #[error("plan file has {0} unexpected bytes after its end")]
    TrailingBytes(usize),
    /// The JSON (or JSON header) is malformed.
    #[error("plan JSON is malformed at line {line}, column {column}: {message}")]
    Json {
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// The plan decoded but is inconsistent.
    #[error("plan is invalid: {0}")]
    Invalid(#[from] ValidationError),
}

impl From<serde_json::Error> for PlanError {
    fn from(err: serde_json::Error) -> Self {
        PlanError::Json {
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        }
    }
}

fn is_json_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PlanError> {
    let io = |source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".to_owned());
    // The CLI's naming of temporary files (`.veil-tmp.<name>.<pid>.<random>`), so that its
    // clean-up of files left by killed runs finds these too.
    let nonce: u64 = rand::random();
    let tmp = dir.join(format!(
        ".veil-tmp.{file_name}.{}.{nonce:016x}",
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless now.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], PlanError> {
        let available = (self.bytes.len() - self.pos) as u64;
        if len > available {
            return Err(PlanError::Truncated {
                what,
                needed: len,
                available,
            });
        }
        let len = len as usize;
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PlanError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, PlanError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, PlanError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads `count` items of `width` bytes, checking the length before allocating.
    fn items<T>(
        &mut self,
        count: u64,
        width: u64,
        what: &'static str,
        decode: impl Fn(&[u8]) -> T,
    ) -> Result<Vec<T>, PlanError> {
        let len = count.saturating_mul(width);
        let bytes = self.take(len, what)?;
        Ok(bytes.chunks_exact(width as usize).map(decode).collect())
    }
}

fn le<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(chunk);
    out
}

impl Plan {
    /// The plan as pretty JSON.
    pub fn to_json(&self) -> Result<String, PlanError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses and validates a JSON plan.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(text)?;
        check_version(plan.format_version)?;
        plan.validate()?;
        Ok(plan)
    }

    /// The compact binary encoding (see the module documentation).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PlanError> {
        let mut header = self.clone();
        let mut blob = Vec::new();
        for step in &mut header.steps {
            if let Step::Linear { matrix, bias, .. } = step {
                for &p in &matrix.row_ptr {
                    blob.extend_from_slice(&(p as u64).to_le_bytes());
                }
                for &c in &matrix.col_idx {
                    blob.extend_from_slice(&c.to_le_bytes());
                }
                for &v in &matrix.values {
                    blob.extend_from_slice(&v.to_le_bytes());
                }
                for &b in bias.iter() {
                    blob.extend_from_slice(&b.to_le_bytes());
                }
                matrix.row_ptr = Vec::new();
                matrix.col_idx = Vec::new();
                matrix.values = Vec::new();
                *bias = Vec::new();
            }
        }
        let header = serde_json::to_vec(&header)?;
        let mut out = Vec::with_capacity(28 + header.len() + blob.len());
        out.extend_from_slice(PLAN_MAGIC);
        out.extend_from_slice(&PLAN_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&blob);
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(out)
    }

    /// Decodes and validates the compact binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plan, PlanError> {
        if bytes.len() < PLAN_MAGIC.len() || &bytes[..PLAN_MAGIC.len()] != PLAN_MAGIC {
            return Err(PlanError::BadMagic);
        }
        let mut r = Reader { bytes, pos: 8 };
        let version = r.u32("the format version")?;
        check_version(version)?;
        let header_len = r.u64("the header length")?;
        let header = r.take(header_len, "the JSON header")?;
        let mut plan: Plan = serde_json::from_slice(header)?;
        check_version(plan.format_version)?;
        for step in &mut plan.steps {
            if let Step::Linear { matrix, bias, .. } = step {
                let rows = matrix.rows as u64;
                let row_ptr =
                    r.items(rows.saturating_add(1), 8, "a matrix's row pointers", |c| {
                        u64::from_le_bytes(le(c))
                    })?;
                let nnz = row_ptr.last().copied().unwrap_or(0);
                matrix.row_ptr = row_ptr
                    .into_iter()
                    .map(|p| usize::try_from(p).unwrap_or(usize::MAX))
                    .collect();
                matrix.col_idx = r.items(nnz, 4, "a matrix's column indices", |c| {
                    u32::from_le_bytes(le(c))
                })?;
                matrix.values =
                    r.items(nnz, 8, "a matrix's values", |c| i64::from_le_bytes(le(c)))?;
                *bias = r.items(rows, 16, "a bias vector", |c| i128::from_le_bytes(le(c)))?;
            }
        }
        let content_end = r.pos;
        let found = r.u64("the checksum")?;
        let expected = fnv1a(&bytes[..content_end]);
        if found != expected {
            return Err(PlanError::Checksum { found, expected });
        }
        if r.pos != bytes.len() {
            return Err(PlanError::TrailingBytes(bytes.len() - r.pos));
        }
        plan.validate()?;
        Ok(plan)
    }

    /// Writes the plan atomically: JSON when `path` ends in `.json`, binary otherwise.
    pub fn write_file(&self, path: &Path) -> Result<(), PlanError> {
        let bytes = if is_json_path(path) {
            self.to_json()?.into_bytes()
        } else {
            self.to_bytes()?
        };
        write_atomically(path, &bytes)
    }

    /// Reads and validates a plan: JSON when `path` ends in `.json`, binary otherwise.
    /// At most [`MAX_PLAN_BYTES`] are read.
    pub fn read_file(path: &Path) -> Result<Plan, PlanError> {
        use std::io::Read;
        let io = |source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io)?.take(MAX_PLAN_BYTES + 1);
        // A binary plan's magic is checked before the rest is read.
        let mut bytes = Vec::with_capacity(PLAN_MAGIC.len());
        (&mut file)
            .take(PLAN_MAGIC.len() as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if !is_json_path(path) && bytes != PLAN_MAGIC {
            return Err(PlanError::BadMagic);
        }
        file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 > MAX_PLAN_BYTES {
            return Err(PlanError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_PLAN_BYTES,
            });
        }
        if is_json_path(path) {
            let text = String::from_utf8_lossy(&bytes);
            Plan::from_json(&text)
        } else {
            Plan::from_bytes(&bytes)
        }
    }
}

fn check_version(found: u32) -> Result<(), PlanError> {
    if found != PLAN_FORMAT_VERSION {
        return Err(PlanError::UnsupportedVersion {
            found,
            supported: PLAN_FORMAT_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn an_endless_input_is_refused_from_its_first_bytes() {
        let started = std::time::Instant::now();
        let err = Plan::read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, PlanError::BadMagic), "{err}");
        assert!(started.elapsed().as_secs() < 5);
    }
}
