//! Arithmetic modulo a prime below 2^62: Barrett reduction of 128-bit values and Shoup
//! multiplication by precomputed constants.

/// A modulus `p` with `2 ≤ p < 2^62` and the constants for fast reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    p: u64,
    /// floor(2^128 / p), high word.
    ratio_hi: u64,
    /// floor(2^128 / p), low word.
    ratio_lo: u64,
    /// floor(2^(2·bits) / p) for the two-multiplication Barrett product.
    mu: u64,
    bits: u32,
}

/// Largest modulus supported: lazy NTT butterflies keep values below 4p, which must fit a u64.
pub const MAX_MODULUS: u64 = 1 << 62;

impl Modulus {
    /// Builds the constants for `p`; `None` when `p < 2` or `p ≥ 2^62`.
    pub fn new(p: u64) -> Option<Self> {
        if !(2..MAX_MODULUS).contains(&p) {
            return None;
        }
        // floor((2^128 - 1) / p) equals floor(2^128 / p) unless p divides 2^128, which only a
        // power of two does; the difference is harmless for Barrett reduction anyway.
        let ratio = u128::MAX / u128::from(p);
        let bits = 64 - p.leading_zeros();
        Some(Modulus {
            p,
            ratio_hi: (ratio >> 64) as u64,
            ratio_lo: ratio as u64,
            mu: ((1u128 << (2 * bits)) / u128::from(p)) as u64,
            bits,
        })
    }

    /// The modulus.
    #[inline(always)]
    pub fn value(&self) -> u64 {
        self.p
    }

