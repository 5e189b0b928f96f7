//! The packed layout: one ciphertext per register, every value of an image in its own slot.
//!
//! The slot layout ([`super::Plan`] without [`Packing`]) spends one ciphertext per value and
//! one slot per image, which pays off only for thousands of images. The packed layout gives
//! each image a *lane* of slots (a power of two dividing n/2; a row of n/2 slots holds
//! `n/2 / lane` lanes and a ciphertext two rows, so `n / lane` images share each ciphertext)
//! and keeps a whole register of one image in its lane: value `i` of register `r` sits at lane
//! slot `layouts[r][i]`. Slots a layout does not name hold whatever the program left there;
//! nothing reads them.
//!
//! The plan's steps keep their meaning, so the exact reference runs a packed plan unchanged;
//! only the encrypted evaluation differs:
//! - `Square`, `Relinearize`, `ModSwitch` act on the one ciphertext slot-wise (a square's
//!   output has its input's layout);
//! - `Linear` is the diagonal method. Each weight M[r][c] pairs input slot s = in(c) with a
//!   *partial slot* x = out(r) + part·F (F the fold stride, `part` the fold part the
//!   difference d = s − out(r) falls in: part = ⌊d / F⌋ when the step folds, 0 otherwise). The
//!   pairs with the same rotation δ = s − x form one plaintext vector (a "diagonal"), and
//!   `Σ_δ diag_δ ⊙ rot(ct, δ)` puts every product at its partial slot. Rotations are split
//!   baby-step giant-step: δ = G + β with β = δ mod b, so `rot(ct, β)` is shared (hoisted) by
//!   every giant step G and each giant step is one rotation of a sum; the diagonal of a giant
//!   step is stored pre-rotated by −G. A folding step then adds the `parts` partial sums of
//!   each output with log2(parts) rotations (by F·parts/2, …, F), leaving output r at out(r).
//!   Folding lets a dense layer use F diagonals instead of one per input.
//!
//! A diagonal is zero wherever no weight lands, so the leftovers in unnamed slots never reach
//! a named one. [`linear_schedule`] is the one home of this rule: the executor builds its
//! plaintexts from it and the compiler counts its rotations and diagonals with it.

use super::{IntMatrix, Plan, Step};
use crate::bfv::row_rotation_element;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where every register's values sit when a plan runs in the packed layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packing {
    /// Slots per image: a power of two dividing n/2.
    pub lane: usize,
    /// Per register (indexed like [`Plan::registers`]): the lane slot of each value.
    pub layouts: Vec<Vec<u32>>,
    /// Per `Linear` step, in program order: how it is evaluated.
    pub linears: Vec<LinearPacking>,
}

/// How one `Linear` step runs in the packed layout (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearPacking {
    /// Distance between the partial slots of one output (unused when `fold_parts` is 1).
    pub fold_stride: usize,
    /// Partial sums per output, a power of two; 1 means no fold.
    pub fold_parts: usize,
    /// Baby-step size b of the rotations (≥ 1; 1 makes every rotation a giant step).
    pub baby_steps: usize,
    /// Outer-step size g of a three-level split (a multiple of b), or 0 for two levels: the
    /// rotation δ = O + G + β with β = δ mod b, G = (δ − β) mod g and O the rest, so that a
    /// convolution's rotations (map offset + kernel row + kernel column) need keys for each
    /// part rather than for every sum. Absent in plans that do not use it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outer_steps: usize,
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}

/// One giant step of a packed `Linear`: `rot(Σ_terms diag ⊙ rot(input, baby), rotation)`,
/// summed with the other giant steps of its outer step and rotated by `outer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiantStep {
    /// The outer rotation O this step's sum shares with others (0 for none, and always 0
    /// in a two-level split).
    pub outer: i64,
    /// The giant rotation G (left, in slots; 0 for none).
    pub rotation: i64,
    /// The products summed before the rotation.
    pub terms: Vec<DiagonalTerm>,
}

/// One plaintext-vector product of a giant step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagonalTerm {
    /// Which input register of the step (index into its `inputs`).
    pub input: usize,
    /// The baby rotation β applied to that input first.
    pub baby: i64,
    /// Non-zero entries of the diagonal as (lane offset, weight): the offset is the partial
    /// slot plus O + G (pre-rotated by −(O + G)), so it may leave the lane; the executor
    /// places it at lane base + offset, cyclically in the row.
    pub entries: Vec<(i64, i64)>,
}

