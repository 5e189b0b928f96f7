//! `replace_activations`: ReLU, GELU, sigmoid and tanh become x² (the default), or a degree-2
//! polynomial `a·x² + b·x + c` fitted by least squares to the activation over the values that
//! layer sees on calibration inputs ([`ActivationChoice::Fit`]). Both cost one multiplicative
//! level; a warning names each layer (the function changes; the compiled plan's accuracy must
//! be measured).
//!
//! The fit goes layer by layer in topological order, each one over the values the graph
//! computes with the layers before it already replaced, so it sees what the circuit will.

use super::{Pass, PassContext, PassError};
use crate::ir::{eval, Graph, NodeId, Op};

/// Most calibration inputs the fit evaluates.
pub const MAX_FIT_SAMPLES: usize = 1_000;

/// What replaces an activation a network was trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActivationChoice {
    /// `x²` (what CryptoNets-style networks are trained with).
    #[default]
    Square,
    /// `a·x² + b·x + c` fitted to the activation over the values each layer sees on
    /// calibration inputs.
    Fit,
}

/// The pass.
#[derive(Debug, Clone, Default)]
pub struct ReplaceActivations {
    choice: ActivationChoice,
    /// Raw calibration inputs (at most [`MAX_FIT_SAMPLES`]) for [`ActivationChoice::Fit`].
    samples: Vec<Vec<f64>>,
}

impl ReplaceActivations {
    /// Every activation becomes x².
    pub fn square() -> Self {
        Self::default()
    }

    /// Every activation becomes the degree-2 polynomial closest to it (least squares) over the
    /// values its layer sees on `samples` (raw inputs; at most [`MAX_FIT_SAMPLES`] are used).
    pub fn fitted(samples: &[Vec<f64>]) -> Self {
        ReplaceActivations {
            choice: ActivationChoice::Fit,
            samples: samples.iter().take(MAX_FIT_SAMPLES).cloned().collect(),
        }
    }

    /// The polynomial `[c, b, a]` for the activation at `n`, and the range of values seen.
    fn fit(&self, g: &Graph, n: NodeId) -> Result<(Vec<f64>, (f64, f64)), String> {
        let Some(&x) = g.inputs(n).first() else {
            return Err("the activation has no input".into());
        };
        let mut seen = Vec::new();
        for sample in &self.samples {
            let values = eval::evaluate_all(g, sample).map_err(|e| e.to_string())?;
            seen.extend_from_slice(values.get(x.index()).map_or(&[][..], Vec::as_slice));
        }
        let targets = eval::eval_op(&g.node(n).op, &[&seen], &[vec![seen.len()]], &[seen.len()]);
        let coefficients = least_squares_quadratic(&seen, &targets).ok_or_else(|| {
            format!(
                "cannot fit a polynomial: the values it sees on {} calibration inputs do not vary; give other calibration inputs or use x²",
                self.samples.len()
            )
        })?;
        let lo = seen.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = seen.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Ok((coefficients, (lo, hi)))
    }
}

/// The coefficients `[c, b, a]` of `a·x² + b·x + c` closest to `y` in least squares, or `None`
/// when `x` takes fewer than three distinct values' worth of spread. Solved in the
/// standardised variable `t = (x − μ)/σ` for conditioning, then mapped back.
fn least_squares_quadratic(x: &[f64], y: &[f64]) -> Option<Vec<f64>> {
    let n = x.len() as f64;
    if x.len() < 3 {
        return None;
    }
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    if !(sd.is_finite() && sd > 0.0) {
        return None;
    }
    // Normal equations in t: Σ t^(i+j) · k_j = Σ t^i · y.
    let mut m = [[0.0f64; 4]; 3];
    for (&xv, &yv) in x.iter().zip(y) {
        let t = (xv - mean) / sd;
        let powers = [1.0, t, t * t, t * t * t, t * t * t * t];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().take(3).enumerate() {
                *cell += powers[i + j];
            }
            row[3] += powers[i] * yv;
        }
    }
    let k = solve3(m)?;
    // k0 + k1·t + k2·t², t = (x − μ)/σ.
    let a = k[2] / (sd * sd);
    let b = k[1] / sd - 2.0 * k[2] * mean / (sd * sd);
    let c = k[0] - k[1] * mean / sd + k[2] * mean * mean / (sd * sd);
    [a, b, c]
        .iter()
        .all(|v| v.is_finite())
        .then(|| vec![c, b, a])
}

/// Gaussian elimination with partial pivoting on an augmented 3×4 system.
fn solve3(mut m: [[f64; 4]; 3]) -> Option<[f64; 3]> {
    let scale = m.iter().map(|r| r[0].abs()).fold(1.0, f64::max);
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-9 * scale {
            return None;
        }
        m.swap(col, pivot);
        for r in 0..3 {
            if r != col {
                let f = m[r][col] / m[col][col];
                for c in col..4 {
                    m[r][c] -= f * m[col][c];
                }
            }
        }
    }
    Some([m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]])
}

