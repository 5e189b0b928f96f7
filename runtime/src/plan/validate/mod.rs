//! [`Plan::validate`]: everything the executor and the client rely on, checked once when a plan
//! is loaded, so neither needs defensive code of its own.
//!
//! Each part of the plan has its own check, run in the order a reader meets them in the file:
//! the header and parameters, the register table, the input encoding, the program (replayed in
//! [`replay`]), the output decoding, and last the compiler's numeric facts (value bounds and
//! noise budgets), which the client trusts when it decides whether a decrypted result is
//! plausible.

mod replay;

use super::{Plan, RegisterInfo, PLAN_FORMAT_VERSION};
use crate::bfv::{MAX_DEGREE, MIN_DEGREE};
use crate::math::{is_prime, MAX_PRIME_BITS};
use replay::Replay;
use thiserror::Error;

/// Largest number of values in one register.
pub const MAX_REGISTER_LEN: usize = 1 << 24;

/// Largest `value_bits` (log2 of a value bound) a register may record. The compiler computes
/// bounds in `f64`, whose finite values stay below 2^1024.
pub const MAX_VALUE_BITS: f64 = 1024.0;

/// Slack, in bits, allowed when a recorded value bound is compared with the plaintext modulus:
/// the compiler rounds `log2` up by 10^-9 before writing it.
const BOUND_SLACK_BITS: f64 = 1e-6;

