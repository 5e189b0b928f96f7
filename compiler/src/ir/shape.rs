//! Shape rules of the IR ops, shared by the model loader and the verifier.

use super::{Op, PoolKind};
use crate::model::Padding;
use thiserror::Error;

/// Inputs whose shapes do not fit an op.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ShapeError {
    /// The op needs a different shape.
    #[error("{op} {expected}, but its input has shape {found:?}")]
    Mismatch {
        /// The op.
        op: &'static str,
        /// What it needs.
        expected: String,
        /// What it got.
        found: Vec<usize>,
    },
    /// Wrong number of inputs.
    #[error("{op} takes {expected} input(s), got {found}")]
    Count {
        /// The op.
        op: &'static str,
        /// Expected.
        expected: usize,
        /// Found.
        found: usize,
    },
}

fn window_out(
    op: &'static str,
    input: &[usize],
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: &Padding,
) -> Result<(usize, usize), ShapeError> {
    let h = input[1] + padding.top + padding.bottom;
    let w = input[2] + padding.left + padding.right;
    if kernel.0 == 0
        || kernel.1 == 0
        || stride.0 == 0
        || stride.1 == 0
        || kernel.0 > h
        || kernel.1 > w
    {
        return Err(ShapeError::Mismatch {
            op,
            expected: format!(
                "with kernel {}x{}, stride {}x{} needs a padded input of at least {}x{} (padding {},{},{},{})",
                kernel.0, kernel.1, stride.0, stride.1, kernel.0, kernel.1, padding.top, padding.left, padding.bottom, padding.right
            ),
            found: input.to_vec(),
        });
    }
    Ok(((h - kernel.0) / stride.0 + 1, (w - kernel.1) / stride.1 + 1))
}

/// The output shape of `op` on inputs of `shapes`; `own` is the node's declared shape, which
/// `Input`, `Reshape` and `Affine` take as given (after checking its size).
pub fn infer_shape(
    op: &Op,
    shapes: &[Vec<usize>],
    own: &[usize],
) -> Result<Vec<usize>, ShapeError> {
    let name = op.name();
    let count = |expected: usize| -> Result<(), ShapeError> {
        if shapes.len() == expected {
            Ok(())
        } else {
            Err(ShapeError::Count {
                op: name,
                expected,
                found: shapes.len(),
            })
        }
    };
    let len = |s: &[usize]| s.iter().product::<usize>();
    let mismatch = |expected: String, found: &[usize]| ShapeError::Mismatch {
        op: name,
        expected,
        found: found.to_vec(),
    };
    match op {
        Op::Input => {
            count(0)?;
            Ok(own.to_vec())
        }
        Op::Conv2d {
            weight,
            stride,
            padding,
            ..
        } => {
            count(1)?;
            let x = &shapes[0];
            if x.len() != 3 || weight.shape.len() != 4 || weight.shape[1] != x[0] {
                return Err(mismatch(
                    format!(
                        "with weight {:?} needs a [{}, H, W] input",
                        weight.shape,
                        weight.shape.get(1).copied().unwrap_or(0)
                    ),
                    x,
                ));
            }
            let (ho, wo) = window_out(
                name,
                x,
                (weight.shape[2], weight.shape[3]),
                *stride,
                padding,
            )?;
            Ok(vec![weight.shape[0], ho, wo])
        }
        Op::Dense { weight, .. } => {
            count(1)?;
            let x = &shapes[0];
            if weight.shape.len() != 2 || weight.shape[1] != len(x) {
                return Err(mismatch(
                    format!(
                        "with weight {:?} needs {} input values",
                        weight.shape,
                        weight.shape.get(1).copied().unwrap_or(0)
                    ),
                    x,
                ));
            }
            Ok(vec![weight.shape[0]])
        }
        Op::Reshape => {
            count(1)?;
            if len(&shapes[0]) != len(own) {
                return Err(mismatch(
                    format!("to {own:?} needs {} values", len(own)),
                    &shapes[0],
                ));
            }
            Ok(own.to_vec())
        }
        Op::Pool {
            kind,
            kernel,
            stride,
            padding,
        } => {
            count(1)?;
            let x = &shapes[0];
            if x.len() != 3 {
                return Err(mismatch("needs a [C, H, W] input".into(), x));
            }
            let _ = kind == &PoolKind::Max;
            let (ho, wo) = window_out(name, x, *kernel, *stride, padding)?;
            Ok(vec![x[0], ho, wo])
        }
        Op::BatchNorm { scale, shift } => {
            count(1)?;
            let x = &shapes[0];
            if x.is_empty() || x[0] != scale.len() || scale.len() != shift.len() {
                return Err(mismatch(
                    format!(
                        "with {} channels needs a [{}, ...] input",
                        scale.len(),
                        scale.len()
                    ),
                    x,
                ));
            }
            Ok(x.clone())
        }
        Op::Scale(_)
        | Op::Dropout
        | Op::Activation(_)
        | Op::Polynomial(_)
        | Op::Square
        | Op::Softmax => {
            count(1)?;
            Ok(shapes[0].clone())
        }
        Op::Add => {
            count(2)?;
            if shapes[0] != shapes[1] {
                return Err(mismatch(
                    format!(
                        "needs two inputs of the same shape; the first is {:?}",
                        shapes[0]
                    ),
                    &shapes[1],
                ));
            }
            Ok(shapes[0].clone())
        }
        Op::Affine { matrix, bias } => {
            if shapes.is_empty() {
                return Err(ShapeError::Count {
                    op: name,
                    expected: 1,
                    found: 0,
                });
            }
            let cols: usize = shapes.iter().map(|s| len(s)).sum();
            if cols != matrix.cols || matrix.rows != len(own) || bias.len() != matrix.rows {
                let all: Vec<usize> = shapes.iter().map(|s| len(s)).collect();
                return Err(mismatch(
                    format!(
                        "with a {}x{} matrix, {} biases and output {own:?} needs {} input values",
                        matrix.rows,
                        matrix.cols,
                        bias.len(),
                        matrix.cols
                    ),
                    &all,
                ));
            }
            Ok(own.to_vec())
        }
    }
}
