//! Rounding away the low bits of ciphertext coefficients, so that messages shrink.
//!
//! A coefficient `c` of a component modulo `Q` (the product of the q primes at the ciphertext's
//! level) is replaced by `v = round(c / 2^k)`, sent in [`rounded_width`]`(Q, k)` =
//! `bits((Q − 1) >> k)` bits, and read back as `v·2^k mod Q`. The `v` with `v·2^k ≥ Q` (from
//! coefficients within `2^(k−1)` below `Q`) is sent as 0, the same class modulo `Q` up to the
//! same error. So every coefficient moves by at most `2^(k−1)` modulo `Q`, and a rounded
//! coefficient rounds to itself (writing a rounded ciphertext again loses nothing).
//!
//! In the phase `c0 + c1·s (+ c2·s²)` the rounding of `c0` adds at most `2^(k0−1)` to each
//! coefficient, that of `c1` is multiplied by the ternary secret. How many bits a plan may drop
//! is the compiler's choice (its noise model bounds both terms); the plan records it
//! ([`crate::plan::Compression`]) and the session rounds with it.
//!
//! The coefficient is composed from its residues exactly (Garner's mixed radix, then Horner in
//! base 2^64), so rounding is exact integer arithmetic, with no secret-dependent branch.

use super::ciphertext::Ciphertext;
use super::error::EvalError;
use super::params::{MAX_LOG2_MODULUS, MAX_Q_PRIMES};
use crate::math::{BigUint, Coeff, Modulus, RnsPoly};

/// 64-bit words of a coefficient modulo `Q`, plus one for the carry of the rounding.
const WORDS: usize = (MAX_LOG2_MODULUS as usize).div_ceil(64) + 2;

/// Bits each rounded coefficient takes: `bits((Q − 1) >> k)` for `Q` the product of `primes`.
/// The one rule for the size of a rounded component; [`crate::plan::Plan`]'s byte counts use
/// it too.
pub fn rounded_width(primes: &[u64], k: u32) -> u32 {
    BigUint::product(primes)
        .sub(&BigUint::from_u64(1))
        .shr(k)
        .bits()
}

/// Bits one coefficient of a component modulo the product of `primes` takes on the wire with
/// `low_bits` rounded away: limb by limb (`Σ bits(q_i)`) when none are, [`rounded_width`]
/// otherwise. (A seeded `c1` takes 32 bytes in all instead.)
pub fn coefficient_bits(primes: &[u64], low_bits: u32) -> u32 {
    if low_bits == 0 {
        primes.iter().map(|q| 64 - q.leading_zeros()).sum()
    } else {
        rounded_width(primes, low_bits)
    }
}

/// Refuses more counts of low bits than a ciphertext of `size` components has (both schemes'
/// `round_low_bits`).
pub(crate) fn check_counts(bits: &[u32], size: usize) -> Result<(), EvalError> {
    if bits.len() > size {
        return Err(EvalError::LowBits {
            detail: format!(
                "{} counts of low bits for a ciphertext of {size} components",
                bits.len()
            ),
        });
    }
    Ok(())
}

/// The error for rounding `k` low bits of component `i` away from a modulus (the product of
/// `primes`) that has no more than `k` bits.
pub(crate) fn nothing_left(k: u32, i: usize, primes: &[u64]) -> EvalError {
    EvalError::LowBits {
        detail: format!(
            "{k} low bits of component {i}: a modulus of {} bits leaves nothing",
            modulus_bits(primes)
        ),
    }
}

/// Bits of `Q`, the product of `primes`: a component may drop fewer low bits than this.
pub fn modulus_bits(primes: &[u64]) -> u32 {
    BigUint::product(primes).bits()
}

