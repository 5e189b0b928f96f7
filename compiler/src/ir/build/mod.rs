//! The border: turns a parsed model into the IR, checking everything once. Errors name the
//! file, the layer and the field.
//!
//! The steps run in a fixed order so that the first problem reported is the most basic one:
//! the input declaration (`input`), then the layer names and edges (`edges`), then each
//! layer in dependency order (`layers`), and last the class names.

mod checker;
mod edges;
mod input;
mod layers;

use super::{infer_shape, Graph, Node, NodeId};
use crate::model::{LoadedModel, Model, ModelError, ModelErrorKind};
use checker::Checker;
use edges::Producers;
use layers::Lowering;

/// Largest number of values in one tensor of activations.
pub const MAX_VALUES: usize = 1 << 24;
/// Largest number of weights in one layer.
pub const MAX_WEIGHTS: usize = 1 << 28;
/// Largest kernel, stride or padding.
pub const MAX_WINDOW: usize = 1024;
/// Largest number of layers.
pub const MAX_LAYERS: usize = 10_000;

/// The number of values of `shape`, or `None` when it overflows.
fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Builds and checks the IR of a loaded model.
pub fn build(loaded: &LoadedModel) -> Result<Graph, ModelError> {
    let ck = Checker { loaded };
    let m = &loaded.model;
    input::check_input(&ck, &m.input)?;
    let index = edges::index_layers(&ck, &m.layers)?;
    let producers = edges::producers(&ck, &m.layers, &index)?;
    let order = edges::dependency_order(&ck, &m.layers, &producers)?;
    edges::check_all_reach_output(&ck, &m.layers, &producers)?;
    let mut g = add_nodes(&ck, m, &producers, &order)?;
    g.classes = class_names(&ck, m, g.node(g.output).len())?;
    Ok(g)
}

/// Adds one node per layer, in dependency order, and marks the last layer as the output.
fn add_nodes(
    ck: &Checker<'_>,
    m: &Model,
    producers: &[Producers],
    order: &[usize],
) -> Result<Graph, ModelError> {
    let mut g = Graph::new(&m.name, m.input.shape.clone(), (m.input.min, m.input.max));
    let out = m.layers.len() - 1;
    let mut ids: Vec<Option<NodeId>> = vec![None; m.layers.len()];
    for &i in order {
        let inputs: Vec<NodeId> = producers[i]
            .iter()
            .map(|p| p.and_then(|j| ids[j]).unwrap_or(g.input))
            .collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&id| g.node(id).shape.clone()).collect();
        let at = Lowering {
            layer: &m.layers[i],
            shapes: &shapes,
            is_output: i == out,
        };
        let node = lower_node(ck, &at)?;
        ids[i] = Some(g.add(node, &inputs));
    }
    g.output = ids[out].unwrap_or(g.input);
    Ok(g)
}

/// The node of one layer, with its shape inferred and its size checked.
fn lower_node(ck: &Checker<'_>, at: &Lowering<'_>) -> Result<Node, ModelError> {
    let name = at.layer.name.as_str();
    let (op, own) = layers::lower(ck, at)?;
    let shape = infer_shape(&op, at.shapes, &own).map_err(|e| ck.shape_err(name, e))?;
    let len = checked_len(&shape).unwrap_or(usize::MAX);
    if len == 0 || len > MAX_VALUES {
        return Err(ck.err(
            name,
            ModelErrorKind::Size {
                what: "output values",
                value: len,
                min: 1,
                max: MAX_VALUES,
            },
        ));
    }
    Ok(Node {
        name: name.to_owned(),
        op,
        shape,
    })
}

/// The class names: the model's, which must match the number of outputs, or `"0"`, `"1"`, ….
fn class_names(ck: &Checker<'_>, m: &Model, outputs: usize) -> Result<Vec<String>, ModelError> {
    if m.classes.is_empty() {
        Ok((0..outputs).map(|k| k.to_string()).collect())
    } else if m.classes.len() == outputs {
        Ok(m.classes.clone())
    } else {
        Err(ck
            .file_err(ModelErrorKind::Classes {
                names: m.classes.len(),
                outputs,
            })
            .with_field("classes"))
    }
}
