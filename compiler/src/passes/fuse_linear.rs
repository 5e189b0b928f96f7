//! `fuse_linear`: every maximal run of linear operations (convolution, pooling, reshape,
//! dense, batch norm, scaling, add, affine) becomes ONE sparse affine map over the non-linear
//! values it reads (squares and the model input). Zero padding simply contributes no entries.
//!
//! Each linear node is expressed as `A · concat(sources) + a` where the sources are non-linear
//! nodes; a linear node is kept (as an `affine` node named after every layer it absorbed,
//! joined with `+`) when it is the output or feeds a non-linear node; the others disappear.
//! Finally the output is made an affine node (an identity map if needed), so the circuit
//! always ends with a linear step whose scale is uniform.

use super::{Pass, PassContext, PassError};
use crate::ir::{Graph, Node, NodeId, Op, PoolKind, SparseMatrix};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The pass.
#[derive(Debug, Clone, Copy)]
pub struct FuseLinear;

/// A linear node as an affine function of non-linear sources.
#[derive(Clone, Debug)]
struct Expr {
    sources: Vec<NodeId>,
    matrix: SparseMatrix,
    bias: Vec<f64>,
    /// The linear inputs this node absorbed (their own expressions), in input order: the
    /// layers whose names the fused node joins. Kept as links, not copied name lists, so a
    /// run of N layers costs O(N) names instead of O(N²) (and O(N³) to deduplicate).
    absorbed: Vec<NodeId>,
}

/// The names of the layers fused into `n`, each once, every layer after the ones it reads:
/// a post-order walk over the absorbed links (iterative: runs may be thousands long).
fn fused_name(g: &Graph, exprs: &BTreeMap<NodeId, Expr>, n: NodeId) -> String {
    let mut visited = BTreeSet::new();
    let mut seen_names = HashSet::new();
    let mut names: Vec<&str> = Vec::new();
    // (node, index of the next absorbed input to visit).
    let mut stack = vec![(n, 0usize)];
    visited.insert(n);
    while let Some((node, next)) = stack.pop() {
        let absorbed = exprs.get(&node).map_or(&[][..], |e| &e.absorbed[..]);
        if let Some(&child) = absorbed.get(next) {
            stack.push((node, next + 1));
            if visited.insert(child) {
                stack.push((child, 0));
            }
            continue;
        }
        let name = g.node(node).name.as_str();
        if seen_names.insert(name) {
            names.push(name);
        }
    }
    names.join("+")
}

