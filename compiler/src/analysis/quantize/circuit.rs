//! The integer circuit the quantiser produces: nodes in topological order with their integer
//! operation, per-value scales and depth, and a floating-point evaluator for calibration and
//! accuracy checks.

use crate::ir::NodeId;
use veil_runtime::plan::IntMatrix;

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
}

/// The integer circuit: nodes in topological order, node 0 the input.
#[derive(Clone, Debug, PartialEq)]
pub struct QCircuit {
    /// Nodes, topologically ordered; node 0 is the input.
    pub nodes: Vec<QNode>,
    /// Index of the output node.
    pub output: usize,
    /// Integer input = round(raw · input_scale).
    pub input_scale: f64,
    /// Integer range of the input values.
    pub input_range: (i64, i64),
    /// For each input value, the flattened index of the raw input it carries.
    pub features: Vec<usize>,
    /// Raw input length.
    pub raw_len: usize,
    /// Scale of the output values (uniform).
    pub output_scale: f64,
}

impl QCircuit {
    /// Multiplicative depth of the circuit.
    pub fn depth(&self) -> u32 {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// Integer input values for one raw input (C, H, W order).
    pub fn encode_input(&self, raw: &[f64]) -> Vec<i64> {
        let (lo, hi) = self.input_range;
        self.features
            .iter()
            .map(|&f| {
                let v = raw.get(f).copied().unwrap_or(0.0) * self.input_scale;
                (v.round() as i64).clamp(lo, hi)
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
