//! `drop_noops`: removes what does nothing at inference: dropout, identity reshapes, unit
//! scalings, and a final softmax or sigmoid (monotone, so the argmax is unchanged).

use super::{Pass, PassContext, PassError};
use crate::ir::{ActKind, Graph, Op};

/// The pass.
#[derive(Debug, Clone, Copy)]
pub struct DropNoops;

impl Pass for DropNoops {
    fn name(&self) -> &'static str {
        "drop_noops"
    }

    fn run(&self, g: &mut Graph, _ctx: &mut PassContext) -> Result<bool, PassError> {
        let mut changed = false;
        loop {
            let mut again = false;
            for n in g.topo() {
                if n == g.input {
                    continue;
                }
                let node = g.node(n);
                let inputs = g.inputs(n);
                let Some(&src) = inputs.first() else { continue };
                let identity = match &node.op {
                    Op::Dropout => true,
                    Op::Reshape => g.node(src).shape == node.shape,
                    Op::Scale(f) => *f == 1.0,
                    Op::Softmax | Op::Activation(ActKind::Sigmoid) => n == g.output,
                    _ => false,
                };
                if identity {
                    g.replace_uses(n, src);
                    g.graph.remove_node(n);
                    changed = true;
                    again = true;
                    break;
                }
            }
            if !again {
                return Ok(changed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{chain, check_pass};

    #[test]
    fn drops_dropout_and_the_final_softmax() {
        let g = chain(
            &[4],
            &["dense:3", "dropout", "square", "dense:2", "softmax"],
        );
        let after = check_pass(&DropNoops, &g, false);
        assert!(!after.to_text().contains("dropout"));
        assert!(!after.to_text().contains("softmax"));
    }
}
