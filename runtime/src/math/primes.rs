//! Prime generation: deterministic Miller–Rabin for 64-bit integers and the search for
//! NTT-friendly primes (p ≡ 1 mod 2n) of a requested bit size.

use thiserror::Error;

/// Why a set of primes could not be produced.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PrimeError {
    /// The bit size is outside what the arithmetic supports.
    #[error("prime size {bits} bits is outside the supported range {min}..={max}")]
    BitsOutOfRange {
        /// Requested size.
        bits: u32,
        /// Smallest supported size.
        min: u32,
        /// Largest supported size.
        max: u32,
    },
    /// Not enough primes of that size are ≡ 1 mod 2n.
    #[error("only {found} primes of {bits} bits are congruent to 1 mod {modulus}; {wanted} were requested")]
    NotEnough {
        /// Requested size.
        bits: u32,
        /// 2n.
        modulus: u64,
        /// How many were found.
        found: usize,
        /// How many were wanted.
        wanted: usize,
    },
}

/// Smallest prime size [`ntt_primes`] produces.
pub const MIN_PRIME_BITS: u32 = 10;
/// Largest prime size [`ntt_primes`] produces (leaves headroom for lazy reductions).
pub const MAX_PRIME_BITS: u32 = 61;

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut acc = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    acc
}

/// Deterministic primality test for every `u64` (Miller–Rabin with the first twelve primes as
/// witnesses, which is exact below 3.3 × 10^24).
pub fn is_prime(n: u64) -> bool {
    const WITNESSES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in WITNESSES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'witness: for a in WITNESSES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// `count` distinct primes p with 2^(bits-1) < p < 2^bits and p ≡ 1 (mod 2·degree), largest
/// first, skipping any listed in `avoid`.
pub fn ntt_primes(
    bits: u32,
    degree: usize,
    count: usize,
    avoid: &[u64],
) -> Result<Vec<u64>, PrimeError> {
    if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits) {
        return Err(PrimeError::BitsOutOfRange {
            bits,
            min: MIN_PRIME_BITS,
            max: MAX_PRIME_BITS,
        });
    }
    let step = 2 * degree as u64;
    let upper = 1u64 << bits;
    let lower = 1u64 << (bits - 1);
    let mut found = Vec::with_capacity(count);
    // Largest candidate below 2^bits that is ≡ 1 mod step.
    let mut candidate = (upper - 1) / step * step + 1;
    while found.len() < count && candidate > lower {
        if candidate < upper && !avoid.contains(&candidate) && is_prime(candidate) {
            found.push(candidate);
        }
        candidate = match candidate.checked_sub(step) {
            Some(c) => c,
            None => break,
        };
    }
    if found.len() < count {
        return Err(PrimeError::NotEnough {
            bits,
            modulus: step,
            found: found.len(),
            wanted: count,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_primes_are_recognised() {
        let primes: Vec<u64> = (0..60).filter(|&n| is_prime(n)).collect();
        assert_eq!(
            primes,
            vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59]
        );
        assert!(is_prime(0xffff_ffff_ffff_ffc5)); // largest 64-bit prime
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
    }

    #[test]
    fn ntt_primes_have_the_requested_shape() {
        let primes = ntt_primes(50, 8192, 3, &[]).unwrap();
        assert_eq!(primes.len(), 3);
        for &p in &primes {
            assert!(is_prime(p));
            assert_eq!(p % 16384, 1);
            assert_eq!(64 - p.leading_zeros(), 50);
        }
        assert!(primes.windows(2).all(|w| w[0] > w[1]));
        let more = ntt_primes(50, 8192, 2, &primes).unwrap();
        assert!(more.iter().all(|p| !primes.contains(p)));
    }

    #[test]
    fn impossible_requests_are_errors() {
        assert!(matches!(
            ntt_primes(12, 4096, 1, &[]),
            Err(PrimeError::NotEnough { .. })
        ));
        assert!(matches!(
            ntt_primes(62, 4096, 1, &[]),
            Err(PrimeError::BitsOutOfRange { .. })
        ));
    }
}
