//! [`Plan::validate`]: everything the executor relies on, checked once when a plan is loaded.

use super::{IntMatrix, Plan, Step, PLAN_FORMAT_VERSION};
use crate::bfv::{MAX_DEGREE, MIN_DEGREE};
use crate::math::is_prime;
use thiserror::Error;

/// Largest number of values in one register.
pub const MAX_REGISTER_LEN: usize = 1 << 24;

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

/// State of a register while the program is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    level: usize,
    ct_size: usize,
    depth: u32,
}

fn check_matrix(m: &IntMatrix, rows: usize, cols: usize) -> Result<(), String> {
    if m.rows != rows || m.cols != cols {
        return Err(format!(
            "matrix is {}×{} but the registers need {rows}×{cols}",
            m.rows, m.cols
        ));
    }
    if m.row_ptr.len() != rows + 1 {
        return Err(format!(
            "row_ptr has {} entries, expected {}",
            m.row_ptr.len(),
            rows + 1
        ));
    }
    if m.row_ptr.first() != Some(&0) {
        return Err("row_ptr does not start at 0".into());
    }
    if m.row_ptr.windows(2).any(|w| w[0] > w[1]) {
        return Err("row_ptr is not non-decreasing".into());
    }
    let nnz = m.row_ptr[rows];
    if m.col_idx.len() != nnz || m.values.len() != nnz {
        return Err(format!(
            "row_ptr ends at {nnz} but there are {} column indices and {} values",
            m.col_idx.len(),
            m.values.len()
        ));
    }
    if let Some(&c) = m.col_idx.iter().find(|&&c| c as usize >= cols) {
        return Err(format!("column index {c} is out of range (cols = {cols})"));
    }
    Ok(())
}

