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
//! The kernel ([`kernel`]) splits each coefficient x < 2^62 into a signed low and a high
//! 32-bit part, multiplies both by the small signed weights in 64-bit vector lanes and
//! accumulates without overflow as long as a row's Σ|W_ji| < 2^31; rows that share their
//! columns are computed together ([`groups`]), so that each input is loaded once for several
//! rows. One modular reduction per output coefficient finishes the job. Weights stay small
//! signed integers throughout (never t − |w|), so the noise added grows with |w| and not with
//! the modulus.

mod groups;
mod kernel;

use crate::bfv::Ciphertext;
use crate::bgv::square_component;
use crate::math::{mulhi_lanes, select_below};
use crate::math::{Coeff, Form, Modulus, Ntt, RnsPoly};
use crate::plan::IntMatrix;
use groups::{group_rows, GROUP};
use kernel::{high_part, Kernel, Reduction, Sums, COLUMN_WORDS, LANES};
use rayon::prelude::*;

/// Coefficients per task (ring degrees are powers of two ≥ 1024, so chunks tile them).
const CHUNK: usize = 256;
/// Largest Σ|w| of a row for which the signed 64-bit accumulators cannot overflow.
const MAX_ROW_WEIGHT: u64 = 1 << 31;

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
    let size = inputs.iter().map(|c| c.len()).max().unwrap_or(2);
    let load =
        |col: usize, c: usize, i: usize, start: usize, out: &mut [u64]| match inputs[col].get(c) {
            Some(poly) => out.copy_from_slice(&poly.limb(i)[start..start + out.len()]),
            None => out.fill(0),
        };
    blocked(inputs.len(), size, &load, moduli, n, matrix)
}

/// `matrix · (inputs²)` for size-2 ciphertexts in NTT form, without materialising the
/// squares: each task computes the one component of the squares it needs (pointwise, see
/// [`crate::bgv::square_component`]) while gathering its inputs. Saves writing and reading
/// back the size-3 squares, which cost more than computing them. Requires [`fits`].
pub(crate) fn square_linear_blocked(
    inputs: &[&[RnsPoly<Ntt>]],
    moduli: &[Modulus],
    n: usize,
    matrix: &IntMatrix,
) -> Vec<Vec<RnsPoly<Ntt>>> {
    let load = |col: usize, c: usize, i: usize, start: usize, out: &mut [u64]| {
        let polys = inputs[col];
        let (a0, a1) = (polys[0].limb(i), polys[1].limb(i));
        let span = start..start + out.len();
        square_component(&moduli[i], c, &a0[span.clone()], &a1[span], out);
    };
    blocked(inputs.len(), 3, &load, moduli, n, matrix)
}

/// Writes coefficients `start..start + out.len()` of component `c`, prime `i`, of input
/// `col` into `out` (zeros for a component the input lacks).
type Load<'a> = dyn Fn(usize, usize, usize, usize, &mut [u64]) + Sync + 'a;

/// The blocked product over `cols` inputs of `size` components each, read through `load`.
fn blocked<F: Form>(
    cols: usize,
    size: usize,
    load: &Load<'_>,
    moduli: &[Modulus],
    n: usize,
    matrix: &IntMatrix,
) -> Vec<Vec<RnsPoly<F>>> {
    let level = moduli.len();
    let chunks = n / CHUNK;
    // `fits` bounds every |w| below 2^31, so the groups' i32 weights are exact.
    let kernel = Kernel::detect();
    let groups = group_rows(matrix, kernel.max_group());
    let rows = matrix.rows;

    // The outputs are allocated first; every (component, prime, block of coefficients) task
    // then receives the matching CHUNK-long piece of every output row, so tasks write their
    // results in place, in parallel, without a second copy.
    // Allocated in parallel: zeroing a wide layer's outputs (1.1 GB for conv1 at five primes)
    // on one thread took half of that layer's time.
    let mut outputs: Vec<Vec<RnsPoly<F>>> = (0..rows)
        .into_par_iter()
        .map(|_| (0..size).map(|_| RnsPoly::zero(level, n)).collect())
        .collect();
    let mut pieces: Vec<Vec<&mut [u64]>> = (0..size * level * chunks)
        .map(|_| Vec::with_capacity(rows))
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
        // Each worker keeps its gathering buffer from task to task: every word is rewritten,
        // so it needs no zeroing after the first.
        .for_each_init(Vec::new, |gathered, (task, out_rows)| {
            let c = task / (level * chunks);
            let i = (task / chunks) % level;
            let b = task % chunks;
            let reduce = LaneReducer::new(&moduli[i]);
            let start = b * CHUNK;
            // This task's coefficients of every input, gathered so that each group of LANES
            // coefficients of all inputs is contiguous, each column's coefficients followed by
            // their high parts: gathered[(sub · cols + col) · COLUMN_WORDS + k]. Groups then
            // stream it from cache. A size-2 input has no third component and contributes zeros.
            let subs = CHUNK / LANES;
            gathered.resize(subs * cols * COLUMN_WORDS, 0);
            let mut src = [0u64; CHUNK];
            for col in 0..cols {
                load(col, c, i, start, &mut src);
                for (sub, lanes) in src.chunks_exact(LANES).enumerate() {
                    let at = (sub * cols + col) * COLUMN_WORDS;
                    let (low, high) = gathered[at..at + COLUMN_WORDS].split_at_mut(LANES);
                    low.copy_from_slice(lanes);
                    for (h, &x) in high.iter_mut().zip(lanes) {
                        *h = high_part(x);
                    }
                }
            }
            kernel.run(|| {
                let mut lo: Sums = [[0; LANES]; GROUP];
                let mut hi: Sums = [[0; LANES]; GROUP];
                for (sub, block) in gathered.chunks_exact(cols * COLUMN_WORDS).enumerate() {
                    let span = sub * LANES..(sub + 1) * LANES;
                    for group in &groups {
                        kernel.sums(group, block, &mut lo, &mut hi);
                        for (r, &row) in group.rows.iter().enumerate() {
                            reduce.combine_with(
                                kernel,
                                &lo[r],
                                &hi[r],
                                &mut out_rows[row][span.clone()],
                            );
                        }
                    }
                }
            });
        });
    drop(pieces);
    outputs
}

