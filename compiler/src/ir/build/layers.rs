//! One lowering per layer kind: checks a layer's fields and tensors against the shapes of its
//! inputs and returns the IR op with the shape the node declares (which `Reshape` and
//! `Flatten` set; every other op takes its input's and lets [`infer_shape`] decide).

use super::checker::Checker;
use super::{checked_len, MAX_WEIGHTS};
use crate::ir::{infer_shape, ActKind, Op, PoolKind};
use crate::model::{self, Activation, Layer, ModelError, ModelErrorKind, Padding, Tensor};

/// Largest number of convolution output channels.
const MAX_OUT_CHANNELS: usize = 65_536;
/// Largest number of dense output features.
const MAX_OUT_FEATURES: usize = 1 << 20;
/// Highest degree of a polynomial activation.
const MAX_POLYNOMIAL_DEGREE: usize = 2;

/// A layer about to become a node: the layer and the shapes of its inputs.
pub(super) struct Lowering<'l> {
    /// The layer.
    pub(super) layer: &'l Layer,
    /// Shapes of its inputs, in order.
    pub(super) shapes: &'l [Vec<usize>],
    /// Whether it is the model's output layer.
    pub(super) is_output: bool,
}

impl Lowering<'_> {
    fn name(&self) -> &str {
        &self.layer.name
    }

    /// The shape of the first input (empty when there is none).
    fn first(&self) -> Vec<usize> {
        self.shapes.first().cloned().unwrap_or_default()
    }
}

/// The IR op of a layer and the shape its node declares.
pub(super) fn lower(ck: &Checker<'_>, at: &Lowering<'_>) -> Result<(Op, Vec<usize>), ModelError> {
    let op = match &at.layer.op {
        model::Op::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            bias,
        } => conv2d(ck, at, *out_channels, *kernel, *stride, *padding, *bias)?,
        model::Op::Dense { out_features, bias } => dense(ck, at, *out_features, *bias)?,
        model::Op::Flatten => return Ok((Op::Reshape, vec![at.first().iter().product()])),
        model::Op::Reshape { shape } => return reshape(ck, at, shape),
        model::Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => pool(ck, at, PoolKind::Max, *kernel, *stride, *padding)?,
        model::Op::AvgPool2d {
            kernel,
            stride,
            padding,
        } => pool(ck, at, PoolKind::Avg, *kernel, *stride, *padding)?,
        model::Op::SumPool2d {
            kernel,
            stride,
            padding,
        } => pool(ck, at, PoolKind::Sum, *kernel, *stride, *padding)?,
        model::Op::BatchNorm { eps } => batch_norm(ck, at, *eps)?,
        model::Op::Dropout { p } => dropout(ck, at, *p)?,
        model::Op::Activation(a) => activation(ck, at, a)?,
        model::Op::Add => Op::Add,
        model::Op::Softmax => softmax(ck, at)?,
    };
    Ok((op, at.first()))
}

fn conv2d(
    ck: &Checker<'_>,
    at: &Lowering<'_>,
    out_channels: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: Padding,
    has_bias: bool,
) -> Result<Op, ModelError> {
    let name = at.name();
    ck.size(
        name,
        "out_channels",
        "out_channels",
        out_channels,
        1,
        MAX_OUT_CHANNELS,
    )?;
    ck.window(name, kernel, stride, &padding)?;
    let first = at.first();
    if first.len() != 3 {
        return Err(ck.err(
            name,
            ModelErrorKind::Shape {
                op: "Conv2d",
                expected: "needs a [C, H, W] input".into(),
                found: first,
            },
        ));
    }
    let wshape = vec![out_channels, first[0], kernel.0, kernel.1];
    let wlen = checked_len(&wshape).unwrap_or(usize::MAX);
    ck.size(name, "weight", "conv weights", wlen, 1, MAX_WEIGHTS)?;
    // Check the geometry before reading tensors so the message is about shapes.
    let probe = Op::Conv2d {
        weight: Tensor {
            shape: wshape.clone(),
            data: Vec::new(),
        },
        bias: Vec::new(),
        stride,
        padding,
    };
    infer_shape(&probe, at.shapes, &first).map_err(|e| ck.shape_err(name, e))?;
    let weight = ck.tensor(at.layer, "weight", &wshape)?;
    let bias = bias_or_zeros(ck, at.layer, has_bias, out_channels)?;
    Ok(Op::Conv2d {
        weight,
        bias,
        stride,
        padding,
    })
}

fn dense(
    ck: &Checker<'_>,
    at: &Lowering<'_>,
    out_features: usize,
    has_bias: bool,
) -> Result<Op, ModelError> {
    let name = at.name();
    ck.size(
        name,
        "out_features",
        "out_features",
        out_features,
        1,
        MAX_OUT_FEATURES,
    )?;
    let input_len: usize = at.first().iter().product();
    let wshape = vec![out_features, input_len];
    let wlen = checked_len(&wshape).unwrap_or(usize::MAX);
    ck.size(name, "weight", "dense weights", wlen, 1, MAX_WEIGHTS)?;
    let weight = ck.tensor(at.layer, "weight", &wshape)?;
    let bias = bias_or_zeros(ck, at.layer, has_bias, out_features)?;
    Ok(Op::Dense { weight, bias })
}

