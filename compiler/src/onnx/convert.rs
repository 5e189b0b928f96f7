//! ONNX graph → model layers. Nodes are visited in the file's (topological) order; every value
//! is either a constant (an initialiser or a `Constant` node) or an activation produced by a
//! layer. Constants only ever become layer tensors: an operator is supported when its
//! non-activation inputs are constants. Shapes are tracked without the batch dimension, the
//! way the model file writes them.

use super::proto::{attr_type, dtype, Dim, GraphProto, ModelProto, NodeProto, TensorProto};
use super::{ImportOptions, Imported, OnnxError};
use crate::model::{Activation, Input, Layer, Model, Op, Padding, Tensor, TensorSource};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

mod gelu;

/// Oldest default-domain opset imported.
pub const MIN_OPSET: i64 = 13;
/// Newest default-domain opset imported (the operators used have kept their meaning).
pub const MAX_OPSET: i64 = 25;

/// Most values of one constant tensor.
const MAX_TENSOR_VALUES: usize = 1 << 28;

/// Kernel, stride, padding and output shape of a window op.
type Window = ((usize, usize), (usize, usize), Padding, Vec<usize>);

/// A constant: its ONNX dims and values.
#[derive(Clone, Debug)]
struct Const {
    dims: Vec<usize>,
    data: Vec<f64>,
    /// Integer tensors keep exact values (shapes, pads, axes).
    ints: Option<Vec<i64>>,
}

impl Const {
    fn scalar(&self) -> Option<f64> {
        (self.data.len() == 1).then(|| self.data[0])
    }
}

/// An activation: produced by layer `layer` (`None`: the model input), `shape` without the
/// batch dimension, plus zero padding a `Pad` node asked for and the next layer must take.
#[derive(Clone, Debug)]
struct Act {
    layer: Option<usize>,
    shape: Vec<usize>,
    pad: Option<Padding>,
}

#[derive(Clone, Debug)]
enum Val {
    Const(Const),
    Act(Act),
    /// A tensor of a type the importer does not read (its type name).
    Unread(String),
    /// Part of the GELU pattern (see `gelu`), not yet a layer.
    Gelu(gelu::Part),
}

struct Converter<'a> {
    file: &'a Path,
    opset: i64,
    values: HashMap<String, Val>,
    uses: HashMap<String, usize>,
    layers: Vec<Layer>,
    tensors: BTreeMap<String, Tensor>,
    names: HashSet<String>,
    notes: Vec<String>,
    output: String,
    half_note: bool,
    /// Values read by an `Erf` node (where the GELU pattern may start).
    erf_inputs: HashSet<String>,
}

/// Rounds to float32: ONNX tensors are float32, and the model file's weights are written as
/// float32, so importing and compiling directly hold the same values.
fn f32r(v: f64) -> f64 {
    f64::from(v as f32)
}

/// The layer-name part of an ONNX node name: PyTorch names nodes by module path and operator
/// (`/layer1/layer1.0/conv1/Conv`), which becomes `layer1.0.conv1`, the `state_dict` prefix.
fn base_name(node: &NodeProto) -> String {
    let mut parts: Vec<&str> = node.name.split('/').filter(|p| !p.is_empty()).collect();
    if let Some(last) = parts.last() {
        let rest = last.strip_prefix(node.op_type.as_str());
        if rest.is_some_and(|r| {
            r.is_empty()
                || r.strip_prefix('_')
                    .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
        }) && parts.len() > 1
        {
            parts.pop();
        }
    }
    let mut path = String::new();
    for p in parts {
        if path.is_empty() || p.starts_with(&format!("{path}.")) {
            path = p.to_owned();
        } else {
            path = format!("{path}.{p}");
        }
    }
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n super::proto::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// Reads an initialiser's values.
fn read_tensor(t: &TensorProto, notes_half: &mut bool) -> Result<Val, String> {
    if t.data_location == 1 {
        return Err(format!(
            "tensor `{}` keeps its data in an external file, which is not supported; save the \
             model as one file (torch.onnx.export without external data, or \
             onnx.save(model, path, save_as_external_data=False))",
            t.name
        ));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("tensor `{}` has dimension {d}", t.name))?;
        dims.push(d);
    }
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_TENSOR_VALUES)
        .ok_or_else(|| {
            format!(
                "tensor `{}` has dims {:?}, more than {MAX_TENSOR_VALUES} values",
                t.name, t.dims
            )
        })?;
    let count = |found: usize| -> Result<(), String> {
        if found == n {
            Ok(())
        } else {
            Err(format!(
                "tensor `{}` holds {found} values but its dims {:?} say {n} (truncated or damaged file?)",
                t.name, t.dims
            ))
        }
    };
    let raw = |width: usize| -> Result<Option<&[u8]>, String> {
        if t.raw_data.is_empty() {
            return Ok(None);
        }
        if t.raw_data.len() != n.saturating_mul(width) {
            return Err(format!(
                "tensor `{}` has {} bytes of raw data, its dims {:?} and type {} need {}",
                t.name,
                t.raw_data.len(),
                t.dims,
                dtype::name(t.data_type),
                n.saturating_mul(width)
            ));
        }
        Ok(Some(&t.raw_data))
    };
    let half = |bits: u16, bf: bool| -> f64 {
        if bf {
            f64::from(f32::from_bits(u32::from(bits) << 16))
        } else {
            f16_to_f64(bits)
        }
    };
    let (data, ints) = match t.data_type {
        dtype::FLOAT => {
            let data: Vec<f64> = match raw(4)? {
                Some(b) => b
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
                None => t.float_data.iter().map(|&v| f64::from(v)).collect(),
            };
            (data, None)
        }
        dtype::DOUBLE => {
            let data: Vec<f64> = match raw(8)? {
                Some(b) => b
                    .chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        f64::from_le_bytes(a)
                    })
                    .collect(),
                None => t.double_data.clone(),
            };
            (data.into_iter().map(f32r).collect(), None)
        }
        dtype::FLOAT16 | dtype::BFLOAT16 => {
            let bf = t.data_type == dtype::BFLOAT16;
            *notes_half = true;
            let data: Vec<f64> = match raw(2)? {
                Some(b) => b
                    .chunks_exact(2)
                    .map(|c| half(u16::from_le_bytes([c[0], c[1]]), bf))
                    .collect(),
                None => t
                    .int32_data
                    .iter()
                    .map(|&v| half((v & 0xffff) as u16, bf))
                    .collect(),
            };
            (data, None)
        }
        dtype::INT64 | dtype::INT32 => {
            let ints: Vec<i64> = if t.data_type == dtype::INT64 {
                match raw(8)? {
                    Some(b) => b
                        .chunks_exact(8)
                        .map(|c| {
                            let mut a = [0u8; 8];
                            a.copy_from_slice(c);
                            i64::from_le_bytes(a)
                        })
                        .collect(),
                    None => t.int64_data.clone(),
                }
            } else {
                match raw(4)? {
                    Some(b) => b
                        .chunks_exact(4)
                        .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                        .collect(),
                    None => t.int32_data.iter().map(|&v| i64::from(v as i32)).collect(),
                }
            };
            (ints.iter().map(|&v| v as f64).collect(), Some(ints))
        }
        other => return Ok(Val::Unread(dtype::name(other))),
    };
    count(data.len())?;
    Ok(Val::Const(Const { dims, data, ints }))
}