    /// Number of significant bits of the modulus.
    #[inline(always)]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `a + b mod p` for `a, b < p`.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        s.min(s.wrapping_sub(self.p))
    }

    /// `a - b mod p` for `a, b < p`.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        let d = a.wrapping_sub(b);
        d.min(d.wrapping_add(self.p))
    }

    /// `-a mod p` for `a < p`.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        let r = self.p - a;
        r.min(r.wrapping_sub(self.p))
    }

    /// Reduces any 128-bit value modulo p (Barrett).
    #[inline(always)]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let x0 = x as u64;
        let x1 = (x >> 64) as u64;
        // q = floor(x * ratio / 2^128), computed modulo 2^64.
        let carry = ((u128::from(x0) * u128::from(self.ratio_lo)) >> 64) as u64;
        let t = u128::from(x0) * u128::from(self.ratio_hi) + u128::from(carry);
        let u = u128::from(x1) * u128::from(self.ratio_lo) + u128::from(t as u64);
        let q = x1
            .wrapping_mul(self.ratio_hi)
            .wrapping_add((t >> 64) as u64)
            .wrapping_add((u >> 64) as u64);
        let mut r = x0.wrapping_sub(q.wrapping_mul(self.p));
        // The estimate is at most two below the true quotient.
        r = r.min(r.wrapping_sub(self.p));
        r.min(r.wrapping_sub(self.p))
    }

    /// Reduces a 64-bit value modulo p.
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        // floor(x * ratio_hi / 2^64) underestimates x / p by less than 2.
        let q = ((u128::from(x) * u128::from(self.ratio_hi)) >> 64) as u64;
        let mut r = x.wrapping_sub(q.wrapping_mul(self.p));
        r = r.min(r.wrapping_sub(self.p));
        r.min(r.wrapping_sub(self.p))
    }

    /// `a · b mod p` for `a, b < p` (classic Barrett: two multiplications by μ and p).
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        let x = u128::from(a) * u128::from(b);
        let x1 = (x >> (self.bits - 1)) as u64;
        let q = ((u128::from(x1) * u128::from(self.mu)) >> (self.bits + 1)) as u64;
        let r = (x as u64).wrapping_sub(q.wrapping_mul(self.p));
        let r = r.min(r.wrapping_sub(self.p));
        r.min(r.wrapping_sub(self.p))
    }

    /// [`Self::mul`] in 64-bit lane arithmetic only (both 128-bit products from 32×32-bit
    /// pieces, see [`mulhi_lanes`]), for loops of products of two variables that the compiler
    /// should vectorise: a BGV square's components, computed inside the blocked linear map.
    #[inline(always)]
    pub fn mul_lanes(&self, a: u64, b: u64) -> u64 {
        let (hi, lo) = (mulhi_lanes(a, b), a.wrapping_mul(b));
        // x1 = x >> (bits − 1), below 2^(bits + 1) ≤ 2^63; bits ≥ 2, so both shifts are < 64.
        let s = self.bits - 1;
        let x1 = (lo >> s) | (hi << (64 - s));
        let t = self.bits + 1;
        let (qh, ql) = (mulhi_lanes(x1, self.mu), x1.wrapping_mul(self.mu));
        let q = (ql >> t) | (qh << (64 - t));
        let r = lo.wrapping_sub(q.wrapping_mul(self.p));
        select_below(select_below(r, self.p), self.p)
    }

    /// The Shoup constant floor(w · 2^64 / p) for a fixed multiplicand `w < p`.
    #[inline(always)]
    pub fn shoup(&self, w: u64) -> u64 {
        ((u128::from(w) << 64) / u128::from(self.p)) as u64
    }

    /// `a · w mod p` in `[0, 2p)` for any `a < 2^64`, with `w_shoup = self.shoup(w)`.
    #[inline(always)]
    pub fn mul_shoup_lazy(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q = ((u128::from(a) * u128::from(w_shoup)) >> 64) as u64;
        a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p))
    }

    /// `a · w mod p` in `[0, p)`.
    #[inline(always)]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let r = self.mul_shoup_lazy(a, w, w_shoup);
        r.min(r.wrapping_sub(self.p))
    }

    /// [`Self::mul_shoup`] written in 64-bit lane arithmetic only (the high half of the
    /// product from four 32×32-bit products), for loops the compiler should vectorise: with
    /// AVX2 this is several times faster per element than the scalar 128-bit product, without
    /// it several times slower.
    #[inline(always)]
    pub fn mul_shoup_lanes(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q = mulhi_lanes(a, w_shoup);
        let r = a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p));
        select_below(r, self.p)
    }

    /// Reduces `x < 2p` to `[0, p)` without branching.
    #[inline(always)]
    pub fn reduce_once(&self, x: u64) -> u64 {
        x.min(x.wrapping_sub(self.p))
    }

    /// `base^exp mod p`.
    pub fn pow(&self, base: u64, mut exp: u64) -> u64 {
        let mut acc = 1 % self.p;
        let mut b = self.reduce(base);
        while exp > 0 {
            if exp & 1 == 1 {
                acc = self.mul(acc, b);
            }
            b = self.mul(b, b);
            exp >>= 1;
        }
        acc
    }

    /// Multiplicative inverse for a prime modulus; `None` when `a ≡ 0`.
    pub fn inv(&self, a: u64) -> Option<u64> {
        let a = self.reduce(a);
        if a == 0 {
            return None;
        }
        Some(self.pow(a, self.p - 2))
    }

    /// Reduces a signed value.
    #[inline(always)]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// Reduces a signed 128-bit value.
    pub fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// Maps a residue of another modulus `from` (centred, i.e. read as an integer in
    /// `(-from/2, from/2]`) into this modulus.
    ///
    /// Branch-free: the sign of the centred value only selects between two computed results.
    #[inline(always)]
    pub fn lift_centred(&self, x: u64, from: u64) -> u64 {
        let negative = x > from / 2;
        let magnitude = if negative { from - x } else { x };
        let r = self.reduce(magnitude);
        let nr = self.p - r;
        let out = if negative { nr } else { r };
        out.min(out.wrapping_sub(self.p))
    }

    /// [`Self::lift_centred`] for the common case `from / 2 < p` (then no reduction is needed),
    /// in lane arithmetic that vectorises. Callers check [`Self::lifts_without_reduction`]
    /// once per limb.
    #[inline(always)]
    pub fn lift_centred_small(&self, x: u64, from: u64) -> u64 {
        // Values are below 2^62, so signed comparisons (which AVX2 has) are exact.
        let negative = ((from / 2) as i64) < (x as i64);
        let magnitude = if negative { from - x } else { x };
        if negative {
            self.p - magnitude
        } else {
            magnitude
        }
    }

    /// Whether [`Self::lift_centred_small`] is exact for residues modulo `from`.
    #[inline(always)]
    pub fn lifts_without_reduction(&self, from: u64) -> bool {
        from / 2 < self.p
    }

    /// Reduces every element of a slice in place.
    pub fn reduce_slice(&self, a: &mut [u64]) {
        for x in a.iter_mut() {
            *x = self.reduce(*x);
        }
    }
}

/// `x − m` when `x ≥ m`, else `x`, for `m < 2^63` and any `x < m + 2^63`: one step of
/// reducing to `[0, m)` (from `[0, 2m)` in one call, from `[0, 3p)` in two). Written with a
/// signed comparison (which AVX2 has for 64-bit lanes) instead of an unsigned minimum (which it
/// lacks).
#[inline(always)]
pub(crate) fn select_below(x: u64, m: u64) -> u64 {
    let d = x.wrapping_sub(m);
    if (d as i64) < 0 {
        x
    } else {
        d
    }
}

