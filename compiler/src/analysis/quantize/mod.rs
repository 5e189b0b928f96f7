//! Quantisation: integer weights and per-value scales for the lowered IR.
//!
//! After the passes the graph holds only `input`, `square` and `affine` nodes. Every value
//! carries a scale `s` (integer ≈ real · s):
//!
//! - input: `s_in` from the declared range: 1 when the bounds are integers and already span at
//!   least `input_bits − 1` bits (pixel bytes 0..255), otherwise `(2^input_bits − 1) / max|raw|`;
//!   integer input `round(raw · s_in)`;
//! - square: `s²` (exact: the square of an integer needs no rounding);
//! - affine row `r`: the real weight per integer unit of column `j` is `u = w / s_j`; the row
//!   scale is `s_r = (2^(B−1) − 1) / max_j |u_rj|` so the largest integer weight of the row
//!   uses the `B = weight_bits` budget. When the row reads several registers (a polynomial's
//!   `x²` and `x`, a residual add), the maximum is taken per register and the row scale is set
//!   by the register with the smallest one, so every term keeps at least B bits and all terms
//!   share the row's scale; integer weights `round(u · s_r)`, integer bias
//!   `round(b · s_r)` (exact, i128). The output node uses one scale for all rows (the
//!   smallest row scale) so the class scores are comparable.
//!
//! Input values no integer weight reads are dropped from the circuit (`features`). Each node's
//! multiplicative depth comes from [`super::depth`].

use super::depth;
use crate::ir::{Graph, NodeId, Op};
use std::collections::BTreeMap;
use thiserror::Error;
use veil_runtime::plan::IntMatrix;

