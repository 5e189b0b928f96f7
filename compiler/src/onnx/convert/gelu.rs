//! GELU as PyTorch exports `nn.GELU` before opset 20: five nodes computing
//! `x · 0.5 · (1 + erf(x / √2))`. The nodes are followed step by step (each partial value is a
//! [`Val::Gelu`]) and the last one becomes one `Activation(Gelu)` layer reading `x`, which the
//! compiler replaces like ReLU or tanh. Accepted forms: `x / √2` or `x · (1/√2)` into `Erf`,
//! `+ 1` in either order, then `(x · (1 + erf)) · 0.5` or `x · ((1 + erf) · 0.5)`. A partial
//! value read by anything else, and any other use of `Erf`, is refused.

use super::{Act, Const, Converter, NodeProto, Val};
use crate::model::{Activation, Op};
use crate::onnx::OnnxError;
use std::f64::consts::SQRT_2;

/// What a partial GELU value holds, in terms of its input `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// `x / √2`.
    Scaled,
    /// `erf(x / √2)`.
    Erf,
    /// `1 + erf(x / √2)`.
    OnePlusErf,
    /// `0.5 · (1 + erf(x / √2))`.
    HalfOnePlusErf,
    /// `x · (1 + erf(x / √2))`.
    XOnePlusErf,
}

/// A partial GELU: `stage` of input `x`.
#[derive(Clone, Debug)]
pub(super) struct Part {
    pub(super) x: Act,
    pub(super) stage: Stage,
}

/// What a `Div` or `Mul` node is to the pattern.
enum Step {
    /// A new partial value.
    Part(Part),
    /// The last step: the `Gelu` layer is pushed.
    Done,
    /// Not part of a GELU.
    NotMine,
}

/// Why a partial GELU value cannot be read by another operator.
pub(super) const PART_READ: &str = "reads part of a GELU (x · 0.5 · (1 + erf(x / √2)), as \
    torch exports nn.GELU) from outside the pattern; only the whole GELU is supported (or the \
    Gelu operator of opset 20)";

/// `v` equals `want` to float32 precision.
fn near(v: f64, want: f64) -> bool {
    (v - want).abs() <= 1e-6 * want.abs()
}

fn same(a: &Act, x: &Act) -> bool {
    a.layer == x.layer && a.pad.is_none() && a.shape == x.shape
}

impl Converter<'_> {
    /// Input `i` of `n` when it is a one-value constant.
    fn scalar_input(&self, n: &NodeProto, i: usize) -> Option<f64> {
        match self.values.get(n.input.get(i)?)? {
            Val::Const(c) => Const::scalar(c),
            _ => None,
        }
    }

    fn part_input(&self, n: &NodeProto, i: usize) -> Option<Part> {
        match self.values.get(n.input.get(i)?)? {
            Val::Gelu(p) => Some(p.clone()),
            _ => None,
        }
    }

    fn act_input(&self, n: &NodeProto, i: usize) -> Option<Act> {
        match self.values.get(n.input.get(i)?)? {
            Val::Act(a) => Some(a.clone()),
            _ => None,
        }
    }

    /// Takes node `n` when it is a step of the GELU pattern (`Ok(true)`); `Ok(false)` leaves it
    /// to the ordinary operator.
    pub(super) fn gelu_step(&mut self, n: &NodeProto) -> Result<bool, OnnxError> {
        if n.input.len() > 2 {
            return Ok(false);
        }
        let next = match n.op_type.as_str() {
            "Erf" => match self.part_input(n, 0) {
                Some(Part {
                    x,
                    stage: Stage::Scaled,
                }) => Part {
                    x,
                    stage: Stage::Erf,
                },
                _ => {
                    return Err(self.node_err(
                        n,
                        "Erf is supported only inside GELU, x · 0.5 · (1 + erf(x / √2)) (how \
                         torch exports nn.GELU), which is replaced like ReLU when compiled; an \
                         encrypted circuit computes additions and multiplications only",
                    ))
                }
            },
            "Div" | "Mul" => match self.mul_step(n) {
                Step::Part(p) => p,
                Step::Done => return Ok(true),
                Step::NotMine => return Ok(false),
            },
            "Add" => {
                let step = (0..2).find_map(|i| {
                    let p = self.part_input(n, i)?;
                    (p.stage == Stage::Erf && self.scalar_input(n, 1 - i) == Some(1.0)).then_some(
                        Part {
                            x: p.x,
                            stage: Stage::OnePlusErf,
                        },
                    )
                });
                match step {
                    Some(p) => p,
                    None => return Ok(false),
                }
            }
            _ => return Ok(false),
        };
        self.set_output(n, Val::Gelu(next));
        Ok(true)
    }

    /// The GELU step a `Div` or `Mul` makes; the last one pushes the `Gelu` layer.
    fn mul_step(&mut self, n: &NodeProto) -> Step {
        self.try_mul_step(n).unwrap_or(Step::NotMine)
    }

    fn try_mul_step(&mut self, n: &NodeProto) -> Option<Step> {
        let div = n.op_type == "Div";
        // The start: x / √2 or x · (1/√2), read only by an Erf.
        let out = n.output.first()?;
        if self.erf_inputs.contains(out) && self.uses.get(out) == Some(&1) {
            let x = self
                .act_input(n, 0)
                .or_else(|| (!div).then(|| self.act_input(n, 1)).flatten())?;
            let ci = if div || self.act_input(n, 0).is_some() {
                1
            } else {
                0
            };
            let c = self.scalar_input(n, ci)?;
            let ok = if div {
                near(c, SQRT_2)
            } else {
                near(c, 1.0 / SQRT_2)
            };
            return (ok && x.pad.is_none()).then_some(Step::Part(Part {
                x,
                stage: Stage::Scaled,
            }));
        }
        if div {
            return None;
        }
        let (p, other) = (0..2).find_map(|i| Some((self.part_input(n, i)?, 1 - i)))?;
        let half = self.scalar_input(n, other) == Some(0.5);
        let times_x = self.act_input(n, other).is_some_and(|a| same(&a, &p.x));
        let stage = match (p.stage, half, times_x) {
            (Stage::OnePlusErf, true, _) => Stage::HalfOnePlusErf,
            (Stage::OnePlusErf, _, true) => Stage::XOnePlusErf,
            (Stage::HalfOnePlusErf, _, true) | (Stage::XOnePlusErf, true, _) => {
                let shape = p.x.shape.clone();
                self.push(n, Op::Activation(Activation::Gelu), &[&p.x], shape, vec![]);
                return Some(Step::Done);
            }
            _ => return None,
        };
        Some(Step::Part(Part { x: p.x, stage }))
    }
}
