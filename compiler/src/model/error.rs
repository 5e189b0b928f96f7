//! Model errors: what is wrong, with the file, layer and field where it is.

use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A problem with a model file, located by file, layer and field.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelError {
    /// The model file.
    pub file: PathBuf,
    /// The layer, when the problem belongs to one.
    pub layer: Option<String>,
    /// The field (or tensor) of the layer or model.
    pub field: Option<String>,
    /// What is wrong (boxed to keep `Result`s small).
    pub kind: Box<ModelErrorKind>,
}

impl ModelError {
    /// An error about the file as a whole.
    pub fn file(file: &Path, kind: ModelErrorKind) -> Self {
        ModelError {
            file: file.to_path_buf(),
            layer: None,
            field: None,
            kind: Box::new(kind),
        }
    }

    /// An error about one layer.
    pub fn layer(file: &Path, layer: &str, kind: ModelErrorKind) -> Self {
        ModelError {
            layer: Some(layer.to_owned()),
            ..ModelError::file(file, kind)
        }
    }

    /// Adds the field.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(layer) = &self.layer {
            write!(f, ": layer `{layer}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ModelError {}

/// What is wrong with a model.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelErrorKind {
    /// The file could not be read.
    #[error("cannot read {}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// RON/JSON syntax or schema error (unknown op kinds land here too).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The safetensors file is malformed.
    #[error("bad safetensors file: {0}")]
    Safetensors(String),
    /// A layer uses a tensor of the weights file whose element type is not F32 or F64.
    #[error("tensor `{name}`{hint} has element type {dtype}; only F32 and F64 tensors can be used (convert it with `.float()` before saving)")]
    TensorType {
        /// Tensor name.
        name: String,
        /// Its safetensors dtype (`I64`, `F16`, …).
        dtype: String,
        /// Where it was found (the weights file).
        hint: String,
    },
    /// The model has no layers.
    #[error("the model has no layers")]
    NoLayers,
    /// Two layers share a name.
    #[error("the name is used by more than one layer")]
    DuplicateName,
    /// A name is empty or reserved.
    #[error("`{0}` cannot be a layer name (empty, or the reserved name `input`)")]
    BadName(String),
    /// A layer names an input that does not exist.
    #[error("unknown input `{name}`; known: `input` and the layers {known}")]
    UnknownInput {
        /// The unknown name.
        name: String,
        /// Known names.
        known: String,
    },
    /// Wrong number of inputs.
    #[error("{op} takes {expected} input(s), got {found}")]
    InputCount {
        /// The op.
        op: &'static str,
        /// Expected count.
        expected: usize,
        /// Given count.
        found: usize,
    },
    /// The layers form a cycle.
    #[error("the layers form a cycle through {0}")]
    Cycle(String),
    /// A layer's result never reaches the output.
    #[error("the layer's result never reaches the output (the last layer `{output}`)")]
    Unreachable {
        /// The output layer.
        output: String,
    },
    /// Input shapes do not fit the operation.
    #[error("shape mismatch: {op} {expected}, but its input has shape {found:?}")]
    Shape {
        /// The op.
        op: &'static str,
        /// What the op needs.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A size is zero or absurdly large.
    #[error("{what} = {value} is outside the supported range {min}..={max}")]
    Size {
        /// The quantity.
        what: &'static str,
        /// Its value.
        value: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A number is not usable.
    #[error("{what} = {value} is not allowed: {why}")]
    Value {
        /// The quantity.
        what: &'static str,
        /// Its value.
        value: f64,
        /// Why.
        why: &'static str,
    },
    /// A tensor is missing.
    #[error("tensor `{name}` not found inline (`params`) or in the weights file{hint}")]
    MissingTensor {
        /// The tensor name looked up.
        name: String,
        /// A hint about where it was looked for.
        hint: String,
    },
    /// A tensor has the wrong size.
    #[error("tensor `{name}` has shape {found:?} ({found_len} values), expected {expected:?} ({expected_len} values)")]
    TensorShape {
        /// Tensor name.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// Number of values found.
        found_len: usize,
        /// Expected shape.
        expected: Vec<usize>,
        /// Expected number of values.
        expected_len: usize,
    },
    /// A weight is NaN or infinite.
    #[error("tensor `{name}` holds {value} at index {index}; weights must be finite")]
    NonFinite {
        /// Tensor name.
        name: String,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An op that is only allowed at the end appears elsewhere.
    #[error("{0} is only supported as the final layer")]
    NotFinal(&'static str),
    /// Polynomial degree too high.
    #[error("polynomial of degree {0}: only degree ≤ 2 is supported (the circuit squares, it does not multiply two ciphertexts)")]
    PolynomialDegree(usize),
    /// The number of class names does not match the outputs.
    #[error("{names} class names for {outputs} outputs")]
    Classes {
        /// Names given.
        names: usize,
        /// Output values.
        outputs: usize,
    },
}
