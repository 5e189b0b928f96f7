//! Layout assignment: where each register's values sit in an image's lane, and how each
//! `Linear` runs ([`LinearPacking`]).
//!
//! The rule every choice is measured with is the runtime's [`linear_schedule`]; this module
//! only chooses its inputs:
//! - the input register sits at `margin, margin + 1, …` (the margin keeps it above the output
//!   slots of a later fold, which must not lie above the inputs they read);
//! - a square keeps its input's layout (the packed square acts slot-wise);
//! - a `Linear` either places its rows *greedily* (each row at the free slot that reuses the
//!   most rotations δ = input slot − output slot already used; a convolution then needs about
//!   one diagonal per kernel offset, whatever its number of outputs) or *folds* (rows at
//!   slots 0, 1, … below the stride F = next_pow2(rows), the products of each row split into
//!   parts of F slots summed by log2(parts) rotations: at most F diagonals for a dense map);
//!   whichever the cost proxy prefers. The map producing the plan's output never folds;
//! - the baby-step size of each map is the candidate with the cheapest rotations.

use super::cost;
use super::split;
use std::collections::{BTreeSet, HashMap, HashSet};
use veil_runtime::plan::packing::{linear_schedule, LinearSchedule};
use veil_runtime::plan::{IntMatrix, LinearPacking, Packing, Plan, Step};

/// Rows with more non-zero weights than this are placed one after the other instead of by the
/// greedy search (whose work grows with the weights per row times the rotations in use).
const GREEDY_MAX_ROW_WEIGHTS: usize = 256;

/// Largest baby-step size tried (a power of two).
const MAX_BABY_STEPS: usize = 2048;

/// Ring degree and level at which candidate layouts are compared (the figures only rank
/// layouts; the parameter search prices the chosen one exactly).
const PROXY_DEGREE: usize = 16384;
/// See [`PROXY_DEGREE`].
const PROXY_LEVEL: usize = 4;

/// A layout and its schedules, before parameters are chosen.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// The packing (lane, layouts, per-`Linear` packing).
    pub packing: Packing,
    /// The schedule of every `Linear` step, in program order.
    pub schedules: Vec<LinearSchedule>,
}

impl Assignment {
    /// The cost proxy of the layout: its linear maps at a nominal level and degree.
    pub fn proxy_cost(&self) -> f64 {
        self.schedules
            .iter()
            .map(|s| cost::linear(s, PROXY_LEVEL, PROXY_DEGREE))
            .sum()
    }
}

/// Chooses the packed layout of `plan` (a slot-layout plan: its registers, steps and matrices
/// are what is packed). The margin below the input and every greedy output is tried at 0 (no
/// fold can apply) and at the row count of each map that may fold (its outputs sit below the
/// margin, so every input it reads lies above them); the cheapest layout by the cost proxy,
/// then the narrowest lane, wins. Errors are schedule failures (a compiler bug).
pub fn assign(plan: &Plan, key_cost: f64) -> Result<Assignment, String> {
    let mut margins: BTreeSet<u32> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Linear { output, matrix, .. } if *output != plan.output.register => {
                u32::try_from(matrix.rows).ok()
            }
            _ => None,
        })
        .collect();
    margins.insert(0);
    let mut best: Option<(f64, usize, Assignment)> = None;
    for margin in margins {
        let candidate = assign_with_margin(plan, margin, key_cost)?;
        let key = (candidate.proxy_cost(), candidate.packing.lane);
        if best.as_ref().is_none_or(|(c, l, _)| key < (*c, *l)) {
            best = Some((key.0, key.1, candidate));
        }
    }
    best.map(|(_, _, a)| a).ok_or_else(|| "no layout".into())
}

