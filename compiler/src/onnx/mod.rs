//! ONNX import: an ONNX file becomes a Veil [`crate::model::Model`] and its tensors, so
//! that everything after loading (checks, IR, passes, plan) is shared with model files.
//!
//! The reader is ours and small: [`wire`] decodes the protobuf wire format with every length
//! checked against the bytes present, [`proto`] picks out the few ONNX messages and fields the
//! importer needs, and `convert` maps the graph's nodes onto model layers (supported operators
//! and their mappings: `docs/onnx.md`). A file is recognised as ONNX by its content
//! ([`is_onnx`]), not only by its extension.
//!
//! ONNX does not record the range of raw input values, which the compiler needs to bound every
//! value of the circuit; it is given in [`ImportOptions::input_range`] (`--input-range` on the
//! command line), and an ONNX model without it is refused.

mod convert;
pub mod proto;
pub mod wire;
mod write;

use crate::model::{Model, TensorSource};
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use convert::{MAX_OPSET, MIN_OPSET};

/// Largest ONNX file read (bytes). Models Veil can compile are far smaller; the limit stops a
/// damaged or hostile file from making the reader allocate without bound.
pub const MAX_ONNX_BYTES: u64 = 512 << 20;

/// What an ONNX file does not say and a model file does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// `(min, max)` of the raw input values; required for ONNX files. For model files, when
    /// given, it replaces the declared range.
    pub input_range: Option<(f64, f64)>,
    /// Class names, one per output (default `"0"`..`"k-1"`). For model files, when given, they
    /// replace the declared ones.
    pub class_names: Option<Vec<String>>,
}

impl ImportOptions {
    /// Applies the options to a model read from a model file.
    pub fn apply(&self, model: &mut Model) {
        if let Some((min, max)) = self.input_range {
            model.input.min = min;
            model.input.max = max;
        }
        if let Some(names) = &self.class_names {
            model.classes.clone_from(names);
        }
    }
}

/// An imported ONNX model.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The equivalent model (its `weights` names `<stem>.safetensors`).
    pub model: Model,
    /// Its tensors, named `<layer>.<tensor>`, every value a float32 (as in the ONNX file).
    pub tensors: TensorSource,
    /// What the import changed or dropped that a user should know (a final softmax removed,
    /// half-precision weights widened, …).
    pub notes: Vec<String>,
}

/// Why an ONNX file could not be imported. Nothing is imported partially.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("{}: cannot read the file: {message}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The system's message.
        message: String,
    },
    /// The file is larger than [`MAX_ONNX_BYTES`].
    #[error("{}: the file has {size} bytes, more than the {max} bytes an ONNX model may have", file.display())]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The protobuf encoding is broken (a truncated or damaged file).
    #[error("{}: not a readable ONNX file (truncated or damaged?): {source}", file.display())]
    Wire {
        /// The file.
        file: PathBuf,
        /// Where and what.
        source: wire::WireError,
    },
    /// The model as a whole cannot be imported (no graph, a dynamic input shape, …).
    #[error("{}: {what}", file.display())]
    Model {
        /// The file.
        file: PathBuf,
        /// What is wrong and what to do.
        what: String,
    },
    /// One node cannot be imported.
    #[error("{}: node `{node}` ({op_type}, opset {opset}): {what}", file.display())]
    Node {
        /// The file.
        file: PathBuf,
        /// The node's name (or its first output when unnamed).
        node: String,
        /// Its operator.
        op_type: String,
        /// The model's default-domain opset.
        opset: i64,
        /// What is wrong and what would work instead.
        what: String,
    },
    /// No input range was given.
    #[error(
        "{}: an ONNX model does not record the range of its raw input values, which Veil needs \
         to bound every value of the circuit; give it with `--input-range MIN,MAX` (e.g. \
         `--input-range 0,255` for image bytes, `--input-range 0,1` for pixels scaled to [0, 1])",
        file.display()
    )]
    NoInputRange {
        /// The file.
        file: PathBuf,
    },
}

/// Whether the file at `path` is an ONNX model: an `.onnx` extension, or content that starts
/// like a protobuf `ModelProto`. Unreadable files are not ONNX (the model reader reports them).
pub fn is_onnx(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
    {
        return true;
    }
    let mut head = Vec::new();
    match std::fs::File::open(path) {
        Ok(f) => {
            if f.take(4096).read_to_end(&mut head).is_err() {
                return false;
            }
        }
        Err(_) => return false,
    }
    proto::looks_like_model(&head)
}

/// Reads and imports the ONNX file at `path`.
pub fn read(path: &Path, opts: &ImportOptions) -> Result<Imported, OnnxError> {
    let io = |e: std::io::Error| OnnxError::Io {
        file: path.to_path_buf(),
        message: e.to_string(),
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_ONNX_BYTES {
        return Err(OnnxError::TooLarge {
            file: path.to_path_buf(),
            size,
            max: MAX_ONNX_BYTES,
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ONNX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    import(path, &bytes, opts)
}

/// Imports an ONNX model held in memory; `path` names it in errors and gives the model its
/// name (the file stem).
pub fn import(path: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, OnnxError> {
    if bytes.len() as u64 > MAX_ONNX_BYTES {
        return Err(OnnxError::TooLarge {
            file: path.to_path_buf(),
            size: bytes.len() as u64,
            max: MAX_ONNX_BYTES,
        });
    }
    let model = proto::model(bytes).map_err(|source| OnnxError::Wire {
        file: path.to_path_buf(),
        source,
    })?;
    convert::convert(path, &model, opts)
}
