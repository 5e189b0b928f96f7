//! The IDX format of the MNIST database: a big-endian u32 magic number `0x0000TTDD` (type
//! code `TT`, `DD` dimensions), one big-endian u32 per dimension, then the values row-major.
//! Veil reads u8 images (`0x00000803`: count × rows × cols) and u8 labels (`0x00000801`).

use std::io::Read;
use std::path::Path;

use super::{DataError, ImageRequest, Images, Input, Labels, MAX_IMAGE_VALUES};

/// Magic number of u8 data with three dimensions (images).
pub(super) const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of u8 data with one dimension (labels).
pub(super) const LABELS_MAGIC: u32 = 0x0000_0801;

/// A short description of an IDX magic number for error messages.
pub(super) fn describe_magic(magic: u32) -> String {
    let [z0, z1, ty, dims] = magic.to_be_bytes();
    if z0 != 0 || z1 != 0 {
        return "not an IDX magic number".to_owned();
    }
    let ty = match ty {
        0x08 => "u8",
        0x09 => "i8",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => return format!("unknown IDX type code {ty:#04x}"),
    };
    let what = match (ty, dims) {
        ("u8", 3) => " (images)",
        ("u8", 1) => " (labels)",
        _ => "",
    };
    format!(
        "{ty} data with {dims} dimension{}{what}",
        if dims == 1 { "" } else { "s" }
    )
}

/// Splits off the magic number and `dims` dimensions, checking the magic.
fn header<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: u32,
    dims: usize,
) -> Result<(Vec<u32>, &'a [u8]), DataError> {
    let len = 4 * (1 + dims);
    let truncated = |expected: usize| DataError::Truncated {
        path: path.to_path_buf(),
        what: "header",
        expected: expected as u64,
        found: bytes.len() as u64,
    };
    let mut words = bytes
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    let found = words.next().ok_or_else(|| truncated(4))?;
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    let sizes: Vec<u32> = words.take(dims).collect();
    if sizes.len() < dims {
        return Err(truncated(len));
    }
    Ok((sizes, &bytes[len..]))
}

/// Checks that `data` holds exactly `expected` bytes.
fn check_len(path: &Path, data: &[u8], expected: u64) -> Result<(), DataError> {
    let found = data.len() as u64;
    if found < expected {
        Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "data",
            expected,
            found,
        })
    } else if found > expected {
        Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: found - expected,
        })
    } else {
        Ok(())
    }
}

/// Reads IDX images from a stream: the header, checked against `request` and
/// [`MAX_IMAGE_VALUES`] before any pixel is read, then only the images wanted. When every
/// image is wanted, bytes after them are an error.
pub(super) fn read_images(
    input: &mut Input<'_>,
    request: ImageRequest,
) -> Result<Images, DataError> {
    let path = input.path;
    let mut head = Vec::with_capacity(16);
    (&mut input.reader)
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| input.error(e))?;
    let (dims, _) = header(path, &head, IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::EmptyImage {
            path: path.to_path_buf(),
            rows: rows as usize,
            cols: cols as usize,
        });
    }
    let per_image = u64::from(rows) * u64::from(cols);
    if let Some(expected) = request.values_per_image {
        if per_image != expected as u64 {
            return Err(DataError::WrongImageSize {
                path: path.to_path_buf(),
                rows: rows as usize,
                cols: cols as usize,
                expected,
            });
        }
    }
    let wanted = request
        .limit
        .map_or(u64::from(count), |l| u64::from(count).min(l as u64));
    // u128 cannot overflow for three u32-sized factors.
    let declared = u128::from(wanted) * u128::from(per_image);
    if declared > u128::from(MAX_IMAGE_VALUES) {
        return Err(DataError::AbsurdDimensions {
            path: path.to_path_buf(),
            count,
            rows,
            cols,
            declared,
            limit: MAX_IMAGE_VALUES,
        });
    }
    // At most MAX_IMAGE_VALUES: fits in u64 and usize. The buffer grows with the bytes
    // actually present, never to the declared size up front.
    let expected = declared as u64;
    let mut data = Vec::with_capacity(expected.min(1 << 24) as usize);
    (&mut input.reader)
        .take(expected)
        .read_to_end(&mut data)
        .map_err(|e| input.error(e))?;
    if (data.len() as u64) < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "data",
            expected,
            found: data.len() as u64,
        });
    }
    if wanted == u64::from(count) {
        let extra =
            std::io::copy(&mut input.reader, &mut std::io::sink()).map_err(|e| input.error(e))?;
        input.check_total(16 + expected + extra)?;
        if extra > 0 {
            return Err(DataError::TrailingBytes {
                path: path.to_path_buf(),
                expected,
                extra,
            });
        }
    }
    let pixels = data.iter().map(|&b| f32::from(b)).collect();
    Images::from_pixels(path, rows as usize, cols as usize, pixels)
}