/// Everything a packed `Linear` does, derived from the matrix and the layouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearSchedule {
    /// Per input register: the baby rotations used, ascending (0 means the input itself).
    pub babies: Vec<Vec<i64>>,
    /// The giant steps, by ascending (outer, rotation).
    pub giants: Vec<GiantStep>,
    /// The fold's rotations, in the order applied (`acc += rot(acc, r)`).
    pub fold: Vec<i64>,
}

impl LinearSchedule {
    /// Number of plaintext-vector products.
    pub fn diagonals(&self) -> usize {
        self.giants.iter().map(|g| g.terms.len()).sum()
    }

    /// Every rotation amount the step uses (baby, giant, outer and fold), without 0.
    pub fn rotations(&self) -> BTreeSet<i64> {
        let babies = self.babies.iter().flatten().copied();
        let giants = self.giants.iter().flat_map(|g| [g.rotation, g.outer]);
        babies
            .chain(giants)
            .chain(self.fold.iter().copied())
            .filter(|&r| r != 0)
            .collect()
    }

    /// The distinct outer rotations, ascending.
    pub fn outers(&self) -> Vec<i64> {
        let set: BTreeSet<i64> = self.giants.iter().map(|g| g.outer).collect();
        set.into_iter().collect()
    }

    /// Key switches the step performs: one per non-zero baby rotation (hoisted per input),
    /// giant rotation, outer rotation and fold rotation.
    pub fn key_switches(&self) -> usize {
        let babies: usize = self
            .babies
            .iter()
            .map(|b| b.iter().filter(|&&r| r != 0).count())
            .sum();
        let giants = self.giants.iter().filter(|g| g.rotation != 0).count();
        let outers = self.outers().into_iter().filter(|&o| o != 0).count();
        babies + giants + outers + self.fold.len()
    }
}

/// A giant step's diagonals while they are collected: (input, baby β) → entries.
type TermsByBaby = BTreeMap<(usize, i64), Vec<(i64, i64)>>;

/// Splits a rotation δ into (outer O, giant G, baby β) for baby size `b` and outer size `g`
/// (0: two levels, O = 0): β = δ mod b, G = (δ − β) mod g, O = δ − β − G.
pub fn split_rotation(delta: i64, b: i64, g: i64) -> (i64, i64, i64) {
    let baby = delta.rem_euclid(b);
    let rest = delta - baby;
    if g == 0 {
        return (0, rest, baby);
    }
    let giant = rest.rem_euclid(g);
    (rest - giant, giant, baby)
}

