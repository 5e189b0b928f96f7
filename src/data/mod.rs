//! Reading image data sets: IDX (plain or gzip) and CSV images, IDX and CSV labels.
//!
//! Both loaders look at the file's contents, not its name:
//!
//! 1. a file that starts with the gzip magic bytes `1f 8b` is decompressed first;
//! 2. data that starts with two zero bytes is IDX (every IDX magic number does);
//! 3. anything else must be UTF-8 text and is read as CSV.
//!
//! Pixel values are kept in the units of the file, as `f32`: IDX bytes become 0.0..=255.0,
//! CSV numbers are taken as written. Nothing is rescaled here, because a model file declares
//! the range of its raw input.
//!
//! ```no_run
//! use veil::data::{check_labels, load_images, load_labels};
//!
//! let images = load_images("models/data/mnist/test-images-idx3-ubyte.gz")?;
//! let labels = load_labels("models/data/mnist/test-labels-idx1-ubyte.gz")?;
//! check_labels(&images, &labels)?;
//! for (image, label) in images.iter().zip(labels.iter()) {
//!     assert_eq!(image.len(), images.rows() * images.cols());
//!     let _ = label;
//! }
//! # Ok::<(), veil::data::DataError>(())
//! ```
//!
//! Every malformed input gives a [`DataError`] naming the file and what is wrong; no input
//! makes these functions panic, and no allocation is sized from a header before the header
//! has been checked against the data actually present.
//!
//! Images are read as a stream ([`load_images_with`]): an IDX header is checked against the
//! expected image size and the number of images wanted before any pixel is read, and CSV is
//! read line by line with a bounded line length. The limits, each stated once here:
//! [`MAX_DATA_BYTES`] (bytes after decompression), [`MAX_IMAGE_VALUES`] (pixel values kept),
//! [`MAX_CSV_LINE_BYTES`] and [`MAX_CSV_ROWS`].

mod csv;
mod idx;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// The most bytes a data file may hold (after decompression): 1 GiB.
///
/// Far above any data set Veil runs (60,000 MNIST-sized images are 47 MB) and low enough that a
/// corrupt header or a gzip bomb cannot exhaust memory.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// The most pixel values one image file may give (after `--limit`): 2^28, 1 GiB as `f32`,
/// 342,000 MNIST-sized images. An IDX header declaring more is refused before any pixel is read.
pub const MAX_IMAGE_VALUES: u64 = 1 << 28;

/// The longest line of a CSV file: 8 MiB, room for a 224×224×3 image written with 50 digits
/// per value. A longer line is refused as soon as the limit is passed.
pub const MAX_CSV_LINE_BYTES: usize = 8 << 20;

/// The most lines a CSV file may have: 2^24.
pub const MAX_CSV_ROWS: usize = 1 << 24;

/// What the reader of an image file is told before it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageRequest {
    /// Values each image must have (the model's input size): a file of other images is
    /// refused from its header or first row.
    pub values_per_image: Option<usize>,
    /// Read only the first this many images.
    pub limit: Option<usize>,
}

/// A set of equally sized single-channel images, pixels in the file's units.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    path: PathBuf,
    count: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<f32>,
}

impl Images {
    /// Images of `rows` × `cols` pixels from a flat row-major buffer, image after image.
    ///
    /// `path` only labels error messages. Fails when the buffer is not a whole number of
    /// images or a dimension is zero.
    pub fn from_pixels(
        path: impl Into<PathBuf>,
        rows: usize,
        cols: usize,
        pixels: Vec<f32>,
    ) -> Result<Self, DataError> {
        let path = path.into();
        let per_image = rows.checked_mul(cols).unwrap_or(0);
        if per_image == 0 {
            return Err(DataError::EmptyImage { path, rows, cols });
        }
        if !pixels.len().is_multiple_of(per_image) {
            return Err(DataError::PartialImage {
                path,
                values: pixels.len(),
                per_image,
            });
        }
        Ok(Self {
            path,
            count: pixels.len() / per_image,
            rows,
            cols,
            pixels,
        })
    }

