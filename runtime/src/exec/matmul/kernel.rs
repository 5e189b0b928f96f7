//! The multiply-add kernel of the blocked product: one group of rows against one group of
//! [`LANES`] coefficients of every input column.
//!
//! A coefficient `x < 2^62` is stored beside its high part `h = (x + 2^31) >> 32`, so that
//! `x = h·2^32 + ℓ` with `ℓ` the low 32 bits of `x` read as a signed integer. Both `ℓ` and `h`
//! then fit the signed 32-bit multiplier of a 64-bit vector lane (`vpmuldq`), and the products
//! with the small signed weights accumulate exactly in signed 64-bit lanes while a row's
//! `Σ|w| < 2^31`. No masking or shifting is left in the inner loop.
//!
//! The compiler's autovectoriser does not find this schedule by itself (it vectorises across
//! rows for some group sizes and runs several times slower), so on x86-64 the kernel is
//! written with explicit vector operations through `pulp`, which checks the CPU once and keeps
//! the intrinsics safe: 512-bit with AVX-512, 256-bit with AVX2. Elsewhere a portable loop
//! computes the same sums. On the 845→100 map's kernel alone (one thread, AMD EPYC with
//! AVX-512): 3.1 G multiply-adds per second for the autovectorised loop this replaced, 14.0
//! with AVX2 and 17.2 with AVX-512.

use super::groups::{RowGroup, GROUP};

/// Coefficients a group of sums covers: two 256-bit vectors of 64-bit lanes.
pub(crate) const LANES: usize = 8;

/// Words one column takes in a block: [`LANES`] coefficients, then their high parts.
pub(crate) const COLUMN_WORDS: usize = 2 * LANES;

/// The high part `h` of a coefficient `x < 2^62`: `x = h·2^32 + (x as i32)`.
#[inline(always)]
pub(crate) fn high_part(x: u64) -> u64 {
    (x + (1 << 31)) >> 32
}

/// Lane sums of one group: `lo[r][k] + hi[r][k]·2^32 = Σ_c w_rc · x_ck`.
pub(crate) type Sums = [[i64; LANES]; GROUP];

/// Which instruction set runs the kernel, decided once per product.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512(pulp::x86::V4),
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
    Portable,
}

impl Kernel {
    /// The widest vectors the CPU has: AVX-512, AVX2, or the portable loop.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V4::try_new() {
            return Kernel::Avx512(simd);
        }
        Kernel::detect_avx2()
    }

    /// AVX2 or the portable loop (tests run every kernel the CPU has).
    pub(crate) fn detect_avx2() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return Kernel::Avx2(simd);
        }
        Kernel::Portable
    }

    /// Most rows of a group whose accumulators stay in registers: two vectors per row with
    /// AVX-512's 32 registers, four with AVX2's 16 (a few spill there, measured cheaper than
    /// smaller groups).
    pub(crate) fn max_group(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(_) => GROUP,
            _ => 4,
        }
    }

    /// Runs `f` compiled for this kernel's instruction set, so that the sums inline into it.
    #[inline(always)]
    pub(crate) fn run<T>(self, f: impl FnOnce() -> T) -> T {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(simd) => simd.vectorize(f),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2(simd) => simd.vectorize(f),
            Kernel::Portable => f(),
        }
    }

    /// The sums of `group` over `block` (`block[col · COLUMN_WORDS ..]`: column `col`'s
    /// coefficients, then their high parts), into the first `group.rows.len()` entries of
    /// `lo` and `hi`.
    #[inline(always)]
    pub(crate) fn sums(self, group: &RowGroup, block: &[u64], lo: &mut Sums, hi: &mut Sums) {
        macro_rules! dispatch {
            ($r:literal) => {
                match self {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512(simd) => {
                        sums_avx512::<$r>(simd, &group.cols, &group.weights, block, lo, hi)
                    }
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2(simd) => {
                        sums_avx2::<$r>(simd, &group.cols, &group.weights, block, lo, hi)
                    }
                    Kernel::Portable => {
                        sums_portable::<$r>(&group.cols, &group.weights, block, lo, hi)
                    }
                }
            };
        }
        debug_assert!(
            group.rows.len() <= GROUP,
            "groups are clamped to GROUP rows"
        );
        match group.rows.len() {
            1 => dispatch!(1),
            2 => dispatch!(2),
            3 => dispatch!(3),
            4 => dispatch!(4),
            5 => dispatch!(5),
            6 => dispatch!(6),
            7 => dispatch!(7),
            _ => dispatch!(8),
        }
    }
}