/// The layout with the input at `margin` and every greedy output at or above it.
fn assign_with_margin(plan: &Plan, margin: u32, key_cost: f64) -> Result<Assignment, String> {
    let mut layouts: Vec<Option<Vec<u32>>> = vec![None; plan.registers.len()];
    let input_len = plan.registers[plan.input.register].len as u32;
    layouts[plan.input.register] = Some((margin..margin + input_len).collect());
    let mut chosen = Vec::new();
    for step in &plan.steps {
        match step {
            Step::Square { input, output, .. } => {
                layouts[*output] = layouts[*input].clone();
            }
            Step::Linear {
                inputs,
                output,
                matrix,
                ..
            } => {
                let ins: Vec<&[u32]> = inputs
                    .iter()
                    .map(|&r| {
                        layouts[r]
                            .as_deref()
                            .ok_or(format!("register {r} unplaced"))
                    })
                    .collect::<Result<_, _>>()?;
                let may_fold = *output != plan.output.register;
                let (out, packing, schedule) = place_linear(matrix, &ins, margin, may_fold)?;
                layouts[*output] = Some(out);
                chosen.push((packing, schedule));
            }
            Step::Relinearize { .. } | Step::ModSwitch { .. } => {}
        }
    }
    let layouts: Vec<Vec<u32>> = layouts.into_iter().map(Option::unwrap_or_default).collect();
    let lane = lane_for(&layouts, chosen.iter().map(|(p, _)| p));
    // Rotation splits last, in program order: their candidates go up to the lane, and each
    // map reuses the keys of the maps before it.
    let mut linears = Vec::new();
    let mut schedules = Vec::new();
    let mut held = BTreeSet::new();
    let mut index = 0;
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
        let ins: Vec<&[u32]> = inputs.iter().map(|&r| layouts[r].as_slice()).collect();
        let (packing, schedule) = best_split(
            matrix,
            &ins,
            &layouts[*output],
            chosen[index].0,
            lane,
            (&mut held, key_cost),
        )?;
        linears.push(packing);
        schedules.push(schedule);
        index += 1;
    }
    Ok(Assignment {
        packing: Packing {
            lane,
            layouts,
            linears,
        },
        schedules,
    })
}

/// The smallest power-of-two lane holding every named slot and every fold's partial slots.
fn lane_for<'a>(layouts: &[Vec<u32>], linears: impl Iterator<Item = &'a LinearPacking>) -> usize {
    let named = layouts
        .iter()
        .flatten()
        .map(|&s| s as usize + 1)
        .max()
        .unwrap_or(1);
    let folds = linears
        .filter(|p| p.fold_parts > 1)
        .map(|p| p.fold_stride * p.fold_parts)
        .max()
        .unwrap_or(1);
    named.max(folds).next_power_of_two()
}

/// Output layout, packing (baby steps 1 for now) and schedule of one map: the folded and the
/// greedy placements are both tried and the cheaper kept.
fn place_linear(
    m: &IntMatrix,
    ins: &[&[u32]],
    margin: u32,
    may_fold: bool,
) -> Result<(Vec<u32>, LinearPacking, LinearSchedule), String> {
    let greedy_out = place_greedy(m, ins, margin);
    let unfolded = LinearPacking {
        fold_stride: 0,
        fold_parts: 1,
        baby_steps: 1,
        outer_steps: 0,
    };
    let greedy = linear_schedule(m, ins, &greedy_out, &unfolded)?;
    let mut best = (greedy_out, unfolded, greedy);
    if let Some((out, packing)) = may_fold.then(|| fold_placement(m, ins)).flatten() {
        let folded = linear_schedule(m, ins, &out, &packing)?;
        let price = |s: &LinearSchedule| cost::linear(s, PROXY_LEVEL, PROXY_DEGREE);
        // Compared at their best baby steps: the greedy map may need many more rotations.
        let (_, a) = best_baby_steps(m, ins, &best.0, best.1, MAX_BABY_STEPS)?;
        let (_, b) = best_baby_steps(m, ins, &out, packing, MAX_BABY_STEPS)?;
        if price(&b) < price(&a) {
            best = (out, packing, folded);
        }
    }
    Ok(best)
}

/// Rows at slots 0..rows, stride F = next_pow2(rows), parts enough to reach the highest input
/// slot; `None` when some weight reads a slot below its row's (a fold cannot reach it).
fn fold_placement(m: &IntMatrix, ins: &[&[u32]]) -> Option<(Vec<u32>, LinearPacking)> {
    let columns: Vec<u32> = ins.iter().flat_map(|l| l.iter().copied()).collect();
    let mut highest = 0u32;
    for r in 0..m.rows {
        for (c, _) in m.row(r).filter(|&(_, w)| w != 0) {
            let s = columns[c];
            if (s as usize) < r {
                return None;
            }
            highest = highest.max(s);
        }
    }
    let stride = m.rows.next_power_of_two();
    let parts = (highest as usize / stride + 1).next_power_of_two();
    let out = (0..m.rows as u32).collect();
    Some((
        out,
        LinearPacking {
            fold_stride: stride,
            fold_parts: parts,
            baby_steps: 1,
            outer_steps: 0,
        },
    ))
}