/// The matrix and bias of one linear op over the concatenation of its inputs.
fn op_matrix(
    op: &Op,
    in_shapes: &[Vec<usize>],
    out_shape: &[usize],
) -> Option<(SparseMatrix, Vec<f64>)> {
    let cols: usize = in_shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    let rows_n: usize = out_shape.iter().product();
    Some(match op {
        Op::Conv2d {
            weight,
            bias,
            stride,
            padding,
        } => {
            let s = in_shapes.first()?;
            let (c, h, w) = (s[0], s[1], s[2]);
            let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3]);
            let (ho, wo) = (out_shape[1], out_shape[2]);
            let mut rows = Vec::with_capacity(rows_n);
            let mut b = Vec::with_capacity(rows_n);
            for oc in 0..o {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut row = Vec::new();
                        for ic in 0..c {
                            for i in 0..kh {
                                let Some(y) = (oy * stride.0 + i)
                                    .checked_sub(padding.top)
                                    .filter(|&y| y < h)
                                else {
                                    continue;
                                };
                                for j in 0..kw {
                                    let Some(x) = (ox * stride.1 + j)
                                        .checked_sub(padding.left)
                                        .filter(|&x| x < w)
                                    else {
                                        continue;
                                    };
                                    row.push((
                                        (ic * h + y) * w + x,
                                        weight.data[((oc * c + ic) * kh + i) * kw + j],
                                    ));
                                }
                            }
                        }
                        rows.push(row);
                        b.push(bias[oc]);
                    }
                }
            }
            (SparseMatrix::from_rows(cols, rows), b)
        }
        Op::Dense { weight, bias } => {
            let n = weight.shape[1];
            let rows = (0..weight.shape[0])
                .map(|r| {
                    weight.data[r * n..(r + 1) * n]
                        .iter()
                        .copied()
                        .enumerate()
                        .collect()
                })
                .collect();
            (SparseMatrix::from_rows(cols, rows), bias.clone())
        }
        Op::Pool {
            kind,
            kernel,
            stride,
            padding,
        } => {
            let v = match kind {
                PoolKind::Sum => 1.0,
                PoolKind::Avg => 1.0 / (kernel.0 * kernel.1) as f64,
                PoolKind::Max => return None,
            };
            let s = in_shapes.first()?;
            let (c, h, w) = (s[0], s[1], s[2]);
            let (ho, wo) = (out_shape[1], out_shape[2]);
            let mut rows = Vec::with_capacity(rows_n);
            for ch in 0..c {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut row = Vec::new();
                        for i in 0..kernel.0 {
                            let Some(y) = (oy * stride.0 + i)
                                .checked_sub(padding.top)
                                .filter(|&y| y < h)
                            else {
                                continue;
                            };
                            for j in 0..kernel.1 {
                                let Some(x) = (ox * stride.1 + j)
                                    .checked_sub(padding.left)
                                    .filter(|&x| x < w)
                                else {
                                    continue;
                                };
                                row.push(((ch * h + y) * w + x, v));
                            }
                        }
                        rows.push(row);
                    }
                }
            }
            (SparseMatrix::from_rows(cols, rows), vec![0.0; rows_n])
        }
        Op::BatchNorm { scale, shift } => {
            let per = cols / scale.len().max(1);
            let diag: Vec<f64> = (0..cols).map(|i| scale[i / per.max(1)]).collect();
            let b = (0..cols).map(|i| shift[i / per.max(1)]).collect();
            (SparseMatrix::diagonal(&diag), b)
        }
        Op::Scale(f) => (SparseMatrix::diagonal(&vec![*f; cols]), vec![0.0; cols]),
        Op::Reshape | Op::Dropout => (SparseMatrix::diagonal(&vec![1.0; cols]), vec![0.0; cols]),
        Op::Add => {
            let half = cols / 2;
            let rows = (0..half).map(|i| vec![(i, 1.0), (half + i, 1.0)]).collect();
            (SparseMatrix::from_rows(cols, rows), vec![0.0; half])
        }
        Op::Affine { matrix, bias } => (matrix.clone(), bias.clone()),
        _ => return None,
    })
}

fn identity(g: &Graph, n: NodeId) -> Expr {
    let len = g.node(n).len();
    Expr {
        sources: vec![n],
        matrix: SparseMatrix::diagonal(&vec![1.0; len]),
        bias: vec![0.0; len],
        absorbed: Vec::new(),
    }
}

