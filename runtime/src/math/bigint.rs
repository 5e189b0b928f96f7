//! A small fixed-width unsigned big integer for precomputation and for the noise-budget
//! measurement (never on a hot path).

use std::cmp::Ordering;

/// Number of 64-bit limbs: 1536 bits, enough for t·Q·P at the largest supported parameters.
pub const LIMBS: usize = 24;

/// An unsigned integer below 2^1536, little-endian limbs. Arithmetic wraps silently on
/// overflow; callers keep values in range (all uses are bounded by the parameter checks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BigUint {
    limbs: [u64; LIMBS],
}

impl Default for BigUint {
    fn default() -> Self {
        Self::zero()
    }
}

impl BigUint {
    /// Zero.
    pub const fn zero() -> Self {
        BigUint { limbs: [0; LIMBS] }
    }

    /// From a machine word.
    pub fn from_u64(v: u64) -> Self {
        let mut r = Self::zero();
        r.limbs[0] = v;
        r
    }

    /// From a 128-bit word.
    pub fn from_u128(v: u128) -> Self {
        let mut r = Self::zero();
        r.limbs[0] = v as u64;
        r.limbs[1] = (v >> 64) as u64;
        r
    }

    /// Product of a list of words.
    pub fn product(values: &[u64]) -> Self {
        let mut r = Self::from_u64(1);
        for &v in values {
            r = r.mul_u64(v);
        }
        r
    }

    /// True when zero.
    pub fn is_zero(&self) -> bool {
        self.limbs.iter().all(|&l| l == 0)
    }

    /// Number of significant bits (0 for zero).
    pub fn bits(&self) -> u32 {
        for i in (0..LIMBS).rev() {
            if self.limbs[i] != 0 {
                return 64 * i as u32 + (64 - self.limbs[i].leading_zeros());
            }
        }
        0
    }

    /// Approximate base-2 logarithm (−∞ for zero).
    pub fn log2(&self) -> f64 {
        let bits = self.bits();
        if bits == 0 {
            return f64::NEG_INFINITY;
        }
        // Take the top 64 bits.
        let shift = bits.saturating_sub(64);
        let top = self.shr(shift).limbs[0];
        (top as f64).log2() + f64::from(shift)
    }

    /// `self · v`.
    pub fn mul_u64(&self, v: u64) -> Self {
        let mut r = Self::zero();
        let mut carry = 0u128;
        for i in 0..LIMBS {
            let x = u128::from(self.limbs[i]) * u128::from(v) + carry;
            r.limbs[i] = x as u64;
            carry = x >> 64;
        }
        r
    }

    /// `self + other`.
    pub fn add(&self, other: &Self) -> Self {
        let mut r = Self::zero();
        let mut carry = 0u64;
        for i in 0..LIMBS {
            let (s1, c1) = self.limbs[i].overflowing_add(other.limbs[i]);
            let (s2, c2) = s1.overflowing_add(carry);
            r.limbs[i] = s2;
            carry = u64::from(c1) + u64::from(c2);
        }
        r
    }

    /// `self - other` (wrapping; callers ensure `self ≥ other`).
    pub fn sub(&self, other: &Self) -> Self {
        let mut r = Self::zero();
        let mut borrow = 0u64;
        for i in 0..LIMBS {
            let (d1, b1) = self.limbs[i].overflowing_sub(other.limbs[i]);
            let (d2, b2) = d1.overflowing_sub(borrow);
            r.limbs[i] = d2;
            borrow = u64::from(b1) + u64::from(b2);
        }
        r
    }

    /// `self · other` (truncated to the width).
    pub fn mul(&self, other: &Self) -> Self {
        let mut r = Self::zero();
        for i in 0..LIMBS {
            if other.limbs[i] == 0 {
                continue;
            }
            let partial = self.mul_u64(other.limbs[i]).shl(64 * i as u32);
            r = r.add(&partial);
        }
        r
    }

