//! The packed schedule and its noise: one BFV ciphertext per register, every square
//! relinearised at once (rotations need size-2 ciphertexts), and a modulus switch point before
//! every square, before every linear map and at the end, as in the slot layout.
//!
//! Noise uses the invariant-noise convention of [`crate::params::model`] (`e = ‖v‖·Q/t`) and
//! its formulas for fresh encryption, squares, relinearisation and switches. What is new is the
//! product with a plaintext *vector*: its polynomial has coefficients up to t/2 in every
//! position, so it multiplies `e` by about δ·t/2 (δ = [`model::expansion`]), whatever the
//! weights. A packed `Linear` ([`LinearNoise`]) then leaves
//!
//! `e' = δ·t/2 · Σ_terms (e_in + [baby ≠ 0]·k) + giants·k`, then `e' ← 2e' + k` per fold
//! step, then `+ 1` for the bias,
//!
//! where `k` is the key-switching term a rotation adds (the relinearisation term of
//! [`model::relinearize`]: the same hybrid key switch with one special prime). Summing the terms
//! (rather than their root-sum-square) keeps the prediction conservative.

use super::cost;
use crate::params::model;
use veil_runtime::plan::packing::LinearSchedule;

/// What the noise and the cost of one packed `Linear` depend on.
#[derive(Clone, Debug)]
pub struct LinearNoise {
    /// Per input register (in the step's order): products with the input itself and with a
    /// baby rotation of it.
    pub terms: Vec<(usize, usize)>,
    /// Non-zero giant and outer rotations (each adds a key switch's noise after the products).
    pub giants: usize,
    /// Fold rotations.
    pub fold: usize,
    /// The schedule (for the cost).
    pub schedule: LinearSchedule,
}

impl LinearNoise {
    /// Extracts the counts of a schedule.
    pub fn new(schedule: LinearSchedule) -> Self {
        let mut terms = vec![(0, 0); schedule.babies.len()];
        for term in schedule.giants.iter().flat_map(|g| &g.terms) {
            if let Some(t) = terms.get_mut(term.input) {
                if term.baby == 0 {
                    t.0 += 1;
                } else {
                    t.1 += 1;
                }
            }
        }
        LinearNoise {
            terms,
            giants: schedule.giants.iter().filter(|g| g.rotation != 0).count()
                + schedule.outers().iter().filter(|&&o| o != 0).count(),
            fold: schedule.fold.len(),
            schedule,
        }
    }
}

/// One operation of the program (registers are plan registers).
#[derive(Clone, Debug)]
pub enum Op {
    /// A `Linear` step (index into the plan's steps) with its noise shape.
    Linear {
        /// The plan step.
        step: usize,
        /// Input registers.
        inputs: Vec<usize>,
        /// Output register.
        output: usize,
        /// Noise and cost shape.
        shape: Box<LinearNoise>,
    },
    /// A `Square` step (index into the plan's steps).
    Square {
        /// The plan step.
        step: usize,
        /// Input register.
        input: usize,
        /// Output register.
        output: usize,
    },
}

/// The packed program: the plan's linear maps and squares in order.
#[derive(Clone, Debug)]
pub struct Program {
    /// Operations in program order.
    pub ops: Vec<Op>,
    /// Number of registers.
    pub registers: usize,
    /// The input register.
    pub input: usize,
    /// The output register.
    pub output: usize,
}

impl Program {
    /// Switch points: one before every operation and one at the end.
    pub fn points(&self) -> usize {
        self.ops.len() + 1
    }
}

/// Parameters as the packed simulation sees them.
#[derive(Clone, Debug)]
pub struct Params {
    /// Ring degree.
    pub n: usize,
    /// log2 of each q prime.
    pub q_log2: Vec<f64>,
    /// log2 of the special prime.
    pub special_log2: f64,
    /// The largest plaintext prime.
    pub t: f64,
    /// Number of plaintext primes (runs).
    pub plain_count: usize,
}

impl Params {
    fn log2_q(&self, level: usize) -> f64 {
        self.q_log2.iter().take(level).sum()
    }

