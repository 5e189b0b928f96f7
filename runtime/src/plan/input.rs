//! The one rule that turns raw input values (pixel bytes, sensor readings) into the integers
//! the plan's input register carries, and the one rule that turns the output register's
//! integers back into scores. The CLI, the session API, the compiler's calibration and the
//! plaintext reference all call these, so a raw value means the same integer everywhere.
//!
//! A raw value `x` becomes `clamp(round(clamp(x, raw_min, raw_max) · scale), ±max_abs)`.
//! Values outside the declared range are clamped to it, never wrapped: the compiler proved its
//! bounds (and chose its primes) for that range only. The encoder counts how many values it
//! clamped so callers can report it. The resolution is `1 / scale` raw units: two raw values
//! closer than that may become the same integer.

use super::{InputEncoding, OutputDecoding};
use thiserror::Error;

/// Why a raw input does not fit the plan.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InputError {
    /// The input has the wrong number of values.
    #[error("{found} values but the model expects {expected} (shape {shape:?})")]
    WrongSize {
        /// Values the model expects.
        expected: usize,
        /// Values found.
        found: usize,
        /// The model's input shape.
        shape: Vec<usize>,
    },
    /// A value is not a finite number.
    #[error("value {position} is {value}, not a finite number")]
    NotFinite {
        /// Which raw value (flattened C, H, W index).
        position: usize,
        /// The value.
        value: f64,
    },
}

/// One input's integers, in the order of the input register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedInput {
    /// `values[i]` is the integer of input register value `i` (raw index `features[i]`).
    pub values: Vec<i64>,
    /// How many of the used raw values lay outside the declared range and were clamped.
    pub clamped: usize,
}

impl InputEncoding {
    /// Number of raw values one input has (the product of the shape).
    pub fn raw_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The smallest raw difference the encoding tells apart: `1 / scale` raw units.
    pub fn resolution(&self) -> f64 {
        1.0 / self.scale
    }

    /// The integer a raw value becomes, and whether it was clamped to the declared range.
    /// `raw` must be finite (see [`InputEncoding::encode`]).
    pub fn encode_value(&self, raw: f64) -> (i64, bool) {
        // max/min rather than clamp: an encoding that was never validated (bounds crossed or
        // NaN) gives a wrong integer here, never a panic; `Plan::validate` refuses such plans.
        let inside = raw.max(self.raw_min).min(self.raw_max);
        let integer = (inside * self.scale).round() as i64;
        (integer.max(-self.max_abs).min(self.max_abs), inside != raw)
    }

    /// Encodes one raw input (C, H, W order, `raw_len()` values): every raw value the plan
    /// uses becomes its integer; values outside the declared range are clamped and counted.
    ///
    /// ```
    /// use veil_runtime::plan::InputEncoding;
    /// let input = InputEncoding {
    ///     register: 0, shape: vec![3], raw_min: 0.0, raw_max: 1.0, scale: 255.0,
    ///     max_abs: 255, features: vec![0, 2],
    /// };
    /// let encoded = input.encode(&[0.5f32, 9.0, 1.5])?;
    /// assert_eq!(encoded.values, vec![128, 255]); // 1.5 is clamped to 1.0
    /// assert_eq!(encoded.clamped, 1);
    /// # Ok::<(), veil_runtime::plan::InputError>(())
    /// ```
    pub fn encode<T: Copy + Into<f64>>(&self, raw: &[T]) -> Result<EncodedInput, InputError> {
        let expected = self.raw_len();
        if raw.len() != expected {
            return Err(InputError::WrongSize {
                expected,
                found: raw.len(),
                shape: self.shape.clone(),
            });
        }
        let mut clamped = 0;
        let mut values = Vec::with_capacity(self.features.len());
        for &position in &self.features {
            let value: f64 = raw.get(position).copied().map_or(0.0, Into::into);
            if !value.is_finite() {
                return Err(InputError::NotFinite { position, value });
            }
            let (integer, was_clamped) = self.encode_value(value);
            clamped += usize::from(was_clamped);
            values.push(integer);
        }
        Ok(EncodedInput { values, clamped })
    }
}

impl OutputDecoding {
    /// Float scores from the output register's integers: `integer / scale`.
    pub fn decode(&self, scores: &[i128]) -> Vec<f64> {
        scores
            .iter()
            .map(|&s| s as f64 / self.scale.max(f64::MIN_POSITIVE))
            .collect()
    }

    /// The name of class `index`: its class name when the model gives one, else its number.
    pub fn class_name(&self, index: usize) -> String {
        self.class_names
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    }
}

/// The predicted class: the index of the first largest score (0 for no scores). Integer and
/// decoded float scores give the same class, since decoding divides by a positive scale.
///
/// ```
/// assert_eq!(veil_runtime::plan::argmax(&[3, 9, 9, -1]), 1);
/// ```
pub fn argmax<T: PartialOrd>(scores: &[T]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if scores.get(best).is_some_and(|b| s > b) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unvalidated_encoding_never_panics() {
        let crossed = InputEncoding {
            raw_min: 1.0,
            raw_max: -1.0,
            max_abs: -3,
            ..encoding()
        };
        let _ = crossed.encode_value(0.5);
        let nan = InputEncoding {
            raw_min: f64::NAN,
            ..encoding()
        };
        let _ = nan.encode_value(0.5);
    }

    fn encoding() -> InputEncoding {
        InputEncoding {
            register: 0,
            shape: vec![1, 2, 2],
            raw_min: 0.0,
            raw_max: 255.0,
            scale: 0.5,
            max_abs: 128,
            features: vec![0, 1, 3],
        }
    }

    #[test]
    fn encodes_listed_features_and_clamps_to_the_declared_range() {
        let encoded = encoding().encode(&[10.0f32, 255.0, 7.0, 300.0]).unwrap();
        assert_eq!(encoded.values, vec![5, 128, 128]);
        assert_eq!(encoded.clamped, 1);
    }

    #[test]
    fn out_of_range_values_clamp_never_wrap() {
        let input = encoding();
        assert_eq!(input.encode_value(-1e30), (0, true));
        assert_eq!(input.encode_value(1e30), (128, true));
        assert_eq!(input.encode_value(255.0), (128, false));
        assert_eq!(input.encode_value(-0.4), (0, true));
    }

    #[test]
    fn f32_and_f64_inputs_encode_alike() {
        let raw32 = [1.0f32, 2.5, 3.0, 4.75];
        let raw64: Vec<f64> = raw32.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(encoding().encode(&raw32), encoding().encode(&raw64));
    }

    #[test]
    fn resolution_is_the_raw_step_of_one_integer() {
        assert_eq!(encoding().resolution(), 2.0);
    }

    #[test]
    fn wrong_size_names_the_shape() {
        let err = encoding().encode(&[1.0f32; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "5 values but the model expects 4 (shape [1, 2, 2])"
        );
    }

    #[test]
    fn nan_is_rejected() {
        let err = encoding().encode(&[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err();
        assert!(matches!(err, InputError::NotFinite { position: 0, .. }));
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[3, 9, 9, -1]), 1);
        assert_eq!(argmax::<i128>(&[]), 0);
        assert_eq!(argmax(&[0.5, f64::NAN, 2.0]), 2);
    }
}
