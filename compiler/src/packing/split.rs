//! How a packed `Linear` splits its rotations: the baby-step size b and the outer-step size g
//! of `plan::packing::split_rotation` (δ = O + G + β), chosen for the fewest key switches and
//! the fewest new Galois keys.
//!
//! The rotations a map needs are a set Δ of slot offsets fixed by the layouts; the split only
//! decides which rotations realise them. Two levels (g = 0) need a key for every baby β and
//! every giant G; a convolution's offsets are sums of three small sets (map offset + kernel
//! row + kernel column), which three levels cover with keys for each part: on CryptoNets'
//! conv1, about half the keys of the best two-level split, and fewer switches too. Keys are uploaded once but weigh
//! megabytes each, so a key the plan does not already hold costs [`NEW_KEY`] rotations.

use std::collections::BTreeSet;
use veil_runtime::plan::packing::{split_rotation, LinearSchedule};

/// The cost of a hoisted baby rotation relative to a full one: the decomposition is shared,
/// what remains is the inner product with the key and the inverse transforms (the `rotate`
/// bench: 8 hoisted rotations 16.6 ms against 7.0 ms for one, n = 16384, 7 primes).
pub const HOISTED: f64 = 0.2;
/// What a Galois key the plan does not hold yet costs by default, in rotations: a seeded key is
/// ℓ·(ℓ + 1) limbs (up to 4.9 MB at CryptoNets' packed parameters), uploaded once. The user
/// trades key bytes for time with `--galois-key-cost` ([`crate::CompileOptions`]).
pub const NEW_KEY: f64 = 1.0;
/// Largest baby-step size tried.
const MAX_BABY: i64 = 64;
/// Most outer sizes tried per baby size.
const MAX_OUTER_TRIES: i64 = 1024;
/// Maps with more rotation offsets than this are split in two levels only.
const MAX_OUTER_OFFSETS: usize = 2048;

/// A split and what it costs.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Baby-step size b.
    pub baby: usize,
    /// Outer-step size g (0: two levels).
    pub outer: usize,
    /// Rotations, hoisted ones weighted by [`HOISTED`].
    pub rotations: f64,
    /// Rotation amounts it uses that are not among the held ones.
    pub new_keys: BTreeSet<i64>,
    /// What each new key costs, in rotations.
    pub key_cost: f64,
}

impl Split {
    /// The price the choice minimises.
    pub fn price(&self) -> f64 {
        self.rotations + self.key_cost * self.new_keys.len() as f64
    }
}

/// The rotation offsets a schedule realises (each term's O + G + β), whatever its split.
pub fn offsets(schedule: &LinearSchedule) -> BTreeSet<i64> {
    schedule
        .giants
        .iter()
        .flat_map(|g| g.terms.iter().map(move |t| g.outer + g.rotation + t.baby))
        .collect()
}

/// What splitting `deltas` with baby size `b` and outer size `g` costs, given the rotation
/// amounts already `held` (normalised to the row of `half` slots).
pub fn price(
    deltas: &BTreeSet<i64>,
    (b, g): (i64, i64),
    half: i64,
    held: &BTreeSet<i64>,
    key_cost: f64,
) -> Split {
    let mut babies = BTreeSet::new();
    let mut giants = BTreeSet::new();
    let mut outers = BTreeSet::new();
    for &d in deltas {
        let (o, gi, beta) = split_rotation(d, b, g);
        babies.insert(beta);
        giants.insert((o, gi));
        outers.insert(o);
    }
    let moving = |set: &BTreeSet<i64>| set.iter().filter(|&&r| r.rem_euclid(half) != 0).count();
    let giant_moves = giants
        .iter()
        .filter(|(_, gi)| gi.rem_euclid(half) != 0)
        .count();
    let rotations = HOISTED * moving(&babies) as f64 + (giant_moves + moving(&outers)) as f64;
    let new_keys = babies
        .iter()
        .chain(giants.iter().map(|(_, gi)| gi))
        .chain(outers.iter())
        .map(|r| r.rem_euclid(half))
        .filter(|&r| r != 0 && !held.contains(&r))
        .collect();
    Split {
        baby: b as usize,
        outer: g as usize,
        rotations,
        new_keys,
        key_cost,
    }
}

