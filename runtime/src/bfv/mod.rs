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

pub mod ciphertext;
pub mod encoding;
mod error;
pub mod evaluator;
pub mod keys;
pub mod params;
pub mod sampling;
pub mod serial;

pub use ciphertext::Ciphertext;
pub use encoding::{centre, EncodeError, Encoder, Plaintext};
pub use evaluator::{EvalError, Evaluator};
pub use keys::{PublicKey, RelinKey, SecretKey};
pub use params::{BfvParameters, BfvParametersBuilder, ParamError, RingContext};
pub use sampling::os_rng;
pub use serial::SerialError;
