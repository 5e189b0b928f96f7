//! The register machine that walks a plan's steps.

use super::{Backend, ExecError};
use crate::plan::{Plan, RegId, Step};
use std::time::{Duration, Instant};

/// Receives progress reports while a plan runs (the CLI draws progress bars from them).
pub trait Progress: Sync {
    /// Step `index` of `total` starts; it produces `outputs` values.
    fn step_started(&self, _index: usize, _total: usize, _label: &str, _outputs: usize) {}
    /// Step `index` finished after `elapsed`.
    fn step_finished(&self, _index: usize, _label: &str, _elapsed: Duration) {}
}

/// A [`Progress`] that ignores every report.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A short human label for a step: its kind and layer name.
pub fn step_label(step: &Step) -> String {
    match step {
        Step::Linear { name, .. } => format!("linear {name}"),
        Step::Square { name, .. } => format!("square {name}"),
        Step::Relinearize { register } => format!("relinearise r{register}"),
        Step::ModSwitch { register, level } => format!("mod-switch r{register} → {level}"),
    }
}

fn step_reads(step: &Step) -> Vec<RegId> {
    match step {
        Step::Linear { inputs, .. } => inputs.clone(),
        Step::Square { input, .. } => vec![*input],
        Step::Relinearize { register } | Step::ModSwitch { register, .. } => vec![*register],
    }
}

/// For every register, the index of the last step that reads it (`None` if never read).
fn last_reads(plan: &Plan) -> Vec<Option<usize>> {
    let mut last = vec![None; plan.registers.len()];
    for (index, step) in plan.steps.iter().enumerate() {
        for reg in step_reads(step) {
            if let Some(slot) = last.get_mut(reg) {
                *slot = Some(index);
            }
        }
    }
    last
}

/// Runs `plan` with `backend`, starting from `inputs` (the values of the input register), and
/// returns the values of the output register. Registers are freed after their last reader.
pub fn run_plan<B: Backend>(
    plan: &Plan,
    backend: &B,
    inputs: Vec<B::Value>,
    progress: &dyn Progress,
) -> Result<Vec<B::Value>, ExecError> {
    let output_reg = plan.output.register;
    let mut registers = run_steps(plan, backend, inputs, progress, Retention::FreeDead)?;
    registers
        .get_mut(output_reg)
        .and_then(Option::take)
        .ok_or(ExecError::MissingRegister {
            step: plan.steps.len(),
            name: "output".to_string(),
            register: output_reg,
        })
}

/// Runs `plan` like [`run_plan`] but keeps every register: entry `r` holds register `r`'s
/// values at the end of the program (`None` for a register no step wrote). The compiler uses
/// this with [`crate::exec::ExactBackend`] to check every register against its bound.
pub fn run_plan_keeping_registers<B: Backend>(
    plan: &Plan,
    backend: &B,
    inputs: Vec<B::Value>,
) -> Result<Vec<Option<Vec<B::Value>>>, ExecError> {
    run_steps(plan, backend, inputs, &NoProgress, Retention::KeepAll)
}

/// Whether the engine frees a register after its last reader.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retention {
    FreeDead,
    KeepAll,
}

/// The register file: `None` for a register not written yet or already freed.
type Registers<V> = Vec<Option<Vec<V>>>;

fn run_steps<B: Backend>(
    plan: &Plan,
    backend: &B,
    inputs: Vec<B::Value>,
    progress: &dyn Progress,
    retention: Retention,
) -> Result<Registers<B::Value>, ExecError> {
    let input_reg = plan.input.register;
    let expected = plan
        .registers
        .get(input_reg)
        .map_or(0, |r| backend.register_values(r.len));
    if inputs.len() != expected {
        return Err(ExecError::InputCount {
            expected,
            found: inputs.len(),
        });
    }
    let mut registers: Registers<B::Value> = (0..plan.registers.len()).map(|_| None).collect();
    registers[input_reg] = Some(inputs);
    let last = last_reads(plan);
    let output_reg = plan.output.register;
    let total = plan.steps.len();
    let mut linear_index = 0;
    let mut index = 0;
    while let Some(step) = plan.steps.get(index) {
        let fusable = retention == Retention::FreeDead
            && backend.fuses_squares()
            && square_feeds_next(plan, &last, index);
        let started = Instant::now();
        let mut ran = 0;
        let mut label = String::new();
        if let (true, Some(next)) = (fusable, plan.steps.get(index + 1)) {
            label = format!("{} + {}", step_label(step), step_label(next));
            let at = StepAt {
                index,
                total,
                label: &label,
                progress,
                linear_index,
            };
            if run_square_linear(step, next, backend, &mut registers, &at)? {
                ran = 2;
            }
        }
        if ran == 0 {
            label = step_label(step);
            let at = StepAt {
                index,
                total,
                label: &label,
                progress,
                linear_index,
            };
            run_step(step, backend, &mut registers, &at)?;
            ran = 1;
        }
        for (offset, done) in plan.steps[index..index + ran].iter().enumerate() {
            linear_index += usize::from(matches!(done, Step::Linear { .. }));
            if retention == Retention::FreeDead {
                for reg in step_reads(done) {
                    if last[reg] == Some(index + offset) && reg != output_reg {
                        registers[reg] = None;
                    }
                }
            }
        }
        progress.step_finished(index, &label, started.elapsed());
        if ran == 2 {
            // The linear map ran inside the square's step: it finishes too, unlabelled and
            // without time of its own, so that progress counts every step of the plan.
            progress.step_finished(index + 1, "", Duration::ZERO);
        }
        index += ran;
    }
    Ok(registers)
}

