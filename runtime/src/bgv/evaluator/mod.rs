//! The BGV evaluator. Ciphertexts stay in NTT form: sums, weighted sums and products are
//! pointwise per prime; relinearisation and modulus switching convert only the limbs they
//! must. One file per operation family; this one holds the evaluator and the operand checks.

mod arithmetic;
mod diagonal;
mod key_switch;
mod mod_switch;
mod multiply;

pub(crate) use multiply::square_component;
mod rotate;

pub(super) use key_switch::divide_by_special;

use super::ciphertext::Ciphertext;
use crate::bfv::{BfvParameters, EvalError};
use crate::math::Modulus;
use std::sync::Arc;

/// The BGV evaluator for one parameter set (ring and plaintext modulus t).
#[derive(Clone, Debug)]
pub struct Evaluator {
    params: Arc<BfvParameters>,
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &Arc<BfvParameters>) -> Self {
        Evaluator {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    fn check(&self, ct: &Ciphertext) -> Result<(), EvalError> {
        if ct.fingerprint() != self.params.fingerprint() {
            return Err(EvalError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: ct.fingerprint(),
            });
        }
        if !(2..=3).contains(&ct.size()) {
            return Err(EvalError::UnsupportedSize {
                size: ct.size(),
                max: 3,
            });
        }
        Ok(())
    }

    /// Both operands valid, at the same level and (when `same_scale`) with the same scale.
    fn check_pair(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        same_scale: bool,
    ) -> Result<(), EvalError> {
        self.check(a)?;
        self.check(b)?;
        if a.level != b.level {
            return Err(EvalError::LevelMismatch {
                left: a.level,
                right: b.level,
            });
        }
        if same_scale && a.scale != b.scale {
            return Err(EvalError::ScaleMismatch {
                left: a.scale,
                right: b.scale,
            });
        }
        Ok(())
    }

    fn moduli(&self, level: usize) -> &[Modulus] {
        &self.params.ring().q()[..level]
    }
}

#[cfg(test)]
pub(crate) mod support;
#[cfg(test)]
mod tests;