/// What is wrong with a plan.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ValidationError {
    /// The format version is not the one this crate reads.
    #[error("format version {found}, expected {expected}")]
    Version {
        /// Version in the plan.
        found: u32,
        /// Version this crate reads.
        expected: u32,
    },
    /// The encryption parameters are inconsistent.
    #[error("parameters: {0}")]
    Params(String),
    /// The input encoding is inconsistent.
    #[error("input encoding: {0}")]
    Input(String),
    /// The packed layout is inconsistent with the program.
    #[error("packed layout: {0}")]
    Packing(String),
    /// A register's facts are inconsistent.
    #[error("register {register} (`{name}`): {problem}")]
    Register {
        /// Register index.
        register: usize,
        /// Register name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A step is inconsistent with the registers or the steps before it.
    #[error("step {step} ({op}): {problem}")]
    Step {
        /// Step index.
        step: usize,
        /// Step kind.
        op: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The output decoding is inconsistent.
    #[error("output decoding: {0}")]
    Output(String),
}

impl Plan {
    /// Checks every index, dimension, level and the step ordering, so that an executor can run
    /// the plan without further checks: registers are written once before they are read, every
    /// matrix matches the registers it connects, levels only go down, squares read relinearised
    /// ciphertexts, and the recorded register facts match a replay of the program. The value
    /// bounds must be finite and fit the plaintext modulus (the client refuses decrypted scores
    /// beyond them), and the predicted noise budgets must lie between 0 and the bits of the
    /// register's modulus.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_version()?;
        self.validate_params()?;
        self.validate_register_table()?;
        self.validate_input()?;
        Replay::new(self).run()?;
        self.validate_output()?;
        self.validate_value_bounds()?;
        self.validate_noise_budgets()?;
        self.validate_compression()?;
        if let Some(packing) = &self.packing {
            packing.validate(self).map_err(ValidationError::Packing)?;
        }
        Ok(())
    }

    /// The low bits rounded away on the wire: one count per component of the output (or
    /// none), and no count so large that its rounding alone, 2^(k−1), could reach `Q/(2t)`
    /// (half a plaintext step), past which no decryption is exact. The rule is the same for
    /// both schemes: a BGV component travels as BFV's rounding of `t⁻¹·c`, so its rounding
    /// moves the phase by `t·2^(k−1)`, which must stay below `Q/2`. The compiler's choice is
    /// far stricter; this check catches a plan edited by hand or damaged.
    fn validate_compression(&self) -> Result<(), ValidationError> {
        let c = &self.compression;
        let bad = |m: String| Err(ValidationError::Params(format!("compression: {m}")));
        let t_bits = self
            .params
            .plain_primes
            .iter()
            .map(|t| 64 - t.leading_zeros())
            .max()
            .unwrap_or(0);
        let fits = |k: u32, level: usize| {
            let q_bits = crate::bfv::modulus_bits(&self.params.q_primes[..level]);
            k == 0 || k + t_bits < q_bits
        };
        let top = self.params.q_primes.len();
        if !fits(c.upload_bits, top) {
            return bad(format!(
                "uploads round away {} low bits, too many for a modulus of {} bits and \
                 plaintext primes of {t_bits} bits: decryption could not be exact",
                c.upload_bits,
                crate::bfv::modulus_bits(&self.params.q_primes)
            ));
        }
        let Some(out) = self.registers.get(self.output.register) else {
            return Ok(());
        };
        if !c.download_bits.is_empty() && c.download_bits.len() != out.ct_size {
            return bad(format!(
                "{} download counts for output ciphertexts of {} components",
                c.download_bits.len(),
                out.ct_size
            ));
        }
        if let Some(&k) = c.download_bits.iter().find(|&&k| !fits(k, out.level)) {
            return bad(format!(
                "results round away {k} low bits, too many for a modulus of {} bits at level \
                 {} and plaintext primes of {t_bits} bits: decryption could not be exact",
                crate::bfv::modulus_bits(&self.params.q_primes[..out.level]),
                out.level
            ));
        }
        Ok(())
    }

    fn validate_version(&self) -> Result<(), ValidationError> {
        if self.format_version == PLAN_FORMAT_VERSION {
            return Ok(());
        }
        Err(ValidationError::Version {
            found: self.format_version,
            expected: PLAN_FORMAT_VERSION,
        })
    }

    /// The ring degree, the primes (prime, of at most [`MAX_PRIME_BITS`] bits as the scheme
    /// needs, none listed twice), a plaintext modulus narrow enough for exact recombination
    /// ([`super::MAX_PLAIN_MODULUS_BITS`]) and the security level: a plan that validates also builds
    /// and decrypts.
    fn validate_params(&self) -> Result<(), ValidationError> {
        let p = &self.params;
        let bad = |m: String| Err(ValidationError::Params(m));
        if !p.degree.is_power_of_two() || !(MIN_DEGREE..=MAX_DEGREE).contains(&p.degree) {
            return bad(format!(
                "degree {} is not a power of two in {MIN_DEGREE}..={MAX_DEGREE}",
                p.degree
            ));
        }
        if p.q_primes.is_empty() {
            return bad("no ciphertext primes".into());
        }
        if p.plain_primes.is_empty() {
            return bad("no plaintext primes".into());
        }
        let mut all: Vec<u64> = Vec::new();
        for (kind, list) in [
            ("ciphertext", &p.q_primes),
            ("special", &p.special_primes),
            ("plaintext", &p.plain_primes),
        ] {
            for &q in list.iter() {
                if q >> MAX_PRIME_BITS != 0 || !is_prime(q) {
                    return bad(format!(
                        "{kind} modulus {q} is not a prime of at most {MAX_PRIME_BITS} bits"
                    ));
                }
                if all.contains(&q) {
                    return bad(format!("prime {q} is listed twice"));
                }
                all.push(q);
            }
        }
        if super::plain_modulus(&p.plain_primes).is_none() {
            return bad(format!(
                "the plaintext primes multiply to 2^{} or more, beyond exact recombination",
                super::MAX_PLAIN_MODULUS_BITS
            ));
        }
        if !matches!(p.security_bits, 0 | 128 | 192 | 256) {
            return bad(format!(
                "security level {} is not 0, 128, 192 or 256",
                p.security_bits
            ));
        }
        Ok(())
    }

    /// Every register's length, level and ciphertext size are in range.
    fn validate_register_table(&self) -> Result<(), ValidationError> {
        let levels = self.params.q_primes.len();
        for (i, reg) in self.registers.iter().enumerate() {
            let problem = if reg.len == 0 || reg.len > MAX_REGISTER_LEN {
                format!("length {} is outside 1..={MAX_REGISTER_LEN}", reg.len)
            } else if reg.level == 0 || reg.level > levels {
                format!("level {} is outside 1..={levels}", reg.level)
            } else if !(2..=3).contains(&reg.ct_size) {
                format!("ciphertext size {} is not 2 or 3", reg.ct_size)
            } else {
                continue;
            };
            return Err(self.register_error(i, problem));
        }
        Ok(())
    }

    fn register_error(&self, register: usize, problem: String) -> ValidationError {
        ValidationError::Register {
            register,
            name: self
                .registers
                .get(register)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            problem,
        }
    }

    /// The input register exists and holds one value per feature; the features are distinct
    /// positions of the input shape; the encoding's numbers are usable.
    fn validate_input(&self) -> Result<(), ValidationError> {
        let input = &self.input;
        let bad = |m: String| ValidationError::Input(m);
        let nregs = self.registers.len();
        let register = self.registers.get(input.register).ok_or_else(|| {
            bad(format!(
                "register {} does not exist ({nregs} registers)",
                input.register
            ))
        })?;
        let raw_len = input
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&len| len > 0 && len <= MAX_REGISTER_LEN)
            .ok_or_else(|| bad(format!("shape {:?} is empty or too large", input.shape)))?;
        if input.features.len() != register.len {
            return Err(bad(format!(
                "{} features but the input register holds {} values",
                input.features.len(),
                register.len
            )));
        }
        self.validate_features(raw_len)?;
        self.validate_input_numbers()
    }

    /// Every feature is a position inside the input shape, listed once.
    fn validate_features(&self, raw_len: usize) -> Result<(), ValidationError> {
        let mut seen = vec![false; raw_len];
        for &f in &self.input.features {
            match seen.get_mut(f) {
                Some(s) if !*s => *s = true,
                Some(_) => {
                    return Err(ValidationError::Input(format!(
                        "feature {f} is listed twice"
                    )))
                }
                None => {
                    return Err(ValidationError::Input(format!(
                        "feature {f} is outside the input shape {:?}",
                        self.input.shape
                    )))
                }
            }
        }
        Ok(())
    }

    /// The scale is positive and finite, the raw range finite with min ≤ max, and the integer
    /// bound not negative.
    fn validate_input_numbers(&self) -> Result<(), ValidationError> {
        let input = &self.input;
        let sane = input.scale.is_finite()
            && input.scale > 0.0
            && input.raw_min.is_finite()
            && input.raw_max.is_finite()
            && input.raw_min <= input.raw_max
            && input.max_abs >= 0;
        if sane {
            return Ok(());
        }
        Err(ValidationError::Input(format!(
            "scale {} and raw range [{}, {}] must be finite with min ≤ max and scale > 0",
            input.scale, input.raw_min, input.raw_max
        )))
    }

    /// The output register exists, its scale is a positive number, and there is one class name
    /// per output (or none).
    fn validate_output(&self) -> Result<(), ValidationError> {
        let bad = |m: String| Err(ValidationError::Output(m));
        let Some(register) = self.registers.get(self.output.register) else {
            return bad(format!(
                "register {} does not exist ({} registers)",
                self.output.register,
                self.registers.len()
            ));
        };
        if !(self.output.scale.is_finite() && self.output.scale > 0.0) {
            return bad(format!(
                "scale {} is not a positive number",
                self.output.scale
            ));
        }
        let names = self.output.class_names.len();
        if names != 0 && names != register.len {
            return bad(format!("{names} class names for {} outputs", register.len));
        }
        Ok(())
    }

    /// Every register's value bound is usable (see [`check_value_bound`]). The client refuses
    /// decrypted scores beyond the output's bound; a bound at or beyond half the plaintext
    /// modulus would let every result through, a wrong key's included.
    fn validate_value_bounds(&self) -> Result<(), ValidationError> {
        let plain_bits: f64 = self
            .params
            .plain_primes
            .iter()
            .map(|&t| (t as f64).log2())
            .sum();
        for (i, reg) in self.registers.iter().enumerate() {
            check_value_bound(reg, plain_bits).map_err(|p| self.register_error(i, p))?;
        }
        Ok(())
    }

    /// Every register's predicted noise budget, and the plan's predicted output budget, lie in
    /// `0..=log2 Q` of the register's level: a budget can be no larger than the modulus, and
    /// the compiler never emits a plan it predicts to fail.
    fn validate_noise_budgets(&self) -> Result<(), ValidationError> {
        for (i, reg) in self.registers.iter().enumerate() {
            let max = self.q_bits_at(reg.level) as f64;
            check_bits("noise_budget_bits", reg.noise_budget_bits, max)
                .map_err(|p| self.register_error(i, p))?;
        }
        let output_level = self
            .registers
            .get(self.output.register)
            .map_or(0, |r| r.level);
        let max = self.q_bits_at(output_level) as f64;
        check_bits(
            "predicted_noise_budget_bits",
            self.predicted_noise_budget_bits,
            max,
        )
        .map_err(ValidationError::Output)
    }
}

