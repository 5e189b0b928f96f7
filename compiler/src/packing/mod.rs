//! The packed layout (issue 11): one ciphertext per register, every value of an image in its
//! own slot of the image's lane, `n / lane` images per ciphertext. The slot layout pays off
//! for thousands of images; the packed one answers one image in about a second.
//!
//! [`pack`] turns a slot-layout plan into a packed plan with the same steps' meaning (so the
//! exact reference of both is the same): [`layout`] chooses every register's slots and how each
//! `Linear` runs (the runtime's `plan::packing::linear_schedule` is the rule), [`params`]
//! searches the ring, q primes and small plaintext primes under the packed noise model of
//! [`noise`], which also gives the schedule (a relinearisation after every square, greedy
//! modulus switches), and [`cost`] prices it on the slot model's scale so that
//! [`LayoutPrice`] can compare the two layouts for a batch of B images.

pub mod cost;
pub mod layout;
pub mod noise;
pub mod params;
pub mod split;

use noise::{LinearNoise, Op, PStep, Program};
use serde::Serialize;
use thiserror::Error;
use veil_runtime::bfv::GaloisKeys;
use veil_runtime::plan::{Compression, Plan, PlanParams, Scheme, Step};
use veil_runtime::security::SecurityLevel;

/// What the packed search needs besides the plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PackOptions {
    /// Target security, or `None` for explicitly insecure parameters.
    pub security: Option<SecurityLevel>,
    /// Budget (bits) the output must keep.
    pub margin_bits: f64,
    /// What a Galois key costs, in rotations, when the rotations of each map are split
    /// ([`split::NEW_KEY`] by default): higher gives fewer keys and more rotations.
    pub galois_key_cost: f64,
}

/// Why a plan has no packed form.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PackError {
    /// An image does not fit half a ciphertext.
    #[error("the packed layout does not apply: one image needs a lane of {lane} slots, but a ring row holds at most {widest} (n/2); use the slot layout (--layout slots)")]
    LaneTooWide {
        /// Slots one image needs.
        lane: usize,
        /// The widest row allowed.
        widest: usize,
    },
    /// The values need a larger plaintext modulus than the primes can give.
    #[error("the packed layout does not apply: the values need {needed_bits:.1} bits of plaintext modulus, more than small NTT-friendly primes can give; use the slot layout (--layout slots)")]
    ValuesTooLarge {
        /// Bits the plaintext modulus needs.
        needed_bits: f64,
    },
    /// The noise of the plaintext-vector products needs more modulus than security allows.
    #[error("no packed parameter set holds this circuit at {security}: the best candidate keeps {best_budget:.1} bits at the output against a {margin_bits:.0}-bit margin; use the slot layout (--layout slots), reduce the depth, or lower --margin")]
    NoiseTooLarge {
        /// "128-bit security" or "insecure parameters".
        security: String,
        /// The best output budget of any candidate (bits).
        best_budget: f64,
        /// The margin asked for.
        margin_bits: f64,
    },
    /// The packed layout runs in BFV only.
    #[error("the packed layout runs in BFV only: drop --scheme bgv, or use the slot layout (--layout slots)")]
    NotBfv,
    /// The layout's schedule could not be built (a compiler bug).
    #[error("internal error: packed layout: {0}")]
    Layout(String),
}

/// The figures of one packed `Linear`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearFigures {
    /// Layer name(s).
    pub name: String,
    /// Output values.
    pub rows: usize,
    /// Input values.
    pub cols: usize,
    /// Plaintext-vector products.
    pub diagonals: usize,
    /// Key switches (rotations).
    pub key_switches: usize,
    /// Partial sums per output (1: no fold).
    pub fold_parts: usize,
    /// Baby-step size.
    pub baby_steps: usize,
    /// Outer-step size of a three-level split (0: two levels).
    pub outer_steps: usize,
}

/// The packed layout's figures, for the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackedFigures {
    /// Slots per image.
    pub lane: usize,
    /// Images per ciphertext (n / lane).
    pub images_per_ciphertext: usize,
    /// Per `Linear`, in program order.
    pub linears: Vec<LinearFigures>,
    /// Galois keys the plan needs.
    pub galois_keys: usize,
}

/// A packed plan and its figures.
#[derive(Clone, Debug)]
pub struct Packed {
    /// The plan (validated).
    pub plan: Plan,
    /// Its figures.
    pub figures: PackedFigures,
    /// What one ciphertext group (up to n/lane images) costs.
    pub price: LayoutPrice,
}