    /// The file the images were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Pixel rows per image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Pixel columns per image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Values per image, `rows × cols`.
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels, image after image, each row-major.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// The pixels of image `index` (row-major), or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[f32]> {
        let n = self.pixels_per_image();
        let start = index.checked_mul(n)?;
        self.pixels.get(start..start.checked_add(n)?)
    }

    /// The images in order, each as a row-major slice.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, f32> {
        self.pixels.chunks_exact(self.pixels_per_image())
    }

    /// Keeps only the first `count` images (no effect if there are fewer).
    pub fn truncate(&mut self, count: usize) {
        if count < self.count {
            self.count = count;
            self.pixels.truncate(count * self.pixels_per_image());
        }
    }
}

/// Class labels, one per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    path: PathBuf,
    labels: Vec<u32>,
}

impl Labels {
    /// Labels from a vector; `path` only labels error messages.
    pub fn from_vec(path: impl Into<PathBuf>, labels: Vec<u32>) -> Self {
        Self {
            path: path.into(),
            labels,
        }
    }

    /// The file the labels were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Label `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<u32> {
        self.labels.get(index).copied()
    }

    /// All labels in order.
    pub fn as_slice(&self) -> &[u32] {
        &self.labels
    }

    /// The labels in order.
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, u32>> {
        self.labels.iter().copied()
    }

    /// The largest label, or `None` when there are none.
    pub fn max(&self) -> Option<u32> {
        self.labels.iter().copied().max()
    }

    /// Keeps only the first `count` labels (no effect if there are fewer).
    pub fn truncate(&mut self, count: usize) {
        self.labels.truncate(count);
    }
}

/// Everything that can go wrong reading a data file. Each variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{}: corrupt or truncated gzip data: {source}", path.display())]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The (decompressed) data is larger than [`MAX_DATA_BYTES`].
    #[error("{}: more than {limit} bytes of data after decompression; refusing to read it", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// The data is neither IDX (starts with two zero bytes) nor UTF-8 text.
    #[error(
        "{}: neither an IDX file (those start with bytes 00 00) nor UTF-8 CSV text \
         (invalid UTF-8 at byte {offset}; file starts with {head:02x?})",
        path.display()
    )]
    UnknownFormat {
        path: PathBuf,
        head: Vec<u8>,
        offset: usize,
    },
    /// The IDX magic number is not the one expected.
    #[error(
        "{}: wrong IDX magic number: expected {expected:#010x} ({}), found {found:#010x} ({})",
        path.display(),
        idx::describe_magic(*expected),
        idx::describe_magic(*found)
    )]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    /// The IDX file ends before the header or the data it declares.
    #[error("{}: truncated IDX {what}: expected {expected} bytes, found {found}", path.display())]
    Truncated {
        path: PathBuf,
        what: &'static str,
        expected: u64,
        found: u64,
    },
    /// The IDX file holds more bytes than its header declares.
    #[error(
        "{}: {extra} unexpected bytes after the {expected} bytes that the IDX header declares",
        path.display()
    )]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        extra: u64,
    },
    /// The IDX header declares more data than may be read.
    #[error(
        "{}: IDX header declares {count} images of {rows}×{cols}: reading {declared} values \
         is more than the limit of {limit} (corrupt header? --limit reads fewer images)",
        path.display()
    )]
    AbsurdDimensions {
        path: PathBuf,
        count: u32,
        rows: u32,
        cols: u32,
        declared: u128,
        limit: u64,
    },
    /// Images with zero rows or columns.
    #[error("{}: images of {rows}×{cols} pixels are empty", path.display())]
    EmptyImage {
        path: PathBuf,
        rows: usize,
        cols: usize,
    },
    /// A pixel buffer that is not a whole number of images.
    #[error("{}: {values} values are not a whole number of {per_image}-pixel images", path.display())]
    PartialImage {
        path: PathBuf,
        values: usize,
        per_image: usize,
    },
    /// Images of another size than expected.
    #[error(
        "{}: images have {} values ({rows}×{cols}) but the model expects {expected}",
        path.display(),
        rows * cols
    )]
    WrongImageSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
        expected: usize,
    },
    /// A CSV line longer than [`MAX_CSV_LINE_BYTES`].
    #[error(
        "{}: line {line} is longer than {limit} bytes (the limit for one CSV row); refusing to \
         read it",
        path.display()
    )]
    LineTooLong {
        path: PathBuf,
        line: usize,
        limit: usize,
    },
    /// More values or rows than the limits allow.
    #[error(
        "{}: more than {limit} {what}; read fewer images with --limit",
        path.display()
    )]
    TooMany {
        path: PathBuf,
        what: &'static str,
        limit: u64,
    },
    /// A CSV file with no data rows.
    #[error("{}: no data rows", path.display())]
    NoRows { path: PathBuf },
    /// A CSV cell that is not a finite number.
    #[error("{}: line {line}, column {column}: {cell:?} is not a finite number", path.display())]
    NotNumber {
        path: PathBuf,
        line: usize,
        column: usize,
        cell: String,
    },
    /// A CSV row whose length differs from the first data row's.
    #[error(
        "{}: line {line} has {found} values but the first data row (line {first_line}) has {expected}; \
         all rows must be the same length",
        path.display()
    )]
    RaggedRow {
        path: PathBuf,
        line: usize,
        first_line: usize,
        expected: usize,
        found: usize,
    },
    /// A CSV label that is not a non-negative integer.
    #[error(
        "{}: line {line}: {cell:?} is not a class label (a non-negative integer, one per line)",
        path.display()
    )]
    BadLabel {
        path: PathBuf,
        line: usize,
        cell: String,
    },
    /// Different numbers of images and labels.
    #[error(
        "{} has {images} images but {} has {labels} labels; they must match one to one",
        images_path.display(),
        labels_path.display()
    )]
    LabelCountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
}

