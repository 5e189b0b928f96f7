//! Multiplicative depth: the number of squares on the longest path from the input to each node.
//!
//! Depth is what the noise, and so the ciphertext modulus, grows with; quantisation needs it
//! for its error messages and every circuit node carries it into the plan. It is its own
//! analysis so that it can be read and tested apart from the scales.
//!
//! It is meant for the lowered graph, where `square` is the only multiplication of two
//! ciphertexts (the passes expand polynomials into squares and replace other activations by
//! squares); every other op adds no depth.

use crate::ir::{Graph, NodeId, Op};
use std::collections::BTreeMap;

/// Depth of every node: the largest depth of its inputs (0 for the input), plus one for a
/// square.
pub fn depths(g: &Graph) -> BTreeMap<NodeId, u32> {
    let mut depth_of: BTreeMap<NodeId, u32> = BTreeMap::new();
    for n in g.topo() {
        let d = g
            .inputs(n)
            .iter()
            .filter_map(|i| depth_of.get(i))
            .copied()
            .max()
            .unwrap_or(0);
        depth_of.insert(n, d + u32::from(matches!(g.node(n).op, Op::Square)));
    }
    depth_of
}

/// Multiplicative depth of the graph: the largest node depth (0 without squares).
pub fn max_depth(depths: &BTreeMap<NodeId, u32>) -> u32 {
    depths.values().copied().max().unwrap_or(0)
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
    use crate::passes::PassManager;
    use crate::testing::{chain, residual};

    /// `(name, depth)` of every node in topological order.
    fn named(g: &Graph) -> Vec<(String, u32)> {
        let d = depths(g);
        g.topo()
            .into_iter()
            .map(|n| (g.node(n).name.clone(), d[&n]))
            .collect()
    }

    #[test]
    fn each_square_adds_one_and_linear_ops_add_none() {
        let g = chain(&[4], &["dense:4", "square", "dense:3", "square", "dense:2"]);
        let expect: Vec<(String, u32)> = [
            ("input", 0),
            ("l0", 0),
            ("l1", 1),
            ("l2", 1),
            ("l3", 2),
            ("l4", 2),
        ]
        .iter()
        .map(|&(n, d)| (n.to_owned(), d))
        .collect();
        assert_eq!(named(&g), expect);
        assert_eq!(max_depth(&depths(&g)), 2);
    }

    #[test]
    fn a_join_takes_the_deeper_input() {
        // l3 = add(l1 = square(..), l2 = dense(l1)); the skip path has the same depth.
        let g = residual();
        let d = named(&g);
        assert!(d.contains(&("l3".to_owned(), 1)), "{d:?}");
        assert_eq!(max_depth(&depths(&g)), 1);
        // A join of a square with the (depth 0) input is at depth 1.
        let mut g = chain(&[4], &["square", "dense:4"]);
        let sq = g.topo()[1];
        let add = g.add(
            crate::ir::Node {
                name: "join".into(),
                op: Op::Add,
                shape: vec![4],
            },
            &[g.input, sq],
        );
        assert_eq!(depths(&g)[&add], 1);
    }

    #[test]
    fn lowering_keeps_the_depth() {
        for specs in [
            &["conv:2:3:1", "square", "sumpool:2:1", "flatten", "dense:3"][..],
            &[
                "flatten",
                "dense:4",
                "poly:0.1:0.5:0.25",
                "dense:4",
                "relu",
                "dense:2",
            ][..],
            &["flatten", "dense:2"][..],
        ] {
            let g = chain(&[1, 5, 5], specs);
            let mut lowered = g.clone();
            PassManager::standard().run(&mut lowered).unwrap();
            let squares = specs
                .iter()
                .filter(|s| ["square", "poly", "relu"].iter().any(|p| s.starts_with(p)))
                .count() as u32;
            assert_eq!(max_depth(&depths(&lowered)), squares, "{specs:?}");
        }
    }
}