/// Rounds one level's coefficients by `k` bits and expands rounded values back into residues.
pub(crate) struct Rounder<'a> {
    moduli: &'a [Modulus],
    k: u32,
    /// `(q_i^{-1} mod q_j, its Shoup constant)` for every `i < j`, row `j` after row `j − 1`.
    garner: Vec<(u64, u64)>,
    /// The largest value sent: `(Q − 1) >> k`.
    max: [u64; WORDS],
    /// Words a rounded value takes.
    words: usize,
    /// Words a coefficient modulo `Q` takes, plus one for the rounding's carry.
    span: usize,
    /// Bits a rounded value takes.
    width: u32,
    /// `2^(64·j + k) mod q_i` at `[i·words + j]`: a value's word `j` weighs this much in
    /// residue `i`.
    weights: Vec<u64>,
}

impl<'a> Rounder<'a> {
    /// The rounder of `k` bits at the level of `moduli`; `None` when `k` is not below the bits
    /// of `Q` or there are too many primes.
    pub(crate) fn new(moduli: &'a [Modulus], k: u32) -> Option<Self> {
        let values: Vec<u64> = moduli.iter().map(Modulus::value).collect();
        if moduli.is_empty() || moduli.len() > MAX_Q_PRIMES || k >= modulus_bits(&values) {
            return None;
        }
        let mut garner = Vec::with_capacity(moduli.len() * moduli.len() / 2);
        for (j, m) in moduli.iter().enumerate() {
            for qi in &values[..j] {
                let inv = m.inv(m.reduce(*qi))?;
                garner.push((inv, m.shoup(inv)));
            }
        }
        let big_max = BigUint::product(&values).sub(&BigUint::from_u64(1)).shr(k);
        let width = big_max.bits();
        let words = (width as usize).div_ceil(64).max(1);
        let span = (modulus_bits(&values) as usize).div_ceil(64) + 1;
        if span > WORDS {
            return None;
        }
        let mut max = [0u64; WORDS];
        let mut rest = big_max;
        for w in max.iter_mut() {
            *w = rest.low_u64();
            rest = rest.shr(64);
        }
        let mut weights = Vec::with_capacity(moduli.len() * words);
        for m in moduli {
            let word = m.reduce_u128(1u128 << 64);
            let mut w = m.pow(2, u64::from(k));
            for _ in 0..words {
                weights.push(w);
                w = m.mul(w, word);
            }
        }
        Some(Rounder {
            moduli,
            k,
            garner,
            max,
            words,
            span,
            width,
            weights,
        })
    }

    /// Bits a rounded value takes.
    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    /// `round(c / 2^k)` (0 where `v·2^k ≥ Q`) of coefficient `index` of `p`, in `out`.
    fn round(&self, p: &RnsPoly<Coeff>, index: usize, out: &mut [u64; WORDS]) {
        // Garner: c = d_0 + q_0·(d_1 + q_1·(d_2 + …)), each d_j < q_j.
        let l = self.moduli.len();
        let mut digits = [0u64; MAX_Q_PRIMES];
        let mut at = 0;
        for (j, m) in self.moduli.iter().enumerate() {
            let mut x = p.limb(j)[index];
            for &d in &digits[..j] {
                let (inv, shoup) = self.garner[at];
                x = m.mul_shoup(m.sub(x, m.reduce(d)), inv, shoup);
                at += 1;
            }
            digits[j] = x;
        }
        // Horner in base 2^64, then c + 2^(k−1).
        out.fill(0);
        out[0] = digits[l - 1];
        // Words in use: each step adds at most one (q < 2^62).
        let mut used = 1;
        for j in (0..l - 1).rev() {
            let (q, d) = (self.moduli[j].value(), digits[j]);
            let mut carry = u128::from(d);
            for w in out[..used].iter_mut() {
                let x = u128::from(*w) * u128::from(q) + carry;
                *w = x as u64;
                carry = x >> 64;
            }
            if used < self.span {
                out[used] = carry as u64;
                used += 1;
            }
        }
        if self.k == 0 {
            return;
        }
        let half = self.k - 1;
        let mut carry = 1u64 << (half % 64);
        for w in out[..self.span].iter_mut().skip((half / 64) as usize) {
            let (s, c) = w.overflowing_add(carry);
            *w = s;
            carry = u64::from(c);
            if carry == 0 {
                break;
            }
        }
        // Shift right by k.
        let (whole, bits) = ((self.k / 64) as usize, self.k % 64);
        for i in 0..self.span {
            let lo = out[..self.span].get(i + whole).copied().unwrap_or(0);
            let hi = out[..self.span].get(i + whole + 1).copied().unwrap_or(0);
            out[i] = if bits == 0 {
                lo
            } else {
                (lo >> bits) | (hi << (64 - bits))
            };
        }
        if greater(out, &self.max) {
            out.fill(0);
        }
    }

