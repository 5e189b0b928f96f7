//! Modular arithmetic, number-theoretic transforms and residue-number-system polynomials.
//!
//! - `modulus`: Barrett and Shoup arithmetic modulo primes below 2^62.
//! - `ntt`: the negacyclic NTT with lazy Harvey butterflies.
//! - `rns`: limb-major RNS polynomials with [`Coeff`]/[`Ntt`] form markers and exact
//!   centred base conversion.
//! - `bigint`: a fixed-width big integer for precomputation and noise measurement.
//! - `primes`: NTT-friendly prime generation.
//! - [`fnv1a`]: the fingerprint hash of parameters and plans.

mod bigint;
mod fnv;
mod modulus;
mod ntt;
mod primes;
mod rns;

pub use bigint::{BigUint, LIMBS};
pub use fnv::{fnv1a, Fnv1a};
pub(crate) use modulus::{mulhi_lanes, select_below};
pub use modulus::{Modulus, MAX_MODULUS};
pub use ntt::NttTable;
pub use primes::{is_prime, ntt_primes, PrimeError, MAX_PRIME_BITS, MIN_PRIME_BITS};
pub(crate) use rns::{for_each_block, pool, BlockScratch, BLOCK};
pub use rns::{BaseConverter, Coeff, Form, Ntt, RnsPoly};