    /// Quotient and remainder by a nonzero word; `None` when `d == 0`.
    pub fn div_rem_u64(&self, d: u64) -> Option<(Self, u64)> {
        if d == 0 {
            return None;
        }
        let mut q = Self::zero();
        let mut rem = 0u128;
        for i in (0..LIMBS).rev() {
            let cur = (rem << 64) | u128::from(self.limbs[i]);
            q.limbs[i] = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        Some((q, rem as u64))
    }

    /// Remainder by a nonzero word (0 when `d == 0`).
    pub fn rem_u64(&self, d: u64) -> u64 {
        self.div_rem_u64(d).map_or(0, |(_, r)| r)
    }

    /// Left shift.
    pub fn shl(&self, s: u32) -> Self {
        let mut r = Self::zero();
        let words = (s / 64) as usize;
        let bits = s % 64;
        for i in (words..LIMBS).rev() {
            let src = i - words;
            let mut v = self.limbs[src] << bits;
            if bits > 0 && src > 0 {
                v |= self.limbs[src - 1] >> (64 - bits);
            }
            r.limbs[i] = v;
        }
        r
    }

    /// Right shift.
    pub fn shr(&self, s: u32) -> Self {
        let mut r = Self::zero();
        let words = (s / 64) as usize;
        let bits = s % 64;
        for i in 0..LIMBS.saturating_sub(words) {
            let src = i + words;
            let mut v = self.limbs[src] >> bits;
            if bits > 0 && src + 1 < LIMBS {
                v |= self.limbs[src + 1] << (64 - bits);
            }
            r.limbs[i] = v;
        }
        r
    }

    /// Bit `i`.
    pub fn bit(&self, i: u32) -> bool {
        let w = (i / 64) as usize;
        w < LIMBS && (self.limbs[w] >> (i % 64)) & 1 == 1
    }

    /// Quotient and remainder by a big divisor (schoolbook binary long division); `None` when
    /// the divisor is zero.
    pub fn div_rem(&self, d: &Self) -> Option<(Self, Self)> {
        if d.is_zero() {
            return None;
        }
        let mut q = Self::zero();
        let mut r = Self::zero();
        for i in (0..self.bits()).rev() {
            r = r.shl(1);
            if self.bit(i) {
                r.limbs[0] |= 1;
            }
            if r >= *d {
                r = r.sub(d);
                q.limbs[(i / 64) as usize] |= 1 << (i % 64);
            }
        }
        Some((q, r))
    }

    /// The low 64 bits.
    pub fn low_u64(&self) -> u64 {
        self.limbs[0]
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> Ordering {
        for i in (0..LIMBS).rev() {
            match self.limbs[i].cmp(&other.limbs[i]) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_u128(a in any::<u64>(), b in any::<u64>(), c in 1u64..) {
            let x = BigUint::from_u64(a).mul_u64(b);
            let expect = u128::from(a) * u128::from(b);
            prop_assert_eq!(x, BigUint::from_u128(expect));
            let (q, r) = x.div_rem_u64(c).unwrap();
            prop_assert_eq!(q, BigUint::from_u128(expect / u128::from(c)));
            prop_assert_eq!(u128::from(r), expect % u128::from(c));
            let (q2, r2) = x.div_rem(&BigUint::from_u64(c)).unwrap();
            prop_assert_eq!(q2, q);
            prop_assert_eq!(r2, BigUint::from_u64(r));
            prop_assert_eq!(x.shl(70).shr(70), x);
            prop_assert_eq!(x.add(&BigUint::from_u64(c)).sub(&BigUint::from_u64(c)), x);
        }
    }

    #[test]
    fn big_division_round_trips() {
        let a = BigUint::product(&[u64::MAX, 12345, 1 << 60, 999_999_937]);
        let d = BigUint::product(&[1 << 61, 3]);
        let (q, r) = a.div_rem(&d).unwrap();
        assert_eq!(q.mul(&d).add(&r), a);
        assert!(r < d);
        assert_eq!(a.bits(), 64 + 14 + 60 + 30);
        assert!((BigUint::from_u64(1 << 40).log2() - 40.0).abs() < 1e-9);
    }
}
