//! The few ONNX messages and fields the importer needs, decoded from the wire format.
//!
//! Field numbers are those of `onnx.proto` (ONNX IR version 3 and later). Fields not listed
//! here are skipped without being looked into, so a file's nesting is bounded by this schema.
//! Sub-graphs (the `g` and `graphs` attributes of control-flow ops) are skipped: a node that
//! needs one is refused by the converter anyway.

use super::wire::{self, Reader, Value, WireError};

/// `TensorProto.DataType` values the importer reads.
pub mod dtype {
    /// 32-bit float.
    pub const FLOAT: i64 = 1;
    /// 32-bit signed integer.
    pub const INT32: i64 = 6;
    /// 64-bit signed integer.
    pub const INT64: i64 = 7;
    /// IEEE half precision.
    pub const FLOAT16: i64 = 10;
    /// 64-bit float.
    pub const DOUBLE: i64 = 11;
    /// bfloat16.
    pub const BFLOAT16: i64 = 16;

    /// The name of a data type, for messages.
    pub fn name(t: i64) -> String {
        let known = match t {
            0 => "UNDEFINED",
            1 => "FLOAT",
            2 => "UINT8",
            3 => "INT8",
            4 => "UINT16",
            5 => "INT16",
            6 => "INT32",
            7 => "INT64",
            8 => "STRING",
            9 => "BOOL",
            10 => "FLOAT16",
            11 => "DOUBLE",
            12 => "UINT32",
            13 => "UINT64",
            14 => "COMPLEX64",
            15 => "COMPLEX128",
            16 => "BFLOAT16",
            _ => return format!("data type {t}"),
        };
        known.to_owned()
    }
}

/// `ModelProto`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelProto {
    /// `ir_version` (1).
    pub ir_version: i64,
    /// `opset_import` (8): (domain, version).
    pub opset_import: Vec<(String, i64)>,
    /// `producer_name` (2).
    pub producer_name: String,
    /// `graph` (7).
    pub graph: Option<GraphProto>,
}

/// `GraphProto`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphProto {
    /// `name` (2).
    pub name: String,
    /// `node` (1).
    pub node: Vec<NodeProto>,
    /// `initializer` (5).
    pub initializer: Vec<TensorProto>,
    /// `input` (11).
    pub input: Vec<ValueInfoProto>,
    /// `output` (12).
    pub output: Vec<ValueInfoProto>,
    /// `value_info` (13).
    pub value_info: Vec<ValueInfoProto>,
    /// Whether `sparse_initializer` (15) is present (not supported).
    pub has_sparse_initializer: bool,
}

/// `NodeProto`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeProto {
    /// `input` (1); an empty name is an omitted optional input.
    pub input: Vec<String>,
    /// `output` (2).
    pub output: Vec<String>,
    /// `name` (3).
    pub name: String,
    /// `op_type` (4).
    pub op_type: String,
    /// `domain` (7); empty is the default ONNX domain.
    pub domain: String,
    /// `attribute` (5).
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttributeProto {
    /// `name` (1).
    pub name: String,
    /// `type` (20).
    pub kind: i64,
    /// `f` (2).
    pub f: f32,
    /// `i` (3).
    pub i: i64,
    /// `s` (4).
    pub s: Vec<u8>,
    /// `t` (5).
    pub t: Option<TensorProto>,
    /// `floats` (7).
    pub floats: Vec<f32>,
    /// `ints` (8).
    pub ints: Vec<i64>,
}

/// `AttributeProto.AttributeType` values used.
pub mod attr_type {
    /// `f`.
    pub const FLOAT: i64 = 1;
    /// `i`.
    pub const INT: i64 = 2;
    /// `s`.
    pub const STRING: i64 = 3;
    /// `t`.
    pub const TENSOR: i64 = 4;
    /// `floats`.
    pub const FLOATS: i64 = 6;
    /// `ints`.
    pub const INTS: i64 = 7;
}

/// `TensorProto`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorProto {
    /// `dims` (1).
    pub dims: Vec<i64>,
    /// `data_type` (2).
    pub data_type: i64,
    /// `float_data` (4).
    pub float_data: Vec<f32>,
    /// `int32_data` (5) (also holds FLOAT16/BFLOAT16 bit patterns).
    pub int32_data: Vec<i64>,
    /// `int64_data` (7).
    pub int64_data: Vec<i64>,
    /// `name` (8).
    pub name: String,
    /// `raw_data` (9).
    pub raw_data: Vec<u8>,
    /// `double_data` (10).
    pub double_data: Vec<f64>,
    /// `data_location` (14): 1 = EXTERNAL.
    pub data_location: i64,
    /// File offset of the message (for errors).
    pub offset: usize,
}

/// `ValueInfoProto` with its tensor type flattened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueInfoProto {
    /// `name` (1).
    pub name: String,
    /// `type.tensor_type.elem_type`.
    pub elem_type: i64,
    /// `type.tensor_type.shape`, `None` when absent (unknown rank).
    pub shape: Option<Vec<Dim>>,
}

/// One dimension of a `TensorShapeProto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// `dim_value`.
    Value(i64),
    /// `dim_param` (a symbolic size such as `batch`).
    Param(String),
    /// Neither set.
    Unknown,
}

/// Decodes a `ModelProto`.
pub fn model(bytes: &[u8]) -> Result<ModelProto, WireError> {
    let mut r = Reader::new(bytes);
    let mut m = ModelProto::default();
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => m.ir_version = wire::int(v, "ir_version")?,
            2 => m.producer_name = wire::string(v, "producer_name")?,
            7 => m.graph = Some(graph(r.message(v, "graph")?)?),
            8 => {
                let mut s = r.message(v, "opset_import")?;
                let (mut domain, mut version) = (String::new(), 0);
                while let Some((f, v)) = s.next_field()? {
                    match f {
                        1 => domain = wire::string(v, "opset_import.domain")?,
                        2 => version = wire::int(v, "opset_import.version")?,
                        _ => {}
                    }
                }
                m.opset_import.push((domain, version));
            }
            _ => {}
        }
    }
    Ok(m)
}