impl Pass for FuseLinear {
    fn name(&self) -> &'static str {
        "fuse_linear"
    }

    fn run(&self, g: &mut Graph, _ctx: &mut PassContext) -> Result<bool, PassError> {
        let order = g.topo();
        let mut exprs: BTreeMap<NodeId, Expr> = BTreeMap::new();
        let mut changed = false;
        for &n in &order {
            let node = g.node(n);
            if n == g.input || !node.op.is_linear() {
                continue;
            }
            let inputs = g.inputs(n);
            // Stack the input expressions over the union of their sources.
            let mut sources: Vec<NodeId> = Vec::new();
            let absorbed: Vec<NodeId> = inputs
                .iter()
                .copied()
                .filter(|i| exprs.contains_key(i))
                .collect();
            let input_exprs: Vec<Expr> = inputs
                .iter()
                .map(|&i| exprs.get(&i).cloned().unwrap_or_else(|| identity(g, i)))
                .collect();
            for e in &input_exprs {
                for &s in &e.sources {
                    if !sources.contains(&s) {
                        sources.push(s);
                    }
                }
            }
            let mut offsets = BTreeMap::new();
            let mut total = 0;
            for &s in &sources {
                offsets.insert(s, total);
                total += g.node(s).len();
            }
            let remapped: Vec<SparseMatrix> = input_exprs
                .iter()
                .map(|e| {
                    let mut map = Vec::new();
                    for s in &e.sources {
                        let off = offsets.get(s).copied().unwrap_or(0);
                        map.extend((0..g.node(*s).len()).map(|k| off + k));
                    }
                    e.matrix.remap_columns(total, &map)
                })
                .collect();
            let refs: Vec<&SparseMatrix> = remapped.iter().collect();
            let stacked = SparseMatrix::vstack(total, &refs);
            let stacked_bias: Vec<f64> = input_exprs
                .iter()
                .flat_map(|e| e.bias.iter().copied())
                .collect();
            let shapes: Vec<Vec<usize>> = inputs.iter().map(|&i| g.node(i).shape.clone()).collect();
            let Some((m, b)) = op_matrix(&node.op, &shapes, &node.shape) else {
                return Err(PassError::Failed {
                    pass: "fuse_linear",
                    node: node.name.clone(),
                    problem: format!("{} is not linear", node.op.name()),
                });
            };
            let matrix = m.compose(&stacked);
            let bias: Vec<f64> = m
                .mul_vec(&stacked_bias)
                .iter()
                .zip(&b)
                .map(|(x, y)| x + y)
                .collect();
            exprs.insert(
                n,
                Expr {
                    sources,
                    matrix,
                    bias,
                    absorbed,
                },
            );
        }
        // Keep the linear nodes read by non-linear nodes or being the output, named (before
        // any renaming) after every layer they absorbed.
        let mut kept = Vec::new();
        for &n in &order {
            if !exprs.contains_key(&n) {
                continue;
            }
            let needed = n == g.output || g.consumers(n).iter().any(|c| !exprs.contains_key(c));
            if needed {
                kept.push((n, fused_name(g, &exprs, n)));
            } else {
                changed = true;
            }
        }
        for (n, name) in kept {
            let Some(expr) = exprs.get(&n) else { continue };
            let was_fused =
                matches!(g.node(n).op, Op::Affine { .. }) && g.inputs(n) == expr.sources;
            if !was_fused {
                changed = true;
            }
            let node = g.node_mut(n);
            node.name = name;
            node.op = Op::Affine {
                matrix: expr.matrix.clone(),
                bias: expr.bias.clone(),
            };
            g.set_inputs(n, &expr.sources);
        }
        // Rewire: readers of kept nodes already read them; removed nodes are pruned by the
        // manager. Non-linear readers of a dropped node cannot exist (it would be kept).
        if !matches!(g.node(g.output).op, Op::Affine { .. }) {
            let out = g.output;
            let node = g.node(out);
            let len = node.len();
            let id = Node {
                name: node.name.clone(),
                op: Op::Affine {
                    matrix: SparseMatrix::diagonal(&vec![1.0; len]),
                    bias: vec![0.0; len],
                },
                shape: node.shape.clone(),
            };
            let a = g.add(id, &[out]);
            g.output = a;
            changed = true;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{chain, check_pass};

    #[test]
    fn runs_of_linear_ops_become_one_map() {
        let g = chain(
            &[1, 8, 8],
            &[
                "conv:2:3:1",
                "square",
                "sumpool:2:2",
                "conv:3:2:1",
                "flatten",
                "dense:4",
                "square",
                "dense:2",
            ],
        );
        let after = check_pass(&FuseLinear, &g, true);
        let text = after.to_text();
        assert!(text.contains("l2+l3+l4+l5 = affine{4x72"), "{text}");
        assert_eq!(text.matches("affine").count(), 3, "{text}");
    }

    /// Issue 13 defect 6: a run of thousands of linear layers used to take cubic time (each
    /// fused node copied and deduplicated every absorbed name). It is one affine node named
    /// after each layer once, in order.
    #[test]
    fn a_long_run_of_dense_layers_fuses_into_one_named_map() {
        const LAYERS: usize = 3000;
        let specs = vec!["dense:2"; LAYERS];
        let mut g = chain(&[2], &specs);
        FuseLinear.run(&mut g, &mut PassContext::default()).unwrap();
        g.prune();
        let text = g.to_text();
        let names: Vec<String> = (0..LAYERS).map(|i| format!("l{i}")).collect();
        assert!(
            text.contains(&format!("{} = affine{{2x2", names.join("+"))),
            "{text:.300}"
        );
        assert_eq!(text.matches("affine").count(), 1, "{text:.300}");
    }

    #[test]
    fn residual_adds_fuse() {
        let g = crate::testing::residual();
        let after = check_pass(&FuseLinear, &g, true);
        assert!(!after.to_text().contains(" add"), "{}", after.to_text());
    }
}