/// `value_bits` (and `calibrated_value_bits` when present) is a finite number of bits in
/// `0..=MAX_VALUE_BITS`, the calibrated bound is not above the guaranteed one, and the bound the
/// plaintext primes were chosen for (the calibrated one when present) fits them:
/// `2^(bits + 1) ≤ Π t_i`, i.e. `bits + 1 ≤ plain_bits`.
fn check_value_bound(reg: &RegisterInfo, plain_bits: f64) -> Result<(), String> {
    check_bits("value_bits", reg.value_bits, MAX_VALUE_BITS)?;
    if let Some(calibrated) = reg.calibrated_value_bits {
        check_bits("calibrated_value_bits", calibrated, MAX_VALUE_BITS)?;
        if calibrated > reg.value_bits + BOUND_SLACK_BITS {
            return Err(format!(
                "calibrated_value_bits {} is above value_bits {}",
                show_bits(calibrated),
                show_bits(reg.value_bits)
            ));
        }
    }
    let covered = reg.calibrated_value_bits.unwrap_or(reg.value_bits);
    if covered + 1.0 > plain_bits + BOUND_SLACK_BITS {
        return Err(format!(
            "values up to 2^{} need {} bits of plaintext modulus but the plaintext primes give {}",
            show_bits(covered),
            show_bits(covered + 1.0),
            show_bits(plain_bits)
        ));
    }
    Ok(())
}

