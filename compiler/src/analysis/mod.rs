//! Read-only analyses of the lowered graph, kept in side tables keyed by node: quantisation
//! (integer weights and scales), value ranges (guaranteed and calibrated) and depth.

pub mod idx;
pub mod quantize;
pub mod range;

pub use quantize::{quantize, QCircuit, QNode, QOp, QuantError, QuantOptions};
pub use range::{analyze, calibrate, NodeRange};