/// What a layout costs per batch: whole ciphertext groups of `images_per_ciphertext` images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LayoutPrice {
    /// Images one ciphertext group serves.
    pub images_per_ciphertext: usize,
    /// Predicted seconds per group (client encryption and server evaluation, every
    /// plaintext prime; [`cost::SECONDS_PER_UNIT`]).
    pub seconds_per_group: f64,
}

impl LayoutPrice {
    /// The slot layout's price: `cost_per_image` model units per image, n images per batch.
    pub fn slots(n: usize, cost_per_image: f64) -> Self {
        LayoutPrice {
            images_per_ciphertext: n,
            seconds_per_group: cost_per_image * n as f64 * cost::SECONDS_PER_UNIT,
        }
    }

    /// Predicted seconds for `batch` images.
    pub fn seconds(&self, batch: usize) -> f64 {
        batch.div_ceil(self.images_per_ciphertext.max(1)) as f64 * self.seconds_per_group
    }
}

/// Largest batch the crossover search looks at.
const MAX_CROSSOVER_BATCH: usize = 1 << 22;

/// The smallest batch at which the layout that is cheaper for one image stops being cheaper,
/// or `None` if it stays cheaper up to 2^22 images.
pub fn crossover(a: &LayoutPrice, b: &LayoutPrice) -> Option<usize> {
    let (cheap, dear) = if a.seconds(1) <= b.seconds(1) {
        (a, b)
    } else {
        (b, a)
    };
    (2..=MAX_CROSSOVER_BATCH).find(|&batch| cheap.seconds(batch) >= dear.seconds(batch))
}

/// Bytes of the evaluation keys of `plan`: the relinearisation key (one per plaintext prime
/// under BGV) and, for a packed plan, the Galois keys of its rotations, each serving only the
/// levels it rotates at (the runtime's `GaloisKeys::serialized_len_at_level`; one set per
/// prime under BGV).
pub fn eval_key_bytes(plan: &Plan) -> f64 {
    let bits = |q: u64| 64 - q.leading_zeros();
    let q: Vec<u32> = plan.params.q_primes.iter().map(|&q| bits(q)).collect();
    let p = plan.params.special_primes.iter().map(|&p| bits(p)).sum();
    let sets = match plan.params.scheme {
        Scheme::Bfv => 1,
        Scheme::Bgv => plan.params.plain_primes.len(),
    };
    let relin = sets as f64 * cost::key_bytes(plan.params.degree, &q, p);
    let levels = plan
        .packing
        .as_ref()
        .and_then(|packing| packing.galois_levels(plan).ok())
        .unwrap_or_default();
    let Some(params) = plan
        .bfv_parameters()
        .ok()
        .and_then(|p| p.into_iter().next())
    else {
        return relin;
    };
    let galois: usize = levels
        .iter()
        .map(|&(_, level)| GaloisKeys::serialized_len_at_level(&params, level))
        .sum();
    relin + (sets * galois) as f64
}

/// Bits the plaintext modulus needs: 2·max|value| + 1 over every register (calibrated bounds
/// where the plan has them, as the slot search used).
fn needed_plain_bits(plan: &Plan) -> f64 {
    let bits = plan
        .registers
        .iter()
        .map(|r| r.calibrated_value_bits.unwrap_or(r.value_bits))
        .fold(0.0, f64::max);
    (2.0 * bits.exp2() + 1.0).log2()
}

/// The packed form of a slot-layout plan `slot` (valid), or why there is none.
pub fn pack(slot: &Plan, opts: &PackOptions) -> Result<Packed, PackError> {
    let assignment = layout::assign(slot, opts.galois_key_cost).map_err(PackError::Layout)?;
    let lane = assignment.packing.lane;
    let program = program(slot, &assignment.schedules);
    let needed = needed_plain_bits(slot);
    let found = params::search(&program, lane, needed, opts.security, opts.margin_bits).map_err(
        |failure| match failure {
            params::SearchFailure::LaneTooWide { widest } => {
                PackError::LaneTooWide { lane, widest }
            }
            params::SearchFailure::ValuesTooLarge => PackError::ValuesTooLarge {
                needed_bits: needed,
            },
            params::SearchFailure::Noise { best_budget } => PackError::NoiseTooLarge {
                security: match opts.security {
                    Some(level) => format!("{level} security"),
                    None => "insecure parameters".into(),
                },
                best_budget,
                margin_bits: opts.margin_bits,
            },
        },
    )?;
    let plan = emit(slot, &program, &found, assignment.packing, opts.security);
    plan.validate()
        .map_err(|e| PackError::Layout(format!("the packed plan is invalid: {e}")))?;
    let figures = figures(&plan).map_err(PackError::Layout)?;
    let price = LayoutPrice {
        images_per_ciphertext: figures.images_per_ciphertext,
        seconds_per_group: found.sim.cost_per_group * found.n as f64 * cost::SECONDS_PER_UNIT,
    };
    Ok(Packed {
        plan,
        figures,
        price,
    })
}

