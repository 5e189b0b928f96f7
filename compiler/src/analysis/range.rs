//! Range analysis: a guaranteed bound on |value| of every integer of the circuit over the
//! declared input range (interval arithmetic per value), and optionally a calibrated bound.
//!
//! Per value an interval `[lo, hi]`: the input `[round(min · s), round(max · s)]`; an affine
//! row `b + Σ_j min/max(w_j · lo_j, w_j · hi_j)`; a square `[0 or min(lo², hi²), max(lo², hi²)]`.
//! Intervals are kept in `f64` and widened by a relative 2^-40 at each step, which covers the
//! rounding of sums of up to millions of terms, so the bound stays guaranteed.

use super::quantize::{QCircuit, QOp};

const WIDEN: f64 = 1.0 + 1.0 / (1u64 << 40) as f64;

/// Bounds of one node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRange {
    /// Interval of each value.
    pub intervals: Vec<(f64, f64)>,
    /// Largest |value| over the node.
    pub max_abs: f64,
    /// Calibrated bound (largest observed |value| times the margin), when calibrated.
    pub calibrated: Option<f64>,
}

impl NodeRange {
    /// log2 of the guaranteed bound (0 for a zero bound).
    pub fn bits(&self) -> f64 {
        bits(self.max_abs)
    }

    /// The bound used to choose the plaintext modulus: calibrated when present.
    pub fn effective(&self) -> f64 {
        self.calibrated
            .map_or(self.max_abs, |c| c.min(self.max_abs))
    }
}

/// log2 of a bound, 0 for bounds below 1; rounded up by 10^-9 so that `2^bits ≥ v` holds in
/// floating point too.
pub fn bits(v: f64) -> f64 {
    if v <= 1.0 {
        0.0
    } else {
        v.log2() + 1e-9
    }
}

/// Guaranteed interval bounds of every node.
pub fn analyze(c: &QCircuit) -> Vec<NodeRange> {
    let mut out: Vec<NodeRange> = Vec::with_capacity(c.nodes.len());
    for node in &c.nodes {
        let intervals: Vec<(f64, f64)> = match &node.op {
            QOp::Input => {
                let (lo, hi) = c.input_range();
                vec![(lo as f64, hi as f64); node.len]
            }
            QOp::Square { input } => out[*input]
                .intervals
                .iter()
                .map(|&(lo, hi)| {
                    let (a, b) = (lo * lo, hi * hi);
                    let top = a.max(b) * WIDEN;
                    if lo <= 0.0 && hi >= 0.0 {
                        (0.0, top)
                    } else {
                        (a.min(b) / WIDEN, top)
                    }
                })
                .collect(),
            QOp::Linear {
                inputs,
                matrix,
                bias,
            } => {
                let cat: Vec<(f64, f64)> = inputs
                    .iter()
                    .flat_map(|&i| out[i].intervals.iter().copied())
                    .collect();
                (0..matrix.rows)
                    .map(|r| {
                        let b = bias[r] as f64;
                        let (mut lo, mut hi) = (b, b);
                        for (col, w) in matrix.row(r) {
                            let w = w as f64;
                            let (a, z) = cat[col];
                            let (p, q) = (w * a, w * z);
                            lo += p.min(q);
                            hi += p.max(q);
                        }
                        let slack = (lo.abs().max(hi.abs())) * (WIDEN - 1.0);
                        (lo - slack, hi + slack)
                    })
                    .collect()
            }
        };
        let max_abs = intervals
            .iter()
            .map(|&(lo, hi)| lo.abs().max(hi.abs()))
            .fold(0.0, f64::max);
        out.push(NodeRange {
            intervals,
            max_abs,
            calibrated: None,
        });
    }
    out
}

