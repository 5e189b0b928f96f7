//! Dropping input values that no integer weight reads: they are never encrypted or sent, and
//! the columns that read the input shrink to the values kept.

use super::{QNode, QOp};

/// Marker of a raw position that is not kept.
const DROPPED: usize = usize::MAX;

/// The raw input positions some node reads, in increasing order. Every position is kept when
/// a square reads the whole input or the output is the input itself.
pub(super) fn used_features(nodes: &[QNode], raw_len: usize, output_is_input: bool) -> Vec<usize> {
    let mut used = vec![output_is_input; raw_len];
    for node in nodes {
        match &node.op {
            QOp::Square { input: 0 } => used.iter_mut().for_each(|u| *u = true),
            QOp::Linear { inputs, matrix, .. } => {
                let mut offset = 0;
                for &i in inputs {
                    if i == 0 {
                        for &c in &matrix.col_idx {
                            let c = c as usize;
                            if (offset..offset + raw_len).contains(&c) {
                                used[c - offset] = true;
                            }
                        }
                    }
                    offset += nodes[i].len;
                }
            }
            _ => {}
        }
    }
    (0..raw_len).filter(|&i| used[i]).collect()
}

/// The names of the nodes that read the input (node 0).
pub(super) fn input_readers(nodes: &[QNode]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| match &n.op {
            QOp::Input => false,
            QOp::Square { input } => *input == 0,
            QOp::Linear { inputs, .. } => inputs.contains(&0),
        })
        .map(|n| n.name.clone())
        .collect()
}

/// Renumbers the columns of every linear node that reads the input so that its input block
/// holds only `features` (a strictly increasing subset of `0..raw_len`).
pub(super) fn keep_only(nodes: &mut [QNode], raw_len: usize, features: &[usize]) {
    let mut new_index = vec![DROPPED; raw_len];
    for (k, &f) in features.iter().enumerate() {
        new_index[f] = k;
    }
    let lens: Vec<usize> = nodes.iter().map(|n| n.len).collect();
    for node in nodes.iter_mut() {
        let QOp::Linear { inputs, matrix, .. } = &mut node.op else {
            continue;
        };
        // Column remap: input-0 blocks shrink to the kept features.
        let mut map = Vec::with_capacity(matrix.cols);
        let mut new_offset = 0;
        for &i in inputs.iter() {
            if i == 0 {
                map.extend(new_index.iter().map(|&k| {
                    if k == DROPPED {
                        DROPPED
                    } else {
                        new_offset + k
                    }
                }));
                new_offset += features.len();
            } else {
                map.extend((0..lens[i]).map(|c| new_offset + c));
                new_offset += lens[i];
            }
        }
        for c in &mut matrix.col_idx {
            *c = map[*c as usize] as u32;
        }
        matrix.cols = new_offset;
    }
}
