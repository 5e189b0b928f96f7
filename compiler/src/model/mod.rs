//! The model file: its serde schema (RON or JSON, chosen by extension) and the loading of the
//! weights it refers to. This layer only reads; [`crate::ir::build`] checks everything and turns
//! a [`LoadedModel`] into the IR.
//!
//! The format is documented in `docs/model-format.md`.

mod bare;
mod error;
mod tensors;

pub use error::{ModelError, ModelErrorKind};
pub use tensors::{Tensor, TensorSource};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// The input tensor's shape and raw value range.
    pub input: Input,
    /// A safetensors file beside the model holding tensors named `<layer>.<tensor>`.
    #[serde(default)]
    pub weights: Option<String>,
    /// Class names (default `"0"`..`"k-1"`).
    #[serde(default)]
    pub classes: Vec<String>,
    /// The layers; the last one is the output.
    pub layers: Vec<Layer>,
}

/// The model input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// C×H×W (or any shape; convolutions and pooling need rank 3).
    pub shape: Vec<usize>,
    /// Smallest raw value.
    pub min: f64,
    /// Largest raw value.
    pub max: f64,
}

/// One named layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Unique name; tensors are looked up as `<name>.<tensor>`.
    pub name: String,
    /// The operation; one whose fields all have defaults may be written bare (`BatchNorm`).
    #[serde(deserialize_with = "bare::op")]
    pub op: Op,
    /// Layers (or `"input"`) read; empty (the default): the previous layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Inline tensors (flat, row-major), taking precedence over the weights file.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<f64>>,
}

/// Zero padding on each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Padding {
    /// Rows added above.
    #[serde(default)]
    pub top: usize,
    /// Columns added on the left.
    #[serde(default)]
    pub left: usize,
    /// Rows added below.
    #[serde(default)]
    pub bottom: usize,
    /// Columns added on the right.
    #[serde(default)]
    pub right: usize,
}

fn one_one() -> (usize, usize) {
    (1, 1)
}

fn yes() -> bool {
    true
}

fn default_eps() -> f64 {
    1e-5
}

fn default_p() -> f64 {
    0.5
}

/// The layer operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Op {
    /// 2-D convolution, weight `[O, I, kh, kw]`, bias `[O]`.
    Conv2d {
        /// Output channels O.
        out_channels: usize,
        /// (kh, kw).
        kernel: (usize, usize),
        /// (sh, sw), default (1, 1).
        #[serde(default = "one_one")]
        stride: (usize, usize),
        /// Zero padding.
        #[serde(default)]
        padding: Padding,
        /// Whether a bias tensor exists (default true).
        #[serde(default = "yes")]
        bias: bool,
    },
    /// Fully connected layer over the flattened input, weight `[out, in]`, bias `[out]`.
    Dense {
        /// Output features.
        out_features: usize,
        /// Whether a bias tensor exists (default true).
        #[serde(default = "yes")]
        bias: bool,
    },
    /// Flattens to one dimension.
    Flatten,
    /// Reshapes (same number of values).
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
    /// Max pooling (lowered to sum pooling).
    MaxPool2d {
        /// Window.
        kernel: (usize, usize),
        /// Stride, default (1, 1).
        #[serde(default = "one_one")]
        stride: (usize, usize),
        /// Zero padding.
        #[serde(default)]
        padding: Padding,
    },
    /// Average pooling (divides by the window area, padding counted).
    AvgPool2d {
        /// Window.
        kernel: (usize, usize),
        /// Stride, default (1, 1).
        #[serde(default = "one_one")]
        stride: (usize, usize),
        /// Zero padding.
        #[serde(default)]
        padding: Padding,
    },
    /// Window sum (CryptoNets' scaled mean pool).
    SumPool2d {
        /// Window.
        kernel: (usize, usize),
        /// Stride, default (1, 1).
        #[serde(default = "one_one")]
        stride: (usize, usize),
        /// Zero padding.
        #[serde(default)]
        padding: Padding,
    },
    /// Inference-time batch normalisation per channel.
    BatchNorm {
        /// Added to the variance.
        #[serde(default = "default_eps")]
        eps: f64,
    },
    /// Identity at inference.
    Dropout {
        /// Drop probability during training.
        #[serde(default = "default_p")]
        p: f64,
    },
    /// Elementwise activation.
    Activation(Activation),
    /// Elementwise sum of the two `inputs`.
    Add,
    /// Softmax (final layer only).
    Softmax,
}

/// Elementwise activation functions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// max(x, 0); replaced by x².
    Relu,
    /// 1 / (1 + e^-x); dropped when final, else replaced by x².
    Sigmoid,
    /// tanh x; replaced by x².
    Tanh,
    /// x · Φ(x) = x · (1 + erf(x / √2)) / 2; replaced by x².
    Gelu,
    /// x².
    Square,
    /// Σ c_k x^k, coefficients from c0 (degree ≤ 2).
    Polynomial(Vec<f64>),
}

