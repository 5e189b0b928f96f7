//! `fold_batch_norm`: folds a batch normalisation into the convolution or dense layer that
//! feeds it (and nothing else): `w' = w · scale[c]`, `b' = b · scale[c] + shift[c]`.

use super::{Pass, PassContext, PassError};
use crate::ir::{Graph, Op};

/// The pass.
#[derive(Debug, Clone, Copy)]
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold_batch_norm"
    }

    fn run(&self, g: &mut Graph, _ctx: &mut PassContext) -> Result<bool, PassError> {
        let mut changed = false;
        for n in g.topo() {
            let Op::BatchNorm { scale, shift } = &g.node(n).op else {
                continue;
            };
            let (scale, shift) = (scale.clone(), shift.clone());
            let Some(&p) = g.inputs(n).first() else {
                continue;
            };
            if p == g.input || g.consumers(p).len() != 1 || p == g.output {
                continue;
            }
            let bn_name = g.node(n).name.clone();
            let prod = g.node_mut(p);
            let (weight, bias) = match &mut prod.op {
                Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias } => (weight, bias),
                _ => continue,
            };
            let channels = weight.shape.first().copied().unwrap_or(0);
            if channels != scale.len() {
                continue;
            }
            let per = weight.data.len() / channels.max(1);
            for (c, chunk) in weight.data.chunks_mut(per.max(1)).enumerate() {
                for w in chunk {
                    *w *= scale[c];
                }
            }
            for c in 0..channels {
                bias[c] = bias[c] * scale[c] + shift[c];
            }
            prod.name = format!("{}+{bn_name}", prod.name);
            g.replace_uses(n, p);
            g.graph.remove_node(n);
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
    fn folds_into_convolutions_and_dense_layers() {
        let g = chain(
            &[2, 6, 6],
            &[
                "conv:3:3:1",
                "bn",
                "square",
                "flatten",
                "dense:5",
                "bn",
                "dense:2",
            ],
        );
        let after = check_pass(&FoldBatchNorm, &g, true);
        assert!(
            !after.to_text().contains("batch_norm"),
            "{}",
            after.to_text()
        );
    }
}
