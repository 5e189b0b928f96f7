//! How far the integer circuit is from the real network, layer by layer.
//!
//! - Weight error: each affine row's integer weights, read back at the row's scale
//!   (`q / s_row · s_col`), against the real weights: `‖W_int/s − W‖ / ‖W′‖` per row, where
//!   `W′` is the row without its largest weight. That weight sets the row's scale and is
//!   represented exactly; measured against the full row, one outlier 100× the rest would hide
//!   that every other weight lost its precision (1.6 % over the whole layer, 43 % against the
//!   rest, in the test below). The warning quotes the worst row, and the plain
//!   `‖ΔW‖ / ‖W‖` over the layer beside it. It needs no data; every extra weight bit roughly
//!   halves it, and [`LayerError::at_more_bits`] gives the figure bit by bit.
//! - Output error (with calibration inputs): the layer's dequantised integer outputs against
//!   the float outputs of the lowered graph, `‖y_int/s − y‖ / ‖y‖` over the inputs: the error of
//!   every layer before it (input rounding included) arrives there.
//!
//! A layer whose worst row is off by more than [`MAX_WEIGHT_ERROR`] gets a warning.

use super::{affine, QCircuit, QOp};
use crate::ir::{eval, Graph, Op, SparseMatrix};

/// Worst-row relative weight error (10 %) above which the compiler warns. At the default 8
/// bits the shipped models' rows are at most 4.1 % off (the fused `pool1+conv2+pool2+fc1` of
/// the Fashion model) and lose no accuracy; a row whose largest weight is 100× the others is
/// about 40 % off, its small weights rounding to 0 or ±1, and the plan's accuracy collapses.
pub const MAX_WEIGHT_ERROR: f64 = 0.10;

/// Default worst-row error target when weight bits are chosen per layer (1 %): the shipped
/// models' layers meet it with 8 to 11 bits. Well under [`MAX_WEIGHT_ERROR`], so a chosen
/// layer never warns.
pub const DEFAULT_ERROR_TARGET: f64 = 0.01;

use super::MAX_WEIGHT_BITS;

/// Most calibration inputs the output error is measured on.
pub const MAX_ERROR_SAMPLES: usize = 200;

/// The quantisation error of one affine layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerError {
    /// Index of the layer's node in the circuit.
    pub node: usize,
    /// Layer name (fused names joined with `+`).
    pub layer: String,
    /// Weight bits it was quantised with.
    pub weight_bits: u32,
    /// Relative weight error of the worst row.
    pub worst_row_error: f64,
    /// That row.
    pub worst_row: usize,
    /// Relative weight error over the whole layer.
    pub layer_error: f64,
    /// `(bits, worst-row error)` for each weight bit count above `weight_bits`, up to the first
    /// that meets [`MAX_WEIGHT_ERROR`] (or 32).
    pub at_more_bits: Vec<(u32, f64)>,
    /// Relative error of the layer's outputs on calibration inputs, when some were given.
    pub output_error: Option<f64>,
}

impl LayerError {
    /// Whether the error is large enough to warn about.
    pub fn is_large(&self) -> bool {
        self.worst_row_error > MAX_WEIGHT_ERROR
    }

    /// The warning for a large error: what, where, and what would fix it.
    pub fn warning(&self) -> String {
        let output = self.output_error.map_or_else(String::new, |e| {
            format!(
                "; on the calibration inputs its outputs are {} off the float values",
                percent(e)
            )
        });
        let steps: Vec<String> = self
            .at_more_bits
            .iter()
            .map(|(bits, e)| format!("{bits} → {}", percent(*e)))
            .collect();
        let fix = match self.at_more_bits.last() {
            Some(&(bits, e)) if e <= MAX_WEIGHT_ERROR => format!(
                "compile with --weight-bits {bits} (or more) to bring it under {} (a larger plaintext modulus)",
                percent(MAX_WEIGHT_ERROR)
            ),
            _ => "more weight bits do not bring it under the limit; rescale or retrain the layer so that no weight dwarfs the rest of its row".to_owned(),
        };
        format!(
            "layer `{}`: quantisation error {} in row {} (worst row; {} over the layer) at --weight-bits {}, above {}{output}: expect lost accuracy. The row's largest weight sets its scale, so much smaller weights round coarsely or to zero. With more weight bits: {}; {fix}",
            self.layer,
            percent(self.worst_row_error),
            self.worst_row,
            percent(self.layer_error),
            self.weight_bits,
            percent(MAX_WEIGHT_ERROR),
            steps.join(", "),
        )
    }
}

