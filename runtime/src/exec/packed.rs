//! The packed backend: a plan in the packed layout (see [`crate::plan::packing`]) on BFV
//! ciphertexts, one ciphertext per register and plaintext prime, several images per
//! ciphertext.
//!
//! Squares, relinearisations and switches are the slot layout's operations on the one
//! ciphertext. A `Linear` follows its [`LinearSchedule`]: the baby rotations of each input are
//! hoisted ([`Evaluator::rotate_many`]) and transformed once, every giant step sums its
//! diagonal products in evaluation form ([`Evaluator::dot_plain`]) and is rotated once, the
//! fold adds the partial sums, and the bias is added as a plaintext vector. A diagonal fills
//! every image lane of the ciphertext alike; it is encoded when the step runs unless the
//! backend was given [`PreparedDiagonals`], which a server makes once per plan and prime.

use super::{Backend, BgvBackend, EncryptedBackend, ExecError};
use crate::bfv::{
    BfvParameters, Ciphertext, EvalError, Evaluator, GaloisKeys, NttCiphertext, NttPlaintext,
    Plaintext, RelinKey,
};
use crate::plan::packing::{GiantStep, LinearSchedule};
use crate::plan::{IntMatrix, Packing, Plan, Step};
use rayon::prelude::*;
use std::sync::Arc;

/// A packed plan's diagonals for one plaintext prime, encoded and transformed once at the
/// level each `Linear` runs at: what a server keeps between requests, so that evaluation
/// only multiplies. `diagonals[k][g][i]` is term `i` of giant step `g` of the `k`-th `Linear`.
#[derive(Debug)]
pub struct PreparedDiagonals {
    params_fingerprint: u64,
    diagonals: Vec<Vec<Vec<NttPlaintext>>>,
}

