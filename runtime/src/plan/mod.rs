//! The circuit plan: what the compiler emits and the executor runs.
//!
//! A plan is a straight-line program over *registers*. A register is a vector of encrypted
//! values (one ciphertext per value; slot `k` of every ciphertext belongs to input `k` of the
//! batch). Steps read registers and write new ones. The plan fixes everything both sides must
//! agree on: the exact primes, how raw inputs become integers, the integer weights, and how the
//! integer outputs are decoded.
//!
//! When the integer values need more bits than one plaintext prime holds, the plan lists several
//! plaintext primes (`params.plain_primes`); the executor runs every step once per prime and the
//! client recombines the residues with the Chinese remainder theorem.
//!
//! Register facts (`level`, `ct_size`, `noise_budget_bits`) describe the register's state at the
//! end of the program, after any in-place `Relinearize` / `ModSwitch` steps. Levels only go
//! down along the program, so a register read after a `ModSwitch` is read at the lower level.
//!
//! Files: [`Plan::write_file`] / [`Plan::read_file`] choose the encoding by extension: `.json`
//! is pretty JSON for inspection, anything else the compact binary form (magic `VEILPLAN`, see
//! `codec`). A loaded plan is always checked with [`Plan::validate`].

use crate::bfv::{coefficient_bits, BfvParameters, ParamError};
use crate::math::fnv1a;
use crate::security::SecurityLevel;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod codec;
mod input;
pub mod packing;
mod validate;

pub use codec::{PlanError, MAX_PLAN_BYTES, PLAN_MAGIC};
pub use input::{argmax, EncodedInput, InputError};
pub use packing::{LinearPacking, Packing};
pub use validate::ValidationError;

/// The product of a plan's plaintext primes stays below 2^this, so recombined scores (and the
/// exact reference's registers) fit in `i128`. The compiler's parameter search imports it.
pub const MAX_PLAIN_MODULUS_BITS: u32 = 127;

/// The plaintext modulus Π t_i of `primes`, or `None` when it reaches
/// 2^[`MAX_PLAIN_MODULUS_BITS`] (too wide to recombine exactly).
pub fn plain_modulus(primes: &[u64]) -> Option<u128> {
    primes
        .iter()
        .try_fold(1u128, |acc, &p| acc.checked_mul(u128::from(p)))
        .filter(|&t| t < (1u128 << MAX_PLAIN_MODULUS_BITS))
}

/// The version of the plan format this crate reads and writes.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Index of a register in [`Plan::registers`].
pub type RegId = usize;

/// A compiled circuit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PLAN_FORMAT_VERSION`] for plans this crate writes.
    pub format_version: u32,
    /// The model's name.
    pub model: String,
    /// Encryption parameters, exact primes included.
    pub params: PlanParams,
    /// How raw inputs become the integers in register `input.register`.
    pub input: InputEncoding,
    /// Every register, with the compiler's facts about it.
    pub registers: Vec<RegisterInfo>,
    /// The program, in execution order.
    pub steps: Vec<Step>,
    /// How the output register becomes class scores.
    pub output: OutputDecoding,
    /// Multiplicative depth of the circuit.
    pub depth: u32,
    /// Predicted invariant noise budget (bits) left in the output ciphertexts, minimum over the
    /// plaintext primes.
    pub predicted_noise_budget_bits: f64,
    /// Low bits rounded away from the ciphertexts on the wire, chosen by the compiler. Absent
    /// (nothing rounded) in plans made before rounding existed, which read unchanged.
    #[serde(default, skip_serializing_if = "Compression::is_none")]
    pub compression: Compression,
    /// Present when the value bounds used to choose the plaintext primes come from calibration
    /// data rather than the guaranteed worst case over the declared input range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Present when the plan runs in the packed layout (one ciphertext per register, each image
    /// in a lane of slots; see [`packing`]); absent for the slot layout (one ciphertext per
    /// value, one slot per image), so slot plans read and fingerprint unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packing: Option<Packing>,
}

