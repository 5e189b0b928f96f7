//! Quantisation: integer weights and per-value scales for the lowered IR.
//!
//! After the passes the graph holds only `input`, `square` and `affine` nodes. Every value
//! carries a scale `s` (integer ≈ real · s):
//!
//! - input: `s_in` from the declared range: 1 when the bounds are integers and already span at
//!   least `input_bits − 1` bits (pixel bytes 0..255), otherwise `(2^input_bits − 1) / max|raw|`;
//!   raw values become integers by the runtime's rule
//!   ([`veil_runtime::plan::InputEncoding::encode`]: clamped to the declared range, then
//!   `round(raw · s_in)`), which the circuit carries as [`QCircuit::input`];
//! - square: `s²` (exact: the square of an integer needs no rounding);
//! - affine row `r`: the real weight per integer unit of column `j` is `u = w / s_j`; the row
//!   scale is `s_r = (2^(B−1) − 1) / max_j |u_rj|` so the largest integer weight of the row
//!   uses the `B = weight_bits` budget. When the row reads several registers (a polynomial's
//!   `x²` and `x`, a residual add), the maximum is taken per register and the row scale is set
//!   by the register with the smallest one, so every term keeps at least B bits and all terms
//!   share the row's scale. B is one number for every layer, or, with
//!   [`QuantOptions::error_target`], chosen per layer: the fewest bits whose worst-row weight
//!   error ([`LayerError::worst_row_error`]) is at most the target. Either way the integers
//!   are what the bounds, parameters and plan are computed from, so the plan stays exact; integer weights `round(u · s_r)`, integer bias
//!   `round(b · s_r)` (exact, i128). The output node uses one scale for all rows (the
//!   smallest row scale) so the class scores are comparable.
//!
//! Input values no integer weight reads are dropped from the circuit (`features`). Each node's
//! multiplicative depth comes from [`super::depth`].

mod affine;
mod circuit;
mod error;
mod features;

pub use circuit::{QCircuit, QNode, QOp};
pub use error::{
    measure_output_errors, weight_errors, LayerError, DEFAULT_ERROR_TARGET, MAX_WEIGHT_ERROR,
};

use super::depth;
use crate::ir::{Graph, NodeId, Op, SparseMatrix};
use affine::Columns;
use std::collections::BTreeMap;
use thiserror::Error;
use veil_runtime::plan::InputEncoding;

/// Quantisation settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantOptions {
    /// Bits of the largest integer weight of a row, sign included (2..=32).
    pub weight_bits: u32,
    /// Bits of the integer input when the declared range is not small integers (2..=24).
    pub input_bits: u32,
    /// When set, `weight_bits` is ignored: each layer gets the fewest bits (2..=32) whose
    /// worst-row relative weight error is at most this (a fraction, e.g. 0.01).
    pub error_target: Option<f64>,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            weight_bits: crate::DEFAULT_WEIGHT_BITS,
            input_bits: crate::DEFAULT_INPUT_BITS,
            error_target: None,
        }
    }
}

/// Why quantisation failed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum QuantError {
    /// An option is out of range.
    #[error("{what} = {value} is outside {min}..={max}")]
    Option {
        /// The option.
        what: &'static str,
        /// Its value.
        value: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A node survived lowering that the circuit cannot run.
    #[error("node `{node}`: {op} cannot be compiled (the passes should have lowered it)")]
    NotLowered {
        /// Node name.
        node: String,
        /// Its op.
        op: &'static str,
    },
    /// Integers outgrow what a plan holds (i128 biases, i64 weights).
    #[error("no parameter set holds this circuit: with depth {depth}, layer `{node}` needs integers of about {bits:.0} bits, but plan biases hold at most {} bits (and exact decryption recombines at most {} bits); reduce the depth or --weight-bits", affine::BIAS_LIMIT_BITS, veil_runtime::plan::MAX_PLAIN_MODULUS_BITS)]
    TooDeep {
        /// Node name.
        node: String,
        /// Depth of the circuit.
        depth: u32,
        /// log2 of the integer that did not fit.
        bits: f64,
    },
    /// No integer weight reads the input, so every output is the same for every input: the
    /// model's weights into the input (or their fused product) are zero.
    #[error("{}: the output does not depend on the input: every weight that reads the input is zero after quantisation, so the plan would give every input the same scores; check the weights of {}", layer_list(.layers), if .layers.len() == 1 { "that layer" } else { "those layers" })]
    InputUnused {
        /// The layers (fused names joined with `+`) that read the input.
        layers: Vec<String>,
    },
    /// The per-layer error target is not a fraction between 0 and 1.
    #[error("weight error target {target} is not between 0 and 1 (exclusive); give a percentage such as 1 (%)")]
    Target {
        /// The target.
        target: f64,
    },
    /// Scales or integers overflow.
    #[error("layer `{node}`: {what} does not fit in {bits} bits (scale {scale:e}); use fewer weight bits")]
    Overflow {
        /// Node name.
        node: String,
        /// What overflowed.
        what: &'static str,
        /// The limit.
        bits: u32,
        /// The scale at the time.
        scale: f64,
    },
}

