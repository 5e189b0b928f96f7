//! The BGV noise and cost model, beside BFV's in [`super::model`] (which holds the constants
//! both share: the error bound, the expansion factor δ, the cost units).
//!
//! A BGV ciphertext at modulus `Q` decrypts as `[c0 + c1·s (+ c2·s²)]_Q mod t`: the message sits
//! in the low bits and the noise is a multiple of t. This model tracks `e = ‖[c0 + c1·s]_Q‖∞`,
//! the whole phase (message included), and decryption is correct while `e < Q/2`. The budget is
//! `log2 Q − log2 e − 1` bits: as for BFV, the number of bits the noise may still grow by, so
//! predicted budgets of both schemes compare (and the runtime measures the same quantity).
//!
//! Formulas (average-case heuristics, as for BFV; Gentry–Halevi–Smart 2012 and
//! Kim–Polyakov–Zucca 2021 for the BGV forms), with `δ = EXPANSION_FACTOR·√n`, `B = ERROR_BOUND`:
//!
//! | operation | noise after |
//! | --- | --- |
//! | fresh encryption (secret key; public key, then switched down from `Q·P`) | `t/2 + t·B + t·(1 + 1.5·δ)/2` |
//! | multiply by integer `w` (centred) | `|w|·e` (a dot product: `Σ |w_j|·e_j`) |
//! | add the constant `b` (reduced mod t, centred) | `e + t/2`, in the constant coefficient |
//! | square | `δ·e² + 2·e·c + c²` (`c` the constant-coefficient part) |
//! | relinearise (special prime P, key error `t·e`) | `e + L·δ·B·t·q_max/(2P) + t·(1 + δ)/2` |
//! | switch down from `Q` to `Q/q_l` | `e/q_l + t·(1 + 1.5·δ)/2`, or `t·(1 + 1.5·δ + δ²)/2` for size 3 |
//! | round away `k0, k1, k2` low bits on the wire | `t·(2^k0 + 1.5·δ·2^k1 + δ²·2^k2)/2` (BFV's, times t) |
//!
//! Key-switching keys carry an error that is a multiple of the plaintext prime, so each
//! plaintext prime of a plan gets its own relinearisation key. One key with error `Π t_i·e`
//! would serve them all, but adds `log2 Π t_i` bits (110 for CryptoNets' two primes) to every
//! relinearisation, more than a whole q prime.
//!
//! The floor of a switch, `t·(1 + 1.5·δ)/2` (the factor measured, see
//! [`super::model::SWITCH_ROUNDING_FACTOR`]), is what makes BGV's levels costlier than BFV's: every
//! square starts from at least that much noise, so a prime must hold about `log2 t + log2 δ`
//! bits per multiplicative level. In exchange a square is three pointwise products in NTT
//! form instead of BFV's extension to an auxiliary base (about 45 NTTs at n = 16,384).
//!
//! Costs are in the units of [`super::model::cost`]. A BGV ciphertext stays in NTT form, so a
//! square costs three modular products per prime; a modulus switch must bring the dropped
//! prime's limb to coefficient form and the correction back into NTT form for every other
//! prime, which makes it far dearer than BFV's coefficient-form switch; relinearisation also
//! brings `c2` to coefficient form first.

use super::model::{cost, expansion, switch_rounding, ERROR_BOUND};

/// Work of one pointwise modular product, per coefficient and prime. Calibrated against BFV's
/// square, whose model cost is in the same units: at n = 16,384 and five 61-bit primes the
/// criterion benches (runtime/benches/bgv.rs, one thread, commit cc8ec55) measured a BGV square
/// at 0.75 ms against BFV's 15.2 ms, i.e. 0.049 of [`super::model::cost_square`]`(5, 6)`.
pub const MUL_PER_PRIME: f64 = 2.9;
/// Work of switching one component down by one prime, per prime it had: an inverse NTT of the
/// dropped limb, forward NTTs of the correction and the arithmetic. Same benches: 1.46 ms for a
/// size-2 ciphertext at five primes, 0.096 of BFV's square, i.e. 84 units.
pub const SWITCH_PER_COMPONENT_PRIME: f64 = 8.5;

/// Noise of a fresh encryption, covering both keys: a secret-key encryption has the message
/// and `t·e` (`t/2 + t·B`); a public-key one is made over `Q·P` with error
/// `t·(e·u + e_1 + e_2·s)`, at most `t·B·(1 + 2δ)`, and switched down by the special prime P
/// (at least as large as that error), which leaves at most the switch's rounding `t·(1 + 1.5·δ)/2`
/// plus the message. The sum bounds both.
pub fn fresh(t: f64, n: usize) -> f64 {
    t / 2.0 + t * ERROR_BOUND + t * super::model::switch_rounding(n, 2)
}

/// Noise added by a constant: its centred residue mod t, at most t/2, in one coefficient.
pub fn constant(_b: f64, t: f64) -> f64 {
    t / 2.0
}

/// Noise after squaring a ciphertext with noise `e` spread over all coefficients plus `c` in
/// the constant coefficient only.
pub fn square(e: f64, c: f64, _t: f64, n: usize, _log2_q: f64) -> f64 {
    expansion(n) * e * e + 2.0 * e * c + c * c
}

