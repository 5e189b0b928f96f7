//! Exact integer evaluation of a plan (what the encrypted circuit computes, without the
//! encryption and without reduction mod t): the reference for range checks and for the
//! "plan accuracy" of the accuracy table.

use thiserror::Error;
use veil_runtime::plan::{Plan, Step};

/// Integer evaluation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PlanEvalError {
    /// The raw input has the wrong length.
    #[error("the plan takes {expected} raw input values, got {found}")]
    InputLength {
        /// Values expected.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A value left the i128 range (its bound is then at least 2^127).
    #[error("register {register} (`{name}`) overflows i128")]
    Overflow {
        /// Register index.
        register: usize,
        /// Register name.
        name: String,
    },
}

/// Encodes a raw input (C, H, W order) into the plan's integer input values.
pub fn encode_input(plan: &Plan, raw: &[f64]) -> Vec<i128> {
    let m = plan.input.max_abs;
    plan.input
        .features
        .iter()
        .map(|&f| {
            let v = (raw.get(f).copied().unwrap_or(0.0) * plan.input.scale).round();
            i128::from((v as i64).clamp(-m, m))
        })
        .collect()
}

/// Every register's integer values for one raw input (registers never written stay empty).
pub fn eval_plan(plan: &Plan, raw: &[f64]) -> Result<Vec<Vec<i128>>, PlanEvalError> {
    let expected: usize = plan.input.shape.iter().product();
    if raw.len() != expected {
        return Err(PlanEvalError::InputLength {
            expected,
            found: raw.len(),
        });
    }
    let mut regs: Vec<Vec<i128>> = vec![Vec::new(); plan.registers.len()];
    regs[plan.input.register] = encode_input(plan, raw);
    let overflow = |r: usize| PlanEvalError::Overflow {
        register: r,
        name: plan.registers[r].name.clone(),
    };
    for step in &plan.steps {
        match step {
            Step::Linear {
                inputs,
                output,
                matrix,
                bias,
                ..
            } => {
                let cat: Vec<i128> = inputs
                    .iter()
                    .flat_map(|&i| regs[i].iter().copied())
                    .collect();
                let mut out = Vec::with_capacity(matrix.rows);
                for r in 0..matrix.rows {
                    let mut acc = bias[r];
                    for (c, w) in matrix.row(r) {
                        acc = cat[c]
                            .checked_mul(i128::from(w))
                            .and_then(|p| acc.checked_add(p))
                            .ok_or_else(|| overflow(*output))?;
                    }
                    out.push(acc);
                }
                regs[*output] = out;
            }
            Step::Square { input, output, .. } => {
                regs[*output] = regs[*input]
                    .iter()
                    .map(|x| x.checked_mul(*x).ok_or_else(|| overflow(*output)))
                    .collect::<Result<_, _>>()?;
            }
            Step::Relinearize { .. } | Step::ModSwitch { .. } => {}
        }
    }
    Ok(regs)
}

/// Class scores (integer output / output scale) of one raw input.
pub fn plan_scores(plan: &Plan, raw: &[f64]) -> Result<Vec<f64>, PlanEvalError> {
    let regs = eval_plan(plan, raw)?;
    Ok(regs[plan.output.register]
        .iter()
        .map(|&v| v as f64 / plan.output.scale)
        .collect())
}

/// Index of the largest score (first on ties).
pub fn argmax(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}
