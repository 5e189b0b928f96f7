//! The BGV backend: plan steps as BGV operations on NTT-form ciphertexts of one plaintext
//! prime, with the server's BGV relinearisation key.
//!
//! Scales: a BGV ciphertext carries its message times a known unit mod t (see
//! [`crate::bgv::Ciphertext`]), and a plan may sum values whose scales differ (a residual connection
//! around a square, or inputs switched down along different paths). A dot then aligns them by
//! folding the ratio of scales into the weights mod t ([`Evaluator::dot_any_scale`]): exact,
//! but the folded weight is up to t/2, so that input's noise grows by up to log2(t/2) bits
//! rather than log2|w|. Inputs at the common scale keep their small weights.

use super::backend::linear_by_rows;
use super::{matmul, Backend, ExecError};
use crate::bfv::BfvParameters;
use crate::bgv::{Ciphertext, Evaluator, RelinKey};
use crate::math::{Ntt, RnsPoly};
use crate::plan::IntMatrix;
use rayon::prelude::*;
use std::sync::Arc;

/// Runs plan steps on BGV ciphertexts of one plaintext prime, with the server's BGV
/// relinearisation key (made for every plaintext prime of the plan).
#[derive(Debug)]
pub struct BgvBackend<'k> {
    evaluator: Evaluator,
    relin_key: &'k RelinKey,
}

impl<'k> BgvBackend<'k> {
    /// A backend for ciphertexts under `params` (whose t is the run's plaintext prime),
    /// relinearising with `relin_key`.
    pub fn new(params: &Arc<BfvParameters>, relin_key: &'k RelinKey) -> Self {
        BgvBackend {
            evaluator: Evaluator::new(params),
            relin_key,
        }
    }
}

impl BgvBackend<'_> {
    /// Ciphertexts from the blocked product's rows (at `level` and `scale`), plus the bias.
    fn finish_rows(
        &self,
        sums: Vec<Vec<RnsPoly<Ntt>>>,
        level: usize,
        scale: u64,
        bias: &[i128],
    ) -> Result<Vec<Ciphertext>, ExecError> {
        let params = self.evaluator.params();
        sums.into_par_iter()
            .enumerate()
            .map(|(row, polys)| {
                let mut sum = Ciphertext::new(params.clone(), polys, level, scale);
                match bias.get(row).copied().unwrap_or(0) {
                    0 => {}
                    b => self.evaluator.add_constant_assign(&mut sum, b)?,
                }
                Ok(sum)
            })
            .collect()
    }
}

