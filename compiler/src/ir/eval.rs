//! A float interpreter of the IR: the reference every pass is tested against and the "float
//! accuracy" of reports.

use super::{ActKind, Graph, Op, PoolKind};
use crate::model::Padding;
use petgraph::visit::NodeIndexable;
use thiserror::Error;

/// The input does not fit the graph.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("the model takes {expected} input values, got {found}")]
pub struct EvalError {
    /// Values expected.
    pub expected: usize,
    /// Values given.
    pub found: usize,
}

fn window(
    x: &[f64],
    shape: &[usize],
    kernel: (usize, usize),
    stride: (usize, usize),
    pad: &Padding,
    out: &[usize],
    mut f: impl FnMut(usize, &mut dyn Iterator<Item = Option<f64>>) -> f64,
) -> Vec<f64> {
    let (c, h, w) = (shape[0], shape[1], shape[2]);
    let (ho, wo) = (out[1], out[2]);
    let mut result = Vec::with_capacity(c * ho * wo);
    for ch in 0..c {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut it = (0..kernel.0)
                    .flat_map(|i| (0..kernel.1).map(move |j| (i, j)))
                    .map(|(i, j)| {
                        let y = (oy * stride.0 + i).checked_sub(pad.top).filter(|&y| y < h);
                        let xx = (ox * stride.1 + j)
                            .checked_sub(pad.left)
                            .filter(|&xx| xx < w);
                        match (y, xx) {
                            (Some(y), Some(xx)) => Some(x[(ch * h + y) * w + xx]),
                            _ => None,
                        }
                    });
                result.push(f(ch, &mut it));
            }
        }
    }
    result
}

/// Evaluates one op on its (flattened) inputs.
pub fn eval_op(
    op: &Op,
    inputs: &[&[f64]],
    in_shapes: &[Vec<usize>],
    out_shape: &[usize],
) -> Vec<f64> {
    let x = inputs.first().copied().unwrap_or(&[]);
    match op {
        Op::Input => Vec::new(),
        Op::Conv2d {
            weight,
            bias,
            stride,
            padding,
        } => {
            let s = &in_shapes[0];
            let (c, h, w) = (s[0], s[1], s[2]);
            let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3]);
            let (ho, wo) = (out_shape[1], out_shape[2]);
            let mut out = vec![0.0; o * ho * wo];
            for oc in 0..o {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = bias[oc];
                        for ic in 0..c {
                            for i in 0..kh {
                                let Some(y) = (oy * stride.0 + i)
                                    .checked_sub(padding.top)
                                    .filter(|&y| y < h)
                                else {
                                    continue;
                                };
                                for j in 0..kw {
                                    let Some(xx) = (ox * stride.1 + j)
                                        .checked_sub(padding.left)
                                        .filter(|&v| v < w)
                                    else {
                                        continue;
                                    };
                                    acc += weight.data[((oc * c + ic) * kh + i) * kw + j]
                                        * x[(ic * h + y) * w + xx];
                                }
                            }
                        }
                        out[(oc * ho + oy) * wo + ox] = acc;
                    }
                }
            }
            out
        }
        Op::Dense { weight, bias } => {
            let cols = weight.shape[1];
            (0..weight.shape[0])
                .map(|r| {
                    bias[r]
                        + weight.data[r * cols..(r + 1) * cols]
                            .iter()
                            .zip(x)
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                })
                .collect()
        }
        Op::Reshape | Op::Dropout => x.to_vec(),
        Op::Pool {
            kind,
            kernel,
            stride,
            padding,
        } => {
            let area = (kernel.0 * kernel.1) as f64;
            window(
                x,
                &in_shapes[0],
                *kernel,
                *stride,
                padding,
                out_shape,
                |_, it| match kind {
                    PoolKind::Sum => it.flatten().sum(),
                    PoolKind::Avg => it.flatten().sum::<f64>() / area,
                    PoolKind::Max => it.flatten().fold(f64::NEG_INFINITY, f64::max),
                },
            )
        }
        Op::BatchNorm { scale, shift } => {
            let per = x.len() / scale.len().max(1);
            x.iter()
                .enumerate()
                .map(|(i, v)| v * scale[i / per.max(1)] + shift[i / per.max(1)])
                .collect()
        }
        Op::Scale(f) => x.iter().map(|v| v * f).collect(),
        Op::Activation(ActKind::Relu) => x.iter().map(|v| v.max(0.0)).collect(),
        Op::Activation(ActKind::Sigmoid) => x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
        Op::Activation(ActKind::Tanh) => x.iter().map(|v| v.tanh()).collect(),
        Op::Activation(ActKind::Gelu) => x
            .iter()
            .map(|v| 0.5 * v * (1.0 + erf(v * std::f64::consts::FRAC_1_SQRT_2)))
            .collect(),
        Op::Polynomial(c) => x
            .iter()
            .map(|v| c.iter().rev().fold(0.0, |acc, k| acc * v + k))
            .collect(),
        Op::Square => x.iter().map(|v| v * v).collect(),
        Op::Add => x
            .iter()
            .zip(inputs.get(1).copied().unwrap_or(&[]))
            .map(|(a, b)| a + b)
            .collect(),
        Op::Softmax => {
            let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
        Op::Affine { matrix, bias } => {
            let cat: Vec<f64> = inputs.iter().flat_map(|i| i.iter().copied()).collect();
            matrix
                .mul_vec(&cat)
                .iter()
                .zip(bias)
                .map(|(a, b)| a + b)
                .collect()
        }
    }
}

/// Evaluates the graph on one flattened input (C, H, W order); returns the output values.
pub fn evaluate(g: &Graph, input: &[f64]) -> Result<Vec<f64>, EvalError> {
    let mut values = evaluate_all(g, input)?;
    Ok(std::mem::take(&mut values[g.output.index()]))
}

/// Evaluates the graph on one flattened input; returns the values of every node, indexed by
/// node id (empty for an id no node holds).
pub fn evaluate_all(g: &Graph, input: &[f64]) -> Result<Vec<Vec<f64>>, EvalError> {
    let expected = g.node(g.input).len();
    if input.len() != expected {
        return Err(EvalError {
            expected,
            found: input.len(),
        });
    }
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); g.graph.node_bound()];
    for n in g.topo() {
        let node = g.node(n);
        let v = if n == g.input {
            input.to_vec()
        } else {
            let ins = g.inputs(n);
            let shapes: Vec<Vec<usize>> = ins.iter().map(|&i| g.node(i).shape.clone()).collect();
            let refs: Vec<&[f64]> = ins.iter().map(|&i| values[i.index()].as_slice()).collect();
            eval_op(&node.op, &refs, &shapes, &node.shape)
        };
        values[n.index()] = v;
    }
    Ok(values)
}

/// The error function, to within 1.5 × 10⁻⁷ (Abramowitz and Stegun, Handbook of Mathematical
/// Functions, formula 7.1.26); ample for a float reference compared at 10⁻⁴.
pub fn erf(x: f64) -> f64 {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = A.iter().rev().fold(0.0, |acc, a| acc * t + a) * t;
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 {
        -y
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_matches_tabulated_values() {
        // erf at 0, 0.5, 1, 2, 3 (values to 10 digits from the standard tables).
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
            (3.0, 0.999_977_909_5),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 2e-7, "erf is odd");
        }
    }
}