    /// The noise a key switch (rotation or relinearisation) adds at `level`.
    fn key_switch(&self, e: f64, level: usize) -> f64 {
        let q_max = self.q_log2.iter().copied().fold(0.0, f64::max).exp2();
        model::relinearize(e, level, q_max, self.special_log2.exp2(), self.n)
    }

    /// Noise after one packed `Linear` at `level` whose inputs carry `noises`.
    pub fn linear(&self, shape: &LinearNoise, noises: &[f64], level: usize) -> f64 {
        let k = self.key_switch(0.0, level);
        let per_product = model::expansion(self.n) * self.t / 2.0;
        let mut e: f64 = shape
            .terms
            .iter()
            .zip(noises)
            .map(|(&(plain, rotated), &ein)| {
                per_product * (plain as f64 * ein + rotated as f64 * (ein + k))
            })
            .sum();
        e += shape.giants as f64 * k;
        for _ in 0..shape.fold {
            e = 2.0 * e + k;
        }
        e + model::constant(0.0, self.t)
    }
}

/// One emitted step of the packed schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PStep {
    /// Operation `i` of the program.
    Op(usize),
    /// Relinearise a register.
    Relinearize(usize),
    /// Switch a register down to a level.
    ModSwitch(usize, usize),
}

/// Predicted state of a register at the end of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reg {
    /// q primes left.
    pub level: usize,
    /// Ciphertext size.
    pub size: usize,
    /// Noise.
    pub noise: f64,
    /// Predicted budget (bits).
    pub budget: f64,
}

/// The simulated packed schedule.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Steps in order.
    pub steps: Vec<PStep>,
    /// Final register states.
    pub regs: Vec<Reg>,
    /// The output's budget.
    pub output_budget: f64,
    /// The smallest budget of any register.
    pub min_budget: f64,
    /// Cost of one ciphertext group (units of [`crate::params::model::cost`] per coefficient),
    /// all plaintext primes, encryption included.
    pub cost_per_group: f64,
}

impl Simulation {
    /// Whether the output keeps `margin` bits and every register a positive budget.
    pub fn holds(&self, margin: f64) -> bool {
        self.output_budget >= margin && self.min_budget > 0.0
    }
}

struct Run<'a> {
    p: &'a Params,
    regs: Vec<Reg>,
    steps: Vec<PStep>,
    cost: f64,
}

impl Run<'_> {
    fn switch(&mut self, r: usize, target: usize) {
        let st = &mut self.regs[r];
        if st.level <= target {
            return;
        }
        while st.level > target {
            let dropped = self.p.q_log2[st.level - 1].exp2();
            st.noise = model::mod_switch(st.noise, dropped, self.p.n, st.size);
            self.cost += model::cost_mod_switch(st.level, st.size);
            st.level -= 1;
        }
        self.steps.push(PStep::ModSwitch(r, target));
    }
}

/// Simulates `program` with the level of each switch point (non-increasing, in 1..=top).
pub fn simulate(program: &Program, p: &Params, levels: &[usize]) -> Simulation {
    let top = p.q_log2.len();
    let fresh = Reg {
        level: top,
        size: 2,
        noise: model::fresh(p.t, p.n),
        budget: 0.0,
    };
    let mut run = Run {
        p,
        regs: vec![fresh; program.registers],
        steps: Vec::new(),
        cost: model::cost_encrypt(top, p.n),
    };
    let mut current = top;
    for (i, op) in program.ops.iter().enumerate() {
        current = current
            .min(levels.get(i).copied().unwrap_or(current))
            .max(1);
        match op {
            Op::Square { input, output, .. } => {
                run.switch(*input, current);
                let src = run.regs[*input];
                let squared = model::square(src.noise, 0.0, p.t, p.n, p.log2_q(src.level));
                run.regs[*output] = Reg {
                    level: src.level,
                    size: 2,
                    noise: p.key_switch(squared, src.level),
                    budget: 0.0,
                };
                run.cost +=
                    model::cost_square(src.level, model::aux_primes(p.log2_q(src.level), p.n))
                        + model::cost_relinearize(src.level, p.n);
                run.steps.push(PStep::Op(i));
                run.steps.push(PStep::Relinearize(*output));
            }
            Op::Linear {
                inputs,
                output,
                shape,
                ..
            } => {
                for &r in inputs {
                    run.switch(r, current);
                }
                let level = inputs
                    .iter()
                    .map(|&r| run.regs[r].level)
                    .min()
                    .unwrap_or(current);
                let noises: Vec<f64> = inputs.iter().map(|&r| run.regs[r].noise).collect();
                run.regs[*output] = Reg {
                    level,
                    size: 2,
                    noise: p.linear(shape, &noises, level),
                    budget: 0.0,
                };
                run.cost += cost::linear(&shape.schedule, level, p.n);
                run.steps.push(PStep::Op(i));
            }
        }
    }
    let last = current
        .min(levels.last().copied().unwrap_or(current))
        .max(1);
    run.switch(program.output, last);
    for st in &mut run.regs {
        st.budget = model::budget(st.noise, p.log2_q(st.level), p.t);
    }
    let min_budget = run
        .regs
        .iter()
        .map(|r| r.budget)
        .fold(f64::INFINITY, f64::min);
    Simulation {
        output_budget: run.regs[program.output].budget,
        min_budget,
        cost_per_group: run.cost * p.plain_count as f64,
        steps: run.steps,
        regs: run.regs,
    }
}

