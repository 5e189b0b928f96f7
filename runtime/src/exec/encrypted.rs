//! The encrypted backend: plan steps as BFV operations on ciphertexts of one plaintext prime.

use super::backend::linear_by_rows;
use super::{matmul, Backend, ExecError};
use crate::bfv::{BfvParameters, Ciphertext, Evaluator, RelinKey};
use crate::plan::IntMatrix;
use rayon::prelude::*;
use std::sync::Arc;

/// Runs plan steps on BFV ciphertexts of one plaintext prime, with the server's evaluation key.
#[derive(Debug)]
pub struct EncryptedBackend<'k> {
    evaluator: Evaluator,
    relin_key: &'k RelinKey,
}

impl<'k> EncryptedBackend<'k> {
    /// A backend for ciphertexts under `params`, relinearising with `relin_key`.
    pub fn new(params: &Arc<BfvParameters>, relin_key: &'k RelinKey) -> Self {
        EncryptedBackend {
            evaluator: Evaluator::new(params),
            relin_key,
        }
    }
}

impl Backend for EncryptedBackend<'_> {
    type Value = Ciphertext;

    fn dot(
        &self,
        inputs: &[&Ciphertext],
        weights: &[i64],
        bias: i128,
    ) -> Result<Ciphertext, ExecError> {
        let sum = self.evaluator.dot(inputs, weights)?;
        if bias == 0 {
            Ok(sum)
        } else {
            self.evaluator
                .add_constant(&sum, bias)
                .map_err(ExecError::from)
        }
    }

    fn linear(
        &self,
        inputs: &[&Ciphertext],
        matrix: &IntMatrix,
        bias: &[i128],
    ) -> Result<Vec<Ciphertext>, ExecError> {
        let params = self.evaluator.params();
        let uniform = inputs.first().is_some_and(|first| {
            inputs.iter().all(|c| {
                c.level() == first.level() && c.params().fingerprint() == params.fingerprint()
            })
        });
        if !uniform || !matmul::fits(matrix, params.degree()) {
            return linear_by_rows(self, inputs, matrix, bias);
        }
        let sums = matmul::linear_blocked(inputs, matrix);
        sums.into_par_iter()
            .enumerate()
            .map(|(row, mut sum)| {
                match bias.get(row).copied().unwrap_or(0) {
                    0 => {}
                    b => self.evaluator.add_constant_assign(&mut sum, b)?,
                }
                Ok(sum)
            })
            .collect()
    }

    fn square(&self, value: &Ciphertext) -> Result<Ciphertext, ExecError> {
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
    use crate::exec::engine::tests::toy_plan;
    use crate::exec::{run_plan, ExactBackend, NoProgress};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The toy plan (dense, square, relinearise, residual dense, mod switch) encrypted under
    /// two plaintext primes gives, after CRT, exactly the integer reference in every slot.
    #[test]
    fn encrypted_run_equals_the_reference_in_every_slot() {
        let params = BfvParameters::builder()
            .degree(1024)
            .q_bits(&[50, 50])
            .special_bits(51)
            .plain_bits(17)
            .allow_insecure(true)
            .build()
            .unwrap();
        let t0 = params.plain_modulus();
        let t1 = crate::math::ntt_primes(18, 1024, 1, &[t0]).unwrap()[0];
        let second = params.with_plain_modulus(t1).unwrap();
        let plan = toy_plan(vec![t0, t1], params.q_primes());
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let sk = SecretKey::generate(&params, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);

        let n = 1024;
        let features: Vec<Vec<i64>> = (0..3)
            .map(|_| (0..n).map(|_| rng.gen_range(-8..=8)).collect())
            .collect();
        let exact_inputs: Vec<Vec<i128>> = features
            .iter()
            .map(|f| f.iter().map(|&v| i128::from(v)).collect())
            .collect();
        let reference = run_plan(
            &plan,
            &ExactBackend::for_plain_primes(&[t0, t1]),
            exact_inputs,
            &NoProgress,
        )
        .unwrap();

        let crt = crate::exec::crt::Crt::new(&[t0, t1]).unwrap();
        let mut residues = Vec::new();
        for p in [&params, &second] {
            let encoder = Encoder::new(p);
            let inputs: Vec<Ciphertext> = features
                .iter()
                .map(|f| sk.encrypt(&encoder.encode(f).unwrap(), &mut rng).unwrap())
                .collect();
            let out = run_plan(&plan, &EncryptedBackend::new(p, &rk), inputs, &NoProgress).unwrap();
            for ct in &out {
                assert_eq!(ct.level(), 1, "the plan switches the output to level 1");
                assert!(sk.noise_budget(ct).unwrap() > 0);
            }
            residues.push(
                out.iter()
                    .map(|ct| encoder.decode_unsigned(&sk.decrypt(ct).unwrap()).unwrap())
                    .collect::<Vec<_>>(),
            );
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

#[cfg(test)]
mod blocked_tests {
    use super::*;
    use crate::bfv::{Encoder, SecretKey};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The blocked matrix product gives exactly the ciphertexts of one `dot` per row, for
    /// mixed size-2/size-3 inputs, signed weights and empty rows.
    #[test]
    fn blocked_linear_equals_row_by_row_dot() {
        let params = BfvParameters::builder()
            .degree(1024)
            .q_bits(&[55, 54])
            .special_bits(56)
            .plain_bits(20)
            .allow_insecure(true)
            .build()
            .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let sk = SecretKey::generate(&params, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        let encoder = Encoder::new(&params);
        let evaluator = Evaluator::new(&params);
        let mut inputs = Vec::new();
        for i in 0..23 {
            let values: Vec<i64> = (0..1024).map(|_| rng.gen_range(-50..=50)).collect();
            let ct = sk
                .encrypt(&encoder.encode(&values).unwrap(), &mut rng)
                .unwrap();
            inputs.push(if i % 3 == 0 {
                evaluator.square(&ct).unwrap()
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
        let backend = EncryptedBackend::new(&params, &rk);
        assert!(matmul::fits(&matrix, 1024));
        let blocked = backend.linear(&refs, &matrix, &bias).unwrap();
        let by_rows = linear_by_rows(&backend, &refs, &matrix, &bias).unwrap();
        assert_eq!(blocked.len(), 7);
        for (r, (a, b)) in blocked.iter().zip(&by_rows).enumerate() {
            if r == 4 {
                // The empty row: both must decrypt to the bias alone.
                let da = encoder.decode(&sk.decrypt(a).unwrap()).unwrap();
                let db = encoder.decode(&sk.decrypt(b).unwrap()).unwrap();
                assert_eq!(da, db);
                assert!(da.iter().all(|&v| v == 1000));
            } else {
                assert_eq!(a, b, "row {r}");
            }
        }
    }
}
