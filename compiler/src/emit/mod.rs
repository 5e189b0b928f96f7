//! Plan emission: the quantised circuit, its ranges and the chosen parameters and schedule
//! become a [`Plan`] (one register per circuit node, register `i` = node `i`).

use crate::analysis::{NodeRange, QCircuit, QOp};
use crate::params::{Chosen, SStep};
use veil_runtime::plan::{
    Calibration, InputEncoding, OutputDecoding, Plan, PlanParams, RegisterInfo, Step,
    PLAN_FORMAT_VERSION,
};

/// What the emitter needs besides the circuit.
#[derive(Clone, Debug)]
pub struct EmitInfo<'a> {
    /// Model name.
    pub model: &'a str,
    /// Input shape.
    pub shape: &'a [usize],
    /// Declared raw range.
    pub raw_range: (f64, f64),
    /// Class names.
    pub classes: &'a [String],
    /// Calibration facts, when calibrated.
    pub calibration: Option<Calibration>,
}

/// Builds the plan. The result always passes [`Plan::validate`] (checked by the caller).
pub fn emit(c: &QCircuit, ranges: &[NodeRange], chosen: &Chosen, info: &EmitInfo<'_>) -> Plan {
    let registers = c
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let st = chosen.sim.regs[i];
            RegisterInfo {
                name: node.name.clone(),
                len: node.len,
                value_bits: ranges[i].bits(),
                depth: node.depth,
                level: st.level,
                ct_size: st.size,
                noise_budget_bits: st.budget,
                calibrated_value_bits: ranges[i].calibrated.map(crate::analysis::range::bits),
            }
        })
        .collect();
    let steps = chosen
        .sim
        .steps
        .iter()
        .filter_map(|s| {
            Some(match *s {
                SStep::Linear(i) => {
                    let QOp::Linear {
                        inputs,
                        matrix,
                        bias,
                    } = &c.nodes[i].op
                    else {
                        return None;
                    };
                    Step::Linear {
                        name: c.nodes[i].name.clone(),
                        inputs: inputs.clone(),
                        output: i,
                        matrix: matrix.clone(),
                        bias: bias.clone(),
                    }
                }
                SStep::Square(i) => {
                    let QOp::Square { input } = c.nodes[i].op else {
                        return None;
                    };
                    Step::Square {
                        name: c.nodes[i].name.clone(),
                        input,
                        output: i,
                    }
                }
                SStep::Relinearize(r) => Step::Relinearize { register: r },
                SStep::ModSwitch(r, level) => Step::ModSwitch { register: r, level },
            })
        })
        .collect();
    let max_abs = c
        .input_range
        .0
        .unsigned_abs()
        .max(c.input_range.1.unsigned_abs());
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        model: info.model.to_owned(),
        params: PlanParams {
            degree: chosen.n,
            q_primes: chosen.q_primes.clone(),
            special_primes: vec![chosen.special_prime],
            plain_primes: chosen.plain_primes.clone(),
            security_bits: chosen.security_bits,
        },
        input: InputEncoding {
            register: 0,
            shape: info.shape.to_vec(),
            raw_min: info.raw_range.0,
            raw_max: info.raw_range.1,
            scale: c.input_scale,
            max_abs: i64::try_from(max_abs).unwrap_or(i64::MAX),
            features: c.features.clone(),
        },
        registers,
        steps,
        output: OutputDecoding {
            register: c.output,
            scale: c.output_scale,
            class_names: info.classes.to_vec(),
        },
        depth: c.depth(),
        predicted_noise_budget_bits: chosen.sim.output_budget,
        calibration: info.calibration.clone(),
    }
}