/// IEEE binary16 → f64.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Entry point: checks the model as a whole, then converts node by node.
pub(super) fn convert(
    file: &Path,
    m: &ModelProto,
    opts: &ImportOptions,
) -> Result<Imported, OnnxError> {
    let model_err = |what: String| OnnxError::Model {
        file: file.to_path_buf(),
        what,
    };
    let Some(g) = &m.graph else {
        return Err(model_err(
            "the file holds no graph (is it an ONNX model?)".into(),
        ));
    };
    let opset = m
        .opset_import
        .iter()
        .find(|(d, _)| d.is_empty() || d == "ai.onnx")
        .map(|(_, v)| *v)
        .ok_or_else(|| model_err("the model imports no default-domain opset".into()))?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(model_err(format!(
            "opset {opset} is not supported: export with opset_version between {MIN_OPSET} and \
             {MAX_OPSET} (e.g. torch.onnx.export(..., opset_version=17))"
        )));
    }
    if g.has_sparse_initializer {
        return Err(model_err(
            "sparse initialisers are not supported; store the weights as dense tensors".into(),
        ));
    }
    let Some((min, max)) = opts.input_range else {
        return Err(OnnxError::NoInputRange {
            file: file.to_path_buf(),
        });
    };
    let mut c = Converter {
        file,
        opset,
        values: HashMap::new(),
        uses: HashMap::new(),
        layers: Vec::new(),
        tensors: BTreeMap::new(),
        names: HashSet::new(),
        notes: Vec::new(),
        output: String::new(),
        half_note: false,
        erf_inputs: g
            .node
            .iter()
            .filter(|n| n.op_type == "Erf")
            .filter_map(|n| n.input.first().cloned())
            .collect(),
    };
    for t in &g.initializer {
        let v = read_tensor(t, &mut c.half_note).map_err(model_err)?;
        c.values.insert(t.name.clone(), v);
    }
    let shape = c.input(g)?;
    if g.output.len() != 1 {
        return Err(model_err(format!(
            "the graph has {} outputs; Veil models have one (the class scores)",
            g.output.len()
        )));
    }
    c.output = g.output[0].name.clone();
    for n in &g.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *c.uses.entry(i.clone()).or_default() += 1;
        }
    }
    *c.uses.entry(c.output.clone()).or_default() += 1;
    for n in &g.node {
        c.node(n)?;
    }
    if c.half_note {
        c.notes
            .push("half-precision (float16/bfloat16) tensors were widened to float32".into());
    }
    let out = match c.values.get(&c.output) {
        Some(Val::Act(a)) if a.pad.is_none() => a.layer,
        Some(Val::Act(_)) => {
            return Err(model_err(
                "the graph ends with a Pad; nothing would use the padding".into(),
            ))
        }
        Some(_) => {
            return Err(model_err(format!(
                "the graph output `{}` is a constant, not computed from the input",
                c.output
            )))
        }
        None => {
            return Err(model_err(format!(
                "the graph output `{}` is not produced by any node",
                c.output
            )))
        }
    };
    let Some(out) = out else {
        return Err(model_err(
            "the graph output is the input itself; there is nothing to compile".into(),
        ));
    };
    let notes = std::mem::take(&mut c.notes);
    let (layers, tensors) = c.finish(out);
    let stem = file
        .file_stem()
        .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned());
    let model = Model {
        name: stem.clone(),
        input: Input { shape, min, max },
        weights: (!tensors.is_empty()).then(|| format!("{stem}.safetensors")),
        classes: opts.class_names.clone().unwrap_or_default(),
        layers,
    };
    Ok(Imported {
        model,
        tensors: TensorSource {
            tensors,
            skipped: BTreeMap::new(),
        },
        notes,
    })
}