/// Greedy levels: at each switch point, the lowest level that lets the rest of the program
/// (run at that level) keep `margin`. `None` when the full modulus does not hold.
pub fn choose_levels(
    program: &Program,
    p: &Params,
    margin: f64,
) -> Option<(Vec<usize>, Simulation)> {
    let top = p.q_log2.len();
    let mut levels = vec![top; program.points()];
    if !simulate(program, p, &levels).holds(margin) {
        return None;
    }
    let mut current = top;
    for k in 0..levels.len() {
        for l in 1..current {
            let mut trial = levels.clone();
            trial[k..].iter_mut().for_each(|x| *x = l);
            if simulate(program, p, &trial).holds(margin) {
                levels = trial;
                current = l;
                break;
            }
        }
    }
    let sim = simulate(program, p, &levels);
    Some((levels, sim))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests stop on failure")]

    use super::*;
    use veil_runtime::plan::packing::{DiagonalTerm, GiantStep};

    fn schedule(babies: &[i64], giants: &[i64], fold: usize) -> LinearSchedule {
        LinearSchedule {
            babies: vec![babies.to_vec()],
            giants: giants
                .iter()
                .map(|&g| GiantStep {
                    outer: 0,
                    rotation: g,
                    terms: babies
                        .iter()
                        .map(|&b| DiagonalTerm {
                            input: 0,
                            baby: b,
                            entries: vec![(0, 1)],
                        })
                        .collect(),
                })
                .collect(),
            fold: (0..fold).map(|k| 1 << k).collect(),
        }
    }

    fn params(t: f64) -> Params {
        Params {
            n: 16384,
            q_log2: vec![60.0; 5],
            special_log2: 60.0,
            t,
            plain_count: 1,
        }
    }

    #[test]
    fn a_vector_product_multiplies_the_noise_by_delta_t_over_2() {
        let p = params(65537.0);
        let shape = LinearNoise::new(schedule(&[0], &[0], 0));
        let e = 1e6;
        let got = p.linear(&shape, &[e], 5);
        let want = model::expansion(p.n) * p.t / 2.0 * e + 1.0;
        assert!((got / want - 1.0).abs() < 1e-12, "{got} {want}");
        // Linear in t: the reason small plaintext primes pay off.
        let twice = params(2.0 * 65537.0).linear(&shape, &[e], 5);
        assert!((twice / got - 2.0).abs() < 1e-6);
    }

    #[test]
    fn rotations_and_folds_add_key_switch_noise() {
        let p = params(65537.0);
        let plain = p.linear(&LinearNoise::new(schedule(&[0, 1], &[0], 0)), &[1e6], 3);
        let giant = p.linear(&LinearNoise::new(schedule(&[0, 1], &[0, 2], 0)), &[1e6], 3);
        assert!(giant > 2.0 * plain * 0.999);
        let folded = p.linear(&LinearNoise::new(schedule(&[0, 1], &[0], 3)), &[1e6], 3);
        // Three fold steps: eight partial sums.
        assert!(folded > 8.0 * (plain - 1.0) && folded < 8.1 * plain);
    }
}