    /// Whether `v` is a value a writer can send (at most `(Q − 1) >> k`).
    fn in_range(&self, v: &[u64; WORDS]) -> bool {
        !greater(v, &self.max)
    }

    /// Writes `v·2^k mod Q` into coefficient `index` of `p`.
    fn expand(&self, v: &[u64; WORDS], p: &mut RnsPoly<Coeff>, index: usize) {
        for (i, m) in self.moduli.iter().enumerate() {
            let weights = &self.weights[i * self.words..(i + 1) * self.words];
            // Each product is below 2^126 (a word times a weight below q < 2^62), so three
            // and a reduced remainder add up in a u128; reduce after every third.
            let mut acc = 0u128;
            for (j, (&w, &x)) in v[..self.words].iter().zip(weights).enumerate() {
                acc += u128::from(w) * u128::from(x);
                if j % 3 == 2 {
                    acc = u128::from(m.reduce_u128(acc));
                }
            }
            p.limb_mut(i)[index] = m.reduce_u128(acc);
        }
    }

    /// `p` with every coefficient rounded: `2^k·round(c / 2^k) mod Q`.
    pub(crate) fn round_poly(&self, p: &RnsPoly<Coeff>) -> RnsPoly<Coeff> {
        let mut out = RnsPoly::<Coeff>::zero(self.moduli.len(), p.degree());
        let mut v = [0u64; WORDS];
        for index in 0..p.degree() {
            self.round(p, index, &mut v);
            self.expand(&v, &mut out, index);
        }
        out
    }

    /// Appends the rounded coefficients of `p`, [`Self::width`] bits each, least significant
    /// bit first.
    pub(crate) fn write(&self, p: &RnsPoly<Coeff>, out: &mut Vec<u8>) {
        let mut bits = BitWriter {
            out,
            acc: 0,
            filled: 0,
        };
        let mut v = [0u64; WORDS];
        for index in 0..p.degree() {
            self.round(p, index, &mut v);
            let mut left = self.width;
            for &w in &v[..self.words] {
                let take = left.min(64);
                bits.put(w & mask(take), take);
                left -= take;
            }
        }
        bits.flush();
    }

    /// Reads `n` rounded coefficients written by [`Self::write`] (`bytes` must hold
    /// `packed_len(n, width)` bytes) and expands them; a value beyond `(Q − 1) >> k` is an
    /// error naming it.
    pub(crate) fn read(&self, bytes: &[u8], n: usize) -> Result<RnsPoly<Coeff>, String> {
        let mut p = RnsPoly::<Coeff>::zero(self.moduli.len(), n);
        let mut bits = BitReader {
            bytes,
            at: 0,
            acc: 0,
            filled: 0,
        };
        let mut v = [0u64; WORDS];
        for index in 0..n {
            v.fill(0);
            let mut left = self.width;
            for w in v[..self.words].iter_mut() {
                let take = left.min(64);
                *w = bits.take(take);
                left -= take;
            }
            if !self.in_range(&v) {
                return Err(format!(
                    "rounded coefficient {index} is not below ⌈Q / 2^{}⌉",
                    self.k
                ));
            }
            self.expand(&v, &mut p, index);
        }
        Ok(p)
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `a > b` for little-endian words.
fn greater(a: &[u64; WORDS], b: &[u64; WORDS]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    false
}

/// Appends values of up to 64 bits, least significant bit first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u128,
    filled: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, v: u64, bits: u32) {
        self.acc |= u128::from(v) << self.filled;
        self.filled += bits;
        while self.filled >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.filled -= 8;
        }
    }

    fn flush(self) {
        if self.filled > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Reads what [`BitWriter`] wrote; past the end it reads zeros (callers size the input first).
struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
    acc: u128,
    filled: u32,
}

