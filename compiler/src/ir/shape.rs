//! Shape rules of the IR ops, shared by the model loader and the verifier.

use super::Op;
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

/// The shapes an op is applied to, with the checks every rule shares.
struct Operands<'s> {
    /// The op's name, for messages.
    op: &'static str,
    /// Shapes of the inputs, in order.
    shapes: &'s [Vec<usize>],
}

impl<'s> Operands<'s> {
    /// Checks the number of inputs.
    fn count(&self, expected: usize) -> Result<(), ShapeError> {
        if self.shapes.len() == expected {
            Ok(())
        } else {
            Err(ShapeError::Count {
                op: self.op,
                expected,
                found: self.shapes.len(),
            })
        }
    }

    /// The only input's shape, after checking there is exactly one.
    fn single(&self) -> Result<&'s [usize], ShapeError> {
        self.count(1)?;
        Ok(&self.shapes[0])
    }

    fn mismatch(&self, expected: String, found: &[usize]) -> ShapeError {
        ShapeError::Mismatch {
            op: self.op,
            expected,
            found: found.to_vec(),
        }
    }
}

fn len(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The output shape of `op` on inputs of `shapes`; `own` is the node's declared shape, which
/// `Input`, `Reshape` and `Affine` take as given (after checking its size).
pub fn infer_shape(
    op: &Op,
    shapes: &[Vec<usize>],
    own: &[usize],
) -> Result<Vec<usize>, ShapeError> {
    let x = Operands {
        op: op.name(),
        shapes,
    };
    match op {
        Op::Input => {
            x.count(0)?;
            Ok(own.to_vec())
        }
        Op::Conv2d {
            weight,
            stride,
            padding,
            ..
        } => conv2d(&x, &weight.shape, *stride, padding),
        Op::Dense { weight, .. } => dense(&x, &weight.shape),
        Op::Reshape => reshape(&x, own),
        Op::Pool {
            kernel,
            stride,
            padding,
            ..
        } => pool(&x, *kernel, *stride, padding),
        Op::BatchNorm { scale, shift } => batch_norm(&x, scale.len(), shift.len()),
        Op::Scale(_)
        | Op::Dropout
        | Op::Activation(_)
        | Op::Polynomial(_)
        | Op::Square
        | Op::Softmax => Ok(x.single()?.to_vec()),
        Op::Add => add(&x),
        Op::Affine { matrix, bias } => affine(&x, matrix.rows, matrix.cols, bias.len(), own),
    }
}

/// `[C, H, W]` with weight `[O, C, kh, kw]` → `[O, Ho, Wo]`.
fn conv2d(
    x: &Operands<'_>,
    weight: &[usize],
    stride: (usize, usize),
    padding: &Padding,
) -> Result<Vec<usize>, ShapeError> {
    let input = x.single()?;
    if input.len() != 3 || weight.len() != 4 || weight[1] != input[0] {
        return Err(x.mismatch(
            format!(
                "with weight {weight:?} needs a [{}, H, W] input",
                weight.get(1).copied().unwrap_or(0)
            ),
            input,
        ));
    }
    let (ho, wo) = window_out(x.op, input, (weight[2], weight[3]), stride, padding)?;
    Ok(vec![weight[0], ho, wo])
}

/// Any shape with `in` values, weight `[out, in]` → `[out]`.
fn dense(x: &Operands<'_>, weight: &[usize]) -> Result<Vec<usize>, ShapeError> {
    let input = x.single()?;
    if weight.len() != 2 || weight[1] != len(input) {
        return Err(x.mismatch(
            format!(
                "with weight {weight:?} needs {} input values",
                weight.get(1).copied().unwrap_or(0)
            ),
            input,
        ));
    }
    Ok(vec![weight[0]])
}

/// Same number of values, the declared shape.
fn reshape(x: &Operands<'_>, own: &[usize]) -> Result<Vec<usize>, ShapeError> {
    let input = x.single()?;
    if len(input) != len(own) {
        return Err(x.mismatch(format!("to {own:?} needs {} values", len(own)), input));
    }
    Ok(own.to_vec())
}

/// `[C, H, W]` → `[C, Ho, Wo]`.
fn pool(
    x: &Operands<'_>,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: &Padding,
) -> Result<Vec<usize>, ShapeError> {
    let input = x.single()?;
    if input.len() != 3 {
        return Err(x.mismatch("needs a [C, H, W] input".into(), input));
    }
    let (ho, wo) = window_out(x.op, input, kernel, stride, padding)?;
    Ok(vec![input[0], ho, wo])
}

/// `[C, …]` with one scale and one shift per channel → the same shape.
fn batch_norm(x: &Operands<'_>, scales: usize, shifts: usize) -> Result<Vec<usize>, ShapeError> {
    let input = x.single()?;
    if input.is_empty() || input[0] != scales || scales != shifts {
        return Err(x.mismatch(
            format!("with {scales} channels needs a [{scales}, ...] input"),
            input,
        ));
    }
    Ok(input.to_vec())
}

/// Two inputs of one shape → that shape.
fn add(x: &Operands<'_>) -> Result<Vec<usize>, ShapeError> {
    x.count(2)?;
    let (a, b) = (&x.shapes[0], &x.shapes[1]);
    if a != b {
        return Err(x.mismatch(
            format!("needs two inputs of the same shape; the first is {a:?}"),
            b,
        ));
    }
    Ok(a.clone())
}

/// One or more inputs whose values together are the matrix's columns → the declared shape,
/// which has one value per row.
fn affine(
    x: &Operands<'_>,
    rows: usize,
    cols: usize,
    biases: usize,
    own: &[usize],
) -> Result<Vec<usize>, ShapeError> {
    if x.shapes.is_empty() {
        return Err(ShapeError::Count {
            op: x.op,
            expected: 1,
            found: 0,
        });
    }
    let lens: Vec<usize> = x.shapes.iter().map(|s| len(s)).collect();
    if lens.iter().sum::<usize>() != cols || rows != len(own) || biases != rows {
        return Err(x.mismatch(
            format!(
                "with a {rows}x{cols} matrix, {biases} biases and output {own:?} needs {cols} input values"
            ),
            &lens,
        ));
    }
    Ok(own.to_vec())
}