impl PreparedDiagonals {
    /// Encodes every diagonal of `plan` (which must be packed) under `params`, at the level
    /// its step reads (a replay of the program's modulus switches from the top level).
    pub fn new(plan: &Plan, params: &Arc<BfvParameters>) -> Result<Self, ExecError> {
        let packing = plan.packing.as_ref().ok_or_else(not_packed)?;
        let schedules = packing
            .schedules(plan)
            .map_err(|e| ExecError::Backend(e.into()))?;
        let levels = Packing::linear_levels(plan);
        let evaluator = Evaluator::new(params);
        let encoder = crate::bfv::Encoder::new(params);
        let diagonals = schedules
            .iter()
            .zip(levels)
            .map(|(sched, level)| {
                sched
                    .giants
                    .par_iter()
                    .map(|g| {
                        g.terms
                            .iter()
                            .map(|term| {
                                let pt = diagonal_plaintext(&encoder, packing, &term.entries)?;
                                Ok(evaluator.plain_to_ntt(&pt, level)?)
                            })
                            .collect::<Result<Vec<_>, ExecError>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PreparedDiagonals {
            params_fingerprint: params.fingerprint(),
            diagonals,
        })
    }

    /// The prepared term, if it was prepared for this level.
    fn get(&self, linear: usize, giant: usize, term: usize, level: usize) -> Option<&NttPlaintext> {
        self.diagonals
            .get(linear)?
            .get(giant)?
            .get(term)
            .filter(|pt| pt.level() == level)
    }
}

fn not_packed() -> ExecError {
    ExecError::Backend("the plan has no packed layout to run".to_string().into())
}

/// The plaintext with the diagonal `entries` (lane offset, weight) in every image lane.
fn diagonal_plaintext(
    encoder: &crate::bfv::Encoder,
    packing: &Packing,
    entries: &[(i64, i64)],
) -> Result<Plaintext, ExecError> {
    let t = encoder.params().plain();
    lane_plaintext(
        encoder,
        packing,
        entries.iter().map(|&(o, w)| (o, t.reduce_i64(w))),
    )
}

/// The plaintext with `entries` (lane offset, value mod t) placed in every image lane.
fn lane_plaintext(
    encoder: &crate::bfv::Encoder,
    packing: &Packing,
    entries: impl Iterator<Item = (i64, u64)> + Clone,
) -> Result<Plaintext, ExecError> {
    let n = encoder.params().degree();
    let mut slots = vec![0u64; n];
    for image in 0..packing.images_per_ciphertext(n) {
        let base = packing.lane_base(n, image);
        for (offset, value) in entries.clone() {
            slots[Packing::slot_at(n, base, offset)] = value;
        }
    }
    encoder
        .encode_unsigned(&slots)
        .map_err(|e| ExecError::Backend(Box::new(e)))
}

/// What the packed executor needs from a scheme, beyond the slot-wise steps of its
/// [`Backend`]: rotations with the server's Galois keys, ciphertexts in the form diagonal
/// products read, and sums.
pub trait PackedScheme: Sync {
    /// A ciphertext.
    type Ct: Clone + Send + Sync;
    /// A ciphertext ready for many diagonal products (BFV: transformed; BGV: as it is).
    type Ready: Send + Sync;
    /// The scheme's backend for squares, relinearisations and switches.
    type Slotwise: Backend<Value = Self::Ct>;

    /// The slot-wise backend.
    fn slotwise(&self) -> &Self::Slotwise;
    /// `ct` rotated left by each of `steps` (none zero), hoisted.
    fn rotate_many(&self, ct: &Self::Ct, steps: &[i64]) -> Result<Vec<Self::Ct>, ExecError>;
    /// `ct` made ready for [`PackedScheme::dot_plain`].
    fn ready(&self, ct: &Self::Ct) -> Result<Self::Ready, ExecError>;
    /// The level of a ready ciphertext.
    fn level(ready: &Self::Ready) -> usize;
    /// `Σ pt_i ⊙ ct_i`.
    fn dot_plain(&self, terms: &[(&Self::Ready, &NttPlaintext)]) -> Result<Self::Ct, ExecError>;
    /// `a += b`.
    fn add_assign(&self, a: &mut Self::Ct, b: &Self::Ct) -> Result<(), ExecError>;
    /// `ct + pt` slot-wise.
    fn add_plain(&self, ct: &Self::Ct, pt: &Plaintext) -> Result<Self::Ct, ExecError>;
    /// A ciphertext of zeros like `ct` (a map without weights).
    fn zero_like(&self, ct: &Self::Ct) -> Result<Self::Ct, ExecError>;
}

/// BFV for the packed executor.
#[derive(Debug)]
pub struct BfvPacked<'k> {
    slotwise: EncryptedBackend<'k>,
    evaluator: Evaluator,
    galois: &'k GaloisKeys,
}

impl<'k> BfvPacked<'k> {
    /// BFV under `params` with the server's relinearisation and Galois keys.
    pub fn new(
        params: &Arc<BfvParameters>,
        relin_key: &'k RelinKey,
        galois: &'k GaloisKeys,
    ) -> Self {
        BfvPacked {
            slotwise: EncryptedBackend::new(params, relin_key),
            evaluator: Evaluator::new(params),
            galois,
        }
    }
}

impl<'k> PackedScheme for BfvPacked<'k> {
    type Ct = Ciphertext;
    type Ready = NttCiphertext;
    type Slotwise = EncryptedBackend<'k>;

    fn slotwise(&self) -> &Self::Slotwise {
        &self.slotwise
    }

    fn rotate_many(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>, ExecError> {
        Ok(self.evaluator.rotate_many(ct, steps, self.galois)?)
    }

    fn ready(&self, ct: &Ciphertext) -> Result<NttCiphertext, ExecError> {
        Ok(self.evaluator.to_ntt(ct)?)
    }

    fn level(ready: &NttCiphertext) -> usize {
        ready.level()
    }

    fn dot_plain(
        &self,
        terms: &[(&NttCiphertext, &NttPlaintext)],
    ) -> Result<Ciphertext, ExecError> {
        Ok(self.evaluator.dot_plain(terms)?)
    }

    fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), ExecError> {
        Ok(self.evaluator.add_assign(a, b)?)
    }

    fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, ExecError> {
        Ok(self.evaluator.add_plain(ct, pt)?)
    }

    fn zero_like(&self, ct: &Ciphertext) -> Result<Ciphertext, ExecError> {
        Ok(self.evaluator.mul_scalar(ct, 0)?)
    }
}

/// BGV for the packed executor: ciphertexts are already in evaluation form.
#[derive(Debug)]
pub struct BgvPacked<'k> {
    slotwise: BgvBackend<'k>,
    evaluator: crate::bgv::Evaluator,
    galois: &'k crate::bgv::GaloisKeys,
}

impl<'k> BgvPacked<'k> {
    /// BGV under `params` (whose t is the run's plaintext prime) with the server's BGV
    /// relinearisation and Galois keys for that prime.
    pub fn new(
        params: &Arc<BfvParameters>,
        relin_key: &'k crate::bgv::RelinKey,
        galois: &'k crate::bgv::GaloisKeys,
    ) -> Self {
        BgvPacked {
            slotwise: BgvBackend::new(params, relin_key),
            evaluator: crate::bgv::Evaluator::new(params),
            galois,
        }
    }
}

impl<'k> PackedScheme for BgvPacked<'k> {
    type Ct = crate::bgv::Ciphertext;
    type Ready = crate::bgv::Ciphertext;
    type Slotwise = BgvBackend<'k>;

    fn slotwise(&self) -> &Self::Slotwise {
        &self.slotwise
    }

