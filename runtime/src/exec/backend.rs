//! What the engine needs from a kind of value.

use super::ExecError;
use crate::plan::IntMatrix;
use rayon::prelude::*;

/// The operations a plan's steps are made of, over one kind of value (a ciphertext, or a plain
/// vector of slots). Errors carry no step context: the engine adds it.
pub trait Backend: Sync {
    /// One value of a register: all slots of one neuron.
    type Value: Send + Sync;

    /// `Σ_j weights[j] · inputs[j] + bias`; `inputs` and `weights` have the same, non-zero
    /// length (a row without non-zero weights arrives as one input with weight 0).
    fn dot(
        &self,
        inputs: &[&Self::Value],
        weights: &[i64],
        bias: i128,
    ) -> Result<Self::Value, ExecError>;

    /// The elementwise square of `value` (not relinearised).
    fn square(&self, value: &Self::Value) -> Result<Self::Value, ExecError>;

    /// Relinearises `value` (identity for plain values).
    fn relinearize(&self, value: Self::Value) -> Result<Self::Value, ExecError>;

    /// Switches `value` down to `level` ciphertext primes (identity for plain values).
    fn mod_switch(&self, value: Self::Value, level: usize) -> Result<Self::Value, ExecError>;

    /// Values a register of `len` values takes: one each, unless the backend packs a whole
    /// register into one value (the packed layout).
    fn register_values(&self, len: usize) -> usize {
        len
    }

    /// The plan's `index`-th `Linear` step (0-based, in program order), for backends that
    /// prepare per-step work (the packed layout's schedules); the default is [`Backend::linear`].
    fn linear_step(
        &self,
        _index: usize,
        inputs: &[&Self::Value],
        matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<Vec<Self::Value>, ExecError> {
        self.linear(inputs, matrix, bias)
    }

    /// Whether [`Backend::square_linear_step`] may compute a map on squares (the engine asks
    /// before it announces a fused step).
    fn fuses_squares(&self) -> bool {
        false
    }

    /// `matrix · (inputs²) + bias` for the plan's `index`-th `Linear` step when it reads only
    /// the squares of `inputs`, computed without materialising the squares, where the backend
    /// can do that exactly and faster; `None` (the default) makes the engine square first.
    fn square_linear_step(
        &self,
        _index: usize,
        _inputs: &[&Self::Value],
        _matrix: &IntMatrix,
        _bias: &[i128],
    ) -> Option<Result<Vec<Self::Value>, ExecError>> {
        None
    }

    /// `matrix · inputs + bias`, one output per matrix row. The default runs [`Backend::dot`]
    /// for every row in parallel; a backend may override it with a blocked matrix product.
    fn linear(
        &self,
        inputs: &[&Self::Value],
        matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<Vec<Self::Value>, ExecError> {
        linear_by_rows(self, inputs, matrix, bias)
    }
}

/// `matrix · inputs + bias` through one [`Backend::dot`] per row, rows in parallel.
pub fn linear_by_rows<B: Backend + ?Sized>(
    backend: &B,
    inputs: &[&B::Value],
    matrix: &IntMatrix,
    bias: &[i128],
) -> Result<Vec<B::Value>, ExecError> {
    (0..matrix.rows)
        .into_par_iter()
        .map(|row| {
            let (mut refs, mut weights): (Vec<&B::Value>, Vec<i64>) = matrix
                .row(row)
                .filter(|&(_, w)| w != 0)
                .map(|(col, w)| (inputs[col], w))
                .unzip();
            if refs.is_empty() {
                if let Some(first) = inputs.first() {
                    refs.push(first);
                    weights.push(0);
                }
            }
            backend.dot(&refs, &weights, bias.get(row).copied().unwrap_or(0))
        })
        .collect()
}
