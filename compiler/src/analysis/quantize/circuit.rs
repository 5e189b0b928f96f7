//! The integer circuit the quantiser produces: nodes in topological order with their integer
//! operation, per-value scales and depth, and a floating-point evaluator for calibration and
//! accuracy checks.
//!
//! The circuit carries the runtime's [`InputEncoding`], the one the plan will hold, so raw
//! values become integers by the same rule here (calibration, accuracy checks) as in every
//! client of the plan.

use crate::ir::NodeId;
use veil_runtime::plan::{InputEncoding, IntMatrix};

/// An operation of the integer circuit.
#[derive(Clone, Debug, PartialEq)]
pub enum QOp {
    /// The encrypted input.
    Input,
    /// Elementwise square of node `input`.
    Square {
        /// Index of the squared node.
        input: usize,
    },
    /// `matrix · concat(inputs) + bias`.
    Linear {
        /// Indices of the nodes read.
        inputs: Vec<usize>,
        /// Integer weights.
        matrix: IntMatrix,
        /// Integer biases.
        bias: Vec<i128>,
    },
}

/// A node of the integer circuit (side table entry keyed by the IR node id).
#[derive(Clone, Debug, PartialEq)]
pub struct QNode {
    /// The IR node.
    pub id: NodeId,
    /// Layer name(s).
    pub name: String,
    /// Number of values.
    pub len: usize,
    /// The operation.
    pub op: QOp,
    /// Scale of each value.
    pub scales: Vec<f64>,
    /// Multiplicative depth.
    pub depth: u32,
    /// Bits of the largest integer weight of each row (sign included); 0 for the input and
    /// squares, which have no weights.
    pub weight_bits: u32,
}

/// The integer circuit: nodes in topological order, node 0 the input.
#[derive(Clone, Debug, PartialEq)]
pub struct QCircuit {
    /// Nodes, topologically ordered; node 0 is the input.
    pub nodes: Vec<QNode>,
    /// Index of the output node.
    pub output: usize,
    /// How raw inputs become the integers of node 0: the encoding the plan carries (scale,
    /// declared range, and the raw positions kept as `features`).
    pub input: InputEncoding,
    /// Scale of the output values (uniform).
    pub output_scale: f64,
}

impl QCircuit {
    /// Multiplicative depth of the circuit.
    pub fn depth(&self) -> u32 {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// The integers the declared raw range maps to: every encoded input lies between them.
    pub fn input_range(&self) -> (i64, i64) {
        let (lo, _) = self.input.encode_value(self.input.raw_min);
        let (hi, _) = self.input.encode_value(self.input.raw_max);
        (lo, hi)
    }

    /// Integer input values for one raw input (C, H, W order) by the plan's rule
    /// ([`InputEncoding::encode_value`]: clamped to the declared range, then scaled and
    /// rounded). Values must be finite; a position beyond `raw` reads as 0.
    pub fn encode_input(&self, raw: &[f64]) -> Vec<i64> {
        self.input
            .features
            .iter()
            .map(|&f| {
                self.input
                    .encode_value(raw.get(f).copied().unwrap_or(0.0))
                    .0
            })
            .collect()
    }

    /// Evaluates the integer circuit in floating point (exact while values stay below 2^53;
    /// used for calibration and accuracy checks, where relative precision is what matters).
    pub fn eval_f64(&self, raw: &[f64]) -> Vec<Vec<f64>> {
        let mut values: Vec<Vec<f64>> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let v = match &node.op {
                QOp::Input => self.encode_input(raw).iter().map(|&x| x as f64).collect(),
                QOp::Square { input } => values[*input].iter().map(|x| x * x).collect(),
                QOp::Linear {
                    inputs,
                    matrix,
                    bias,
                } => {
                    let cat: Vec<f64> = inputs
                        .iter()
                        .flat_map(|&i| values[i].iter().copied())
                        .collect();
                    (0..matrix.rows)
                        .map(|r| {
                            bias[r] as f64
                                + matrix.row(r).map(|(c, w)| w as f64 * cat[c]).sum::<f64>()
                        })
                        .collect()
                }
            };
            values.push(v);
        }
        values
    }

    /// The dequantised output scores (integer / output scale) for one raw input.
    pub fn scores(&self, raw: &[f64]) -> Vec<f64> {
        let values = self.eval_f64(raw);
        values[self.output]
            .iter()
            .map(|v| v / self.output_scale)
            .collect()
    }
}
