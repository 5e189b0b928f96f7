//! How many low bits of each coefficient the two sides round away from their messages
//! (the runtime's `Ciphertext::round_low_bits`), chosen with the noise model so that
//! decryption stays exact. The plan records the choice ([`Compression`]); both sides read it
//! from there.
//!
//! Rounding a component to a multiple of `2^k` moves each coefficient by at most `2^(k−1)`
//! modulo `Q`. In the phase `c0 + c1·s + c2·s²` that is, in the units of [`model`] (noise
//! `e = ‖v‖·Q/t`, the error next to the message), the same as the rounding of a modulus switch
//! scaled by `2^k`:
//!
//! | rounded | noise added (BFV's units; BGV's are `t` times these) |
//! | --- | --- |
//! | `c0` of an upload by `k` bits | `2^k/2` (no secret factor: `c1` is a seed) |
//! | a result's components by `k0, k1, k2` bits | `(2^k0 + 1.5·δ·2^k1 + δ²·2^k2)/2` |
//!
//! with `δ = 2√n`. A coefficient of `r·s`, for a rounding `r` and the ternary secret `s`, is a
//! sum of `n` terms of at most `2^(k−1)`: at most `‖s‖₁·2^(k−1) ≤ n·2^(k−1)` in the worst case,
//! about `δ·2^(k−1)` with high probability (its standard deviation is `2^k·√(n/18)`, so `δ` is
//! over four of them). The model takes `1.5·δ`, as [`model::switch_rounding`] does for the rounding of a
//! switch.
//!
//! **Uploads.** The rounded inputs start with that much more noise; the circuit is simulated
//! again with it, on the same schedule, and a count holds while every register keeps a
//! positive budget and the output the margin. The model adds the rounding to every input's
//! noise and carries it through the linear maps by their `L1` norms, as any other noise, so
//! it is pessimistic here: the roundings of different inputs are independent.
//!
//! **Downloads.** After the last step the output is at the smallest modulus the schedule
//! allows (see [`super::schedule`]). Its predicted noise `e` may be optimistic by as much as
//! the margin (that is what the margin is for), so the rounding must fit beside `e·2^margin`:
//! `budget(e·2^margin + rounding) ≥ ROUNDING_MARGIN_BITS`, and the results keep
//! `DOWNLOAD_BUDGET_BITS` at the predicted noise, `budget(e + rounding)`. Since `c1`'s rounding is
//! multiplied by `δ` and `c0`'s is not, `c0` drops about `log2 δ` bits more; among the
//! counts that hold, the fewest bytes win.
//!
//! Both sides draw on the same budget (rounded uploads leave more noise at the output, hence
//! less room for rounding the results), so the pair is chosen together: the upload count and
//! its best download counts that send the fewest bytes per image in all.
//!
//! **BGV.** A BGV component travels as BFV's rounding of `t⁻¹·c` and is multiplied back by `t`
//! when read (the runtime's `bgv::Ciphertext::round_low_bits`): the phase moves by `t` times
//! the rounding above, a multiple of `t` that leaves the message alone. BGV's noise counts the
//! whole phase (see [`super::bgv`]), so its rounding is `t` times BFV's ([`SimParams::rounding`])
//! against a budget that does not subtract `log2 t`: the same bits fit, and the search below is
//! the same for both schemes, with the scheme's noise model.
//!
//! Every count also stays below what [`veil_runtime::plan::Plan::validate`] accepts
//! (`k + bits(t) < bits(Q)`).

use super::model;
use super::schedule::{simulate_from, CircuitShape, RegState, SimParams, Simulation};
use super::Chosen;
use crate::analysis::QCircuit;
use veil_runtime::bfv::{coefficient_bits, modulus_bits};
use veil_runtime::plan::{Compression, Plan};

/// Budget (bits) the rounding of results must leave after the output's predicted noise has
/// been inflated by the whole margin: none, since the margin is already the safety (the
/// results still decrypt exactly if the circuit's noise is `2^margin` times the prediction
/// *and* the rounding reaches its bound).
pub const ROUNDING_MARGIN_BITS: f64 = 0.0;

