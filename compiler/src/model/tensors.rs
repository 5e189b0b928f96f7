//! Weight tensors: from a safetensors file (F32 or F64) or inline in the model.

use super::ModelErrorKind;
use safetensors::{Dtype, SafeTensors};
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
}

impl TensorSource {
    /// Reads every tensor of a safetensors file.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelErrorKind> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| ModelErrorKind::Safetensors(e.to_string()))?;
        let mut tensors = BTreeMap::new();
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
                    return Err(ModelErrorKind::TensorType {
                        name,
                        dtype: format!("{other:?}"),
                    })
                }
            };
            tensors.insert(
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(TensorSource { tensors })
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
