//! The schedule of a circuit under candidate parameters: where to relinearise and switch
//! modulus, and the predicted noise, level and size of every register. The parameter search
//! and the plan emitter share this one simulation, so the plan gets exactly the predicted
//! schedule.
//!
//! Relinearisation: after a square whose only reader is a linear map with fewer outputs than
//! inputs, the map runs on size-3 ciphertexts and its outputs are relinearised (fewer
//! relinearisations); otherwise the squares are relinearised at once.
//!
//! Modulus switching: the program has a *switch point* before every square and one at the end.
//! At each point the current level may go down; every register read afterwards is switched to
//! the current level before it is read. The levels are chosen by the search.

use super::model;
use crate::analysis::{QCircuit, QOp};

/// One step of the schedule (indices are circuit nodes = plan registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SStep {
    /// The linear map of node `i`.
    Linear(usize),
    /// The square of node `i`.
    Square(usize),
    /// Relinearise register `i`.
    Relinearize(usize),
    /// Switch register `i` down to the level.
    ModSwitch(usize, usize),
}

/// Predicted state of a register at the end of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegState {
    /// q primes left.
    pub level: usize,
    /// Ciphertext size.
    pub size: usize,
    /// Noise (see [`model`]).
    pub noise: f64,
    /// Predicted budget in bits.
    pub budget: f64,
}

/// What the simulation needs of each node.
#[derive(Clone, Debug)]
enum Kind {
    Input,
    Square {
        input: usize,
        defer: bool,
    },
    Linear {
        inputs: Vec<usize>,
        row_l1: Vec<Vec<f64>>,
        nnz: usize,
        rows: usize,
    },
}

/// The circuit reduced to what noise and cost depend on.
#[derive(Clone, Debug)]
pub struct CircuitShape {
    kinds: Vec<Kind>,
    lens: Vec<usize>,
    output: usize,
    /// Number of squares (switch points = squares + 1).
    pub squares: usize,
}

impl CircuitShape {
    /// Extracts the shape of a quantised circuit.
    pub fn new(c: &QCircuit) -> Self {
        let n = c.nodes.len();
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in c.nodes.iter().enumerate() {
            match &node.op {
                QOp::Square { input } => readers[*input].push(i),
                QOp::Linear { inputs, .. } => inputs.iter().for_each(|&k| readers[k].push(i)),
                QOp::Input => {}
            }
        }
        let mut kinds = Vec::with_capacity(n);
        let mut squares = 0;
        for (i, node) in c.nodes.iter().enumerate() {
            kinds.push(match &node.op {
                QOp::Input => Kind::Input,
                QOp::Square { input } => {
                    squares += 1;
                    let mut r = readers[i].clone();
                    r.dedup();
                    let defer = i != c.output
                        && r.len() == 1
                        && matches!(&c.nodes[r[0]].op, QOp::Linear { matrix, .. } if matrix.rows < matrix.cols);
                    Kind::Square { input: *input, defer }
                }
                QOp::Linear { inputs, matrix, .. } => {
                    let mut bounds = Vec::with_capacity(inputs.len() + 1);
                    let mut off = 0;
                    for &k in inputs {
                        bounds.push(off);
                        off += c.nodes[k].len;
                    }
                    bounds.push(off);
                    let row_l1 = (0..matrix.rows)
                        .map(|r| {
                            let mut sums = vec![0.0; inputs.len()];
                            for (col, w) in matrix.row(r) {
                                let k = bounds.partition_point(|&b| b <= col).saturating_sub(1).min(inputs.len().saturating_sub(1));
                                sums[k] += (w as f64).abs();
                            }
                            sums
                        })
                        .collect();
                    Kind::Linear { inputs: inputs.clone(), row_l1, nnz: matrix.nnz(), rows: matrix.rows }
                }
            });
        }
        CircuitShape {
            kinds,
            lens: c.nodes.iter().map(|n| n.len).collect(),
            output: c.output,
            squares,
        }
    }
}

/// Parameters as the simulation sees them.
#[derive(Clone, Debug)]
pub struct SimParams {
    /// Ring degree.
    pub n: usize,
    /// log2 of each q prime, in order.
    pub q_log2: Vec<f64>,
    /// log2 of the special prime.
    pub special_log2: f64,
    /// The largest plaintext prime.
    pub t: f64,
    /// Number of plaintext primes.
    pub plain_count: usize,
}

/// The simulated schedule.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// The steps in program order.
    pub steps: Vec<SStep>,
    /// Final register states.
    pub regs: Vec<RegState>,
    /// Predicted budget of the output register.
    pub output_budget: f64,
    /// Smallest predicted budget over all registers.
    pub min_budget: f64,
    /// Estimated cost per image.
    pub cost_per_image: f64,
}

struct Run<'a> {
    p: &'a SimParams,
    regs: Vec<RegState>,
    steps: Vec<SStep>,
    cost: f64,
    lens: &'a [usize],
}

