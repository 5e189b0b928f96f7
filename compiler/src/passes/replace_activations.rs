//! `replace_activations`: ReLU, sigmoid and tanh become x², with a warning naming each layer
//! (the function changes; the compiled plan's accuracy must be measured).

use super::{Pass, PassContext, PassError};
use crate::ir::{Graph, Op};

/// The pass.
#[derive(Debug, Clone, Copy)]
pub struct ReplaceActivations;

impl Pass for ReplaceActivations {
    fn name(&self) -> &'static str {
        "replace_activations"
    }

    fn run(&self, g: &mut Graph, ctx: &mut PassContext) -> Result<bool, PassError> {
        let mut changed = false;
        for n in g.topo() {
            let node = g.node_mut(n);
            if let Op::Activation(kind) = node.op {
                ctx.warnings.push(format!(
                    "layer `{}`: {} replaced by x²; check the accuracy of the compiled plan",
                    node.name,
                    Op::Activation(kind).name()
                ));
                node.op = Op::Square;
                changed = true;
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::chain;

    #[test]
    fn every_replacement_is_named() {
        let mut g = chain(&[3], &["dense:4", "relu", "dense:4", "tanh", "dense:2"]);
        let mut ctx = PassContext::default();
        assert!(ReplaceActivations.run(&mut g, &mut ctx).unwrap());
        assert_eq!(ctx.warnings.len(), 2);
        assert!(ctx.warnings[0].starts_with("layer `l1`: relu"));
        assert!(ctx.warnings[1].starts_with("layer `l3`: tanh"));
        g.verify().unwrap();
    }
}