/// Row placement without fold. A row whose weights are those of the previous row moved by τ
/// input slots (a convolution's next output: same kernel, window moved) goes τ slots after it,
/// so both use the same rotations; any other row starts a group in fresh slots. [`compact`]
/// then moves each group into the free slots of the earlier ones where it adds the fewest new
/// rotations, and the whole layout is shifted to start at `margin` (a common shift changes
/// every rotation by the same amount, so it keeps their number).
fn place_greedy(m: &IntMatrix, ins: &[&[u32]], margin: u32) -> Vec<u32> {
    let columns: Vec<(usize, i64)> = ins
        .iter()
        .enumerate()
        .flat_map(|(j, l)| l.iter().map(move |&s| (j, i64::from(s))))
        .collect();
    let rows: Vec<Vec<(usize, i64, i64)>> = (0..m.rows)
        .map(|r| {
            m.row(r)
                .filter(|&(_, w)| w != 0)
                .map(|(c, w)| (columns[c].0, columns[c].1, w))
                .collect()
        })
        .collect();
    let mut used: HashSet<i64> = HashSet::new();
    let mut placed = vec![0i64; m.rows];
    let mut groups = vec![0];
    let mut next_free = 0i64;
    for r in 0..m.rows {
        let follow = r
            .checked_sub(1)
            .and_then(|p| translation(&rows[p], &rows[r]).map(|tau| placed[p] + tau))
            .filter(|o| !used.contains(o));
        let o = follow.unwrap_or_else(|| {
            if r > 0 {
                groups.push(r);
            }
            next_free
        });
        used.insert(o);
        next_free = next_free.max(o + 1);
        placed[r] = o;
    }
    let rows: Vec<Vec<(usize, i64)>> = rows
        .into_iter()
        .map(|row| row.into_iter().map(|(j, s, _)| (j, s)).collect())
        .collect();
    compact(&mut placed, &rows, &groups, ins.len(), i64::from(margin));
    let low = placed.iter().copied().min().unwrap_or(0);
    placed
        .into_iter()
        .map(|o| (o - low) as u32 + margin)
        .collect()
}

/// The input shift τ that carries most of row `a`'s weights onto proportional weights of row
/// `b` (same input register, same sign, ratio within a quarter octave of one common ratio: rows
/// are quantised each with its own scale, so a convolution's edge row, cut short by padding,
/// may have a different one), if it carries at least half of the shorter row's; `None` for
/// rows of more than [`GREEDY_MAX_ROW_WEIGHTS`] weights.
fn translation(a: &[(usize, i64, i64)], b: &[(usize, i64, i64)]) -> Option<i64> {
    if a.len() > GREEDY_MAX_ROW_WEIGHTS || b.len() > GREEDY_MAX_ROW_WEIGHTS {
        return None;
    }
    let mut votes: HashMap<(i64, i64), usize> = HashMap::new();
    for &(ja, sa, wa) in a {
        for &(_, sb, wb) in b
            .iter()
            .filter(|&&(jb, _, wb)| jb == ja && (wa > 0) == (wb > 0))
        {
            let ratio = (4.0 * (wb as f64 / wa as f64).log2()).round() as i64;
            *votes.entry((sb - sa, ratio)).or_default() += 1;
        }
    }
    let need = (a.len().min(b.len()) / 2).max(1);
    votes
        .into_iter()
        .filter(|&(_, v)| v >= need)
        .max_by_key(|&((tau, ratio), v)| {
            (v, std::cmp::Reverse(ratio.abs()), std::cmp::Reverse(tau))
        })
        .map(|((tau, _), _)| tau)
}

/// Most shifts [`compact`] tries per region (each checks every row of the region).
const MAX_COMPACT_SHIFTS: i64 = 1 << 14;

