//! Veil's runtime: BFV and BGV homomorphic-encryption schemes of our own, the circuit plans the
//! compiler emits, the executor that runs them, and the client/server API of private inference.
//!
//! Layers point one way: [`math`] (modular arithmetic, NTT, RNS) → [`bfv`] (parameters, keys,
//! encoding, ciphertexts, evaluator) → [`bgv`] (BGV on BFV's ring, encoding and secret key:
//! NTT-form ciphertexts, cheap products) → [`plan`] (the compiler's output and its meaning) →
//! [`exec`] (running a plan) → [`session`] (keys, encryption, evaluation and decryption of
//! batches, as a client and a server split them).
//!
//! The whole round trip on a toy plan (insecure parameters, for illustration only): two raw
//! inputs per image, one score `3·x0 − x1 + 1`.
//!
//! ```
//! use rand::SeedableRng;
//! use veil_runtime::exec::NoProgress;
//! use veil_runtime::math::ntt_primes;
//! use veil_runtime::plan::*;
//! use veil_runtime::session::{Context, EncryptionKey};
//!
//! let n = 1024;
//! let q = ntt_primes(50, n, 3, &[])?; // two ciphertext primes and the special prime
//! let register = |name: &str, len: usize, value_bits: f64| RegisterInfo {
//!     name: name.into(), len, value_bits, depth: 0, level: 2, ct_size: 2,
//!     noise_budget_bits: 20.0, calibrated_value_bits: None,
//! };
//! let plan = Plan {
//!     format_version: PLAN_FORMAT_VERSION,
//!     model: "toy".into(),
//!     params: PlanParams {
//!         degree: n, q_primes: q[..2].to_vec(), special_primes: vec![q[2]],
//!         plain_primes: vec![65537], security_bits: 0, scheme: Default::default(),
//!     },
//!     input: InputEncoding {
//!         register: 0, shape: vec![2], raw_min: 0.0, raw_max: 10.0, scale: 1.0,
//!         max_abs: 10, features: vec![0, 1],
//!     },
//!     registers: vec![register("input", 2, 3.4), register("fc", 1, 5.0)],
//!     steps: vec![Step::Linear {
//!         name: "fc".into(), inputs: vec![0], output: 1,
//!         matrix: IntMatrix {
//!             rows: 1, cols: 2, row_ptr: vec![0, 2], col_idx: vec![0, 1], values: vec![3, -1],
//!         },
//!         bias: vec![1],
//!     }],
//!     output: OutputDecoding { register: 1, scale: 1.0, class_names: vec![] },
//!     depth: 0,
//!     predicted_noise_budget_bits: 20.0,
//!     compression: Default::default(),
//!     calibration: None,
//!     packing: None,
//! };
//! let context = Context::new(plan)?; // public: the plan and its parameters
//!
//! // Client: keys (a product seeds from the OS: veil_runtime::bfv::os_rng()), then two images.
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let keys = context.keygen(&mut rng)?;
//! let raw = [4.0f32, 2.0, 0.0, 7.0];
//! let (batch, clamped) =
//!     context.encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})?;
//! assert_eq!(clamped, 0);
//!
//! // Server: holds only the server key.
//! let result = context.eval(&keys.server, batch, &NoProgress)?;
//!
//! // Client: exact integer scores, equal to the plaintext reference.
//! let decrypted = context.decrypt(&keys.client, &result)?;
//! assert_eq!(decrypted.scores, vec![vec![11], vec![-6]]);
//! assert_eq!(decrypted.scores, context.reference(&raw)?);
//! assert_eq!(argmax(&decrypted.scores[0]), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bfv;
pub mod bgv;
pub mod exec;
pub mod math;
pub mod plan;
mod random_id;
pub mod security;
pub mod session;