impl Run<'_> {
    fn relin(&mut self, r: usize) {
        let st = &mut self.regs[r];
        let q_max = self.p.q_log2.iter().copied().fold(0.0, f64::max).exp2();
        st.noise = model::relinearize(
            st.noise,
            st.level,
            q_max,
            self.p.special_log2.exp2(),
            self.p.n,
        );
        st.size = 2;
        self.cost += self.lens[r] as f64 * model::cost_relinearize(st.level, self.p.n);
        self.steps.push(SStep::Relinearize(r));
    }

    fn switch(&mut self, r: usize, target: usize) {
        if self.regs[r].level <= target {
            return;
        }
        if self.regs[r].size == 3 {
            self.relin(r);
        }
        let st = &mut self.regs[r];
        while st.level > target {
            let dropped = self.p.q_log2[st.level - 1].exp2();
            st.noise = model::mod_switch(st.noise, dropped, self.p.t, self.p.n);
            self.cost += self.lens[r] as f64 * model::cost_mod_switch(st.level, self.p.n);
            st.level -= 1;
        }
        self.steps.push(SStep::ModSwitch(r, target));
    }
}

/// Simulates the circuit with the level chosen at each switch point (`levels.len()` =
/// squares + 1, non-increasing, each in 1..=number of q primes).
pub fn simulate(shape: &CircuitShape, p: &SimParams, levels: &[usize]) -> Simulation {
    let top = p.q_log2.len();
    let n_nodes = shape.kinds.len();
    let blank = RegState {
        level: top,
        size: 2,
        noise: model::fresh(p.t),
        budget: 0.0,
    };
    let mut run = Run {
        p,
        regs: vec![blank; n_nodes],
        steps: Vec::new(),
        cost: 0.0,
        lens: &shape.lens,
    };
    let mut current = top;
    let mut point = 0;
    for i in 0..n_nodes {
        match &shape.kinds[i] {
            Kind::Input => {}
            Kind::Square { input, defer } => {
                current = current
                    .min(levels.get(point).copied().unwrap_or(current))
                    .max(1);
                point += 1;
                if run.regs[*input].size == 3 {
                    run.relin(*input);
                }
                run.switch(*input, current);
                let src = run.regs[*input];
                run.regs[i] = RegState {
                    level: src.level,
                    size: 3,
                    noise: model::square(src.noise, p.t, p.n),
                    budget: 0.0,
                };
                run.cost += shape.lens[i] as f64 * model::cost_square(src.level, p.n);
                run.steps.push(SStep::Square(i));
                if !defer {
                    run.relin(i);
                }
            }
            Kind::Linear {
                inputs,
                row_l1,
                nnz,
                rows,
            } => {
                for &k in inputs {
                    run.switch(k, current);
                }
                let noises: Vec<f64> = inputs.iter().map(|&k| run.regs[k].noise).collect();
                let worst = row_l1
                    .iter()
                    .map(|sums| sums.iter().zip(&noises).map(|(w, e)| w * e).sum::<f64>())
                    .fold(0.0, f64::max);
                let size = inputs.iter().map(|&k| run.regs[k].size).max().unwrap_or(2);
                let level = inputs
                    .iter()
                    .map(|&k| run.regs[k].level)
                    .min()
                    .unwrap_or(current);
                run.regs[i] = RegState {
                    level,
                    size,
                    noise: model::plain_add(worst, p.t),
                    budget: 0.0,
                };
                run.cost += *nnz as f64 * model::cost_scalar(level, size)
                    + *rows as f64 * model::cost_bias(level);
                run.steps.push(SStep::Linear(i));
                if size == 3 {
                    run.relin(i);
                }
            }
        }
    }
    let out = shape.output;
    if run.regs[out].size == 3 {
        run.relin(out);
    }
    let last = levels
        .last()
        .copied()
        .unwrap_or(current)
        .min(current)
        .max(1);
    run.switch(out, last);
    let mut q_prefix = vec![0.0; top + 1];
    for l in 0..top {
        q_prefix[l + 1] = q_prefix[l] + p.q_log2[l];
    }
    for st in &mut run.regs {
        st.budget = model::budget(st.noise, q_prefix[st.level], p.t);
    }
    let min_budget = run
        .regs
        .iter()
        .map(|s| s.budget)
        .fold(f64::INFINITY, f64::min);
    Simulation {
        output_budget: run.regs[out].budget,
        min_budget,
        cost_per_image: run.cost * p.plain_count as f64,
        steps: run.steps,
        regs: run.regs,
    }
}

/// Chooses the switch levels greedily: at each point the lowest level that still lets the
/// rest of the circuit (run at that level) end with `margin` bits; at the end, the lowest
/// level that keeps the margin. `None` when even the full modulus is not enough.
pub fn choose_levels(
    shape: &CircuitShape,
    p: &SimParams,
    margin: f64,
) -> Option<(Vec<usize>, Simulation)> {
    let top = p.q_log2.len();
    let points = shape.squares + 1;
    let ok = |s: &Simulation| s.output_budget >= margin && s.min_budget > 0.0;
    let mut levels = vec![top; points];
    let full = simulate(shape, p, &levels);
    if !ok(&full) {
        return None;
    }
    let mut current = top;
    for k in 0..points {
        for l in 1..=current {
            let mut trial = levels.clone();
            trial[k..].iter_mut().for_each(|x| *x = l);
            if ok(&simulate(shape, p, &trial)) {
                levels = trial;
                current = l;
                break;
            }
        }
    }
    let sim = simulate(shape, p, &levels);
    Some((levels, sim))
}
