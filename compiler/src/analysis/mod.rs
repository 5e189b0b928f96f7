//! Read-only analyses of the lowered graph, kept in side tables keyed by node: quantisation
//! (integer weights and scales), value ranges (guaranteed and calibrated) and multiplicative
//! depth.

pub mod depth;
pub mod quantize;
pub mod range;

pub use quantize::{quantize, QCircuit, QNode, QOp, QuantError, QuantOptions};
pub use range::{analyze, calibrate, NodeRange};