fn graph(mut r: Reader<'_>) -> Result<GraphProto, WireError> {
    let mut g = GraphProto::default();
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => g.node.push(node(r.message(v, "node")?)?),
            2 => g.name = wire::string(v, "graph.name")?,
            5 => g.initializer.push(tensor(r.message(v, "initializer")?)?),
            11 => g.input.push(value_info(r.message(v, "input")?)?),
            12 => g.output.push(value_info(r.message(v, "output")?)?),
            13 => g.value_info.push(value_info(r.message(v, "value_info")?)?),
            15 => g.has_sparse_initializer = true,
            _ => {}
        }
    }
    Ok(g)
}

fn node(mut r: Reader<'_>) -> Result<NodeProto, WireError> {
    let mut n = NodeProto::default();
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => n.input.push(wire::string(v, "node.input")?),
            2 => n.output.push(wire::string(v, "node.output")?),
            3 => n.name = wire::string(v, "node.name")?,
            4 => n.op_type = wire::string(v, "node.op_type")?,
            5 => n.attribute.push(attribute(r.message(v, "attribute")?)?),
            7 => n.domain = wire::string(v, "node.domain")?,
            _ => {}
        }
    }
    Ok(n)
}

fn attribute(mut r: Reader<'_>) -> Result<AttributeProto, WireError> {
    let mut a = AttributeProto::default();
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => a.name = wire::string(v, "attribute.name")?,
            2 => a.f = wire::float(v, "attribute.f")?,
            3 => a.i = wire::int(v, "attribute.i")?,
            4 => a.s = wire::bytes(v, "attribute.s")?.to_vec(),
            5 => a.t = Some(tensor(r.message(v, "attribute.t")?)?),
            7 => wire::push_floats(v, "attribute.floats", &mut a.floats)?,
            8 => wire::push_ints(v, "attribute.ints", &mut a.ints)?,
            20 => a.kind = wire::int(v, "attribute.type")?,
            _ => {}
        }
    }
    Ok(a)
}

fn tensor(mut r: Reader<'_>) -> Result<TensorProto, WireError> {
    let mut t = TensorProto {
        offset: r.offset(),
        ..TensorProto::default()
    };
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => wire::push_ints(v, "tensor.dims", &mut t.dims)?,
            2 => t.data_type = wire::int(v, "tensor.data_type")?,
            4 => wire::push_floats(v, "tensor.float_data", &mut t.float_data)?,
            5 => wire::push_ints(v, "tensor.int32_data", &mut t.int32_data)?,
            7 => wire::push_ints(v, "tensor.int64_data", &mut t.int64_data)?,
            8 => t.name = wire::string(v, "tensor.name")?,
            9 => t.raw_data = wire::bytes(v, "tensor.raw_data")?.to_vec(),
            10 => wire::push_doubles(v, "tensor.double_data", &mut t.double_data)?,
            14 => t.data_location = wire::int(v, "tensor.data_location")?,
            _ => {}
        }
    }
    Ok(t)
}

fn value_info(mut r: Reader<'_>) -> Result<ValueInfoProto, WireError> {
    let mut vi = ValueInfoProto::default();
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => vi.name = wire::string(v, "value_info.name")?,
            2 => {
                let mut ty = r.message(v, "value_info.type")?;
                while let Some((f, v)) = ty.next_field()? {
                    if f == 1 {
                        tensor_type(ty.message(v, "type.tensor_type")?, &mut vi)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(vi)
}

fn tensor_type(mut r: Reader<'_>, vi: &mut ValueInfoProto) -> Result<(), WireError> {
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => vi.elem_type = wire::int(v, "tensor_type.elem_type")?,
            2 => {
                let mut shape = r.message(v, "tensor_type.shape")?;
                let mut dims = Vec::new();
                while let Some((f, v)) = shape.next_field()? {
                    if f == 1 {
                        dims.push(dim(shape.message(v, "shape.dim")?)?);
                    }
                }
                vi.shape = Some(dims);
            }
            _ => {}
        }
    }
    Ok(())
}

fn dim(mut r: Reader<'_>) -> Result<Dim, WireError> {
    let mut d = Dim::Unknown;
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => d = Dim::Value(wire::int(v, "dim.dim_value")?),
            2 => d = Dim::Param(wire::string(v, "dim.dim_param")?),
            _ => {}
        }
    }
    Ok(d)
}

/// Whether `bytes` look like an ONNX `ModelProto`: every field decodes as one a model holds
/// (with the wire type it has there) and there is a `graph`, or the bytes stop short after at
/// least one such field (a truncated model, so that it is reported as one). Cheap and never an
/// error: text formats (RON, JSON) fail at the first byte.
pub fn looks_like_model(bytes: &[u8]) -> bool {
    let mut r = Reader::new(bytes);
    let mut has_graph = false;
    let mut seen = 0usize;
    loop {
        match r.next_field() {
            Ok(Some((field, v))) => {
                let plausible = matches!(
                    (field, v),
                    (1 | 5, Value::Varint(_))
                        | (2..=4 | 6 | 7 | 8 | 14 | 20 | 25, Value::Bytes(..))
                );
                if !plausible {
                    return false;
                }
                has_graph |= field == 7;
                seen += 1;
            }
            Ok(None) => return has_graph,
            Err(_) => return seen > 0,
        }
    }
}
