//! Checks of the model's input declaration: its shape and its raw value range.

use super::checker::Checker;
use super::{checked_len, MAX_VALUES};
use crate::model::{Input, ModelError, ModelErrorKind};

/// Largest magnitude of a declared input bound.
const MAX_INPUT_BOUND: f64 = 1e12;

/// Checks the input's rank, dimensions, number of values and bounds.
pub(super) fn check_input(ck: &Checker<'_>, input: &Input) -> Result<(), ModelError> {
    check_input_shape(ck, &input.shape)?;
    check_input_range(ck, input.min, input.max)
}

fn check_input_shape(ck: &Checker<'_>, shape: &[usize]) -> Result<(), ModelError> {
    let too_big = |what, value, max| {
        ck.file_err(ModelErrorKind::Size {
            what,
            value,
            min: 1,
            max,
        })
        .with_field("input.shape")
    };
    if shape.is_empty() || shape.len() > 4 {
        return Err(too_big("input rank", shape.len(), 4));
    }
    if let Some(&d) = shape.iter().find(|&&d| d == 0 || d > MAX_VALUES) {
        return Err(too_big("input dimension", d, MAX_VALUES));
    }
    let input_len = checked_len(shape).unwrap_or(usize::MAX);
    if input_len > MAX_VALUES {
        return Err(too_big("input values", input_len, MAX_VALUES));
    }
    Ok(())
}

fn check_input_range(ck: &Checker<'_>, min: f64, max: f64) -> Result<(), ModelError> {
    for (v, field) in [(min, "input.min"), (max, "input.max")] {
        if !v.is_finite() || v.abs() > MAX_INPUT_BOUND {
            return Err(ck
                .file_err(ModelErrorKind::Value {
                    what: "input bound",
                    value: v,
                    why: "must be a finite number of magnitude ≤ 1e12",
                })
                .with_field(field));
        }
    }
    if min > max {
        return Err(ck
            .file_err(ModelErrorKind::Value {
                what: "input.min",
                value: min,
                why: "must not exceed input.max",
            })
            .with_field("input.min"));
    }
    Ok(())
}
