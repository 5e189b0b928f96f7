//! A ciphertext of the plan's scheme, as chunks, containers and the executor's backends see it.
//!
//! A plan names one scheme ([`crate::plan::Scheme`]), so every ciphertext of a session has the
//! same kind; the enum only lets one batch and container format carry either. Each kind keeps
//! its own byte form (with its own magic), so a ciphertext of the other scheme is refused by the
//! parser of the expected one.

use crate::bfv::{self, BfvParameters, SerialError};
use crate::bgv;
use crate::plan::Scheme;
use std::sync::Arc;

/// A ciphertext of either scheme.
#[derive(Debug, Clone, PartialEq)]
pub enum Ciphertext {
    /// A BFV ciphertext.
    Bfv(bfv::Ciphertext),
    /// A BGV ciphertext.
    Bgv(bgv::Ciphertext),
}

impl Ciphertext {
    /// The scheme of this ciphertext.
    pub fn scheme(&self) -> Scheme {
        match self {
            Ciphertext::Bfv(_) => Scheme::Bfv,
            Ciphertext::Bgv(_) => Scheme::Bgv,
        }
    }

    /// The serialised ciphertext (the scheme's own byte form).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Ciphertext::Bfv(ct) => ct.to_bytes(),
            Ciphertext::Bgv(ct) => ct.to_bytes(),
        }
    }

    /// Length of [`Ciphertext::to_bytes`], computed without serialising.
    pub fn serialized_len(&self) -> usize {
        match self {
            Ciphertext::Bfv(ct) => ct.serialized_len(),
            Ciphertext::Bgv(ct) => ct.serialized_len(),
        }
    }

    /// The most bytes a ciphertext of `scheme` under `params` can take.
    pub fn max_serialized_len(scheme: Scheme, params: &BfvParameters) -> usize {
        match scheme {
            Scheme::Bfv => bfv::Ciphertext::max_serialized_len(params),
            Scheme::Bgv => bgv::Ciphertext::max_serialized_len(params),
        }
    }

    /// Reads a ciphertext of `scheme` under `params`.
    pub fn from_bytes(
        scheme: Scheme,
        params: &Arc<BfvParameters>,
        bytes: &[u8],
    ) -> Result<Self, SerialError> {
        Ok(match scheme {
            Scheme::Bfv => Ciphertext::Bfv(bfv::Ciphertext::from_bytes(params, bytes)?),
            Scheme::Bgv => Ciphertext::Bgv(bgv::Ciphertext::from_bytes(params, bytes)?),
        })
    }

    /// Low bits rounded away in each component (see [`bfv::Ciphertext::round_low_bits`] and
    /// [`bgv::Ciphertext::round_low_bits`]).
    pub fn low_bits(&self) -> &[u32] {
        match self {
            Ciphertext::Bfv(ct) => ct.low_bits(),
            Ciphertext::Bgv(ct) => ct.low_bits(),
        }
    }

    /// The BFV ciphertext, or `None` for a BGV one.
    pub fn into_bfv(self) -> Option<bfv::Ciphertext> {
        match self {
            Ciphertext::Bfv(ct) => Some(ct),
            Ciphertext::Bgv(_) => None,
        }
    }

    /// The BGV ciphertext, or `None` for a BFV one.
    pub fn into_bgv(self) -> Option<bgv::Ciphertext> {
        match self {
            Ciphertext::Bgv(ct) => Some(ct),
            Ciphertext::Bfv(_) => None,
        }
    }
}
