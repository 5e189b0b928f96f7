//! Plan emission: the quantised circuit, its ranges and the chosen parameters and schedule
//! become a [`Plan`] (one register per circuit node, register `i` = node `i`).

use crate::analysis::{NodeRange, QCircuit, QOp};
use crate::params::{Chosen, SStep};
use veil_runtime::plan::{
    Calibration, OutputDecoding, Plan, PlanParams, RegisterInfo, Step, PLAN_FORMAT_VERSION,
};

/// What the emitter needs besides the circuit.
#[derive(Clone, Debug)]
pub struct EmitInfo<'a> {
    /// Model name.
    pub model: &'a str,
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
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        model: info.model.to_owned(),
        params: PlanParams {
            degree: chosen.n,
            q_primes: chosen.q_primes.clone(),
            special_primes: vec![chosen.special_prime],
            plain_primes: chosen.plain_primes.clone(),
            security_bits: chosen.security_bits,
            scheme: chosen.scheme,
        },
        input: c.input.clone(),
        registers,
        steps,
        output: OutputDecoding {
            register: c.output,
            scale: c.output_scale,
            class_names: info.classes.to_vec(),
        },
        depth: c.depth(),
        predicted_noise_budget_bits: chosen.sim.output_budget,
        compression: Default::default(),
        calibration: info.calibration.clone(),
        packing: None,
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
    use crate::analysis::{analyze, calibrate, quantize, QuantOptions};
    use crate::ir::Graph;
    use crate::params::{select, ParamOptions};
    use crate::passes::PassManager;
    use crate::testing::{chain, residual};

    struct Compiled {
        circuit: QCircuit,
        ranges: Vec<NodeRange>,
        chosen: Chosen,
        classes: Vec<String>,
    }

    fn compile(mut g: Graph, calibrated: bool) -> Compiled {
        PassManager::standard().run(&mut g).unwrap();
        let circuit = quantize(&g, &QuantOptions::default()).unwrap();
        let mut ranges = analyze(&circuit);
        if calibrated {
            let len = g.node(g.input).len();
            let samples: Vec<Vec<f64>> = (0..4)
                .map(|k| (0..len).map(|i| ((i + k) % 5) as f64 / 4.0 - 0.5).collect())
                .collect();
            calibrate(&circuit, &mut ranges, &samples, 1.0);
        }
        let chosen = select(&circuit, &ranges, &ParamOptions::default()).unwrap();
        Compiled {
            circuit,
            ranges,
            chosen,
            classes: g.classes.clone(),
        }
    }

    fn plan(c: &Compiled, calibration: Option<Calibration>) -> Plan {
        let info = EmitInfo {
            model: "m",
            classes: &c.classes,
            calibration,
        };
        emit(&c.circuit, &c.ranges, &c.chosen, &info)
    }

    #[test]
    fn the_plan_validates_and_its_registers_are_the_circuit_nodes() {
        let c = compile(
            chain(&[8], &["dense:6", "square", "dense:4", "square", "dense:3"]),
            false,
        );
        let p = plan(&c, None);
        p.validate().unwrap();
        assert_eq!(p.registers.len(), c.circuit.nodes.len());
        for (i, (reg, node)) in p.registers.iter().zip(&c.circuit.nodes).enumerate() {
            let st = c.chosen.sim.regs[i];
            assert_eq!(reg.name, node.name);
            assert_eq!(reg.len, node.len);
            assert_eq!(reg.depth, node.depth);
            assert_eq!(reg.value_bits, c.ranges[i].bits());
            assert_eq!(
                (reg.level, reg.ct_size, reg.noise_budget_bits),
                (st.level, st.size, st.budget)
            );
            assert_eq!(reg.calibrated_value_bits, None);
        }
        assert_eq!(p.depth, 2);
        assert_eq!(p.predicted_noise_budget_bits, c.chosen.sim.output_budget);
        assert_eq!(p.output.register, c.circuit.output);
        assert_eq!(p.output.scale, c.circuit.output_scale);
        assert_eq!(p.output.class_names, vec!["0", "1", "2"]);
        assert_eq!(p.input.register, 0);
        assert_eq!((p.input.scale, p.input.max_abs), (255.0, 255));
        assert_eq!(p.input, c.circuit.input);
        assert_eq!((p.input.raw_min, p.input.raw_max), (-1.0, 1.0));
        assert_eq!(p.params.degree, c.chosen.n);
        assert_eq!(p.params.q_primes, c.chosen.q_primes);
        assert_eq!(p.params.special_primes, vec![c.chosen.special_prime]);
        assert_eq!(p.params.plain_primes, c.chosen.plain_primes);
        assert_eq!(p.params.security_bits, 128);
        assert_eq!(p.calibration, None);
    }

    #[test]
    fn every_scheduled_step_is_emitted_in_order() {
        // A polynomial activation: its map reads two registers (x² and x).
        let c = compile(
            chain(
                &[6],
                &[
                    "dense:4",
                    "poly:0.1:0.5:0.25",
                    "dense:3",
                    "square",
                    "dense:2",
                ],
            ),
            false,
        );
        let p = plan(&c, None);
        p.validate().unwrap();
        assert_eq!(p.steps.len(), c.chosen.sim.steps.len());
        for (step, s) in p.steps.iter().zip(&c.chosen.sim.steps) {
            match (step, *s) {
                (
                    Step::Linear {
                        inputs,
                        output,
                        matrix,
                        bias,
                        ..
                    },
                    SStep::Linear(i),
                ) => {
                    assert_eq!(*output, i);
                    let QOp::Linear {
                        inputs: ci,
                        matrix: cm,
                        bias: cb,
                    } = &c.circuit.nodes[i].op
                    else {
                        panic!("node {i} is not linear");
                    };
                    assert_eq!((inputs, matrix, bias), (ci, cm, cb));
                }
                (Step::Square { input, output, .. }, SStep::Square(i)) => {
                    assert_eq!(*output, i);
                    assert_eq!(c.circuit.nodes[i].op, QOp::Square { input: *input });
                }
                (Step::Relinearize { register }, SStep::Relinearize(r)) => {
                    assert_eq!(*register, r);
                }
                (Step::ModSwitch { register, level }, SStep::ModSwitch(r, l)) => {
                    assert_eq!((*register, *level), (r, l));
                }
                other => panic!("step and schedule differ: {other:?}"),
            }
        }
        assert!(p
            .steps
            .iter()
            .any(|s| matches!(s, Step::Linear { inputs, .. } if inputs.len() == 2)));
        // And the plan survives its own codec.
        assert_eq!(Plan::from_json(&p.to_json().unwrap()).unwrap(), p);
    }

    #[test]
    fn a_residual_network_emits_a_valid_plan() {
        let c = compile(residual(), false);
        let p = plan(&c, None);
        p.validate().unwrap();
        assert_eq!(p.depth, c.circuit.depth());
        assert_eq!(p.registers[p.output.register].len, 2);
    }

    #[test]
    fn calibration_is_carried_into_the_plan() {
        let c = compile(chain(&[8], &["dense:6", "square", "dense:3"]), true);
        let calibration = Calibration {
            samples: 4,
            margin_bits: 1.0,
        };
        let p = plan(&c, Some(calibration.clone()));
        p.validate().unwrap();
        assert_eq!(p.calibration, Some(calibration));
        for (reg, range) in p.registers.iter().zip(&c.ranges) {
            let bits = reg.calibrated_value_bits.unwrap();
            assert_eq!(
                bits,
                crate::analysis::range::bits(range.calibrated.unwrap())
            );
            assert!(bits <= reg.value_bits);
        }
    }
}