/// Builds the schedule of a packed `Linear`: `inputs` are the layouts of its input registers
/// in order (the matrix's columns index their concatenation), `output` the layout of its
/// output register. Errors name the first weight that cannot be placed.
pub fn linear_schedule(
    matrix: &IntMatrix,
    inputs: &[&[u32]],
    output: &[u32],
    packing: &LinearPacking,
) -> Result<LinearSchedule, String> {
    let LinearPacking {
        fold_stride,
        fold_parts,
        baby_steps,
        outer_steps,
    } = *packing;
    if baby_steps == 0 {
        return Err("baby_steps must be at least 1".into());
    }
    if !outer_steps.is_multiple_of(baby_steps) {
        return Err(format!(
            "outer steps {outer_steps} are not a multiple of the baby steps {baby_steps}"
        ));
    }
    if !fold_parts.is_power_of_two() || (fold_parts > 1 && fold_stride == 0) {
        return Err(format!(
            "fold of {fold_parts} parts with stride {fold_stride}: parts must be a power of two, \
             the stride positive"
        ));
    }
    // Column c of the matrix → (input register, lane slot).
    let columns: Vec<(usize, i64)> = inputs
        .iter()
        .enumerate()
        .flat_map(|(j, layout)| layout.iter().map(move |&s| (j, i64::from(s))))
        .collect();
    if columns.len() != matrix.cols || output.len() != matrix.rows {
        return Err(format!(
            "a {}×{} matrix between layouts of {} and {} values",
            matrix.rows,
            matrix.cols,
            columns.len(),
            output.len()
        ));
    }
    let (f, parts, b) = (fold_stride as i64, fold_parts as i64, baby_steps as i64);
    let g = outer_steps as i64;
    let mut groups: BTreeMap<(i64, i64), TermsByBaby> = BTreeMap::new();
    for (r, &out) in output.iter().enumerate() {
        let out = i64::from(out);
        for (c, w) in matrix.row(r).filter(|&(_, w)| w != 0) {
            let (j, s) = columns[c];
            let d = s - out;
            let part = if parts > 1 { d.div_euclid(f) } else { 0 };
            if !(0..parts).contains(&part) {
                return Err(format!(
                    "weight ({r}, {c}): input slot {s} lies {d} slots from output slot {out}, \
                     outside the {parts} fold parts of stride {f}"
                ));
            }
            let x = out + part * f;
            let (outer, giant, baby) = split_rotation(s - x, b, g);
            groups
                .entry((outer, giant))
                .or_default()
                .entry((j, baby))
                .or_default()
                .push((x + outer + giant, w));
        }
    }
    let mut babies: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); inputs.len()];
    let giants = groups
        .into_iter()
        .map(|((outer, rotation), terms)| GiantStep {
            outer,
            rotation,
            terms: terms
                .into_iter()
                .map(|((input, baby), mut entries)| {
                    babies[input].insert(baby);
                    entries.sort_unstable();
                    DiagonalTerm {
                        input,
                        baby,
                        entries,
                    }
                })
                .collect(),
        })
        .collect();
    let mut fold = Vec::new();
    let mut half = parts / 2;
    while half >= 1 {
        fold.push(half * f);
        half /= 2;
    }
    Ok(LinearSchedule {
        babies: babies
            .into_iter()
            .map(|set| set.into_iter().collect())
            .collect(),
        giants,
        fold,
    })
}

impl Packing {
    /// Images one ciphertext holds on a ring of degree `degree`: one per lane of each row.
    pub fn images_per_ciphertext(&self, degree: usize) -> usize {
        degree / self.lane.max(1)
    }

    /// The first slot (in the encoder's slot order) of image `image`'s lane: lanes fill row 0,
    /// then row 1.
    pub fn lane_base(&self, degree: usize, image: usize) -> usize {
        let row = degree / 2;
        let per_row = row / self.lane.max(1);
        (image / per_row) * row + (image % per_row) * self.lane
    }

    /// The slot at `offset` from `base` (a lane base), cyclically within base's row: where a
    /// pre-rotated diagonal entry lands.
    pub fn slot_at(degree: usize, base: usize, offset: i64) -> usize {
        let row = degree / 2;
        let start = base / row * row;
        let within = (base - start) as i64 + offset;
        start + within.rem_euclid(row as i64) as usize
    }

    /// The schedule of every `Linear` step of `plan`, in program order (`plan.packing` must be
    /// `self`; [`Plan::validate`] has checked that they build).
    pub fn schedules(&self, plan: &Plan) -> Result<Vec<LinearSchedule>, String> {
        let mut linears = self.linears.iter();
        let mut out = Vec::new();
        for step in &plan.steps {
            let Step::Linear {
                inputs,
                output,
                matrix,
                ..
            } = step
            else {
                continue;
            };
            let packing = linears
                .next()
                .ok_or("fewer linear packings than Linear steps")?;
            let layout = |r: usize| {
                self.layouts
                    .get(r)
                    .map(Vec::as_slice)
                    .ok_or(format!("register {r} has no layout"))
            };
            let ins = inputs
                .iter()
                .map(|&r| layout(r))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(linear_schedule(matrix, &ins, layout(*output)?, packing)?);
        }
        Ok(out)
    }

    /// The Galois elements the plan's rotations need on a ring of degree `degree`, ascending
    /// (rotations by a multiple of n/2 are the identity and need none): exactly the keys a
    /// key set for this plan holds.
    pub fn galois_elements(&self, plan: &Plan) -> Result<Vec<u64>, String> {
        Ok(self
            .galois_levels(plan)?
            .into_iter()
            .map(|(element, _)| element)
            .collect())
    }