/// Moves the regions the greedy placement opened (rows `groups[g]..groups[g + 1]`) down into
/// the free slots of the earlier ones: each region, in order, takes the shift that collides
/// with no earlier row and keeps the lane (the span above `margin`, to the next power of two)
/// smallest, then adds the fewest new rotations, then spans least. A region moves as a whole,
/// so its own rotations stay one pattern (a shift moves all of them by the same amount).
fn compact(
    placed: &mut [i64],
    rows: &[Vec<(usize, i64)>],
    groups: &[usize],
    inputs: usize,
    margin: i64,
) {
    let mut used: HashSet<i64> = HashSet::new();
    let mut deltas: Vec<HashSet<i64>> = vec![HashSet::new(); inputs];
    let mut span = (i64::MAX, i64::MIN);
    for (g, &start) in groups.iter().enumerate() {
        let end = groups.get(g + 1).copied().unwrap_or(placed.len());
        let members = start..end;
        let (lo, hi) = members
            .clone()
            .map(|r| placed[r])
            .fold((i64::MAX, i64::MIN), |(a, b), o| (a.min(o), b.max(o)));
        let mut best: Option<((u64, usize, i64), i64)> = None;
        let small = members
            .clone()
            .all(|r| rows[r].len() <= GREEDY_MAX_ROW_WEIGHTS);
        if g > 0 && small {
            // From the start of the span (or below it by the region's width) upwards.
            let first = span.0 - (hi - lo);
            let shifts = (first - lo..=span.1 + 1 - lo).take(MAX_COMPACT_SHIFTS as usize);
            for shift in shifts {
                if members.clone().any(|r| used.contains(&(placed[r] + shift))) {
                    continue;
                }
                let new: usize = members
                    .clone()
                    .flat_map(|r| rows[r].iter().map(move |&(j, s)| (j, s, r)))
                    .filter(|&(j, s, r)| !deltas[j].contains(&(s - placed[r] - shift)))
                    .map(|_| 1)
                    .sum();
                let width = (hi + shift).max(span.1) - (lo + shift).min(span.0) + 1;
                let lane = ((margin + width).max(1) as u64).next_power_of_two();
                let key = (lane, new, width);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, shift));
                }
            }
        }
        let shift = best.map_or(0, |(_, s)| s);
        for r in members {
            placed[r] += shift;
            used.insert(placed[r]);
            for &(j, s) in &rows[r] {
                deltas[j].insert(s - placed[r]);
            }
            span = (span.0.min(placed[r]), span.1.max(placed[r]));
        }
    }
}

/// The rotation split ([`split::best`]) of a map whose layouts are fixed: the baby and outer
/// step sizes that cost the fewest rotations and new keys given the rotation amounts already
/// `held` (which it extends with its own, the fold's included).
fn best_split(
    m: &IntMatrix,
    ins: &[&[u32]],
    out: &[u32],
    packing: LinearPacking,
    lane: usize,
    (held, key_cost): (&mut BTreeSet<i64>, f64),
) -> Result<(LinearPacking, LinearSchedule), String> {
    let first = linear_schedule(m, ins, out, &packing)?;
    // Offsets stay within a lane, far below any ring row: no amount wraps around.
    let row = i64::from(u32::MAX) as usize;
    let chosen = split::best(&split::offsets(&first), lane, row, held, key_cost);
    let p = LinearPacking {
        baby_steps: chosen.baby,
        outer_steps: chosen.outer,
        ..packing
    };
    let schedule = linear_schedule(m, ins, out, &p)?;
    held.extend(schedule.rotations());
    Ok((p, schedule))
}

