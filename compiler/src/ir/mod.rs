//! The graph IR: typed operations with shapes in a petgraph graph.
//!
//! Every node carries the layer name it came from (fused nodes join names with `+`), an [`Op`]
//! and its output shape. Edges run from producer to consumer and carry the input position.
//! The IR is built and checked once by [`build::build`]; after that passes may trust it, and
//! [`Graph::verify`] re-checks it between passes in tests and debug builds.
//!
//! The text form ([`Graph::to_text`]) prints one line per node in topological order, with ids
//! renumbered `%0, %1, …` in that order:
//!
//! ```text
//! %1 conv1 = conv2d{out=5 k=5x5 s=2x2 pad=1,1,0,0}(%0) -> [5, 13, 13]
//! ```
//!
//! followed by `; facts` when analyses are printed alongside.

pub mod build;
pub mod eval;
mod shape;
pub mod sparse;

pub use shape::infer_shape;
pub use sparse::SparseMatrix;

use crate::model::{Padding, Tensor};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, NodeIndexable};
use petgraph::Direction;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write;
use thiserror::Error;

/// A node of the graph.
pub type NodeId = NodeIndex<u32>;

/// Pooling flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Window maximum over the in-range positions.
    Max,
    /// Window sum divided by the window area (zero padding counted).
    Avg,
    /// Window sum (CryptoNets' scaled mean pool).
    Sum,
}

/// Non-polynomial activations (replaced by x² before the circuit is built).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// x · (1 + erf(x / √2)) / 2.
    Gelu,
}

/// The operations. Unless stated, an op has one input and keeps its shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The model input; no inputs. Its shape is the model's input shape.
    Input,
    /// Convolution of a `[C, H, W]` input with `weight` `[O, C, kh, kw]`, plus `bias` `[O]`,
    /// zero `padding`; output `[O, Ho, Wo]` with `Ho = (H + top + bottom − kh) / sh + 1`.
    Conv2d {
        /// `[O, C, kh, kw]`.
        weight: Tensor,
        /// One per output channel (zeros when the layer has none).
        bias: Vec<f64>,
        /// (sh, sw) ≥ 1.
        stride: (usize, usize),
        /// Zero padding.
        padding: Padding,
    },
    /// `weight · flatten(x) + bias`, weight `[out, in]`; output `[out]`.
    Dense {
        /// `[out, in]`.
        weight: Tensor,
        /// `[out]`.
        bias: Vec<f64>,
    },
    /// Same values, the node's shape (Flatten and Reshape).
    Reshape,
    /// Pooling of a `[C, H, W]` input per channel, shape rule as for convolution.
    Pool {
        /// Max, average or sum.
        kind: PoolKind,
        /// (kh, kw).
        kernel: (usize, usize),
        /// (sh, sw).
        stride: (usize, usize),
        /// Zero padding.
        padding: Padding,
    },
    /// `x · scale[c] + shift[c]` per channel `c` (first dimension).
    BatchNorm {
        /// γ / √(var + ε).
        scale: Vec<f64>,
        /// β − mean · scale.
        shift: Vec<f64>,
    },
    /// `x · factor`.
    Scale(f64),
    /// Identity at inference.
    Dropout,
    /// A non-polynomial activation.
    Activation(ActKind),
    /// `Σ c_k x^k` elementwise, degree ≤ 2.
    Polynomial(Vec<f64>),
    /// `x²` elementwise.
    Square,
    /// Elementwise sum of two inputs of the same shape.
    Add,
    /// Softmax over all values (only as the output).
    Softmax,
    /// `matrix · concat(inputs) + bias`; the output has `matrix.rows` values in the node's shape.
    Affine {
        /// Weights over the concatenated (flattened) inputs.
        matrix: SparseMatrix,
        /// One per output.
        bias: Vec<f64>,
    },
}

