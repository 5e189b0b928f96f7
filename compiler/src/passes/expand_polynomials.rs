//! `expand_polynomials`: `c0 + c1·x + c2·x²` becomes `square` then an affine map over
//! `concat(x², x)` (rows `c2·x²[i] + c1·x[i] + c0`); degree ≤ 1 becomes an affine map, and
//! exactly `x²` a plain `square`.

use super::{Pass, PassContext, PassError};
use crate::ir::{Graph, Node, Op, SparseMatrix};

/// The pass.
#[derive(Debug, Clone, Copy)]
pub struct ExpandPolynomials;

impl Pass for ExpandPolynomials {
    fn name(&self) -> &'static str {
        "expand_polynomials"
    }

    fn run(&self, g: &mut Graph, _ctx: &mut PassContext) -> Result<bool, PassError> {
        let mut changed = false;
        for n in g.topo() {
            let Op::Polynomial(c) = &g.node(n).op else {
                continue;
            };
            let c = c.clone();
            let node = g.node(n).clone();
            let Some(&x) = g.inputs(n).first() else {
                continue;
            };
            let len = node.len();
            let c0 = c.first().copied().unwrap_or(0.0);
            let c1 = c.get(1).copied().unwrap_or(0.0);
            let c2 = c.get(2).copied().unwrap_or(0.0);
            if c2 == 0.0 {
                let matrix = SparseMatrix::diagonal(&vec![c1; len]);
                g.node_mut(n).op = Op::Affine {
                    matrix,
                    bias: vec![c0; len],
                };
            } else if c0 == 0.0 && c1 == 0.0 && c2 == 1.0 {
                g.node_mut(n).op = Op::Square;
            } else {
                let sq = g.add(
                    Node {
                        name: node.name.clone(),
                        op: Op::Square,
                        shape: node.shape.clone(),
                    },
                    &[x],
                );
                let rows = (0..len).map(|i| vec![(i, c2), (len + i, c1)]).collect();
                let matrix = SparseMatrix::from_rows(2 * len, rows);
                g.node_mut(n).op = Op::Affine {
                    matrix,
                    bias: vec![c0; len],
                };
                g.set_inputs(n, &[sq, x]);
            }
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
    fn polynomials_keep_their_values() {
        let g = chain(
            &[4],
            &[
                "dense:3",
                "poly:0.5:-1:0.25",
                "dense:2",
                "poly:1:2",
                "dense:2",
            ],
        );
        let after = check_pass(&ExpandPolynomials, &g, true);
        assert!(!after.to_text().contains("polynomial"));
        assert!(after.to_text().contains("square"));
    }
}
