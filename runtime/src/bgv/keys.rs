//! What the BGV public and relinearisation keys share: the plaintext primes they serve.
//!
//! A BGV key's error must be a multiple of t, or the noise it adds would change the message.
//! A key made for the primes t_i scales its error by T = Π t_i: T·e ≡ 0 mod every t_i, so it
//! serves each of them, at the cost of log2 T bits of extra noise in what relinearisation adds
//! (public-key encryption divides its noise by the special prime). Sessions therefore make one
//! key per plaintext prime (`session::KeySet`): with CryptoNets' two 55-bit primes a shared
//! relinearisation key would add 110 bits and break the plan.

use crate::bfv::EvalError;
use crate::math::Modulus;

/// Most plaintext primes one BGV key set serves.
pub const MAX_PLAIN_PRIMES: usize = 16;

/// Checks the plaintext primes of a key set against the ring's primes `ring_primes` (q primes
/// and special prime): 1 to [`MAX_PLAIN_PRIMES`] distinct odd numbers above 2, none of them a
/// ring prime (T must be invertible modulo p for the key-switching correction, and t below
/// every q is checked where parameters are built).
pub(crate) fn check_plain_primes(primes: &[u64], ring_primes: &[u64]) -> Result<(), EvalError> {
    let bad = |reason| EvalError::InvalidPlainPrimes {
        primes: primes.to_vec(),
        reason,
    };
    if primes.is_empty() {
        return Err(bad("the list is empty"));
    }
    if primes.len() > MAX_PLAIN_PRIMES {
        return Err(bad("more than MAX_PLAIN_PRIMES primes"));
    }
    for (i, &t) in primes.iter().enumerate() {
        if t < 3 || t % 2 == 0 {
            return Err(bad("every prime must be odd and at least 3"));
        }
        if primes[..i].contains(&t) {
            return Err(bad("a prime is listed twice"));
        }
        if ring_primes.contains(&t) {
            return Err(bad(
                "a plaintext prime equals a ciphertext or special prime",
            ));
        }
    }
    Ok(())
}

/// T = Π primes reduced modulo each of `moduli`.
pub(crate) fn product_mod(primes: &[u64], moduli: &[Modulus]) -> Vec<u64> {
    moduli
        .iter()
        .map(|m| primes.iter().fold(1u64, |acc, &t| m.mul(acc, m.reduce(t))))
        .collect()
}

/// Refuses a key whose primes do not include `t`.
pub(crate) fn check_covers(primes: &[u64], t: u64) -> Result<(), EvalError> {
    if primes.contains(&t) {
        Ok(())
    } else {
        Err(EvalError::PlainModulusNotCovered {
            t,
            primes: primes.to_vec(),
        })
    }
}