/// What reducing lane sums modulo a prime `p > 2^33` needs (the method is `matmul`'s
/// `LaneReducer`: fold the low sum's carry into the high sum, offset it to non-negative,
/// multiply by 2^32 with Shoup's method, add the low part, subtract p at most twice).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reduction {
    pub p: u64,
    /// A multiple of p above every offset high sum's magnitude.
    pub offset: u64,
    pub two32: u64,
    pub two32_shoup: u64,
}

impl Kernel {
    /// `hi·2^32 + lo mod p` for every lane into `out`, with explicit vector operations;
    /// `false` (nothing written) for the portable kernel, whose caller reduces instead. The
    /// compiler turns the lane-wise 64×64-bit high product back into scalar `mulx`, which made
    /// the reduction a fifth of a sparse map's time.
    #[inline(always)]
    pub(crate) fn reduce(
        self,
        c: &Reduction,
        lo: &[i64; LANES],
        hi: &[i64; LANES],
        out: &mut [u64],
    ) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(simd) => {
                let v = reduce_avx512(simd, c, pulp::cast(*lo), pulp::cast(*hi));
                let v: [u64; LANES] = pulp::cast(v);
                out[..LANES].copy_from_slice(&v);
                true
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2(simd) => {
                let lo: [[i64; 4]; 2] = pulp::cast(*lo);
                let hi: [[i64; 4]; 2] = pulp::cast(*hi);
                for v in 0..2 {
                    let r = reduce_avx2(simd, c, pulp::cast(lo[v]), pulp::cast(hi[v]));
                    let r: [u64; 4] = pulp::cast(r);
                    out[4 * v..4 * v + 4].copy_from_slice(&r);
                }
                true
            }
            Kernel::Portable => false,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn reduce_avx512(
    simd: pulp::x86::V4,
    c: &Reduction,
    lo: std::arch::x86_64::__m512i,
    hi: std::arch::x86_64::__m512i,
) -> std::arch::x86_64::__m512i {
    let f = simd.avx512f;
    let splat = |x: u64| f._mm512_set1_epi64(x as i64);
    let p = splat(c.p);
    let carry = f._mm512_srai_epi64::<32>(lo);
    let low = f._mm512_and_si512(lo, splat(0xffff_ffff));
    let h = f._mm512_add_epi64(f._mm512_add_epi64(hi, carry), splat(c.offset));
    // q = high 64 bits of h · two32_shoup, from four 32×32-bit products.
    let w = splat(c.two32_shoup);
    let (h_hi, w_hi) = (f._mm512_srli_epi64::<32>(h), f._mm512_srli_epi64::<32>(w));
    let ll = f._mm512_mul_epu32(h, w);
    let lh = f._mm512_mul_epu32(h, w_hi);
    let hl = f._mm512_mul_epu32(h_hi, w);
    let hh = f._mm512_mul_epu32(h_hi, w_hi);
    let mask = splat(0xffff_ffff);
    let mid = f._mm512_add_epi64(
        f._mm512_srli_epi64::<32>(ll),
        f._mm512_add_epi64(f._mm512_and_si512(lh, mask), f._mm512_and_si512(hl, mask)),
    );
    let q = f._mm512_add_epi64(
        f._mm512_add_epi64(hh, f._mm512_srli_epi64::<32>(mid)),
        f._mm512_add_epi64(f._mm512_srli_epi64::<32>(lh), f._mm512_srli_epi64::<32>(hl)),
    );
    let dq = simd.avx512dq;
    let r = f._mm512_sub_epi64(
        dq._mm512_mullo_epi64(h, splat(c.two32)),
        dq._mm512_mullo_epi64(q, p),
    );
    let v = f._mm512_add_epi64(r, low);
    let v = f._mm512_min_epu64(v, f._mm512_sub_epi64(v, p));
    f._mm512_min_epu64(v, f._mm512_sub_epi64(v, p))
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn reduce_avx2(
    simd: pulp::x86::V3,
    c: &Reduction,
    lo: std::arch::x86_64::__m256i,
    hi: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::__m256i;
    let a = simd.avx2;
    let splat = |x: u64| simd.avx._mm256_set1_epi64x(x as i64);
    let add = |x, y| a._mm256_add_epi64(x, y);
    let mask = splat(0xffff_ffff);
    // Low 64 bits of x·y from three 32×32-bit products.
    let mullo = |x: __m256i, y: __m256i| {
        let cross = add(
            a._mm256_mul_epu32(x, a._mm256_srli_epi64::<32>(y)),
            a._mm256_mul_epu32(a._mm256_srli_epi64::<32>(x), y),
        );
        add(a._mm256_mul_epu32(x, y), a._mm256_slli_epi64::<32>(cross))
    };
    // x − p where that is non-negative as a signed value, x otherwise (x < p + 2^63).
    let below = |x: __m256i, p: __m256i| {
        let d = a._mm256_sub_epi64(x, p);
        let negative = a._mm256_cmpgt_epi64(simd.avx._mm256_setzero_si256(), d);
        a._mm256_blendv_epi8(d, x, negative)
    };
    let p = splat(c.p);
    // |lo| < 2^62: offsetting by 2^62 makes the logical shift an arithmetic one.
    let bias = 1u64 << 62;
    let carry = a._mm256_sub_epi64(
        a._mm256_srli_epi64::<32>(add(lo, splat(bias))),
        splat(bias >> 32),
    );
    let low = a._mm256_and_si256(lo, mask);
    let h = add(add(hi, carry), splat(c.offset));
    let w = splat(c.two32_shoup);
    let (h_hi, w_hi) = (a._mm256_srli_epi64::<32>(h), a._mm256_srli_epi64::<32>(w));
    let ll = a._mm256_mul_epu32(h, w);
    let lh = a._mm256_mul_epu32(h, w_hi);
    let hl = a._mm256_mul_epu32(h_hi, w);
    let hh = a._mm256_mul_epu32(h_hi, w_hi);
    let mid = add(
        a._mm256_srli_epi64::<32>(ll),
        add(a._mm256_and_si256(lh, mask), a._mm256_and_si256(hl, mask)),
    );
    let q = add(
        add(hh, a._mm256_srli_epi64::<32>(mid)),
        add(a._mm256_srli_epi64::<32>(lh), a._mm256_srli_epi64::<32>(hl)),
    );
    let r = a._mm256_sub_epi64(mullo(h, splat(c.two32)), mullo(q, p));
    let v = add(r, low);
    below(below(v, p), p)
}

#[inline(always)]
fn sums_portable<const R: usize>(
    cols: &[u32],
    weights: &[i32],
    block: &[u64],
    lo: &mut Sums,
    hi: &mut Sums,
) {
    let mut l = [[0i64; LANES]; R];
    let mut h = [[0i64; LANES]; R];
    for (&col, w) in cols.iter().zip(weights.chunks_exact(R)) {
        let at = col as usize * COLUMN_WORDS;
        let Some(column) = block.get(at..at + COLUMN_WORDS) else {
            continue;
        };
        let (x, high) = column.split_at(LANES);
        for r in 0..R {
            let wr = i64::from(w[r]);
            for k in 0..LANES {
                l[r][k] += i64::from(x[k] as i32) * wr;
                h[r][k] += i64::from(high[k] as i32) * wr;
            }
        }
    }
    lo[..R].copy_from_slice(&l);
    hi[..R].copy_from_slice(&h);
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sums_avx2<const R: usize>(
    simd: pulp::x86::V3,
    cols: &[u32],
    weights: &[i32],
    block: &[u64],
    lo: &mut Sums,
    hi: &mut Sums,
) {
    use std::arch::x86_64::__m256i;
    /// 256-bit vectors per column: LANES coefficients, then LANES high parts.
    const VECTORS: usize = COLUMN_WORDS / 4;
    let (vectors, _) = pulp::as_arrays::<4, u64>(block);
    let zero = simd.avx._mm256_setzero_si256();
    let mut l: [[__m256i; 2]; R] = [[zero; 2]; R];
    let mut h: [[__m256i; 2]; R] = [[zero; 2]; R];
    for (&col, w) in cols.iter().zip(weights.chunks_exact(R)) {
        let at = col as usize * VECTORS;
        let Some(column) = vectors.get(at..at + VECTORS) else {
            continue;
        };
        let x: [__m256i; 2] = [pulp::cast(column[0]), pulp::cast(column[1])];
        let high: [__m256i; 2] = [pulp::cast(column[2]), pulp::cast(column[3])];
        for r in 0..R {
            let wr = simd.avx._mm256_set1_epi64x(i64::from(w[r]));
            for v in 0..2 {
                let pl = simd.avx2._mm256_mul_epi32(x[v], wr);
                let ph = simd.avx2._mm256_mul_epi32(high[v], wr);
                l[r][v] = simd.avx2._mm256_add_epi64(l[r][v], pl);
                h[r][v] = simd.avx2._mm256_add_epi64(h[r][v], ph);
            }
        }
    }
    for r in 0..R {
        for v in 0..2 {
            let a: [i64; 4] = pulp::cast(l[r][v]);
            let b: [i64; 4] = pulp::cast(h[r][v]);
            lo[r][4 * v..4 * v + 4].copy_from_slice(&a);
            hi[r][4 * v..4 * v + 4].copy_from_slice(&b);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sums_avx512<const R: usize>(
    simd: pulp::x86::V4,
    cols: &[u32],
    weights: &[i32],
    block: &[u64],
    lo: &mut Sums,
    hi: &mut Sums,
) {
    use std::arch::x86_64::__m512i;
    let (vectors, _) = pulp::as_arrays::<LANES, u64>(block);
    let zero = simd.avx512f._mm512_setzero_si512();
    let mut l: [__m512i; R] = [zero; R];
    let mut h: [__m512i; R] = [zero; R];
    for (&col, w) in cols.iter().zip(weights.chunks_exact(R)) {
        let at = col as usize * 2;
        let Some(column) = vectors.get(at..at + 2) else {
            continue;
        };
        let x: __m512i = pulp::cast(column[0]);
        let high: __m512i = pulp::cast(column[1]);
        for r in 0..R {
            let wr = simd.avx512f._mm512_set1_epi64(i64::from(w[r]));
            let pl = simd.avx512f._mm512_mul_epi32(x, wr);
            let ph = simd.avx512f._mm512_mul_epi32(high, wr);
            l[r] = simd.avx512f._mm512_add_epi64(l[r], pl);
            h[r] = simd.avx512f._mm512_add_epi64(h[r], ph);
        }
    }
    for r in 0..R {
        lo[r] = pulp::cast(l[r]);
        hi[r] = pulp::cast(h[r]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(group: &RowGroup, xs: &[Vec<u64>]) -> Vec<[i128; LANES]> {
        let r = group.rows.len();
        (0..r)
            .map(|row| {
                let mut out = [0i128; LANES];
                for (i, &c) in group.cols.iter().enumerate() {
                    let w = i128::from(group.weights[i * r + row]);
                    for k in 0..LANES {
                        out[k] += w * i128::from(xs[c as usize][k]);
                    }
                }
                out
            })
            .collect()
    }

    proptest! {
        /// Every kernel's sums recompose to the exact products, for every group size.
        #[test]
        fn kernels_are_exact(
            seed in any::<u64>(),
            rows in 1usize..=GROUP,
            ncols in 1usize..40,
            wmax in 1i32..(1 << 20),
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let xs: Vec<Vec<u64>> = (0..ncols)
                .map(|_| (0..LANES).map(|_| next() >> 2).collect())
                .collect();
            let weights: Vec<i32> = (0..ncols * rows)
                .map(|_| (next() % (2 * wmax as u64 + 1)) as i32 - wmax)
                .collect();
            let group = RowGroup {
                cols: (0..ncols as u32).rev().collect(),
                rows: (0..rows).collect(),
                weights,
            };
            let mut block = vec![0u64; ncols * COLUMN_WORDS];
            for (c, x) in xs.iter().enumerate() {
                for k in 0..LANES {
                    block[c * COLUMN_WORDS + k] = x[k];
                    block[c * COLUMN_WORDS + LANES + k] = high_part(x[k]);
                }
            }
            let want = reference(&group, &xs);
            let kernels = [Kernel::Portable, Kernel::detect_avx2(), Kernel::detect()];
            for kernel in kernels {
                let (mut lo, mut hi) = ([[0; LANES]; GROUP], [[0; LANES]; GROUP]);
                kernel.run(|| kernel.sums(&group, &block, &mut lo, &mut hi));
                for r in 0..rows {
                    for k in 0..LANES {
                        let got = i128::from(lo[r][k]) + (i128::from(hi[r][k]) << 32);
                        prop_assert_eq!(got, want[r][k], "{:?} row {} lane {}", kernel, r, k);
                    }
                }
            }
        }
    }
}
