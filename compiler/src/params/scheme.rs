//! One entry point per noise and cost formula, choosing BFV's ([`super::model`]) or BGV's
//! ([`super::bgv`]) by the scheme of the candidate parameters, so the schedule simulation is
//! written once for both schemes.

use super::{bgv, model, SimParams};
use veil_runtime::plan::Scheme;

impl SimParams {
    /// Noise of a fresh upload (before any rounding of its low bits).
    pub fn fresh(&self) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::fresh(self.t, self.n),
            Scheme::Bgv => bgv::fresh(self.t, self.n),
        }
    }

    /// Noise added by rounding away `bits[i]` low bits of component `i` of a ciphertext on
    /// the wire ([`super::compress`]).
    pub fn rounding(&self, bits: &[u32]) -> f64 {
        match self.scheme {
            Scheme::Bfv => super::compress::rounding(bits, self.n),
            Scheme::Bgv => bgv::rounding(bits, self.n, self.t),
        }
    }

    /// The noise whose budget at modulus `2^log2_q` is `budget` bits: the inverse of
    /// [`Self::budget`].
    pub fn noise_limit(&self, log2_q: f64, budget: f64) -> f64 {
        // Both budgets are `c − log2 e` (for e ≥ 1), c the budget of noise 1.
        (self.budget(1.0, log2_q) - budget).exp2()
    }

    /// Noise of the constant `b`, in the constant coefficient.
    pub(super) fn constant(&self, b: f64) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::constant(b, self.t),
            Scheme::Bgv => bgv::constant(b, self.t),
        }
    }

    /// Noise after a square of noise `e` (spread) and `c` (constant coefficient) at modulus
    /// `2^log2_q`.
    pub(super) fn square(&self, e: f64, c: f64, log2_q: f64) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::square(e, c, self.t, self.n, log2_q),
            Scheme::Bgv => bgv::square(e, c, self.t, self.n, log2_q),
        }
    }

    /// Noise after relinearising at `level`.
    pub(super) fn relinearize(&self, e: f64, level: usize) -> f64 {
        let q_max = self.q_log2.iter().copied().fold(0.0, f64::max).exp2();
        let p = self.special_log2.exp2();
        match self.scheme {
            Scheme::Bfv => model::relinearize(e, level, q_max, p, self.n),
            Scheme::Bgv => bgv::relinearize(e, level, q_max, p, self.n, self.t),
        }
    }

    /// Noise after dropping `q_dropped` from a ciphertext of `size` components.
    pub(super) fn mod_switch(&self, e: f64, q_dropped: f64, size: usize) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::mod_switch(e, q_dropped, self.n, size),
            Scheme::Bgv => bgv::mod_switch(e, q_dropped, self.n, size, self.t),
        }
    }

    /// Budget (bits) of noise `e` at modulus `2^log2_q`.
    pub fn budget(&self, e: f64, log2_q: f64) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::budget(e, log2_q, self.t),
            Scheme::Bgv => bgv::budget(e, log2_q),
        }
    }

    /// Cost of one square at `level` with modulus `2^log2_q`.
    pub(super) fn cost_square(&self, level: usize, log2_q: f64) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::cost_square(level, model::aux_primes(log2_q, self.n)),
            Scheme::Bgv => bgv::cost_square(level),
        }
    }

    /// Cost of one relinearisation at `level`.
    pub(super) fn cost_relinearize(&self, level: usize) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::cost_relinearize(level, self.n),
            Scheme::Bgv => bgv::cost_relinearize(level, self.n),
        }
    }

    /// Cost of dropping one prime from a ciphertext of `size` components at `level`.
    pub(super) fn cost_mod_switch(&self, level: usize, size: usize) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::cost_mod_switch(level, size),
            Scheme::Bgv => bgv::cost_mod_switch(level, size, self.n),
        }
    }

    /// Cost of one fresh encryption at `level`.
    pub(super) fn cost_encrypt(&self, level: usize) -> f64 {
        match self.scheme {
            Scheme::Bfv => model::cost_encrypt(level, self.n),
            Scheme::Bgv => bgv::cost_encrypt(level, self.n),
        }
    }
}