/// The high 64 bits of `a·b` from four 32×32-bit products, which vectorise (one AVX2
/// `vpmuludq` each) where a 64×64→128-bit product does not.
#[inline(always)]
pub(crate) fn mulhi_lanes(a: u64, b: u64) -> u64 {
    const LOW: u64 = 0xffff_ffff;
    let (a0, a1) = (a & LOW, a >> 32);
    let (b0, b1) = (b & LOW, b >> 32);
    let ll = a0 * b0;
    let lh = a0 * b1;
    let hl = a1 * b0;
    let hh = a1 * b1;
    let mid = (ll >> 32) + (lh & LOW) + (hl & LOW);
    hh + (lh >> 32) + (hl >> 32) + (mid >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn moduli() -> Vec<u64> {
        vec![
            2,
            3,
            65537,
            1_152_921_504_606_584_833,
            (1 << 62) - 57,
            0x3fff_ffff_ffff_ffc3 - 2,
        ]
    }

    #[test]
    fn rejects_out_of_range() {
        assert!(Modulus::new(0).is_none());
        assert!(Modulus::new(1).is_none());
        assert!(Modulus::new(1 << 62).is_none());
    }

    proptest! {
        #[test]
        fn barrett_matches_u128(x in any::<u128>(), y in any::<u64>(), idx in 0usize..6) {
            let p = moduli()[idx];
            let m = Modulus::new(p).unwrap();
            prop_assert_eq!(u128::from(m.reduce_u128(x)), x % u128::from(p));
            prop_assert_eq!(m.reduce(y), y % p);
        }

        #[test]
        fn mul_add_sub_match_u128(a in any::<u64>(), b in any::<u64>(), idx in 0usize..6) {
            let p = moduli()[idx];
            let m = Modulus::new(p).unwrap();
            let (a, b) = (a % p, b % p);
            let expect = (u128::from(a) * u128::from(b) % u128::from(p)) as u64;
            prop_assert_eq!(m.mul(a, b), expect);
            prop_assert_eq!(m.mul(p - 1, p - 1), ((u128::from(p - 1) * u128::from(p - 1)) % u128::from(p)) as u64);
            prop_assert_eq!(m.mul_lanes(a, b), expect);
            prop_assert_eq!(m.mul_lanes(p - 1, p - 1), m.mul(p - 1, p - 1));
            let ws = m.shoup(b);
            prop_assert_eq!(m.mul_shoup(a, b, ws), expect);
            prop_assert_eq!(m.mul_shoup_lanes(a, b, ws), expect);
            prop_assert_eq!(u128::from(mulhi_lanes(a, b)), (u128::from(a) * u128::from(b)) >> 64);
            prop_assert_eq!(u128::from(mulhi_lanes(u64::MAX, b)), (u128::from(u64::MAX) * u128::from(b)) >> 64);
            let c = i128::from(a) - if a > p / 2 { i128::from(p) } else { 0 };
            let q2 = 1_152_921_504_606_584_833u64;
            prop_assert_eq!(i128::from(Modulus::new(q2).unwrap().lift_centred(a, p)), c.rem_euclid(i128::from(q2)));
            let big = Modulus::new(q2).unwrap();
            if big.lifts_without_reduction(p) {
                prop_assert_eq!(big.lift_centred_small(a, p), big.lift_centred(a, p));
            }
            if m.lifts_without_reduction(p) {
                prop_assert_eq!(m.lift_centred_small(a, p), m.lift_centred(a, p));
            }
            prop_assert!(m.mul_shoup_lazy(u64::MAX, b, ws) < 2 * p);
            prop_assert_eq!(m.add(a, b), ((u128::from(a) + u128::from(b)) % u128::from(p)) as u64);
            prop_assert_eq!(m.sub(a, b), ((u128::from(a) + u128::from(p) - u128::from(b)) % u128::from(p)) as u64);
        }

        #[test]
        fn signed_reduction(x in any::<i64>(), y in any::<i128>()) {
            let p = 1_152_921_504_606_584_833u64;
            let m = Modulus::new(p).unwrap();
            prop_assert_eq!(i128::from(m.reduce_i64(x)), i128::from(x).rem_euclid(i128::from(p)));
            prop_assert_eq!(i128::from(m.reduce_i128(y)), y.rem_euclid(i128::from(p)));
        }
    }

    #[test]
    fn inverse_and_pow() {
        let m = Modulus::new(65537).unwrap();
        for a in [1u64, 2, 3, 1000, 65536] {
            let inv = m.inv(a).unwrap();
            assert_eq!(m.mul(a, inv), 1);
        }
        assert_eq!(m.inv(0), None);
        assert_eq!(m.pow(3, 65536), 1);
    }
}
