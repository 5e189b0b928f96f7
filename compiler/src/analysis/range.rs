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
            QOp::Input => vec![(c.input_range.0 as f64, c.input_range.1 as f64); node.len],
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