    /// Every Galois element the plan's rotations need, ascending, with the highest level a
    /// rotation by it runs at: a key need serve no level above that (see
    /// [`crate::bfv::GaloisKeys::new_at_levels`]), which shrinks the keys of rotations made
    /// after modulus switching.
    pub fn galois_levels(&self, plan: &Plan) -> Result<Vec<(u64, usize)>, String> {
        let degree = plan.params.degree;
        let half = (degree / 2) as i64;
        let mut levels: BTreeMap<u64, usize> = BTreeMap::new();
        let schedules = self.schedules(plan)?;
        for (schedule, level) in schedules.iter().zip(Self::linear_levels(plan)) {
            for r in schedule.rotations() {
                if r.rem_euclid(half) != 0 {
                    let at = levels.entry(row_rotation_element(degree, r)).or_default();
                    *at = (*at).max(level);
                }
            }
        }
        Ok(levels.into_iter().collect())
    }

    /// The level every `Linear` step of `plan` reads its inputs at, in program order: fresh
    /// inputs at the top, each register at its producer's level until a switch lowers it.
    pub fn linear_levels(plan: &Plan) -> Vec<usize> {
        let mut level = vec![plan.params.q_primes.len(); plan.registers.len()];
        let mut out = Vec::new();
        for step in &plan.steps {
            match step {
                Step::Linear { inputs, output, .. } => {
                    let at = inputs
                        .first()
                        .and_then(|&r| level.get(r))
                        .copied()
                        .unwrap_or(0);
                    out.push(at);
                    if let Some(l) = level.get_mut(*output) {
                        *l = at;
                    }
                }
                Step::Square { input, output, .. } => {
                    let at = level.get(*input).copied().unwrap_or(0);
                    if let Some(l) = level.get_mut(*output) {
                        *l = at;
                    }
                }
                Step::ModSwitch {
                    register,
                    level: to,
                } => {
                    if let Some(l) = level.get_mut(*register) {
                        *l = *to;
                    }
                }
                Step::Relinearize { .. } => {}
            }
        }
        out
    }
}

