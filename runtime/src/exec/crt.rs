//! Chinese-remainder recombination of per-prime results into exact signed integers.
//!
//! Uses Garner's mixed-radix form, so every intermediate fits in 64-bit arithmetic modulo one
//! prime and only the final sum needs 128 bits: the product of the primes must stay below
//! 2^[`MAX_PLAIN_MODULUS_BITS`] (the plan's rule), and the compiler refuses circuits whose values need more.

use crate::plan::{plain_modulus, MAX_PLAIN_MODULUS_BITS};
use thiserror::Error;

/// Why residues could not be recombined.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CrtError {
    /// The product of the primes does not fit in [`MAX_PLAIN_MODULUS_BITS`] bits.
    #[error("the product of the plaintext primes exceeds 2^{MAX_PLAIN_MODULUS_BITS}")]
    TooLarge,
    /// Residue and prime counts differ.
    #[error("{residues} residues for {primes} primes")]
    Count {
        /// Residues given.
        residues: usize,
        /// Primes given.
        primes: usize,
    },
    /// Two primes share a factor (no inverse exists).
    #[error("plaintext primes {0} and {1} are not coprime")]
    NotCoprime(u64, u64),
}

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

fn inverse_mod(a: u64, m: u64) -> Option<u64> {
    let (mut old_r, mut r) = (i128::from(a % m), i128::from(m));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    if old_r != 1 {
        return None;
    }
    u64::try_from(old_s.rem_euclid(i128::from(m))).ok()
}

/// Precomputed constants for recombining residues modulo a fixed list of primes.
#[derive(Debug, Clone)]
pub struct Crt {
    primes: Vec<u64>,
    /// inverses[i][j] = primes[j]^{-1} mod primes[i], for j < i.
    inverses: Vec<Vec<u64>>,
    product: u128,
}

impl Crt {
    /// Prepares recombination modulo `primes`.
    pub fn new(primes: &[u64]) -> Result<Self, CrtError> {
        let product = plain_modulus(primes).ok_or(CrtError::TooLarge)?;
        let mut inverses = Vec::with_capacity(primes.len());
        for (i, &pi) in primes.iter().enumerate() {
            let mut row = Vec::with_capacity(i);
            for &pj in &primes[..i] {
                row.push(inverse_mod(pj, pi).ok_or(CrtError::NotCoprime(pj, pi))?);
            }
            inverses.push(row);
        }
        Ok(Crt {
            primes: primes.to_vec(),
            inverses,
            product,
        })
    }

    /// The product of the primes.
    pub fn modulus(&self) -> u128 {
        self.product
    }

    /// The unique integer x in (−T/2, T/2] with `x ≡ residues[i] (mod primes[i])`.
    pub fn recombine(&self, residues: &[u64]) -> Result<i128, CrtError> {
        if residues.len() != self.primes.len() {
            return Err(CrtError::Count {
                residues: residues.len(),
                primes: self.primes.len(),
            });
        }
        // Mixed-radix digits: x = d0 + d1·p0 + d2·p0·p1 + …
        let mut digits: Vec<u64> = Vec::with_capacity(self.primes.len());
        for (i, (&pi, &ri)) in self.primes.iter().zip(residues).enumerate() {
            let mut d = ri % pi;
            for (j, &dj) in digits.iter().enumerate() {
                // d = (d − dj) · pj^{-1} mod pi
                let diff = (d + pi - dj % pi) % pi;
                d = mul_mod(diff, self.inverses[i][j], pi);
            }
            digits.push(d);
        }
        let mut x: u128 = 0;
        let mut radix: u128 = 1;
        for (&d, &p) in digits.iter().zip(&self.primes) {
            x += u128::from(d) * radix;
            radix *= u128::from(p);
        }
        // x < T < 2^MAX_PLAIN_MODULUS_BITS, so both branches fit in i128.
        let half = self.product / 2;
        let signed = if x > half {
            -((self.product - x) as i128)
        } else {
            x as i128
        };
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recombines_signed_values_across_three_primes() {
        let primes = [1_032_193u64, 786_433, 65_537];
        let crt = Crt::new(&primes).unwrap();
        let t = crt.modulus() as i128;
        for x in [0i128, 1, -1, 123_456_789, -987_654_321, t / 2, -(t / 2) + 1] {
            let residues: Vec<u64> = primes
                .iter()
                .map(|&p| x.rem_euclid(i128::from(p)) as u64)
                .collect();
            assert_eq!(crt.recombine(&residues).unwrap(), x);
        }
    }

    #[test]
    fn single_prime_is_centred_reduction() {
        let crt = Crt::new(&[65_537]).unwrap();
        assert_eq!(crt.recombine(&[65_536]).unwrap(), -1);
        assert_eq!(crt.recombine(&[32_768]).unwrap(), 32_768);
    }

    #[test]
    fn errors_are_reported() {
        assert_eq!(Crt::new(&[6, 9]).unwrap_err(), CrtError::NotCoprime(6, 9));
        assert_eq!(
            Crt::new(&[u64::MAX, u64::MAX - 2]).unwrap_err(),
            CrtError::TooLarge
        );
        let crt = Crt::new(&[7, 11]).unwrap();
        assert!(matches!(crt.recombine(&[1]), Err(CrtError::Count { .. })));
    }
}
