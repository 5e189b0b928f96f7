//! The cost model of the packed layout, in the units of [`crate::params::model::cost`] (work
//! per coefficient of a ciphertext; a whole ciphertext costs n times the figure), so that a
//! packed plan and a slot plan are priced on one scale.
//!
//! A key switch (rotation) is split as the runtime hoists it (docs/bfv.md, "Hoisting"): the
//! decomposition of `c1` (ℓ digits lifted to ℓ + 1 primes and transformed: ℓ·(ℓ + 1) NTTs) is
//! shared by every rotation of one ciphertext; each rotation then takes the inner product with
//! its key (which streams 2·ℓ·(ℓ + 1) limbs of key through memory, [`KEY_MAC`]) and 2(ℓ + 1)
//! inverse NTTs. Measured (docs/performance.md, "Rotations", 2-core AMD EPYC, both threads):
//! one rotation 6.5 ms and eight hoisted 29.1 ms at n = 16,384 with 7 q primes, i.e. about
//! 3.5 ms of decomposition and 3.2 ms per rotation; at n = 8192 with 3 primes 0.90 ms and
//! 4.6 ms (0.5 ms per rotation). With [`KEY_MAC`] = 5 the model gives 784 + 784 units per
//! coefficient at ℓ = 7 (decomposition ≈ rotation, as measured) and 156 + 224 at ℓ = 3 (the
//! measured hoisted/single ratio 0.56 against the model's 0.64).
//!
//! A diagonal (a product with a plaintext vector) multiplies two components pointwise: the
//! server encodes every diagonal once per plan and prime, at the level its map runs at
//! (`exec::PreparedDiagonals`, timed apart as `veil bench`'s "prepare"), so evaluation does
//! not pay the ℓ NTTs of the encoding. The rotated ciphertexts are transformed once each (2ℓ
//! NTTs) and each giant step's sum back (2ℓ).
//!
//! [`SECONDS_PER_UNIT`] turns units into seconds on the reference machine.

use crate::params::model::{self, cost as unit};
use veil_runtime::plan::packing::LinearSchedule;

/// Work per key limb of the inner product of a key switch with its key (memory-bound: the
/// key does not stay in cache), per coefficient; see the module documentation.
pub const KEY_MAC: f64 = 5.0;

/// Seconds per cost unit and coefficient on the reference machine, both threads: the slot
/// CryptoNets-MNIST plan (n = 16,384, two plaintext primes) is predicted at 40.8 G units for a
/// full batch (encryption included) and measured 18.46 s for encrypt + eval of its 16,384
/// images (docs/performance.md, the measured table), i.e. 0.45 ns per unit. The rotation
/// figures above give 0.25 ns per unit (6.5 ms for 1568 units × 16,384) and an NTT 0.5 ns
/// (0.116 ms for 14 units × 16,384, docs/bfv.md): the slot figure is kept, so both layouts
/// are priced on the one measured plan and the packed estimate leans conservative.
pub const SECONDS_PER_UNIT: f64 = 0.45e-9;

fn log_n(n: usize) -> f64 {
    (n as f64).log2()
}

/// The shared decomposition of a (hoisted) key switch at `level`.
pub fn key_switch_decompose(level: usize, n: usize) -> f64 {
    let l = level as f64;
    l * (l + 1.0) * unit::NTT * log_n(n)
}

/// One rotation of an already decomposed ciphertext.
pub fn key_switch_apply(level: usize, n: usize) -> f64 {
    let l = level as f64;
    2.0 * (l + 1.0) * unit::NTT * log_n(n) + 2.0 * l * (l + 1.0) * KEY_MAC
}

/// One rotation on its own (decomposition and key).
pub fn rotation(level: usize, n: usize) -> f64 {
    key_switch_decompose(level, n) + key_switch_apply(level, n)
}

/// One product with a prepared plaintext vector: the pointwise product of two components.
pub fn diagonal(level: usize, _n: usize) -> f64 {
    2.0 * level as f64 * unit::SCALAR_MAC
}

/// Moving one ciphertext (two components) into or out of NTT form.
pub fn transform(level: usize, n: usize) -> f64 {
    2.0 * level as f64 * unit::NTT * log_n(n)
}

/// One packed `Linear` at `level` on one ciphertext group: hoisted baby rotations per input,
/// the diagonals, a rotation per non-zero giant step and per fold step, and the bias.
pub fn linear(s: &LinearSchedule, level: usize, n: usize) -> f64 {
    let babies: f64 = s
        .babies
        .iter()
        .map(|b| {
            let rotated = b.iter().filter(|&&r| r != 0).count() as f64;
            let shared = if rotated > 0.0 {
                key_switch_decompose(level, n)
            } else {
                0.0
            };
            shared + rotated * key_switch_apply(level, n) + b.len() as f64 * transform(level, n)
        })
        .sum();
    let giants = (s.giants.iter().filter(|g| g.rotation != 0).count()
        + s.outers().iter().filter(|&&o| o != 0).count()) as f64;
    babies
        + s.diagonals() as f64 * diagonal(level, n)
        + s.giants.len() as f64 * transform(level, n)
        + (giants + s.fold.len() as f64) * rotation(level, n)
        + model::cost_bias(level)
}

/// Bytes of one seeded key-switching key (relinearisation or Galois) over the q primes
/// `q_bits` and the special prime of `p_bits` bits: ℓ polynomials over ℓ + 1 primes
/// (docs/bfv.md, "Sizes"; the 36-byte headers are left out).
pub fn key_bytes(n: usize, q_bits: &[u32], p_bits: u32) -> f64 {
    let l = q_bits.len() as f64;
    let bits: u32 = q_bits.iter().sum::<u32>() + p_bits;
    l * n as f64 * f64::from(bits) / 8.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoisting_shares_the_decomposition() {
        let (l, n) = (7, 16384);
        // As measured: the decomposition is about half of a rotation.
        let ratio = key_switch_decompose(l, n) / rotation(l, n);
        assert!((0.4..0.6).contains(&ratio), "{ratio}");
        let eight = key_switch_decompose(l, n) + 8.0 * key_switch_apply(l, n);
        assert!(eight < 0.6 * 8.0 * rotation(l, n));
    }

    #[test]
    fn key_bytes_match_the_documented_size() {
        // docs/bfv.md: 3,747,876 bytes at n = 16,384 with 5 × 61-bit q and a 61-bit p
        // (36 bytes of header).
        assert_eq!(key_bytes(16384, &[61; 5], 61), 3_747_840.0);
    }
}
