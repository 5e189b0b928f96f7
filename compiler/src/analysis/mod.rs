//! Read-only analyses of the lowered graph, kept in side tables keyed by node: quantisation
//! (integer weights and scales), value ranges (guaranteed and calibrated) and multiplicative
//! depth.

pub mod depth;
pub mod quantize;
pub mod range;

pub use quantize::{
    measure_output_errors, quantize, weight_errors, LayerError, QCircuit, QNode, QOp, QuantError,
    QuantOptions, DEFAULT_ERROR_TARGET, MAX_WEIGHT_ERROR,
};
pub use range::{analyze, calibrate, NodeRange};