fn percent(e: f64) -> String {
    if e < 0.001 {
        format!("{:.3} %", 100.0 * e)
    } else {
        format!("{:.1} %", 100.0 * e)
    }
}

/// Squared error, squared norm, and squared norm without the largest weight of each row when
/// the row scales are multiplied by `factor`.
fn row_errors(
    matrix: &SparseMatrix,
    col_scales: &[f64],
    row_scales: &[f64],
    factor: f64,
) -> Vec<RowError> {
    (0..matrix.rows)
        .map(|r| {
            let s = row_scales[r] * factor;
            let mut row = RowError::default();
            let mut largest = 0.0f64;
            for (c, w) in matrix.row(r) {
                let back = affine::integer_weight(w, col_scales[c], s) / s * col_scales[c];
                row.error += (w - back).powi(2);
                row.norm += w * w;
                largest = largest.max(w * w);
            }
            row.rest = row.norm - largest;
            row
        })
        .collect()
}

/// The squared sums of one row.
#[derive(Clone, Copy, Debug, Default)]
struct RowError {
    /// Σ (w − w_int/s)².
    error: f64,
    /// Σ w².
    norm: f64,
    /// Σ w² without the row's largest weight.
    rest: f64,
}

impl RowError {
    /// The row's relative error: against the weights other than its largest (the one that set
    /// the scale), so that one outlier cannot hide that all the others lost their precision; a
    /// row of one weight against that weight.
    fn relative(&self) -> Option<f64> {
        let base = if self.rest > 0.0 {
            self.rest
        } else {
            self.norm
        };
        (base > 0.0).then(|| (self.error / base).sqrt())
    }
}

/// The worst row's relative error and its index; rows without weights are skipped.
fn worst(rows: &[RowError]) -> (f64, usize) {
    rows.iter()
        .enumerate()
        .filter_map(|(r, row)| Some((row.relative()?, r)))
        .fold(
            (0.0, 0),
            |best, cur| if cur.0 > best.0 { cur } else { best },
        )
}

/// The worst-row relative weight error of `matrix` quantised with these column and row scales.
pub(super) fn worst_row_error(
    matrix: &SparseMatrix,
    col_scales: &[f64],
    row_scales: &[f64],
) -> f64 {
    worst(&row_errors(matrix, col_scales, row_scales, 1.0)).0
}