/// The layer's `bias` tensor of `len` values, or zeros when it declares none.
fn bias_or_zeros(
    ck: &Checker<'_>,
    layer: &Layer,
    has_bias: bool,
    len: usize,
) -> Result<Vec<f64>, ModelError> {
    if has_bias {
        Ok(ck.tensor(layer, "bias", &[len])?.data)
    } else {
        Ok(vec![0.0; len])
    }
}

fn reshape(
    ck: &Checker<'_>,
    at: &Lowering<'_>,
    shape: &[usize],
) -> Result<(Op, Vec<usize>), ModelError> {
    let first = at.first();
    let bad = |expected: String| {
        ck.err(
            at.name(),
            ModelErrorKind::Shape {
                op: "Reshape",
                expected,
                found: first.clone(),
            },
        )
    };
    if shape.is_empty() || shape.contains(&0) {
        return Err(bad(format!(
            "to {shape:?} needs a non-empty shape without zeros"
        )));
    }
    if checked_len(shape) != Some(first.iter().product()) {
        return Err(bad(format!("to {shape:?} needs the same number of values")));
    }
    Ok((Op::Reshape, shape.to_vec()))
}

fn pool(
    ck: &Checker<'_>,
    at: &Lowering<'_>,
    kind: PoolKind,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: Padding,
) -> Result<Op, ModelError> {
    ck.window(at.name(), kernel, stride, &padding)?;
    Ok(Op::Pool {
        kind,
        kernel,
        stride,
        padding,
    })
}

/// Folds the four per-channel tensors into one scale and shift per channel:
/// `y = (x − mean) · weight / √(var + eps) + bias`.
fn batch_norm(ck: &Checker<'_>, at: &Lowering<'_>, eps: f64) -> Result<Op, ModelError> {
    let name = at.name();
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(ck
            .err(
                name,
                ModelErrorKind::Value {
                    what: "eps",
                    value: eps,
                    why: "must be finite and ≥ 0",
                },
            )
            .with_field("eps"));
    }
    let c = at.first().first().copied().unwrap_or(0);
    let gamma = ck.tensor(at.layer, "weight", &[c])?.data;
    let beta = ck.tensor(at.layer, "bias", &[c])?.data;
    let mean = ck.tensor(at.layer, "running_mean", &[c])?.data;
    let var = ck.tensor(at.layer, "running_var", &[c])?.data;
    let mut scale = Vec::with_capacity(c);
    let mut shift = Vec::with_capacity(c);
    for k in 0..c {
        let d = var[k] + eps;
        if d.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(ck
                .err(
                    name,
                    ModelErrorKind::Value {
                        what: "running_var + eps",
                        value: d,
                        why: "must be positive",
                    },
                )
                .with_field("running_var"));
        }
        let s = gamma[k] / d.sqrt();
        scale.push(s);
        shift.push(beta[k] - mean[k] * s);
    }
    Ok(Op::BatchNorm { scale, shift })
}

fn dropout(ck: &Checker<'_>, at: &Lowering<'_>, p: f64) -> Result<Op, ModelError> {
    if !(0.0..1.0).contains(&p) {
        return Err(ck
            .err(
                at.name(),
                ModelErrorKind::Value {
                    what: "p",
                    value: p,
                    why: "must be in [0, 1)",
                },
            )
            .with_field("p"));
    }
    Ok(Op::Dropout)
}

fn activation(ck: &Checker<'_>, at: &Lowering<'_>, a: &Activation) -> Result<Op, ModelError> {
    Ok(match a {
        Activation::Relu => Op::Activation(ActKind::Relu),
        Activation::Sigmoid => Op::Activation(ActKind::Sigmoid),
        Activation::Tanh => Op::Activation(ActKind::Tanh),
        Activation::Gelu => Op::Activation(ActKind::Gelu),
        Activation::Square => Op::Square,
        Activation::Polynomial(c) => polynomial(ck, at, c)?,
    })
}

/// A polynomial activation with trailing zero coefficients dropped (degree ≤ 2).
fn polynomial(ck: &Checker<'_>, at: &Lowering<'_>, coefficients: &[f64]) -> Result<Op, ModelError> {
    let name = at.name();
    if let Some(&bad) = coefficients.iter().find(|v| !v.is_finite()) {
        return Err(ck
            .err(
                name,
                ModelErrorKind::Value {
                    what: "polynomial coefficient",
                    value: bad,
                    why: "must be finite",
                },
            )
            .with_field("op"));
    }
    let mut c = coefficients.to_vec();
    while c.len() > 1 && c.last() == Some(&0.0) {
        c.pop();
    }
    if c.is_empty() {
        c.push(0.0);
    }
    if c.len() > MAX_POLYNOMIAL_DEGREE + 1 {
        return Err(ck
            .err(name, ModelErrorKind::PolynomialDegree(c.len() - 1))
            .with_field("op"));
    }
    Ok(Op::Polynomial(c))
}

fn softmax(ck: &Checker<'_>, at: &Lowering<'_>) -> Result<Op, ModelError> {
    if !at.is_output {
        return Err(ck
            .err(at.name(), ModelErrorKind::NotFinal("Softmax"))
            .with_field("op"));
    }
    Ok(Op::Softmax)
}