impl Converter<'_> {
    fn model_err(&self, what: String) -> OnnxError {
        OnnxError::Model {
            file: self.file.to_path_buf(),
            what,
        }
    }

    /// The graph's one non-initialiser input: float, static shape, batch 1 or symbolic.
    fn input(&mut self, g: &GraphProto) -> Result<Vec<usize>, OnnxError> {
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|i| !self.values.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(self.model_err(format!(
                "the graph has {} inputs ({}); Veil models take one tensor",
                inputs.len(),
                inputs
                    .iter()
                    .map(|i| format!("`{}`", i.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if input.elem_type != dtype::FLOAT {
            return Err(self.model_err(format!(
                "the input `{}` has element type {}; export the model with a float32 input",
                input.name,
                dtype::name(input.elem_type)
            )));
        }
        let Some(dims) = &input.shape else {
            return Err(self.model_err(format!(
                "the input `{}` has no shape; export with a fixed input shape (a dummy input of \
                 the real size)",
                input.name
            )));
        };
        if dims.len() < 2 {
            return Err(self.model_err(format!(
                "the input `{}` has rank {}; expected a batch dimension then the sample's shape \
                 (e.g. [1, 1, 28, 28])",
                input.name,
                dims.len()
            )));
        }
        match &dims[0] {
            Dim::Value(1) | Dim::Param(_) | Dim::Unknown => {}
            Dim::Value(b) => {
                return Err(self.model_err(format!(
                    "the input `{}` has batch dimension {b}; export with batch size 1 or a \
                     symbolic batch dimension",
                    input.name
                )))
            }
        }
        let mut shape = Vec::new();
        for (axis, d) in dims.iter().enumerate().skip(1) {
            match d {
                Dim::Value(v) if *v > 0 && *v <= 1 << 24 => shape.push(*v as usize),
                Dim::Value(v) => {
                    return Err(self.model_err(format!(
                        "the input `{}` has size {v} on axis {axis}",
                        input.name
                    )))
                }
                Dim::Param(p) => {
                    return Err(self.model_err(format!(
                        "the input `{}` has a dynamic size `{p}` on axis {axis}; Veil compiles \
                         static shapes: export without dynamic_axes for that axis (only the \
                         batch axis may be symbolic)",
                        input.name
                    )))
                }
                Dim::Unknown => {
                    return Err(self.model_err(format!(
                        "the input `{}` has an unknown size on axis {axis}; Veil compiles \
                         static shapes: export with a fixed input shape",
                        input.name
                    )))
                }
            }
        }
        self.values.insert(
            input.name.clone(),
            Val::Act(Act {
                layer: None,
                shape: shape.clone(),
                pad: None,
            }),
        );
        Ok(shape)
    }

    /// The kept layers (those the output depends on) with implicit inputs where a layer reads
    /// the previous one, and their tensors.
    fn finish(self, out: usize) -> (Vec<Layer>, BTreeMap<String, Tensor>) {
        let index: HashMap<&str, usize> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect();
        let mut keep = vec![false; self.layers.len()];
        let mut stack = vec![out];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut keep[i], true) {
                continue;
            }
            for input in &self.layers[i].inputs {
                if let Some(&j) = index.get(input.as_str()) {
                    stack.push(j);
                }
            }
        }
        let mut layers: Vec<Layer> = Vec::new();
        for (i, mut l) in self.layers.into_iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let previous = layers.last().map_or("input", |p| p.name.as_str());
            if l.inputs.len() == 1 && l.inputs[0] == previous {
                l.inputs.clear();
            }
            layers.push(l);
        }
        let kept: HashSet<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        let tensors = self
            .tensors
            .into_iter()
            .filter(|(name, _)| {
                name.rsplit_once('.')
                    .is_some_and(|(layer, _)| kept.contains(layer))
            })
            .collect();
        (layers, tensors)
    }

    fn node_err(&self, n: &NodeProto, what: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            file: self.file.to_path_buf(),
            node: if n.name.is_empty() {
                n.output.first().cloned().unwrap_or_default()
            } else {
                n.name.clone()
            },
            op_type: n.op_type.clone(),
            opset: self.opset,
            what: what.into(),
        }
    }

    fn value(&self, n: &NodeProto, i: usize) -> Result<&Val, OnnxError> {
        let name = n
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.node_err(n, format!("input {i} is missing")))?;
        self.values.get(name).ok_or_else(|| {
            self.node_err(
                n,
                format!(
                    "input `{name}` is neither an initialiser nor the output of an earlier node \
                     (a missing initialiser, or nodes out of order)"
                ),
            )
        })
    }

    /// Input `i` as an activation; a pending zero pad is an error unless `pad_ok`.
    fn act(&self, n: &NodeProto, i: usize, pad_ok: bool) -> Result<Act, OnnxError> {
        match self.value(n, i)? {
            Val::Act(a) if a.pad.is_some() && !pad_ok => Err(self.node_err(
                n,
                "reads the output of a Pad; zero padding is supported only right before a \
                 Conv, AveragePool or MaxPool, which take it over",
            )),
            Val::Act(a) => Ok(a.clone()),
            Val::Gelu(_) => Err(self.node_err(n, gelu::PART_READ)),
            _ => Err(self.node_err(
                n,
                format!(
                    "input {i} is a constant; it must be computed from the model input \
                     (constant folding is not supported: export with do_constant_folding=True)"
                ),
            )),
        }
    }

    /// Input `i` as a constant.
    fn constant(&self, n: &NodeProto, i: usize, what: &str) -> Result<Const, OnnxError> {
        match self.value(n, i)? {
            Val::Const(c) => Ok(c.clone()),
            Val::Gelu(_) => Err(self.node_err(n, gelu::PART_READ)),
            Val::Unread(t) => Err(self.node_err(
                n,
                format!("{what} (input {i}) has element type {t}; only float and integer tensors are read"),
            )),
            Val::Act(_) => Err(self.node_err(
                n,
                format!(
                    "{what} (input {i}) is computed from the model input; it must be an \
                     initialiser (a constant)"
                ),
            )),
        }
    }

    fn optional_constant(
        &self,
        n: &NodeProto,
        i: usize,
        what: &str,
    ) -> Result<Option<Const>, OnnxError> {
        if n.input.get(i).is_none_or(|s| s.is_empty()) {
            return Ok(None);
        }
        self.constant(n, i, what).map(Some)
    }

    fn ints_of(&self, n: &NodeProto, c: &Const, what: &str) -> Result<Vec<i64>, OnnxError> {
        c.ints
            .clone()
            .ok_or_else(|| self.node_err(n, format!("{what} must be an integer tensor")))
    }

    fn set_output(&mut self, n: &NodeProto, v: Val) {
        if let Some(o) = n.output.first() {
            self.values.insert(o.clone(), v);
        }
    }

    fn alias(&mut self, n: &NodeProto, a: Act) {
        self.set_output(n, Val::Act(a));
    }

    /// A fresh, unique layer name for node `n`.
    fn layer_name(&mut self, n: &NodeProto) -> String {
        let mut base = base_name(n);
        if base.is_empty() || base == "input" {
            base = format!("{}{}", n.op_type.to_ascii_lowercase(), self.layers.len());
        }
        let mut name = base.clone();
        let mut k = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    fn input_name(&self, a: &Act) -> String {
        a.layer
            .map_or_else(|| "input".to_owned(), |i| self.layers[i].name.clone())
    }

    /// Adds a layer reading `inputs` and makes it the node's output.
    fn push(
        &mut self,
        n: &NodeProto,
        op: Op,
        inputs: &[&Act],
        shape: Vec<usize>,
        tensors: Vec<(&str, Vec<usize>, Vec<f64>)>,
    ) {
        let name = self.layer_name(n);
        for (t, dims, data) in tensors {
            self.tensors.insert(
                format!("{name}.{t}"),
                Tensor {
                    shape: dims,
                    data: data.into_iter().map(f32r).collect(),
                },
            );
        }
        let inputs = inputs.iter().map(|a| self.input_name(a)).collect();
        self.layers.push(Layer {
            name,
            op,
            inputs,
            params: BTreeMap::new(),
        });
        let layer = Some(self.layers.len() - 1);
        self.set_output(
            n,
            Val::Act(Act {
                layer,
                shape,
                pad: None,
            }),
        );
    }

    fn node(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(self.node_err(
                n,
                format!(
                    "operator domain `{}` is not supported; only standard ONNX operators are \
                     (export without custom operators)",
                    n.domain
                ),
            ));
        }
        if self.gelu_step(n)? {
            return Ok(());
        }
        match n.op_type.as_str() {
            "Constant" => self.constant_node(n),
            "Identity" => {
                let a = self.act(n, 0, true)?;
                self.alias(n, a);
                Ok(())
            }
            "Dropout" => self.dropout(n),
            "Conv" => self.conv(n),
            "Gemm" => self.gemm(n),
            "MatMul" => self.matmul(n),
            "Add" | "Sub" => self.add(n),
            "Mul" => self.mul(n),
            "Div" => self.div(n),
            "Pow" => self.pow(n),
            "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Gelu" => self.activation(n),
            "BatchNormalization" => self.batch_norm(n),
            "Flatten" => self.flatten(n),
            "Reshape" => self.reshape(n),
            "Squeeze" | "Unsqueeze" => self.squeeze_or_unsqueeze(n),
            "AveragePool" | "MaxPool" => self.pool(n),
            "GlobalAveragePool" => self.global_average_pool(n),
            "Softmax" | "LogSoftmax" => self.final_softmax(n),
            "Pad" => self.pad(n),
            other => Err(self.node_err(n, unsupported_hint(other))),
        }
    }

    /// `Dropout`: dropped at inference (an error when its mask is read).
    fn dropout(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        if n.output.get(1).is_some_and(|m| self.uses.contains_key(m)) {
            return Err(self.node_err(n, "the dropout mask is used; at inference there is none"));
        }
        let a = self.act(n, 0, false)?;
        self.alias(n, a);
        Ok(())
    }

    /// `Div` by a constant: a per-channel scale by the inverse.
    fn div(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let c = self.constant(n, 1, "the divisor")?;
        if c.data.contains(&0.0) {
            return Err(self.node_err(n, "divides by zero"));
        }
        let inv = Const {
            data: c.data.iter().map(|v| 1.0 / v).collect(),
            ..c
        };
        self.channel_affine(n, &a, Some(&inv), None)
    }

    /// `Pow(x, 2)` is a square, `Pow(x, 1)` the identity; other exponents are refused.
    fn pow(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let e = self.constant(n, 1, "the exponent")?;
        match e.scalar() {
            Some(2.0) => {
                let shape = a.shape.clone();
                self.push(n, Op::Activation(Activation::Square), &[&a], shape, vec![]);
                Ok(())
            }
            Some(1.0) => {
                self.alias(n, a);
                Ok(())
            }
            _ => Err(self.node_err(
                n,
                "only Pow(x, 2) (a square) is supported; an encrypted circuit computes \
                 additions and multiplications only",
            )),
        }
    }

    /// `Relu`, `LeakyRelu` (imported as Relu, with a note), `Sigmoid`, `Tanh`: the activation layers the model format has, replaced when compiled as the RON path does.
    fn activation(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let act = match n.op_type.as_str() {
            "Sigmoid" => Activation::Sigmoid,
            "Tanh" => Activation::Tanh,
            "Gelu" => {
                if attr_str(n, "approximate").is_some_and(|a| a == "tanh") {
                    self.notes.push(format!(
                        "Gelu `{}` uses the tanh approximation; it is imported as the exact \
                         GELU (they differ by less than 10⁻³); both are replaced when compiled",
                        n.name
                    ));
                }
                Activation::Gelu
            }
            "LeakyRelu" => {
                self.notes.push(format!(
                    "LeakyRelu `{}` is imported as Relu (alpha {} ignored); both are \
                     replaced by x² when compiled",
                    n.name,
                    attr_float(n, "alpha", 0.01)
                ));
                Activation::Relu
            }
            _ => Activation::Relu,
        };
        let shape = a.shape.clone();
        self.push(n, Op::Activation(act), &[&a], shape, vec![]);
        Ok(())
    }

    /// `Flatten` with axis 1 (the batch axis stays first).
    fn flatten(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let rank = a.shape.len() as i64 + 1;
        let mut axis = attr_int(n, "axis", 1);
        if axis < 0 {
            axis += rank;
        }
        if axis != 1 {
            return Err(self.node_err(
                n,
                format!(
                    "Flatten with axis {axis} is not supported; use axis 1 (torch.flatten(x, 1))"
                ),
            ));
        }
        self.reshape_to(n, a, &[1, usize::MAX])
    }

    /// `Reshape` to a constant target shape (0 copies a dimension, −1 is inferred).
    fn reshape(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let c = self.constant(n, 1, "the target shape")?;
        let target = self.ints_of(n, &c, "the target shape")?;
        let from: Vec<usize> = std::iter::once(1).chain(a.shape.iter().copied()).collect();
        let mut dims = Vec::with_capacity(target.len());
        let mut infer = None;
        for (k, &t) in target.iter().enumerate() {
            match t {
                0 if attr_int(n, "allowzero", 0) == 0 => match from.get(k) {
                    Some(&d) => dims.push(d),
                    None => {
                        return Err(self
                            .node_err(n, "a 0 in the target shape has no input dimension to copy"))
                    }
                },
                -1 if infer.is_none() => {
                    infer = Some(k);
                    dims.push(usize::MAX);
                }
                t if t > 0 => dims.push(t as usize),
                _ => {
                    return Err(
                        self.node_err(n, format!("target shape {target:?} is not supported"))
                    )
                }
            }
        }
        self.reshape_to(n, a, &dims)
    }

    /// `Squeeze` / `Unsqueeze` of unit axes other than the batch axis.
    fn squeeze_or_unsqueeze(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let axes = match self.optional_constant(n, 1, "the axes")? {
            Some(c) => Some(self.ints_of(n, &c, "the axes")?),
            None => attr_ints(n, "axes"),
        };
        let mut dims: Vec<usize> = std::iter::once(1).chain(a.shape.iter().copied()).collect();
        if n.op_type == "Squeeze" {
            let rank = dims.len() as i64;
            let axes: Vec<i64> = match axes {
                Some(ax) => ax
                    .iter()
                    .map(|&x| if x < 0 { x + rank } else { x })
                    .collect(),
                None => (1..rank).filter(|&k| dims[k as usize] == 1).collect(),
            };
            if axes
                .iter()
                .any(|&x| x <= 0 || x >= rank || dims[x as usize] != 1)
            {
                return Err(self.node_err(
                    n,
                    format!(
                        "cannot squeeze axes {axes:?} of shape {dims:?} (the batch axis stays)"
                    ),
                ));
            }
            let keep: Vec<usize> = (0..dims.len())
                .filter(|k| !axes.contains(&(*k as i64)))
                .map(|k| dims[k])
                .collect();
            dims = keep;
        } else {
            let Some(axes) = axes else {
                return Err(self.node_err(n, "Unsqueeze without axes"));
            };
            let rank = (dims.len() + axes.len()) as i64;
            let mut axes: Vec<i64> = axes
                .iter()
                .map(|&x| if x < 0 { x + rank } else { x })
                .collect();
            axes.sort_unstable();
            for &x in &axes {
                if x <= 0 || x > dims.len() as i64 {
                    return Err(self.node_err(n, format!("cannot unsqueeze axis {x} of shape {dims:?} (the batch axis stays first)")));
                }
                dims.insert(x as usize, 1);
            }
        }
        self.reshape_to(n, a, &dims)
    }

    /// `GlobalAveragePool`: an average pool over the whole H×W plane.
    fn global_average_pool(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let [c, h, w] = a.shape[..] else {
            return Err(self.node_err(n, format!("expects a C×H×W input, found {:?}", a.shape)));
        };
        self.push(
            n,
            Op::AvgPool2d {
                kernel: (h, w),
                stride: (1, 1),
                padding: Padding::default(),
            },
            &[&a],
            vec![c, 1, 1],
            vec![],
        );
        Ok(())
    }

    /// A final `Softmax` / `LogSoftmax`: dropped (the argmax is unchanged); anywhere else refused.
    fn final_softmax(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        if n.output.first() != Some(&self.output) {
            return Err(self.node_err(
                n,
                "softmax is supported only as the last operation (where it is dropped: \
                 the class with the highest score is unchanged)",
            ));
        }
        self.notes.push(format!(
            "the final {} `{}` was dropped: the plan outputs scores whose argmax (the \
             predicted class) is the same",
            n.op_type, n.name
        ));
        self.alias(n, a);
        Ok(())
    }

    fn constant_node(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let Some(a) = n.attribute.first() else {
            return Err(self.node_err(n, "Constant without a value"));
        };
        let c = match (a.name.as_str(), a.kind) {
            ("value", attr_type::TENSOR) | ("value", 0) if a.t.is_some() => {
                let Some(t) = &a.t else {
                    return Err(self.node_err(n, "Constant without a value"));
                };
                read_tensor(t, &mut self.half_note).map_err(|e| self.node_err(n, e))?
            }
            ("value_float", _) => Val::Const(Const {
                dims: vec![],
                data: vec![f64::from(a.f)],
                ints: None,
            }),
            ("value_floats", _) => Val::Const(Const {
                dims: vec![a.floats.len()],
                data: a.floats.iter().map(|&v| f64::from(v)).collect(),
                ints: None,
            }),
            ("value_int", _) => Val::Const(Const {
                dims: vec![],
                data: vec![a.i as f64],
                ints: Some(vec![a.i]),
            }),
            ("value_ints", _) => Val::Const(Const {
                dims: vec![a.ints.len()],
                data: a.ints.iter().map(|&v| v as f64).collect(),
                ints: Some(a.ints.clone()),
            }),
            (name, _) => {
                return Err(
                    self.node_err(n, format!("Constant attribute `{name}` is not supported"))
                )
            }
        };
        self.set_output(n, c);
        Ok(())
    }

    /// Layer for a reshape of `a` to ONNX dims `dims` (batch first; `usize::MAX` once: infer).
    fn reshape_to(&mut self, n: &NodeProto, a: Act, dims: &[usize]) -> Result<(), OnnxError> {
        let total: usize = a.shape.iter().product();
        let known: usize = dims.iter().filter(|&&d| d != usize::MAX).product();
        let mut dims = dims.to_vec();
        if let Some(k) = dims.iter().position(|&d| d == usize::MAX) {
            if known == 0 || !total.is_multiple_of(known) {
                return Err(self.node_err(n, format!("cannot reshape {:?} to {dims:?}", a.shape)));
            }
            dims[k] = total / known;
        }
        if dims.first() != Some(&1) || dims.iter().product::<usize>() != total {
            return Err(self.node_err(
                n,
                format!(
                    "reshapes [1, {}] to {dims:?}; only reshapes that keep the batch axis and \
                     the number of values are supported",
                    a.shape
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let shape = dims[1..].to_vec();
        if shape == a.shape {
            self.alias(n, a);
        } else if shape.len() == 1 {
            self.push(n, Op::Flatten, &[&a], shape, vec![]);
        } else {
            self.push(
                n,
                Op::Reshape {
                    shape: shape.clone(),
                },
                &[&a],
                shape,
                vec![],
            );
        }
        Ok(())
    }

    /// Kernel, stride, padding and output shape of a 2-D window op (Conv, pools), with checks.
    fn window(
        &mut self,
        n: &NodeProto,
        a: &Act,
        kernel: Option<(usize, usize)>,
    ) -> Result<Window, OnnxError> {
        let [ch, h, w] = a.shape[..] else {
            return Err(self.node_err(
                n,
                format!("expects a C×H×W input (2-D), found shape {:?}", a.shape),
            ));
        };
        let pair = |name: &str, default: usize| -> Result<(usize, usize), OnnxError> {
            match attr_ints(n, name) {
                None => Ok((default, default)),
                Some(v) => match v[..] {
                    [a, b] if a > 0 && b > 0 && a <= 1 << 16 && b <= 1 << 16 => {
                        Ok((a as usize, b as usize))
                    }
                    _ => Err(self.node_err(
                        n,
                        format!("{name} {v:?} is not supported (two positive values)"),
                    )),
                },
            }
        };
        if pair("dilations", 1)? != (1, 1) {
            return Err(self.node_err(n, "dilation other than 1 is not supported"));
        }
        let auto_pad = attr_str(n, "auto_pad").unwrap_or_default();
        if !(auto_pad.is_empty() || auto_pad == "NOTSET" || auto_pad == "VALID") {
            return Err(self.node_err(
                n,
                format!("auto_pad {auto_pad} is not supported; give explicit pads"),
            ));
        }
        let kernel = match (kernel, attr_ints(n, "kernel_shape")) {
            (Some(k), None) => k,
            (k, Some(_)) => {
                let ks = pair("kernel_shape", 1)?;
                if k.is_some_and(|k| k != ks) {
                    return Err(self.node_err(n, "kernel_shape does not match the weights"));
                }
                ks
            }
            (None, None) => return Err(self.node_err(n, "kernel_shape is missing")),
        };
        let stride = pair("strides", 1)?;
        let mut padding = a.pad.unwrap_or_default();
        if let Some(p) = attr_ints(n, "pads") {
            let [t, l, b, r] = p[..] else {
                return Err(self.node_err(n, format!("pads {p:?} should have 4 values")));
            };
            if [t, l, b, r].iter().any(|&v| !(0..=1 << 16).contains(&v)) {
                return Err(self.node_err(n, format!("pads {p:?} are not supported")));
            }
            padding.top += t as usize;
            padding.left += l as usize;
            padding.bottom += b as usize;
            padding.right += r as usize;
        }
        let (ph, pw) = (
            h + padding.top + padding.bottom,
            w + padding.left + padding.right,
        );
        if kernel.0 > ph || kernel.1 > pw {
            return Err(self.node_err(
                n,
                format!(
                    "window {}×{} is larger than the padded input {ph}×{pw}",
                    kernel.0, kernel.1
                ),
            ));
        }
        let mut out = vec![
            ch,
            (ph - kernel.0) / stride.0 + 1,
            (pw - kernel.1) / stride.1 + 1,
        ];
        if attr_int(n, "ceil_mode", 0) != 0 {
            // Rounding up adds a last window that runs past the bottom/right padding; it must
            // start inside the input or the left padding (the rule PyTorch and ONNX share).
            let ceil = |size: usize, before: usize, padded: usize, k: usize, s: usize| {
                let mut o = (padded - k).div_ceil(s) + 1;
                if (o - 1) * s >= size + before {
                    o -= 1;
                }
                (o, ((o - 1) * s + k).saturating_sub(padded))
            };
            let (oh, extra_h) = ceil(h, padding.top, ph, kernel.0, stride.0);
            let (ow, extra_w) = ceil(w, padding.left, pw, kernel.1, stride.1);
            if extra_h + extra_w > 0 {
                if n.op_type != "MaxPool" {
                    return Err(self.node_err(
                        n,
                        format!(
                            "ceil_mode=1 adds a last window that runs {extra_h} row(s) and \
                             {extra_w} column(s) past the input; its average would be over fewer \
                             values than the others, which a uniform average pool cannot \
                             compute; use ceil_mode=False or pad the input explicitly"
                        ),
                    ));
                }
                self.notes.push(format!(
                    "MaxPool `{}` with ceil_mode=1: its last window is padded with {extra_h} \
                     row(s) and {extra_w} column(s) of zeros (exact after a ReLU); it is \
                     replaced by a sum pool when compiled anyway",
                    n.name
                ));
                padding.bottom += extra_h;
                padding.right += extra_w;
                out[1] = oh;
                out[2] = ow;
            }
        }
        // Bottom/right padding no window reaches is dropped: `Conv2d(padding=1)` with stride 2
        // over an even size reads the top/left padding only (as the shipped CryptoNets conv1
        // declares it), and PyTorch exports `F.pad` with a dynamic batch as a subgraph.
        let reach = |o: usize, s: usize, k: usize| (o - 1) * s + k;
        let unused_h =
            (h + padding.top + padding.bottom).saturating_sub(reach(out[1], stride.0, kernel.0));
        let unused_w =
            (w + padding.left + padding.right).saturating_sub(reach(out[2], stride.1, kernel.1));
        padding.bottom -= unused_h.min(padding.bottom);
        padding.right -= unused_w.min(padding.right);
        Ok((kernel, stride, padding, out))
    }

    fn conv(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, true)?;
        let w = self.constant(n, 1, "the weights")?;
        let b = self.optional_constant(n, 2, "the bias")?;
        let w = self.ungroup(n, &a, w)?;
        let [o, i, kh, kw] = w.dims[..] else {
            return Err(self.node_err(
                n,
                format!(
                    "weights of shape {:?}: only 2-D convolutions are supported",
                    w.dims
                ),
            ));
        };
        if a.shape.first() != Some(&i) {
            return Err(self.node_err(
                n,
                format!(
                    "weights {:?} expect {i} input channels, the input is {:?}",
                    w.dims, a.shape
                ),
            ));
        }
        let (kernel, stride, padding, mut out) = self.window(n, &a, Some((kh, kw)))?;
        out[0] = o;
        let mut tensors = vec![("weight", w.dims.clone(), w.data)];
        if let Some(b) = &b {
            if b.data.len() != o {
                return Err(
                    self.node_err(n, format!("bias has {} values, expected {o}", b.data.len()))
                );
            }
            tensors.push(("bias", vec![o], b.data.clone()));
        }
        self.push(
            n,
            Op::Conv2d {
                out_channels: o,
                kernel,
                stride,
                padding,
                bias: b.is_some(),
            },
            &[&a],
            out,
            tensors,
        );
        Ok(())
    }

    /// The weights of a grouped Conv (`group` > 1, depthwise included) as those of the
    /// equivalent full convolution: zero between channels of different groups. The model
    /// format has no groups; the weight tensor is `group` times larger, but the compiler's
    /// sparse linear maps drop zero weights, so the circuit is the grouped one's.
    fn ungroup(&mut self, n: &NodeProto, a: &Act, w: Const) -> Result<Const, OnnxError> {
        let group = attr_int(n, "group", 1);
        if group == 1 {
            return Ok(w);
        }
        let [o, per_group, kh, kw] = w.dims[..] else {
            return Ok(w);
        };
        let ch = a.shape.first().copied().unwrap_or(0);
        let g = usize::try_from(group).unwrap_or(0);
        if g == 0 || o % g != 0 || per_group.checked_mul(g) != Some(ch) {
            return Err(self.node_err(
                n,
                format!(
                    "group {group} does not divide {ch} input channels into groups of \
                     {per_group} and {o} output channels evenly"
                ),
            ));
        }
        let k = kh * kw;
        let full = o
            .checked_mul(ch)
            .and_then(|v| v.checked_mul(k))
            .filter(|&v| v <= MAX_TENSOR_VALUES)
            .ok_or_else(|| self.node_err(n, "the ungrouped weights would be too large"))?;
        let mut data = vec![0.0; full];
        let out_per_group = o / g;
        for oc in 0..o {
            let first = (oc / out_per_group) * per_group;
            for ic in 0..per_group {
                let from = (oc * per_group + ic) * k;
                let to = (oc * ch + first + ic) * k;
                data[to..to + k].copy_from_slice(&w.data[from..from + k]);
            }
        }
        self.notes.push(format!(
            "Conv `{}` with group={group} is imported as a full convolution with zero weights \
             between groups ({g}× the weights; the zeros are dropped when compiled, so the \
             encrypted cost is the grouped one's)",
            n.name
        ));
        Ok(Const {
            dims: vec![o, ch, kh, kw],
            data,
            ints: None,
        })
    }

    fn dense(
        &mut self,
        n: &NodeProto,
        a: &Act,
        weight: Vec<f64>,
        out: usize,
        bias: Option<Vec<f64>>,
    ) -> Result<(), OnnxError> {
        let k = a.shape.iter().product::<usize>();
        let mut tensors = vec![("weight", vec![out, k], weight)];
        let has_bias = bias.is_some();
        if let Some(b) = bias {
            tensors.push(("bias", vec![out], b));
        }
        self.push(
            n,
            Op::Dense {
                out_features: out,
                bias: has_bias,
            },
            &[a],
            vec![out],
            tensors,
        );
        Ok(())
    }

    fn gemm(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let b = self.constant(n, 1, "matrix B")?;
        let c = self.optional_constant(n, 2, "C (the bias)")?;
        if attr_int(n, "transA", 0) != 0 {
            return Err(self.node_err(n, "transA=1 is not supported (the input is a row vector)"));
        }
        if a.shape.len() != 1 {
            return Err(self.node_err(
                n,
                format!(
                    "expects a flat input, found shape {:?}; add a Flatten before it",
                    a.shape
                ),
            ));
        }
        let k = a.shape[0];
        let alpha = f64::from(attr_float(n, "alpha", 1.0));
        let beta = f64::from(attr_float(n, "beta", 1.0));
        let trans_b = attr_int(n, "transB", 0) != 0;
        let [r, cols] = b.dims[..] else {
            return Err(self.node_err(n, format!("B has shape {:?}, expected a matrix", b.dims)));
        };
        let (out, inner) = if trans_b { (r, cols) } else { (cols, r) };
        if inner != k {
            return Err(self.node_err(
                n,
                format!("B {:?} does not fit an input of {k} values", b.dims),
            ));
        }
        let mut weight = vec![0.0; out * k];
        for o in 0..out {
            for j in 0..k {
                let v = if trans_b {
                    b.data[o * k + j]
                } else {
                    b.data[j * out + o]
                };
                weight[o * k + j] = alpha * v;
            }
        }
        let bias = match c {
            None => None,
            Some(c) if c.data.len() == out => Some(c.data.iter().map(|v| beta * v).collect()),
            Some(c) if c.data.len() == 1 => Some(vec![beta * c.data[0]; out]),
            Some(c) => {
                return Err(self.node_err(
                    n,
                    format!("C of shape {:?} does not broadcast to [{out}]", c.dims),
                ))
            }
        };
        self.dense(n, &a, weight, out, bias)
    }

    fn matmul(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        let b = self.constant(n, 1, "the weight matrix")?;
        if a.shape.len() != 1 {
            return Err(self.node_err(
                n,
                format!(
                    "expects a flat input, found shape {:?}; add a Flatten before it",
                    a.shape
                ),
            ));
        }
        let [k, out] = b.dims[..] else {
            return Err(self.node_err(
                n,
                format!("the weights have shape {:?}, expected a matrix", b.dims),
            ));
        };
        if k != a.shape[0] {
            return Err(self.node_err(
                n,
                format!(
                    "weights {:?} do not fit an input of {} values",
                    b.dims, a.shape[0]
                ),
            ));
        }
        let mut weight = vec![0.0; out * k];
        for o in 0..out {
            for j in 0..k {
                weight[o * k + j] = b.data[j * out + o];
            }
        }
        self.dense(n, &a, weight, out, None)
    }

    /// The per-channel values of constant `c` broadcast against an activation of `shape`
    /// (batch first in ONNX): one per channel (the first dimension), or `None`.
    fn per_channel(c: &Const, shape: &[usize]) -> Option<Vec<f64>> {
        let ch = *shape.first()?;
        if c.data.len() == 1 {
            return Some(vec![c.data[0]; ch]);
        }
        let rank = shape.len() + 1;
        if c.dims.len() > rank {
            return None;
        }
        let mut dims = vec![1; rank - c.dims.len()];
        dims.extend(&c.dims);
        let ok = dims
            .iter()
            .enumerate()
            .all(|(k, &d)| d == 1 || (k == 1 && d == ch));
        (ok && c.data.len() == ch).then(|| c.data.clone())
    }

    /// `x · scale + shift` per channel, as a batch norm with ε = 0, unit variance and zero mean
    /// (exactly `scale` and `shift`).
    fn channel_affine(
        &mut self,
        n: &NodeProto,
        a: &Act,
        scale: Option<&Const>,
        shift: Option<&Const>,
    ) -> Result<(), OnnxError> {
        let ch = a.shape.first().copied().unwrap_or(0);
        let per =
            |c: Option<&Const>, default: f64| -> Result<Vec<f64>, OnnxError> {
                match c {
                    None => Ok(vec![default; ch]),
                    Some(c) => {
                        Self::per_channel(c, &a.shape).ok_or_else(|| {
                            self.node_err(
                                n,
                                format!(
                            "a constant of shape {:?} against an input of shape [1, {}]: only \
                             scalars and per-channel constants are supported",
                            c.dims,
                            a.shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                        ),
                            )
                        })
                    }
                }
            };
        let scale = per(scale, 1.0)?;
        let shift = per(shift, 0.0)?;
        self.push(
            n,
            Op::BatchNorm { eps: 0.0 },
            &[a],
            a.shape.clone(),
            vec![
                ("weight", vec![ch], scale),
                ("bias", vec![ch], shift),
                ("running_mean", vec![ch], vec![0.0; ch]),
                ("running_var", vec![ch], vec![1.0; ch]),
            ],
        );
        Ok(())
    }

    fn add(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let sub = n.op_type == "Sub";
        let first_is_act = matches!(self.value(n, 0)?, Val::Act(_));
        let second_is_act = matches!(self.value(n, 1)?, Val::Act(_));
        match (first_is_act, second_is_act) {
            (true, true) => {
                let (x, y) = (self.act(n, 0, false)?, self.act(n, 1, false)?);
                if sub {
                    return Err(self.node_err(n, "the difference of two computed tensors is not supported; Add is"));
                }
                if x.shape != y.shape {
                    return Err(self.node_err(
                        n,
                        format!("adds shapes {:?} and {:?}; broadcasting between computed tensors is not supported", x.shape, y.shape),
                    ));
                }
                let shape = x.shape.clone();
                self.push(n, Op::Add, &[&x, &y], shape, vec![]);
                Ok(())
            }
            (true, false) | (false, true) => {
                let (ai, ci) = if first_is_act { (0, 1) } else { (1, 0) };
                let a = self.act(n, ai, false)?;
                let mut c = self.constant(n, ci, "the constant term")?;
                // x − c adds −c; c − x is −x + c.
                let negate_x = sub && !first_is_act;
                if sub && first_is_act {
                    c.data.iter_mut().for_each(|v| *v = -*v);
                }
                if !negate_x {
                    if let Some(i) = self.sole_use_at(n, ai, &a) {
                        if self.fold_bias(i, &a, &c) {
                            self.alias(n, a);
                            return Ok(());
                        }
                    }
                }
                let minus = Const { dims: vec![], data: vec![-1.0], ints: None };
                self.channel_affine(n, &a, negate_x.then_some(&minus), Some(&c))
            }
            (false, false) => Err(self.node_err(n, "both inputs are constants (constant folding is not supported: export with do_constant_folding=True)")),
        }
    }

    /// Adds constant `c` to the bias of layer `i` (a Dense or Conv2d), if it is per output.
    fn fold_bias(&mut self, i: usize, a: &Act, c: &Const) -> bool {
        let Some(per) = Self::per_channel(c, &a.shape) else {
            return false;
        };
        let layer = &mut self.layers[i];
        let (out, has_bias) = match &mut layer.op {
            Op::Dense { out_features, bias } => (*out_features, bias),
            Op::Conv2d {
                out_channels, bias, ..
            } => (*out_channels, bias),
            _ => return false,
        };
        if per.len() != out {
            return false;
        }
        let key = format!("{}.bias", layer.name);
        let old = if *has_bias {
            self.tensors
                .get(&key)
                .map(|t| t.data.clone())
                .unwrap_or_else(|| vec![0.0; out])
        } else {
            vec![0.0; out]
        };
        *has_bias = true;
        self.tensors.insert(
            key,
            Tensor {
                shape: vec![out],
                data: old.iter().zip(&per).map(|(b, v)| f32r(b + v)).collect(),
            },
        );
        true
    }

    fn mul(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let x_act = matches!(self.value(n, 0)?, Val::Act(_));
        let y_act = matches!(self.value(n, 1)?, Val::Act(_));
        match (x_act, y_act) {
            (true, true) => {
                if n.input[0] != n.input[1] {
                    return Err(self.node_err(
                        n,
                        "the product of two different computed tensors is not supported; \
                         Mul(x, x) (a square) and multiplication by a constant are",
                    ));
                }
                let a = self.act(n, 0, false)?;
                let shape = a.shape.clone();
                self.push(n, Op::Activation(Activation::Square), &[&a], shape, vec![]);
                Ok(())
            }
            (true, false) | (false, true) => {
                let (ai, ci) = if x_act { (0, 1) } else { (1, 0) };
                let a = self.act(n, ai, false)?;
                let c = self.constant(n, ci, "the factor")?;
                // An average pool times its window area is a sum pool (CryptoNets' pooling).
                if let (Some(v), Some(i)) = (c.scalar(), self.sole_use_at(n, ai, &a)) {
                    if let Op::AvgPool2d { kernel, stride, padding } = self.layers[i].op {
                        if v == (kernel.0 * kernel.1) as f64 {
                            self.layers[i].op = Op::SumPool2d { kernel, stride, padding };
                            self.alias(n, a);
                            return Ok(());
                        }
                    }
                }
                self.channel_affine(n, &a, Some(&c), None)
            }
            (false, false) => Err(self.node_err(n, "both inputs are constants (constant folding is not supported: export with do_constant_folding=True)")),
        }
    }

    /// Layer `i` producing input `i` of `n` when that input is the value's only use (the
    /// layer may then be changed in place).
    fn sole_use_at(&self, n: &NodeProto, i: usize, a: &Act) -> Option<usize> {
        let uses = self.uses.get(n.input.get(i)?).copied().unwrap_or(0);
        (uses == 1 && a.pad.is_none()).then_some(a.layer).flatten()
    }

    fn batch_norm(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, false)?;
        if attr_int(n, "training_mode", 0) != 0 {
            return Err(self.node_err(
                n,
                "training_mode=1; export the model in eval mode (model.eval())",
            ));
        }
        let ch = a.shape.first().copied().unwrap_or(0);
        let mut tensors = Vec::new();
        for (i, (name, what)) in [
            ("weight", "the scale"),
            ("bias", "the bias"),
            ("running_mean", "the mean"),
            ("running_var", "the variance"),
        ]
        .into_iter()
        .enumerate()
        {
            let c = self.constant(n, i + 1, what)?;
            if c.data.len() != ch {
                return Err(self.node_err(
                    n,
                    format!(
                        "{what} has {} values, the input {ch} channels",
                        c.data.len()
                    ),
                ));
            }
            tensors.push((name, vec![ch], c.data));
        }
        let eps = f64::from(attr_float(n, "epsilon", 1e-5));
        self.push(n, Op::BatchNorm { eps }, &[&a], a.shape.clone(), tensors);
        Ok(())
    }

    fn pool(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let max = n.op_type == "MaxPool";
        let a = self.act(n, 0, true)?;
        if max && n.output.get(1).is_some_and(|m| self.uses.contains_key(m)) {
            return Err(self.node_err(n, "the indices output of MaxPool is not supported"));
        }
        let explicit = attr_ints(n, "pads").is_some_and(|p| p.iter().any(|&v| v != 0));
        if !max && explicit && attr_int(n, "count_include_pad", 0) == 0 {
            return Err(self.node_err(
                n,
                "average pooling with padding that is not counted (count_include_pad=0) is not \
                 supported; use count_include_pad=True",
            ));
        }
        if max && explicit {
            self.notes.push(format!(
                "MaxPool `{}` pads with zeros in Veil (ONNX pads max pooling with −∞); it is \
                 replaced by a sum pool when compiled anyway",
                n.name
            ));
        }
        let (kernel, stride, padding, out) = self.window(n, &a, None)?;
        let op = if max {
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            }
        } else {
            Op::AvgPool2d {
                kernel,
                stride,
                padding,
            }
        };
        self.push(n, op, &[&a], out, vec![]);
        Ok(())
    }

    fn pad(&mut self, n: &NodeProto) -> Result<(), OnnxError> {
        let a = self.act(n, 0, true)?;
        let mode = attr_str(n, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(self.node_err(
                n,
                format!("{mode} padding is not supported; only zero (constant) padding is"),
            ));
        }
        let pads = self.constant(n, 1, "the pads")?;
        let pads = self.ints_of(n, &pads, "the pads")?;
        if let Some(v) = self.optional_constant(n, 2, "the pad value")? {
            if v.data.iter().any(|&x| x != 0.0) {
                return Err(self.node_err(n, "padding with a value other than 0 is not supported"));
            }
        }
        let rank = a.shape.len() + 1;
        let axes: Vec<usize> = match self.optional_constant(n, 3, "the axes")? {
            None => (0..rank).collect(),
            Some(c) => self
                .ints_of(n, &c, "the axes")?
                .iter()
                .map(|&x| if x < 0 { x + rank as i64 } else { x })
                .map(|x| usize::try_from(x).ok().filter(|&x| x < rank))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.node_err(n, "bad axes"))?,
        };
        if pads.len() != 2 * axes.len() {
            return Err(self.node_err(n, format!("{} pads for {} axes", pads.len(), axes.len())));
        }
        let mut begin = vec![0i64; rank];
        let mut end = vec![0i64; rank];
        for (k, &ax) in axes.iter().enumerate() {
            begin[ax] = pads[k];
            end[ax] = pads[k + axes.len()];
        }
        if rank != 4
            || begin[..2].iter().chain(&end[..2]).any(|&p| p != 0)
            || begin
                .iter()
                .chain(&end)
                .any(|&p| !(0..=1 << 16).contains(&p))
        {
            return Err(self.node_err(
                n,
                format!(
                    "pads {pads:?}: only non-negative padding of the two spatial axes of a \
                     C×H×W input is supported"
                ),
            ));
        }
        let mut p = a.pad.unwrap_or_default();
        p.top += begin[2] as usize;
        p.left += begin[3] as usize;
        p.bottom += end[2] as usize;
        p.right += end[3] as usize;
        // The shape stays the unpadded one: the consuming window op adds the padding.
        self.alias(
            n,
            Act {
                layer: a.layer,
                shape: a.shape,
                pad: Some(p),
            },
        );
        Ok(())
    }
}