/// The layers for a message: "layer `a`", or "layers `a`, `b`".
fn layer_list(layers: &[String]) -> String {
    let names: Vec<String> = layers.iter().map(|l| format!("`{l}`")).collect();
    let noun = if names.len() == 1 { "layer" } else { "layers" };
    format!("{noun} {}", names.join(", "))
}

/// The scale of the integer input: 1 when the declared bounds are integers that already span
/// at least `input_bits − 1` bits, otherwise `(2^input_bits − 1) / max|bound|`.
fn input_scale(lo: f64, hi: f64, input_bits: u32) -> f64 {
    let m = lo.abs().max(hi.abs());
    if m == 0.0 {
        return 1.0;
    }
    let integral = lo.fract() == 0.0 && hi.fract() == 0.0;
    if integral && m >= 2f64.powi(input_bits as i32 - 1) {
        1.0
    } else {
        (2f64.powi(input_bits as i32) - 1.0) / m
    }
}

/// Fewest and most weight bits of a row.
const MIN_WEIGHT_BITS: u32 = 2;
const MAX_WEIGHT_BITS: u32 = 32;

fn check_options(opts: &QuantOptions) -> Result<(), QuantError> {
    if let Some(t) = opts.error_target {
        if !(t.is_finite() && t > 0.0 && t < 1.0) {
            return Err(QuantError::Target { target: t });
        }
    }
    if !(MIN_WEIGHT_BITS..=MAX_WEIGHT_BITS).contains(&opts.weight_bits) {
        return Err(QuantError::Option {
            what: "weight bits",
            value: opts.weight_bits,
            min: MIN_WEIGHT_BITS,
            max: MAX_WEIGHT_BITS,
        });
    }
    if !(2..=24).contains(&opts.input_bits) {
        return Err(QuantError::Option {
            what: "input bits",
            value: opts.input_bits,
            min: 2,
            max: 24,
        });
    }
    Ok(())
}

/// The circuit while it is being built: its nodes and the IR node each one came from.
struct Builder<'g> {
    graph: &'g Graph,
    /// Weight bits of every layer, or the per-layer error target that chooses them.
    weight_bits: u32,
    error_target: Option<f64>,
    /// Depth of every IR node, and the circuit's.
    depth_of: BTreeMap<NodeId, u32>,
    total_depth: u32,
    nodes: Vec<QNode>,
    index: BTreeMap<NodeId, usize>,
}