/// Adds calibrated bounds: the largest |value| each node takes on `samples` (raw inputs),
/// times `2^margin_bits`, never above the guaranteed bound.
pub fn calibrate(c: &QCircuit, ranges: &mut [NodeRange], samples: &[Vec<f64>], margin_bits: f64) {
    let mut observed = vec![0.0f64; c.nodes.len()];
    for raw in samples {
        for (k, v) in c.eval_f64(raw).iter().enumerate() {
            observed[k] = v.iter().fold(observed[k], |m, x| m.max(x.abs()));
        }
    }
    let factor = 2f64.powf(margin_bits);
    for (r, o) in ranges.iter_mut().zip(observed) {
        r.calibrated = Some((o * factor).max(1.0).min(r.max_abs.max(1.0)));
    }
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
    use crate::analysis::quantize::QNode;
    use crate::ir::NodeId;
    use proptest::prelude::*;
    use veil_runtime::plan::{InputEncoding, IntMatrix};

    /// How one random node is built: `(kind, sources, rows, seed)`; kind 0 = square, else a
    /// linear map reading one or two earlier nodes.
    type NodeSpec = (u8, (usize, usize), usize, u64);

    fn dense(rows: usize, cols: usize, seed: u64, max_w: i64) -> IntMatrix {
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut m = IntMatrix {
            rows,
            cols,
            row_ptr: vec![0],
            col_idx: Vec::new(),
            values: Vec::new(),
        };
        for _ in 0..rows {
            for c in 0..cols {
                let w = (next() % (2 * max_w as u64 + 1)) as i64 - max_w;
                if w != 0 {
                    m.col_idx.push(c as u32);
                    m.values.push(w);
                }
            }
            m.row_ptr.push(m.values.len());
        }
        m
    }

    /// A random circuit: an input of `width` values in `range`, then `specs` nodes.
    fn circuit(width: usize, range: (i64, i64), specs: &[NodeSpec]) -> QCircuit {
        let node = |i: usize, len: usize, op: QOp| QNode {
            id: NodeId::new(i),
            name: format!("n{i}"),
            len,
            op,
            scales: vec![1.0; len],
            depth: 0,
            weight_bits: 0,
        };
        let mut nodes = vec![node(0, width, QOp::Input)];
        let mut squares = 0;
        for (i, &(kind, (a, b), rows, seed)) in specs.iter().enumerate() {
            let i = i + 1;
            let a = a % i;
            // At most two squares, so that every value fits in i128.
            let op = if kind == 0 && squares < 2 {
                squares += 1;
                (nodes[a].len, QOp::Square { input: a })
            } else {
                let mut inputs = vec![a];
                if kind == 2 {
                    inputs.push(b % i);
                }
                let cols = inputs.iter().map(|&k| nodes[k].len).sum();
                let matrix = dense(rows, cols, seed, 7);
                let bias = (0..rows)
                    .map(|r| (seed.rotate_left(r as u32) % 41) as i128 - 20)
                    .collect();
                (
                    rows,
                    QOp::Linear {
                        inputs,
                        matrix,
                        bias,
                    },
                )
            };
            nodes.push(node(i, op.0, op.1));
        }
        QCircuit {
            output: nodes.len() - 1,
            nodes,
            input: InputEncoding {
                register: 0,
                shape: vec![width],
                raw_min: range.0 as f64,
                raw_max: range.1 as f64,
                scale: 1.0,
                max_abs: range.0.abs().max(range.1.abs()),
                features: (0..width).collect(),
            },
            output_scale: 1.0,
        }
    }

    /// Exact evaluation over the integers (i128 is wide enough for the sizes generated).
    fn eval_exact(c: &QCircuit, x: &[i64]) -> Vec<Vec<i128>> {
        let mut values: Vec<Vec<i128>> = Vec::new();
        for node in &c.nodes {
            let v = match &node.op {
                QOp::Input => x.iter().map(|&v| i128::from(v)).collect(),
                QOp::Square { input } => values[*input].iter().map(|v| v * v).collect(),
                QOp::Linear {
                    inputs,
                    matrix,
                    bias,
                } => {
                    let cat: Vec<i128> = inputs
                        .iter()
                        .flat_map(|&k| values[k].iter().copied())
                        .collect();
                    (0..matrix.rows)
                        .map(|r| {
                            bias[r]
                                + matrix
                                    .row(r)
                                    .map(|(col, w)| i128::from(w) * cat[col])
                                    .sum::<i128>()
                        })
                        .collect()
                }
            };
            values.push(v);
        }
        values
    }

    fn spec() -> impl Strategy<Value = NodeSpec> {
        (0u8..3, (0usize..8, 0usize..8), 1usize..5, any::<u64>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The integer value of every node stays inside its interval on random, all-min,
        /// all-max and random-corner inputs of the declared range.
        #[test]
        fn bounds_hold_on_random_circuits(
            width in 1usize..5,
            lo in -40i64..10,
            span in 0i64..60,
            specs in prop::collection::vec(spec(), 1..7),
            inputs in prop::collection::vec((prop::collection::vec(0.0f64..=1.0, 5), any::<bool>()), 8),
        ) {
            let range = (lo, lo + span);
            let c = circuit(width, range, &specs);
            let ranges = analyze(&c);
            let mut probes: Vec<Vec<i64>> = vec![vec![range.0; width], vec![range.1; width]];
            for (fractions, corner) in &inputs {
                probes.push(fractions[..width].iter().map(|&f| {
                    if *corner {
                        if f < 0.5 { range.0 } else { range.1 }
                    } else {
                        range.0 + (f * span as f64).round() as i64
                    }
                }).collect());
            }
            for x in &probes {
                for (k, values) in eval_exact(&c, x).iter().enumerate() {
                    for (j, &v) in values.iter().enumerate() {
                        let (a, b) = ranges[k].intervals[j];
                        prop_assert!(a <= v as f64 && v as f64 <= b,
                            "node {k} value {j} = {v} outside [{a}, {b}] for input {x:?}");
                        prop_assert!((v as f64).abs() <= ranges[k].max_abs);
                        prop_assert!((v as f64).abs() <= ranges[k].bits().exp2().max(1.0));
                    }
                }
            }
        }
    }

    /// One affine layer: interval arithmetic is exact, so a corner input reaches the bound.
    #[test]
    fn affine_bounds_are_attained() {
        let c = circuit(3, (0, 255), &[(1, (0, 0), 2, 99)]);
        let ranges = analyze(&c);
        let QOp::Linear { matrix, bias, .. } = &c.nodes[1].op else {
            panic!("expected a linear node");
        };
        for r in 0..2 {
            let x: Vec<i64> = (0..3)
                .map(|col| {
                    let w = matrix.row(r).find(|&(cc, _)| cc == col).map_or(0, |e| e.1);
                    if w > 0 {
                        255
                    } else {
                        0
                    }
                })
                .collect();
            let v = eval_exact(&c, &x)[1][r];
            let (_, hi) = ranges[1].intervals[r];
            assert!(
                hi >= v as f64 && hi - v as f64 <= 1e-6 * hi.abs().max(1.0),
                "{hi} vs {v} (bias {})",
                bias[r]
            );
        }
    }

    /// Calibrated bounds never exceed the guaranteed ones and are at least the observed
    /// maximum.
    #[test]
    fn calibration_stays_between_observed_and_guaranteed() {
        let c = circuit(
            4,
            (0, 255),
            &[(1, (0, 0), 3, 5), (0, (1, 0), 1, 0), (2, (2, 1), 2, 8)],
        );
        let mut ranges = analyze(&c);
        let samples: Vec<Vec<f64>> = (0..20)
            .map(|k| {
                (0..4)
                    .map(|j| f64::from(((k * 37 + j * 11) % 256) as u32))
                    .collect()
            })
            .collect();
        calibrate(&c, &mut ranges, &samples, 1.0);
        for (k, r) in ranges.iter().enumerate() {
            let cal = r.calibrated.unwrap();
            assert!(cal <= r.max_abs.max(1.0), "node {k}");
            for s in &samples {
                let x = c.encode_input(s);
                let observed = eval_exact(&c, &x)[k]
                    .iter()
                    .map(|v| v.unsigned_abs() as f64)
                    .fold(0.0, f64::max);
                assert!(observed <= cal, "node {k}: {observed} > {cal}");
            }
        }
    }
}