/// Reads images from an IDX file (magic `0x00000803`: u8 pixels, dimensions count × rows ×
/// cols), plain or gzip-compressed, or from a CSV file (one image per row, comma-separated
/// numbers).
///
/// A CSV row of `n` values gives `√n × √n` images when `n` is a perfect square (784 → 28×28),
/// and `1 × n` otherwise. A first row in which no cell is a number is a header and skipped.
pub fn load_images(path: impl AsRef<Path>) -> Result<Images, DataError> {
    load_images_with(path, ImageRequest::default())
}

/// Reads images as [`load_images`] does, streaming: an IDX header is checked against
/// `request` (image size, number wanted) and [`MAX_IMAGE_VALUES`] before any pixel is read,
/// and only the images wanted are decompressed; CSV stops after the rows wanted.
pub fn load_images_with(
    path: impl AsRef<Path>,
    request: ImageRequest,
) -> Result<Images, DataError> {
    let path = path.as_ref();
    let mut input = Input::open(path)?;
    if input.head.starts_with(&[0, 0]) {
        idx::read_images(&mut input, request)
    } else {
        csv::read_images(&mut input, request)
    }
}

/// A data file being read: decompressed when it is gzip, capped at [`MAX_DATA_BYTES`].
pub(crate) struct Input<'a> {
    pub(crate) path: &'a Path,
    gz: bool,
    /// The first bytes of the (decompressed) data, up to 16, already read from `reader`.
    pub(crate) head: Vec<u8>,
    pub(crate) reader: BufReader<Box<dyn Read + 'a>>,
}