/// How many low bits of each coefficient the two sides round away before sending (see
/// [`crate::bfv::Ciphertext::round_low_bits`], and [`crate::bgv::Ciphertext::round_low_bits`],
/// which rounds `t⁻¹·c` in the same width): the one place both sides read it from. The
/// compiler chooses the counts from its noise model so that decryption stays exact;
/// [`Plan::validate`] refuses counts that could not be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    /// Low bits of `c0` the client rounds away in every uploaded ciphertext (`c1` travels as
    /// a seed, or whole under public-key encryption).
    #[serde(default)]
    pub upload_bits: u32,
    /// Low bits the server rounds away in each component of every result ciphertext after
    /// the last step: one entry per component of the output register, or none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub download_bits: Vec<u32>,
}

impl Compression {
    /// True when nothing is rounded away (the default, left out of serialised plans).
    pub fn is_none(&self) -> bool {
        self.upload_bits == 0 && self.download_bits.iter().all(|&k| k == 0)
    }

    /// Bits rounded away per component of an uploaded ciphertext.
    pub fn upload(&self) -> [u32; 2] {
        [self.upload_bits, 0]
    }
}

/// How calibrated value bounds were obtained (see [`RegisterInfo::calibrated_value_bits`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Number of calibration inputs evaluated.
    pub samples: usize,
    /// Bits added to the largest observed |value| as a safety margin (1 bit = ×2).
    pub margin_bits: f64,
}

impl Plan {
    /// The plan's fingerprint: FNV-1a of its canonical JSON. Batch and result files carry it,
    /// so a file made for another plan is refused before any work.
    pub fn fingerprint(&self) -> u64 {
        // Serialising plain data with string keys cannot fail; an empty buffer would still give
        // a fingerprint no real plan has.
        fnv1a(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The security level the parameters were chosen for, or `None` when the plan was compiled
    /// with insecure parameters on explicit request (or names a level that does not exist,
    /// which [`Plan::validate`] refuses).
    pub fn security(&self) -> Option<SecurityLevel> {
        SecurityLevel::from_bits(self.params.security_bits)
    }

    /// Number of raw values one input has.
    pub fn input_len(&self) -> usize {
        self.input.raw_len()
    }

    /// Number of output values (class scores) per input.
    pub fn output_len(&self) -> usize {
        self.registers
            .get(self.output.register)
            .map_or(0, |r| r.len)
    }

    /// The BFV parameters the plan implies, one set per plaintext prime (all on the same ring,
    /// so one key set serves every prime), checked against the plan's security level.
    pub fn bfv_parameters(&self) -> Result<Vec<Arc<BfvParameters>>, ParamError> {
        let p = &self.params;
        let special = *p.special_primes.first().ok_or(ParamError::NoSpecialPrime)?;
        let (&first_t, rest) = p
            .plain_primes
            .split_first()
            .ok_or(ParamError::NoPlainModulus)?;
        let builder = BfvParameters::builder()
            .degree(p.degree)
            .q_primes(p.q_primes.clone())
            .special_prime(special)
            .plain_modulus(first_t);
        let builder = match self.security() {
            Some(level) => builder.security(level),
            None => builder.allow_insecure(true),
        };
        let base = builder.build()?;
        let mut params = vec![base.clone()];
        for &t in rest {
            params.push(base.with_plain_modulus(t)?);
        }
        Ok(params)
    }

    /// Total bits of the ciphertext primes kept at `level` (the first `level` q primes).
    pub fn q_bits_at(&self, level: usize) -> u64 {
        self.params
            .q_primes
            .iter()
            .take(level)
            .map(|&q| u64::from(64 - q.leading_zeros()))
            .sum()
    }

    /// Images one ciphertext serves: n in the slot layout, n / lane packed.
    pub fn images_per_ciphertext(&self) -> usize {
        match &self.packing {
            Some(p) => p.images_per_ciphertext(self.params.degree),
            None => self.params.degree,
        }
    }

    /// Ciphertexts per plaintext prime that register `register` takes: its length in the slot
    /// layout, one packed.
    pub fn ciphertexts_of(&self, register: RegId) -> usize {
        match (&self.packing, self.registers.get(register)) {
            (_, None) => 0,
            (Some(_), Some(_)) => 1,
            (None, Some(reg)) => reg.len,
        }
    }

    /// Bytes uploaded per image: one fresh symmetric ciphertext per input ciphertext and
    /// plaintext prime, sent seeded (only `c0`, n coefficients at full level, less the low bits
    /// [`Compression::upload_bits`] rounds away), divided by the images a ciphertext serves.
    pub fn upload_bytes_per_image(&self) -> f64 {
        let values = self.ciphertexts_of(self.input.register) as f64 * self.params.degree as f64
            / self.images_per_ciphertext() as f64;
        let primes = self.params.plain_primes.len() as f64;
        let bits = coefficient_bits(&self.params.q_primes, self.compression.upload_bits);
        values * primes * f64::from(bits) / 8.0
    }

    /// Bytes downloaded per image: the output register's ciphertexts (size `ct_size`, at the
    /// register's final level, less the low bits [`Compression::download_bits`] rounds away)
    /// per plaintext prime, divided by the n images of a batch.
    pub fn download_bytes_per_image(&self) -> f64 {
        let Some(reg) = self.registers.get(self.output.register) else {
            return 0.0;
        };
        let primes = self.params.plain_primes.len() as f64;
        let q = &self.params.q_primes[..reg.level.min(self.params.q_primes.len())];
        let bits: u32 = (0..reg.ct_size)
            .map(|i| {
                coefficient_bits(
                    q,
                    self.compression.download_bits.get(i).copied().unwrap_or(0),
                )
            })
            .sum();
        let cts = self.ciphertexts_of(self.output.register) as f64 * self.params.degree as f64
            / self.images_per_ciphertext() as f64;
        cts * primes * f64::from(bits) / 8.0
    }
}

/// BFV parameters fixed by the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanParams {
    /// Ring degree n (a power of two); also the number of slots, i.e. images per batch.
    pub degree: usize,
    /// Ciphertext modulus primes, in the order they are dropped from last to first by modulus
    /// switching.
    pub q_primes: Vec<u64>,
    /// Special primes used only inside key switching (they count towards the security bound).
    pub special_primes: Vec<u64>,
    /// Plaintext primes; one run of the circuit per prime, recombined by CRT at decryption.
    pub plain_primes: Vec<u64>,
    /// The security level the parameters were chosen for (128, 192 or 256), or 0 when the
    /// user explicitly asked for insecure parameters. Read it through [`Plan::security`].
    pub security_bits: u32,
    /// The homomorphic scheme the steps run in. Absent in the file means BFV, so plans (and
    /// their fingerprints) written before BGV existed read unchanged.
    #[serde(default, skip_serializing_if = "Scheme::is_bfv")]
    pub scheme: Scheme,
}

/// The homomorphic scheme of a plan. Both compute the same integers modulo each plaintext
/// prime; they differ in where the message sits in a ciphertext and so in how noise grows and
/// what each operation costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Brakerski/Fan–Vercauteren: the message in the high bits (scaled by Q/t); products are
    /// scale-invariant.
    #[default]
    Bfv,
    /// Brakerski–Gentry–Vaikuntanathan: the message in the low bits (noise a multiple of t);
    /// ciphertexts stay in NTT form and products are pointwise.
    Bgv,
}