/// The baby-step size (1, 2, 4, … up to the lane, and the square root of the diagonal count)
/// whose rotations cost least; returns the packing with it and its schedule.
fn best_baby_steps(
    m: &IntMatrix,
    ins: &[&[u32]],
    out: &[u32],
    packing: LinearPacking,
    lane: usize,
) -> Result<(LinearPacking, LinearSchedule), String> {
    let first = linear_schedule(m, ins, out, &packing)?;
    let diagonals = first.diagonals().max(1);
    let most = lane.min(MAX_BABY_STEPS);
    let mut candidates: Vec<usize> = (0..=most.trailing_zeros()).map(|k| 1usize << k).collect();
    candidates.push(((diagonals as f64).sqrt().round() as usize).clamp(1, lane));
    let mut best = (
        cost::linear(&first, PROXY_LEVEL, PROXY_DEGREE),
        packing,
        first,
    );
    for b in candidates {
        let p = LinearPacking {
            baby_steps: b,
            ..packing
        };
        let s = linear_schedule(m, ins, out, &p)?;
        let c = cost::linear(&s, PROXY_LEVEL, PROXY_DEGREE);
        if c < best.0 {
            best = (c, p, s);
        }
    }
    Ok((best.1, best.2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests stop on failure")]

    use super::*;

    /// A matrix from rows of (column, weight).
    fn matrix(cols: usize, rows: &[Vec<(u32, i64)>]) -> IntMatrix {
        let mut row_ptr = vec![0];
        let (mut col_idx, mut values) = (Vec::new(), Vec::new());
        for row in rows {
            for &(c, w) in row {
                col_idx.push(c);
                values.push(w);
            }
            row_ptr.push(values.len());
        }
        IntMatrix {
            rows: rows.len(),
            cols,
            row_ptr,
            col_idx,
            values,
        }
    }

    /// `maps` 3×3 convolutions (stride 1, no padding) of a `side`×`side` image, map-major.
    fn conv(side: usize, maps: usize) -> IntMatrix {
        let out = side - 2;
        let mut rows = Vec::new();
        for m in 0..maps {
            for y in 0..out {
                for x in 0..out {
                    let row = (0..9)
                        .map(|k| {
                            let c = (y + k / 3) * side + x + k % 3;
                            (c as u32, (m * 9 + k) as i64 % 7 - 3)
                        })
                        .filter(|&(_, w)| w != 0)
                        .collect();
                    rows.push(row);
                }
            }
        }
        matrix(side * side, &rows)
    }

    #[test]
    fn a_convolution_needs_about_one_diagonal_per_kernel_offset_and_map() {
        let m = conv(10, 3);
        let input: Vec<u32> = (0..100).collect();
        let out = place_greedy(&m, &[&input], 0);
        let distinct: HashSet<u32> = out.iter().copied().collect();
        assert_eq!(distinct.len(), m.rows, "distinct output slots");
        let p = LinearPacking {
            fold_stride: 0,
            fold_parts: 1,
            baby_steps: 1,
            outer_steps: 0,
        };
        let s = linear_schedule(&m, &[&input], &out, &p).unwrap();
        // 27 if every map kept its own rotations; compaction puts a narrow lane first and
        // may add a few.
        assert!(s.diagonals() <= 4 * 9, "{}", s.diagonals());
        // The 192 outputs stay within the lane they need anyway (256 slots).
        let span = out.iter().max().unwrap() - out.iter().min().unwrap();
        assert!(span < 256, "{span}");
    }

    #[test]
    fn a_translated_row_follows_its_predecessor() {
        let a = [(0, 10, 3), (0, 11, -2), (0, 20, 5), (0, 21, 7)];
        let b = [(0, 12, 3), (0, 13, -2), (0, 22, 5), (0, 23, 7)];
        assert_eq!(translation(&a, &b), Some(2));
        // The same weights at another scale (edge rows are quantised on their own).
        let doubled = [(0, 12, 6), (0, 13, -4), (0, 22, 10), (0, 23, 14)];
        assert_eq!(translation(&a, &doubled), Some(2));
        // Other weights (another output map): a new group.
        let c = [(0, 12, -3), (0, 13, 2), (0, 22, -5), (0, 23, -7)];
        assert_eq!(translation(&a, &c), None);
    }

    #[test]
    fn a_dense_map_folds_to_at_most_its_stride_in_diagonals() {
        let rows: Vec<Vec<(u32, i64)>> = (0..5)
            .map(|r| {
                (0..40)
                    .map(|c| (c, ((r * 3 + c as usize) % 5) as i64 - 2))
                    .collect()
            })
            .map(|row: Vec<(u32, i64)>| row.into_iter().filter(|&(_, w)| w != 0).collect())
            .collect();
        let m = matrix(40, &rows);
        let above: Vec<u32> = (8..48).collect();
        let (out, p) = fold_placement(&m, &[&above]).unwrap();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert_eq!((p.fold_stride, p.fold_parts), (8, 8));
        let s = linear_schedule(&m, &[&above], &out, &p).unwrap();
        assert!(s.diagonals() <= 8, "{}", s.diagonals());
        // Inputs below the rows' slots cannot be folded into them.
        let low: Vec<u32> = (0..40).collect();
        assert!(fold_placement(&m, &[&low]).is_none());
    }

    #[test]
    fn baby_steps_trade_rotations_for_hoisted_ones() {
        let m = conv(12, 4);
        let input: Vec<u32> = (0..144).collect();
        let out = place_greedy(&m, &[&input], 0);
        let p = LinearPacking {
            fold_stride: 0,
            fold_parts: 1,
            baby_steps: 1,
            outer_steps: 0,
        };
        let plain = linear_schedule(&m, &[&input], &out, &p).unwrap();
        let (chosen, s) = best_baby_steps(&m, &[&input], &out, p, 256).unwrap();
        assert_eq!(s.diagonals(), plain.diagonals());
        let price = |s: &LinearSchedule| cost::linear(s, PROXY_LEVEL, PROXY_DEGREE);
        assert!(price(&s) <= price(&plain));
        assert!(chosen.baby_steps >= 1 && chosen.baby_steps <= 256);
    }
}