/// The weight error of every affine layer of `circuit`, quantised from the lowered graph `g`
/// (each with the weight bits its circuit node records).
pub fn weight_errors(g: &Graph, circuit: &QCircuit) -> Vec<LayerError> {
    let raw_len = g.node(g.input).len();
    let mut out = Vec::new();
    for (index, node) in circuit.nodes.iter().enumerate() {
        let QOp::Linear { inputs, .. } = &node.op else {
            continue;
        };
        let Op::Affine { matrix, .. } = &g.node(node.id).op else {
            continue;
        };
        let weight_bits = node.weight_bits;
        // The input register may have lost unread values; its scale is uniform.
        let col_scales: Vec<f64> = inputs
            .iter()
            .flat_map(|&i| match i {
                0 => vec![circuit.input.scale; raw_len],
                i => circuit.nodes[i].scales.clone(),
            })
            .collect();
        if col_scales.len() != matrix.cols {
            continue;
        }
        let rows = row_errors(matrix, &col_scales, &node.scales, 1.0);
        let (worst_row_error, worst_row) = worst(&rows);
        let (err, norm) = rows
            .iter()
            .fold((0.0, 0.0), |(a, b), row| (a + row.error, b + row.norm));
        let layer_error = if norm > 0.0 { (err / norm).sqrt() } else { 0.0 };
        let mut at_more_bits = Vec::new();
        if worst_row_error > MAX_WEIGHT_ERROR {
            for bits in weight_bits + 1..=MAX_WEIGHT_BITS {
                let factor = affine::qmax(bits) / affine::qmax(weight_bits);
                let (e, _) = worst(&row_errors(matrix, &col_scales, &node.scales, factor));
                at_more_bits.push((bits, e));
                if e <= MAX_WEIGHT_ERROR {
                    break;
                }
            }
        }
        out.push(LayerError {
            node: index,
            layer: node.name.clone(),
            weight_bits,
            worst_row_error,
            worst_row,
            layer_error,
            at_more_bits,
            output_error: None,
        });
    }
    out
}