impl BitReader<'_> {
    fn take(&mut self, bits: u32) -> u64 {
        while self.filled < bits {
            let b = self.bytes.get(self.at).copied().unwrap_or(0);
            self.at += 1;
            self.acc |= u128::from(b) << self.filled;
            self.filled += 8;
        }
        let v = (self.acc as u64) & mask(bits);
        self.acc >>= bits;
        self.filled -= bits;
        v
    }
}

impl Ciphertext {
    /// Rounds away the low `bits[i]` bits of every coefficient of component `i` (0: kept
    /// exact; missing entries count as 0): each coefficient becomes `2^k·round(c / 2^k) mod Q`
    /// and the ciphertext remembers `bits`, so it serialises in `bits((Q − 1) >> k)` bits per
    /// coefficient instead of `bits(Q)`. The phase moves by the rounding of `c0` plus that of
    /// `c1` times the secret (and of `c2` times its square), which the caller must have
    /// budgeted: decryption stays exact only while the total noise stays below `Q/(2t)`.
    ///
    /// A seeded `c1` stays seeded when it keeps its bits.
    ///
    /// ```
    /// use veil_runtime::bfv::*;
    /// use rand::SeedableRng;
    /// // Toy parameters, explicitly insecure.
    /// let params = BfvParameters::builder()
    ///     .degree(1024).q_bits(&[50, 50]).special_bits(50).plain_modulus(65537)
    ///     .allow_insecure(true).build()?;
    /// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    /// let sk = SecretKey::generate(&params, &mut rng);
    /// let enc = Encoder::new(&params);
    /// let ct = sk.encrypt(&enc.encode(&[3, -4])?, &mut rng)?;
    /// // 100-bit Q, 17-bit t: the phase has room for far more than 2^60 of rounding.
    /// let small = ct.round_low_bits(&[60])?;
    /// assert!(small.to_bytes().len() < ct.to_bytes().len() * 2 / 3);
    /// assert_eq!(&enc.decode(&sk.decrypt(&small)?)?[..2], &[3, -4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn round_low_bits(&self, bits: &[u32]) -> Result<Ciphertext, EvalError> {
        let moduli = &self.params.ring().q()[..self.level];
        check_counts(bits, self.size())?;
        let mut out = self.clone();
        for (i, &k) in bits.iter().enumerate() {
            if k == 0 {
                continue;
            }
            let rounder = Rounder::new(moduli, k)
                .ok_or_else(|| nothing_left(k, i, &self.params.ring().q_values()[..self.level]))?;
            out.polys[i] = rounder.round_poly(&self.polys[i]);
            out.low_bits[i] = k;
            if i == 1 {
                out.seed = None;
            }
        }
        Ok(out)
    }

    /// Low bits rounded away in each component, as [`Ciphertext::round_low_bits`] set them
    /// (all 0 for a ciphertext serialised whole).
    pub fn low_bits(&self) -> &[u32] {
        &self.low_bits[..self.size().min(self.low_bits.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::keys::SecretKey;
    use crate::bfv::params::tests::toy;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The coefficients of `p` as big integers modulo Q.
    fn composed(p: &RnsPoly<Coeff>, q: &[u64]) -> Vec<BigUint> {
        let big_q = BigUint::product(q);
        (0..p.degree())
            .map(|k| {
                let mut z = BigUint::zero();
                for (i, &qi) in q.iter().enumerate() {
                    let punct = big_q.div_rem_u64(qi).map(|(x, _)| x).unwrap_or_default();
                    let inv = Modulus::new(qi)
                        .and_then(|m| m.inv(m.reduce(punct.rem_u64(qi))))
                        .unwrap_or(0);
                    let y = Modulus::new(qi).map_or(0, |m| m.mul(p.limb(i)[k], inv));
                    z = z.add(&punct.mul_u64(y));
                }
                z.div_rem(&big_q).map(|(_, r)| r).unwrap_or_default()
            })
            .collect()
    }

    /// Distance between a and b modulo Q.
    fn distance(a: &BigUint, b: &BigUint, q: &BigUint) -> BigUint {
        let d = if a >= b { a.sub(b) } else { b.sub(a) };
        let other = q.sub(&d);
        if other < d {
            other
        } else {
            d
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Every coefficient moves by at most 2^(k−1) modulo Q, rounding is idempotent, and
        /// the written values read back to the rounded polynomial.
        #[test]
        fn rounding_moves_each_coefficient_by_at_most_half_a_step(
            seed in any::<u64>(),
            k in 1u32..99,
            levels in 1usize..=2,
        ) {
            let params = toy(1024);
            let moduli = &params.ring().q()[..levels];
            let q: Vec<u64> = moduli.iter().map(Modulus::value).collect();
            prop_assume!(k < modulus_bits(&q));
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let p = crate::bfv::sampling::expand_seed(
                &{ let mut s = [0u8; 32]; rand::RngCore::fill_bytes(&mut rng, &mut s); s },
                moduli,
                1024,
                0,
            );
            let r = Rounder::new(moduli, k).unwrap();
            prop_assert_eq!(r.width(), rounded_width(&q, k));
            let rounded = r.round_poly(&p);
            let big_q = BigUint::product(&q);
            let half = BigUint::from_u64(1).shl(k - 1);
            for (a, b) in composed(&p, &q).iter().zip(composed(&rounded, &q)) {
                prop_assert!(distance(a, &b, &big_q) <= half);
                // A multiple of 2^k below Q.
                prop_assert!(b.shr(k).shl(k) == b && b < big_q);
            }
            prop_assert_eq!(&r.round_poly(&rounded), &rounded);
            let mut bytes = Vec::new();
            r.write(&p, &mut bytes);
            prop_assert_eq!(bytes.len(), crate::bfv::packed_len(1024, r.width()));
            prop_assert_eq!(r.read(&bytes, 1024).unwrap(), rounded);
        }
    }

    /// Five 61-bit primes (CryptoNets' upload modulus): values of several words.
    #[test]
    fn wide_moduli_round_exactly() {
        let q = crate::math::ntt_primes(61, 1024, 5, &[]).unwrap();
        let moduli: Vec<Modulus> = q.iter().map(|&q| Modulus::new(q).unwrap()).collect();
        let p = crate::bfv::sampling::expand_seed(&[3; 32], &moduli, 1024, 0);
        let big_q = BigUint::product(&q);
        for k in [1, 61, 64, 65, 130, 200, 290] {
            let r = Rounder::new(&moduli, k).unwrap();
            let rounded = r.round_poly(&p);
            let half = BigUint::from_u64(1).shl(k - 1);
            for (a, b) in composed(&p, &q).iter().zip(composed(&rounded, &q)) {
                assert!(distance(a, &b, &big_q) <= half, "k = {k}");
                assert!(b.shr(k).shl(k) == b, "k = {k}");
            }
            let mut bytes = Vec::new();
            r.write(&p, &mut bytes);
            assert_eq!(r.read(&bytes, 1024).unwrap(), rounded, "k = {k}");
        }
    }

    #[test]
    fn values_near_q_wrap_to_zero_and_values_beyond_the_range_are_refused() {
        let params = toy(1024);
        let moduli = &params.ring().q()[..1];
        let q = moduli[0].value();
        // A k for which Q − 1 rounds up to a multiple of 2^k that is not below Q.
        let k = (20..40).find(|k| (q - 1) >> (k - 1) & 1 == 1).unwrap();
        let r = Rounder::new(moduli, k).unwrap();
        let mut p = RnsPoly::<Coeff>::zero(1, 1024);
        p.limb_mut(0)[0] = q - 1;
        p.limb_mut(0)[1] = (q - 1) >> k << k;
        p.limb_mut(0)[2] = (1 << (k - 1)) - 1;
        let rounded = r.round_poly(&p);
        assert_eq!(&rounded.limb(0)[..3], &[0, (q - 1) >> k << k, 0]);
        // The largest value is (Q − 1) >> k; one more is hostile.
        // The largest value sent is (Q − 1) >> k; one more (where the width holds it) is
        // hostile.
        let two = &params.ring().q()[..2];
        let big_q = BigUint::product(&params.ring().q_values()[..2]);
        let max = |k: u32| big_q.sub(&BigUint::from_u64(1)).shr(k);
        let k = (20..60)
            .find(|&k| max(k).add(&BigUint::from_u64(1)).bits() == max(k).bits())
            .unwrap();
        let r = Rounder::new(two, k).unwrap();
        let mut bytes = Vec::new();
        r.write(&RnsPoly::<Coeff>::zero(2, 1024), &mut bytes);
        let beyond = max(k).add(&BigUint::from_u64(1));
        for bit in 0..r.width() {
            bytes[bit as usize / 8] |= u8::from(beyond.bit(bit)) << (bit % 8);
        }
        let err = r.read(&bytes, 1024).unwrap_err();
        assert_eq!(
            err,
            format!("rounded coefficient 0 is not below ⌈Q / 2^{k}⌉")
        );
        assert!(Rounder::new(moduli, modulus_bits(&[q])).is_none());
        assert!(Rounder::new(moduli, modulus_bits(&[q]) - 1).is_some());
    }

    #[test]
    fn a_rounded_ciphertext_decrypts_and_counts_its_bits() {
        let params = toy(2048);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let sk = SecretKey::generate(&params, &mut rng);
        let enc = Encoder::new(&params);
        let values: Vec<i64> = (0..2048).map(|i| (i * 37) % 1001 - 500).collect();
        let ct = sk.encrypt(&enc.encode(&values).unwrap(), &mut rng).unwrap();
        let q_bits = modulus_bits(&params.ring().q_values()[..ct.level()]);
        let t_bits = 64 - params.plain_modulus().leading_zeros();
        // c0 alone (c1 stays a seed), then both components.
        let up = ct.round_low_bits(&[q_bits - t_bits - 8]).unwrap();
        assert!(up.is_seeded());
        assert_eq!(up.low_bits(), &[q_bits - t_bits - 8, 0]);
        assert_eq!(enc.decode(&sk.decrypt(&up).unwrap()).unwrap(), values);
        let both = ct
            .round_low_bits(&[q_bits - t_bits - 8, q_bits - t_bits - 24])
            .unwrap();
        assert!(!both.is_seeded());
        assert_eq!(enc.decode(&sk.decrypt(&both).unwrap()).unwrap(), values);
        // Far too many bits: the message is gone.
        let gone = ct.round_low_bits(&[q_bits - 2, q_bits - 2]).unwrap();
        assert_ne!(enc.decode(&sk.decrypt(&gone).unwrap()).unwrap(), values);
        let err = ct.round_low_bits(&[q_bits]).unwrap_err();
        assert!(err.to_string().contains("leaves nothing"), "{err}");
        assert!(ct.round_low_bits(&[1, 1, 1]).is_err());
        assert_eq!(ct.low_bits(), &[0, 0]);
    }
}
