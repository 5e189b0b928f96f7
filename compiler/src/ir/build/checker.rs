//! The loaded model seen from the border: range checks on a layer's sizes and the lookup of
//! its tensors, each failure an error that names the file, the layer and the field.

use super::MAX_WINDOW;
use crate::ir::shape::ShapeError;
use crate::model::{Layer, LoadedModel, ModelError, ModelErrorKind, Padding, Tensor};

/// The model being built, with the checks every layer kind shares.
pub(super) struct Checker<'a> {
    pub(super) loaded: &'a LoadedModel,
}

impl Checker<'_> {
    /// An error about layer `layer`.
    pub(super) fn err(&self, layer: &str, kind: ModelErrorKind) -> ModelError {
        ModelError::layer(&self.loaded.path, layer, kind)
    }

    /// An error about the file as a whole.
    pub(super) fn file_err(&self, kind: ModelErrorKind) -> ModelError {
        ModelError::file(&self.loaded.path, kind)
    }

    /// A shape rule broken by layer `layer`, as a model error.
    pub(super) fn shape_err(&self, layer: &str, e: ShapeError) -> ModelError {
        let kind = match e {
            ShapeError::Mismatch {
                op,
                expected,
                found,
            } => ModelErrorKind::Shape {
                op,
                expected,
                found,
            },
            ShapeError::Count {
                op,
                expected,
                found,
            } => ModelErrorKind::InputCount {
                op,
                expected,
                found,
            },
        };
        self.err(layer, kind)
    }

    /// Checks that `value` (field `field` of layer `layer`) lies in `min..=max`.
    pub(super) fn size(
        &self,
        layer: &str,
        field: &str,
        what: &'static str,
        value: usize,
        min: usize,
        max: usize,
    ) -> Result<(), ModelError> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(self
                .err(
                    layer,
                    ModelErrorKind::Size {
                        what,
                        value,
                        min,
                        max,
                    },
                )
                .with_field(field))
        }
    }

    /// Checks a window's kernel and stride against [`MAX_WINDOW`], and its padding against
    /// the kernel.
    pub(super) fn window(
        &self,
        layer: &str,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: &Padding,
    ) -> Result<(), ModelError> {
        self.size(layer, "kernel", "kernel height", kernel.0, 1, MAX_WINDOW)?;
        self.size(layer, "kernel", "kernel width", kernel.1, 1, MAX_WINDOW)?;
        self.size(layer, "stride", "stride height", stride.0, 1, MAX_WINDOW)?;
        self.size(layer, "stride", "stride width", stride.1, 1, MAX_WINDOW)?;
        // Padding of a kernel's size or more only adds output positions that read nothing but
        // zeros (a few bytes of model could otherwise ask for millions of values).
        for (v, k, what) in [
            (
                padding.top,
                kernel.0,
                "padding top (below the kernel height)",
            ),
            (
                padding.left,
                kernel.1,
                "padding left (below the kernel width)",
            ),
            (
                padding.bottom,
                kernel.0,
                "padding bottom (below the kernel height)",
            ),
            (
                padding.right,
                kernel.1,
                "padding right (below the kernel width)",
            ),
        ] {
            self.size(layer, "padding", what, v, 0, k - 1)?;
        }
        Ok(())
    }

    /// Looks up `<layer>.<name>` inline or in the weights file and checks its shape and values.
    /// A tensor the weights file holds in an unsupported element type is an error only here,
    /// where a layer needs it.
    pub(super) fn tensor(
        &self,
        layer: &Layer,
        name: &str,
        shape: &[usize],
    ) -> Result<Tensor, ModelError> {
        let tensor = match layer.params.get(name) {
            Some(data) => self.inline_tensor(layer, name, data, shape)?,
            None => self.file_tensor(&layer.name, name, shape)?,
        };
        let full = format!("{}.{name}", layer.name);
        if let Some((index, &value)) = tensor.data.iter().enumerate().find(|(_, v)| !v.is_finite())
        {
            return Err(self
                .err(
                    &layer.name,
                    ModelErrorKind::NonFinite {
                        name: full,
                        index,
                        value,
                    },
                )
                .with_field(name));
        }
        Ok(tensor)
    }

    /// A tensor written in the layer's `params`: a flat list of the right length.
    fn inline_tensor(
        &self,
        layer: &Layer,
        name: &str,
        data: &[f64],
        shape: &[usize],
    ) -> Result<Tensor, ModelError> {
        let expected_len: usize = shape.iter().product();
        if data.len() != expected_len {
            return Err(self
                .err(
                    &layer.name,
                    ModelErrorKind::TensorShape {
                        name: format!("{}.{name}", layer.name),
                        found: vec![data.len()],
                        found_len: data.len(),
                        expected: shape.to_vec(),
                        expected_len,
                    },
                )
                .with_field(&format!("params.{name}")));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: data.to_vec(),
        })
    }

    /// A tensor of the weights file, which must have exactly the expected shape.
    fn file_tensor(&self, layer: &str, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let full = format!("{layer}.{name}");
        let weights = self.loaded.model.weights.as_deref();
        if let Some(t) = self.loaded.tensors.tensors.get(&full) {
            let expected_len: usize = shape.iter().product();
            if t.shape != shape || t.data.len() != expected_len {
                return Err(self
                    .err(
                        layer,
                        ModelErrorKind::TensorShape {
                            name: full,
                            found: t.shape.clone(),
                            found_len: t.data.len(),
                            expected: shape.to_vec(),
                            expected_len,
                        },
                    )
                    .with_field(name));
            }
            return Ok(t.clone());
        }
        let kind = if let Some(dtype) = self.loaded.tensors.skipped.get(&full) {
            ModelErrorKind::TensorType {
                name: full,
                dtype: dtype.clone(),
                hint: weights.map_or_else(String::new, |w| format!(" in the weights file `{w}`")),
            }
        } else {
            ModelErrorKind::MissingTensor {
                name: full,
                hint: weights.map_or_else(
                    || " (the model names no weights file)".into(),
                    |w| format!(" `{w}`"),
                ),
            }
        };
        Err(self.err(layer, kind).with_field(name))
    }
}