/// What to say about an operator the importer does not take.
fn unsupported_hint(op: &str) -> String {
    let why = match op {
        "Elu" | "Selu" | "Softplus" | "HardSigmoid" | "HardSwish" | "Mish" | "PRelu" => {
            "this activation is not supported; use Relu, Sigmoid, Tanh or GELU (replaced when \
             compiled) or, better, train with x * x"
        }
        "Concat" | "Split" | "Slice" | "Gather" | "Transpose" => {
            "tensor rearrangement is not supported; Veil models are chains of layers with \
             residual additions"
        }
        "Shape" => {
            "shape computations are not supported; export with a fixed input shape and \
             do_constant_folding=True, and flatten with torch.flatten(x, 1)"
        }
        "ReduceMean" | "ReduceSum" => "use GlobalAveragePool or AveragePool instead",
        "Max" | "Min" | "Abs" | "Exp" | "Log" | "Sqrt" | "Reciprocal" => {
            "an encrypted circuit computes additions and multiplications only"
        }
        _ => "this operator is not supported",
    };
    format!(
        "{why}. Supported: Conv, Gemm, MatMul, Add, Sub, Mul, Div, Pow(x, 2), Relu, LeakyRelu, \
         Sigmoid, Tanh, Gelu (or its Erf form), BatchNormalization, AveragePool, GlobalAveragePool, MaxPool, Flatten, \
         Reshape, Squeeze, Unsqueeze, Pad, Identity, Dropout, Constant and a final \
         Softmax/LogSoftmax (docs/onnx.md)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, op: &str) -> NodeProto {
        NodeProto {
            name: name.into(),
            op_type: op.into(),
            ..NodeProto::default()
        }
    }

    #[test]
    fn layer_names_follow_pytorch_module_paths() {
        assert_eq!(base_name(&node("/conv1/Conv", "Conv")), "conv1");
        assert_eq!(
            base_name(&node("/layer1/layer1.0/conv1/Conv", "Conv")),
            "layer1.0.conv1"
        );
        assert_eq!(base_name(&node("/fc/Gemm_1", "Gemm")), "fc");
        assert_eq!(base_name(&node("/Mul_3", "Mul")), "Mul_3");
        assert_eq!(base_name(&node("my node+1", "Relu")), "my_node_1");
        assert_eq!(base_name(&node("", "Relu")), "");
    }

    #[test]
    fn half_precision_values_widen_exactly() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x3555), 0.333_251_953_125);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert!(f16_to_f64(0x7c01).is_nan());
        let t = TensorProto {
            dims: vec![2],
            data_type: dtype::BFLOAT16,
            raw_data: vec![0x80, 0x3f, 0x00, 0xc0],
            ..TensorProto::default()
        };
        let mut noted = false;
        let Ok(Val::Const(c)) = read_tensor(&t, &mut noted) else {
            unreachable!("a bfloat16 tensor reads");
        };
        assert_eq!(c.data, vec![1.0, -2.0]);
        assert!(noted);
    }

    #[test]
    fn data_that_disagrees_with_dims_is_refused() {
        let t = TensorProto {
            name: "w".into(),
            dims: vec![3],
            data_type: dtype::FLOAT,
            float_data: vec![1.0, 2.0],
            ..TensorProto::default()
        };
        let err = read_tensor(&t, &mut false).err().unwrap_or_default();
        assert!(
            err.contains("holds 2 values but its dims [3] say 3"),
            "{err}"
        );
        let t = TensorProto {
            dims: vec![1 << 20, 1 << 20],
            data_type: dtype::FLOAT,
            ..t
        };
        assert!(read_tensor(&t, &mut false).is_err());
    }
}
