//! The packed backend: a plan in the packed layout (see [`crate::plan::packing`]) on BFV
//! ciphertexts, one ciphertext per register and plaintext prime, several images per
//! ciphertext.
//!
//! Squares, relinearisations and switches are the slot layout's operations on the one
//! ciphertext. A `Linear` follows its [`LinearSchedule`]: the baby rotations of each input are
//! hoisted ([`Evaluator::rotate_many`]) and transformed once, every giant step sums its
//! diagonal products in evaluation form ([`Evaluator::dot_plain`]) and is rotated once, the
//! fold adds the partial sums, and the bias is added as a plaintext vector. Diagonals are
//! encoded when the step runs, with every image lane of the ciphertext filled alike.

use super::{Backend, EncryptedBackend, ExecError};
use crate::bfv::{
    BfvParameters, Ciphertext, EvalError, Evaluator, GaloisKeys, NttCiphertext, Plaintext, RelinKey,
};
use crate::plan::packing::{GiantStep, LinearSchedule};
use crate::plan::{IntMatrix, Packing, Plan};
use rayon::prelude::*;
use std::sync::Arc;

/// Runs a packed plan's steps on BFV ciphertexts of one plaintext prime.
#[derive(Debug)]
pub struct PackedBackend<'k> {
    slotwise: EncryptedBackend<'k>,
    evaluator: Evaluator,
    encoder: crate::bfv::Encoder,
    galois: &'k GaloisKeys,
    packing: Packing,
    /// Per Linear step: its schedule and its output layout (where the bias goes).
    linears: Vec<(LinearSchedule, Vec<u32>)>,
}

impl<'k> PackedBackend<'k> {
    /// A backend for `plan` (which must be packed) on ciphertexts under `params`, with the
    /// server's relinearisation and Galois keys.
    pub fn new(
        plan: &Plan,
        params: &Arc<BfvParameters>,
        relin_key: &'k RelinKey,
        galois: &'k GaloisKeys,
    ) -> Result<Self, ExecError> {
        let packing = plan.packing.clone().ok_or_else(|| {
            ExecError::Backend("the plan has no packed layout to run".to_string().into())
        })?;
        let schedules = packing
            .schedules(plan)
            .map_err(|e| ExecError::Backend(e.into()))?;
        let outputs = plan.steps.iter().filter_map(|s| match s {
            crate::plan::Step::Linear { output, .. } => packing.layouts.get(*output).cloned(),
            _ => None,
        });
        let linears = schedules.into_iter().zip(outputs).collect();
        Ok(PackedBackend {
            slotwise: EncryptedBackend::new(params, relin_key),
            evaluator: Evaluator::new(params),
            encoder: crate::bfv::Encoder::new(params),
            galois,
            packing,
            linears,
        })
    }

    fn degree(&self) -> usize {
        self.evaluator.params().degree()
    }

    /// The plaintext with `entries` (lane offset, value mod t) placed in every image lane.
    fn lane_plaintext(
        &self,
        entries: impl Iterator<Item = (i64, u64)> + Clone,
    ) -> Result<Plaintext, ExecError> {
        let n = self.degree();
        let mut slots = vec![0u64; n];
        for image in 0..self.packing.images_per_ciphertext(n) {
            let base = self.packing.lane_base(n, image);
            for (offset, value) in entries.clone() {
                slots[Packing::slot_at(n, base, offset)] = value;
            }
        }
        self.encoder
            .encode_unsigned(&slots)
            .map_err(|e| ExecError::Backend(Box::new(e)))
    }

    /// One giant step: its diagonal products summed, then rotated.
    fn giant(
        &self,
        giant: &GiantStep,
        babies: &[Vec<(i64, NttCiphertext)>],
    ) -> Result<Ciphertext, ExecError> {
        let t = self.evaluator.params().plain();
        let mut pts = Vec::with_capacity(giant.terms.len());
        let mut cts = Vec::with_capacity(giant.terms.len());
        for term in &giant.terms {
            let ct = babies
                .get(term.input)
                .and_then(|b| b.iter().find(|(beta, _)| *beta == term.baby))
                .map(|(_, ct)| ct)
                .ok_or(EvalError::Empty)?;
            let pt =
                self.lane_plaintext(term.entries.iter().map(|&(o, w)| (o, t.reduce_i64(w))))?;
            pts.push(self.evaluator.plain_to_ntt(&pt, ct.level())?);
            cts.push(ct);
        }
        let terms: Vec<_> = cts.into_iter().zip(&pts).collect();
        let sum = self.evaluator.dot_plain(&terms)?;
        self.rotate(&sum, giant.rotation)
    }

