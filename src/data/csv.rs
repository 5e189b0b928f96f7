//! CSV images (one image per row, comma-separated numbers) and labels (one per line).
//!
//! Blank lines are ignored, cells are trimmed, `\r\n` line ends are accepted. Line numbers in
//! errors count every line of the file from 1, header and blank lines included, so they match
//! what an editor shows.

use std::io::BufRead;
use std::path::Path;

use super::{
    DataError, ImageRequest, Images, Input, Labels, MAX_CSV_LINE_BYTES, MAX_CSV_ROWS,
    MAX_IMAGE_VALUES,
};

/// A finite number, or `None` (Rust's float parser also accepts "inf" and "NaN": refused).
fn number(cell: &str) -> Option<f32> {
    cell.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// The non-blank lines with their 1-based line numbers, trimmed.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// `(side, side)` when `n` is a perfect square, else `(1, n)`.
fn image_shape(n: usize) -> (usize, usize) {
    let side = (n as f64).sqrt().round() as usize;
    if side.checked_mul(side) == Some(n) {
        (side, side)
    } else {
        (1, n)
    }
}

/// The next line of `reader` into `buf` (without its `\n`): `Ok(false)` at the end of the
/// input; an error as soon as the line passes `cap` bytes.
fn next_line(
    input: &mut Input<'_>,
    buf: &mut Vec<u8>,
    line: usize,
    cap: usize,
) -> Result<bool, DataError> {
    buf.clear();
    loop {
        let available = match input.reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) => return Err(input.error(e)),
        };
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if buf.len() + take > cap {
            return Err(DataError::LineTooLong {
                path: input.path.to_path_buf(),
                line,
                limit: cap,
            });
        }
        buf.extend_from_slice(&available[..take]);
        input.reader.consume(take + usize::from(done));
        if done {
            return Ok(true);
        }
    }
}

/// Reads CSV images line by line: each line at most [`MAX_CSV_LINE_BYTES`], at most
/// [`MAX_CSV_ROWS`] lines and [`MAX_IMAGE_VALUES`] values, stopping after the images wanted.
pub(super) fn read_images(
    input: &mut Input<'_>,
    request: ImageRequest,
) -> Result<Images, DataError> {
    let path = input.path;
    let mut pixels = Vec::new();
    // Values per row and the line of the first data row.
    let mut width: Option<(usize, usize)> = None;
    let mut rows = 0usize;
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut line = 0usize;
    let mut first_content = true;
    while request.limit.is_none_or(|limit| rows < limit) {
        line += 1;
        if line > MAX_CSV_ROWS {
            return Err(DataError::TooMany {
                path: path.to_path_buf(),
                what: "lines",
                limit: MAX_CSV_ROWS as u64,
            });
        }
        if !next_line(input, &mut buf, line, MAX_CSV_LINE_BYTES)? {
            break;
        }
        let start = offset;
        offset += buf.len() as u64 + 1;
        input.check_total(offset.saturating_sub(1))?;
        let text = std::str::from_utf8(&buf).map_err(|e| DataError::UnknownFormat {
            path: path.to_path_buf(),
            head: input.head.iter().copied().take(8).collect(),
            offset: (start as usize).saturating_add(e.valid_up_to()),
        })?;
        let content = text.trim();
        if content.is_empty() {
            continue;
        }
        let cells: Vec<&str> = content.split(',').map(str::trim).collect();
        let first = std::mem::replace(&mut first_content, false);
        if first && cells.iter().all(|c| number(c).is_none()) {
            continue; // a header row
        }
        match width {
            None => {
                if let Some(expected) = request.values_per_image {
                    if cells.len() != expected {
                        let (rows, cols) = image_shape(cells.len());
                        return Err(DataError::WrongImageSize {
                            path: path.to_path_buf(),
                            rows,
                            cols,
                            expected,
                        });
                    }
                }
                width = Some((cells.len(), line));
            }
            Some((expected, first_line)) if expected != cells.len() => {
                return Err(DataError::RaggedRow {
                    path: path.to_path_buf(),
                    line,
                    first_line,
                    expected,
                    found: cells.len(),
                });
            }
            Some(_) => {}
        }
        if (pixels.len() + cells.len()) as u64 > MAX_IMAGE_VALUES {
            return Err(DataError::TooMany {
                path: path.to_path_buf(),
                what: "values",
                limit: MAX_IMAGE_VALUES,
            });
        }
        for (column, cell) in cells.iter().enumerate() {
            let value = number(cell).ok_or_else(|| DataError::NotNumber {
                path: path.to_path_buf(),
                line,
                column: column + 1,
                cell: (*cell).to_owned(),
            })?;
            pixels.push(value);
        }
        rows += 1;
    }
    let (per_image, _) = width.ok_or_else(|| DataError::NoRows {
        path: path.to_path_buf(),
    })?;
    let (rows, cols) = image_shape(per_image);
    Images::from_pixels(path, rows, cols, pixels)
}