/// Quantisation settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantOptions {
    /// Bits of the largest integer weight of a row, sign included (2..=32).
    pub weight_bits: u32,
    /// Bits of the integer input when the declared range is not small integers (2..=24).
    pub input_bits: u32,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            weight_bits: 8,
            input_bits: 8,
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
    #[error("no parameter set holds this circuit: with depth {depth}, layer `{node}` needs integers of about {bits:.0} bits, but plan biases hold at most 126 bits (and at most 8 plaintext primes of at most 60 bits could hold the values); reduce the depth or --weight-bits")]
    TooDeep {
        /// Node name.
        node: String,
        /// Depth of the circuit.
        depth: u32,
        /// log2 of the integer that did not fit.
        bits: f64,
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

/// Quantises a lowered graph (only input, square and affine nodes).
pub fn quantize(g: &Graph, opts: &QuantOptions) -> Result<QCircuit, QuantError> {
    if !(2..=32).contains(&opts.weight_bits) {
        return Err(QuantError::Option {
            what: "weight bits",
            value: opts.weight_bits,
            min: 2,
            max: 32,
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
    let qmax = f64::from((1u32 << (opts.weight_bits - 1)) - 1).max(1.0);
    let order = g.topo();
    let depth_of = depth::depths(g);
    let total_depth = depth::max_depth(&depth_of);
    let mut index: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut nodes: Vec<QNode> = Vec::with_capacity(order.len());
    let (lo, hi) = g.input_range;
    let s_in = input_scale(lo, hi, opts.input_bits);
    let raw_len = g.node(g.input).len();
    let input_range = ((lo * s_in).round() as i64, (hi * s_in).round() as i64);
    // The input first, whatever its position in the order.
    index.insert(g.input, 0);
    nodes.push(QNode {
        id: g.input,
        name: g.node(g.input).name.clone(),
        len: raw_len,
        op: QOp::Input,
        scales: vec![s_in; raw_len],
        depth: 0,
    });
    for &n in &order {
        if n == g.input {
            continue;
        }
        let node = g.node(n);
        let inputs: Vec<usize> = g
            .inputs(n)
            .iter()
            .filter_map(|i| index.get(i).copied())
            .collect();
        let depth = depth_of.get(&n).copied().unwrap_or(0);
        let (op, scales) = match &node.op {
            Op::Square => {
                let i = inputs.first().copied().unwrap_or(0);
                let scales: Vec<f64> = nodes[i].scales.iter().map(|s| s * s).collect();
                if let Some(&s) = scales.iter().find(|s| !s.is_finite() || **s > 1e200) {
                    return Err(QuantError::TooDeep {
                        node: node.name.clone(),
                        depth: total_depth,
                        bits: s.log2(),
                    });
                }
                (QOp::Square { input: i }, scales)
            }
            Op::Affine { matrix, bias } => {
                let col_scales: Vec<f64> = inputs
                    .iter()
                    .flat_map(|&i| nodes[i].scales.iter().copied())
                    .collect();
                // Column → input block, so that every block of a row (e.g. x² and x of a
                // polynomial) keeps at least `weight_bits` bits: the row scale comes from the
                // block whose largest real weight per integer unit is smallest.
                let mut block_of = Vec::with_capacity(col_scales.len());
                for (b, &i) in inputs.iter().enumerate() {
                    block_of.extend(std::iter::repeat_n(b, nodes[i].len));
                }
                let mut row_scale: Vec<Option<f64>> = (0..matrix.rows)
                    .map(|r| {
                        let mut per_block = vec![0.0f64; inputs.len()];
                        for (c, w) in matrix.row(r) {
                            let b = block_of.get(c).copied().unwrap_or(0);
                            per_block[b] = per_block[b].max((w / col_scales[c]).abs());
                        }
                        let m = per_block
                            .iter()
                            .copied()
                            .filter(|&m| m > 0.0)
                            .fold(f64::INFINITY, f64::min);
                        m.is_finite().then(|| qmax / m)
                    })
                    .collect();
                let known: Vec<f64> = row_scale.iter().flatten().copied().collect();
                let fallback = known.iter().copied().fold(f64::NAN, f64::max);
                let is_output = n == g.output;
                let uniform = known.iter().copied().fold(f64::INFINITY, f64::min);
                for (r, s) in row_scale.iter_mut().enumerate() {
                    let chosen = if is_output && uniform.is_finite() {
                        uniform
                    } else if let Some(s) = s {
                        *s
                    } else if fallback.is_finite() {
                        fallback
                    } else {
                        let b = bias[r].abs();
                        if b > 0.0 {
                            qmax / b
                        } else {
                            1.0
                        }
                    };
                    *s = Some(chosen);
                }
                let scales: Vec<f64> = row_scale.into_iter().map(|s| s.unwrap_or(1.0)).collect();
                let mut row_ptr = vec![0usize];
                let mut col_idx = Vec::new();
                let mut values = Vec::new();
                let mut ibias = Vec::with_capacity(matrix.rows);
                for r in 0..matrix.rows {
                    for (c, w) in matrix.row(r) {
                        let q = (w / col_scales[c] * scales[r]).round();
                        if !q.is_finite() || q.abs() >= 2f64.powi(62) {
                            return Err(QuantError::Overflow {
                                node: node.name.clone(),
                                what: "an integer weight",
                                bits: 62,
                                scale: scales[r],
                            });
                        }
                        if q != 0.0 {
                            col_idx.push(c as u32);
                            values.push(q as i64);
                        }
                    }
                    row_ptr.push(values.len());
                    let b = (bias[r] * scales[r]).round();
                    if !b.is_finite() || b.abs() >= 2f64.powi(126) {
                        return Err(QuantError::TooDeep {
                            node: node.name.clone(),
                            depth: total_depth,
                            bits: b.abs().log2(),
                        });
                    }
                    ibias.push(b as i128);
                }
                let m = IntMatrix {
                    rows: matrix.rows,
                    cols: matrix.cols,
                    row_ptr,
                    col_idx,
                    values,
                };
                (
                    QOp::Linear {
                        inputs,
                        matrix: m,
                        bias: ibias,
                    },
                    scales,
                )
            }
            other => {
                return Err(QuantError::NotLowered {
                    node: node.name.clone(),
                    op: other.name(),
                })
            }
        };
        index.insert(n, nodes.len());
        nodes.push(QNode {
            id: n,
            name: node.name.clone(),
            len: node.len(),
            op,
            scales,
            depth,
        });
    }
    // Drop input values nothing reads.
    let mut used = vec![false; raw_len];
    for node in &nodes {
        match &node.op {
            QOp::Square { input: 0 } => used.iter_mut().for_each(|u| *u = true),
            QOp::Linear { inputs, matrix, .. } => {
                let mut offset = 0;
                for &i in inputs {
                    if i == 0 {
                        for &c in &matrix.col_idx {
                            let c = c as usize;
                            if (offset..offset + raw_len).contains(&c) {
                                used[c - offset] = true;
                            }
                        }
                    }
                    offset += nodes[i].len;
                }
            }
            _ => {}
        }
    }
    if index.get(&g.output) == Some(&0) {
        used.iter_mut().for_each(|u| *u = true);
    }
    let features: Vec<usize> = (0..raw_len).filter(|&i| used[i]).collect();
    if features.len() < raw_len {
        let mut new_index = vec![usize::MAX; raw_len];
        for (k, &f) in features.iter().enumerate() {
            new_index[f] = k;
        }
        let lens: Vec<usize> = nodes.iter().map(|n| n.len).collect();
        for node in &mut nodes {
            if let QOp::Linear { inputs, matrix, .. } = &mut node.op {
                // Column remap: input-0 blocks shrink to the kept features.
                let mut map = Vec::with_capacity(matrix.cols);
                let mut new_offset = 0;
                for &i in inputs.iter() {
                    if i == 0 {
                        map.extend((0..raw_len).map(|c| {
                            if new_index[c] == usize::MAX {
                                usize::MAX
                            } else {
                                new_offset + new_index[c]
                            }
                        }));
                        new_offset += features.len();
                    } else {
                        map.extend((0..lens[i]).map(|c| new_offset + c));
                        new_offset += lens[i];
                    }
                }
                for c in &mut matrix.col_idx {
                    *c = map[*c as usize] as u32;
                }
                matrix.cols = new_offset;
            }
        }
        nodes[0].len = features.len();
        nodes[0].scales = vec![s_in; features.len()];
    }
    let output = index.get(&g.output).copied().unwrap_or(0);
    let output_scale = nodes[output].scales.first().copied().unwrap_or(1.0);
    Ok(QCircuit {
        nodes,
        output,
        input_scale: s_in,
        input_range,
        features,
        raw_len,
        output_scale,
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests stop on failure"
    )]

    use super::*;
    use crate::analysis::depth;
    use crate::ir::build::build;
    use crate::model::{self, TensorSource};
    use crate::passes::PassManager;
    use crate::testing::{chain, chain_model};
    use std::path::Path;

    fn lower(mut g: Graph) -> Graph {
        PassManager::standard().run(&mut g).unwrap();
        g
    }

    fn circuit(shape: &[usize], specs: &[&str], opts: &QuantOptions) -> (Graph, QCircuit) {
        let g = lower(chain(shape, specs));
        let c = quantize(&g, opts).unwrap();
        (g, c)
    }

    /// Largest |integer weight| of row `r` over the columns `cols`.
    fn row_max(m: &IntMatrix, r: usize, cols: std::ops::Range<usize>) -> i64 {
        m.row(r)
            .filter(|(c, _)| cols.contains(c))
            .map(|(_, w)| w.abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn the_input_scale_rule() {
        // Integer bounds that already span input_bits − 1 bits stay as they are.
        assert_eq!(input_scale(0.0, 255.0, 8), 1.0);
        assert_eq!(input_scale(-128.0, 127.0, 8), 1.0);
        // Otherwise the largest |bound| maps to 2^input_bits − 1.
        assert_eq!(input_scale(0.0, 255.0, 9), 511.0 / 255.0);
        assert_eq!(input_scale(0.0, 10.0, 8), 25.5);
        assert_eq!(input_scale(-1.0, 1.0, 8), 255.0);
        assert_eq!(input_scale(-0.5, 0.25, 4), 30.0);
        assert_eq!(input_scale(0.5, 200.0, 8), 255.0 / 200.0);
        assert_eq!(input_scale(0.0, 0.0, 8), 1.0);
        // In the circuit: the chain models take raw values in [-1, 1].
        let (_, c) = circuit(&[4], &["dense:2"], &QuantOptions::default());
        assert_eq!(c.input_scale, 255.0);
        assert_eq!(c.input_range, (-255, 255));
        assert_eq!(c.nodes[0].scales, vec![255.0; 4]);
        assert_eq!(
            c.encode_input(&[1.0, -1.0, 0.5, 0.0]),
            vec![255, -255, 128, 0]
        );
        // Values outside the declared range are clamped to it.
        assert_eq!(c.encode_input(&[3.0, -3.0, 0.0, 0.0])[..2], [255, -255]);
    }

    #[test]
    fn squares_square_the_scales_and_add_one_depth() {
        let (g, c) = circuit(
            &[6],
            &["dense:5", "square", "dense:4", "square", "dense:3"],
            &QuantOptions::default(),
        );
        let depth_of = depth::depths(&g);
        let mut squares = 0;
        for node in &c.nodes {
            assert_eq!(node.depth, depth_of[&node.id], "{}", node.name);
            if let QOp::Square { input } = node.op {
                squares += 1;
                let src = &c.nodes[input];
                let want: Vec<f64> = src.scales.iter().map(|s| s * s).collect();
                assert_eq!(node.scales, want, "{}", node.name);
                assert_eq!(node.depth, src.depth + 1);
            }
        }
        assert_eq!(squares, 2);
        assert_eq!(c.depth(), 2);
    }

    #[test]
    fn every_row_uses_the_weight_budget() {
        for bits in [4u32, 8, 12] {
            let opts = QuantOptions {
                weight_bits: bits,
                ..QuantOptions::default()
            };
            let qmax = (1i64 << (bits - 1)) - 1;
            let (_, c) = circuit(&[6], &["dense:5", "square", "dense:3"], &opts);
            for (i, node) in c.nodes.iter().enumerate() {
                let QOp::Linear { matrix, .. } = &node.op else {
                    continue;
                };
                let maxima: Vec<i64> = (0..matrix.rows)
                    .map(|r| row_max(matrix, r, 0..matrix.cols))
                    .collect();
                if i == c.output {
                    // One scale for all class scores: the row that needs the smallest sets it.
                    assert!(node.scales.iter().all(|&s| s == c.output_scale));
                    assert!(maxima.iter().all(|&m| m <= qmax), "{maxima:?}");
                    assert!(maxima.contains(&qmax), "{maxima:?}");
                } else {
                    assert!(maxima.iter().all(|&m| m == qmax), "{bits}: {maxima:?}");
                }
            }
        }
    }

    #[test]
    fn integer_weights_round_the_scaled_real_weights() {
        let g = lower(chain(&[6], &["dense:4", "square", "dense:3"]));
        let c = quantize(&g, &QuantOptions::default()).unwrap();
        for node in &c.nodes {
            let QOp::Linear {
                inputs,
                matrix,
                bias,
            } = &node.op
            else {
                continue;
            };
            let Op::Affine {
                matrix: real,
                bias: real_bias,
            } = &g.node(node.id).op
            else {
                panic!("{} is not affine", node.name);
            };
            let col_scales: Vec<f64> = inputs
                .iter()
                .flat_map(|&i| c.nodes[i].scales.clone())
                .collect();
            for r in 0..real.rows {
                let s = node.scales[r];
                let ints: BTreeMap<usize, i64> = matrix.row(r).collect();
                for (col, w) in real.row(r) {
                    let exact = w / col_scales[col] * s;
                    let q = ints.get(&col).copied().unwrap_or(0) as f64;
                    assert!((q - exact).abs() <= 0.5, "{q} vs {exact}");
                }
                assert!((bias[r] as f64 - real_bias[r] * s).abs() <= 0.5);
            }
        }
        // And so the dequantised scores follow the float model.
        let x = [0.3, -0.7, 1.0, 0.0, -0.2, 0.9];
        let want = crate::ir::eval::evaluate(&g, &x).unwrap();
        let got = c.scores(&x);
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 0.05 * scale, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn a_row_over_several_registers_keeps_the_budget_in_each() {
        // A polynomial activation reads x² and x: both blocks of every row keep ≥ B bits (the
        // map after it is not the output, whose rows share one scale).
        let (_, c) = circuit(
            &[4],
            &[
                "dense:3",
                "poly:0.1:0.5:0.25",
                "dense:3",
                "square",
                "dense:2",
            ],
            &QuantOptions::default(),
        );
        let node = c
            .nodes
            .iter()
            .enumerate()
            .find(|(i, n)| {
                *i != c.output && matches!(&n.op, QOp::Linear { inputs, .. } if inputs.len() == 2)
            })
            .map(|(_, n)| n)
            .expect("the polynomial's map reads x² and x");
        let QOp::Linear { inputs, matrix, .. } = &node.op else {
            unreachable!()
        };
        let split = c.nodes[inputs[0]].len;
        for r in 0..matrix.rows {
            let a = row_max(matrix, r, 0..split);
            let b = row_max(matrix, r, split..matrix.cols);
            assert_eq!(a.min(b), 127, "row {r}: {a} and {b}");
        }
    }

    #[test]
    fn unread_input_values_are_dropped() {
        let mut m = chain_model(&[4], &["dense:2"]);
        // Column 1 has no weight in either row.
        m.layers[0].params.insert(
            "weight".into(),
            vec![0.5, 0.0, -0.25, 0.125, 0.25, 0.0, 0.5, -0.5],
        );
        let g = build(&model::from_parts(
            Path::new("m.ron"),
            m,
            TensorSource::default(),
        ))
        .unwrap();
        let c = quantize(&lower(g), &QuantOptions::default()).unwrap();
        assert_eq!(c.features, vec![0, 2, 3]);
        assert_eq!(c.raw_len, 4);
        assert_eq!(c.nodes[0].len, 3);
        let QOp::Linear { matrix, .. } = &c.nodes[c.output].op else {
            panic!("the output is linear");
        };
        assert_eq!(matrix.cols, 3);
        assert_eq!(c.encode_input(&[1.0, 0.9, -1.0, 0.0]), vec![255, -255, 0]);
    }

    #[test]
    fn bad_options_and_unlowered_graphs_are_refused() {
        let g = lower(chain(&[4], &["dense:2"]));
        for (weight_bits, input_bits, what) in [
            (1, 8, "weight bits"),
            (33, 8, "weight bits"),
            (8, 1, "input bits"),
            (8, 25, "input bits"),
        ] {
            let err = quantize(
                &g,
                &QuantOptions {
                    weight_bits,
                    input_bits,
                },
            )
            .unwrap_err();
            assert!(
                matches!(err, QuantError::Option { what: w, .. } if w == what),
                "{err}"
            );
        }
        let raw = chain(&[1, 4, 4], &["conv:2:3:1", "flatten", "dense:2"]);
        let err = quantize(&raw, &QuantOptions::default()).unwrap_err();
        assert_eq!(
            err,
            QuantError::NotLowered {
                node: "l0".into(),
                op: "conv2d",
            }
        );
    }
}