/// Whether step `index` squares a register that only the next step, a linear map reading
/// nothing else, uses: then a backend may compute the map on the squares without storing
/// them ([`Backend::square_linear_step`]).
fn square_feeds_next(plan: &Plan, last: &[Option<usize>], index: usize) -> bool {
    let (Some(Step::Square { output, .. }), Some(Step::Linear { inputs, .. })) =
        (plan.steps.get(index), plan.steps.get(index + 1))
    else {
        return false;
    };
    inputs.as_slice() == [*output]
        && *output != plan.output.register
        && last.get(*output).copied().flatten() == Some(index + 1)
}

/// Runs a square and the linear map that reads only its output as one backend call, if the
/// backend offers one (`Ok(false)`: it does not, nothing ran).
fn run_square_linear<B: Backend>(
    square: &Step,
    linear: &Step,
    backend: &B,
    registers: &mut Registers<B::Value>,
    at: &StepAt<'_>,
) -> Result<bool, ExecError> {
    let (
        Step::Square { input, .. },
        Step::Linear {
            output,
            matrix,
            bias,
            ..
        },
    ) = (square, linear)
    else {
        return Ok(false);
    };
    let values = registers
        .get(*input)
        .and_then(Option::as_ref)
        .ok_or_else(|| at.missing(*input))?;
    let refs: Vec<&B::Value> = values.iter().collect();
    at.started(matrix.rows);
    let Some(result) = backend.square_linear_step(at.linear_index, &refs, matrix, bias) else {
        return Ok(false);
    };
    let out = result.map_err(|e| at.with_context(e))?;
    registers[*output] = Some(out);
    Ok(true)
}

/// Where a step sits in the program, for progress reports and error context.
struct StepAt<'a> {
    index: usize,
    /// How many `Linear` steps come before this one.
    linear_index: usize,
    total: usize,
    label: &'a str,
    progress: &'a dyn Progress,
}

impl StepAt<'_> {
    fn started(&self, outputs: usize) {
        self.progress
            .step_started(self.index, self.total, self.label, outputs);
    }

    fn missing(&self, register: RegId) -> ExecError {
        ExecError::MissingRegister {
            step: self.index,
            name: self.label.to_owned(),
            register,
        }
    }

    fn with_context(&self, err: ExecError) -> ExecError {
        match err {
            ExecError::Backend(source) => ExecError::Operation {
                step: self.index,
                name: self.label.to_owned(),
                source,
            },
            other => other,
        }
    }
}

fn run_step<B: Backend>(
    step: &Step,
    backend: &B,
    registers: &mut Registers<B::Value>,
    at: &StepAt<'_>,
) -> Result<(), ExecError> {
    match step {
        Step::Linear {
            inputs,
            output,
            matrix,
            bias,
            ..
        } => {
            at.started(matrix.rows);
            let mut refs = Vec::with_capacity(matrix.cols);
            for &reg in inputs {
                let values = registers
                    .get(reg)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| at.missing(reg))?;
                refs.extend(values.iter());
            }
            let out = backend
                .linear_step(at.linear_index, &refs, matrix, bias)
                .map_err(|e| at.with_context(e))?;
            drop(refs);
            registers[*output] = Some(out);
        }
        Step::Square { input, output, .. } => {
            let values = registers
                .get(*input)
                .and_then(Option::as_ref)
                .ok_or_else(|| at.missing(*input))?;
            at.started(values.len());
            let out = par_map_ref(values, |v| backend.square(v)).map_err(|e| at.with_context(e))?;
            registers[*output] = Some(out);
        }
        Step::Relinearize { register } => {
            let values = take(registers, *register).ok_or_else(|| at.missing(*register))?;
            at.started(values.len());
            let out = par_map_owned(values, |v| backend.relinearize(v))
                .map_err(|e| at.with_context(e))?;
            registers[*register] = Some(out);
        }
        Step::ModSwitch { register, level } => {
            let values = take(registers, *register).ok_or_else(|| at.missing(*register))?;
            at.started(values.len());
            let out = par_map_owned(values, |v| backend.mod_switch(v, *level))
                .map_err(|e| at.with_context(e))?;
            registers[*register] = Some(out);
        }
    }
    Ok(())
}

fn take<V>(registers: &mut Registers<V>, reg: RegId) -> Option<Vec<V>> {
    registers.get_mut(reg).and_then(Option::take)
}

fn par_map_ref<T: Sync, U: Send>(
    values: &[T],
    f: impl Fn(&T) -> Result<U, ExecError> + Sync + Send,
) -> Result<Vec<U>, ExecError> {
    use rayon::prelude::*;
    values.par_iter().map(f).collect()
}