/// Fills in the output error of each layer of `errors` (as [`weight_errors`] returned them)
/// from at most `MAX_ERROR_SAMPLES` calibration inputs.
pub fn measure_output_errors(
    g: &Graph,
    circuit: &QCircuit,
    samples: &[Vec<f64>],
    errors: &mut [LayerError],
) {
    let mut sums = vec![(0.0f64, 0.0f64); errors.len()];
    for sample in samples.iter().take(MAX_ERROR_SAMPLES) {
        let Ok(float) = eval::evaluate_all(g, sample) else {
            return;
        };
        let ints = circuit.eval_f64(sample);
        for (sum, layer) in sums.iter_mut().zip(errors.iter()) {
            let (Some(node), Some(int)) = (circuit.nodes.get(layer.node), ints.get(layer.node))
            else {
                continue;
            };
            let Some(real) = float.get(node.id.index()) else {
                continue;
            };
            for ((v, s), y) in int.iter().zip(&node.scales).zip(real) {
                sum.0 += (v / s - y).powi(2);
                sum.1 += y * y;
            }
        }
    }
    for (layer, (err, norm)) in errors.iter_mut().zip(sums) {
        layer.output_error = Some(if norm > 0.0 { (err / norm).sqrt() } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests stop on failure")]

    use crate::ir::{build::build, Graph};
    use crate::model::{self, TensorSource};
    use crate::testing::chain_model;
    use crate::{compile_graph, CompileOptions};
    use std::path::Path;

    /// A dense model whose first layer's rows each hold one weight 100× the largest of the
    /// others (the case that lost 65 points of accuracy without a word).
    fn outlier_model() -> Graph {
        let mut m = chain_model(&[64], &["dense:16", "square", "dense:10"]);
        let weight = m.layers[0].params.get_mut("weight").unwrap();
        for r in 0..16 {
            let row = &mut weight[r * 64..(r + 1) * 64];
            let largest = row.iter().fold(0.0f64, |a, w| a.max(w.abs()));
            row[(r * 5) % 64] = 100.0 * largest;
        }
        build(&model::from_parts(
            Path::new("outlier.ron"),
            m,
            TensorSource::default(),
        ))
        .unwrap()
    }

    fn compile(g: &Graph, weight_bits: u32, samples: Option<Vec<Vec<f64>>>) -> crate::Compiled {
        compile_graph(
            g.clone(),
            &CompileOptions {
                security: None,
                weight_bits,
                calibration_samples: samples,
                ..CompileOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn an_outlier_per_row_warns_at_8_bits_and_not_at_16() {
        let g = outlier_model();
        let at8 = compile(&g, 8, None);
        let layer = &at8.quant_errors[0];
        assert!(layer.is_large(), "{layer:?}");
        let warning = at8
            .warnings
            .iter()
            .find(|w| w.contains("quantisation error"))
            .unwrap();
        assert!(warning.starts_with("layer `l0`"), "{warning}");
        let (bits, e) = *layer.at_more_bits.last().unwrap();
        assert!(
            e <= super::MAX_WEIGHT_ERROR && bits > 8 && bits <= 16,
            "{layer:?}"
        );
        assert!(
            warning.contains(&format!("--weight-bits {bits}")),
            "{warning}"
        );
        // Each extra bit roughly halves the error.
        let steps = &layer.at_more_bits;
        assert!(
            steps.windows(2).all(|p| p[1].1 < p[0].1 * 0.75),
            "{steps:?}"
        );
        let at16 = compile(&g, 16, None);
        assert!(at16.quant_errors.iter().all(|l| !l.is_large()));
        assert!(!at16.warnings.iter().any(|w| w.contains("quantisation")));
    }

    #[test]
    fn auto_bits_give_each_layer_the_fewest_that_meet_the_target() {
        let g = outlier_model();
        for target in [super::MAX_WEIGHT_ERROR, super::DEFAULT_ERROR_TARGET] {
            let auto = compile_graph(
                g.clone(),
                &CompileOptions {
                    security: None,
                    weight_error_target: Some(target),
                    ..CompileOptions::default()
                },
            )
            .unwrap();
            assert!(!auto.warnings.iter().any(|w| w.contains("quantisation")));
            for layer in &auto.quant_errors {
                assert!(layer.worst_row_error <= target, "{layer:?}");
                // One bit fewer misses the target.
                if layer.weight_bits == 2 {
                    continue;
                }
                let fewer = compile(&g, layer.weight_bits - 1, None);
                let e = fewer
                    .quant_errors
                    .iter()
                    .find(|l| l.layer == layer.layer)
                    .unwrap();
                assert!(e.worst_row_error > target, "{layer:?} vs {e:?}");
            }
            // The outlier layer needs more bits than the plain one.
            let (outlier, plain) = (&auto.quant_errors[0], &auto.quant_errors[1]);
            assert!(
                outlier.weight_bits > plain.weight_bits + 3,
                "{auto:?}",
                auto = auto.quant_errors
            );
            // The report carries the bits and errors per layer, in text and JSON.
            let text = auto.report.to_text();
            assert!(text.contains("bits chosen per layer"), "{text}");
            let json = serde_json::to_value(&auto.report).unwrap();
            let rows = json["quantisation"].as_array().unwrap();
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0]["layer"], "l0");
            assert_eq!(rows[0]["weight_bits"], outlier.weight_bits);
            assert!(rows[0]["worst_row_error"].as_f64().unwrap() <= target);
        }
    }

    #[test]
    fn calibration_inputs_measure_the_output_error() {
        let g = outlier_model();
        // Like an image's border pixels, the inputs the outliers read are always 0: the
        // outputs hang on the small weights that lost their precision.
        let samples: Vec<Vec<f64>> = (0..20)
            .map(|i| {
                (0..64)
                    .map(|j| {
                        let border = (0..16).any(|r| (r * 5) % 64 == j);
                        if border {
                            0.0
                        } else {
                            ((i * 11 + j * 7) % 13) as f64 / 6.5 - 1.0
                        }
                    })
                    .collect()
            })
            .collect();
        let at8 = compile(&g, 8, Some(samples.clone()));
        let at16 = compile(&g, 16, Some(samples));
        let (e8, e16) = (
            at8.quant_errors[0].output_error.unwrap(),
            at16.quant_errors[0].output_error.unwrap(),
        );
        assert!(e8 > 0.1 && e16 < e8 / 10.0, "8 bits {e8}, 16 bits {e16}");
        assert!(at8
            .warnings
            .iter()
            .any(|w| w.contains("on the calibration inputs")));
    }
}
