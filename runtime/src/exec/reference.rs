//! The plaintext reference: the plan evaluated over the integers, slot by slot. This is the
//! one interpreter of a plan's arithmetic besides the encrypted one; the compiler's checks and
//! accuracy figures call it too.

use super::{run_plan, run_plan_keeping_registers, Backend, ExecError, NoProgress};
use crate::plan::Plan;

/// Evaluates a plan over exact integers (`i128` per slot). Every operation is checked: a value
/// whose magnitude reaches `limit` (half the product of the plaintext primes) would wrap in the
/// encrypted run, and is reported as an error instead.
#[derive(Debug, Clone, Copy)]
pub struct ExactBackend {
    limit: i128,
}

impl ExactBackend {
    /// A backend that rejects any |value| > `limit`.
    pub fn new(limit: i128) -> Self {
        ExactBackend { limit }
    }

    /// The largest |value| the plaintext primes `primes` represent without ambiguity:
    /// ⌊(Π primes − 1) / 2⌋, saturating at `i128::MAX`.
    pub fn for_plain_primes(primes: &[u64]) -> Self {
        let product = primes
            .iter()
            .try_fold(1u128, |acc, &p| acc.checked_mul(u128::from(p)));
        let limit = match product {
            Some(t) => i128::try_from((t - 1) / 2).unwrap_or(i128::MAX),
            None => i128::MAX,
        };
        ExactBackend { limit }
    }

    fn check(&self, value: Option<i128>, what: &str) -> Result<i128, ExecError> {
        match value {
            Some(v) if v.unsigned_abs() <= self.limit.unsigned_abs() => Ok(v),
            Some(v) => Err(ExecError::Backend(
                format!(
                    "{what} gives {v}, beyond ±{} that the plaintext primes hold",
                    self.limit
                )
                .into(),
            )),
            None => Err(ExecError::Backend(
                format!("{what} overflows 128-bit integers").into(),
            )),
        }
    }
}

/// Every register's exact integers for one raw input (C, H, W order), encoded by the plan's
/// input rule; entry `r` is empty for a register no step writes. Values are checked against
/// the i128 range only (not against the plaintext primes): a failing step is reported as
/// [`ExecError::Operation`] with its index.
pub fn exact_registers<T: Copy + Into<f64>>(
    plan: &Plan,
    raw: &[T],
) -> Result<Vec<Vec<i128>>, ExecError> {
    let inputs = one_slot_inputs(plan, raw)?;
    let registers = run_plan_keeping_registers(plan, &ExactBackend::new(i128::MAX), inputs)?;
    Ok(registers
        .into_iter()
        .map(|values| {
            values
                .unwrap_or_default()
                .into_iter()
                .filter_map(|slots| slots.first().copied())
                .collect()
        })
        .collect())
}

/// The plan's exact integer output scores for one raw input (see [`exact_registers`]).
pub fn exact_scores<T: Copy + Into<f64>>(plan: &Plan, raw: &[T]) -> Result<Vec<i128>, ExecError> {
    let inputs = one_slot_inputs(plan, raw)?;
    let out = run_plan(plan, &ExactBackend::new(i128::MAX), inputs, &NoProgress)?;
    Ok(out
        .into_iter()
        .filter_map(|slots| slots.first().copied())
        .collect())
}

/// One raw input encoded as the input register's values, one slot each.
fn one_slot_inputs<T: Copy + Into<f64>>(
    plan: &Plan,
    raw: &[T],
) -> Result<Vec<Vec<i128>>, ExecError> {
    let encoded = plan.input.encode(raw)?;
    Ok(encoded
        .values
        .into_iter()
        .map(|v| vec![i128::from(v)])
        .collect())
}

impl Backend for ExactBackend {
    type Value = Vec<i128>;

    fn dot(
        &self,
        inputs: &[&Vec<i128>],
        weights: &[i64],
        bias: i128,
    ) -> Result<Vec<i128>, ExecError> {
        let slots = inputs.first().map_or(0, |v| v.len());
        let mut out = vec![bias; slots];
        for (input, &w) in inputs.iter().zip(weights) {
            if input.len() != slots {
                return Err(ExecError::SlotCount {
                    expected: slots,
                    found: input.len(),
                });
            }
            if w == 0 {
                continue;
            }
            let w = i128::from(w);
            for (acc, &x) in out.iter_mut().zip(input.iter()) {
                *acc = self.check(
                    x.checked_mul(w).and_then(|p| acc.checked_add(p)),
                    "a weighted sum",
                )?;
            }
        }
        for acc in &out {
            self.check(Some(*acc), "a weighted sum plus bias")?;
        }
        Ok(out)
    }

    fn square(&self, value: &Vec<i128>) -> Result<Vec<i128>, ExecError> {
        value
            .iter()
            .map(|&x| self.check(x.checked_mul(x), "a square"))
            .collect()
    }

    fn relinearize(&self, value: Vec<i128>) -> Result<Vec<i128>, ExecError> {
        Ok(value)
    }

    fn mod_switch(&self, value: Vec<i128>, _level: usize) -> Result<Vec<i128>, ExecError> {
        Ok(value)
    }
}
