//! The BFV scheme: parameters, keys, encoding, encryption and the evaluator.
//!
//! ```
//! use veil_runtime::bfv::*;
//! use rand::SeedableRng;
//! // Toy parameters, explicitly insecure.
//! let params = BfvParameters::builder()
//!     .degree(1024).q_bits(&[50, 50]).special_bits(50).plain_modulus(65537)
//!     .allow_insecure(true).build()?;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let sk = SecretKey::generate(&params, &mut rng);
//! let rk = RelinKey::new(&sk, &mut rng);
//! let enc = Encoder::new(&params);
//! let ct = sk.encrypt(&enc.encode(&[3, -4])?, &mut rng)?;
//! let ev = Evaluator::new(&params);
//! let sq = ev.relinearize(&ev.square(&ct)?, &rk)?;
//! let out = enc.decode(&sk.decrypt(&sq)?)?;
//! assert_eq!(&out[..2], &[9, 16]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ciphertext;
mod compress;
mod encoding;
mod error;
mod evaluator;
mod galois;
mod keys;
mod params;
mod sampling;
mod serial;

// What BGV shares with BFV below the public surface: key-switching kernels, key
// generation, serialisation helpers.
pub(crate) use compress::{check_counts, nothing_left, Rounder};
pub(crate) use evaluator::{
    check_terms, decompose, dot_ntt, dot_polys, key_inner_product, mul_scalar_polys, KeyBasis,
};
pub(crate) use galois::{
    automorphism_ntt, automorphism_ops, column_swap_op, find_keys, row_rotation_ops, GaloisOp,
};
#[cfg(test)]
pub(crate) use keys::phase_norm;
pub(crate) use keys::{
    budget_bits, check_ring, expand_a, generate_at_levels, switching_b, GaloisKey,
};
#[cfg(test)]
pub(crate) use params::tests as test_params;
pub(crate) use serial::{
    galois_entries_len, galois_entry_len, io_err, key_header, key_header_with_version, poly_len,
    read_entries as read_galois_entries, read_exact_vec, write_entries as write_galois_entries,
    write_poly, Reader, KEY_HEADER,
};

// The flat surface: every public item of the submodules has one path, `bfv::X`.
pub use ciphertext::Ciphertext;
pub use compress::{coefficient_bits, modulus_bits, rounded_width};
pub use encoding::{centre, EncodeError, Encoder, Plaintext, SLOT_GENERATOR};
pub use evaluator::{EvalError, Evaluator, NttCiphertext, NttPlaintext};
pub use galois::{check_galois_element, column_swap_element, row_rotation_element};
pub use keys::{GaloisKeys, KeyId, PublicKey, RelinKey, SecretKey};
pub use params::{
    aux_prime_count, BfvParameters, BfvParametersBuilder, ParamError, RingContext, AUX_PRIME_BITS,
    MAX_DEGREE, MAX_HPS_WIDTH, MAX_LOG2_MODULUS, MAX_Q_PRIMES, MIN_DEGREE,
};
pub use sampling::{
    cbd, error_poly, expand_seed, os_rng, small_to_rns, ternary, uniform_limb, CBD_ETA,
};
pub use serial::{
    packed_len, SerialError, FORMAT_VERSION, KEY_FORMAT_VERSION, MAGIC_CIPHERTEXT,
    MAGIC_GALOIS_KEYS, MAGIC_PARAMS, MAGIC_PLAINTEXT, MAGIC_PUBLIC_KEY, MAGIC_RELIN_KEY,
    MAGIC_SECRET_KEY,
};
