//! The BGV scheme beside BFV: the same ring, primes, plaintext moduli, encoding and secret key,
//! with the message in the low bits of the phase instead of the high bits.
//!
//! Why a second scheme: a BFV product must be scaled by t/Q, which needs the tensor product in
//! an extended base and dozens of NTTs. A BGV ciphertext decrypts as
//! `[c_0 + c_1·s (+ c_2·s²)]_Q = scale·m + t·e`, so a product needs no scaling at all: it
//! is three (square) or four (product) pointwise multiplications per prime, and ciphertexts stay
//! in NTT (evaluation) form from encryption to decryption. Linear maps work on NTT residues as
//! they do on coefficients. Only relinearisation and modulus switching convert limbs, and only
//! the ones they must.
//!
//! Both schemes compute the same integers modulo t: decrypted values equal the plaintext
//! reference bit for bit. The price of keeping the message in the low bits is the `scale`: a
//! modulus switch divides the phase by the dropped prime q, which multiplies the message by
//! q⁻¹ mod t. Each [`Ciphertext`] records that factor, and decryption removes it.
//!
//! Keys serve every plaintext prime of a plan at once: their errors are multiplied by the
//! product T of those primes, a multiple of each t (see [`PublicKey`], [`RelinKey`] and
//! [`GaloisKeys`], the keys of slot rotations).
//!
//! ```
//! use veil_runtime::{bfv, bgv};
//! use rand::SeedableRng;
//! // Toy parameters, explicitly insecure.
//! let params = bfv::BfvParameters::builder()
//!     .degree(1024).q_bits(&[50, 50]).special_bits(51).plain_modulus(65537)
//!     .allow_insecure(true).build()?;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let sk = bfv::SecretKey::generate(&params, &mut rng);
//! let rk = bgv::RelinKey::new(&sk, &[65537], &mut rng)?;
//! let enc = bfv::Encoder::new(&params);
//! let ct = bgv::encrypt(&sk, &enc.encode(&[3, -4])?, &mut rng)?;
//! let ev = bgv::Evaluator::new(&params);
//! let sq = ev.mod_switch_to_next(&ev.relinearize(&ev.square(&ct)?, &rk)?)?;
//! let out = enc.decode(&bgv::decrypt(&sk, &sq)?)?;
//! assert_eq!(&out[..2], &[9, 16]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ciphertext;
mod compress;
mod evaluator;
mod galois;
mod keys;
mod public;
mod relin;
mod secret;
mod serial;

pub use crate::bfv::EvalError;
pub use ciphertext::Ciphertext;
pub(crate) use evaluator::square_component;
pub use evaluator::Evaluator;
pub use galois::GaloisKeys;
pub use keys::MAX_PLAIN_PRIMES;
pub use public::PublicKey;
pub use relin::RelinKey;
pub use secret::{decrypt, encrypt, noise_budget_bits};
pub use serial::{
    MAGIC_CIPHERTEXT, MAGIC_GALOIS_KEYS, MAGIC_PUBLIC_KEY, MAGIC_RELIN_KEY, PUBLIC_KEY_VERSION,
};
