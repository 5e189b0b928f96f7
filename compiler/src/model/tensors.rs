//! Weight tensors: from a safetensors file or inline in the model.
//!
//! Only F32 and F64 tensors are read. A PyTorch `state_dict` also holds tensors no layer of a
//! model file uses, some of other element types (every batch norm has an I64
//! `num_batches_tracked`), so a tensor of another type is not an error when the file is read:
//! its name and type are kept in [`TensorSource::skipped`], and only a layer that looks it up
//! fails ([`crate::ir::build`] names the file, layer, field and type).

use super::ModelErrorKind;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use std::collections::BTreeMap;

/// A dense tensor in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

/// Named tensors (`<layer>.<tensor>`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorSource {
    /// The tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Tensors of the weights file with an element type other than F32 or F64, by name: the
    /// type (`"I64"`, `"F16"`, …). They are not read; a layer that needs one is an error.
    pub skipped: BTreeMap<String, String>,
}

/// Our words for the safetensors crate's errors (its `Display` prints the variant names).
fn describe(err: &SafeTensorError, len: usize) -> String {
    match err {
        SafeTensorError::HeaderTooSmall => format!(
            "the file has {len} bytes, too short for the 8-byte header length that starts a \
             safetensors file"
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "the header length in the first 8 bytes points beyond the end of the file \
             ({len} bytes): truncated, or not a safetensors file"
        ),
        SafeTensorError::HeaderTooLarge => {
            "the header length in the first 8 bytes is over 100 MB: not a safetensors file".into()
        }
        SafeTensorError::InvalidHeader => "the JSON header (from byte 8) is not UTF-8 text".into(),
        SafeTensorError::InvalidHeaderStart => {
            "the JSON header (from byte 8) does not start with `{`".into()
        }
        SafeTensorError::InvalidHeaderDeserialization | SafeTensorError::JsonError(_) => {
            "the JSON header (from byte 8) is not a valid tensor table".into()
        }
        SafeTensorError::TensorNotFound(name) => format!("tensor `{name}` is missing"),
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's shape and element type do not match its byte range".into()
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor `{name}` has byte offsets outside the data or overlapping another")
        }
        SafeTensorError::IoError(e) => format!("cannot read: {e}"),
        SafeTensorError::InvalidTensorView(dtype, shape, bytes) => {
            format!("a {dtype:?} tensor of shape {shape:?} cannot be made from {bytes} bytes")
        }
        SafeTensorError::MetadataIncompleteBuffer => format!(
            "the tensors' byte ranges do not cover the data exactly (file of {len} bytes): \
             truncated or padded"
        ),
        SafeTensorError::ValidationOverflow => {
            "a tensor's shape is so large that its size overflows".into()
        }
    }
}

impl TensorSource {
    /// Reads every F32 and F64 tensor of a safetensors file and records the names and types
    /// of the others in [`TensorSource::skipped`]. Only a malformed file is an error.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelErrorKind> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| ModelErrorKind::Safetensors(describe(&e, bytes.len())))?;
        let mut source = TensorSource::default();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let data: Vec<f64> = match view.dtype() {
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
                other => {
                    source.skipped.insert(name, format!("{other:?}"));
                    continue;
                }
            };
            source.tensors.insert(
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(source)
    }

    /// Encodes tensors as a safetensors file of F32 values (for tests and generated models).
    pub fn to_safetensors_f32(&self) -> Result<Vec<u8>, String> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let data = t
                    .data
                    .iter()
                    .flat_map(|&v| (v as f32).to_le_bytes())
                    .collect();
                (name.clone(), t.shape.clone(), data)
            })
            .collect();
        let mut views = Vec::new();
        for (name, shape, data) in &bytes {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .map_err(|e| e.to_string())?;
            views.push((name.clone(), view));
        }
        safetensors::serialize(views, &None).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests stop on failure"
    )]

    use super::*;
    use safetensors::tensor::TensorView;

    /// A safetensors file of `(name, dtype, shape, little-endian bytes)`.
    fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                let view = TensorView::new(*dtype, shape.clone(), data).unwrap();
                ((*name).to_owned(), view)
            })
            .collect();
        safetensors::serialize(views, &None).unwrap()
    }

    #[test]
    fn damaged_weights_files_are_our_errors_never_panics() {
        let f32s: Vec<u8> = (0..64u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let bytes = file(&[("fc.weight", Dtype::F32, vec![8, 8], f32s)]);
        assert!(TensorSource::from_safetensors(&bytes).is_ok());
        let check = |b: &[u8], what: &str| {
            if let Err(ModelErrorKind::Safetensors(msg)) = TensorSource::from_safetensors(b) {
                // Our words, not the crate's variant names.
                assert!(
                    !msg.chars().next().is_some_and(char::is_uppercase) && !msg.contains("Error"),
                    "{what}: {msg}"
                );
            }
        };
        for cut in 0..bytes.len() {
            assert!(
                TensorSource::from_safetensors(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
            check(&bytes[..cut], &format!("cut {cut}"));
        }
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x41;
            check(&b, &format!("byte {at}"));
        }
        // An inflated header length.
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = TensorSource::from_safetensors(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad safetensors file: the header length in the first 8 bytes is over 100 MB: not a \
             safetensors file"
        );
        let err = TensorSource::from_safetensors(&bytes[..4]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("too short for the 8-byte header length that starts a safetensors file"),
            "{err}"
        );
    }

    #[test]
    fn reads_f32_and_f64_and_skips_other_types() {
        let f32s: Vec<u8> = [1.5f32, -0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f64s: Vec<u8> = 0.1f64.to_le_bytes().to_vec();
        let bytes = file(&[
            ("fc.weight", Dtype::F32, vec![1, 2], f32s),
            ("fc.bias", Dtype::F64, vec![1], f64s),
            (
                "bn.num_batches_tracked",
                Dtype::I64,
                vec![],
                7i64.to_le_bytes().to_vec(),
            ),
            (
                "half.weight",
                Dtype::F16,
                vec![2],
                vec![0x00, 0x3c, 0x00, 0xc0],
            ),
        ]);
        let source = TensorSource::from_safetensors(&bytes).unwrap();
        assert_eq!(
            source.tensors.get("fc.weight"),
            Some(&Tensor {
                shape: vec![1, 2],
                data: vec![1.5, -0.25],
            })
        );
        assert_eq!(source.tensors["fc.bias"].data, vec![0.1]);
        assert_eq!(source.tensors.len(), 2);
        let skipped: Vec<(&str, &str)> = source
            .skipped
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            skipped,
            vec![("bn.num_batches_tracked", "I64"), ("half.weight", "F16")]
        );
    }

    #[test]
    fn a_malformed_file_is_still_an_error() {
        let err = TensorSource::from_safetensors(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}");
        assert!(
            matches!(err, Err(ModelErrorKind::Safetensors(_))),
            "{err:?}"
        );
    }

    #[test]
    fn f32_files_round_trip() {
        let mut source = TensorSource::default();
        source.tensors.insert(
            "conv.weight".into(),
            Tensor {
                shape: vec![2, 1, 1, 2],
                data: vec![0.5, -1.0, 2.0, 0.125],
            },
        );
        let bytes = source.to_safetensors_f32().unwrap();
        assert_eq!(TensorSource::from_safetensors(&bytes).unwrap(), source);
    }
}