impl Op {
    /// The name of the operation as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "Conv2d",
            Op::Dense { .. } => "Dense",
            Op::Flatten => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::MaxPool2d { .. } => "MaxPool2d",
            Op::AvgPool2d { .. } => "AvgPool2d",
            Op::SumPool2d { .. } => "SumPool2d",
            Op::BatchNorm { .. } => "BatchNorm",
            Op::Dropout { .. } => "Dropout",
            Op::Activation(_) => "Activation",
            Op::Add => "Add",
            Op::Softmax => "Softmax",
        }
    }
}

/// A parsed model with its weights file opened.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model file's path (for error messages).
    pub path: PathBuf,
    /// The parsed schema.
    pub model: Model,
    /// Tensors from the weights file, if any.
    pub tensors: TensorSource,
}

/// Whether `path` names a JSON file (otherwise RON).
pub fn is_json(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Parses model text; `json` selects the syntax. Syntax errors carry line and column.
pub fn parse(text: &str, json: bool, path: &Path) -> Result<Model, ModelError> {
    let at = |line: usize, column: usize, message: String| {
        ModelError::file(
            path,
            ModelErrorKind::Syntax {
                line,
                column,
                message,
            },
        )
    };
    if json {
        serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; keep only the description.
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            at(e.line(), e.column(), message)
        })
    } else {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        options.from_str(text).map_err(|e| {
            // RON's message runs the variant name into the next word ("`Flaten`in enum").
            let message = e.code.to_string().replace("`in enum", "` in enum");
            at(e.position.line, e.position.col, message)
        })
    }
}

/// The most bytes a model file (RON or JSON, inline tensors included) may hold: 64 MiB.
pub const MAX_MODEL_BYTES: u64 = 64 << 20;
/// The most bytes a safetensors weights file may hold: 1 GiB (250 million F32 weights, far
/// beyond any network that BFV evaluates in reasonable time). Reading stops there, so an
/// endless input such as `/dev/zero` fails at once.
pub const MAX_WEIGHTS_BYTES: u64 = 1 << 30;

/// Reads at most `limit` bytes of `path`; a longer file is an error naming the limit.
fn read_capped(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, ModelErrorKind> {
    use std::io::Read;
    let io = |message: String| ModelErrorKind::Io {
        path: path.to_path_buf(),
        message,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(|e| io(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(io(format!(
            "more than {limit} bytes, the limit for {what}; refusing to read further"
        )));
    }
    Ok(bytes)
}

/// Reads a safetensors file, looking at its first 8 bytes (the header length) before the rest:
/// a file that cannot be safetensors (such as `/dev/zero`) fails at once.
fn read_weights(path: &Path) -> Result<Vec<u8>, ModelErrorKind> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| ModelErrorKind::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut len = [0u8; 8];
    if let Some(first) = head.get(..8) {
        len.copy_from_slice(first);
        let len = u64::from_le_bytes(len);
        // The smallest header is `{}`; a header longer than the file limit cannot be.
        if !(2..=MAX_WEIGHTS_BYTES).contains(&len) {
            return Err(ModelErrorKind::Safetensors(format!(
                "the first 8 bytes declare a {len}-byte header, which no safetensors file has \
                 (the file is not safetensors)"
            )));
        }
    }
    read_capped(path, MAX_WEIGHTS_BYTES, "a weights file")
}

/// Reads a model file and the weights file it names (resolved beside the model), each
/// bounded by its limit ([`MAX_MODEL_BYTES`], [`MAX_WEIGHTS_BYTES`]).
pub fn load(path: &Path) -> Result<LoadedModel, ModelError> {
    let bytes = read_capped(path, MAX_MODEL_BYTES, "a model file")
        .map_err(|kind| ModelError::file(path, kind))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ModelError::file(
            path,
            ModelErrorKind::Io {
                path: path.to_path_buf(),
                message: format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            },
        )
    })?;
    let model = parse(&text, is_json(path), path)?;
    let tensors = match &model.weights {
        None => TensorSource::default(),
        Some(name) => {
            let weights_path = path.parent().unwrap_or_else(|| Path::new(".")).join(name);
            let bytes = read_weights(&weights_path)
                .map_err(|kind| ModelError::file(path, kind).with_field("weights"))?;
            TensorSource::from_safetensors(&bytes)
                .map_err(|kind| ModelError::file(path, kind).with_field("weights"))?
        }
    };
    Ok(LoadedModel {
        path: path.to_path_buf(),
        model,
        tensors,
    })
}

/// A model with tensors given in memory (tests, generated models).
pub fn from_parts(path: &Path, model: Model, tensors: TensorSource) -> LoadedModel {
    LoadedModel {
        path: path.to_path_buf(),
        model,
        tensors,
    }
}