/// Turns the kernel's (low, high) lane sums into residues `hi · 2^32 + lo mod p` with 64-bit
/// lane arithmetic only, so that the reduction vectorises like the sums. The low sum's carry
/// `lo >> 32` moves into the high sum first, which leaves a low part below 2^32 and one
/// signed high part (|hi| < 2^62 + 2^30). That is made non-negative by adding a multiple of p
/// above it, multiplied by 2^32 with Shoup's method (any 64-bit input, result below 2p), and
/// the low part added: below 3p when p > 2^32, so two conditional subtractions finish. For
/// primes below 2^33 (tests and toy parameters) the low part takes a Shoup product too.
#[derive(Clone, Copy)]
struct LaneReducer {
    m: Modulus,
    /// The constants the vector kernels share; `offset` is a multiple of p in
    /// [2^62 + 2^31, 2^62 + 2^31 + p).
    consts: Reduction,
    /// Whether p > 2^33, so that a low part plus a lazy product stays below 3p.
    wide: bool,
    one: u64,
    one_shoup: u64,
}

impl LaneReducer {
    fn new(m: &Modulus) -> Self {
        let p = m.value();
        let two32 = (1u64 << 32) % p;
        let one = 1 % p;
        LaneReducer {
            m: *m,
            consts: Reduction {
                p,
                offset: ((1u64 << 62) + (1 << 31)).div_ceil(p) * p,
                two32,
                two32_shoup: m.shoup(two32),
            },
            wide: p > 1 << 33,
            one,
            one_shoup: m.shoup(one),
        }
    }

    /// Reduces with `kernel`'s vector operations where it has them.
    #[inline(always)]
    fn combine_with(&self, kernel: Kernel, lo: &[i64; LANES], hi: &[i64; LANES], out: &mut [u64]) {
        if !(self.wide && kernel.reduce(&self.consts, lo, hi, out)) {
            self.combine(lo, hi, out);
        }
    }

    #[inline]
    fn combine(&self, lo: &[i64; LANES], hi: &[i64; LANES], out: &mut [u64]) {
        let m = &self.m;
        let c = &self.consts;
        for k in 0..LANES {
            let high = (hi[k] + (lo[k] >> 32)) as u64;
            let low = (lo[k] as u64) & 0xffff_ffff;
            let h = high.wrapping_add(c.offset);
            let q = mulhi_lanes(h, c.two32_shoup);
            let hr = h.wrapping_mul(c.two32).wrapping_sub(q.wrapping_mul(c.p));
            out[k] = if self.wide {
                select_below(select_below(hr + low, c.p), c.p)
            } else {
                let lr = m.mul_shoup_lanes(low, self.one, self.one_shoup);
                m.add(select_below(hr, c.p), lr)
            };
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
            let exact = (i128::from(hi) << 32) + i128::from(lo);
            let want = exact.rem_euclid(i128::from(p)) as u64;
            for kernel in [Kernel::Portable, Kernel::detect_avx2(), Kernel::detect()] {
                let mut out = [0u64; LANES];
                kernel.run(|| reducer.combine_with(kernel, &[lo; LANES], &[hi; LANES], &mut out));
                prop_assert!(out.iter().all(|&v| v == want), "{:?}", kernel);
            }
        }
    }
}
