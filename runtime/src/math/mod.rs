//! Modular arithmetic, number-theoretic transforms and residue-number-system polynomials.