impl Builder<'_> {
    /// Appends the circuit node of IR node `n`.
    fn push(&mut self, n: NodeId, op: QOp, scales: Vec<f64>, weight_bits: u32) {
        let node = self.graph.node(n);
        self.index.insert(n, self.nodes.len());
        self.nodes.push(QNode {
            id: n,
            name: node.name.clone(),
            len: node.len(),
            op,
            scales,
            depth: self.depth_of.get(&n).copied().unwrap_or(0),
            weight_bits,
        });
    }

    /// The circuit indices of the nodes IR node `n` reads.
    fn inputs(&self, n: NodeId) -> Vec<usize> {
        self.graph
            .inputs(n)
            .iter()
            .filter_map(|i| self.index.get(i).copied())
            .collect()
    }

    /// The circuit operation, scales and weight bits of IR node `n`.
    fn lower(&self, n: NodeId) -> Result<(QOp, Vec<f64>, u32), QuantError> {
        let node = self.graph.node(n);
        match &node.op {
            Op::Square => self.square(n).map(|(op, scales)| (op, scales, 0)),
            Op::Affine { matrix, bias } => self.affine(n, matrix, bias),
            other => Err(QuantError::NotLowered {
                node: node.name.clone(),
                op: other.name(),
            }),
        }
    }

    /// A square: the scales square too (the square of an integer needs no rounding).
    fn square(&self, n: NodeId) -> Result<(QOp, Vec<f64>), QuantError> {
        let i = self.inputs(n).first().copied().unwrap_or(0);
        let scales: Vec<f64> = self.nodes[i].scales.iter().map(|s| s * s).collect();
        if let Some(&s) = scales.iter().find(|s| !s.is_finite() || **s > 1e200) {
            return Err(self.too_deep(n, s.log2()));
        }
        Ok((QOp::Square { input: i }, scales))
    }

    /// An affine map: the weight bits, row scales, then integer weights and biases.
    fn affine(
        &self,
        n: NodeId,
        matrix: &SparseMatrix,
        bias: &[f64],
    ) -> Result<(QOp, Vec<f64>, u32), QuantError> {
        let inputs = self.inputs(n);
        let columns = Columns {
            scales: inputs
                .iter()
                .flat_map(|&i| self.nodes[i].scales.iter().copied())
                .collect(),
            block: inputs
                .iter()
                .enumerate()
                .flat_map(|(b, &i)| std::iter::repeat_n(b, self.nodes[i].len))
                .collect(),
            blocks: inputs.len(),
        };
        let is_output = n == self.graph.output;
        let row_scales =
            |bits: u32| affine::row_scales(matrix, bias, &columns, affine::qmax(bits), is_output);
        let (bits, scales) = match self.error_target {
            None => (self.weight_bits, row_scales(self.weight_bits)),
            Some(target) => {
                let mut choice = (MAX_WEIGHT_BITS, row_scales(MAX_WEIGHT_BITS));
                for bits in MIN_WEIGHT_BITS..MAX_WEIGHT_BITS {
                    let scales = row_scales(bits);
                    if error::worst_row_error(matrix, &columns.scales, &scales) <= target {
                        choice = (bits, scales);
                        break;
                    }
                }
                choice
            }
        };
        let name = &self.graph.node(n).name;
        let (matrix, bias) =
            affine::integer_rows(name, matrix, bias, &columns.scales, &scales, |b| {
                self.too_deep(n, b)
            })?;
        Ok((
            QOp::Linear {
                inputs,
                matrix,
                bias,
            },
            scales,
            bits,
        ))
    }

    fn too_deep(&self, n: NodeId, bits: f64) -> QuantError {
        QuantError::TooDeep {
            node: self.graph.node(n).name.clone(),
            depth: self.total_depth,
            bits,
        }
    }
}

/// Quantises a lowered graph (only input, square and affine nodes).
pub fn quantize(g: &Graph, opts: &QuantOptions) -> Result<QCircuit, QuantError> {
    check_options(opts)?;
    let depth_of = depth::depths(g);
    let mut b = Builder {
        graph: g,
        weight_bits: opts.weight_bits,
        error_target: opts.error_target,
        total_depth: depth::max_depth(&depth_of),
        depth_of,
        nodes: Vec::new(),
        index: BTreeMap::new(),
    };
    let (lo, hi) = g.input_range;
    let s_in = input_scale(lo, hi, opts.input_bits);
    let raw_len = g.node(g.input).len();
    // The input first, whatever its position in the order.
    b.push(g.input, QOp::Input, vec![s_in; raw_len], 0);
    for n in g.topo() {
        if n != g.input {
            let (op, scales, bits) = b.lower(n)?;
            b.push(n, op, scales, bits);
        }
    }
    let output = b.index.get(&g.output).copied().unwrap_or(0);
    let mut nodes = b.nodes;
    let features = features::used_features(&nodes, raw_len, output == 0);
    if features.is_empty() {
        return Err(QuantError::InputUnused {
            layers: features::input_readers(&nodes),
        });
    }
    if features.len() < raw_len {
        features::keep_only(&mut nodes, raw_len, &features);
        nodes[0].len = features.len();
        nodes[0].scales = vec![s_in; features.len()];
    }
    let output_scale = nodes[output].scales.first().copied().unwrap_or(1.0);
    let max_abs = (lo * s_in).round().abs().max((hi * s_in).round().abs());
    Ok(QCircuit {
        nodes,
        output,
        input: InputEncoding {
            register: 0,
            shape: g.node(g.input).shape.clone(),
            raw_min: lo,
            raw_max: hi,
            scale: s_in,
            max_abs: max_abs as i64,
            features,
        },
        output_scale,
    })
}

#[cfg(test)]
mod tests;
