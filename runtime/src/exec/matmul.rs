//! Linear layers over encrypted registers as one blocked integer matrix product.
//!
//! A fused linear layer computes `out_j = Σ_i W_ji · x_i` for every output ciphertext `j`, where
//! the `x_i` are input ciphertexts and `W` holds small signed integers. Doing that one output at
//! a time streams every input ciphertext from memory once per output. Here the coefficients are
//! processed in blocks small enough to stay in the core's L2 cache: for each (component, prime,
//! block of coefficients) every output's accumulators are filled from the cached input block.
//!
//! Each coefficient x < 2^61 is split into 32-bit halves so that the products with |W_ji| < 2^31
//! accumulate in plain 64-bit lanes (which the compiler vectorises) without overflow as long as
//! the row's Σ|W_ji| < 2^31; one modular reduction per output coefficient finishes the job.
//! Positive and negative weights go to separate accumulators, so the noise added grows with |w|
//! and never with the modulus.

use crate::bfv::Ciphertext;
use crate::math::{Coeff, RnsPoly};
use crate::plan::IntMatrix;
use rayon::prelude::*;

/// Coefficients per task (ring degrees are powers of two ≥ 1024, so chunks tile them).
const CHUNK: usize = 256;
/// Coefficients accumulated at once, in registers: 16 lanes × (low, high) halves.
const LANES: usize = 8;
/// Largest Σ|w| of a row (per sign) for which the 64-bit accumulators cannot overflow.
const MAX_ROW_WEIGHT: u64 = 1 << 31;
const LOW: u64 = 0xffff_ffff;

/// Whether [`linear_blocked`] can run `matrix` exactly on ring degree `degree`.
pub(crate) fn fits(matrix: &IntMatrix, degree: usize) -> bool {
    degree.is_multiple_of(CHUNK)
        && (0..matrix.rows).all(|r| {
            let (mut pos, mut neg) = (0u64, 0u64);
            for (_, w) in matrix.row(r) {
                if w > 0 {
                    pos = pos.saturating_add(w.unsigned_abs());
                } else {
                    neg = neg.saturating_add(w.unsigned_abs());
                }
            }
            pos < MAX_ROW_WEIGHT && neg < MAX_ROW_WEIGHT
        })
}

/// One output row: positive and negative weights apart, so the kernel never branches on sign.
struct Row {
    positive: Vec<(u32, u32)>,
    negative: Vec<(u32, u32)>,
}

/// `matrix · inputs` (no bias). All inputs must share parameters and level (the caller checks);
/// inputs may mix sizes 2 and 3. Requires [`fits`].
pub(crate) fn linear_blocked(inputs: &[&Ciphertext], matrix: &IntMatrix) -> Vec<Ciphertext> {
    let Some(first) = inputs.first() else {
        return Vec::new();
    };
    let params = first.params().clone();
    let level = first.level();
    let n = params.degree();
    let size = inputs.iter().map(|c| c.size()).max().unwrap_or(2);
    let moduli = &params.ring().q()[..level];
    let chunks = n / CHUNK;
    let rows: Vec<Row> = (0..matrix.rows)
        .map(|r| {
            let mut row = Row {
                positive: Vec::new(),
                negative: Vec::new(),
            };
            for (c, w) in matrix.row(r) {
                match w.signum() {
                    1 => row.positive.push((c as u32, w.unsigned_abs() as u32)),
                    -1 => row.negative.push((c as u32, w.unsigned_abs() as u32)),
                    _ => {}
                }
            }
            row
        })
        .collect();

    // results[(c·level + i)·chunks + b] = rows × CHUNK reduced outputs.
    let tasks: Vec<(usize, usize, usize)> = (0..size)
        .flat_map(|c| (0..level).flat_map(move |i| (0..chunks).map(move |b| (c, i, b))))
        .collect();
    let results: Vec<Vec<u64>> = tasks
        .par_iter()
        .map(|&(c, i, b)| {
            let m = &moduli[i];
            let start = b * CHUNK;
            // This task's coefficients of every input, gathered so that each group of LANES
            // coefficients of all inputs is contiguous: gathered[(sub · cols + col) · LANES + k].
            // Rows then stream it sequentially from cache. A size-2 input has no third
            // component and contributes zeros.
            let cols = inputs.len();
            let subs = CHUNK / LANES;
            let mut gathered = vec![0u64; subs * cols * LANES];
            for (col, ct) in inputs.iter().enumerate() {
                if let Some(poly) = ct.polys().get(c) {
                    let src = &poly.limb(i)[start..start + CHUNK];
                    for (sub, lanes) in src.chunks_exact(LANES).enumerate() {
                        let at = (sub * cols + col) * LANES;
                        gathered[at..at + LANES].copy_from_slice(lanes);
                    }
                }
            }
            let mut out = vec![0u64; rows.len() * CHUNK];
            for (sub, block) in gathered.chunks_exact(cols * LANES).enumerate() {
                for (r, row) in rows.iter().enumerate() {
                    let p = sum_lanes(&row.positive, block);
                    let q = sum_lanes(&row.negative, block);
                    let at = r * CHUNK + sub * LANES;
                    for (k, dst) in out[at..at + LANES].iter_mut().enumerate() {
                        *dst = m.sub(m.reduce_u128(p[k]), m.reduce_u128(q[k]));
                    }
                }
            }
            out
        })
        .collect();

    (0..rows.len())
        .into_par_iter()
        .map(|r| {
            let polys: Vec<RnsPoly<Coeff>> = (0..size)
                .map(|c| {
                    let mut poly = RnsPoly::<Coeff>::zero(level, n);
                    for i in 0..level {
                        let limb = poly.limb_mut(i);
                        for (b, dst) in limb.chunks_exact_mut(CHUNK).enumerate() {
                            let src = &results[(c * level + i) * chunks + b];
                            dst.copy_from_slice(&src[r * CHUNK..(r + 1) * CHUNK]);
                        }
                    }
                    poly
                })
                .collect();
            Ciphertext::new(params.clone(), polys, level)
        })
        .collect()
}

/// Σ w·x over `entries` for one group of LANES coefficients (`block[col · LANES + k]`), as
/// exact 128-bit sums. The 64-bit accumulators hold the low and high 32-bit halves of the
/// coefficients separately, so they stay in vector registers and cannot overflow while Σw < 2^31.
#[inline]
fn sum_lanes(entries: &[(u32, u32)], block: &[u64]) -> [u128; LANES] {
    let mut lo = [0u64; LANES];
    let mut hi = [0u64; LANES];
    for &(col, w) in entries {
        let w = u64::from(w);
        let at = col as usize * LANES;
        let Some(x) = block.get(at..at + LANES) else {
            continue;
        };
        for k in 0..LANES {
            lo[k] += (x[k] & LOW) * w;
            hi[k] += (x[k] >> 32) * w;
        }
    }
    let mut out = [0u128; LANES];
    for k in 0..LANES {
        out[k] = (u128::from(hi[k]) << 32) + u128::from(lo[k]);
    }
    out
}
