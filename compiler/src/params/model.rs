//! The noise and cost model: every constant the parameter search uses, in one place, so that
//! they can be calibrated against the runtime's measured noise budgets and timings.
//!
//! Noise is tracked as `e`, the infinity norm of the error in `c0 + c1·s = Δ·m + e (mod q)`
//! with `Δ = ⌊q/t⌋`. The invariant noise is `v = t·e/q` and the budget is
//! `−log2(2‖v‖) = log2 q − log2 t − log2 e − 1` bits (decryption is correct while it is > 0).
//!
//! Formulas (heuristic, average-case in the spirit of Costache–Smart 2016 and
//! Kim–Polyakov–Zucca 2021; the worst-case versions are in Fan–Vercauteren 2012), with
//! `δ = EXPANSION_FACTOR · √n` the expansion factor of a ring product and `B = ERROR_BOUND`:
//!
//! | operation | noise after |
//! | --- | --- |
//! | fresh symmetric encryption | `B + t` |
//! | add | `e1 + e2` |
//! | multiply by integer `w` | `|w|·e` (a dot product: `Σ |w_j|·e_j`) |
//! | add a plaintext constant | `e + t` |
//! | square (BFV multiplication with HPS scaling) | `t·δ·(δ + 2)·e + t·(1 + δ + δ²)/2` |
//! | relinearise (hybrid, one special prime P ≥ every q_i) | `e + L·δ·B·q_max/P + (1 + δ)/2` |
//! | switch down, dropping prime `q_l` | `e/q_l + (1 + δ)/2 + t` |
//!
//! Costs are in "coefficient operations per ciphertext per q prime", divided by n for a cost
//! per image (a batch holds n images), and multiplied by the number of plaintext primes
//! (one run of the circuit each).

/// Standard deviation of the error distribution (HomomorphicEncryption.org standard).
pub const ERROR_STD_DEV: f64 = 3.2;
/// High-probability bound on one error coefficient (6σ).
pub const ERROR_BOUND: f64 = 6.0 * ERROR_STD_DEV;
/// δ = EXPANSION_FACTOR · √n: heuristic expansion of a product of two ring elements with
/// random-looking coefficients (worst case would be n).
pub const EXPANSION_FACTOR: f64 = 2.0;
/// Default margin (bits) the predicted budget must keep at every output.
pub const DEFAULT_MARGIN_BITS: f64 = 10.0;
/// Largest q prime size (bits); the runtime's arithmetic works with primes below 2^61.
pub const MAX_Q_PRIME_BITS: u32 = 60;
/// Smallest q prime size tried.
pub const MIN_Q_PRIME_BITS: u32 = 30;
/// Largest plaintext prime size (bits).
pub const MAX_T_BITS: u32 = 60;
/// Most plaintext (CRT) primes, i.e. runs of the circuit.
pub const MAX_PLAIN_PRIMES: usize = 8;
/// Ring degrees searched (secure parameters).
pub const DEGREES: [usize; 4] = [4096, 8192, 16384, 32768];
/// Ring degrees searched with `--insecure`.
pub const INSECURE_DEGREES: [usize; 6] = [1024, 2048, 4096, 8192, 16384, 32768];
/// Upper bound on log2(q·p) with `--insecure` (no security claim at all).
pub const INSECURE_MAX_LOG2_MODULUS: u32 = 1200;

/// δ for ring degree n.
pub fn expansion(n: usize) -> f64 {
    EXPANSION_FACTOR * (n as f64).sqrt()
}

/// Noise of a fresh (symmetric) encryption.
pub fn fresh(t: f64) -> f64 {
    ERROR_BOUND + t
}

/// Noise after adding a plaintext constant.
pub fn plain_add(e: f64, t: f64) -> f64 {
    e + t
}

/// Noise after squaring.
pub fn square(e: f64, t: f64, n: usize) -> f64 {
    let d = expansion(n);
    t * d * (d + 2.0) * e + t * (1.0 + d + d * d) / 2.0
}

/// Noise after relinearisation at `level` primes, the largest q prime `q_max` and special
/// prime `p`.
pub fn relinearize(e: f64, level: usize, q_max: f64, p: f64, n: usize) -> f64 {
    let d = expansion(n);
    e + level as f64 * d * ERROR_BOUND * q_max / p + (1.0 + d) / 2.0
}

/// Noise after dropping the prime `q_dropped`.
pub fn mod_switch(e: f64, q_dropped: f64, t: f64, n: usize) -> f64 {
    e / q_dropped + (1.0 + expansion(n)) / 2.0 + t
}

/// Invariant noise budget in bits.
pub fn budget(e: f64, log2_q: f64, t: f64) -> f64 {
    log2_q - t.log2() - e.max(1.0).log2() - 1.0
}

/// Cost constants.
pub mod cost {
    /// Multiply-accumulate of one coefficient by a small integer.
    pub const SCALAR_MAC: f64 = 2.0;
    /// Plaintext add of one coefficient.
    pub const ADD: f64 = 1.0;
    /// One butterfly of an NTT (per coefficient and log2 n).
    pub const NTT: f64 = 1.0;
    /// Number of NTT-sized passes of a BFV square with HPS scaling, per prime of the
    /// extended basis (about 2L + 1 primes): forward of 2 polys, inverse of 3, plus basis
    /// conversions.
    pub const SQUARE_NTTS: f64 = 7.0;
    /// Pointwise work of a square per coefficient per extended prime.
    pub const SQUARE_POINTWISE: f64 = 10.0;
}

/// Cost of one ciphertext-by-integer multiply-accumulate (per coefficient index of a batch).
pub fn cost_scalar(level: usize, ct_size: usize) -> f64 {
    cost::SCALAR_MAC * (level * ct_size) as f64
}

/// Cost of adding a plaintext bias.
pub fn cost_bias(level: usize) -> f64 {
    cost::ADD * level as f64
}

/// Cost of squaring one ciphertext.
pub fn cost_square(level: usize, n: usize) -> f64 {
    let ext = (2 * level + 1) as f64;
    ext * (cost::SQUARE_NTTS * cost::NTT * (n as f64).log2() + cost::SQUARE_POINTWISE)
}

/// Cost of relinearising one ciphertext (hybrid key switching, L digits, one special prime).
pub fn cost_relinearize(level: usize, n: usize) -> f64 {
    let l = level as f64;
    let logn = (n as f64).log2();
    (l * (l + 1.0) + 2.0 * (l + 1.0)) * cost::NTT * logn + 2.0 * l * (l + 1.0) * cost::SCALAR_MAC
}

/// Cost of switching one ciphertext down by one prime.
pub fn cost_mod_switch(level: usize, n: usize) -> f64 {
    2.0 * 2.0 * level as f64 * cost::NTT * (n as f64).log2()
}
