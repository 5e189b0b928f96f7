//! The layer graph before any node exists: unique names, who reads whom, an order without
//! cycles, and the check that every layer contributes to the output.

use super::checker::Checker;
use super::MAX_LAYERS;
use crate::model::{self, Layer, ModelError, ModelErrorKind};
use std::collections::{BTreeMap, VecDeque};

/// The producers of one layer's inputs: `None` is the model input, `Some(j)` layer `j`.
pub(super) type Producers = Vec<Option<usize>>;

/// How many layer names an unknown-input error lists.
const NAMES_SHOWN: usize = 8;

/// Checks the number of layers and their names; returns each name's position.
pub(super) fn index_layers<'m>(
    ck: &Checker<'_>,
    layers: &'m [Layer],
) -> Result<BTreeMap<&'m str, usize>, ModelError> {
    if layers.is_empty() {
        return Err(ck.file_err(ModelErrorKind::NoLayers).with_field("layers"));
    }
    if layers.len() > MAX_LAYERS {
        return Err(ck
            .file_err(ModelErrorKind::Size {
                what: "number of layers",
                value: layers.len(),
                min: 1,
                max: MAX_LAYERS,
            })
            .with_field("layers"));
    }
    let mut index = BTreeMap::new();
    for (i, l) in layers.iter().enumerate() {
        if l.name.is_empty() || l.name == "input" {
            return Err(ck
                .err(&l.name, ModelErrorKind::BadName(l.name.clone()))
                .with_field("name"));
        }
        if index.insert(l.name.as_str(), i).is_some() {
            return Err(ck
                .err(&l.name, ModelErrorKind::DuplicateName)
                .with_field("name"));
        }
    }
    Ok(index)
}

/// Resolves every layer's `inputs` (empty: the previous layer, or the model input for the
/// first) and checks how many each op takes.
pub(super) fn producers(
    ck: &Checker<'_>,
    layers: &[Layer],
    index: &BTreeMap<&str, usize>,
) -> Result<Vec<Producers>, ModelError> {
    let mut all = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let names: Vec<String> = if !l.inputs.is_empty() {
            l.inputs.clone()
        } else if i == 0 {
            vec!["input".into()]
        } else {
            vec![layers[i - 1].name.clone()]
        };
        let p = names
            .iter()
            .map(|name| resolve(ck, layers, index, l, name))
            .collect::<Result<Producers, _>>()?;
        let expected = if matches!(l.op, model::Op::Add) { 2 } else { 1 };
        if p.len() != expected {
            return Err(ck
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
        all.push(p);
    }
    Ok(all)
}

/// The producer named `name` in the inputs of layer `reader`.
fn resolve(
    ck: &Checker<'_>,
    layers: &[Layer],
    index: &BTreeMap<&str, usize>,
    reader: &Layer,
    name: &str,
) -> Result<Option<usize>, ModelError> {
    if name == "input" {
        return Ok(None);
    }
    if let Some(&j) = index.get(name) {
        return Ok(Some(j));
    }
    let known: Vec<String> = layers
        .iter()
        .take(NAMES_SHOWN)
        .map(|l| format!("`{}`", l.name))
        .collect();
    let more = if layers.len() > NAMES_SHOWN {
        ", …"
    } else {
        ""
    };
    Err(ck
        .err(
            &reader.name,
            ModelErrorKind::UnknownInput {
                name: name.to_owned(),
                known: format!("{}{more}", known.join(", ")),
            },
        )
        .with_field("inputs"))
}

/// The layers in an order where every producer comes before its readers (Kahn's algorithm);
/// a cycle is an error naming the layers on it.
pub(super) fn dependency_order(
    ck: &Checker<'_>,
    layers: &[Layer],
    producers: &[Producers],
) -> Result<Vec<usize>, ModelError> {
    let n = layers.len();
    let mut indegree = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in producers.iter().enumerate() {
        for &j in p.iter().flatten() {
            indegree[i] += 1;
            users[j].push(i);
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
    if order.len() == n {
        return Ok(order);
    }
    let on_cycle: Vec<String> = (0..n)
        .filter(|&i| indegree[i] > 0)
        .map(|i| format!("`{}`", layers[i].name))
        .collect();
    let first = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
    Err(ck
        .err(
            &layers[first].name,
            ModelErrorKind::Cycle(on_cycle.join(", ")),
        )
        .with_field("inputs"))
}

/// Checks that every layer contributes to the output (the last layer).
pub(super) fn check_all_reach_output(
    ck: &Checker<'_>,
    layers: &[Layer],
    producers: &[Producers],
) -> Result<(), ModelError> {
    let out = layers.len() - 1;
    let mut reaches = vec![false; layers.len()];
    let mut stack = vec![out];
    while let Some(i) = stack.pop() {
        if reaches[i] {
            continue;
        }
        reaches[i] = true;
        stack.extend(producers[i].iter().flatten());
    }
    match reaches.iter().position(|&r| !r) {
        None => Ok(()),
        Some(i) => Err(ck.err(
            &layers[i].name,
            ModelErrorKind::Unreachable {
                output: layers[out].name.clone(),
            },
        )),
    }
}
