//! The executor: runs a [`crate::plan::Plan`] on encrypted batches, and a plaintext reference
//! executor that runs the same plan on integers.