pub(super) fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Labels, DataError> {
    let (dims, data) = header(path, bytes, LABELS_MAGIC, 1)?;
    check_len(path, data, u64::from(dims[0]))?;
    Ok(Labels::from_vec(
        path,
        data.iter().map(|&b| u32::from(b)).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{gzip, idx_images, idx_labels, write};
    use super::super::{load_images, load_labels, DataError};
    use rand::{Rng, SeedableRng};

    #[test]
    fn reads_plain_images_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let images = load_images(write(&dir, "i", &idx_images(3, 2, 5))).unwrap();
        assert_eq!((images.count(), images.rows(), images.cols()), (3, 2, 5));
        assert_eq!(images.pixels_per_image(), 10);
        assert_eq!(
            images.image(2).unwrap(),
            &[20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0]
        );
        let labels = load_labels(write(&dir, "l", &idx_labels(&[7, 0, 255]))).unwrap();
        assert_eq!(labels.as_slice(), &[7, 0, 255]);
        assert_eq!(labels.max(), Some(255));
    }

    #[test]
    fn zero_images_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let images = load_images(write(&dir, "i", &idx_images(0, 28, 28))).unwrap();
        assert!(images.is_empty());
        assert_eq!(images.iter().count(), 0);
    }

    #[test]
    fn wrong_magic_says_expected_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let labels = write(&dir, "labels.idx", &idx_labels(&[1, 2, 3]));
        let err = load_images(&labels).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    expected: 0x803,
                    found: 0x801,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(
                "labels.idx: wrong IDX magic number: expected 0x00000803 (u8 data with 3 \
                 dimensions (images)), found 0x00000801 (u8 data with 1 dimension (labels))"
            ),
            "{err}"
        );
        let images = write(&dir, "images.idx", &idx_images(1, 2, 2));
        let err = load_labels(&images).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    expected: 0x801,
                    found: 0x803,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut floats = idx_images(1, 2, 2);
        floats[2] = 0x0d;
        let err = load_images(write(&dir, "f.idx", &floats)).unwrap_err();
        assert!(
            err.to_string()
                .contains("found 0x00000d03 (f32 data with 3 dimensions)"),
            "{err}"
        );
    }

    #[test]
    fn truncated_data_says_expected_and_found_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx_images(2, 4, 4);
        let path = write(&dir, "cut.idx", &bytes[..bytes.len() - 5]);
        let err = load_images(&path).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 32,
                    found: 27,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("cut.idx: truncated IDX data: expected 32 bytes, found 27"),
            "{err}"
        );
        let labels = idx_labels(&[1, 2, 3]);
        let err = load_labels(write(&dir, "l", &labels[..10])).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_header_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx_images(2, 4, 4);
        let err = load_images(write(&dir, "h.idx", &bytes[..10])).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    what: "header",
                    expected: 16,
                    found: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("truncated IDX header: expected 16 bytes, found 10"),
            "{err}"
        );
        let err = load_images(write(&dir, "z.idx", &[0, 0])).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    what: "header",
                    expected: 4,
                    found: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = idx_labels(&[1, 2]);
        bytes.extend_from_slice(&[9, 9, 9]);
        let err = load_labels(write(&dir, "l.idx", &bytes)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TrailingBytes {
                    expected: 2,
                    extra: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("3 unexpected bytes after the 2 bytes that the IDX header declares"),
            "{err}"
        );
    }

    #[test]
    fn absurd_dimensions_are_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = idx_images(1, 2, 2);
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        bytes[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = load_images(write(&dir, "big.idx", &bytes)).unwrap_err();
        assert!(matches!(err, DataError::AbsurdDimensions { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("IDX header declares 4294967295 images of 4294967295×2"),
            "{err}"
        );
        // Under the limit but more than the file holds: a truncation, checked before
        // the pixel buffer is allocated.
        let mut bytes = idx_images(1, 2, 2);
        bytes[4..8].copy_from_slice(&1_000_000u32.to_be_bytes());
        let err = load_images(write(&dir, "lie.idx", &gzip(&bytes))).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 4_000_000,
                    found: 4,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn empty_image_dimensions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_images(write(&dir, "e.idx", &idx_images(5, 0, 28))).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::EmptyImage {
                    rows: 0,
                    cols: 28,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("e.idx: images of 0×28 pixels are empty"),
            "{err}"
        );
    }

    #[test]
    fn a_header_declaring_a_billion_images_fails_before_reading_pixels() {
        use super::super::{load_images_with, ImageRequest, MAX_IMAGE_VALUES};
        let dir = tempfile::tempdir().unwrap();
        // 2^30 MNIST-sized images declared, 1 MiB of zeros present, compressed to ~1 KiB.
        let mut bytes = idx_images(0, 28, 28);
        bytes[4..8].copy_from_slice(&(1u32 << 30).to_be_bytes());
        bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
        let path = write(&dir, "bomb.idx.gz", &gzip(&bytes));
        let request = ImageRequest {
            values_per_image: Some(784),
            limit: None,
        };
        let started = std::time::Instant::now();
        let err = load_images_with(&path, request).unwrap_err();
        assert!(matches!(err, DataError::AbsurdDimensions { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!(
                "IDX header declares 1073741824 images of 28×28: reading 841813590016 values \
                 is more than the limit of {MAX_IMAGE_VALUES}"
            )),
            "{err}"
        );
        // Another image size is refused from the header alone.
        let err = load_images_with(
            &path,
            ImageRequest {
                values_per_image: Some(64),
                limit: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: images have 784 values (28×28) but the model expects 64",
                path.display()
            )
        );
        // With --limit, only the images wanted are read: the rest is never decompressed.
        let images = load_images_with(
            &path,
            ImageRequest {
                values_per_image: Some(784),
                limit: Some(5),
            },
        )
        .unwrap();
        assert_eq!(images.count(), 5);
        let err = load_images_with(
            &path,
            ImageRequest {
                values_per_image: Some(784),
                limit: Some(5000),
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 3_920_000,
                    found: 1_048_576,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    /// Every prefix and many random corruptions of valid files give a result, never a panic.
    #[test]
    fn no_input_panics() {
        let dir = tempfile::tempdir().unwrap();
        let images = idx_images(3, 4, 4);
        let labels = idx_labels(&[1, 2, 3]);
        let gz = gzip(&images);
        let path = dir.path().join("x");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for source in [&images, &labels, &gz] {
            for cut in 0..=source.len() {
                std::fs::write(&path, &source[..cut]).unwrap();
                let _ = load_images(&path);
                let _ = load_labels(&path);
            }
            for _ in 0..300 {
                let mut bytes = source.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
                std::fs::write(&path, &bytes).unwrap();
                let _ = load_images(&path);
                let _ = load_labels(&path);
            }
        }
    }
}
