//! A small reader of IDX image files (the MNIST format) for calibration: big-endian magic
//! `0x00000803` (unsigned bytes, three dimensions), the dimensions as big-endian u32, then the
//! bytes. Files ending in `.gz` are gunzipped first.

use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// Why an IDX file could not be read.
#[derive(Debug, Error)]
pub enum IdxError {
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not an IDX file of unsigned-byte images.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Images of an IDX file as rows of raw byte values (0..=255), at most `limit` of them.
pub fn read_images(path: &Path, limit: usize) -> Result<(Vec<Vec<u8>>, [usize; 2]), IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let fmt = |problem: String| IdxError::Format {
        path: path.to_path_buf(),
        problem,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    let word = |i: usize| -> Option<usize> {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    match word(0) {
        Some(0x0803) => {}
        Some(m) => {
            return Err(fmt(format!(
                "magic {m:#010x} is not 0x00000803 (unsigned-byte images with 3 dimensions)"
            )))
        }
        None => return Err(fmt("too short for an IDX header".into())),
    }
    let (Some(count), Some(rows), Some(cols)) = (word(1), word(2), word(3)) else {
        return Err(fmt("too short for an IDX header".into()));
    };
    let size = rows
        .checked_mul(cols)
        .filter(|&s| s > 0 && s <= 1 << 24)
        .ok_or_else(|| fmt(format!("image size {rows}x{cols} is not supported")))?;
    let body = &bytes[16..];
    let available = body.len() / size;
    if available < count {
        return Err(fmt(format!(
            "header says {count} images of {rows}x{cols} but the file holds {available}"
        )));
    }
    let images = body
        .chunks_exact(size)
        .take(count.min(limit))
        .map(<[u8]>::to_vec)
        .collect();
    Ok((images, [rows, cols]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tiny_file_and_rejects_bad_ones() {
        let dir = std::env::temp_dir().join(format!("veil-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        bytes.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        let p = dir.join("ok.idx");
        std::fs::write(&p, &bytes).unwrap();
        let (images, dims) = read_images(&p, 10).unwrap();
        assert_eq!(images, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]]);
        assert_eq!(dims, [2, 2]);
        std::fs::write(&p, &bytes[..20]).unwrap();
        assert!(read_images(&p, 10)
            .unwrap_err()
            .to_string()
            .contains("holds 1"));
        std::fs::write(&p, [0, 0, 8, 1]).unwrap();
        assert!(read_images(&p, 10)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