impl Packing {
    /// Checks the layout against `plan` (whose registers and steps are already valid): a lane
    /// that divides the row, one layout per register with distinct slots inside the lane, a
    /// packing per `Linear` whose schedule builds and whose partial slots stay in the lane,
    /// squares that keep their input's layout, and an output not written by a fold (a fold
    /// leaves partial sums of the weights in the output's other slots, which the client would
    /// receive).
    pub(crate) fn validate(&self, plan: &Plan) -> Result<(), String> {
        let degree = plan.params.degree;
        if !self.lane.is_power_of_two() || self.lane > degree / 2 {
            return Err(format!(
                "lane of {} slots: must be a power of two of at most n/2 = {}",
                self.lane,
                degree / 2
            ));
        }
        if self.layouts.len() != plan.registers.len() {
            return Err(format!(
                "{} layouts for {} registers",
                self.layouts.len(),
                plan.registers.len()
            ));
        }
        for (r, (layout, reg)) in self.layouts.iter().zip(&plan.registers).enumerate() {
            self.check_layout(r, layout, reg.len)?;
        }
        let linear_steps = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Linear { .. }))
            .count();
        if self.linears.len() != linear_steps {
            return Err(format!(
                "{} linear packings for {linear_steps} Linear steps",
                self.linears.len()
            ));
        }
        let mut linears = self.linears.iter();
        // Registers holding a fold's leftovers (partial sums of the weights) in their unnamed
        // slots: a square keeps them, a map without a fold clears them (its diagonals are zero
        // there).
        let mut folded = vec![false; plan.registers.len()];
        for (index, step) in plan.steps.iter().enumerate() {
            match step {
                Step::Linear { output, .. } => {
                    let p = linears.next().ok_or("missing linear packing")?;
                    self.check_linear(index, *output, p)?;
                    folded[*output] = p.fold_parts > 1;
                }
                Step::Square { input, output, .. } => {
                    if self.layouts[*input] != self.layouts[*output] {
                        return Err(format!(
                            "step {index}: a square must keep its input's layout"
                        ));
                    }
                    folded[*output] = folded[*input];
                }
                _ => {}
            }
        }
        if folded.get(plan.output.register).copied().unwrap_or(false) {
            return Err(
                "the output register holds a fold's partial sums of the weights in its other \
                 slots, which the client would receive: the output must come from a map \
                 without a fold"
                    .into(),
            );
        }
        self.schedules(plan)?;
        Ok(())
    }

    fn check_layout(&self, register: usize, layout: &[u32], len: usize) -> Result<(), String> {
        if layout.len() != len {
            return Err(format!(
                "register {register}: {} slots for {len} values",
                layout.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for &s in layout {
            if s as usize >= self.lane || !seen.insert(s) {
                return Err(format!(
                    "register {register}: slot {s} repeats or lies outside the lane of {}",
                    self.lane
                ));
            }
        }
        Ok(())
    }

    fn check_linear(&self, index: usize, output: usize, p: &LinearPacking) -> Result<(), String> {
        if p.outer_steps > self.lane || !p.outer_steps.is_multiple_of(p.baby_steps.max(1)) {
            return Err(format!(
                "step {index}: outer steps {} must be a multiple of the baby steps within the lane",
                p.outer_steps
            ));
        }
        if p.baby_steps == 0 || p.baby_steps > self.lane {
            return Err(format!(
                "step {index}: baby steps {} outside 1..={}",
                p.baby_steps, self.lane
            ));
        }
        if p.fold_parts == 1 {
            return Ok(());
        }
        let span = p.fold_stride.checked_mul(p.fold_parts);
        let inside = self.layouts[output]
            .iter()
            .all(|&s| (s as usize) < p.fold_stride);
        if !p.fold_parts.is_power_of_two() || span.is_none_or(|s| s > self.lane) || !inside {
            return Err(format!(
                "step {index}: a fold of {} parts of stride {} must be a power of two of parts \
                 within the lane of {}, with every output slot below the stride",
                p.fold_parts, p.fold_stride, self.lane
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(rows: usize, cols: usize, f: impl Fn(usize, usize) -> i64) -> IntMatrix {
        let mut row_ptr = vec![0];
        let (mut col_idx, mut values) = (Vec::new(), Vec::new());
        for r in 0..rows {
            for c in 0..cols {
                let w = f(r, c);
                if w != 0 {
                    col_idx.push(c as u32);
                    values.push(w);
                }
            }
            row_ptr.push(values.len());
        }
        IntMatrix {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        }
    }

    /// Applies a schedule to one lane in the clear: what the executor does slot by slot.
    fn apply(sched: &LinearSchedule, inputs: &[Vec<i64>], lane: usize) -> Vec<i64> {
        let rot = |v: &[i64], k: i64| -> Vec<i64> {
            (0..lane)
                .map(|i| v[(i as i64 + k).rem_euclid(lane as i64) as usize])
                .collect()
        };
        let mut acc = vec![0i64; lane];
        for outer in sched.outers() {
            let mut mid = vec![0i64; lane];
            for g in sched.giants.iter().filter(|g| g.outer == outer) {
                let mut inner = vec![0i64; lane];
                for t in &g.terms {
                    let rotated = rot(&inputs[t.input], t.baby);
                    for &(off, w) in &t.entries {
                        let i = off.rem_euclid(lane as i64) as usize;
                        inner[i] += w * rotated[i];
                    }
                }
                for (a, v) in mid.iter_mut().zip(rot(&inner, g.rotation)) {
                    *a += v;
                }
            }
            for (a, v) in acc.iter_mut().zip(rot(&mid, outer)) {
                *a += v;
            }
        }
        for &r in &sched.fold {
            let rotated = rot(&acc, r);
            for (a, v) in acc.iter_mut().zip(rotated) {
                *a += v;
            }
        }
        acc
    }

    #[test]
    fn every_schedule_computes_the_matrix_product() {
        let m = dense(5, 12, |r, c| ((r * 7 + c * 3) % 11) as i64 - 5);
        let x: Vec<i64> = (0..12).map(|c| c as i64 * 2 - 7).collect();
        let expected: Vec<i64> = (0..5)
            .map(|r| m.row(r).map(|(c, w)| w * x[c]).sum())
            .collect();
        let lane = 64;
        let in_layout: Vec<u32> = (0..12).map(|c| 9 + 3 * c).collect();
        for (out_layout, packing) in [
            ((0..5).map(|r| 40 + r).collect::<Vec<u32>>(), (0, 1, 1, 0)),
            ((0..5).map(|r| 40 + r).collect(), (0, 1, 4, 0)),
            ((0..5).map(|r| 40 + r).collect(), (0, 1, 2, 6)),
            ((0..5).map(|r| r + 2).collect(), (8, 8, 3, 0)),
            ((0..5).map(|r| r + 2).collect(), (8, 8, 1, 3)),
            ((0..5).collect(), (16, 4, 4, 0)),
        ] {
            let p = LinearPacking {
                fold_stride: packing.0,
                fold_parts: packing.1,
                baby_steps: packing.2,
                outer_steps: packing.3,
            };
            let sched = linear_schedule(&m, &[&in_layout], &out_layout, &p).unwrap();
            let mut lane_in = vec![1000i64; lane];
            for (c, &s) in in_layout.iter().enumerate() {
                lane_in[s as usize] = x[c];
            }
            let out = apply(&sched, &[lane_in], lane);
            let got: Vec<i64> = out_layout.iter().map(|&s| out[s as usize]).collect();
            assert_eq!(got, expected, "{p:?}");
        }
    }

    #[test]
    fn folding_needs_at_most_stride_diagonals() {
        let m = dense(10, 100, |r, c| (r + c) as i64 % 3 + 1);
        let ins: Vec<u32> = (0..100).map(|c| 16 + c).collect();
        let outs: Vec<u32> = (0..10).collect();
        let p = LinearPacking {
            fold_stride: 16,
            fold_parts: 8,
            baby_steps: 4,
            outer_steps: 0,
        };
        let s = linear_schedule(&m, &[&ins], &outs, &p).unwrap();
        assert!(s.diagonals() <= 16, "{}", s.diagonals());
        assert_eq!(s.fold, vec![64, 32, 16]);
        assert_eq!(s.babies[0], vec![0, 1, 2, 3]);
        assert_eq!(s.key_switches(), 3 + 3 + s.giants.len() - 1);
    }

    #[test]
    fn a_three_level_split_needs_keys_for_the_parts_only() {
        // A convolution-like map: 3 maps at offsets 100·m, kernel rows 20·dy, columns dx.
        let offsets: Vec<i64> = (0..3)
            .flat_map(|m| (0..3).flat_map(move |dy| (0..3).map(move |dx| 100 * m + 20 * dy + dx)))
            .collect();
        let two = |b: i64| {
            let keys: BTreeSet<i64> = offsets
                .iter()
                .flat_map(|&d| {
                    let (o, g, beta) = split_rotation(d, b, 0);
                    [o, g, beta]
                })
                .filter(|&r| r != 0)
                .collect();
            keys.len()
        };
        let three: BTreeSet<i64> = offsets
            .iter()
            .flat_map(|&d| {
                let (o, g, beta) = split_rotation(d, 20, 100);
                [o, g, beta]
            })
            .filter(|&r| r != 0)
            .collect();
        assert_eq!(three.len(), 2 + 2 + 2);
        assert!((1..=30).all(|b| two(b) > three.len()));
        assert_eq!(split_rotation(-7, 4, 8), (-8, 0, 1));
        assert_eq!(split_rotation(13, 4, 8), (8, 4, 1));
    }

    #[test]
    fn a_weight_outside_the_fold_is_refused() {
        let m = dense(2, 2, |_, _| 1);
        let p = LinearPacking {
            fold_stride: 4,
            fold_parts: 2,
            baby_steps: 1,
            outer_steps: 0,
        };
        let err = linear_schedule(&m, &[&[0, 1]], &[2, 3], &p).unwrap_err();
        assert!(err.contains("outside the 2 fold parts"), "{err}");
    }

    #[test]
    fn lanes_fill_row_zero_then_row_one() {
        let p = Packing {
            lane: 4,
            layouts: vec![],
            linears: vec![],
        };
        assert_eq!(p.images_per_ciphertext(16), 4);
        assert_eq!(p.lane_base(16, 1), 4);
        assert_eq!(p.lane_base(16, 2), 8);
        assert_eq!(Packing::slot_at(16, 12, 5), 9);
        assert_eq!(Packing::slot_at(16, 4, -5), 7);
    }
}
