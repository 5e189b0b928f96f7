//! From raw inputs (pixel values) to the integers the plan's input register carries, and from
//! the output register's integers to class scores.

use thiserror::Error;
use veil_runtime::plan::{InputEncoding, OutputDecoding};

/// Why an input does not fit the plan.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EncodeError {
    /// The image has the wrong number of values.
    #[error("image {index} has {found} values but the model expects {expected} (shape {shape:?})")]
    WrongSize {
        /// Which image.
        index: usize,
        /// Values the model expects.
        expected: usize,
        /// Values found.
        found: usize,
        /// The model's input shape.
        shape: Vec<usize>,
    },
    /// A value is not a finite number.
    #[error("image {index}, value {position} is {value}, not a finite number")]
    NotFinite {
        /// Which image.
        index: usize,
        /// Which value.
        position: usize,
        /// The value.
        value: f32,
    },
}

/// Number of raw values one input has.
pub fn input_len(input: &InputEncoding) -> usize {
    input.shape.iter().product()
}

/// Quantises one raw input: each listed feature becomes round(clamp(raw) × scale), clamped to
/// ±`max_abs`. Raw values outside the declared range are clamped to it (the range the
/// compiler's bounds were proved for). Returns the integers and how many values were clamped.
pub fn quantise(
    input: &InputEncoding,
    index: usize,
    raw: &[f32],
) -> Result<(Vec<i64>, usize), EncodeError> {
    let expected = input_len(input);
    if raw.len() != expected {
        return Err(EncodeError::WrongSize {
            index,
            expected,
            found: raw.len(),
            shape: input.shape.clone(),
        });
    }
    let mut clamped = 0;
    let mut out = Vec::with_capacity(input.features.len());
    for &position in &input.features {
        let value = raw.get(position).copied().unwrap_or(0.0);
        if !value.is_finite() {
            return Err(EncodeError::NotFinite {
                index,
                position,
                value,
            });
        }
        let v = f64::from(value);
        let inside = v.clamp(input.raw_min, input.raw_max);
        if inside != v {
            clamped += 1;
        }
        let q = (inside * input.scale).round() as i64;
        out.push(q.clamp(-input.max_abs, input.max_abs));
    }
    Ok((out, clamped))
}

/// Quantises a batch and lays it out feature-major: `result[f][k]` is feature `f` of image `k`,
/// i.e. the slots of the `f`-th input ciphertext.
pub fn feature_major<'a>(
    input: &InputEncoding,
    first_index: usize,
    images: impl IntoIterator<Item = &'a [f32]>,
) -> Result<(Vec<Vec<i64>>, usize), EncodeError> {
    let mut columns: Vec<Vec<i64>> = vec![Vec::new(); input.features.len()];
    let mut clamped = 0;
    for (offset, raw) in images.into_iter().enumerate() {
        let (values, c) = quantise(input, first_index + offset, raw)?;
        clamped += c;
        for (column, v) in columns.iter_mut().zip(values) {
            column.push(v);
        }
    }
    Ok((columns, clamped))
}

/// The predicted class (first maximum) of one image's integer scores.
pub fn argmax(scores: &[i128]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// Float scores from integer scores.
pub fn decode_scores(output: &OutputDecoding, scores: &[i128]) -> Vec<f64> {
    scores
        .iter()
        .map(|&s| s as f64 / output.scale.max(f64::MIN_POSITIVE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quantises_listed_features_with_clamping() {
        let (values, clamped) = quantise(&encoding(), 0, &[10.0, 255.0, 7.0, 300.0]).unwrap();
        assert_eq!(values, vec![5, 128, 128]);
        assert_eq!(clamped, 1);
    }

    #[test]
    fn wrong_size_names_the_image_and_shape() {
        let err = quantise(&encoding(), 7, &[1.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image 7 has 5 values but the model expects 4 (shape [1, 2, 2])"
        );
    }

    #[test]
    fn nan_is_rejected() {
        let err = quantise(&encoding(), 0, &[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err();
        assert!(matches!(err, EncodeError::NotFinite { position: 0, .. }));
    }

    #[test]
    fn batches_are_feature_major() {
        let a = [0.0f32, 2.0, 4.0, 6.0];
        let b = [8.0f32, 10.0, 12.0, 14.0];
        let (cols, _) = feature_major(&encoding(), 0, [&a[..], &b[..]]).unwrap();
        assert_eq!(cols, vec![vec![0, 4], vec![1, 5], vec![3, 7]]);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[3, 9, 9, -1]), 1);
        assert_eq!(argmax(&[]), 0);
    }
}