impl<'a> Input<'a> {
    fn open(path: &'a Path) -> Result<Self, DataError> {
        let io_err = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufReader::new(std::fs::File::open(path).map_err(io_err)?);
        let gz = file.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC);
        let mut stream: Box<dyn Read> = if gz {
            Box::new(MultiGzDecoder::new(file).take(MAX_DATA_BYTES + 1))
        } else {
            Box::new(file.take(MAX_DATA_BYTES + 1))
        };
        let mut head = Vec::with_capacity(16);
        stream
            .by_ref()
            .take(16)
            .read_to_end(&mut head)
            .map_err(|e| read_error(path, gz, e))?;
        Ok(Input {
            path,
            gz,
            head: head.clone(),
            reader: BufReader::new(Box::new(std::io::Cursor::new(head).chain(stream))),
        })
    }

    /// A read error, as a gzip error when the file is compressed.
    pub(crate) fn error(&self, source: std::io::Error) -> DataError {
        read_error(self.path, self.gz, source)
    }

    /// Refuses data beyond [`MAX_DATA_BYTES`] once `total` bytes were read.
    pub(crate) fn check_total(&self, total: u64) -> Result<(), DataError> {
        if total > MAX_DATA_BYTES {
            return Err(DataError::TooLarge {
                path: self.path.to_path_buf(),
                limit: MAX_DATA_BYTES,
            });
        }
        Ok(())
    }
}

/// Reads labels from an IDX file (magic `0x00000801`: one u8 per label), plain or
/// gzip-compressed, or from a CSV/text file with one non-negative integer per line (a first
/// line without any digit, such as `label`, is a header and skipped).
pub fn load_labels(path: impl AsRef<Path>) -> Result<Labels, DataError> {
    let path = path.as_ref();
    match read_data(path)? {
        Data::Idx(bytes) => idx::parse_labels(path, &bytes),
        Data::Text(text) => csv::parse_labels(path, &text),
    }
}

/// Checks that there is exactly one label per image.
pub fn check_labels(images: &Images, labels: &Labels) -> Result<(), DataError> {
    if images.count() == labels.len() {
        Ok(())
    } else {
        Err(DataError::LabelCountMismatch {
            images_path: images.path().to_path_buf(),
            images: images.count(),
            labels_path: labels.path().to_path_buf(),
            labels: labels.len(),
        })
    }
}

/// A read error, as a gzip error when the file is compressed.
fn read_error(path: &Path, gz: bool, source: std::io::Error) -> DataError {
    let path = path.to_path_buf();
    if gz {
        DataError::Gzip { path, source }
    } else {
        DataError::Io { path, source }
    }
}