/// The least predicted budget of results as the client receives them (the output's predicted
/// noise plus the rounding, not inflated): one whole bit, so that the budget the client
/// measures stays positive while the prediction holds. The runtime reports whole bits rounded
/// down, and a prediction of 0.2 bits (what BGV's CryptoNets plan got without this) reads as a
/// measured 0, which looks like a failure although decryption is exact. It costs at most one
/// bit of `c0` per result coefficient, and nothing where the margin's rule leaves more.
pub const DOWNLOAD_BUDGET_BITS: f64 = 1.0;

/// Noise of an input whose `c0` had `k` low bits rounded away, in the scheme of `sp`.
pub fn rounded_fresh(sp: &SimParams, k: u32) -> f64 {
    sp.fresh() + sp.rounding(&[k])
}

/// Noise added by rounding away `bits[i]` low bits of component `i` (0: kept exact), in BFV's
/// units: the rounding of a modulus switch ([`model::switch_rounding`]) scaled by `2^k` per
/// component. (BGV's is `t` times as much, [`super::bgv::rounding`]; [`SimParams::rounding`]
/// chooses.)
pub fn rounding(bits: &[u32], n: usize) -> f64 {
    let d = model::expansion(n);
    bits.iter()
        .zip([1.0, model::SWITCH_ROUNDING_FACTOR * d, d * d])
        .filter(|(&k, _)| k > 0)
        .map(|(&k, factor)| factor * f64::from(k).exp2() / 2.0)
        .sum()
}

/// The compiler's choice: the counts, the simulation with rounded uploads, and the budget the
/// client should measure on the rounded results.
#[derive(Clone, Debug)]
pub struct Rounding {
    /// What the plan records.
    pub compression: Compression,
    /// The schedule's simulation with the rounded uploads' noise.
    pub sim: Simulation,
    /// Predicted budget of the results as the client receives them (after their rounding).
    pub download_budget: f64,
}

impl Rounding {
    /// Records the counts in `plan`, whose predicted budget becomes the one the client measures
    /// (the output register keeps the circuit's own).
    pub fn apply(&self, plan: &mut Plan) {
        plan.compression = self.compression.clone();
        plan.predicted_noise_budget_bits = self.download_budget;
    }
}

/// The simulation parameters of chosen primes, as the search saw them.
pub fn sim_params(chosen: &Chosen) -> SimParams {
    SimParams {
        n: chosen.n,
        q_log2: chosen.q_primes.iter().map(|&q| (q as f64).log2()).collect(),
        special_log2: (chosen.special_prime as f64).log2(),
        t: chosen.plain_primes.iter().copied().max().unwrap_or(2) as f64,
        plain_count: chosen.plain_primes.len(),
        scheme: chosen.scheme,
    }
}

/// Whether a simulation keeps `margin` bits at the output and a positive budget everywhere.
fn holds(s: &Simulation, margin: f64) -> bool {
    s.output_budget >= margin && s.min_budget > 0.0
}

/// Bits of the largest plaintext prime.
fn t_bits(chosen: &Chosen) -> u32 {
    chosen
        .plain_primes
        .iter()
        .map(|t| 64 - t.leading_zeros())
        .max()
        .unwrap_or(0)
}

