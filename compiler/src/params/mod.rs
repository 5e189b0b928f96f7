//! Parameter selection: the ring degree n, the q primes, the special key-switching prime and
//! the plaintext (CRT) primes, plus the relinearisation and modulus-switching schedule.
//!
//! Constraints (docs/parameters.md explains them with sources):
//! 1. no wrap-around: `T = Π t_i > 2·max|value| + 1` over every register, each `t_i` a prime
//!    ≡ 1 (mod 2n) (batching); each `t_i` is a separate run of the circuit;
//! 2. noise: the predicted budget of the output stays ≥ the margin ([`model`]);
//! 3. security: `log2(Π q_i · p) ≤ SecurityLevel::max_log2_modulus(n)`.
//!
//! Among the parameter sets that satisfy all three, the search keeps the one with the lowest
//! estimated time per image (the cost model of [`model`]: plaintext primes × q primes × work,
//! encryption included), then the fewest bytes per image up and down, then the smallest n.
//! Every candidate (n, number and size of plaintext primes, size and number of q primes) is
//! ranked with the greedy schedule of [`choose_levels`]; the best few are then rescheduled
//! with [`optimise_levels`] (the cheapest modulus-switching levels) and the cheapest wins.

pub mod bgv;
pub mod compress;
pub mod model;
pub mod schedule;
mod scheme;

pub use schedule::{
    choose_levels, optimise_levels, simulate, simulate_from, CircuitShape, RegState, SStep,
    SimParams, Simulation,
};

use crate::analysis::{NodeRange, QCircuit};
use std::collections::BTreeMap;
use thiserror::Error;
use veil_runtime::math::ntt_primes;
use veil_runtime::plan::{Scheme, MAX_PLAIN_MODULUS_BITS};
use veil_runtime::security::SecurityLevel;

/// What the search needs besides the circuit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamOptions {
    /// Target security, or `None` for explicitly insecure parameters.
    pub security: Option<SecurityLevel>,
    /// Budget (bits) every output must keep.
    pub margin_bits: f64,
    /// The scheme to use, or `None` to search both and keep the cheaper (`--scheme auto`).
    pub scheme: Option<Scheme>,
}

impl Default for ParamOptions {
    fn default() -> Self {
        ParamOptions {
            security: Some(SecurityLevel::Bits128),
            margin_bits: model::DEFAULT_MARGIN_BITS,
            scheme: DEFAULT_SCHEME,
        }
    }
}

/// The scheme choice when none is given: `None` searches both schemes.
pub const DEFAULT_SCHEME: Option<Scheme> = None;

/// Every scheme the search knows, in the order ties are broken.
pub const SCHEMES: [Scheme; 2] = [Scheme::Bfv, Scheme::Bgv];

/// The best parameters the search found for one scheme, chosen or not (the report shows the
/// rejected scheme's figures so the choice is visible).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SchemeOption {
    /// The scheme.
    pub scheme: Scheme,
    /// Its predicted cost per image (units of [`model::cost`]).
    pub cost_per_image: f64,
    /// Ring degree.
    pub n: usize,
    /// Number of q primes.
    pub q_primes: usize,
    /// Predicted output budget (bits).
    pub output_budget: f64,
}

/// The chosen parameters and schedule.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// Ring degree.
    pub n: usize,
    /// Ciphertext primes (level l keeps the first l).
    pub q_primes: Vec<u64>,
    /// The special key-switching prime.
    pub special_prime: u64,
    /// Plaintext primes.
    pub plain_primes: Vec<u64>,
    /// 128/192/256, or 0 when insecure.
    pub security_bits: u32,
    /// Level at each switch point.
    pub levels: Vec<usize>,
    /// The predicted schedule.
    pub sim: Simulation,
    /// log2 of the bound the plaintext modulus had to exceed (2·max|value| + 1).
    pub needed_plain_bits: f64,
    /// The scheme the schedule is for.
    pub scheme: Scheme,
    /// The best candidate of every scheme searched, the chosen one included.
    pub options: Vec<SchemeOption>,
}