impl Plan {
    /// Checks every index, dimension, level and the step ordering, so that an executor can run
    /// the plan without further checks: registers are written once before they are read, every
    /// matrix matches the registers it connects, levels only go down, squares read relinearised
    /// ciphertexts, and the recorded register facts match a replay of the program.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.format_version != PLAN_FORMAT_VERSION {
            return Err(ValidationError::Version {
                found: self.format_version,
                expected: PLAN_FORMAT_VERSION,
            });
        }
        self.validate_params()?;
        let levels = self.params.q_primes.len();
        let nregs = self.registers.len();

        // Registers.
        for (i, reg) in self.registers.iter().enumerate() {
            let bad = |problem: String| ValidationError::Register {
                register: i,
                name: reg.name.clone(),
                problem,
            };
            if reg.len == 0 || reg.len > MAX_REGISTER_LEN {
                return Err(bad(format!(
                    "length {} is outside 1..={MAX_REGISTER_LEN}",
                    reg.len
                )));
            }
            if reg.level == 0 || reg.level > levels {
                return Err(bad(format!("level {} is outside 1..={levels}", reg.level)));
            }
            if !(2..=3).contains(&reg.ct_size) {
                return Err(bad(format!(
                    "ciphertext size {} is not 2 or 3",
                    reg.ct_size
                )));
            }
        }

        // Input.
        let input = &self.input;
        if input.register >= nregs {
            return Err(ValidationError::Input(format!(
                "register {} does not exist ({nregs} registers)",
                input.register
            )));
        }
        let raw_len = input
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&len| len > 0 && len <= MAX_REGISTER_LEN)
            .ok_or_else(|| {
                ValidationError::Input(format!("shape {:?} is empty or too large", input.shape))
            })?;
        if input.features.len() != self.registers[input.register].len {
            return Err(ValidationError::Input(format!(
                "{} features but the input register holds {} values",
                input.features.len(),
                self.registers[input.register].len
            )));
        }
        let mut seen = vec![false; raw_len];
        for &f in &input.features {
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
                        input.shape
                    )))
                }
            }
        }
        let sane = input.scale.is_finite()
            && input.scale > 0.0
            && input.raw_min.is_finite()
            && input.raw_max.is_finite()
            && input.raw_min <= input.raw_max
            && input.max_abs >= 0;
        if !sane {
            return Err(ValidationError::Input(format!(
                "scale {} and raw range [{}, {}] must be finite with min ≤ max and scale > 0",
                input.scale, input.raw_min, input.raw_max
            )));
        }

        // Replay.
        let mut state: Vec<Option<State>> = vec![None; nregs];
        state[input.register] = Some(State {
            level: levels,
            ct_size: 2,
            depth: 0,
        });
        let mut current_level = levels;
        for (s, step) in self.steps.iter().enumerate() {
            let op = match step {
                Step::Linear { .. } => "linear",
                Step::Square { .. } => "square",
                Step::Relinearize { .. } => "relinearize",
                Step::ModSwitch { .. } => "mod_switch",
            };
            let fail = |problem: String| ValidationError::Step {
                step: s,
                op,
                problem,
            };
            let read = |r: usize, state: &[Option<State>]| -> Result<State, ValidationError> {
                match state.get(r) {
                    None => Err(fail(format!(
                        "register {r} does not exist ({nregs} registers)"
                    ))),
                    Some(None) => Err(fail(format!("reads register {r} before it is written"))),
                    Some(Some(st)) => Ok(*st),
                }
            };
            let write = |r: usize, state: &[Option<State>]| -> Result<(), ValidationError> {
                match state.get(r) {
                    None => Err(fail(format!(
                        "register {r} does not exist ({nregs} registers)"
                    ))),
                    Some(Some(_)) => Err(fail(format!(
                        "writes register {r}, which is already written"
                    ))),
                    Some(None) => Ok(()),
                }
            };
            match step {
                Step::Linear {
                    inputs,
                    output,
                    matrix,
                    bias,
                    ..
                } => {
                    if inputs.is_empty() {
                        return Err(fail("reads no register".into()));
                    }
                    let mut cols = 0usize;
                    let mut level = None;
                    let mut size = 2;
                    let mut depth = 0;
                    for &r in inputs {
                        let st = read(r, &state)?;
                        if *level.get_or_insert(st.level) != st.level {
                            return Err(fail(format!(
                                "inputs are at different levels ({} and {})",
                                level.unwrap_or(0),
                                st.level
                            )));
                        }
                        size = size.max(st.ct_size);
                        depth = depth.max(st.depth);
                        cols += self.registers[r].len;
                    }
                    write(*output, &state)?;
                    let rows = self.registers[*output].len;
                    check_matrix(matrix, rows, cols).map_err(fail)?;
                    if bias.len() != rows {
                        return Err(fail(format!(
                            "bias has {} entries, expected {rows}",
                            bias.len()
                        )));
                    }
                    let level = level.unwrap_or(levels);
                    state[*output] = Some(State {
                        level,
                        ct_size: size,
                        depth,
                    });
                }
                Step::Square { input, output, .. } => {
                    let st = read(*input, &state)?;
                    if st.ct_size != 2 {
                        return Err(fail(format!(
                            "squares register {input}, which has size {} (relinearise first)",
                            st.ct_size
                        )));
                    }
                    write(*output, &state)?;
                    if self.registers[*output].len != self.registers[*input].len {
                        return Err(fail(format!(
                            "register {output} has {} values but register {input} has {}",
                            self.registers[*output].len, self.registers[*input].len
                        )));
                    }
                    state[*output] = Some(State {
                        level: st.level,
                        ct_size: 3,
                        depth: st.depth + 1,
                    });
                }
                Step::Relinearize { register } => {
                    let st = read(*register, &state)?;
                    if st.ct_size != 3 {
                        return Err(fail(format!(
                            "register {register} has size {}, not 3",
                            st.ct_size
                        )));
                    }
                    state[*register] = Some(State { ct_size: 2, ..st });
                }
                Step::ModSwitch { register, level } => {
                    let st = read(*register, &state)?;
                    if !(2..=3).contains(&st.ct_size) {
                        return Err(fail(format!(
                            "register {register} has size {}; only sizes 2 and 3 can be switched",
                            st.ct_size
                        )));
                    }
                    if *level == 0 || *level >= st.level {
                        return Err(fail(format!(
                            "target level {level} must be in 1..{} (the register's level)",
                            st.level
                        )));
                    }
                    if *level > current_level {
                        return Err(fail(format!(
                            "target level {level} is above an earlier switch to {current_level}; levels only go down"
                        )));
                    }
                    current_level = *level;
                    state[*register] = Some(State {
                        level: *level,
                        ..st
                    });
                }
            }
        }

        // Recorded facts match the replay.
        let mut max_depth = 0;
        for (i, reg) in self.registers.iter().enumerate() {
            let Some(st) = state[i] else {
                return Err(ValidationError::Register {
                    register: i,
                    name: reg.name.clone(),
                    problem: "is never written".into(),
                });
            };
            if (st.level, st.ct_size, st.depth) != (reg.level, reg.ct_size, reg.depth) {
                return Err(ValidationError::Register {
                    register: i,
                    name: reg.name.clone(),
                    problem: format!(
                        "records level {}, size {}, depth {} but the program leaves it at level {}, size {}, depth {}",
                        reg.level, reg.ct_size, reg.depth, st.level, st.ct_size, st.depth
                    ),
                });
            }
            max_depth = max_depth.max(st.depth);
        }
        if self.depth != max_depth {
            return Err(ValidationError::Params(format!(
                "depth {} recorded but the program has depth {max_depth}",
                self.depth
            )));
        }
        if self.output.register >= nregs {
            return Err(ValidationError::Output(format!(
                "register {} does not exist ({nregs} registers)",
                self.output.register
            )));
        }
        if !(self.output.scale.is_finite() && self.output.scale > 0.0) {
            return Err(ValidationError::Output(format!(
                "scale {} is not a positive number",
                self.output.scale
            )));
        }
        let out_len = self.registers[self.output.register].len;
        if !self.output.class_names.is_empty() && self.output.class_names.len() != out_len {
            return Err(ValidationError::Output(format!(
                "{} class names for {out_len} outputs",
                self.output.class_names.len()
            )));
        }
        Ok(())
    }

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
                if q >= 1 << 62 || !is_prime(q) {
                    return bad(format!("{kind} modulus {q} is not a prime below 2^62"));
                }
                if all.contains(&q) {
                    return bad(format!("prime {q} is listed twice"));
                }
                all.push(q);
            }
        }
        if !matches!(p.security_bits, 0 | 128 | 192 | 256) {
            return bad(format!(
                "security level {} is not 0, 128, 192 or 256",
                p.security_bits
            ));
        }
        Ok(())
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
            noise_budget_bits: 50.0,
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
            predicted_noise_budget_bits: 50.0,
            calibration: None,
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
}