/// Chooses the low bits to round away for `chosen`'s parameters and schedule, keeping
/// `margin`: among the upload counts whose rounded inputs keep the margin, with for each the
/// download counts [`choose_download`] allows, the pair that sends the fewest bytes per image.
pub fn choose(c: &QCircuit, chosen: &Chosen, margin: f64) -> Rounding {
    let shape = CircuitShape::new(c);
    let sp = sim_params(chosen);
    let t_bits = t_bits(chosen);
    let q_top = &chosen.q_primes;
    let limit = modulus_bits(q_top).saturating_sub(t_bits + 1);
    let mut best: Option<(f64, Rounding)> = None;
    for k in (0..=limit).rev() {
        let sim = simulate_from(&shape, &sp, &chosen.levels, rounded_fresh(&sp, k));
        if k > 0 && !upload_holds(&sim, margin) {
            continue;
        }
        let out = sim.regs[shape.output()];
        let q = &q_top[..out.level.min(q_top.len())];
        let download_bits = choose_download(&out, &sp, q, t_bits, margin);
        let down: u32 = (0..out.size)
            .map(|i| coefficient_bits(q, download_bits.get(i).copied().unwrap_or(0)))
            .sum();
        let bits = shape.input_len() as f64 * f64::from(coefficient_bits(q_top, k))
            + shape.output_len() as f64 * f64::from(down);
        if best.as_ref().is_some_and(|(b, _)| *b <= bits) {
            continue;
        }
        let download_budget = download_budget(&out, &sp, &download_bits);
        let rounding = Rounding {
            compression: Compression {
                upload_bits: k,
                download_bits,
            },
            sim,
            download_budget,
        };
        best = Some((bits, rounding));
    }
    match best {
        Some((_, rounding)) => rounding,
        None => {
            let sim = simulate_from(&shape, &sp, &chosen.levels, rounded_fresh(&sp, 0));
            let download_budget = sim.output_budget;
            Rounding {
                compression: Compression::default(),
                sim,
                download_budget,
            }
        }
    }
}

/// Whether the circuit, run on uploads rounded as `rounded` simulates, still keeps `margin`
/// at the output and a positive budget everywhere.
pub fn upload_holds(rounded: &Simulation, margin: f64) -> bool {
    holds(rounded, margin)
}

/// log2 of the output's modulus and its noise (spread and constant).
fn output_noise(out: &RegState, sp: &SimParams) -> (f64, f64) {
    let log2_q: f64 = sp.q_log2.iter().take(out.level).sum();
    (log2_q, out.noise + out.noise_const)
}

/// Whether results rounded by `bits` still decrypt exactly when the output's noise is as much
/// as `2^margin` times the prediction, with [`ROUNDING_MARGIN_BITS`] to spare, and keep
/// [`DOWNLOAD_BUDGET_BITS`] at the predicted noise.
pub fn download_holds(out: &RegState, sp: &SimParams, bits: &[u32], margin: f64) -> bool {
    let (log2_q, e) = output_noise(out, sp);
    let rounding = sp.rounding(bits);
    sp.budget(e * margin.exp2() + rounding, log2_q) >= ROUNDING_MARGIN_BITS
        && sp.budget(e + rounding, log2_q) >= DOWNLOAD_BUDGET_BITS
}

/// Predicted budget of results rounded by `bits`.
pub fn download_budget(out: &RegState, sp: &SimParams, bits: &[u32]) -> f64 {
    let (log2_q, e) = output_noise(out, sp);
    sp.budget(e + sp.rounding(bits), log2_q)
}

