//! `lower_pooling`: max pooling becomes sum pooling (CryptoNets' scaled mean pool: a warning
//! says so, since the function changes), and average pooling becomes sum pooling with the
//! 1/k folded into the next convolution or dense layer (through reshapes), or into a `scale`
//! node when no such layer follows.

use super::{Pass, PassContext, PassError};
use crate::ir::{Graph, Node, NodeId, Op, PoolKind};

/// The pass.
#[derive(Debug, Clone, Copy)]
pub struct LowerPooling;

/// The convolution or dense layer that alone consumes `n` (through reshapes), if any.
fn next_weighted(g: &Graph, mut n: NodeId) -> Option<NodeId> {
    loop {
        if n == g.output {
            return None;
        }
        let consumers = g.consumers(n);
        let [c] = consumers.as_slice() else {
            return None;
        };
        match g.node(*c).op {
            Op::Reshape | Op::Dropout => n = *c,
            Op::Conv2d { .. } | Op::Dense { .. } => return Some(*c),
            _ => return None,
        }
    }
}

impl Pass for LowerPooling {
    fn name(&self) -> &'static str {
        "lower_pooling"
    }

    fn run(&self, g: &mut Graph, ctx: &mut PassContext) -> Result<bool, PassError> {
        let mut changed = false;
        for n in g.topo() {
            let Op::Pool { kind, kernel, .. } = g.node(n).op else {
                continue;
            };
            match kind {
                PoolKind::Sum => {}
                PoolKind::Max => {
                    let node = g.node_mut(n);
                    if let Op::Pool { kind, .. } = &mut node.op {
                        *kind = PoolKind::Sum;
                    }
                    ctx.warnings.push(format!(
                        "layer `{}`: max pooling replaced by sum pooling (CryptoNets' scaled mean pool); check the accuracy of the compiled plan",
                        node.name
                    ));
                    changed = true;
                }
                PoolKind::Avg => {
                    let factor = 1.0 / (kernel.0 * kernel.1) as f64;
                    if let Op::Pool { kind, .. } = &mut g.node_mut(n).op {
                        *kind = PoolKind::Sum;
                    }
                    if let Some(w) = next_weighted(g, n) {
                        if let Op::Conv2d { weight, .. } | Op::Dense { weight, .. } =
                            &mut g.node_mut(w).op
                        {
                            for v in &mut weight.data {
                                *v *= factor;
                            }
                        }
                    } else {
                        let node = g.node(n);
                        let scale = Node {
                            name: node.name.clone(),
                            op: Op::Scale(factor),
                            shape: node.shape.clone(),
                        };
                        let s = g.add(scale, &[]);
                        g.replace_uses(n, s);
                        g.set_inputs(s, &[n]);
                    }
                    changed = true;
                }
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{chain, check_pass};

    #[test]
    fn average_pooling_keeps_the_function() {
        let g = chain(&[2, 6, 6], &["avgpool:2:2", "flatten", "dense:3"]);
        let after = check_pass(&LowerPooling, &g, true);
        assert!(after.to_text().contains("sum_pool2d"));
        assert!(!after.to_text().contains("scale"));
        let g = chain(&[2, 6, 6], &["avgpool:2:2", "square", "flatten", "dense:3"]);
        let after = check_pass(&LowerPooling, &g, true);
        assert!(after.to_text().contains("scale"));
    }

    #[test]
    fn max_pooling_warns() {
        let mut g = chain(&[1, 4, 4], &["maxpool:2:2", "flatten", "dense:2"]);
        let mut ctx = PassContext::default();
        assert!(LowerPooling.run(&mut g, &mut ctx).unwrap());
        assert_eq!(ctx.warnings.len(), 1);
        assert!(ctx.warnings[0].contains("l0"));
    }
}