/// A file's contents after decompression, sorted by kind (labels are read whole).
enum Data {
    Idx(Vec<u8>),
    Text(String),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn read_data(path: &Path) -> Result<Data, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    // The limit applies to what is actually in the file, never to what a header claims.
    let mut raw = Vec::new();
    file.take(MAX_DATA_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(io_err)?;
    let bytes = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        MultiGzDecoder::new(raw.as_slice())
            .take(MAX_DATA_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        out
    } else {
        raw
    };
    if bytes.len() as u64 > MAX_DATA_BYTES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_DATA_BYTES,
        });
    }
    if bytes.starts_with(&[0, 0]) {
        return Ok(Data::Idx(bytes));
    }
    String::from_utf8(bytes).map(Data::Text).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        DataError::UnknownFormat {
            path: path.to_path_buf(),
            head: bytes.iter().copied().take(8).collect(),
            offset,
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Writes `bytes` to `name` inside `dir` and returns the path.
    pub(crate) fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// An IDX image file: `count` images of `rows`×`cols`, pixel value = index mod 256.
    pub(crate) fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [0x0803, count, rows, cols] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let n = (count * rows * cols) as usize;
        out.extend((0..n).map(|i| (i % 256) as u8));
        out
    }

    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0x0801u32.to_be_bytes());
        out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        out.extend_from_slice(labels);
        out
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.idx");
        let err = load_images(&path).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot read ") && msg.contains("nope.idx"),
            "{msg}"
        );
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "images.idx", &gzip(&idx_images(2, 3, 4)));
        let images = load_images(&path).unwrap();
        assert_eq!((images.count(), images.rows(), images.cols()), (2, 3, 4));
        assert_eq!(images.image(1).unwrap()[0], 12.0);
        // And an uncompressed file called .gz is still read.
        let path = write(&dir, "labels.gz", &idx_labels(&[3, 1, 4]));
        assert_eq!(load_labels(&path).unwrap().as_slice(), &[3, 1, 4]);
    }

    #[test]
    fn truncated_gzip_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let gz = gzip(&idx_images(4, 5, 5));
        let path = write(&dir, "cut.gz", &gz[..gz.len() / 2]);
        let err = load_images(&path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert!(
            err.to_string().contains("corrupt or truncated gzip data"),
            "{err}"
        );
    }

    #[test]
    fn binary_garbage_is_an_unknown_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "junk.bin", &[0x89, b'P', b'N', b'G', 0xff, 0xfe]);
        let err = load_images(&path).unwrap_err();
        assert!(matches!(err, DataError::UnknownFormat { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("neither an IDX file (those start with bytes 00 00) nor UTF-8 CSV"),
            "{err}"
        );
    }

    #[test]
    fn label_count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let images = load_images(write(&dir, "i.idx", &idx_images(3, 2, 2))).unwrap();
        let labels = load_labels(write(&dir, "l.idx", &idx_labels(&[1, 2]))).unwrap();
        let err = check_labels(&images, &labels).unwrap_err();
        assert!(
            matches!(err, DataError::LabelCountMismatch { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("i.idx has 3 images but") && msg.contains("l.idx has 2 labels"),
            "{msg}"
        );
        let labels = Labels::from_vec("x", vec![0, 1, 2]);
        check_labels(&images, &labels).unwrap();
    }

    #[test]
    fn from_pixels_checks_the_shape() {
        let err = Images::from_pixels("mem", 0, 3, vec![]).unwrap_err();
        assert!(matches!(err, DataError::EmptyImage { .. }), "{err:?}");
        let err = Images::from_pixels("mem", 2, 2, vec![0.0; 6]).unwrap_err();
        assert!(matches!(err, DataError::PartialImage { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "mem: 6 values are not a whole number of 4-pixel images"
        );
        let mut images = Images::from_pixels("mem", 2, 2, vec![1.0; 12]).unwrap();
        assert_eq!(images.count(), 3);
        assert_eq!(images.iter().count(), 3);
        assert!(images.image(3).is_none());
        assert!(images.image(usize::MAX).is_none());
        images.truncate(1);
        assert_eq!((images.count(), images.pixels().len()), (1, 4));
    }

    #[test]
    fn committed_mnist_test_split_reads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/mnist");
        let images = load_images(root.join("test-images-idx3-ubyte.gz")).unwrap();
        let labels = load_labels(root.join("test-labels-idx1-ubyte.gz")).unwrap();
        check_labels(&images, &labels).unwrap();
        assert_eq!(
            (images.count(), images.rows(), images.cols()),
            (2000, 28, 28)
        );
        assert!(labels.iter().all(|l| l <= 9));
        let mut per_class = [0usize; 10];
        for l in labels.iter() {
            per_class[l as usize] += 1;
        }
        assert_eq!(
            per_class,
            [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
        );
        let max = images.pixels().iter().copied().fold(0.0f32, f32::max);
        let min = images.pixels().iter().copied().fold(255.0f32, f32::min);
        assert_eq!((min, max), (0.0, 255.0));
        // Ink is a minority of each digit's pixels, but every digit has some.
        for image in images.iter() {
            let ink = image.iter().filter(|&&p| p > 127.0).count();
            assert!((20..400).contains(&ink), "{ink} ink pixels");
        }
        let train = load_images(root.join("train-images-idx3-ubyte.gz")).unwrap();
        assert_eq!(train.count(), 8000);
    }
}
