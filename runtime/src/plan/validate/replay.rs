//! The program check: the steps are replayed on register *states* (level, ciphertext size,
//! depth) instead of ciphertexts, so every rule the executor relies on (write once, read after
//! write, matching shapes, levels that only go down, squares of size-2 ciphertexts) is checked
//! in program order, and the facts the plan records can be compared with what the program
//! really leaves behind.

use super::ValidationError;
use crate::plan::{IntMatrix, Plan, RegId, Step};

/// What the replay knows about a register once it has been written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    level: usize,
    ct_size: usize,
    depth: u32,
}

/// The replay of a plan's program, one step at a time.
#[derive(Debug)]
pub(super) struct Replay<'a> {
    plan: &'a Plan,
    /// `None` until the register is written.
    state: Vec<Option<State>>,
    /// The level of the latest `mod_switch` (the top level before any).
    current_level: usize,
}

impl<'a> Replay<'a> {
    /// Starts with only the input register written, fresh: top level, size 2, depth 0.
    /// The registers and the input must already be checked (indices in range).
    pub(super) fn new(plan: &'a Plan) -> Self {
        let levels = plan.params.q_primes.len();
        let mut state = vec![None; plan.registers.len()];
        if let Some(input) = state.get_mut(plan.input.register) {
            *input = Some(State {
                level: levels,
                ct_size: 2,
                depth: 0,
            });
        }
        Replay {
            plan,
            state,
            current_level: levels,
        }
    }