/// The plan's linear maps and squares as the packed simulation sees them.
fn program(plan: &Plan, schedules: &[veil_runtime::plan::packing::LinearSchedule]) -> Program {
    let mut schedules = schedules.iter();
    let ops = plan
        .steps
        .iter()
        .enumerate()
        .filter_map(|(step, s)| match s {
            Step::Linear { inputs, output, .. } => Some(Op::Linear {
                step,
                inputs: inputs.clone(),
                output: *output,
                shape: Box::new(LinearNoise::new(schedules.next()?.clone())),
            }),
            Step::Square { input, output, .. } => Some(Op::Square {
                step,
                input: *input,
                output: *output,
            }),
            Step::Relinearize { .. } | Step::ModSwitch { .. } => None,
        })
        .collect();
    Program {
        ops,
        registers: plan.registers.len(),
        input: plan.input.register,
        output: plan.output.register,
    }
}

/// The packed plan: the slot plan's steps rescheduled, its registers' facts replaced.
fn emit(
    slot: &Plan,
    program: &Program,
    found: &params::PackedParams,
    packing: veil_runtime::plan::Packing,
    security: Option<SecurityLevel>,
) -> Plan {
    let mut plan = slot.clone();
    plan.params = PlanParams {
        degree: found.n,
        q_primes: found.q_primes.clone(),
        special_primes: vec![found.special_prime],
        plain_primes: found.plain_primes.clone(),
        security_bits: security.map_or(0, SecurityLevel::bits),
        scheme: Scheme::Bfv,
    };
    plan.steps = found
        .sim
        .steps
        .iter()
        .filter_map(|s| match *s {
            PStep::Op(i) => {
                let step = match program.ops.get(i)? {
                    Op::Linear { step, .. } | Op::Square { step, .. } => *step,
                };
                slot.steps.get(step).cloned()
            }
            PStep::Relinearize(r) => Some(Step::Relinearize { register: r }),
            PStep::ModSwitch(r, level) => Some(Step::ModSwitch { register: r, level }),
        })
        .collect();
    for (reg, st) in plan.registers.iter_mut().zip(&found.sim.regs) {
        reg.level = st.level;
        reg.ct_size = st.size;
        reg.noise_budget_bits = st.budget;
    }
    plan.predicted_noise_budget_bits = found.sim.output_budget;
    plan.compression = Compression::default();
    plan.packing = Some(packing);
    plan
}

/// The figures of a packed plan (`None` for a slot plan), for the report; errors when the
/// packing does not build (a plan that did not validate).
pub fn figures(plan: &Plan) -> Result<PackedFigures, String> {
    let packing = plan.packing.as_ref().ok_or("the plan is not packed")?;
    let schedules = packing.schedules(plan)?;
    let linears = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Linear { name, matrix, .. } => Some((name, matrix)),
            _ => None,
        })
        .zip(schedules.iter().zip(&packing.linears))
        .map(|((name, matrix), (s, p))| LinearFigures {
            name: name.clone(),
            rows: matrix.rows,
            cols: matrix.cols,
            diagonals: s.diagonals(),
            key_switches: s.key_switches(),
            fold_parts: p.fold_parts,
            baby_steps: p.baby_steps,
            outer_steps: p.outer_steps,
        })
        .collect();
    Ok(PackedFigures {
        lane: packing.lane,
        images_per_ciphertext: packing.images_per_ciphertext(plan.params.degree),
        linears,
        galois_keys: packing.galois_elements(plan)?.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_pays_for_whole_ciphertext_groups() {
        let p = LayoutPrice {
            images_per_ciphertext: 8,
            seconds_per_group: 1.5,
        };
        assert_eq!(p.seconds(1), 1.5);
        assert_eq!(p.seconds(8), 1.5);
        assert_eq!(p.seconds(9), 3.0);
    }

    #[test]
    fn the_crossover_is_where_the_cheaper_layout_for_one_image_stops_winning() {
        let packed = LayoutPrice {
            images_per_ciphertext: 8,
            seconds_per_group: 1.5,
        };
        let slots = LayoutPrice {
            images_per_ciphertext: 16384,
            seconds_per_group: 18.0,
        };
        // 12 groups cost 18 s: from 89 images (12 groups) on, packing is no cheaper.
        assert_eq!(crossover(&packed, &slots), Some(89));
        assert_eq!(crossover(&slots, &packed), Some(89));
        let never = LayoutPrice {
            images_per_ciphertext: 16384,
            seconds_per_group: 1e9,
        };
        assert_eq!(crossover(&packed, &never), None);
    }
}