pub(super) fn parse_labels(path: &Path, text: &str) -> Result<Labels, DataError> {
    let mut labels = Vec::new();
    for (index, (line, cell)) in lines(text).enumerate() {
        if index == 0 && !cell.bytes().any(|b| b.is_ascii_digit()) {
            continue; // a header line such as "label": no digit at all
        }
        let label = cell.parse::<u32>().ok().or_else(|| {
            // Accept integral floats such as "3.0", as some tools write labels that way.
            let v = cell.parse::<f64>().ok()?;
            (v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v)).then_some(v as u32)
        });
        match label {
            Some(label) => labels.push(label),
            None => {
                return Err(DataError::BadLabel {
                    path: path.to_path_buf(),
                    line,
                    cell: cell.to_owned(),
                })
            }
        }
    }
    Ok(Labels::from_vec(path, labels))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{gzip, write};
    use super::super::{load_images, load_labels, DataError};

    #[test]
    fn reads_images_with_and_without_header() {
        let dir = tempfile::tempdir().unwrap();
        let text = "p0,p1,p2,p3\n0,1.5,2,255\r\n\n4, 5 ,6e1,-7\n";
        let images = load_images(write(&dir, "a.csv", text.as_bytes())).unwrap();
        assert_eq!((images.count(), images.rows(), images.cols()), (2, 2, 2));
        assert_eq!(images.image(0).unwrap(), &[0.0, 1.5, 2.0, 255.0]);
        assert_eq!(images.image(1).unwrap(), &[4.0, 5.0, 60.0, -7.0]);

        let images = load_images(write(&dir, "b.csv", b"1,2,3\n4,5,6\n")).unwrap();
        assert_eq!((images.count(), images.rows(), images.cols()), (2, 1, 3));
        assert_eq!(images.pixels(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

        // Gzip-compressed CSV works too.
        let images = load_images(write(&dir, "c.csv.gz", &gzip(b"9,8,7,6\n"))).unwrap();
        assert_eq!(images.pixels(), &[9.0, 8.0, 7.0, 6.0]);
    }

    #[test]
    fn one_endless_row_fails_at_the_line_limit() {
        use super::super::{load_images_with, ImageRequest, MAX_CSV_LINE_BYTES};
        let dir = tempfile::tempdir().unwrap();
        // 64 MiB of "0," in one row, about 64 KiB compressed.
        let row: Vec<u8> = b"0,".repeat(32 << 20);
        let path = write(&dir, "row.csv.gz", &gzip(&row));
        let started = std::time::Instant::now();
        let err = load_images(&path).unwrap_err();
        assert!(
            matches!(err, DataError::LineTooLong { line: 1, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(&format!(
                "row.csv.gz: line 1 is longer than {MAX_CSV_LINE_BYTES} bytes (the limit for \
                 one CSV row); refusing to read it"
            )),
            "{err}"
        );
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
        // A first row of the wrong width is refused before the next row is read.
        let path = write(&dir, "w.csv", b"1,2,3\n4,5,6\n");
        let err = load_images_with(
            &path,
            ImageRequest {
                values_per_image: Some(4),
                limit: None,
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("w.csv: images have 3 values (1×3) but the model expects 4"),
            "{err}"
        );
        // --limit stops reading: the ragged third row is never seen.
        let path = write(&dir, "l.csv", b"1,2\n3,4\n5\n");
        let images = load_images_with(
            &path,
            ImageRequest {
                values_per_image: Some(2),
                limit: Some(2),
            },
        )
        .unwrap();
        assert_eq!(images.pixels(), &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn truncated_and_flipped_csv_gives_errors_or_images_never_panics() {
        use rand::{Rng, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        let text = b"p0,p1,p2,p3\n0,1.5,2,255\n4,5,60,-7\n8,9,10,11\n".to_vec();
        let gz = gzip(&text);
        let path = dir.path().join("x.csv");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        for source in [&text, &gz] {
            for cut in 0..=source.len() {
                std::fs::write(&path, &source[..cut]).unwrap();
                let _ = load_images(&path);
                let _ = load_labels(&path);
            }
            for _ in 0..300 {
                let mut bytes = source.clone();
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
                std::fs::write(&path, &bytes).unwrap();
                let _ = load_images(&path);
                let _ = load_labels(&path);
            }
        }
    }

    #[test]
    fn non_numeric_cell_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a,b,c\n1,2,3\n4,x5,6\n";
        let err = load_images(write(&dir, "bad.csv", text.as_bytes())).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotNumber {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("bad.csv: line 3, column 2: \"x5\" is not a finite number"),
            "{err}"
        );
        // A first row with some numbers is data, not a header, so its bad cell is reported.
        let err = load_images(write(&dir, "typo.csv", b"1,2,three\n")).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotNumber {
                    line: 1,
                    column: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        // Infinities, NaN and empty cells are not accepted.
        for (name, text) in [
            ("inf.csv", "1,inf\n"),
            ("nan.csv", "1,NaN\n"),
            ("empty.csv", "1,,2\n"),
        ] {
            let err = load_images(write(&dir, name, text.as_bytes())).unwrap_err();
            assert!(
                matches!(err, DataError::NotNumber { column: 2, .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn ragged_rows_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = "h1,h2\n1,2\n\n3,4,5\n";
        let err = load_images(write(&dir, "r.csv", text.as_bytes())).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::RaggedRow {
                    line: 4,
                    first_line: 2,
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(
                "r.csv: line 4 has 3 values but the first data row (line 2) has 2; \
                 all rows must be the same length"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_data_rows_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("empty.csv", ""), ("header.csv", "a,b,c\n\n")] {
            let err = load_images(write(&dir, name, text.as_bytes())).unwrap_err();
            assert!(matches!(err, DataError::NoRows { .. }), "{err:?}");
            assert!(
                err.to_string().ends_with(&format!("{name}: no data rows")),
                "{err}"
            );
        }
    }

    #[test]
    fn reads_labels_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let labels = load_labels(write(&dir, "l.csv", b"label\n3\n1\r\n\n4.0\n")).unwrap();
        assert_eq!(labels.as_slice(), &[3, 1, 4]);
        let labels = load_labels(write(&dir, "m.txt", b"0\n9\n")).unwrap();
        assert_eq!(labels.as_slice(), &[0, 9]);
    }

    #[test]
    fn bad_labels_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        for (text, line, cell) in [
            ("1\n-2\n", 2, "-2"),
            ("1\n2.5\n", 2, "2.5"),
            ("label\n1\nseven\n", 3, "seven"),
            ("1,2\n", 1, "1,2"),
        ] {
            let err = load_labels(write(&dir, "l.csv", text.as_bytes())).unwrap_err();
            match &err {
                DataError::BadLabel {
                    line: l, cell: c, ..
                } => assert_eq!((*l, c.as_str()), (line, cell)),
                other => panic!("{other:?}"),
            }
            assert!(err
                .to_string()
                .contains("is not a class label (a non-negative integer, one per line)"));
        }
    }
}