    /// Replays every step, then compares the result with the recorded register facts and the
    /// plan's depth.
    pub(super) fn run(mut self) -> Result<(), ValidationError> {
        for (index, step) in self.plan.steps.iter().enumerate() {
            self.step(step).map_err(|problem| ValidationError::Step {
                step: index,
                op: op_name(step),
                problem,
            })?;
        }
        self.compare_with_recorded_facts()
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Linear {
                inputs,
                output,
                matrix,
                bias,
                ..
            } => self.linear(inputs, *output, matrix, bias),
            Step::Square { input, output, .. } => self.square(*input, *output),
            Step::Relinearize { register } => self.relinearize(*register),
            Step::ModSwitch { register, level } => self.mod_switch(*register, *level),
        }
    }

    /// The state of a register the step reads: it must exist and be written.
    fn read(&self, r: RegId) -> Result<State, String> {
        match self.state.get(r) {
            None => Err(self.missing(r)),
            Some(None) => Err(format!("reads register {r} before it is written")),
            Some(Some(state)) => Ok(*state),
        }
    }

    /// Checks that a register the step writes exists and has not been written yet.
    fn check_writable(&self, r: RegId) -> Result<(), String> {
        match self.state.get(r) {
            None => Err(self.missing(r)),
            Some(Some(_)) => Err(format!("writes register {r}, which is already written")),
            Some(None) => Ok(()),
        }
    }

    fn missing(&self, r: RegId) -> String {
        format!(
            "register {r} does not exist ({} registers)",
            self.state.len()
        )
    }

    fn set(&mut self, r: RegId, state: State) {
        if let Some(slot) = self.state.get_mut(r) {
            *slot = Some(state);
        }
    }

    /// `output = matrix · concat(inputs) + bias`: the inputs share a level; the output takes
    /// the largest size and depth of its inputs.
    fn linear(
        &mut self,
        inputs: &[RegId],
        output: RegId,
        matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<(), String> {
        let Some((&first, rest)) = inputs.split_first() else {
            return Err("reads no register".into());
        };
        let mut joined = self.read(first)?;
        let mut cols = self.plan.registers[first].len;
        for &r in rest {
            let state = self.read(r)?;
            if state.level != joined.level {
                return Err(format!(
                    "inputs are at different levels ({} and {})",
                    joined.level, state.level
                ));
            }
            joined.ct_size = joined.ct_size.max(state.ct_size);
            joined.depth = joined.depth.max(state.depth);
            cols += self.plan.registers[r].len;
        }
        self.check_writable(output)?;
        let rows = self.plan.registers[output].len;
        check_matrix(matrix, rows, cols)?;
        if bias.len() != rows {
            return Err(format!("bias has {} entries, expected {rows}", bias.len()));
        }
        self.set(output, joined);
        Ok(())
    }

    /// `output[i] = input[i]²`: reads a size-2 register, writes a size-3 one a level deeper.
    fn square(&mut self, input: RegId, output: RegId) -> Result<(), String> {
        let state = self.read(input)?;
        if state.ct_size != 2 {
            return Err(format!(
                "squares register {input}, which has size {} (relinearise first)",
                state.ct_size
            ));
        }
        self.check_writable(output)?;
        let (out_len, in_len) = (
            self.plan.registers[output].len,
            self.plan.registers[input].len,
        );
        if out_len != in_len {
            return Err(format!(
                "register {output} has {out_len} values but register {input} has {in_len}"
            ));
        }
        self.set(
            output,
            State {
                ct_size: 3,
                depth: state.depth + 1,
                ..state
            },
        );
        Ok(())
    }

    /// Size 3 → 2, in place.
    fn relinearize(&mut self, register: RegId) -> Result<(), String> {
        let state = self.read(register)?;
        if state.ct_size != 3 {
            return Err(format!(
                "register {register} has size {}, not 3",
                state.ct_size
            ));
        }
        self.set(
            register,
            State {
                ct_size: 2,
                ..state
            },
        );
        Ok(())
    }

    /// Down to `level` q primes, in place; never above an earlier switch.
    fn mod_switch(&mut self, register: RegId, level: usize) -> Result<(), String> {
        let state = self.read(register)?;
        if !(2..=3).contains(&state.ct_size) {
            return Err(format!(
                "register {register} has size {}; only sizes 2 and 3 can be switched",
                state.ct_size
            ));
        }
        if level == 0 || level >= state.level {
            return Err(format!(
                "target level {level} must be in 1..{} (the register's level)",
                state.level
            ));
        }
        if level > self.current_level {
            return Err(format!(
                "target level {level} is above an earlier switch to {}; levels only go down",
                self.current_level
            ));
        }
        self.current_level = level;
        self.set(register, State { level, ..state });
        Ok(())
    }

    /// Every register is written, its recorded level, size and depth are what the program
    /// leaves, and the plan's depth is the deepest register's.
    fn compare_with_recorded_facts(&self) -> Result<(), ValidationError> {
        let mut max_depth = 0;
        for (i, (reg, state)) in self.plan.registers.iter().zip(&self.state).enumerate() {
            let bad = |problem: String| ValidationError::Register {
                register: i,
                name: reg.name.clone(),
                problem,
            };
            let Some(st) = state else {
                return Err(bad("is never written".into()));
            };
            if (st.level, st.ct_size, st.depth) != (reg.level, reg.ct_size, reg.depth) {
                return Err(bad(format!(
                    "records level {}, size {}, depth {} but the program leaves it at level {}, size {}, depth {}",
                    reg.level, reg.ct_size, reg.depth, st.level, st.ct_size, st.depth
                )));
            }
            max_depth = max_depth.max(st.depth);
        }
        if self.plan.depth != max_depth {
            return Err(ValidationError::Params(format!(
                "depth {} recorded but the program has depth {max_depth}",
                self.plan.depth
            )));
        }
        Ok(())
    }
}

/// The step's name in the plan's JSON (`op`), for error messages.
fn op_name(step: &Step) -> &'static str {
    match step {
        Step::Linear { .. } => "linear",
        Step::Square { .. } => "square",
        Step::Relinearize { .. } => "relinearize",
        Step::ModSwitch { .. } => "mod_switch",
    }
}

/// A compressed-sparse-row matrix is well formed and connects `cols` input values to `rows`
/// output values.
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
