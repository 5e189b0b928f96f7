//! The border: turns a parsed model into the IR, checking everything once. Errors name the
//! file, the layer and the field.

use super::shape::ShapeError;
use super::{infer_shape, ActKind, Graph, Node, NodeId, Op, PoolKind};
use crate::model::{self, Activation, LoadedModel, ModelError, ModelErrorKind, Padding, Tensor};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Largest number of values in one tensor of activations.
pub const MAX_VALUES: usize = 1 << 24;
/// Largest number of weights in one layer.
pub const MAX_WEIGHTS: usize = 1 << 28;
/// Largest kernel, stride or padding.
pub const MAX_WINDOW: usize = 1024;
/// Largest number of layers.
pub const MAX_LAYERS: usize = 10_000;

struct Ctx<'a> {
    loaded: &'a LoadedModel,
}

impl Ctx<'_> {
    fn err(&self, layer: &str, kind: ModelErrorKind) -> ModelError {
        ModelError::layer(&self.loaded.path, layer, kind)
    }

    fn size(
        &self,
        layer: &str,
        field: &str,
        what: &'static str,
        value: usize,
        min: usize,
        max: usize,
    ) -> Result<(), ModelError> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(self
                .err(
                    layer,
                    ModelErrorKind::Size {
                        what,
                        value,
                        min,
                        max,
                    },
                )
                .with_field(field))
        }
    }

    fn window(
        &self,
        layer: &str,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: &Padding,
    ) -> Result<(), ModelError> {
        self.size(layer, "kernel", "kernel height", kernel.0, 1, MAX_WINDOW)?;
        self.size(layer, "kernel", "kernel width", kernel.1, 1, MAX_WINDOW)?;
        self.size(layer, "stride", "stride height", stride.0, 1, MAX_WINDOW)?;
        self.size(layer, "stride", "stride width", stride.1, 1, MAX_WINDOW)?;
        for (v, what) in [
            (padding.top, "padding top"),
            (padding.left, "padding left"),
            (padding.bottom, "padding bottom"),
            (padding.right, "padding right"),
        ] {
            self.size(layer, "padding", what, v, 0, MAX_WINDOW)?;
        }
        Ok(())
    }

    /// Looks up `<layer>.<name>` inline or in the weights file, checks its shape and values. A
    /// tensor the weights file holds in an unsupported element type is an error only here,
    /// where a layer needs it.
    fn tensor(&self, layer: &str, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let full = format!("{layer}.{name}");
        let expected_len: usize = shape.iter().product();
        let layer_def = self.loaded.model.layers.iter().find(|l| l.name == layer);
        let t = if let Some(data) = layer_def.and_then(|l| l.params.get(name)) {
            if data.len() != expected_len {
                return Err(self
                    .err(
                        layer,
                        ModelErrorKind::TensorShape {
                            name: full,
                            found: vec![data.len()],
                            found_len: data.len(),
                            expected: shape.to_vec(),
                            expected_len,
                        },
                    )
                    .with_field(&format!("params.{name}")));
            }
            Tensor {
                shape: shape.to_vec(),
                data: data.clone(),
            }
        } else if let Some(t) = self.loaded.tensors.tensors.get(&full) {
            if t.shape != shape || t.data.len() != expected_len {
                return Err(self
                    .err(
                        layer,
                        ModelErrorKind::TensorShape {
                            name: full,
                            found: t.shape.clone(),
                            found_len: t.data.len(),
                            expected: shape.to_vec(),
                            expected_len,
                        },
                    )
                    .with_field(name));
            }
            t.clone()
        } else if let Some(dtype) = self.loaded.tensors.skipped.get(&full) {
            let hint = match &self.loaded.model.weights {
                Some(w) => format!(" in the weights file `{w}`"),
                None => String::new(),
            };
            return Err(self
                .err(
                    layer,
                    ModelErrorKind::TensorType {
                        name: full,
                        dtype: dtype.clone(),
                        hint,
                    },
                )
                .with_field(name));
        } else {
            let hint = match &self.loaded.model.weights {
                Some(w) => format!(" `{w}`"),
                None => " (the model names no weights file)".into(),
            };
            return Err(self
                .err(layer, ModelErrorKind::MissingTensor { name: full, hint })
                .with_field(name));
        };
        if let Some((index, &value)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(self
                .err(
                    layer,
                    ModelErrorKind::NonFinite {
                        name: full,
                        index,
                        value,
                    },
                )
                .with_field(name));
        }
        Ok(t)
    }
}

fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Builds and checks the IR of a loaded model.
pub fn build(loaded: &LoadedModel) -> Result<Graph, ModelError> {
    let ctx = Ctx { loaded };
    let m = &loaded.model;
    let file = &loaded.path;
    let file_err = |kind| ModelError::file(file, kind);

    // The input.
    if m.input.shape.is_empty() || m.input.shape.len() > 4 {
        return Err(file_err(ModelErrorKind::Size {
            what: "input rank",
            value: m.input.shape.len(),
            min: 1,
            max: 4,
        })
        .with_field("input.shape"));
    }
    for &d in &m.input.shape {
        if d == 0 || d > MAX_VALUES {
            return Err(file_err(ModelErrorKind::Size {
                what: "input dimension",
                value: d,
                min: 1,
                max: MAX_VALUES,
            })
            .with_field("input.shape"));
        }
    }
    let input_len = checked_len(&m.input.shape).unwrap_or(usize::MAX);
    if input_len > MAX_VALUES {
        return Err(file_err(ModelErrorKind::Size {
            what: "input values",
            value: input_len,
            min: 1,
            max: MAX_VALUES,
        })
        .with_field("input.shape"));
    }
    for (v, field) in [(m.input.min, "input.min"), (m.input.max, "input.max")] {
        if !v.is_finite() || v.abs() > 1e12 {
            return Err(file_err(ModelErrorKind::Value {
                what: "input bound",
                value: v,
                why: "must be a finite number of magnitude ≤ 1e12",
            })
            .with_field(field));
        }
    }
    if m.input.min > m.input.max {
        return Err(file_err(ModelErrorKind::Value {
            what: "input.min",
            value: m.input.min,
            why: "must not exceed input.max",
        })
        .with_field("input.min"));
    }

    // Names and edges.
    if m.layers.is_empty() {
        return Err(file_err(ModelErrorKind::NoLayers).with_field("layers"));
    }
    if m.layers.len() > MAX_LAYERS {
        return Err(file_err(ModelErrorKind::Size {
            what: "number of layers",
            value: m.layers.len(),
            min: 1,
            max: MAX_LAYERS,
        })
        .with_field("layers"));
    }
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, l) in m.layers.iter().enumerate() {
        if l.name.is_empty() || l.name == "input" {
            return Err(ctx
                .err(&l.name, ModelErrorKind::BadName(l.name.clone()))
                .with_field("name"));
        }
        if index.insert(l.name.as_str(), i).is_some() {
            return Err(ctx
                .err(&l.name, ModelErrorKind::DuplicateName)
                .with_field("name"));
        }
    }
    // Producers of each layer: None = the model input.
    let mut producers: Vec<Vec<Option<usize>>> = Vec::with_capacity(m.layers.len());
    for (i, l) in m.layers.iter().enumerate() {
        let names: Vec<String> = if !l.inputs.is_empty() {
            l.inputs.clone()
        } else if i == 0 {
            vec!["input".into()]
        } else {
            vec![m.layers[i - 1].name.clone()]
        };
        let mut p = Vec::new();
        for name in &names {
            if name == "input" {
                p.push(None);
            } else if let Some(&j) = index.get(name.as_str()) {
                p.push(Some(j));
            } else {
                let known: Vec<String> = m
                    .layers
                    .iter()
                    .take(8)
                    .map(|l| format!("`{}`", l.name))
                    .collect();
                let more = if m.layers.len() > 8 { ", …" } else { "" };
                return Err(ctx
                    .err(
                        &l.name,
                        ModelErrorKind::UnknownInput {
                            name: name.clone(),
                            known: format!("{}{more}", known.join(", ")),
                        },
                    )
                    .with_field("inputs"));
            }
        }
        let expected = if matches!(l.op, model::Op::Add) { 2 } else { 1 };
        if p.len() != expected {
            return Err(ctx
                .err(
                    &l.name,
                    ModelErrorKind::InputCount {
                        op: l.op.kind(),
                        expected,
                        found: p.len(),
                    },
                )
                .with_field("inputs"));
        }
        producers.push(p);
    }

    // Cycles (Kahn over layers).
    let n = m.layers.len();
    let mut indegree = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in producers.iter().enumerate() {
        for j in p.iter().flatten() {
            indegree[i] += 1;
            users[*j].push(i);
        }
    }
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                queue.push_back(u);
            }
        }
    }
    if order.len() < n {
        let on_cycle: Vec<String> = (0..n)
            .filter(|&i| indegree[i] > 0)
            .map(|i| format!("`{}`", m.layers[i].name))
            .collect();
        let first = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
        return Err(ctx
            .err(
                &m.layers[first].name,
                ModelErrorKind::Cycle(on_cycle.join(", ")),
            )
            .with_field("inputs"));
    }

    // Every layer reaches the output.
    let out = n - 1;
    let mut reaches = vec![false; n];
    let mut stack = vec![out];
    while let Some(i) = stack.pop() {
        if reaches[i] {
            continue;
        }
        reaches[i] = true;
        stack.extend(producers[i].iter().flatten());
    }
    if let Some(i) = (0..n).find(|&i| !reaches[i]) {
        return Err(ctx.err(
            &m.layers[i].name,
            ModelErrorKind::Unreachable {
                output: m.layers[out].name.clone(),
            },
        ));
    }

    // Nodes, in dependency order.
    let mut g = Graph::new(&m.name, m.input.shape.clone(), (m.input.min, m.input.max));
    let mut ids: Vec<Option<NodeId>> = vec![None; n];
    for &i in &order {
        let l = &m.layers[i];
        let inputs: Vec<NodeId> = producers[i]
            .iter()
            .map(|p| p.and_then(|j| ids[j]).unwrap_or(g.input))
            .collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&id| g.node(id).shape.clone()).collect();
        let first = shapes.first().cloned().unwrap_or_default();
        let name = l.name.as_str();
        let shape_err = |e: ShapeError| match e {
            ShapeError::Mismatch {
                op,
                expected,
                found,
            } => ctx.err(
                name,
                ModelErrorKind::Shape {
                    op,
                    expected,
                    found,
                },
            ),
            ShapeError::Count {
                op,
                expected,
                found,
            } => ctx.err(
                name,
                ModelErrorKind::InputCount {
                    op,
                    expected,
                    found,
                },
            ),
        };
        let mut own = first.clone();
        let op = match &l.op {
            model::Op::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                bias,
            } => {
                ctx.size(
                    name,
                    "out_channels",
                    "out_channels",
                    *out_channels,
                    1,
                    65_536,
                )?;
                ctx.window(name, *kernel, *stride, padding)?;
                if first.len() != 3 {
                    return Err(ctx.err(
                        name,
                        ModelErrorKind::Shape {
                            op: "Conv2d",
                            expected: "needs a [C, H, W] input".into(),
                            found: first,
                        },
                    ));
                }
                let wshape = vec![*out_channels, first[0], kernel.0, kernel.1];
                let wlen = checked_len(&wshape).unwrap_or(usize::MAX);
                ctx.size(name, "weight", "conv weights", wlen, 1, MAX_WEIGHTS)?;
                // Check the geometry before reading tensors so the message is about shapes.
                let probe = Op::Conv2d {
                    weight: Tensor {
                        shape: wshape.clone(),
                        data: Vec::new(),
                    },
                    bias: Vec::new(),
                    stride: *stride,
                    padding: *padding,
                };
                infer_shape(&probe, &shapes, &own).map_err(shape_err)?;
                let weight = ctx.tensor(name, "weight", &wshape)?;
                let bias = if *bias {
                    ctx.tensor(name, "bias", &[*out_channels])?.data
                } else {
                    vec![0.0; *out_channels]
                };
                Op::Conv2d {
                    weight,
                    bias,
                    stride: *stride,
                    padding: *padding,
                }
            }
            model::Op::Dense { out_features, bias } => {
                ctx.size(
                    name,
                    "out_features",
                    "out_features",
                    *out_features,
                    1,
                    1 << 20,
                )?;
                let input_len: usize = first.iter().product();
                let wshape = vec![*out_features, input_len];
                let wlen = checked_len(&wshape).unwrap_or(usize::MAX);
                ctx.size(name, "weight", "dense weights", wlen, 1, MAX_WEIGHTS)?;
                let weight = ctx.tensor(name, "weight", &wshape)?;
                let bias = if *bias {
                    ctx.tensor(name, "bias", &[*out_features])?.data
                } else {
                    vec![0.0; *out_features]
                };
                Op::Dense { weight, bias }
            }
            model::Op::Flatten => {
                own = vec![first.iter().product()];
                Op::Reshape
            }
            model::Op::Reshape { shape } => {
                if shape.is_empty() || shape.contains(&0) {
                    return Err(ctx.err(
                        name,
                        ModelErrorKind::Shape {
                            op: "Reshape",
                            expected: format!("to {shape:?} needs a non-empty shape without zeros"),
                            found: first,
                        },
                    ));
                }
                own = shape.clone();
                if checked_len(shape) != Some(first.iter().product()) {
                    return Err(ctx.err(
                        name,
                        ModelErrorKind::Shape {
                            op: "Reshape",
                            expected: format!("to {shape:?} needs the same number of values"),
                            found: first,
                        },
                    ));
                }
                Op::Reshape
            }
            model::Op::MaxPool2d {
                kernel,
                stride,
                padding,
            }
            | model::Op::AvgPool2d {
                kernel,
                stride,
                padding,
            }
            | model::Op::SumPool2d {
                kernel,
                stride,
                padding,
            } => {
                ctx.window(name, *kernel, *stride, padding)?;
                let kind = match &l.op {
                    model::Op::MaxPool2d { .. } => PoolKind::Max,
                    model::Op::AvgPool2d { .. } => PoolKind::Avg,
                    _ => PoolKind::Sum,
                };
                Op::Pool {
                    kind,
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                }
            }
            model::Op::BatchNorm { eps } => {
                if !(eps.is_finite() && *eps >= 0.0) {
                    return Err(ctx
                        .err(
                            name,
                            ModelErrorKind::Value {
                                what: "eps",
                                value: *eps,
                                why: "must be finite and ≥ 0",
                            },
                        )
                        .with_field("eps"));
                }
                let c = first.first().copied().unwrap_or(0);
                let gamma = ctx.tensor(name, "weight", &[c])?.data;
                let beta = ctx.tensor(name, "bias", &[c])?.data;
                let mean = ctx.tensor(name, "running_mean", &[c])?.data;
                let var = ctx.tensor(name, "running_var", &[c])?.data;
                let mut scale = Vec::with_capacity(c);
                let mut shift = Vec::with_capacity(c);
                for k in 0..c {
                    let d = var[k] + eps;
                    if d.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                        return Err(ctx
                            .err(
                                name,
                                ModelErrorKind::Value {
                                    what: "running_var + eps",
                                    value: d,
                                    why: "must be positive",
                                },
                            )
                            .with_field("running_var"));
                    }
                    let s = gamma[k] / d.sqrt();
                    scale.push(s);
                    shift.push(beta[k] - mean[k] * s);
                }
                Op::BatchNorm { scale, shift }
            }
            model::Op::Dropout { p } => {
                if !(0.0..1.0).contains(p) {
                    return Err(ctx
                        .err(
                            name,
                            ModelErrorKind::Value {
                                what: "p",
                                value: *p,
                                why: "must be in [0, 1)",
                            },
                        )
                        .with_field("p"));
                }
                Op::Dropout
            }
            model::Op::Activation(a) => match a {
                Activation::Relu => Op::Activation(ActKind::Relu),
                Activation::Sigmoid => Op::Activation(ActKind::Sigmoid),
                Activation::Tanh => Op::Activation(ActKind::Tanh),
                Activation::Square => Op::Square,
                Activation::Polynomial(c) => {
                    if let Some(&bad) = c.iter().find(|v| !v.is_finite()) {
                        return Err(ctx
                            .err(
                                name,
                                ModelErrorKind::Value {
                                    what: "polynomial coefficient",
                                    value: bad,
                                    why: "must be finite",
                                },
                            )
                            .with_field("op"));
                    }
                    let mut c = c.clone();
                    while c.len() > 1 && c.last() == Some(&0.0) {
                        c.pop();
                    }
                    if c.is_empty() {
                        c.push(0.0);
                    }
                    if c.len() > 3 {
                        return Err(ctx
                            .err(name, ModelErrorKind::PolynomialDegree(c.len() - 1))
                            .with_field("op"));
                    }
                    Op::Polynomial(c)
                }
            },
            model::Op::Add => Op::Add,
            model::Op::Softmax => {
                if i != out {
                    return Err(ctx
                        .err(name, ModelErrorKind::NotFinal("Softmax"))
                        .with_field("op"));
                }
                Op::Softmax
            }
        };
        let shape = infer_shape(&op, &shapes, &own).map_err(shape_err)?;
        let len = checked_len(&shape).unwrap_or(usize::MAX);
        if len == 0 || len > MAX_VALUES {
            return Err(ctx.err(
                name,
                ModelErrorKind::Size {
                    what: "output values",
                    value: len,
                    min: 1,
                    max: MAX_VALUES,
                },
            ));
        }
        let id = g.add(
            Node {
                name: name.to_owned(),
                op,
                shape,
            },
            &inputs,
        );
        ids[i] = Some(id);
    }
    g.output = ids[out].unwrap_or(g.input);
    let outputs = g.node(g.output).len();
    g.classes = if m.classes.is_empty() {
        (0..outputs).map(|k| k.to_string()).collect()
    } else if m.classes.len() == outputs {
        m.classes.clone()
    } else {
        return Err(file_err(ModelErrorKind::Classes {
            names: m.classes.len(),
            outputs,
        })
        .with_field("classes"));
    };
    // Layers are unique and all reach the output, so no dead node exists; the set below only
    // guards the invariant in debug builds.
    debug_assert!(
        g.graph.node_count() == n + 1
            || g.graph.node_indices().collect::<BTreeSet<_>>().len() == n + 1
    );
    Ok(g)
}