impl Scheme {
    /// True for [`Scheme::Bfv`] (the default, left out of serialised plans).
    pub fn is_bfv(&self) -> bool {
        *self == Scheme::Bfv
    }

    /// The scheme's lowercase name, as `--scheme` and the report spell it.
    pub const fn name(&self) -> &'static str {
        match self {
            Scheme::Bfv => "bfv",
            Scheme::Bgv => "bgv",
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;

    /// Parses `bfv` or `bgv`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Scheme::Bfv, Scheme::Bgv]
            .into_iter()
            .find(|scheme| scheme.name() == s)
            .ok_or_else(|| format!("`{s}` is not a scheme: use `bfv` or `bgv`"))
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How raw input values (e.g. pixel bytes) become plaintext integers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputEncoding {
    /// The register the encrypted inputs are loaded into.
    pub register: RegId,
    /// The model's input shape, e.g. `[1, 28, 28]`.
    pub shape: Vec<usize>,
    /// Declared range of raw values.
    pub raw_min: f64,
    /// Declared range of raw values.
    pub raw_max: f64,
    /// Integer input = round(clamp(raw, raw_min, raw_max) × scale), clamped to ±`max_abs`
    /// (see [`InputEncoding::encode`]); the resolution is `1 / scale` raw units.
    pub scale: f64,
    /// Largest |integer input|.
    pub max_abs: i64,
    /// For each value of the input register, the flattened (C, H, W order) index of the raw
    /// input it carries. Raw positions not listed never influence the output and are not sent.
    pub features: Vec<usize>,
}

/// Compiler facts about one register.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterInfo {
    /// The layer names that produced this register (fused names joined with `+`).
    pub name: String,
    /// Number of values (ciphertexts per plaintext prime).
    pub len: usize,
    /// Guaranteed bound on |value| over the declared input range, as log2 (bits).
    pub value_bits: f64,
    /// Multiplicative depth.
    pub depth: u32,
    /// Number of `q_primes` still present (modulus-switching level).
    pub level: usize,
    /// Ciphertext size (2, or 3 after an unrelinearised square).
    pub ct_size: usize,
    /// Predicted invariant noise budget in bits (minimum over plaintext primes).
    pub noise_budget_bits: f64,
    /// Bound on |value| from calibration data with its safety margin (bits), when the plan
    /// was compiled with calibration; the plaintext primes then cover this bound only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrated_value_bits: Option<f64>,
}

/// An integer matrix in compressed sparse row form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntMatrix {
    /// Number of rows (outputs).
    pub rows: usize,
    /// Number of columns (inputs).
    pub cols: usize,
    /// `row_ptr[r]..row_ptr[r + 1]` indexes the entries of row `r`; length `rows + 1`.
    pub row_ptr: Vec<usize>,
    /// Column of each entry.
    pub col_idx: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<i64>,
}