/// The counts, one per component of the output, that take the fewest bits per coefficient
/// while [`download_holds`]; empty when no rounding does. `q` are the output's primes.
fn choose_download(
    out: &RegState,
    sp: &SimParams,
    q: &[u64],
    t_bits: u32,
    margin: f64,
) -> Vec<u32> {
    let limit = modulus_bits(q).saturating_sub(t_bits + 1);
    let width: Vec<u32> = (0..=limit).map(|k| coefficient_bits(q, k)).collect();
    let none = vec![0; out.size];
    // The largest k0 that holds beside the other components' counts: from the room left,
    // then checked (and lowered where floating point disagrees).
    let (log2_q, e) = output_noise(out, sp);
    let room = sp.noise_limit(log2_q, ROUNDING_MARGIN_BITS) - e * margin.exp2();
    // What rounding c0 by one bit adds: by k bits, 2^(k−1) times as much.
    let one_bit = sp.rounding(&[1]);
    let best_c0 = |rest: &[u32]| {
        let mut bits = vec![0; out.size];
        bits[1..].copy_from_slice(rest);
        let left = room - sp.rounding(&bits);
        if left < 0.0 {
            return None;
        }
        let start = ((left / one_bit).log2().floor().max(-1.0) + 1.0) as u32;
        let start = start.min(limit);
        (0..=start).rev().find(|&k0| {
            bits[0] = k0;
            download_holds(out, sp, &bits, margin)
        })
    };
    let mut best: Option<(u32, Vec<u32>)> = None;
    let mut consider = |rest: &[u32]| {
        let Some(k0) = best_c0(rest) else {
            return;
        };
        let mut bits = vec![k0];
        bits.extend_from_slice(rest);
        let total: u32 = bits.iter().map(|&k| width[k as usize]).sum();
        if best.as_ref().is_none_or(|(b, _)| total < *b) {
            best = Some((total, bits));
        }
    };
    match out.size {
        2 => (0..=limit).for_each(|k1| consider(&[k1])),
        _ => {
            for k1 in 0..=limit {
                (0..=limit).for_each(|k2| consider(&[k1, k2]));
            }
        }
    }
    match best {
        Some((_, bits)) if bits != none => bits,
        _ => Vec::new(),
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
    use crate::analysis::{analyze, quantize, QuantOptions};
    use crate::params::{select, ParamOptions};
    use crate::passes::PassManager;
    use crate::testing::chain;
    use veil_runtime::plan::Scheme;

    fn chosen(specs: &[&str], scheme: Scheme) -> (QCircuit, Chosen) {
        let mut g = chain(&[8], specs);
        PassManager::standard().run(&mut g).unwrap();
        let c = quantize(&g, &QuantOptions::default()).unwrap();
        let ranges = analyze(&c);
        let opts = ParamOptions {
            scheme: Some(scheme),
            ..ParamOptions::default()
        };
        let ch = select(&c, &ranges, &opts).unwrap();
        (c, ch)
    }

    const DEPTH_2: [&str; 5] = ["dense:6", "square", "dense:4", "square", "dense:3"];

    #[test]
    fn rounding_noise_is_a_scaled_modulus_switch_rounding() {
        let n = 16384;
        let d = model::expansion(n);
        assert_eq!(rounding(&[], n), 0.0);
        assert_eq!(rounding(&[0, 0], n), 0.0);
        // Rounding by one bit everywhere is the rounding of a modulus switch.
        let switch = model::mod_switch(0.0, 2.0, n, 2);
        assert_eq!(rounding(&[1, 1], n), switch * 2.0);
        let d15 = model::SWITCH_ROUNDING_FACTOR * d;
        assert_eq!(rounding(&[10, 2], n), (1024.0 + d15 * 4.0) / 2.0);
        assert_eq!(rounding(&[0, 0, 3], n), d * d * 8.0 / 2.0);
        let sp = |scheme| SimParams {
            n,
            q_log2: vec![60.0; 4],
            special_log2: 61.0,
            t: 65537.0,
            plain_count: 1,
            scheme,
        };
        let bfv = sp(Scheme::Bfv);
        assert_eq!(rounded_fresh(&bfv, 0), model::fresh(65537.0, n));
        assert_eq!(
            rounded_fresh(&bfv, 40),
            model::fresh(65537.0, n) + 2f64.powi(39)
        );
        // BGV's noise counts the whole phase: the rounding of t⁻¹·c, times t.
        let bgv = sp(Scheme::Bgv);
        assert_eq!(rounded_fresh(&bgv, 0), super::super::bgv::fresh(65537.0, n));
        assert_eq!(
            rounded_fresh(&bgv, 40) - rounded_fresh(&bgv, 0),
            65537.0 * 2f64.powi(39)
        );
        assert_eq!(bgv.rounding(&[10, 2]), 65537.0 * rounding(&[10, 2], n));
        // The noise limit is the budget's inverse in both schemes.
        for sp in [bfv, bgv] {
            let e = sp.noise_limit(240.0, 3.0);
            assert!((sp.budget(e, 240.0) - 3.0).abs() < 1e-9, "{:?}", sp.scheme);
        }
    }

    /// The choice holds, and one or two bits more on any component, or on the upload, would not:
    /// in both schemes.
    #[test]
    fn the_chosen_counts_are_the_largest_that_hold() {
        for scheme in [Scheme::Bfv, Scheme::Bgv] {
            the_chosen_counts_are_the_largest_that_hold_in(scheme);
        }
    }

    fn the_chosen_counts_are_the_largest_that_hold_in(scheme: Scheme) {
        let (c, ch) = chosen(&DEPTH_2, scheme);
        let margin = ParamOptions::default().margin_bits;
        let r = choose(&c, &ch, margin);
        let shape = CircuitShape::new(&c);
        let sp = sim_params(&ch);
        let out = r.sim.regs[shape.output()];
        let down = &r.compression.download_bits;
        println!(
            "{scheme:?}: {:?}, budget {:.1} → {:.1}",
            r.compression, out.budget, r.download_budget
        );
        assert!(r.compression.upload_bits > 0);
        assert_eq!(down.len(), out.size);
        assert!(download_holds(&out, &sp, down, margin));
        for i in 0..down.len() {
            for more in [1, 2] {
                let mut bits = down.clone();
                bits[i] += more;
                // For c0 it is the largest that holds beside the others; for the others,
                // holding would have taken fewer bits in all, which the choice would have
                // preferred.
                assert!(
                    !download_holds(&out, &sp, &bits, margin),
                    "component {i} could drop {more} more bits"
                );
            }
        }
        // c1 could trade bits with c0, but never add bits without taking them from c0.
        let mut both = down.clone();
        both.iter_mut().for_each(|k| *k += 1);
        assert!(!download_holds(&out, &sp, &both, margin));
        // The client measures less than the circuit's budget, but more than the slack.
        assert!(r.download_budget < out.budget);
        assert!(r.download_budget >= ROUNDING_MARGIN_BITS);
        assert!(r.download_budget >= DOWNLOAD_BUDGET_BITS);
        // Uploads: the chosen count holds; one or two more either break the margin or leave
        // the results so little room that more bytes go in all.
        let k = r.compression.upload_bits;
        let at = |k| simulate_from(&shape, &sp, &ch.levels, rounded_fresh(&sp, k));
        assert!(upload_holds(&at(k), margin));
        for more in [1, 2] {
            let sim = at(k + more);
            if upload_holds(&sim, margin) {
                let out = sim.regs[shape.output()];
                let q = &ch.q_primes[..out.level];
                let d = choose_download(&out, &sp, q, t_bits(&ch), margin);
                let down = |d: &[u32]| -> f64 {
                    (0..out.size)
                        .map(|i| f64::from(coefficient_bits(q, d.get(i).copied().unwrap_or(0))))
                        .sum::<f64>()
                };
                let total = |k: u32, d: &[u32]| {
                    shape.input_len() as f64 * f64::from(coefficient_bits(&ch.q_primes, k))
                        + shape.output_len() as f64 * down(d)
                };
                assert!(total(k + more, &d) >= total(k, down_bits(&r)));
            }
        }
    }

    fn down_bits(r: &Rounding) -> &[u32] {
        &r.compression.download_bits
    }

    #[test]
    fn an_output_without_room_is_not_rounded() {
        for scheme in [Scheme::Bfv, Scheme::Bgv] {
            let (c, ch) = chosen(&DEPTH_2, scheme);
            // A margin as large as the output's whole budget leaves no room beside it.
            let margin = ch.sim.output_budget;
            let r = choose(&c, &ch, margin);
            assert!(
                r.compression.download_bits.is_empty(),
                "{scheme:?}: {:?}",
                r.compression
            );
            assert_eq!(r.download_budget, r.sim.output_budget);
        }
    }
}