/// No parameter set holds the circuit.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ParamError {
    /// The values need a larger plaintext modulus than the CRT primes can give.
    #[error("no parameter set holds this circuit: with depth {depth}, values reach 2^{value_bits:.1}, so the plaintext modulus needs {needed_bits:.0} bits, but exact decryption recombines at most {allowed_bits} bits (at most {max_primes} plaintext primes of at most {max_prime_bits} bits, their product below 2^{allowed_bits}); reduce the depth, --weight-bits or --input-bits, or calibrate (--calibrate) to tighten the bounds")]
    ValuesTooLarge {
        /// Multiplicative depth.
        depth: u32,
        /// log2 of the largest |value|.
        value_bits: f64,
        /// Bits the plaintext modulus needs.
        needed_bits: f64,
        /// Most plaintext primes.
        max_primes: usize,
        /// Largest plaintext prime size.
        max_prime_bits: u32,
        /// Bits the product of the plaintext primes may have.
        allowed_bits: u32,
    },
    /// The noise needs a larger ciphertext modulus than the security level allows.
    #[error("no parameter set holds this circuit at {security}: depth {depth} with plaintext primes of {t_bits} bits needs about {needed_bits:.0} bits of ciphertext modulus (n = {n}, {margin_bits:.0}-bit margin), but {security} allows at most {allowed_bits} bits at n = {n}; reduce the depth or --weight-bits, calibrate (--calibrate), or lower --security")]
    NoiseTooLarge {
        /// Multiplicative depth.
        depth: u32,
        /// "128-bit security" or "insecure parameters".
        security: String,
        /// The ring degree of the closest attempt.
        n: usize,
        /// Size of the plaintext primes of the closest attempt.
        t_bits: u32,
        /// Estimated bits of q·p needed.
        needed_bits: f64,
        /// Bits allowed.
        allowed_bits: u32,
        /// The margin asked for.
        margin_bits: f64,
    },
}

fn log2(p: u64) -> f64 {
    (p as f64).log2()
}

fn bits_of(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// How many of the best candidates (by their greedy schedule) get the optimised schedule.
const REFINED_CANDIDATES: usize = 8;

/// Bits per image sent up (the input at the top level) and down (the output at its final
/// level and size), over all plaintext primes.
fn traffic_bits(shape: &CircuitShape, sp: &SimParams, sim: &Simulation) -> f64 {
    let q_at = |level: usize| sp.q_log2.iter().take(level).sum::<f64>();
    let up = shape.input_len() as f64 * q_at(sp.q_log2.len());
    let out = sim.regs[shape.output()];
    let down = shape.output_len() as f64 * out.size as f64 * q_at(out.level);
    (up + down) * sp.plain_count as f64
}

/// The outcome of looking for `count` plaintext primes at ring degree `n`.
pub(crate) enum PlainChoice {
    /// Primes whose product exceeds the values' range and recombines exactly.
    Found(Vec<u64>),
    /// Primes that hold the values but multiply past 2^[`MAX_PLAIN_MODULUS_BITS`].
    TooWide,
    /// No such primes of at most [`model::MAX_T_BITS`] bits.
    None,
}

/// `count` NTT-friendly plaintext primes of equal size (the smallest size, trying up to two
/// bits more, whose product exceeds 2^`needed`), at least `t_min` bits each.
pub(crate) fn plain_primes(n: usize, count: usize, needed: f64, t_min: u32) -> PlainChoice {
    let t_bits = ((needed / count as f64).ceil() as u32 + 1).max(t_min);
    if t_bits > model::MAX_T_BITS {
        return PlainChoice::None;
    }
    for tb in t_bits..=(t_bits + 2).min(model::MAX_T_BITS) {
        let Ok(p) = ntt_primes(tb, n, count, &[]) else {
            continue;
        };
        let bits: f64 = p.iter().map(|&x| log2(x)).sum();
        if bits > needed {
            return if bits >= f64::from(MAX_PLAIN_MODULUS_BITS) {
                PlainChoice::TooWide
            } else {
                PlainChoice::Found(p)
            };
        }
    }
    PlainChoice::None
}

/// Reschedules the best few of one scheme's candidates (already sorted by their greedy key)
/// with [`optimise_levels`] and returns the cheapest, with its ranking key.
fn refine_best<'a>(
    shape: &CircuitShape,
    opts: &ParamOptions,
    candidates: impl Iterator<Item = &'a ((f64, f64, usize), Chosen, SimParams)>,
) -> Option<((f64, f64, usize), Chosen)> {
    let mut best: Option<((f64, f64, usize), Chosen)> = None;
    for (_, chosen, sp) in candidates.take(REFINED_CANDIDATES) {
        let (levels, sim) = optimise_levels(shape, sp, opts.margin_bits, &chosen.levels);
        let key = (sim.cost_per_image, traffic_bits(shape, sp, &sim), chosen.n);
        if best.as_ref().is_none_or(|(bk, _)| key < *bk) {
            let mut chosen = chosen.clone();
            chosen.levels = levels;
            chosen.sim = sim;
            best = Some((key, chosen));
        }
    }
    best
}