/// The cheapest split of `deltas` in a lane of `lane` slots on a ring row of `half` slots, a
/// new key costing `key_cost` rotations: every baby size up to [`MAX_BABY`] with two levels,
/// and with every outer size that is a multiple of it up to the span of the offsets.
pub fn best(
    deltas: &BTreeSet<i64>,
    lane: usize,
    half: usize,
    held: &BTreeSet<i64>,
    key_cost: f64,
) -> Split {
    let half = half as i64;
    let span = match (deltas.first(), deltas.last()) {
        (Some(lo), Some(hi)) => hi - lo + 1,
        _ => 1,
    };
    let most_baby = MAX_BABY.min(lane as i64).max(1);
    // Three levels are tried with at most MAX_OUTER_TRIES outer sizes per baby size (every
    // multiple of b up to the span when there are fewer), and not at all for maps with more
    // offsets than MAX_OUTER_OFFSETS, where the search would cost more than it saves.
    let try_outer = deltas.len() <= MAX_OUTER_OFFSETS;
    let mut best = price(deltas, (1, 0), half, held, key_cost);
    for b in 1..=most_baby {
        let two = price(deltas, (b, 0), half, held, key_cost);
        if two.price() < best.price() {
            best = two;
        }
        if !try_outer {
            continue;
        }
        let top = span.min(lane as i64);
        let stride = b * ((top / b) / MAX_OUTER_TRIES).max(1);
        let mut g = 2 * b;
        while g <= top {
            let three = price(deltas, (b, g), half, held, key_cost);
            if three.price() < best.price() {
                best = three;
            }
            g += stride;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets of a convolution: `maps` maps `gap` apart, a k×k kernel on rows of `width`.
    fn conv(maps: i64, gap: i64, k: i64, width: i64) -> BTreeSet<i64> {
        (0..maps)
            .flat_map(|m| {
                (0..k).flat_map(move |dy| (0..k).map(move |dx| -m * gap + dy * width + dx - 1))
            })
            .collect()
    }

    #[test]
    fn a_convolution_takes_three_levels_and_few_keys() {
        let deltas = conv(5, 646, 5, 28);
        assert_eq!(deltas.len(), 125);
        let held = BTreeSet::new();
        let two = (1..=64)
            .map(|b| price(&deltas, (b, 0), 8192, &held, NEW_KEY))
            .min_by(|a, b| a.price().total_cmp(&b.price()))
            .unwrap();
        let chosen = best(&deltas, 4096, 8192, &held, NEW_KEY);
        assert!(chosen.outer > 0, "{chosen:?}");
        assert!(
            chosen.new_keys.len() < two.new_keys.len(),
            "{chosen:?} vs {two:?}"
        );
        assert!(chosen.price() < two.price(), "{chosen:?} vs {two:?}");
    }

    #[test]
    fn dearer_keys_buy_fewer_keys_with_more_rotations() {
        let deltas = conv(5, 646, 5, 28);
        let held = BTreeSet::new();
        let cheap = best(&deltas, 4096, 8192, &held, 0.0);
        let dear = best(&deltas, 4096, 8192, &held, 10.0);
        assert!(
            dear.new_keys.len() < cheap.new_keys.len(),
            "{dear:?} vs {cheap:?}"
        );
        assert!(dear.rotations >= cheap.rotations, "{dear:?} vs {cheap:?}");
    }

    #[test]
    fn held_keys_are_free() {
        let deltas: BTreeSet<i64> = (0..16).collect();
        let none = best(&deltas, 64, 512, &BTreeSet::new(), NEW_KEY);
        let held: BTreeSet<i64> = (1..16).collect();
        let some = best(&deltas, 64, 512, &held, NEW_KEY);
        assert!(some.new_keys.is_empty(), "{some:?}");
        assert!(some.price() < none.price());
    }
}