/// A number of bits that must be finite and in `0..=max`.
fn check_bits(field: &str, bits: f64, max: f64) -> Result<(), String> {
    if bits.is_finite() && (0.0..=max).contains(&bits) {
        return Ok(());
    }
    Err(format!(
        "{field} {} is outside 0..={}",
        show_bits(bits),
        show_bits(max)
    ))
}

/// A bit count for a message: up to three decimals, exponent form when huge.
fn show_bits(bits: f64) -> String {
    if bits.abs() < 1e6 {
        let text = format!("{bits:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{bits:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    /// A tiny valid plan: input (2 values) → linear → square → relinearise → linear.
    pub(crate) fn tiny_plan() -> Plan {
        let reg = |name: &str, len, level, ct_size, depth| RegisterInfo {
            name: name.into(),
            len,
            value_bits: 8.0,
            depth,
            level,
            ct_size,
            noise_budget_bits: 30.0,
            calibrated_value_bits: None,
        };
        let primes = crate::math::ntt_primes(40, 1024, 3, &[]).unwrap();
        let t = crate::math::ntt_primes(20, 1024, 1, &[]).unwrap();
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            model: "tiny".into(),
            params: PlanParams {
                degree: 1024,
                q_primes: primes[..2].to_vec(),
                special_primes: vec![primes[2]],
                plain_primes: t,
                security_bits: 0,
                scheme: Default::default(),
            },
            input: InputEncoding {
                register: 0,
                shape: vec![3],
                raw_min: 0.0,
                raw_max: 1.0,
                scale: 255.0,
                max_abs: 255,
                features: vec![0, 2],
            },
            registers: vec![
                reg("input", 2, 2, 2, 0),
                reg("l1", 2, 2, 2, 0),
                reg("sq", 2, 1, 2, 1),
                reg("l2", 1, 1, 2, 1),
            ],
            steps: vec![
                Step::Linear {
                    name: "l1".into(),
                    inputs: vec![0],
                    output: 1,
                    matrix: IntMatrix {
                        rows: 2,
                        cols: 2,
                        row_ptr: vec![0, 2, 3],
                        col_idx: vec![0, 1, 1],
                        values: vec![3, -4, 5],
                    },
                    bias: vec![1, -1],
                },
                Step::Square {
                    name: "sq".into(),
                    input: 1,
                    output: 2,
                },
                Step::Relinearize { register: 2 },
                Step::ModSwitch {
                    register: 2,
                    level: 1,
                },
                Step::Linear {
                    name: "l2".into(),
                    inputs: vec![2],
                    output: 3,
                    matrix: IntMatrix {
                        rows: 1,
                        cols: 2,
                        row_ptr: vec![0, 2],
                        col_idx: vec![0, 1],
                        values: vec![1, 1],
                    },
                    bias: vec![i128::from(i64::MAX) * 4],
                },
            ],
            output: OutputDecoding {
                register: 3,
                scale: 2.0,
                class_names: vec![],
            },
            depth: 1,
            predicted_noise_budget_bits: 30.0,
            compression: Default::default(),
            calibration: None,
            packing: None,
        }
    }

    #[test]
    fn tiny_plan_is_valid_and_round_trips() {
        let plan = tiny_plan();
        plan.validate().unwrap();
        let bytes = plan.to_bytes().unwrap();
        assert_eq!(Plan::from_bytes(&bytes).unwrap(), plan);
        assert_eq!(Plan::from_json(&plan.to_json().unwrap()).unwrap(), plan);
    }

    #[test]
    fn files_round_trip_in_both_encodings() {
        let dir = std::env::temp_dir().join(format!("veil-plan-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plan = tiny_plan();
        for name in ["p.plan", "p.json"] {
            let path = dir.join(name);
            plan.write_file(&path).unwrap();
            assert_eq!(Plan::read_file(&path).unwrap(), plan);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_binary_plans_are_clear_errors() {
        let bytes = tiny_plan().to_bytes().unwrap();
        for cut in [0, 5, 10, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = Plan::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    PlanError::BadMagic | PlanError::Truncated { .. } | PlanError::Json { .. }
                ),
                "cut at {cut}: {err}"
            );
        }
        let mut wrong_version = bytes.clone();
        wrong_version[8] = 99;
        assert_eq!(
            Plan::from_bytes(&wrong_version).unwrap_err().to_string(),
            "plan format version 99 is not supported (this build reads version 1); recompile the model"
        );
        let mut flipped = bytes.clone();
        let last_blob_byte = bytes.len() - 9;
        flipped[last_blob_byte] ^= 1;
        assert!(matches!(
            Plan::from_bytes(&flipped),
            Err(PlanError::Checksum { .. })
        ));
        assert!(matches!(
            Plan::from_bytes(b"not a plan"),
            Err(PlanError::BadMagic)
        ));
        // Every single-byte corruption is an error or (header whitespace aside) the same plan; never a panic.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] = b[i].wrapping_add(0x55);
            let _ = Plan::from_bytes(&b);
        }
    }

    #[test]
    fn inconsistent_plans_are_rejected() {
        let mut p = tiny_plan();
        if let Step::Linear { matrix, .. } = &mut p.steps[0] {
            matrix.col_idx[0] = 7;
        }
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("column index 7"));

        let mut p = tiny_plan();
        p.steps.swap(0, 1);
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("before it is written"));

        // Without its relinearisation the square's register ends as size 3, not the size 2
        // its facts claim (switching a size-3 register is fine in itself).
        let mut p = tiny_plan();
        p.steps.remove(2);
        let text = p.validate().unwrap_err().to_string();
        assert!(text.contains("size 3"), "{text}");

        let mut p = tiny_plan();
        p.registers[2].level = 2;
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("program leaves it at level 1"));

        let mut p = tiny_plan();
        p.input.features = vec![0, 3];
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("outside the input shape"));

        let mut p = tiny_plan();
        p.params.plain_primes = vec![12];
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not a prime"));
    }

    /// The message `validate` gives for a tiny plan changed by `change`.
    fn error_after(change: impl FnOnce(&mut Plan)) -> String {
        let mut p = tiny_plan();
        change(&mut p);
        p.validate().unwrap_err().to_string()
    }

    #[test]
    fn value_bounds_must_be_finite_bit_counts() {
        assert_eq!(
            error_after(|p| p.registers[3].value_bits = 1e308),
            "register 3 (`l2`): value_bits 1e308 is outside 0..=1024"
        );
        assert_eq!(
            error_after(|p| p.registers[1].value_bits = f64::NAN),
            "register 1 (`l1`): value_bits NaN is outside 0..=1024"
        );
        assert_eq!(
            error_after(|p| p.registers[0].value_bits = -0.5),
            "register 0 (`input`): value_bits -0.5 is outside 0..=1024"
        );
    }

    /// Issue 12: a plan whose plaintext primes multiply past 2^127 could not be decrypted
    /// exactly, and a prime the scheme cannot build is refused before keys are made.
    #[test]
    fn plaintext_moduli_must_recombine_and_primes_must_build() {
        let wide = crate::math::ntt_primes(60, 1024, 3, &[]).unwrap();
        assert_eq!(
            error_after(|p| p.params.plain_primes = wide),
            "parameters: the plaintext primes multiply to 2^127 or more, beyond exact recombination"
        );
        let q62 = (1u64 << 62) - 57;
        assert!(crate::math::is_prime(q62));
        assert_eq!(
            error_after(|p| p.params.q_primes[0] = q62),
            format!("parameters: ciphertext modulus {q62} is not a prime of at most 61 bits")
        );
    }

    #[test]
    fn value_bounds_must_fit_the_plaintext_modulus() {
        // The tiny plan's one plaintext prime has 19.986 bits: a bound of 2^18.9 leaves room
        // for the sign, 2^19.5 does not.
        let mut p = tiny_plan();
        p.registers[3].value_bits = 18.9;
        p.validate().unwrap();
        assert_eq!(
            error_after(|p| p.registers[3].value_bits = 19.5),
            "register 3 (`l2`): values up to 2^19.5 need 20.5 bits of plaintext modulus but the plaintext primes give 19.986"
        );
    }

    #[test]
    fn calibrated_bounds_are_checked_against_the_guaranteed_ones() {
        // With calibration the plaintext primes cover the calibrated bound only, so the
        // guaranteed bound may exceed them.
        let mut p = tiny_plan();
        p.registers[3].value_bits = 300.0;
        p.registers[3].calibrated_value_bits = Some(12.0);
        p.validate().unwrap();
        assert_eq!(
            error_after(|p| p.registers[2].calibrated_value_bits = Some(9.0)),
            "register 2 (`sq`): calibrated_value_bits 9 is above value_bits 8"
        );
        assert_eq!(
            error_after(|p| p.registers[2].calibrated_value_bits = Some(f64::INFINITY)),
            "register 2 (`sq`): calibrated_value_bits inf is outside 0..=1024"
        );
    }

    #[test]
    fn noise_budgets_lie_between_zero_and_the_modulus() {
        // Registers `sq` and `l2` end at level 1: one 40-bit prime.
        assert_eq!(
            error_after(|p| p.registers[3].noise_budget_bits = 41.0),
            "register 3 (`l2`): noise_budget_bits 41 is outside 0..=40"
        );
        assert_eq!(
            error_after(|p| p.registers[0].noise_budget_bits = -1.0),
            "register 0 (`input`): noise_budget_bits -1 is outside 0..=80"
        );
        assert_eq!(
            error_after(|p| p.predicted_noise_budget_bits = f64::NAN),
            "output decoding: predicted_noise_budget_bits NaN is outside 0..=40"
        );
    }
}
