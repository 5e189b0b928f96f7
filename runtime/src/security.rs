//! Security levels and the HomomorphicEncryption.org standard bounds on the coefficient modulus.
//!
//! The table is the one published in the Homomorphic Encryption Standard (Albrecht et al.,
//! "Homomorphic Encryption Security Standard", HomomorphicEncryption.org, 2018, Table 1) for a
//! ternary (uniform in {-1, 0, 1}) secret and error standard deviation 3.2 against the classical
//! attacks estimated there. The bound applies to the product of *all* primes that appear in any
//! key, special key-switching primes included.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A target security level in bits.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum SecurityLevel {
    /// 128-bit classical security (the default).
    #[default]
    Bits128,
    /// 192-bit classical security.
    Bits192,
    /// 256-bit classical security.
    Bits256,
}

impl SecurityLevel {
    /// The level in bits.
    pub fn bits(self) -> u32 {
        match self {
            SecurityLevel::Bits128 => 128,
            SecurityLevel::Bits192 => 192,
            SecurityLevel::Bits256 => 256,
        }
    }

    /// Parses 128, 192 or 256.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            128 => Some(SecurityLevel::Bits128),
            192 => Some(SecurityLevel::Bits192),
            256 => Some(SecurityLevel::Bits256),
            _ => None,
        }
    }

    /// The largest total log2 of the modulus allowed at ring degree `degree`, or `None` when the
    /// standard gives no bound for that degree (degrees outside 1024..=32768).
    pub fn max_log2_modulus(self, degree: usize) -> Option<u32> {
        let row = match degree {
            1024 => 0,
            2048 => 1,
            4096 => 2,
            8192 => 3,
            16384 => 4,
            32768 => 5,
            _ => return None,
        };
        let table: [u32; 6] = match self {
            SecurityLevel::Bits128 => [27, 54, 109, 218, 438, 881],
            SecurityLevel::Bits192 => [19, 37, 75, 152, 305, 611],
            SecurityLevel::Bits256 => [14, 29, 58, 118, 237, 476],
        };
        Some(table[row])
    }

    /// The highest level whose bound admits `log2_modulus` at `degree`, if any.
    pub fn strongest_for(degree: usize, log2_modulus: f64) -> Option<Self> {
        [
            SecurityLevel::Bits256,
            SecurityLevel::Bits192,
            SecurityLevel::Bits128,
        ]
        .into_iter()
        .find(|level| {
            level
                .max_log2_modulus(degree)
                .is_some_and(|max| log2_modulus <= f64::from(max))
        })
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-bit", self.bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_standard() {
        assert_eq!(SecurityLevel::Bits128.max_log2_modulus(8192), Some(218));
        assert_eq!(SecurityLevel::Bits192.max_log2_modulus(4096), Some(75));
        assert_eq!(SecurityLevel::Bits256.max_log2_modulus(32768), Some(476));
        assert_eq!(SecurityLevel::Bits128.max_log2_modulus(512), None);
    }

    #[test]
    fn strongest_level_for_a_modulus() {
        assert_eq!(
            SecurityLevel::strongest_for(8192, 218.0),
            Some(SecurityLevel::Bits128)
        );
        assert_eq!(
            SecurityLevel::strongest_for(8192, 100.0),
            Some(SecurityLevel::Bits256)
        );
        assert_eq!(SecurityLevel::strongest_for(4096, 218.0), None);
    }
}