impl Op {
    /// Short lower-case name used in the text form and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d { .. } => "conv2d",
            Op::Dense { .. } => "dense",
            Op::Reshape => "reshape",
            Op::Pool {
                kind: PoolKind::Max,
                ..
            } => "max_pool2d",
            Op::Pool {
                kind: PoolKind::Avg,
                ..
            } => "avg_pool2d",
            Op::Pool {
                kind: PoolKind::Sum,
                ..
            } => "sum_pool2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Scale(_) => "scale",
            Op::Dropout => "dropout",
            Op::Activation(ActKind::Relu) => "relu",
            Op::Activation(ActKind::Sigmoid) => "sigmoid",
            Op::Activation(ActKind::Tanh) => "tanh",
            Op::Activation(ActKind::Gelu) => "gelu",
            Op::Polynomial(_) => "polynomial",
            Op::Square => "square",
            Op::Add => "add",
            Op::Softmax => "softmax",
            Op::Affine { .. } => "affine",
        }
    }

    /// Whether the op is an affine function of its inputs (fusable).
    pub fn is_linear(&self) -> bool {
        matches!(
            self,
            Op::Conv2d { .. }
                | Op::Dense { .. }
                | Op::Reshape
                | Op::Pool {
                    kind: PoolKind::Avg | PoolKind::Sum,
                    ..
                }
                | Op::BatchNorm { .. }
                | Op::Scale(_)
                | Op::Dropout
                | Op::Add
                | Op::Affine { .. }
        )
    }

    fn attrs(&self) -> String {
        let pad = |p: &Padding| format!("{},{},{},{}", p.top, p.left, p.bottom, p.right);
        match self {
            Op::Conv2d {
                weight,
                stride,
                padding,
                ..
            } => format!(
                "{{out={} k={}x{} s={}x{} pad={}}}",
                weight.shape.first().copied().unwrap_or(0),
                weight.shape.get(2).copied().unwrap_or(0),
                weight.shape.get(3).copied().unwrap_or(0),
                stride.0,
                stride.1,
                pad(padding)
            ),
            Op::Dense { weight, .. } => format!(
                "{{out={} in={}}}",
                weight.shape.first().copied().unwrap_or(0),
                weight.shape.get(1).copied().unwrap_or(0)
            ),
            Op::Pool {
                kernel,
                stride,
                padding,
                ..
            } => format!(
                "{{k={}x{} s={}x{} pad={}}}",
                kernel.0,
                kernel.1,
                stride.0,
                stride.1,
                pad(padding)
            ),
            Op::Scale(f) => format!("{{{f}}}"),
            Op::Polynomial(c) => format!("{{c={c:?}}}"),
            Op::Affine { matrix, .. } => {
                format!("{{{}x{} nnz={}}}", matrix.rows, matrix.cols, matrix.nnz())
            }
            _ => String::new(),
        }
    }
}

/// A node: layer name, operation, output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Layer name(s) from the model, joined with `+` when fused.
    pub name: String,
    /// The operation.
    pub op: Op,
    /// Output shape.
    pub shape: Vec<usize>,
}

impl Node {
    /// Number of output values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the node has no values (never true in a verified graph).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The IR graph.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Nodes and producer → consumer edges weighted by input position.
    pub graph: StableDiGraph<Node, usize>,
    /// The input node.
    pub input: NodeId,
    /// The output node.
    pub output: NodeId,
    /// Declared raw input range.
    pub input_range: (f64, f64),
    /// Model name.
    pub model_name: String,
    /// Class names.
    pub classes: Vec<String>,
}

/// An IR invariant that does not hold.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("IR node `{node}` ({op}): {problem}")]
pub struct IrError {
    /// Node name.
    pub node: String,
    /// Its op.
    pub op: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl Graph {
    /// An empty graph holding only the input node.
    pub fn new(model_name: &str, shape: Vec<usize>, input_range: (f64, f64)) -> Self {
        let mut graph = StableDiGraph::default();
        let input = graph.add_node(Node {
            name: "input".into(),
            op: Op::Input,
            shape,
        });
        Graph {
            graph,
            input,
            output: input,
            input_range,
            model_name: model_name.to_owned(),
            classes: Vec::new(),
        }
    }

    /// The node `id`.
    ///
    /// Ids come from this graph, so a missing node is a bug in a pass.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.graph[id]
    }

