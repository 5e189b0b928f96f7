//! The schedule of a circuit under candidate parameters: where to relinearise and switch
//! modulus, and the predicted noise, level and size of every register. The parameter search
//! and the plan emitter share this one simulation, so the plan gets exactly the predicted
//! schedule.
//!
//! Relinearisation: after a square whose only reader is a linear map, the square may stay
//! unrelinearised: the map then runs on size-3 ciphertexts (one more component per product)
//! and only its outputs are relinearised. The simulation takes whichever order the cost model
//! says is cheaper at the square's level, which is the deferred one when the map has clearly
//! fewer outputs than inputs (CryptoNets: 100 relinearisations instead of 845).
//!
//! Modulus switching: the program has a *switch point* before every square, before every
//! linear map and one at the end. At each point the current level may go down; every register
//! read afterwards is switched to the current level before it is read. [`choose_levels`] picks the cheapest non-increasing levels that keep
//! the margin, so primes are dropped as early as the noise allows and the output is switched
//! to the smallest modulus that still decrypts with the margin. Size-3 registers are switched
//! without relinearising (a square's outputs can be switched down before the wide linear map
//! that reads them).

use super::model;
use crate::analysis::{QCircuit, QOp};
use veil_runtime::plan::Scheme;

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
    /// Noise in the constant coefficient only (see [`model::square`]).
    pub noise_const: f64,
    /// Predicted budget in bits.
    pub budget: f64,
    /// BGV only: an exact fingerprint of the register's plaintext scale (the product of the
    /// inverses of the primes switched away, squared by every square; see [`scale_after`]).
    /// A linear map whose inputs differ in scale must fold a factor up to t/2 into weights.
    pub scale_sig: u64,
}

/// The scale fingerprint of a register whose ciphertexts may carry different scales: the
/// output of a linear map whose inputs differed, since the runtime aligns each row on its own.
/// Every linear map that reads it pays the alignment.
const MIXED_SCALES: u64 = u64::MAX;

/// The scale fingerprint after a step: a square doubles every exponent of the scale
/// `Π q_j^(−k_j)`, dropping prime `j` adds one to `k_j`. The fingerprint `Σ k_j·H(j)` (mod 2^64,
/// `H` a fixed odd mixing of j) is equal for equal scales and differs otherwise except with
/// negligible chance.
fn scale_after(sig: u64, dropped: Option<usize>) -> u64 {
    if sig == MIXED_SCALES {
        return MIXED_SCALES;
    }
    match dropped {
        None => sig.wrapping_mul(2),
        Some(j) => {
            let h = (j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            sig.wrapping_add(h ^ (h >> 29))
        }
    }
}

/// What the simulation needs of each node.
#[derive(Clone, Debug)]
enum Kind {
    Input,
    Square {
        input: usize,
        /// `(rows, nnz)` of the only reader when that reader is a linear map (deferral
        /// candidate).
        reader: Option<(usize, usize)>,
    },
    Linear {
        inputs: Vec<usize>,
        row_l1: Vec<Vec<f64>>,
        /// Per row: the bias when ≥ 0, −1 for a negative bias (see [`model::constant`]).
        row_bias: Vec<f64>,
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
    /// Number of squares.
    pub squares: usize,
    /// Number of switch points (squares + linear maps + 1).
    pub points: usize,
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
        let mut linears = 0;
        for (i, node) in c.nodes.iter().enumerate() {
            kinds.push(match &node.op {
                QOp::Input => Kind::Input,
                QOp::Square { input } => {
                    squares += 1;
                    let mut r = readers[i].clone();
                    r.dedup();
                    let reader = match (i != c.output, r.as_slice()) {
                        (true, [only]) => match &c.nodes[*only].op {
                            QOp::Linear { matrix, .. } => Some((matrix.rows, matrix.nnz())),
                            _ => None,
                        },
                        _ => None,
                    };
                    Kind::Square {
                        input: *input,
                        reader,
                    }
                }
                QOp::Linear {
                    inputs,
                    matrix,
                    bias,
                } => {
                    linears += 1;
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
                                let k = bounds
                                    .partition_point(|&b| b <= col)
                                    .saturating_sub(1)
                                    .min(inputs.len().saturating_sub(1));
                                sums[k] += (w as f64).abs();
                            }
                            sums
                        })
                        .collect();
                    let row_bias = bias
                        .iter()
                        .map(|&b| if b >= 0 { b as f64 } else { -1.0 })
                        .collect();
                    Kind::Linear {
                        inputs: inputs.clone(),
                        row_l1,
                        row_bias,
                        nnz: matrix.nnz(),
                        rows: matrix.rows,
                    }
                }
            });
        }
        CircuitShape {
            kinds,
            lens: c.nodes.iter().map(|n| n.len).collect(),
            output: c.output,
            squares,
            points: squares + linears + 1,
        }
    }
}

