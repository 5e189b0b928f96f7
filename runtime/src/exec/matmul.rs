//! Linear layers over encrypted registers as one blocked integer matrix product.
//!
//! A fused linear layer computes `out_j = Σ_i W_ji · x_i` for every output ciphertext `j`, where
//! the `x_i` are input ciphertexts and `W` holds small signed integers. Doing that one output at
//! a time streams every input ciphertext from memory once per output. Here the coefficients are
//! processed in blocks small enough to stay in the core's L2 cache: for each (component, prime,
//! block of coefficients) every output's accumulators are filled from the cached input block.
//!
//! Each coefficient x < 2^62 is split into 31-bit halves, so that both halves and the weights
//! are 32-bit signed integers: their products accumulate in signed 64-bit lanes (one
//! `vpmuldq` per four lanes with AVX2) without overflow as long as the row's Σ|W_ji| < 2^31.
//! One modular reduction per output coefficient finishes the job. Weights stay small signed
//! integers throughout (never t − |w|), so the noise added grows with |w| and not with the
//! modulus.

use crate::bfv::Ciphertext;
use crate::math::{Coeff, RnsPoly};
use crate::plan::IntMatrix;
use rayon::prelude::*;

/// Coefficients per task (ring degrees are powers of two ≥ 1024, so chunks tile them).
const CHUNK: usize = 256;
/// Coefficients accumulated at once, in registers: 16 lanes × (low, high) halves.
const LANES: usize = 8;
/// Largest Σ|w| of a row for which the signed 64-bit accumulators cannot overflow.
const MAX_ROW_WEIGHT: u64 = 1 << 31;
/// The low 31 bits of a coefficient.
const LOW: u64 = (1 << 31) - 1;

/// Whether [`linear_blocked`] can run `matrix` exactly on ring degree `degree`.
pub(crate) fn fits(matrix: &IntMatrix, degree: usize) -> bool {
    degree.is_multiple_of(CHUNK)
        && (0..matrix.rows).all(|r| {
            let total = matrix
                .row(r)
                .fold(0u64, |acc, (_, w)| acc.saturating_add(w.unsigned_abs()));
            total < MAX_ROW_WEIGHT
        })
}

/// One output row's nonzero entries: (input index, weight).
type Row = Vec<(u32, i32)>;

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
    // `fits` bounds every |w| below 2^31, so the conversions are exact.
    let rows: Vec<Row> = (0..matrix.rows)
        .map(|r| {
            matrix
                .row(r)
                .filter(|&(_, w)| w != 0)
                .map(|(c, w)| (c as u32, w as i32))
                .collect()
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
                    let sums = sum_lanes(row, block);
                    let at = r * CHUNK + sub * LANES;
                    for (dst, &v) in out[at..at + LANES].iter_mut().zip(&sums) {
                        let r = m.reduce_u128(v.unsigned_abs());
                        *dst = if v < 0 { m.neg(r) } else { r };
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
/// exact signed 128-bit sums. The coefficients' low and high 31-bit halves accumulate apart in
/// signed 64-bit lanes, which stay in vector registers and cannot overflow while Σ|w| < 2^31.
#[inline]
fn sum_lanes(entries: &[(u32, i32)], block: &[u64]) -> [i128; LANES] {
    let mut lo = [0i64; LANES];
    let mut hi = [0i64; LANES];
    for &(col, w) in entries {
        let w = i64::from(w);
        let at = col as usize * LANES;
        let Some(x) = block.get(at..at + LANES) else {
            continue;
        };
        for k in 0..LANES {
            lo[k] += i64::from((x[k] & LOW) as i32) * w;
            hi[k] += i64::from((x[k] >> 31) as i32) * w;
        }
    }
    let mut out = [0i128; LANES];
    for k in 0..LANES {
        out[k] = (i128::from(hi[k]) << 31) + i128::from(lo[k]);
    }
    out
}