impl Pass for ReplaceActivations {
    fn name(&self) -> &'static str {
        "replace_activations"
    }

    fn run(&self, g: &mut Graph, ctx: &mut PassContext) -> Result<bool, PassError> {
        let mut changed = false;
        for n in g.topo() {
            let Op::Activation(kind) = g.node(n).op else {
                continue;
            };
            let name = g.node(n).name.clone();
            let what = Op::Activation(kind).name();
            match self.choice {
                ActivationChoice::Square => {
                    ctx.warnings.push(format!(
                        "layer `{name}`: {what} replaced by x²; check the accuracy of the compiled plan"
                    ));
                    g.node_mut(n).op = Op::Square;
                }
                ActivationChoice::Fit => {
                    let (c, (lo, hi)) = self.fit(g, n).map_err(|problem| PassError::Failed {
                        pass: "replace_activations",
                        node: name.clone(),
                        problem,
                    })?;
                    ctx.warnings.push(format!(
                        "layer `{name}`: {what} replaced by {:.4e}·x² {:+.4e}·x {:+.4e}, fitted over the values it sees on {} calibration inputs ({lo:.3e} to {hi:.3e}); check the accuracy of the compiled plan",
                        c[2], c[1], c[0], self.samples.len()
                    ));
                    g.node_mut(n).op = Op::Polynomial(c);
                }
            }
            changed = true;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::chain;

    #[test]
    fn every_replacement_is_named() {
        let mut g = chain(&[3], &["dense:4", "relu", "dense:4", "tanh", "dense:2"]);
        let mut ctx = PassContext::default();
        assert!(ReplaceActivations::square().run(&mut g, &mut ctx).unwrap());
        assert_eq!(ctx.warnings.len(), 2);
        assert!(ctx.warnings[0].starts_with("layer `l1`: relu"));
        assert!(ctx.warnings[1].starts_with("layer `l3`: tanh"));
        g.verify().unwrap();
    }

    #[test]
    fn least_squares_recovers_a_quadratic() {
        let x: Vec<f64> = (0..50).map(|i| f64::from(i) * 0.3 - 4.0 + 100.0).collect();
        let y: Vec<f64> = x.iter().map(|v| 0.5 * v * v - 2.0 * v + 3.0).collect();
        let c = least_squares_quadratic(&x, &y).unwrap();
        for (got, want) in c.iter().zip([3.0, -2.0, 0.5]) {
            assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "{c:?}");
        }
        assert!(least_squares_quadratic(&[2.0; 10], &[1.0; 10]).is_none());
    }

    /// Mean squared distance between the outputs of two graphs on `samples`.
    fn distance(a: &Graph, b: &Graph, samples: &[Vec<f64>]) -> f64 {
        samples
            .iter()
            .map(|s| {
                let (x, y) = (eval::evaluate(a, s).unwrap(), eval::evaluate(b, s).unwrap());
                x.iter().zip(&y).map(|(p, q)| (p - q).powi(2)).sum::<f64>()
            })
            .sum::<f64>()
            / samples.len() as f64
    }

    #[test]
    fn a_fitted_polynomial_is_closer_than_the_square() {
        let original = chain(&[6], &["dense:8", "relu", "dense:8", "tanh", "dense:3"]);
        let samples: Vec<Vec<f64>> = (0..64)
            .map(|i| {
                (0..6)
                    .map(|j| ((i * 7 + j * 13) % 17) as f64 / 8.5 - 1.0)
                    .collect()
            })
            .collect();
        let (mut square, mut fitted) = (original.clone(), original.clone());
        let mut ctx = PassContext::default();
        ReplaceActivations::square()
            .run(&mut square, &mut ctx)
            .unwrap();
        ReplaceActivations::fitted(&samples)
            .run(&mut fitted, &mut ctx)
            .unwrap();
        fitted.verify().unwrap();
        assert!(ctx.warnings[2].contains("fitted over the values it sees on 64"));
        let (d_square, d_fit) = (
            distance(&original, &square, &samples),
            distance(&original, &fitted, &samples),
        );
        assert!(d_fit < d_square / 4.0, "fit {d_fit} vs x² {d_square}");
    }

    #[test]
    fn a_fit_over_constant_values_is_refused() {
        let mut g = chain(&[2], &["dense:2", "relu", "dense:2"]);
        let err = ReplaceActivations::fitted(&vec![vec![0.5, 0.5]; 4])
            .run(&mut g, &mut PassContext::default())
            .unwrap_err();
        assert!(err.to_string().contains("do not vary"), "{err}");
    }
}