impl CircuitShape {
    /// Number of input values (ciphertexts uploaded per plaintext prime).
    pub fn input_len(&self) -> usize {
        self.lens.first().copied().unwrap_or(0)
    }

    /// The output node.
    pub fn output(&self) -> usize {
        self.output
    }

    /// Number of output values.
    pub fn output_len(&self) -> usize {
        self.lens.get(self.output).copied().unwrap_or(0)
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
    /// The scheme whose noise and cost formulas apply.
    pub scheme: Scheme,
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
        st.noise = self.p.relinearize(st.noise, st.level);
        st.size = 2;
        self.cost += self.lens[r] as f64 * self.p.cost_relinearize(st.level);
        self.steps.push(SStep::Relinearize(r));
    }

    fn switch(&mut self, r: usize, target: usize) {
        if self.regs[r].level <= target {
            return;
        }
        // A size-3 register (an unrelinearised square) is switched as it is: its reader is a
        // linear map, which then runs on fewer primes, and relinearisation stays deferred to
        // the map's (fewer) outputs.
        let st = &mut self.regs[r];
        while st.level > target {
            let dropped = self.p.q_log2[st.level - 1].exp2();
            st.noise = self.p.mod_switch(st.noise, dropped, st.size);
            st.noise_const /= dropped;
            st.scale_sig = scale_after(st.scale_sig, Some(st.level - 1));
            self.cost += self.lens[r] as f64 * self.p.cost_mod_switch(st.level, st.size);
            st.level -= 1;
        }
        self.steps.push(SStep::ModSwitch(r, target));
    }
}

/// Chooses the level at each switch point as the simulation reaches it.
trait LevelPolicy {
    /// The level for switch point `point`, where the program is at `current` and is about to
    /// read registers in the states `reads`.
    fn level(&mut self, point: usize, current: usize, reads: &[RegState]) -> usize;
}

/// The levels given up front.
struct Fixed<'a>(&'a [usize]);

impl LevelPolicy for Fixed<'_> {
    fn level(&mut self, point: usize, current: usize, _reads: &[RegState]) -> usize {
        self.0.get(point).copied().unwrap_or(current)
    }
}

/// Drops every prime that pays for itself before a square: switching noise `e` down by `q`
/// leaves `e/q + f` (`f` the switch's rounding floor), and a square then needs
/// `2·log2(e/q + f)` bits of a modulus that has `log2 q` fewer, which wins while
/// `e > f·√q` (with a factor 2 of slack). The natural schedule for BGV, whose noise never
/// shrinks below the floor, so that running everything at the full modulus (where BFV's greedy
/// search starts) is usually not possible.
struct DropToFloor<'a> {
    p: &'a SimParams,
    /// The output's switch point, left where it is (the search lowers it afterwards).
    last_point: usize,
    chosen: Vec<usize>,
}

impl LevelPolicy for DropToFloor<'_> {
    fn level(&mut self, point: usize, current: usize, reads: &[RegState]) -> usize {
        if point >= self.last_point {
            self.chosen.push(current);
            return current;
        }
        let useful = |r: &RegState| {
            let floor = self.p.mod_switch(0.0, 1.0, r.size);
            let mut level = r.level.min(current);
            let mut noise = r.noise + r.noise_const;
            while level > 1 {
                let q = self.p.q_log2[level - 1].exp2();
                if noise < 2.0 * floor * q.sqrt() {
                    break;
                }
                noise /= q;
                level -= 1;
            }
            level
        };
        let level = reads.iter().map(useful).max().unwrap_or(current);
        self.chosen.push(level);
        level
    }
}