impl Backend for BgvBackend<'_> {
    type Value = Ciphertext;

    fn dot(
        &self,
        inputs: &[&Ciphertext],
        weights: &[i64],
        bias: i128,
    ) -> Result<Ciphertext, ExecError> {
        let sum = self.evaluator.dot_any_scale(inputs, weights)?;
        if bias == 0 {
            Ok(sum)
        } else {
            self.evaluator
                .add_constant(&sum, bias)
                .map_err(ExecError::from)
        }
    }

    /// The blocked matrix product of `exec::matmul` on the NTT residues when every input shares
    /// parameters, level and scale (and the weights fit its accumulators); one
    /// [`Backend::dot`] per row otherwise.
    fn linear(
        &self,
        inputs: &[&Ciphertext],
        matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<Vec<Ciphertext>, ExecError> {
        let params = self.evaluator.params();
        let Some(first) = inputs.first() else {
            return linear_by_rows(self, inputs, matrix, bias);
        };
        let uniform = inputs.iter().all(|c| {
            c.level() == first.level()
                && c.scale() == first.scale()
                && (2..=3).contains(&c.size())
                && c.params().fingerprint() == params.fingerprint()
        });
        if !uniform || !matmul::fits(matrix, params.degree()) {
            return linear_by_rows(self, inputs, matrix, bias);
        }
        let level = first.level();
        let scale = first.scale();
        let polys: Vec<&[RnsPoly<Ntt>]> = inputs.iter().map(|c| c.polys()).collect();
        let sums = matmul::linear_blocked_polys(
            &polys,
            &params.ring().q()[..level],
            params.degree(),
            matrix,
        );
        self.finish_rows(sums, level, scale, bias)
    }

    fn fuses_squares(&self) -> bool {
        true
    }

    /// The squares' components computed inside the blocked product (see
    /// `exec::matmul::square_linear_blocked`), when every input is a size-2 ciphertext of
    /// these parameters at one level and scale and the weights fit the kernel.
    fn square_linear_step(
        &self,
        _index: usize,
        inputs: &[&Ciphertext],
        matrix: &IntMatrix,
        bias: &[i128],
    ) -> Option<Result<Vec<Ciphertext>, ExecError>> {
        let params = self.evaluator.params();
        let first = inputs.first()?;
        let uniform = inputs.iter().all(|c| {
            c.level() == first.level()
                && c.scale() == first.scale()
                && c.size() == 2
                && c.params().fingerprint() == params.fingerprint()
        });
        if !uniform || !matmul::fits(matrix, params.degree()) || matrix.cols != inputs.len() {
            return None;
        }
        let level = first.level();
        let scale = self.evaluator.product_scale(first.scale(), first.scale());
        let polys: Vec<&[RnsPoly<Ntt>]> = inputs.iter().map(|c| c.polys()).collect();
        let sums = matmul::square_linear_blocked(
            &polys,
            &params.ring().q()[..level],
            params.degree(),
            matrix,
        );
        Some(self.finish_rows(sums, level, scale, bias))
    }

    /// The square (size 3, not relinearised); a size-3 input is relinearised first.
    fn square(&self, value: &Ciphertext) -> Result<Ciphertext, ExecError> {
        if value.size() > 2 {
            let relin = self.evaluator.relinearize(value, self.relin_key)?;
            return self.evaluator.square(&relin).map_err(ExecError::from);
        }
        self.evaluator.square(value).map_err(ExecError::from)
    }

    fn relinearize(&self, value: Ciphertext) -> Result<Ciphertext, ExecError> {
        if value.size() <= 2 {
            return Ok(value);
        }
        self.evaluator
            .relinearize(&value, self.relin_key)
            .map_err(ExecError::from)
    }

    fn mod_switch(&self, value: Ciphertext, level: usize) -> Result<Ciphertext, ExecError> {
        if value.level() <= level {
            return Ok(value);
        }
        self.evaluator
            .mod_switch_to_level(&value, level)
            .map_err(ExecError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::{Encoder, SecretKey};
    use crate::bgv;
    use crate::exec::engine::tests::toy_plan;
    use crate::exec::{
        run_plan, run_plan_keeping_registers, EncryptedBackend, ExactBackend, NoProgress,
    };
    use crate::plan::Step;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The decrypted slots of a BGV result, unsigned in [0, t): what CRT recombination takes.
    fn decrypt_slots(
        sk: &crate::bfv::SecretKey,
        encoder: &crate::bfv::Encoder,
        ct: &Ciphertext,
    ) -> Vec<u64> {
        encoder
            .decode_unsigned(&bgv::decrypt(sk, ct).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The toy plan with switches that leave its residual layer summing values of different
    /// scales: fc1, switch fc1 to level 2, square, relinearise, switch the input to level 2,
    /// fc2 over (squares, inputs), switch to level 1.
    fn mixed_scale_plan(primes: Vec<u64>, q: Vec<u64>) -> crate::plan::Plan {
        let mut plan = toy_plan(primes, q);
        plan.params.scheme = crate::plan::Scheme::Bgv;
        let steps = std::mem::take(&mut plan.steps);
        let mut it = steps.into_iter();
        let mut out = Vec::new();
        if let Some(fc1) = it.next() {
            out.push(fc1);
        }
        out.push(Step::ModSwitch {
            register: 1,
            level: 2,
        });
        out.extend(it.by_ref().take(2)); // square, relinearise
        out.push(Step::ModSwitch {
            register: 0,
            level: 2,
        });
        out.extend(it); // fc2, switch to 1
        plan.steps = out;
        plan
    }

    /// Under two plaintext primes with one BGV key set, `run_plan` with [`BgvBackend`] gives,
    /// after CRT, exactly the integer reference in every slot; for the plain toy plan the
    /// decrypted residues also equal BFV's.
    #[test]
    fn bgv_run_equals_the_reference_in_every_slot() {
        let params = BfvParameters::builder()
            .degree(1024)
            .q_bits(&[55, 50, 50])
            .special_bits(56)
            .plain_bits(17)
            .allow_insecure(true)
            .build()
            .unwrap();
        let t0 = params.plain_modulus();
        let t1 = crate::math::ntt_primes(18, 1024, 1, &[t0]).unwrap()[0];
        let second = params.with_plain_modulus(t1).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let sk = SecretKey::generate(&params, &mut rng);
        let rk = RelinKey::new(&sk, &[t0, t1], &mut rng).unwrap();
        let bfv_rk = crate::bfv::RelinKey::new(&sk, &mut rng);
        let n = 1024;
        let features: Vec<Vec<i64>> = (0..3)
            .map(|_| (0..n).map(|_| rng.gen_range(-8..=8)).collect())
            .collect();
        let exact_inputs: Vec<Vec<i128>> = features
            .iter()
            .map(|f| f.iter().map(|&v| i128::from(v)).collect())
            .collect();
        let crt = crate::exec::crt::Crt::new(&[t0, t1]).unwrap();
        let toy = toy_plan(vec![t0, t1], params.q_primes());
        for plan in [
            toy.clone(),
            mixed_scale_plan(vec![t0, t1], params.q_primes()),
        ] {
            let reference = run_plan(
                &plan,
                &ExactBackend::for_plain_primes(&[t0, t1]),
                exact_inputs.clone(),
                &NoProgress,
            )
            .unwrap();
            let mut residues = Vec::new();
            for p in [&params, &second] {
                let encoder = Encoder::new(p);
                let inputs: Vec<Ciphertext> = features
                    .iter()
                    .map(|f| bgv::encrypt(&sk, &encoder.encode(f).unwrap(), &mut rng).unwrap())
                    .collect();
                let out = run_plan(&plan, &BgvBackend::new(p, &rk), inputs, &NoProgress).unwrap();
                for ct in &out {
                    assert_eq!(ct.level(), 1);
                    let budget = bgv::noise_budget_bits(&sk, ct).unwrap();
                    println!("t={}: output budget {budget}", p.plain_modulus());
                    assert!(budget > 0);
                }
                let slots: Vec<Vec<u64>> = out
                    .iter()
                    .map(|ct| decrypt_slots(&sk, &encoder, ct))
                    .collect();
                if plan == toy {
                    // BFV on the same plan decrypts to the same residues.
                    let bfv_inputs: Vec<crate::bfv::Ciphertext> = features
                        .iter()
                        .map(|f| sk.encrypt(&encoder.encode(f).unwrap(), &mut rng).unwrap())
                        .collect();
                    let bfv_out = run_plan(
                        &plan,
                        &EncryptedBackend::new(p, &bfv_rk),
                        bfv_inputs,
                        &NoProgress,
                    )
                    .unwrap();
                    for (o, ct) in bfv_out.iter().enumerate() {
                        let d = encoder.decode_unsigned(&sk.decrypt(ct).unwrap()).unwrap();
                        assert_eq!(d, slots[o], "BFV and BGV differ on output {o}");
                    }
                }
                residues.push(slots);
            }
            for o in 0..2 {
                for k in 0..n {
                    let value = crt
                        .recombine(&[residues[0][o][k], residues[1][o][k]])
                        .unwrap();
                    assert_eq!(value, reference[o][k], "output {o}, slot {k}");
                }
            }
        }
    }

    /// The blocked product on NTT residues gives exactly the ciphertexts of one dot per row.
    #[test]
    fn bgv_blocked_linear_equals_row_by_row_dot() {
        let params = BfvParameters::builder()
            .degree(1024)
            .q_bits(&[55, 54])
            .special_bits(56)
            .plain_bits(20)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let sk = SecretKey::generate(&params, &mut rng);
        let t = params.plain_modulus();
        let rk = RelinKey::new(&sk, &[t], &mut rng).unwrap();
        let encoder = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let mut inputs = Vec::new();
        for i in 0..23 {
            let values: Vec<i64> = (0..1024).map(|_| rng.gen_range(-50..=50)).collect();
            let ct = bgv::encrypt(&sk, &encoder.encode(&values).unwrap(), &mut rng).unwrap();
            inputs.push(if i % 3 == 0 {
                ev.square(&ct).unwrap()
            } else {
                ct
            });
        }
        let refs: Vec<&Ciphertext> = inputs.iter().collect();
        let mut matrix = IntMatrix {
            rows: 7,
            cols: 23,
            row_ptr: vec![0],
            col_idx: vec![],
            values: vec![],
        };
        for r in 0..7 {
            if r != 4 {
                for c in 0..23 {
                    let w: i64 = rng.gen_range(-300..=300);
                    if w != 0 && (r + c) % 5 != 0 {
                        matrix.col_idx.push(c as u32);
                        matrix.values.push(w);
                    }
                }
            }
            matrix.row_ptr.push(matrix.values.len());
        }
        let bias: Vec<i128> = (0..7).map(|r| r as i128 * 1000 - 3000).collect();
        let backend = BgvBackend::new(&params, &rk);
        let blocked = backend.linear(&refs, &matrix, &bias).unwrap();
        let by_rows = linear_by_rows(&backend, &refs, &matrix, &bias).unwrap();
        for (r, (a, b)) in blocked.iter().zip(&by_rows).enumerate() {
            if r == 4 {
                let da = decrypt_slots(&sk, &encoder, a);
                assert_eq!(da, decrypt_slots(&sk, &encoder, b));
                assert!(da.iter().all(|&v| v == 1000));
            } else {
                assert_eq!(a, b, "row {r}");
            }
        }
    }

    /// The labels of finished steps, in order.
    #[derive(Default)]
    struct Labels(std::sync::Mutex<Vec<String>>);

    impl crate::exec::Progress for Labels {
        fn step_finished(&self, _index: usize, label: &str, _elapsed: std::time::Duration) {
            self.0.lock().unwrap().push(label.to_owned());
        }
    }

    /// A map over squares computed inside the blocked product equals squaring first,
    /// ciphertext for ciphertext; inputs it cannot take (size 3) are left to the engine.
    #[test]
    fn bgv_square_inside_the_map_equals_squaring_first() {
        let params = BfvParameters::builder()
            .degree(1024)
            .q_bits(&[55, 54])
            .special_bits(56)
            .plain_bits(20)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let sk = SecretKey::generate(&params, &mut rng);
        let t = params.plain_modulus();
        let rk = RelinKey::new(&sk, &[t], &mut rng).unwrap();
        let encoder = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let inputs: Vec<Ciphertext> = (0..9)
            .map(|_| {
                let values: Vec<i64> = (0..1024).map(|_| rng.gen_range(-50..=50)).collect();
                bgv::encrypt(&sk, &encoder.encode(&values).unwrap(), &mut rng).unwrap()
            })
            .collect();
        let mut matrix = IntMatrix {
            rows: 6,
            cols: 9,
            row_ptr: vec![0],
            col_idx: vec![],
            values: vec![],
        };
        for r in 0..6 {
            for c in 0..9 {
                let w: i64 = rng.gen_range(-300..=300);
                if (r * c) % 4 != 1 {
                    matrix.col_idx.push(c as u32);
                    matrix.values.push(w);
                }
            }
            matrix.row_ptr.push(matrix.values.len());
        }
        let bias: Vec<i128> = (0..6).map(|r| r as i128 * 77 - 200).collect();
        let backend = BgvBackend::new(&params, &rk);
        let refs: Vec<&Ciphertext> = inputs.iter().collect();
        let fused = backend
            .square_linear_step(0, &refs, &matrix, &bias)
            .unwrap()
            .unwrap();
        let squares: Vec<Ciphertext> = inputs.iter().map(|c| ev.square(c).unwrap()).collect();
        let square_refs: Vec<&Ciphertext> = squares.iter().collect();
        let first = backend.linear(&square_refs, &matrix, &bias).unwrap();
        assert_eq!(fused, first);
        assert!(backend
            .square_linear_step(0, &square_refs, &matrix, &bias)
            .is_none());

        // The engine fuses a square into a map that reads nothing else, and only when it frees
        // the squares afterwards: both runs give the same ciphertexts.
        let mut plan = toy_plan(vec![t], params.q_primes());
        plan.steps
            .retain(|s| !matches!(s, Step::Relinearize { .. }));
        if let Some(Step::Linear { inputs, matrix, .. }) = plan.steps.get_mut(2) {
            *inputs = vec![2];
            *matrix = IntMatrix {
                rows: 2,
                cols: 2,
                row_ptr: vec![0, 2, 3],
                col_idx: vec![0, 1, 1],
                values: vec![3, -5, 7],
            };
        }
        let fresh: Vec<Ciphertext> = inputs[..3].to_vec();
        let labels = Labels::default();
        let fused = run_plan(&plan, &backend, fresh.clone(), &labels).unwrap();
        let seen = labels.0.into_inner().unwrap();
        assert_eq!(
            seen.len(),
            plan.steps.len(),
            "every step finishes: {seen:?}"
        );
        assert!(
            seen.iter().any(|l| l == "square act1 + linear fc2"),
            "{seen:?}"
        );
        let kept = run_plan_keeping_registers(&plan, &backend, fresh).unwrap();
        let unfused = kept[plan.output.register].as_ref().unwrap();
        assert_eq!(&fused, unfused);
    }
}