    fn rotate_many(&self, ct: &Self::Ct, steps: &[i64]) -> Result<Vec<Self::Ct>, ExecError> {
        Ok(self.evaluator.rotate_many(ct, steps, self.galois)?)
    }

    fn ready(&self, ct: &Self::Ct) -> Result<Self::Ready, ExecError> {
        Ok(ct.clone())
    }

    fn level(ready: &Self::Ready) -> usize {
        ready.level()
    }

    fn dot_plain(&self, terms: &[(&Self::Ready, &NttPlaintext)]) -> Result<Self::Ct, ExecError> {
        Ok(self.evaluator.dot_plain(terms)?)
    }

    fn add_assign(&self, a: &mut Self::Ct, b: &Self::Ct) -> Result<(), ExecError> {
        Ok(self.evaluator.add_assign(a, b)?)
    }

    fn add_plain(&self, ct: &Self::Ct, pt: &Plaintext) -> Result<Self::Ct, ExecError> {
        Ok(self.evaluator.add_plain(ct, pt)?)
    }

    fn zero_like(&self, ct: &Self::Ct) -> Result<Self::Ct, ExecError> {
        Ok(self.evaluator.mul_scalar(ct, 0)?)
    }
}

/// One input's baby rotations, by rotation, ready for the diagonal products.
type Babies<S> = Vec<(i64, <S as PackedScheme>::Ready)>;

/// Runs a packed plan's steps on the ciphertexts of one plaintext prime, in the scheme `S`.
#[derive(Debug)]
pub struct PackedBackend<S> {
    scheme: S,
    lift: Evaluator,
    encoder: crate::bfv::Encoder,
    packing: Packing,
    /// Per Linear step: its schedule and its output layout (where the bias goes).
    linears: Vec<(LinearSchedule, Vec<u32>)>,
    prepared: Option<Arc<PreparedDiagonals>>,
}

impl<S: PackedScheme> PackedBackend<S> {
    /// A backend for `plan` (which must be packed) on ciphertexts under `params`, in `scheme`.
    pub fn new(plan: &Plan, params: &Arc<BfvParameters>, scheme: S) -> Result<Self, ExecError> {
        let packing = plan.packing.clone().ok_or_else(not_packed)?;
        let schedules = packing
            .schedules(plan)
            .map_err(|e| ExecError::Backend(e.into()))?;
        let outputs = plan.steps.iter().filter_map(|s| match s {
            Step::Linear { output, .. } => packing.layouts.get(*output).cloned(),
            _ => None,
        });
        let linears = schedules.into_iter().zip(outputs).collect();
        Ok(PackedBackend {
            scheme,
            lift: Evaluator::new(params),
            encoder: crate::bfv::Encoder::new(params),
            packing,
            linears,
            prepared: None,
        })
    }

    /// Uses `prepared` (made by [`PreparedDiagonals::new`] for this plan and these
    /// parameters) instead of encoding the diagonals at every step; ignored when made for
    /// other parameters.
    pub fn with_prepared(mut self, prepared: Arc<PreparedDiagonals>) -> Self {
        if prepared.params_fingerprint == self.lift.params().fingerprint() {
            self.prepared = Some(prepared);
        }
        self
    }

    fn degree(&self) -> usize {
        self.lift.params().degree()
    }

    /// One giant step (`index` = (Linear step, giant step)): its diagonal products summed,
    /// then rotated. Prepared diagonals are used where they match the level; the others are
    /// encoded here.
    fn giant(
        &self,
        (linear, index): (usize, usize),
        giant: &GiantStep,
        babies: &[Babies<S>],
    ) -> Result<S::Ct, ExecError> {
        let mut cts = Vec::with_capacity(giant.terms.len());
        let mut encoded = Vec::new();
        for (i, term) in giant.terms.iter().enumerate() {
            let ct = babies
                .get(term.input)
                .and_then(|b| b.iter().find(|(beta, _)| *beta == term.baby))
                .map(|(_, ct)| ct)
                .ok_or(EvalError::Empty)?;
            let level = S::level(ct);
            let ready = self
                .prepared
                .as_ref()
                .and_then(|p| p.get(linear, index, i, level));
            if ready.is_none() {
                let pt = diagonal_plaintext(&self.encoder, &self.packing, &term.entries)?;
                encoded.push(self.lift.plain_to_ntt(&pt, level)?);
            }
            cts.push((ct, ready));
        }
        let mut fresh = encoded.iter();
        let terms = cts
            .into_iter()
            .map(|(ct, ready)| ready.or_else(|| fresh.next()).map(|pt| (ct, pt)))
            .collect::<Option<Vec<_>>>()
            .ok_or(EvalError::Empty)?;
        let sum = self.scheme.dot_plain(&terms)?;
        self.rotate(&sum, giant.rotation)
    }

