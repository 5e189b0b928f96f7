//! Linear layers over encrypted registers as one blocked integer matrix product.
//!
//! A fused linear layer computes `out_j = Σ_i W_ji · x_i` for every output ciphertext `j`, where
//! the `x_i` are input ciphertexts and `W` holds small signed integers. Doing that one output at
//! a time streams every input ciphertext from memory once per output. Here the coefficients are
//! processed in blocks small enough to stay in the core's L2 cache: for each (component, prime,
//! block of coefficients) every output's accumulators are filled from the cached input block.
//!
//! A linear map acts limb by limb the same way on coefficients and on NTT values, so the
//! kernel serves BFV (coefficient form) and BGV (NTT form) ciphertexts alike.
//!
//! Each coefficient x < 2^62 is split into 31-bit halves, so that both halves and the weights
//! are 32-bit signed integers: their products accumulate in signed 64-bit lanes (one
//! `vpmuldq` per four lanes with AVX2) without overflow as long as the row's Σ|W_ji| < 2^31.
//! One modular reduction per output coefficient finishes the job. Weights stay small signed
//! integers throughout (never t − |w|), so the noise added grows with |w| and not with the
//! modulus.

use crate::bfv::Ciphertext;
use crate::math::{Coeff, Form, Modulus, RnsPoly};
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
    let polys: Vec<&[RnsPoly<Coeff>]> = inputs.iter().map(|c| c.polys()).collect();
    linear_blocked_polys(&polys, &params.ring().q()[..level], params.degree(), matrix)
        .into_iter()
        .map(|polys| Ciphertext::new(params.clone(), polys, level))
        .collect()
}

/// The kernel of [`linear_blocked`] on the ciphertexts' polynomials (`inputs[j]` holds input
/// j's 2 or 3 polynomials over `moduli`): one output row's polynomials per matrix row. A
/// linear map is the same limb by limb in coefficient and NTT form, so BFV and BGV share it.
pub(crate) fn linear_blocked_polys<F: Form>(
    inputs: &[&[RnsPoly<F>]],
    moduli: &[Modulus],
    n: usize,
    matrix: &IntMatrix,
) -> Vec<Vec<RnsPoly<F>>> {
    let level = moduli.len();
    let size = inputs.iter().map(|c| c.len()).max().unwrap_or(2);
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

    // The outputs are allocated first; every (component, prime, block of coefficients) task
    // then receives the matching CHUNK-long piece of every output row, so tasks write their
    // results in place, in parallel, without a second copy.
    let mut outputs: Vec<Vec<RnsPoly<F>>> = (0..rows.len())
        .map(|_| (0..size).map(|_| RnsPoly::zero(level, n)).collect())
        .collect();
    let mut pieces: Vec<Vec<&mut [u64]>> = (0..size * level * chunks)
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for polys in &mut outputs {
        for (c, poly) in polys.iter_mut().enumerate() {
            for (k, piece) in poly.data_mut().chunks_exact_mut(CHUNK).enumerate() {
                // k = i·chunks + b: limb-major storage.
                pieces[c * level * chunks + k].push(piece);
            }
        }
    }
    pieces
        .par_iter_mut()
        .enumerate()
        .for_each(|(task, out_rows)| {
            let c = task / (level * chunks);
            let i = (task / chunks) % level;
            let b = task % chunks;
            let reduce = LaneReducer::new(&moduli[i]);
            let start = b * CHUNK;
            // This task's coefficients of every input, gathered so that each group of LANES
            // coefficients of all inputs is contiguous: gathered[(sub · cols + col) · LANES + k].
            // Rows then stream it sequentially from cache. A size-2 input has no third
            // component and contributes zeros.
            let cols = inputs.len();
            let subs = CHUNK / LANES;
            let mut gathered = vec![0u64; subs * cols * LANES];
            for (col, ct) in inputs.iter().enumerate() {
                if let Some(poly) = ct.get(c) {
                    let src = &poly.limb(i)[start..start + CHUNK];
                    for (sub, lanes) in src.chunks_exact(LANES).enumerate() {
                        let at = (sub * cols + col) * LANES;
                        gathered[at..at + LANES].copy_from_slice(lanes);
                    }
                }
            }
            for (sub, block) in gathered.chunks_exact(cols * LANES).enumerate() {
                for (row, out) in rows.iter().zip(out_rows.iter_mut()) {
                    let (lo, hi) = sum_lanes(row, block);
                    reduce.combine(&lo, &hi, &mut out[sub * LANES..(sub + 1) * LANES]);
                }
            }
        });
    drop(pieces);
    outputs
}

/// Σ w·x over `entries` for one group of LANES coefficients (`block[col · LANES + k]`), as the
/// signed sums of the coefficients' low and high 31-bit halves: the exact sum is
/// `hi · 2^31 + lo`. Both accumulate in signed 64-bit lanes, which stay in vector registers
/// and cannot overflow while Σ|w| < 2^31.
#[inline]
fn sum_lanes(entries: &[(u32, i32)], block: &[u64]) -> ([i64; LANES], [i64; LANES]) {
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
    (lo, hi)
}

/// Turns the (low, high) lane sums of [`sum_lanes`] into residues `hi · 2^31 + lo mod p` with
/// 64-bit lane arithmetic only, so that the reduction vectorises like the sums: both halves
/// are made non-negative by adding a multiple of p above 2^62 (|lo|, |hi| < 2^62), then
/// multiplied by 2^31 and by 1 modulo p with Shoup's method, which accepts any 64-bit input.
#[derive(Clone, Copy)]
struct LaneReducer {
    m: Modulus,
    /// A multiple of p in [2^62, 2^62 + p).
    offset: u64,
    two31: u64,
    two31_shoup: u64,
    one: u64,
    one_shoup: u64,
}

impl LaneReducer {
    fn new(m: &Modulus) -> Self {
        let p = m.value();
        let two31 = (1u64 << 31) % p;
        let one = 1 % p;
        LaneReducer {
            m: *m,
            offset: (1u64 << 62).div_ceil(p) * p,
            two31,
            two31_shoup: m.shoup(two31),
            one,
            one_shoup: m.shoup(one),
        }
    }

    #[inline]
    fn combine(&self, lo: &[i64; LANES], hi: &[i64; LANES], out: &mut [u64]) {
        let m = &self.m;
        for k in 0..LANES {
            let h = (hi[k] as u64).wrapping_add(self.offset);
            let l = (lo[k] as u64).wrapping_add(self.offset);
            let hr = m.mul_shoup_lanes(h, self.two31, self.two31_shoup);
            let lr = m.mul_shoup_lanes(l, self.one, self.one_shoup);
            out[k] = m.add(hr, lr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The lane reduction equals exact 128-bit arithmetic over the whole input range.
        #[test]
        fn lane_reduction_is_exact(
            p_bits in 20u32..62,
            lo in -(1i64 << 62) + 1..(1i64 << 62),
            hi in -(1i64 << 62) + 1..(1i64 << 62),
        ) {
            let p = crate::math::ntt_primes(p_bits, 1024, 1, &[]).unwrap()[0];
            let m = Modulus::new(p).unwrap();
            let reducer = LaneReducer::new(&m);
            let mut out = [0u64; LANES];
            reducer.combine(&[lo; LANES], &[hi; LANES], &mut out);
            let exact = (i128::from(hi) << 31) + i128::from(lo);
            let want = exact.rem_euclid(i128::from(p)) as u64;
            prop_assert!(out.iter().all(|&v| v == want));
        }
    }
}
