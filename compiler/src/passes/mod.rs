//! Graph passes. Each pass is a small named unit in its own module, named as a verb; the
//! [`PassManager`] runs them in order, verifies the IR after each one (always in tests and
//! debug builds, on request otherwise) and can keep the IR text after each pass.

mod drop_noops;
mod expand_polynomials;
mod fold_batch_norm;
mod fuse_linear;
mod lower_pooling;
mod replace_activations;

pub use drop_noops::DropNoops;
pub use expand_polynomials::ExpandPolynomials;
pub use fold_batch_norm::FoldBatchNorm;
pub use fuse_linear::FuseLinear;
pub use lower_pooling::LowerPooling;
pub use replace_activations::{ActivationChoice, ReplaceActivations, MAX_FIT_SAMPLES};

use crate::ir::{Graph, IrError};
use thiserror::Error;

/// What a pass reports besides the rewritten graph.
#[derive(Debug, Default)]
pub struct PassContext {
    /// Changes of meaning the user should know about (approximations), one per layer.
    pub warnings: Vec<String>,
}

/// A graph-to-graph transformation.
pub trait Pass {
    /// The pass's name (a verb: `fold_batch_norm`).
    fn name(&self) -> &'static str;
    /// Rewrites `g`; returns whether anything changed.
    fn run(&self, g: &mut Graph, ctx: &mut PassContext) -> Result<bool, PassError>;
}

/// A pass failed or left the IR broken.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PassError {
    /// The pass itself refused.
    #[error("pass `{pass}` failed at node `{node}`: {problem}")]
    Failed {
        /// Pass name.
        pass: &'static str,
        /// Node name.
        node: String,
        /// What went wrong.
        problem: String,
    },
    /// The IR failed verification after the pass.
    #[error("the IR is invalid after pass `{pass}`: {source}")]
    Verify {
        /// Pass name.
        pass: &'static str,
        /// The broken invariant.
        source: IrError,
    },
}

/// The result of running the passes.
#[derive(Debug, Default, Clone)]
pub struct PassOutcome {
    /// Every pass run, with whether it changed the graph.
    pub applied: Vec<(&'static str, bool)>,
    /// Warnings of all passes.
    pub warnings: Vec<String>,
    /// `(stage, IR text)`: `input` then one per pass, when dumping was asked for.
    pub dumps: Vec<(String, String)>,
    /// The graph after each pass that changed its meaning (one that warned), in order: the
    /// float stages whose accuracy a report compares.
    pub stages: Vec<(&'static str, Graph)>,
}

/// Runs passes in order.
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    verify: bool,
    dump: bool,
}

impl std::fmt::Debug for PassManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.passes.iter().map(|p| p.name()).collect();
        f.debug_struct("PassManager")
            .field("passes", &names)
            .field("verify", &self.verify)
            .finish()
    }
}

impl PassManager {
    /// The standard pipeline: drop no-ops, fold batch norm, lower pooling, replace activations,
    /// expand polynomials, fuse linear runs.
    pub fn standard() -> Self {
        Self::standard_with(ReplaceActivations::square())
    }

    /// The standard pipeline with the given activation replacement.
    pub fn standard_with(replace: ReplaceActivations) -> Self {
        PassManager {
            passes: vec![
                Box::new(DropNoops),
                Box::new(FoldBatchNorm),
                Box::new(LowerPooling),
                Box::new(replace),
                Box::new(ExpandPolynomials),
                Box::new(FuseLinear),
            ],
            verify: cfg!(debug_assertions),
            dump: false,
        }
    }

    /// A manager running the given passes.
    pub fn new(passes: Vec<Box<dyn Pass>>) -> Self {
        PassManager {
            passes,
            verify: cfg!(debug_assertions),
            dump: false,
        }
    }

    /// Verify the IR after every pass (default: in debug builds).
    pub fn verify(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }

    /// Keep the IR text before the first and after every pass.
    pub fn dump(mut self, on: bool) -> Self {
        self.dump = on;
        self
    }

    /// Runs every pass on `g`.
    pub fn run(&self, g: &mut Graph) -> Result<PassOutcome, PassError> {
        let mut outcome = PassOutcome::default();
        if self.dump {
            outcome.dumps.push(("input".into(), g.to_text()));
        }
        for pass in &self.passes {
            let mut ctx = PassContext::default();
            let changed = pass.run(g, &mut ctx)?;
            g.prune();
            if self.verify {
                g.verify().map_err(|source| PassError::Verify {
                    pass: pass.name(),
                    source,
                })?;
            }
            outcome.applied.push((pass.name(), changed));
            if !ctx.warnings.is_empty() {
                outcome.stages.push((pass.name(), g.clone()));
            }
            outcome.warnings.extend(ctx.warnings);
            if self.dump {
                outcome.dumps.push((pass.name().into(), g.to_text()));
            }
        }
        Ok(outcome)
    }
}