impl IntMatrix {
    /// The entries of row `r` as (column, value) pairs.
    ///
    /// # Panics
    /// When `r` is out of range or the matrix is malformed; [`Plan::validate`] rules out the
    /// latter for every matrix of a loaded plan.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, i64)> + '_ {
        let span = self.row_ptr[r]..self.row_ptr[r + 1];
        self.col_idx[span.clone()]
            .iter()
            .zip(&self.values[span])
            .map(|(&c, &v)| (c as usize, v))
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
}

/// One instruction of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// `output = matrix · concat(inputs) + bias`. The columns of `matrix` index the
    /// concatenation of the input registers in the order given. All inputs are at the same
    /// level; inputs may be of size 2 or 3 (the output has the largest size).
    Linear {
        /// Layer names fused into this map.
        name: String,
        /// Registers read, concatenated.
        inputs: Vec<RegId>,
        /// Register written.
        output: RegId,
        /// Integer weights, `rows = len(output)`, `cols = Σ len(inputs)`.
        matrix: IntMatrix,
        /// Integer bias per output (exact; reduced mod each plaintext prime when executed).
        /// In JSON, values outside the i64 range are written as decimal strings.
        #[serde(with = "wide_ints")]
        bias: Vec<i128>,
    },
    /// `output[i] = input[i]²`, without relinearisation (outputs are size 3).
    Square {
        /// Layer name.
        name: String,
        /// Register read.
        input: RegId,
        /// Register written.
        output: RegId,
    },
    /// Relinearise every ciphertext of `register` in place (size 3 → 2).
    Relinearize {
        /// Register rewritten.
        register: RegId,
    },
    /// Switch every ciphertext of `register` in place down to `level` q primes.
    ModSwitch {
        /// Register rewritten.
        register: RegId,
        /// Number of q primes kept.
        level: usize,
    },
}

/// Serde for `Vec<i128>` that JSON can carry: numbers when they fit in i64, decimal strings
/// otherwise (serde_json cannot read integers beyond 64 bits).
mod wide_ints {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wide {
        Int(i64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(values: &[i128], s: S) -> Result<S::Ok, S::Error> {
        let wide: Vec<Wide> = values
            .iter()
            .map(|&v| match i64::try_from(v) {
                Ok(small) => Wide::Int(small),
                Err(_) => Wide::Text(v.to_string()),
            })
            .collect();
        wide.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i128>, D::Error> {
        let wide = Vec::<Wide>::deserialize(d)?;
        wide.into_iter()
            .map(|w| match w {
                Wide::Int(v) => Ok(i128::from(v)),
                Wide::Text(t) => t
                    .parse::<i128>()
                    .map_err(|_| serde::de::Error::custom(format!("bias `{t}` is not an integer"))),
            })
            .collect()
    }
}

/// How the output register becomes class scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputDecoding {
    /// The register holding the scores.
    pub register: RegId,
    /// Float score = integer / scale.
    pub scale: f64,
    /// Optional class names.
    pub class_names: Vec<String>,
}