    /// Mutable access to node `id`.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.graph[id]
    }

    /// Adds a node reading `inputs` in order.
    pub fn add(&mut self, node: Node, inputs: &[NodeId]) -> NodeId {
        let id = self.graph.add_node(node);
        for (slot, &i) in inputs.iter().enumerate() {
            self.graph.add_edge(i, id, slot);
        }
        id
    }

    /// The inputs of `id` in order.
    pub fn inputs(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeId)> = self
            .graph
            .edges_directed(id, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// Replaces the inputs of `id`.
    pub fn set_inputs(&mut self, id: NodeId, inputs: &[NodeId]) {
        let old: Vec<_> = self
            .graph
            .edges_directed(id, Direction::Incoming)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.graph.remove_edge(e);
        }
        for (slot, &i) in inputs.iter().enumerate() {
            self.graph.add_edge(i, id, slot);
        }
    }

    /// The distinct consumers of `id`, smallest id first.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        let mut c: Vec<NodeId> = self
            .graph
            .neighbors_directed(id, Direction::Outgoing)
            .collect();
        c.sort();
        c.dedup();
        c
    }

    /// Makes every reader of `old` (and the output, if it is `old`) read `new` instead.
    pub fn replace_uses(&mut self, old: NodeId, new: NodeId) {
        let uses: Vec<(NodeId, usize, petgraph::stable_graph::EdgeIndex<u32>)> = self
            .graph
            .edges_directed(old, Direction::Outgoing)
            .map(|e| (e.target(), *e.weight(), e.id()))
            .collect();
        for (target, slot, edge) in uses {
            if target == new {
                continue;
            }
            self.graph.remove_edge(edge);
            self.graph.add_edge(new, target, slot);
        }
        if self.output == old {
            self.output = new;
        }
    }

    /// Removes every node that does not reach the output (the input node stays).
    pub fn prune(&mut self) -> usize {
        let mut live = vec![false; self.graph.node_bound()];
        let mut stack = vec![self.output];
        while let Some(n) = stack.pop() {
            if live[n.index()] {
                continue;
            }
            live[n.index()] = true;
            stack.extend(self.graph.neighbors_directed(n, Direction::Incoming));
        }
        let dead: Vec<NodeId> = self
            .graph
            .node_indices()
            .filter(|n| !live[n.index()] && *n != self.input)
            .collect();
        for &n in &dead {
            self.graph.remove_node(n);
        }
        dead.len()
    }

    /// Nodes in topological order (Kahn's algorithm, smallest id first), or the nodes left on
    /// a cycle.
    pub fn try_topo(&self) -> Result<Vec<NodeId>, Vec<NodeId>> {
        let mut indegree: BTreeMap<NodeId, usize> = BTreeMap::new();
        for n in self.graph.node_indices() {
            indegree.insert(n, self.graph.edges_directed(n, Direction::Incoming).count());
        }
        let mut ready: BinaryHeap<Reverse<NodeId>> = indegree
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(&n, _)| Reverse(n))
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.graph.edges_directed(n, Direction::Outgoing) {
                if let Some(d) = indegree.get_mut(&e.target()) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(Reverse(e.target()));
                    }
                }
            }
        }
        if order.len() == indegree.len() {
            Ok(order)
        } else {
            Err(indegree
                .into_iter()
                .filter(|(_, d)| *d > 0)
                .map(|(n, _)| n)
                .collect())
        }
    }

    /// Nodes in topological order. A verified graph is acyclic; on a cycle this returns nothing.
    pub fn topo(&self) -> Vec<NodeId> {
        self.try_topo().unwrap_or_default()
    }

    /// Checks the invariants: acyclic, the input has no inputs, every op has the right number
    /// of inputs and the shape its inputs imply, every node reaches the output.
    pub fn verify(&self) -> Result<(), IrError> {
        let order = self.try_topo().map_err(|cycle| {
            let first = cycle.first().copied().unwrap_or(self.output);
            IrError {
                node: self
                    .graph
                    .node_weight(first)
                    .map(|n| n.name.clone())
                    .unwrap_or_default(),
                op: "?",
                problem: "lies on a cycle".into(),
            }
        })?;
        if self.graph.node_weight(self.output).is_none()
            || self.graph.node_weight(self.input).is_none()
        {
            return Err(IrError {
                node: "?".into(),
                op: "?",
                problem: "the input or output node is missing".into(),
            });
        }
        let mut reaches = vec![false; self.graph.node_bound()];
        reaches[self.output.index()] = true;
        for &n in order.iter().rev() {
            if self.consumers(n).iter().any(|c| reaches[c.index()]) {
                reaches[n.index()] = true;
            }
        }
        for &n in &order {
            let node = &self.graph[n];
            let bad = |problem: String| IrError {
                node: node.name.clone(),
                op: node.op.name(),
                problem,
            };
            let inputs = self.inputs(n);
            if (n == self.input) != matches!(node.op, Op::Input) {
                return Err(bad("only the graph's input node may be an input op".into()));
            }
            let shapes: Vec<Vec<usize>> = inputs
                .iter()
                .map(|&i| self.graph[i].shape.clone())
                .collect();
            let expected =
                infer_shape(&node.op, &shapes, &node.shape).map_err(|e| bad(e.to_string()))?;
            if n != self.input && expected != node.shape {
                return Err(bad(format!(
                    "has shape {:?} but its inputs imply {expected:?}",
                    node.shape
                )));
            }
            if node.is_empty() {
                return Err(bad("has no values".into()));
            }
            if !reaches[n.index()] && n != self.input {
                return Err(bad("does not reach the output".into()));
            }
            if matches!(node.op, Op::Softmax) && n != self.output {
                return Err(bad("softmax is only allowed as the output".into()));
            }
        }
        Ok(())
    }

    /// The text form without facts.
    pub fn to_text(&self) -> String {
        self.to_text_with(&BTreeMap::new())
    }

    /// The text form with a facts string per node.
    pub fn to_text_with(&self, facts: &BTreeMap<NodeId, String>) -> String {
        let order = self.topo();
        let mut number = BTreeMap::new();
        for (i, &n) in order.iter().enumerate() {
            number.insert(n, i);
        }
        let mut out = String::new();
        for &n in &order {
            let node = &self.graph[n];
            let inputs: Vec<String> = self
                .inputs(n)
                .iter()
                .map(|i| format!("%{}", number.get(i).copied().unwrap_or(usize::MAX)))
                .collect();
            let _ = write!(
                out,
                "%{} {} = {}{}({}) -> {:?}",
                number[&n],
                node.name,
                node.op.name(),
                node.op.attrs(),
                inputs.join(", "),
                node.shape
            );
            if let Some(f) = facts.get(&n) {
                let _ = write!(out, " ; {f}");
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "output %{}",
            number.get(&self.output).copied().unwrap_or(usize::MAX)
        );
        out
    }
}