/// Noise after relinearisation at `level` primes with largest q prime `q_max`, special prime
/// `p` and a key whose error is `t·e`.
pub fn relinearize(e: f64, level: usize, q_max: f64, p: f64, n: usize, t: f64) -> f64 {
    let d = expansion(n);
    e + level as f64 * d * ERROR_BOUND * t * q_max / (2.0 * p) + t * (1.0 + d) / 2.0
}

/// Noise after dropping the prime `q_dropped` from a ciphertext of `size` components.
/// The correction that makes the dropped prime divide the ciphertext is a multiple of t with
/// centred digits, so the switch adds t times BFV's rounding, [`switch_rounding`] (with its
/// measured [`super::model::SWITCH_ROUNDING_FACTOR`]).
pub fn mod_switch(e: f64, q_dropped: f64, n: usize, size: usize, t: f64) -> f64 {
    e / q_dropped + t * switch_rounding(n, size)
}

/// Noise added by rounding away `bits[i]` low bits of component `i` on the wire: a BGV
/// component travels as BFV's rounding of `t⁻¹·c` and is multiplied back by `t` (the
/// runtime's `bgv::Ciphertext::round_low_bits`), so the phase moves by `t` times BFV's
/// rounding, [`super::compress::rounding`].
pub fn rounding(bits: &[u32], n: usize, t: f64) -> f64 {
    t * super::compress::rounding(bits, n)
}

/// Budget in bits: how far the phase may still grow before it reaches Q/2.
pub fn budget(e: f64, log2_q: f64) -> f64 {
    log2_q - e.max(1.0).log2() - 1.0
}

/// Cost of squaring one ciphertext at `level` (three pointwise products per prime).
pub fn cost_square(level: usize) -> f64 {
    3.0 * MUL_PER_PRIME * level as f64
}

/// Cost of relinearising one ciphertext: `c2` to coefficient form, then BFV's hybrid key
/// switching.
pub fn cost_relinearize(level: usize, n: usize) -> f64 {
    level as f64 * cost::NTT * (n as f64).log2() + super::model::cost_relinearize(level, n)
}

/// Cost of switching one ciphertext of `size` components down by one prime from `level`.
pub fn cost_mod_switch(level: usize, size: usize, _n: usize) -> f64 {
    size as f64 * level as f64 * SWITCH_PER_COMPONENT_PRIME
}

/// Cost of encrypting one ciphertext at `level` (client side: the message and error to NTT
/// form, one pointwise product and the sampling, per prime).
pub fn cost_encrypt(level: usize, n: usize) -> f64 {
    level as f64 * (cost::NTT * (n as f64).log2() + 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn fresh_noise_and_constants_scale_with_t() {
        let t = 2f64.powi(55);
        let d = expansion(16384);
        assert!(close(
            fresh(t, 16384),
            t * (0.5 + ERROR_BOUND + (1.0 + 1.5 * d) / 2.0)
        ));
        assert!(close(fresh(2.0 * t, 16384), 2.0 * fresh(t, 16384)));
        assert_eq!(constant(-7.0, t), t / 2.0);
    }

    #[test]
    fn a_square_is_quadratic_and_a_switch_has_a_floor_of_t_delta() {
        let n = 16384;
        let d = expansion(n);
        assert!(close(square(1e10, 0.0, 0.0, n, 300.0), d * 1e20));
        assert!(close(square(0.0, 1e10, 0.0, n, 300.0), 1e20));
        let t = 2f64.powi(55);
        let q = 2f64.powi(61);
        assert!(close(
            mod_switch(0.0, q, n, 2, t),
            t * (1.0 + 1.5 * d) / 2.0
        ));
        assert!(mod_switch(0.0, q, n, 3, t) > mod_switch(0.0, q, n, 2, t));
        let e = 2f64.powi(200);
        assert!(close(
            mod_switch(e, q, n, 2, t),
            e / q + t * (1.0 + 1.5 * d) / 2.0
        ));
    }

    #[test]
    fn the_budget_counts_bits_to_half_the_modulus() {
        assert!(close(budget(2f64.powi(100), 183.0), 82.0));
        // Switching far above the floor keeps the budget.
        let e = 2f64.powi(170);
        let q = 2f64.powi(61);
        let after = budget(mod_switch(e, q, 16384, 2, 2f64.powi(55)), 122.0);
        assert!((after - budget(e, 183.0)).abs() < 1e-6, "{after}");
    }

    #[test]
    fn relinearisation_adds_about_t_times_the_digits() {
        let (n, q, p, t) = (16384, 2f64.powi(61), 2f64.powi(61), 2f64.powi(55));
        let d = expansion(n);
        let added = relinearize(0.0, 5, q, p, n, t);
        assert!(close(
            added,
            5.0 * d * ERROR_BOUND * t / 2.0 + t * (1.0 + d) / 2.0
        ));
        assert!(close(relinearize(1e30, 5, q, p, n, t) - added, 1e30));
    }

    #[test]
    fn squares_are_cheap_and_switches_dear_next_to_bfv() {
        use super::super::model;
        let n = 16384;
        assert!(cost_square(5) * 15.0 < model::cost_square(5, 6));
        assert!(cost_mod_switch(5, 2, n) > 1.5 * model::cost_mod_switch(5, 2));
        assert!(cost_relinearize(5, n) > model::cost_relinearize(5, n));
    }
}
