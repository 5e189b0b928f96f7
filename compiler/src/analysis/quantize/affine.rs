//! Quantisation of one affine node: a scale per row that spends the weight budget, then the
//! integer weights and biases at those scales.

use super::QuantError;
use crate::ir::SparseMatrix;
use veil_runtime::plan::IntMatrix;

/// Largest |integer weight| a plan holds (i64, with headroom).
const WEIGHT_LIMIT_BITS: i32 = 62;
/// Largest |integer bias| a plan holds (i128, with headroom).
pub(super) const BIAS_LIMIT_BITS: i32 = 126;

/// What an affine row reads: the scale of every column and the input block it belongs to.
pub(super) struct Columns {
    /// Scale of each column's integer value.
    pub(super) scales: Vec<f64>,
    /// For each column, the index of the input (register) it comes from.
    pub(super) block: Vec<usize>,
    /// Number of inputs.
    pub(super) blocks: usize,
}

/// The scale of each row.
///
/// A row's scale is `qmax / m`, where `m` is the smallest over its input blocks of the block's
/// largest real weight per integer unit, so every block keeps at least the weight budget. The
/// output node uses one scale for all rows (the smallest) so the class scores are comparable.
/// A row without weights takes the largest scale of the other rows, or, when no row has
/// weights, one that spends the budget on its bias (1 for a zero bias).
pub(super) fn row_scales(
    matrix: &SparseMatrix,
    bias: &[f64],
    columns: &Columns,
    qmax: f64,
    is_output: bool,
) -> Vec<f64> {
    let from_weights: Vec<Option<f64>> = (0..matrix.rows)
        .map(|r| weight_scale(matrix, r, columns, qmax))
        .collect();
    let known: Vec<f64> = from_weights.iter().flatten().copied().collect();
    let fallback = known.iter().copied().fold(f64::NAN, f64::max);
    let uniform = known.iter().copied().fold(f64::INFINITY, f64::min);
    from_weights
        .iter()
        .zip(bias)
        .map(|(&own, &b)| {
            if is_output && uniform.is_finite() {
                uniform
            } else if let Some(s) = own {
                s
            } else if fallback.is_finite() {
                fallback
            } else if b.abs() > 0.0 {
                qmax / b.abs()
            } else {
                1.0
            }
        })
        .collect()
}

/// The scale row `r`'s weights ask for, or `None` when it has no non-zero weight.
fn weight_scale(matrix: &SparseMatrix, r: usize, columns: &Columns, qmax: f64) -> Option<f64> {
    let mut per_block = vec![0.0f64; columns.blocks];
    for (c, w) in matrix.row(r) {
        let b = columns.block.get(c).copied().unwrap_or(0);
        per_block[b] = per_block[b].max((w / columns.scales[c]).abs());
    }
    let m = per_block
        .iter()
        .copied()
        .filter(|&m| m > 0.0)
        .fold(f64::INFINITY, f64::min);
    m.is_finite().then(|| qmax / m)
}

/// The integer weights `round(w / s_col · s_row)` (zeros dropped) and biases
/// `round(b · s_row)`. `too_deep` builds the error for a bias beyond what a plan holds
/// (its argument: log2 of the bias).
pub(super) fn integer_rows(
    node: &str,
    matrix: &SparseMatrix,
    bias: &[f64],
    col_scales: &[f64],
    scales: &[f64],
    too_deep: impl Fn(f64) -> QuantError,
) -> Result<(IntMatrix, Vec<i128>), QuantError> {
    let mut row_ptr = vec![0usize];
    let mut col_idx = Vec::new();
    let mut values = Vec::new();
    let mut ibias = Vec::with_capacity(matrix.rows);
    for r in 0..matrix.rows {
        for (c, w) in matrix.row(r) {
            let q = (w / col_scales[c] * scales[r]).round();
            if !q.is_finite() || q.abs() >= 2f64.powi(WEIGHT_LIMIT_BITS) {
                return Err(QuantError::Overflow {
                    node: node.to_owned(),
                    what: "an integer weight",
                    bits: WEIGHT_LIMIT_BITS as u32,
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
        if !b.is_finite() || b.abs() >= 2f64.powi(BIAS_LIMIT_BITS) {
            return Err(too_deep(b.abs().log2()));
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
    Ok((m, ibias))
}
