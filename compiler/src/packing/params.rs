//! Parameters of a packed plan: ring degree, q primes, special prime and plaintext primes.
//!
//! Every product with a plaintext vector multiplies the noise by about δ·t/2 ([`super::noise`]),
//! once per linear map, on top of the t of every square, so the size of the plaintext primes
//! weighs far more than in the slot layout: several small primes (more runs of the circuit)
//! usually beat two large ones. The search tries every ring degree whose half holds the lane
//! and whose security bound allows a modulus, every count of equal-size plaintext primes
//! (the slot search's [`plain_primes`] rule: NTT-friendly, product above 2·max|value| + 1,
//! recombinable), every q prime size with the fewest primes that hold, and keeps the
//! cheapest per ciphertext group (the latency of up to n/lane images), then the smallest n.

use super::noise::{choose_levels, Params, Program, Simulation};
use crate::params::{model, plain_primes, PlainChoice};
use std::collections::BTreeMap;
use veil_runtime::math::ntt_primes;
use veil_runtime::security::SecurityLevel;

/// Ring degrees the packed search tries with a security level (n = 4096 leaves too little
/// modulus for a vector product per layer).
pub const DEGREES: [usize; 3] = [8192, 16384, 32768];

/// The chosen packed parameters and schedule.
#[derive(Clone, Debug)]
pub struct PackedParams {
    /// Ring degree.
    pub n: usize,
    /// Ciphertext primes.
    pub q_primes: Vec<u64>,
    /// Special key-switching prime.
    pub special_prime: u64,
    /// Plaintext primes.
    pub plain_primes: Vec<u64>,
    /// The level of each switch point.
    pub levels: Vec<usize>,
    /// The predicted schedule.
    pub sim: Simulation,
}

/// Why no packed parameters were found.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchFailure {
    /// The lane is wider than half of every ring degree allowed.
    LaneTooWide {
        /// Largest n/2 tried.
        widest: usize,
    },
    /// No plaintext primes hold the values.
    ValuesTooLarge,
    /// The noise needs more modulus than security allows; the best output budget seen.
    Noise {
        /// Best output budget (bits) over every candidate at its full modulus.
        best_budget: f64,
    },
}

fn bits_of(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Searches parameters for `program` with a lane of `lane` slots, values needing
/// `needed_bits` of plaintext modulus, keeping `margin` bits at the output.
pub fn search(
    program: &Program,
    lane: usize,
    needed_bits: f64,
    security: Option<SecurityLevel>,
    margin: f64,
) -> Result<PackedParams, SearchFailure> {
    let degrees: &[usize] = if security.is_some() {
        &DEGREES
    } else {
        &model::INSECURE_DEGREES
    };
    let mut found_all: Vec<PackedParams> = Vec::new();
    let mut best_budget = f64::NEG_INFINITY;
    let mut any_degree = false;
    let mut any_plain = false;
    let mut q_cache: BTreeMap<(usize, u32), Vec<u64>> = BTreeMap::new();
    for &n in degrees.iter().filter(|&&n| lane <= n / 2) {
        let allowed = match security {
            Some(level) => match level.max_log2_modulus(n) {
                Some(a) => a,
                None => continue,
            },
            None => model::INSECURE_MAX_LOG2_MODULUS,
        };
        any_degree = true;
        let t_min = bits_of(2 * n as u64) + 2;
        for count in 1..=model::MAX_PLAIN_PRIMES {
            let PlainChoice::Found(plain) = plain_primes(n, count, needed_bits, t_min) else {
                continue;
            };
            any_plain = true;
            let t = plain.iter().copied().max().unwrap_or(2);
            for b in model::MIN_Q_PRIME_BITS..=model::MAX_Q_PRIME_BITS {
                let k_max = (allowed / b).saturating_sub(1) as usize;
                if k_max == 0 {
                    continue;
                }
                let pool = q_cache.entry((n, b)).or_insert_with(|| {
                    ntt_primes(b, n, k_max + 1 + model::MAX_PLAIN_PRIMES, &[]).unwrap_or_default()
                });
                let avail: Vec<u64> = pool
                    .iter()
                    .copied()
                    .filter(|&q| !plain.contains(&q) && q > t)
                    .collect();
                let Some((&special, rest)) = avail.split_first() else {
                    continue;
                };
                let qs = &rest[..rest.len().min(k_max)];
                let Some(found) = fewest_primes(program, n, qs, special, &plain, margin) else {
                    let full = full_budget(program, n, qs, special, &plain);
                    best_budget = best_budget.max(full);
                    continue;
                };
                found_all.push(found);
            }
        }
    }
    match cheapest(found_all) {
        Some(found) => Ok(found),
        None if !any_degree => Err(SearchFailure::LaneTooWide {
            widest: degrees.iter().max().copied().unwrap_or(0) / 2,
        }),
        None if !any_plain => Err(SearchFailure::ValuesTooLarge),
        None => Err(SearchFailure::Noise { best_budget }),
    }
}

/// Candidates within this factor of the cheapest count as equally fast; among them the
/// smallest evaluation keys win (each key is ℓ polynomials over ℓ + 1 primes).
const NEAR_TIE: f64 = 1.05;

/// The cheapest candidate per ciphertext group, or among those within [`NEAR_TIE`] of it the
/// one with the smallest key-switching keys, then the smallest n.
fn cheapest(candidates: Vec<PackedParams>) -> Option<PackedParams> {
    let best = candidates
        .iter()
        .map(|c| c.sim.cost_per_group)
        .fold(f64::INFINITY, f64::min);
    let key_bits = |c: &PackedParams| {
        let bits = |q: u64| u64::from(64 - q.leading_zeros());
        let total: u64 = c.q_primes.iter().map(|&q| bits(q)).sum::<u64>() + bits(c.special_prime);
        c.q_primes.len() as u64 * c.n as u64 * total
    };
    candidates
        .into_iter()
        .filter(|c| c.sim.cost_per_group <= NEAR_TIE * best)
        .min_by(|a, b| {
            (key_bits(a), a.n)
                .cmp(&(key_bits(b), b.n))
                .then(a.sim.cost_per_group.total_cmp(&b.sim.cost_per_group))
        })
}

fn params(n: usize, qs: &[u64], special: u64, plain: &[u64]) -> Params {
    Params {
        n,
        q_log2: qs.iter().map(|&q| (q as f64).log2()).collect(),
        special_log2: (special as f64).log2(),
        t: plain.iter().copied().max().unwrap_or(2) as f64,
        plain_count: plain.len(),
    }
}

/// The fewest of `qs` (a prefix) that hold the program, with its greedy levels.
fn fewest_primes(
    program: &Program,
    n: usize,
    qs: &[u64],
    special: u64,
    plain: &[u64],
    margin: f64,
) -> Option<PackedParams> {
    (1..=qs.len()).find_map(|k| {
        let p = params(n, &qs[..k], special, plain);
        choose_levels(program, &p, margin).map(|(levels, sim)| PackedParams {
            n,
            q_primes: qs[..k].to_vec(),
            special_prime: special,
            plain_primes: plain.to_vec(),
            levels,
            sim,
        })
    })
}

/// The output budget with every q prime kept (for the error of a search that found nothing).
fn full_budget(program: &Program, n: usize, qs: &[u64], special: u64, plain: &[u64]) -> f64 {
    if qs.is_empty() {
        return f64::NEG_INFINITY;
    }
    let p = params(n, qs, special, plain);
    let levels = vec![qs.len(); program.points()];
    super::noise::simulate(program, &p, &levels).output_budget
}