/// Simulates the circuit with the level chosen at each switch point (`levels.len()` =
/// `shape.points`, non-increasing, each in 1..=number of q primes).
pub fn simulate(shape: &CircuitShape, p: &SimParams, levels: &[usize]) -> Simulation {
    simulate_from(shape, p, levels, p.fresh())
}

/// [`simulate`] with inputs of noise `fresh` instead of a fresh encryption's (uploads whose
/// low bits were rounded away carry more, see [`super::compress`]).
pub fn simulate_from(
    shape: &CircuitShape,
    p: &SimParams,
    levels: &[usize],
    fresh: f64,
) -> Simulation {
    run_schedule(shape, p, &mut Fixed(levels), fresh)
}

/// Simulates the circuit with levels from `policy` and inputs of noise `fresh`.
fn run_schedule(
    shape: &CircuitShape,
    p: &SimParams,
    policy: &mut dyn LevelPolicy,
    fresh: f64,
) -> Simulation {
    let top = p.q_log2.len();
    let n_nodes = shape.kinds.len();
    let mut q_prefix = vec![0.0; top + 1];
    for l in 0..top {
        q_prefix[l + 1] = q_prefix[l] + p.q_log2[l];
    }
    let blank = RegState {
        level: top,
        size: 2,
        noise: fresh,
        noise_const: 0.0,
        budget: 0.0,
        scale_sig: 0,
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
    let mut next_level = |current: usize, reads: &[RegState]| {
        let l = current.min(policy.level(point, current, reads)).max(1);
        point += 1;
        l
    };
    for i in 0..n_nodes {
        match &shape.kinds[i] {
            Kind::Input => {
                run.cost += shape.lens[i] as f64 * p.cost_encrypt(top);
            }
            Kind::Square { input, reader } => {
                current = next_level(current, &[run.regs[*input]]);
                if run.regs[*input].size == 3 {
                    run.relin(*input);
                }
                run.switch(*input, current);
                let src = run.regs[*input];
                run.regs[i] = RegState {
                    level: src.level,
                    size: 3,
                    noise: p.square(src.noise, src.noise_const, q_prefix[src.level]),
                    noise_const: 0.0,
                    budget: 0.0,
                    scale_sig: scale_after(src.scale_sig, None),
                };
                run.cost += shape.lens[i] as f64 * p.cost_square(src.level, q_prefix[src.level]);
                run.steps.push(SStep::Square(i));
                let now = shape.lens[i] as f64 * p.cost_relinearize(src.level);
                let deferred = reader.map(|(rows, nnz)| {
                    rows as f64 * p.cost_relinearize(src.level)
                        + model::cost_linear(nnz, rows, src.level, 3)
                        - model::cost_linear(nnz, rows, src.level, 2)
                });
                if deferred.is_none_or(|d| d >= now) {
                    run.relin(i);
                }
            }
            Kind::Linear {
                inputs,
                row_l1,
                row_bias,
                nnz,
                rows,
            } => {
                let reads: Vec<RegState> = inputs.iter().map(|&k| run.regs[k]).collect();
                current = next_level(current, &reads);
                for &k in inputs {
                    run.switch(k, current);
                }
                // BGV: inputs of different scales are aligned by folding a residue mod t
                // (up to t/2 in size) into their weights.
                let first_sig = inputs.first().map_or(0, |&k| run.regs[k].scale_sig);
                let aligned = p.scheme == Scheme::Bfv
                    || (first_sig != MIXED_SCALES
                        && inputs.iter().all(|&k| run.regs[k].scale_sig == first_sig));
                let factor = if aligned { 1.0 } else { p.t / 2.0 };
                let noises: Vec<(f64, f64)> = inputs
                    .iter()
                    .map(|&k| (run.regs[k].noise * factor, run.regs[k].noise_const * factor))
                    .collect();
                // The worst row of each part (together at least the worst row's total).
                let (worst, worst_const) =
                    row_l1
                        .iter()
                        .zip(row_bias)
                        .fold((0.0f64, 0.0f64), |(we, wc), (sums, &b)| {
                            let (e, c) = sums
                                .iter()
                                .zip(&noises)
                                .fold((0.0, 0.0), |(e, c), (w, (ne, nc))| (e + w * ne, c + w * nc));
                            (we.max(e), wc.max(c + p.constant(b)))
                        });
                let size = inputs.iter().map(|&k| run.regs[k].size).max().unwrap_or(2);
                let level = inputs
                    .iter()
                    .map(|&k| run.regs[k].level)
                    .min()
                    .unwrap_or(current);
                run.regs[i] = RegState {
                    level,
                    size,
                    noise: worst,
                    noise_const: worst_const,
                    budget: 0.0,
                    scale_sig: if aligned { first_sig } else { MIXED_SCALES },
                };
                run.cost += model::cost_linear(*nnz, *rows, level, size);
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
    let last = next_level(current, &[run.regs[out]]);
    run.switch(out, last);
    for st in &mut run.regs {
        st.budget = p.budget(st.noise + st.noise_const, q_prefix[st.level]);
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

/// Whether a simulated schedule keeps `margin` bits at the output and a positive budget in
/// every register.
fn holds(s: &Simulation, margin: f64) -> bool {
    s.output_budget >= margin && s.min_budget > 0.0
}

/// Chooses the switch levels greedily: at each point the lowest level that still lets the
/// rest of the circuit (run at that level) end with `margin` bits; at the end, the lowest
/// level that keeps the margin. `None` when even the full modulus is not enough. Fast; the
/// parameter search ranks candidates with it and then refines the best with
/// [`optimise_levels`].
pub fn choose_levels(
    shape: &CircuitShape,
    p: &SimParams,
    margin: f64,
) -> Option<(Vec<usize>, Simulation)> {
    let top = p.q_log2.len();
    let points = shape.points;
    let mut levels = vec![top; points];
    let full = simulate(shape, p, &levels);
    if !holds(&full, margin) {
        // Noise that only switching keeps in check (BGV): try dropping to the floor.
        let mut policy = DropToFloor {
            p,
            last_point: points.saturating_sub(1),
            chosen: Vec::new(),
        };
        let sim = run_schedule(shape, p, &mut policy, p.fresh());
        return holds(&sim, margin).then_some((policy.chosen, sim));
    }
    let mut current = top;
    for k in 0..points {
        for l in 1..=current {
            let mut trial = levels.clone();
            trial[k..].iter_mut().for_each(|x| *x = l);
            if holds(&simulate(shape, p, &trial), margin) {
                levels = trial;
                current = l;
                break;
            }
        }
    }
    let sim = simulate(shape, p, &levels);
    Some((levels, sim))
}

/// Most level sequences [`optimise_levels`] enumerates before it falls back to local search.
const MAX_ENUMERATED: f64 = 20_000.0;

/// Ranks schedules: estimated time first, then bytes downloaded (the output's level; the last
/// switch point is lowered separately by [`lowest_output`]).
fn schedule_key(s: &Simulation, out: usize) -> (f64, usize) {
    (s.cost_per_image, s.regs[out].level)
}

/// The cheapest levels (cost model, then the smallest output modulus) that keep `margin`:
/// every non-increasing sequence when there are few, otherwise local moves from `start` (one
/// point, and the points after it, lowered) until none helps. `start` must hold.
pub fn optimise_levels(
    shape: &CircuitShape,
    p: &SimParams,
    margin: f64,
    start: &[usize],
) -> (Vec<usize>, Simulation) {
    let top = p.q_log2.len();
    let points = shape.points;
    let out = shape.output;
    let mut best_levels = start.to_vec();
    let mut best = simulate(shape, p, start);
    // Number of non-increasing sequences of `points` levels in 1..=top: C(top + points − 1, points).
    let mut count = 1.0f64;
    for i in 0..points {
        count = count * (top + i) as f64 / (i + 1) as f64;
    }
    if count <= MAX_ENUMERATED {
        let mut levels = vec![top; points];
        enumerate(0, top, &mut levels, &mut |lv| {
            let sim = simulate(shape, p, lv);
            if holds(&sim, margin) && schedule_key(&sim, out) < schedule_key(&best, out) {
                best_levels = lv.to_vec();
                best = sim;
            }
        });
        return lowest_output(shape, p, margin, best_levels, best);
    }
    loop {
        let mut improved = false;
        for k in 0..points {
            for l in 1..best_levels[k] {
                let mut trial = best_levels.clone();
                trial[k..].iter_mut().for_each(|x| *x = (*x).min(l));
                let sim = simulate(shape, p, &trial);
                if holds(&sim, margin) && schedule_key(&sim, out) < schedule_key(&best, out) {
                    best_levels = trial;
                    best = sim;
                    improved = true;
                }
            }
        }
        if !improved {
            return lowest_output(shape, p, margin, best_levels, best);
        }
    }
}

/// Lowers the last switch point (the output's level) as far as the margin allows: the
/// switch costs next to nothing and every prime dropped shrinks the download.
fn lowest_output(
    shape: &CircuitShape,
    p: &SimParams,
    margin: f64,
    mut levels: Vec<usize>,
    mut sim: Simulation,
) -> (Vec<usize>, Simulation) {
    let Some(&last) = levels.last() else {
        return (levels, sim);
    };
    for l in 1..last {
        let mut trial = levels.clone();
        if let Some(x) = trial.last_mut() {
            *x = l;
        }
        let s = simulate(shape, p, &trial);
        if holds(&s, margin) {
            levels = trial;
            sim = s;
            break;
        }
    }
    (levels, sim)
}

/// Calls `visit` with every non-increasing completion of `levels[k..]` bounded by `max`.
fn enumerate(k: usize, max: usize, levels: &mut [usize], visit: &mut dyn FnMut(&[usize])) {
    if k == levels.len() {
        visit(levels);
        return;
    }
    for l in 1..=max {
        levels[k] = l;
        enumerate(k + 1, l, levels, visit);
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests stop on failure"
    )]

    use super::*;
    use crate::analysis::{quantize, QuantOptions};
    use crate::passes::PassManager;
    use crate::testing::chain;

    const MARGIN: f64 = 10.0;

    fn circuit(shape: &[usize], specs: &[&str]) -> QCircuit {
        let mut g = chain(shape, specs);
        PassManager::standard().run(&mut g).unwrap();
        quantize(&g, &QuantOptions::default()).unwrap()
    }

    /// n = 8192, six 58-bit q primes, a 60-bit special prime, one 20-bit plaintext prime.
    fn params() -> SimParams {
        SimParams {
            n: 8192,
            q_log2: vec![58.0; 6],
            special_log2: 60.0,
            t: 2f64.powi(20),
            plain_count: 1,
            scheme: Scheme::Bfv,
        }
    }

    fn top_levels(shape: &CircuitShape, p: &SimParams) -> Vec<usize> {
        vec![p.q_log2.len(); shape.points]
    }

    /// Index of the first square of the circuit.
    fn first_square(c: &QCircuit) -> usize {
        c.nodes
            .iter()
            .position(|n| matches!(n.op, QOp::Square { .. }))
            .unwrap()
    }

    fn non_increasing(levels: &[usize]) -> bool {
        levels.windows(2).all(|w| w[0] >= w[1])
    }

    #[test]
    fn the_shape_counts_switch_points() {
        let c = circuit(&[8], &["dense:6", "square", "dense:4", "square", "dense:3"]);
        let shape = CircuitShape::new(&c);
        assert_eq!(shape.squares, 2);
        // Two squares, three linear maps, and the final switch.
        assert_eq!(shape.points, 6);
        assert_eq!(shape.input_len(), 8);
        assert_eq!(shape.output_len(), 3);
        assert_eq!(shape.output(), c.output);
    }

    #[test]
    fn a_wide_to_narrow_map_defers_relinearisation() {
        // 64 squared values read only by a 64 → 2 map: relinearise its 2 outputs, not the 64.
        let c = circuit(&[64], &["dense:64", "square", "dense:2"]);
        let shape = CircuitShape::new(&c);
        let p = params();
        let sim = simulate(&shape, &p, &top_levels(&shape, &p));
        let sq = first_square(&c);
        assert!(
            !sim.steps.contains(&SStep::Relinearize(sq)),
            "{:?}",
            sim.steps
        );
        assert_eq!(sim.regs[sq].size, 3);
        let at = sim.steps.iter().position(|s| *s == SStep::Linear(c.output));
        assert_eq!(
            sim.steps.get(at.unwrap() + 1),
            Some(&SStep::Relinearize(c.output))
        );
        assert_eq!(sim.regs[c.output].size, 2);
    }

    #[test]
    fn a_narrow_to_wide_map_relinearises_the_square() {
        // 2 squared values read by a 2 → 64 map: relinearising the 2 is cheaper.
        let c = circuit(
            &[4],
            &["dense:2", "square", "dense:64", "square", "dense:2"],
        );
        let shape = CircuitShape::new(&c);
        let p = params();
        let sim = simulate(&shape, &p, &top_levels(&shape, &p));
        let sq = first_square(&c);
        let at = sim.steps.iter().position(|s| *s == SStep::Square(sq));
        assert_eq!(
            sim.steps.get(at.unwrap() + 1),
            Some(&SStep::Relinearize(sq))
        );
        assert_eq!(sim.regs[sq].size, 2);
    }

    #[test]
    fn the_full_modulus_switches_nothing() {
        let c = circuit(&[8], &["dense:6", "square", "dense:3"]);
        let shape = CircuitShape::new(&c);
        let p = params();
        let sim = simulate(&shape, &p, &top_levels(&shape, &p));
        assert!(!sim.steps.iter().any(|s| matches!(s, SStep::ModSwitch(..))));
        assert!(sim.regs.iter().all(|r| r.level == 6));
        assert!(holds(&sim, MARGIN));
        // Every plaintext prime is one more run of the circuit.
        let three = SimParams {
            plain_count: 3,
            scheme: Scheme::Bfv,
            ..params()
        };
        let sim3 = simulate(&shape, &three, &top_levels(&shape, &three));
        assert!((sim3.cost_per_image - 3.0 * sim.cost_per_image).abs() < 1e-6);
    }

    #[test]
    fn levels_only_go_down() {
        let c = circuit(
            &[16],
            &["dense:12", "square", "dense:8", "square", "dense:3"],
        );
        let shape = CircuitShape::new(&c);
        let p = params();
        let (greedy, greedy_sim) = choose_levels(&shape, &p, MARGIN).unwrap();
        let (best, best_sim) = optimise_levels(&shape, &p, MARGIN, &greedy);
        for (levels, sim) in [(&greedy, &greedy_sim), (&best, &best_sim)] {
            assert_eq!(levels.len(), shape.points);
            assert!(non_increasing(levels), "{levels:?}");
            assert!(levels.iter().all(|&l| (1..=6).contains(&l)), "{levels:?}");
            assert!(holds(sim, MARGIN));
            // Switches happen in program order at ever lower levels.
            let targets: Vec<usize> = sim
                .steps
                .iter()
                .filter_map(|s| match s {
                    SStep::ModSwitch(_, l) => Some(*l),
                    _ => None,
                })
                .collect();
            assert!(non_increasing(&targets), "{targets:?}");
        }
        // Plenty of budget: primes are dropped, and the refined schedule is no dearer.
        assert!(best.last() < Some(&6), "{best:?}");
        assert!(best_sim.cost_per_image <= greedy_sim.cost_per_image);
    }

    #[test]
    fn the_output_is_switched_as_low_as_the_margin_allows() {
        let c = circuit(
            &[16],
            &["dense:12", "square", "dense:8", "square", "dense:3"],
        );
        let shape = CircuitShape::new(&c);
        // 36-bit primes: one prime does not hold the output, so the margin decides.
        let p = SimParams {
            q_log2: vec![36.0; 6],
            ..params()
        };
        let schedule = |margin: f64| {
            let (greedy, _) = choose_levels(&shape, &p, margin).unwrap();
            optimise_levels(&shape, &p, margin, &greedy)
        };
        let (levels, sim) = schedule(MARGIN);
        let last = *levels.last().unwrap();
        assert!(last > 1, "{levels:?}");
        assert_eq!(sim.regs[c.output].level, last);
        assert!(sim.output_budget >= MARGIN);
        let mut lower = levels.clone();
        *lower.last_mut().unwrap() = last - 1;
        assert!(!holds(&simulate(&shape, &p, &lower), MARGIN), "{levels:?}");
        // A larger margin keeps the output at least as high.
        let (wide, wide_sim) = schedule(40.0);
        assert!(wide_sim.output_budget >= 40.0);
        assert!(wide.last() >= levels.last(), "{wide:?} vs {levels:?}");
    }

    #[test]
    fn an_impossible_margin_has_no_schedule() {
        let c = circuit(&[8], &["dense:6", "square", "dense:3"]);
        let shape = CircuitShape::new(&c);
        assert!(choose_levels(&shape, &params(), 1000.0).is_none());
    }
}