fn par_map_owned<T: Send, U: Send>(
    values: Vec<T>,
    f: impl Fn(T) -> Result<U, ExecError> + Sync + Send,
) -> Result<Vec<U>, ExecError> {
    use rayon::prelude::*;
    values.into_par_iter().map(f).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exec::ExactBackend;
    use crate::plan::*;

    fn dense(rows: usize, cols: usize, values: &[i64]) -> IntMatrix {
        assert_eq!(values.len(), rows * cols);
        let mut m = IntMatrix {
            rows,
            cols,
            row_ptr: vec![0],
            col_idx: vec![],
            values: vec![],
        };
        for r in 0..rows {
            for c in 0..cols {
                let v = values[r * cols + c];
                if v != 0 {
                    m.col_idx.push(c as u32);
                    m.values.push(v);
                }
            }
            m.row_ptr.push(m.values.len());
        }
        m
    }

    fn register(name: &str, len: usize, depth: u32, ct_size: usize) -> RegisterInfo {
        RegisterInfo {
            name: name.to_string(),
            len,
            value_bits: 40.0,
            depth,
            level: 2,
            ct_size,
            noise_budget_bits: 20.0,
            calibrated_value_bits: None,
        }
    }

    /// A three-input toy plan: dense 3→2, square, relinearise, dense over concat(squares,
    /// inputs) 5→2 (a residual connection), mod switch.
    pub(crate) fn toy_plan(plain_primes: Vec<u64>, q_primes: Vec<u64>) -> Plan {
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            model: "toy".to_string(),
            params: PlanParams {
                degree: 1024,
                q_primes,
                special_primes: vec![],
                plain_primes,
                security_bits: 0,
                scheme: Default::default(),
            },
            input: InputEncoding {
                register: 0,
                shape: vec![3],
                raw_min: -8.0,
                raw_max: 8.0,
                scale: 1.0,
                max_abs: 8,
                features: vec![0, 1, 2],
            },
            registers: vec![
                register("input", 3, 0, 2),
                register("fc1", 2, 0, 2),
                register("act1", 2, 1, 3),
                register("fc2", 2, 1, 2),
            ],
            steps: vec![
                Step::Linear {
                    name: "fc1".into(),
                    inputs: vec![0],
                    output: 1,
                    matrix: dense(2, 3, &[1, -2, 3, 0, 0, 0]),
                    bias: vec![5, -7],
                },
                Step::Square {
                    name: "act1".into(),
                    input: 1,
                    output: 2,
                },
                Step::Relinearize { register: 2 },
                Step::Linear {
                    name: "fc2".into(),
                    inputs: vec![2, 0],
                    output: 3,
                    matrix: dense(2, 5, &[1, 1, 0, 0, -1, -3, 0, 4, 0, 0]),
                    bias: vec![0, 11],
                },
                Step::ModSwitch {
                    register: 3,
                    level: 1,
                },
            ],
            output: OutputDecoding {
                register: 3,
                scale: 1.0,
                class_names: vec![],
            },
            depth: 1,
            predicted_noise_budget_bits: 20.0,
            compression: Default::default(),
            calibration: None,
            packing: None,
        }
    }

    /// The toy plan's function, written out by hand.
    pub(crate) fn toy_expected(x: [i128; 3]) -> [i128; 2] {
        let h0 = x[0] - 2 * x[1] + 3 * x[2] + 5;
        let h1 = -7;
        [h0 * h0 + h1 * h1 - x[2], -3 * h0 * h0 + 4 * x[0] + 11]
    }

    #[test]
    fn exact_backend_matches_the_hand_written_function() {
        let plan = toy_plan(vec![65537], vec![]);
        let slots = [[1i128, 2, 3], [-8, 8, -8], [0, 0, 0], [7, -3, 5]];
        let inputs: Vec<Vec<i128>> = (0..3)
            .map(|f| slots.iter().map(|s| s[f]).collect())
            .collect();
        let out = run_plan(&plan, &ExactBackend::new(i128::MAX), inputs, &NoProgress).unwrap();
        for (k, s) in slots.iter().enumerate() {
            let want = toy_expected(*s);
            assert_eq!([out[0][k], out[1][k]], want, "slot {k}");
        }
    }

    #[test]
    fn exact_backend_reports_wrap_around_with_the_step() {
        let plan = toy_plan(vec![257], vec![]);
        let inputs = vec![vec![8i128], vec![-8], vec![8]];
        let err = run_plan(
            &plan,
            &ExactBackend::for_plain_primes(&[257]),
            inputs,
            &NoProgress,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("step 1 (square act1)"), "{text}");
        assert!(text.contains("beyond ±128"), "{text}");
    }

    #[test]
    fn wrong_input_count_is_an_error() {
        let plan = toy_plan(vec![65537], vec![]);
        let err = run_plan(
            &plan,
            &ExactBackend::new(i128::MAX),
            vec![vec![1i128]],
            &NoProgress,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the plan's input register holds 3 values but 1 were given"
        );
    }
}