    fn rotate(&self, ct: &Ciphertext, steps: i64) -> Result<Ciphertext, ExecError> {
        let half = (self.degree() / 2) as i64;
        if steps.rem_euclid(half) == 0 {
            return Ok(ct.clone());
        }
        Ok(self.evaluator.rotate_rows(ct, steps, self.galois)?)
    }

    /// Every baby rotation of every input, in evaluation form.
    fn babies(
        &self,
        sched: &LinearSchedule,
        inputs: &[&Ciphertext],
    ) -> Result<Vec<Vec<(i64, NttCiphertext)>>, ExecError> {
        sched
            .babies
            .iter()
            .zip(inputs)
            .map(|(steps, &ct)| {
                let moving: Vec<i64> = steps.iter().copied().filter(|&s| s != 0).collect();
                let rotated = self.evaluator.rotate_many(ct, &moving, self.galois)?;
                let mut out = Vec::with_capacity(steps.len());
                if steps.contains(&0) {
                    out.push((0, self.evaluator.to_ntt(ct)?));
                }
                for (s, r) in moving.into_iter().zip(&rotated) {
                    out.push((s, self.evaluator.to_ntt(r)?));
                }
                Ok(out)
            })
            .collect()
    }
}

impl Backend for PackedBackend<'_> {
    type Value = Ciphertext;

    fn register_values(&self, _len: usize) -> usize {
        1
    }

    fn dot(&self, _: &[&Ciphertext], _: &[i64], _: i128) -> Result<Ciphertext, ExecError> {
        Err(ExecError::Backend(
            "a packed plan runs whole Linear steps, not rows"
                .to_string()
                .into(),
        ))
    }

    fn linear(
        &self,
        _: &[&Ciphertext],
        _: &IntMatrix,
        _: &[i128],
    ) -> Result<Vec<Ciphertext>, ExecError> {
        self.dot(&[], &[], 0).map(|c| vec![c])
    }

    fn linear_step(
        &self,
        index: usize,
        inputs: &[&Ciphertext],
        _matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<Vec<Ciphertext>, ExecError> {
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
        let parts = sched
            .giants
            .par_iter()
            .map(|g| self.giant(g, &babies))
            .collect::<Result<Vec<_>, _>>()?;
        drop(babies);
        let mut parts = parts.into_iter();
        let mut acc = match parts.next() {
            Some(first) => first,
            None => self.evaluator.mul_scalar(inputs[0], 0)?,
        };
        for part in parts {
            self.evaluator.add_assign(&mut acc, &part)?;
        }
        for &r in &sched.fold {
            let moved = self.rotate(&acc, r)?;
            self.evaluator.add_assign(&mut acc, &moved)?;
        }
        if bias.iter().any(|&b| b != 0) {
            let t = self.evaluator.params().plain();
            let entries = out_layout
                .iter()
                .zip(bias)
                .map(|(&s, &b)| (i64::from(s), t.reduce_i128(b)));
            acc = self
                .evaluator
                .add_plain(&acc, &self.lane_plaintext(entries)?)?;
        }
        Ok(vec![acc])
    }

    fn square(&self, value: &Ciphertext) -> Result<Ciphertext, ExecError> {
        self.slotwise.square(value)
    }

    fn relinearize(&self, value: Ciphertext) -> Result<Ciphertext, ExecError> {
        self.slotwise.relinearize(value)
    }

    fn mod_switch(&self, value: Ciphertext, level: usize) -> Result<Ciphertext, ExecError> {
        self.slotwise.mod_switch(value, level)
    }
}