/// Chooses parameters for a quantised circuit with value bounds `ranges`.
pub fn select(
    c: &QCircuit,
    ranges: &[NodeRange],
    opts: &ParamOptions,
) -> Result<Chosen, ParamError> {
    let shape = CircuitShape::new(c);
    let max_value = ranges.iter().map(NodeRange::effective).fold(1.0, f64::max);
    let needed = (2.0 * max_value + 1.0).log2();
    let depth = c.depth();
    let max_plain_bits =
        ((model::MAX_T_BITS - 1) * model::MAX_PLAIN_PRIMES as u32).min(MAX_PLAIN_MODULUS_BITS);
    let values_too_large = ParamError::ValuesTooLarge {
        depth,
        value_bits: max_value.log2(),
        needed_bits: needed,
        max_primes: model::MAX_PLAIN_PRIMES,
        max_prime_bits: model::MAX_T_BITS,
        allowed_bits: max_plain_bits,
    };
    if needed >= f64::from(max_plain_bits) {
        return Err(values_too_large);
    }
    // Whether some prime set was dropped only because its product is too wide to recombine.
    let mut too_wide = false;
    let degrees: &[usize] = if opts.security.is_some() {
        &model::DEGREES
    } else {
        &model::INSECURE_DEGREES
    };
    // (greedy key, candidate, its simulation parameters).
    let mut candidates: Vec<((f64, f64, usize), Chosen, SimParams)> = Vec::new();
    // Closest failure: (largest output budget minus margin, n, t bits, allowed bits).
    let mut closest: Option<(f64, usize, u32, u32)> = None;
    let mut q_cache: BTreeMap<(usize, u32), Vec<u64>> = BTreeMap::new();
    let schemes: Vec<Scheme> = match opts.scheme {
        Some(scheme) => vec![scheme],
        None => SCHEMES.to_vec(),
    };
    for &n in degrees {
        let allowed = match opts.security {
            Some(level) => match level.max_log2_modulus(n) {
                Some(a) => a,
                None => continue,
            },
            None => model::INSECURE_MAX_LOG2_MODULUS,
        };
        let t_min = bits_of(2 * n as u64) + 2;
        for count in 1..=model::MAX_PLAIN_PRIMES {
            let plain = match plain_primes(n, count, needed, t_min) {
                PlainChoice::Found(plain) => plain,
                PlainChoice::TooWide => {
                    too_wide = true;
                    continue;
                }
                PlainChoice::None => continue,
            };
            let t = plain.iter().copied().max().unwrap_or(2) as f64;
            for b in model::MIN_Q_PRIME_BITS..=model::MAX_Q_PRIME_BITS {
                let k_max = (allowed / b).saturating_sub(1) as usize;
                if k_max == 0 {
                    continue;
                }
                let pool = q_cache.entry((n, b)).or_insert_with(|| {
                    let want = k_max + 1 + model::MAX_PLAIN_PRIMES;
                    ntt_primes(b, n, want, &[]).unwrap_or_default()
                });
                let avail: Vec<u64> = pool
                    .iter()
                    .copied()
                    // The runtime needs t below every ciphertext prime.
                    .filter(|&p| !plain.contains(&p) && p as f64 > t)
                    .collect();
                if avail.len() < 2 {
                    continue;
                }
                let special = avail[0];
                let qs = &avail[1..avail.len().min(k_max + 1)];
                // The schemes that already have their smallest k for this prime size.
                let mut found: Vec<Scheme> = Vec::new();
                for (scheme, k) in schemes
                    .iter()
                    .flat_map(|&s| (1..=qs.len()).map(move |k| (s, k)))
                {
                    if found.contains(&scheme) {
                        continue;
                    }
                    let sp = SimParams {
                        n,
                        q_log2: qs[..k].iter().map(|&q| log2(q)).collect(),
                        special_log2: log2(special),
                        t,
                        plain_count: count,
                        scheme,
                    };
                    match choose_levels(&shape, &sp, opts.margin_bits) {
                        Some((levels, sim)) => {
                            let key = (sim.cost_per_image, traffic_bits(&shape, &sp, &sim), n);
                            candidates.push((
                                key,
                                Chosen {
                                    n,
                                    q_primes: qs[..k].to_vec(),
                                    special_prime: special,
                                    plain_primes: plain.clone(),
                                    security_bits: opts.security.map_or(0, SecurityLevel::bits),
                                    levels,
                                    sim,
                                    needed_plain_bits: needed,
                                    scheme,
                                    options: Vec::new(),
                                },
                                sp,
                            ));
                            found.push(scheme);
                        }
                        None if k == qs.len() => {
                            let full = simulate(&shape, &sp, &vec![k; shape.points]);
                            let slack = full.output_budget.min(full.min_budget + opts.margin_bits)
                                - opts.margin_bits;
                            if closest.is_none_or(|(s, ..)| slack > s) {
                                closest = Some((slack, n, bits_of(t as u64), allowed));
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }
    candidates.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut best: Option<((f64, f64, usize), Chosen)> = None;
    let mut options = Vec::new();
    for scheme in schemes {
        let mine = candidates.iter().filter(|c| c.1.scheme == scheme);
        let Some((key, chosen)) = refine_best(&shape, opts, mine) else {
            continue;
        };
        options.push(SchemeOption {
            scheme,
            cost_per_image: chosen.sim.cost_per_image,
            n: chosen.n,
            q_primes: chosen.q_primes.len(),
            output_budget: chosen.sim.output_budget,
        });
        if best.as_ref().is_none_or(|(bk, _)| key < *bk) {
            best = Some((key, chosen));
        }
    }
    if let Some((_, mut chosen)) = best {
        chosen.options = options;
        return Ok(chosen);
    }
    if too_wide && closest.is_none() {
        return Err(values_too_large);
    }
    let security = match opts.security {
        Some(level) => format!("{level} security"),
        None => "insecure parameters".into(),
    };
    let (slack, n, t_bits, allowed) = closest.unwrap_or((f64::NEG_INFINITY, 0, 0, 0));
    Err(ParamError::NoiseTooLarge {
        depth,
        security,
        n,
        t_bits,
        needed_bits: f64::from(allowed) - slack,
        allowed_bits: allowed,
        margin_bits: opts.margin_bits,
    })
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
    use crate::passes::PassManager;
    use crate::testing::chain;

    fn circuit(specs: &[&str]) -> (QCircuit, Vec<NodeRange>) {
        let mut g = chain(&[8], specs);
        PassManager::standard().run(&mut g).unwrap();
        let c = quantize(&g, &QuantOptions::default()).unwrap();
        let ranges = analyze(&c);
        (c, ranges)
    }

    const DEPTH_2: [&str; 5] = ["dense:6", "square", "dense:4", "square", "dense:3"];

    /// The simulation parameters of chosen primes, as the search saw them.
    fn sim_params(ch: &Chosen) -> SimParams {
        SimParams {
            n: ch.n,
            q_log2: ch.q_primes.iter().map(|&q| log2(q)).collect(),
            special_log2: log2(ch.special_prime),
            t: ch.plain_primes.iter().copied().max().unwrap() as f64,
            plain_count: ch.plain_primes.len(),
            scheme: ch.scheme,
        }
    }

    #[test]
    fn the_chosen_parameters_meet_every_constraint() {
        let (c, ranges) = circuit(&DEPTH_2);
        let opts = ParamOptions::default();
        let ch = select(&c, &ranges, &opts).unwrap();
        let two_n = 2 * ch.n as u64;
        // 1. No wrap-around: Π t_i > 2·max|value| + 1, every t_i ≡ 1 (mod 2n).
        let max_value = ranges.iter().map(NodeRange::effective).fold(1.0, f64::max);
        assert_eq!(ch.needed_plain_bits, (2.0 * max_value + 1.0).log2());
        let t_bits: f64 = ch.plain_primes.iter().map(|&t| log2(t)).sum();
        assert!(t_bits > ch.needed_plain_bits);
        assert!(ch.plain_primes.iter().all(|&t| t % two_n == 1));
        // 2. Noise: the output keeps the margin, every register a positive budget.
        assert!(ch.sim.output_budget >= opts.margin_bits);
        assert!(ch.sim.min_budget > 0.0);
        // 3. Security: log2(Π q_i · p) within the bound for n.
        let total: f64 = ch.q_primes.iter().map(|&q| log2(q)).sum::<f64>() + log2(ch.special_prime);
        let allowed = SecurityLevel::Bits128.max_log2_modulus(ch.n).unwrap();
        assert!(total <= f64::from(allowed), "{total} > {allowed}");
        assert_eq!(ch.security_bits, 128);
        // The primes are NTT-friendly, distinct, above t, and the special prime is apart.
        let t_max = ch.plain_primes.iter().copied().max().unwrap();
        for &q in ch.q_primes.iter().chain([&ch.special_prime]) {
            assert_eq!(q % two_n, 1);
            assert!(q > t_max);
            assert!(!ch.plain_primes.contains(&q));
        }
        assert!(!ch.q_primes.contains(&ch.special_prime));
        let mut sorted = ch.q_primes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ch.q_primes.len());
        // The schedule: one non-increasing level per switch point, replayed exactly.
        let shape = CircuitShape::new(&c);
        assert_eq!(ch.levels.len(), shape.points);
        assert!(
            ch.levels.windows(2).all(|w| w[0] >= w[1]),
            "{:?}",
            ch.levels
        );
        assert!(ch
            .levels
            .iter()
            .all(|&l| (1..=ch.q_primes.len()).contains(&l)));
        let replay = simulate(&shape, &sim_params(&ch), &ch.levels);
        assert_eq!(replay.steps, ch.sim.steps);
        assert_eq!(replay.output_budget, ch.sim.output_budget);
    }

    #[test]
    fn insecure_parameters_are_marked_and_may_be_smaller() {
        let (c, ranges) = circuit(&DEPTH_2);
        let secure = select(&c, &ranges, &ParamOptions::default()).unwrap();
        let insecure = select(
            &c,
            &ranges,
            &ParamOptions {
                security: None,
                ..ParamOptions::default()
            },
        )
        .unwrap();
        assert_eq!(insecure.security_bits, 0);
        assert!(insecure.n <= secure.n);
        assert!(insecure.sim.cost_per_image <= secure.sim.cost_per_image);
    }

    #[test]
    fn tighter_bounds_need_a_smaller_plaintext_modulus() {
        let (c, mut ranges) = circuit(&DEPTH_2);
        let guaranteed = select(&c, &ranges, &ParamOptions::default()).unwrap();
        for r in &mut ranges {
            r.calibrated = Some((r.max_abs / 1024.0).max(1.0));
        }
        let calibrated = select(&c, &ranges, &ParamOptions::default()).unwrap();
        assert!(calibrated.needed_plain_bits < guaranteed.needed_plain_bits - 9.0);
    }

    #[test]
    fn values_beyond_the_plaintext_primes_are_refused() {
        let (c, mut ranges) = circuit(&DEPTH_2);
        ranges[c.output].max_abs = 2f64.powi(600);
        let err = select(&c, &ranges, &ParamOptions::default()).unwrap_err();
        let ParamError::ValuesTooLarge {
            depth,
            needed_bits,
            allowed_bits,
            ..
        } = err
        else {
            panic!("{err}");
        };
        assert_eq!(depth, 2);
        assert!(needed_bits >= f64::from(allowed_bits));
        assert_eq!(allowed_bits, MAX_PLAIN_MODULUS_BITS);
    }

    /// A depth-3 network's scores can reach 2^206 (issue 12): such a plan could not be
    /// decrypted exactly, so it is refused at compile time instead of emitted.
    #[test]
    fn scores_too_wide_to_recombine_are_refused() {
        let (c, mut ranges) = circuit(&DEPTH_2);
        ranges[c.output].max_abs = 2f64.powi(205);
        let err = select(&c, &ranges, &ParamOptions::default()).unwrap_err();
        assert!(matches!(err, ParamError::ValuesTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("at most 127 bits"), "{err}");
    }

    /// The circuit of issue 12 (Dense → x² three times → Dense, 8-bit weights): refused at
    /// compile time with an error that says what to reduce, never emitted as a plan that cannot
    /// be decrypted.
    #[test]
    fn a_depth_3_dense_network_is_refused_at_compile_time() {
        let specs = [
            "dense:16", "square", "dense:16", "square", "dense:16", "square", "dense:10",
        ];
        let err = crate::compile_graph(chain(&[64], &specs), &crate::CompileOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("reduce the depth"), "{err}");
    }

    /// Near the limit, every chosen prime set both holds the values and recombines in `i128`.
    #[test]
    fn chosen_plaintext_primes_always_recombine() {
        for value_bits in [100, 118, 122, 124, 125, 126] {
            let (c, mut ranges) = circuit(&DEPTH_2);
            let max_abs = 2f64.powi(value_bits);
            ranges[c.output].max_abs = max_abs;
            match select(&c, &ranges, &ParamOptions::default()) {
                Ok(chosen) => {
                    let bits: f64 = chosen.plain_primes.iter().map(|&t| log2(t)).sum();
                    assert!(bits < f64::from(MAX_PLAIN_MODULUS_BITS), "2^{value_bits}");
                    assert!(bits > (2.0 * max_abs + 1.0).log2(), "2^{value_bits}");
                    veil_runtime::exec::Crt::new(&chosen.plain_primes).unwrap();
                }
                Err(err) => assert!(
                    matches!(err, ParamError::ValuesTooLarge { .. }),
                    "2^{value_bits}: {err}"
                ),
            }
        }
    }

    #[test]
    fn an_unreachable_margin_reports_the_closest_attempt() {
        let (c, ranges) = circuit(&DEPTH_2);
        let opts = ParamOptions {
            margin_bits: 2000.0,
            ..ParamOptions::default()
        };
        let err = select(&c, &ranges, &opts).unwrap_err();
        let ParamError::NoiseTooLarge {
            depth,
            security,
            n,
            needed_bits,
            allowed_bits,
            margin_bits,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(*depth, 2);
        assert_eq!(security, "128-bit security");
        assert!(model::DEGREES.contains(n));
        assert!(needed_bits > &f64::from(*allowed_bits), "{err}");
        assert_eq!(*margin_bits, 2000.0);
    }

    #[test]
    fn traffic_counts_the_input_at_the_top_and_the_output_where_it_ends() {
        let (c, ranges) = circuit(&DEPTH_2);
        let ch = select(&c, &ranges, &ParamOptions::default()).unwrap();
        let shape = CircuitShape::new(&c);
        let sp = sim_params(&ch);
        let out = ch.sim.regs[c.output];
        let q_at = |l: usize| sp.q_log2[..l].iter().sum::<f64>();
        let (up, down) = (c.nodes[0].len as f64, c.nodes[c.output].len as f64);
        let want = (up * q_at(sp.q_log2.len()) + down * out.size as f64 * q_at(out.level))
            * sp.plain_count as f64;
        assert!((traffic_bits(&shape, &sp, &ch.sim) - want).abs() < 1e-6);
    }
}