    fn rotate(&self, ct: &S::Ct, steps: i64) -> Result<S::Ct, ExecError> {
        let half = (self.degree() / 2) as i64;
        if steps.rem_euclid(half) == 0 {
            return Ok(ct.clone());
        }
        self.scheme
            .rotate_many(ct, &[steps])?
            .pop()
            .ok_or_else(|| EvalError::Empty.into())
    }

    /// Every baby rotation of every input, ready for the diagonal products.
    fn babies(
        &self,
        sched: &LinearSchedule,
        inputs: &[&S::Ct],
    ) -> Result<Vec<Babies<S>>, ExecError> {
        sched
            .babies
            .iter()
            .zip(inputs)
            .map(|(steps, &ct)| {
                let moving: Vec<i64> = steps.iter().copied().filter(|&s| s != 0).collect();
                let rotated = if moving.is_empty() {
                    Vec::new()
                } else {
                    self.scheme.rotate_many(ct, &moving)?
                };
                let mut out = Vec::with_capacity(steps.len());
                if steps.contains(&0) {
                    out.push((0, self.scheme.ready(ct)?));
                }
                for (s, r) in moving.into_iter().zip(&rotated) {
                    out.push((s, self.scheme.ready(r)?));
                }
                Ok(out)
            })
            .collect()
    }
}

impl<S: PackedScheme> Backend for PackedBackend<S> {
    type Value = S::Ct;

    fn register_values(&self, _len: usize) -> usize {
        1
    }

    fn dot(&self, _: &[&S::Ct], _: &[i64], _: i128) -> Result<S::Ct, ExecError> {
        Err(ExecError::Backend(
            "a packed plan runs whole Linear steps, not rows"
                .to_string()
                .into(),
        ))
    }

    fn linear(&self, _: &[&S::Ct], _: &IntMatrix, _: &[i128]) -> Result<Vec<S::Ct>, ExecError> {
        self.dot(&[], &[], 0).map(|c| vec![c])
    }

    fn linear_step(
        &self,
        index: usize,
        inputs: &[&S::Ct],
        _matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<Vec<S::Ct>, ExecError> {
        let (sched, out_layout) = self.linears.get(index).ok_or_else(|| {
            ExecError::Backend(format!("no packed schedule for Linear step {index}").into())
        })?;
        if inputs.len() != sched.babies.len() {
            return Err(ExecError::InputCount {
                expected: sched.babies.len(),
                found: inputs.len(),
            });
        }
        let babies = self.babies(sched, inputs)?;
        let giants = sched
            .giants
            .par_iter()
            .enumerate()
            .map(|(g, giant)| self.giant((index, g), giant, &babies))
            .collect::<Result<Vec<_>, _>>()?;
        drop(babies);
        // Each outer step sums its giant steps and rotates once (a two-level split has the
        // one outer step 0).
        let mut giants: Vec<Option<S::Ct>> = giants.into_iter().map(Some).collect();
        let parts = sched
            .outers()
            .into_iter()
            .map(|outer| {
                let mut mine = sched
                    .giants
                    .iter()
                    .zip(giants.iter_mut())
                    .filter(|(g, _)| g.outer == outer)
                    .filter_map(|(_, ct)| ct.take());
                let mut sum = mine.next().ok_or(EvalError::Empty)?;
                for ct in mine {
                    self.scheme.add_assign(&mut sum, &ct)?;
                }
                self.rotate(&sum, outer)
            })
            .collect::<Result<Vec<_>, ExecError>>()?;
        let mut parts = parts.into_iter();
        let mut acc = match parts.next() {
            Some(first) => first,
            None => {
                let first = inputs.first().ok_or(EvalError::Empty)?;
                self.scheme.zero_like(first)?
            }
        };
        for part in parts {
            self.scheme.add_assign(&mut acc, &part)?;
        }
        for &r in &sched.fold {
            let moved = self.rotate(&acc, r)?;
            self.scheme.add_assign(&mut acc, &moved)?;
        }
        if bias.iter().any(|&b| b != 0) {
            let t = self.lift.params().plain();
            let entries = out_layout
                .iter()
                .zip(bias)
                .map(|(&s, &b)| (i64::from(s), t.reduce_i128(b)));
            let pt = lane_plaintext(&self.encoder, &self.packing, entries)?;
            acc = self.scheme.add_plain(&acc, &pt)?;
        }
        Ok(vec![acc])
    }

    fn square(&self, value: &S::Ct) -> Result<S::Ct, ExecError> {
        self.scheme.slotwise().square(value)
    }

    fn relinearize(&self, value: S::Ct) -> Result<S::Ct, ExecError> {
        self.scheme.slotwise().relinearize(value)
    }

    fn mod_switch(&self, value: S::Ct, level: usize) -> Result<S::Ct, ExecError> {
        self.scheme.slotwise().mod_switch(value, level)
    }
}
