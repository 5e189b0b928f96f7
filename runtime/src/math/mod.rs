//! Modular arithmetic, number-theoretic transforms and residue-number-system polynomials.

pub mod primes;

pub use primes::{is_prime, ntt_primes, PrimeError};
