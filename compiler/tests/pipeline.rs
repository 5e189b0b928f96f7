//! End-to-end properties: passes keep the function, range bounds hold on the emitted plan,
//! parameters are secure with a positive budget (or fail clearly), plans round-trip,
//! calibration tightens bounds, quantisation stays close to float.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use veil_compiler::ir::eval::evaluate;
use veil_compiler::ir::Graph;
use veil_compiler::passes::{
    DropNoops, ExpandPolynomials, FoldBatchNorm, FuseLinear, LowerPooling, Pass,
};
use veil_compiler::testing::{chain, check_pass, cryptonets_random, residual};
use veil_compiler::{compile_graph, CompileError, CompileOptions};
use veil_runtime::exec::{exact_registers, exact_scores, ExecError};
use veil_runtime::plan::{argmax, Plan, Step};
use veil_runtime::security::SecurityLevel;

fn cryptonets() -> Graph {
    let (model, tensors) = cryptonets_random(2016);
    veil_compiler::ir::build::build(&veil_compiler::model::from_parts(
        Path::new("cryptonets.ron"),
        model,
        tensors,
    ))
    .unwrap()
}

/// Inputs that stress the bounds: all-min, all-max, random corners, uniform random.
fn probe_inputs(g: &Graph, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let len = g.node(g.input).len();
    let (lo, hi) = g.input_range;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![vec![lo; len], vec![hi; len]];
    for k in 0..count {
        out.push(if k % 2 == 0 {
            (0..len)
                .map(|_| if rng.gen_bool(0.5) { lo } else { hi })
                .collect()
        } else {
            (0..len).map(|_| rng.gen_range(lo..=hi)).collect()
        });
    }
    out
}

fn check_bounds(plan: &Plan, inputs: &[Vec<f64>]) {
    for x in inputs {
        match exact_registers(plan, x) {
            Ok(regs) => {
                for (r, values) in regs.iter().enumerate() {
                    let bound = plan.registers[r].value_bits.exp2();
                    for &v in values {
                        assert!(
                            (v as f64).abs() <= bound,
                            "register {r} ({}) value {v} above 2^{}",
                            plan.registers[r].name,
                            plan.registers[r].value_bits
                        );
                    }
                }
            }
            Err(ExecError::Operation { step, .. }) => {
                let register = match &plan.steps[step] {
                    Step::Linear { output, .. } | Step::Square { output, .. } => *output,
                    other => panic!("{other:?} cannot overflow"),
                };
                assert!(
                    plan.registers[register].value_bits >= 127.0,
                    "i128 overflow in register {register} whose bound is 2^{}",
                    plan.registers[register].value_bits
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn models() -> Vec<(&'static str, Graph)> {
    vec![
        (
            "small_cryptonets",
            chain(
                &[1, 8, 8],
                &[
                    "conv:3:3:2:1",
                    "square",
                    "sumpool:3:1:1",
                    "conv:4:3:1",
                    "flatten",
                    "dense:5",
                    "square",
                    "dense:3",
                ],
            ),
        ),
        (
            "lowering",
            chain(
                &[2, 6, 6],
                &[
                    "conv:3:3:1",
                    "bn",
                    "relu",
                    "maxpool:2:2",
                    "dropout",
                    "flatten",
                    "dense:4",
                    "poly:0.1:0.5:0.25",
                    "dense:3",
                    "sigmoid",
                ],
            ),
        ),
        ("residual", residual()),
        ("input_square", chain(&[6], &["square", "dense:3"])),
    ]
}

#[test]
fn exact_passes_keep_the_function_on_random_chains() {
    let exact: Vec<Box<dyn Pass>> = vec![
        Box::new(FoldBatchNorm),
        Box::new(LowerPooling),
        Box::new(ExpandPolynomials),
        Box::new(FuseLinear),
        Box::new(DropNoops),
    ];
    let linear = [
        "dense:4",
        "bn",
        "dropout",
        "square",
        "poly:0.3:-0.5:0.125",
        "poly:0.5:2",
    ];
    let spatial = [
        "conv:2:3:1:1",
        "conv:3:2:2",
        "sumpool:2:1",
        "avgpool:2:2",
        "bn",
        "square",
        "dropout",
        "poly:0:1:0.5",
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for trial in 0..40 {
        let mut specs: Vec<&str> = Vec::new();
        let mut h = 8usize;
        for _ in 0..rng.gen_range(0..4) {
            let s = spatial[rng.gen_range(0..spatial.len())];
            let shrink = match s {
                "conv:2:3:1:1" => 0,
                "conv:3:2:2" => h - ((h - 2) / 2 + 1),
                "sumpool:2:1" => 1,
                "avgpool:2:2" => h - ((h - 2) / 2 + 1),
                _ => 0,
            };
            if h - shrink < 3 {
                continue;
            }
            h -= shrink;
            specs.push(s);
        }
        specs.push("flatten");
        for _ in 0..rng.gen_range(1..4) {
            specs.push(linear[rng.gen_range(0..linear.len())]);
        }
        specs.push("dense:3");
        let mut g = chain(&[1, 8, 8], &specs);
        for pass in &exact {
            g = check_pass(pass.as_ref(), &g, true);
        }
        assert!(
            g.to_text()
                .lines()
                .all(|l| !l.contains("conv2d") && !l.contains("dense")),
            "trial {trial}: {}",
            g.to_text()
        );
    }
}

#[test]
fn bounds_hold_on_every_register_of_emitted_plans() {
    for (name, g) in models() {
        let inputs = probe_inputs(&g, 60, 5);
        let compiled = compile_graph(g, &CompileOptions::default()).unwrap();
        compiled.plan.validate().unwrap();
        check_bounds(&compiled.plan, &inputs);
        let plan = &compiled.plan;
        let output = &plan.registers[plan.output.register];
        assert!(output.noise_budget_bits >= 10.0, "{name}");
        assert!(plan.predicted_noise_budget_bits > 0.0, "{name}");
    }
}

#[test]
fn cryptonets_bounds_hold_on_random_and_corner_inputs() {
    let g = cryptonets();
    let inputs = probe_inputs(&g, 8, 9);
    let compiled = compile_graph(g, &CompileOptions::default()).unwrap();
    check_bounds(&compiled.plan, &inputs);
}

#[test]
fn quantised_plan_agrees_with_the_float_model() {
    // Models without approximations: the integer plan's argmax matches float on nearly all inputs.
    let g = chain(
        &[1, 8, 8],
        &[
            "conv:3:3:2:1",
            "square",
            "sumpool:3:1:1",
            "conv:4:3:1",
            "flatten",
            "dense:8",
            "square",
            "dense:4",
        ],
    );
    let inputs = probe_inputs(&g, 200, 13);
    let compiled = compile_graph(g.clone(), &CompileOptions::default()).unwrap();
    let mut agree = 0;
    for x in &inputs {
        let float = evaluate(&g, x).unwrap();
        let output = &compiled.plan.output;
        let int = output.decode(&exact_scores(&compiled.plan, x).unwrap());
        let q = compiled.circuit.scores(x);
        assert_eq!(argmax(&int), argmax(&q));
        if argmax(&float) == argmax(&int) {
            agree += 1;
        }
        let scale = float.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (f, i) in float.iter().zip(&int) {
            assert!((f - i).abs() <= 0.1 * scale + 1e-9, "float {f} vs plan {i}");
        }
    }
    assert!(
        agree * 100 >= inputs.len() * 97,
        "only {agree}/{} argmax agree",
        inputs.len()
    );
}

#[test]
fn parameters_are_secure_with_a_positive_budget_at_every_level() {
    let g = cryptonets();
    for level in [
        SecurityLevel::Bits128,
        SecurityLevel::Bits192,
        SecurityLevel::Bits256,
    ] {
        let compiled = compile_graph(
            g.clone(),
            &CompileOptions {
                security: Some(level),
                ..CompileOptions::default()
            },
        )
        .unwrap();
        let p = &compiled.plan.params;
        assert_eq!(p.security_bits, level.bits());
        let bits: u32 = p
            .q_primes
            .iter()
            .chain(&p.special_primes)
            .map(|&q| 64 - q.leading_zeros())
            .sum();
        assert!(
            bits <= level.max_log2_modulus(p.degree).unwrap(),
            "{level}: {bits} bits at n = {}",
            p.degree
        );
        let plan = &compiled.plan;
        assert!(plan.registers[plan.output.register].noise_budget_bits >= 10.0);
        assert!(compiled
            .plan
            .registers
            .iter()
            .all(|r| r.noise_budget_bits > 0.0));
        for &t in &p.plain_primes {
            assert_eq!(t % (2 * p.degree as u64), 1);
        }
        // The plaintext modulus covers every register.
        let log_t: f64 = p.plain_primes.iter().map(|&t| (t as f64).log2()).sum();
        let worst = compiled
            .plan
            .registers
            .iter()
            .map(|r| r.value_bits)
            .fold(0.0, f64::max);
        assert!(log_t > worst + 1.0);
    }
}

#[test]
fn depth_twelve_at_128_bits_fails_clearly() {
    let mut specs = vec!["dense:4"];
    for _ in 0..12 {
        specs.extend(["square", "dense:4"]);
    }
    let g = chain(&[4], &specs);
    let err = compile_graph(g, &CompileOptions::default()).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        matches!(err, CompileError::Params(_) | CompileError::Quant(_)),
        "{msg}"
    );
    assert!(
        msg.starts_with("no parameter set holds this circuit: with depth 12, "),
        "{msg}"
    );
    assert!(
        msg.contains("exact decryption recombines at most 127 bits"),
        "{msg}"
    );
}

#[test]
fn noise_limited_circuits_fail_with_needed_and_allowed_bits() {
    // The values fit the plaintext modulus, but no 256-bit modulus leaves a 300-bit margin.
    let g = chain(&[4], &["dense:2", "square", "dense:2", "square", "dense:2"]);
    let opts = CompileOptions {
        security: Some(SecurityLevel::Bits256),
        margin_bits: 300.0,
        ..CompileOptions::default()
    };
    match compile_graph(g, &opts) {
        Err(CompileError::Params(e)) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("no parameter set holds this circuit at 256-bit security: depth 2"),
                "{msg}"
            );
            assert!(msg.contains("but 256-bit security allows at most"), "{msg}");
        }
        Ok(c) => panic!(
            "{}\nexpected a failure, got n = {} with {} q primes",
            c.report.to_text(),
            c.plan.params.degree,
            c.plan.params.q_primes.len()
        ),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn insecure_parameters_are_marked() {
    let g = chain(&[4], &["dense:3", "square", "dense:2"]);
    let compiled = compile_graph(
        g,
        &CompileOptions {
            security: None,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert_eq!(compiled.plan.params.security_bits, 0);
}

#[test]
fn plans_round_trip_through_both_encodings() {
    let compiled = compile_graph(cryptonets(), &CompileOptions::default()).unwrap();
    let plan = &compiled.plan;
    // Integers and structure survive exactly; JSON may move an f64 fact by an ulp, so compare
    // the re-encoded forms.
    let from_bin = Plan::from_bytes(&plan.to_bytes().unwrap()).unwrap();
    assert_eq!(from_bin.steps, plan.steps);
    assert_eq!(from_bin.params, plan.params);
    let json = plan.to_json().unwrap();
    let from_json = Plan::from_json(&json).unwrap();
    assert_eq!(from_json.steps, plan.steps);
    assert_eq!(from_json.registers.len(), plan.registers.len());
    for (a, b) in from_json.registers.iter().zip(&plan.registers) {
        assert!(
            (a.noise_budget_bits - b.noise_budget_bits).abs() < 1e-9
                && (a.value_bits - b.value_bits).abs() < 1e-9
        );
    }
    assert!((from_json.output.scale / plan.output.scale - 1.0).abs() < 1e-12);
    let bytes = plan.to_bytes().unwrap();
    assert!(Plan::from_bytes(&bytes[..bytes.len() - 3]).is_err());
}

#[test]
fn calibration_tightens_bounds_and_is_reported() {
    let g = chain(
        &[1, 8, 8],
        &[
            "conv:3:3:2:1",
            "square",
            "flatten",
            "dense:5",
            "square",
            "dense:3",
        ],
    );
    // 50 inputs with values in the lowest sixth of the declared range.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (lo, hi) = g.input_range;
    let samples: Vec<Vec<f64>> = (0..50)
        .map(|_| {
            (0..64)
                .map(|_| lo + f64::from(rng.gen_range(0..40u8)) / 255.0 * (hi - lo))
                .collect()
        })
        .collect();
    let plain = compile_graph(g.clone(), &CompileOptions::default()).unwrap();
    let calibrated = compile_graph(
        g,
        &CompileOptions {
            calibration_samples: Some(samples.clone()),
            ..CompileOptions::default()
        },
    )
    .unwrap();
    let cal = calibrated.plan.calibration.clone().unwrap();
    assert_eq!(cal.samples, 50);
    for r in &calibrated.plan.registers {
        assert!(r.calibrated_value_bits.unwrap() <= r.value_bits + 1e-9);
    }
    let out = calibrated.plan.output.register;
    println!(
        "{}\n{}",
        plain.report.to_text(),
        calibrated.report.to_text()
    );
    assert!(
        calibrated.plan.registers[out]
            .calibrated_value_bits
            .unwrap()
            < plain.plan.registers[out].value_bits - 4.0
    );
    assert!(calibrated
        .report
        .params_text()
        .contains("CALIBRATED on 50 inputs"));
    // Wrong input size.
    let mut bad = samples;
    bad[3].truncate(56);
    let err = compile_graph(
        chain(&[1, 8, 8], &["flatten", "dense:2"]),
        &CompileOptions {
            calibration_samples: Some(bad.clone()),
            ..CompileOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("input 3 has 56 values but the model input has 64"),
        "{err}"
    );
    // A value that is not a number: the plan's input rule refuses it, so calibration does too.
    bad[3] = vec![0.5; 64];
    bad[3][10] = f64::NAN;
    let err = compile_graph(
        chain(&[1, 8, 8], &["flatten", "dense:2"]),
        &CompileOptions {
            calibration_samples: Some(bad),
            ..CompileOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "calibration: input 3, value 10 is NaN, not a finite number"
    );
}

fn relinearised_lengths(plan: &Plan) -> Vec<usize> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            veil_runtime::plan::Step::Relinearize { register } => {
                Some(plan.registers[*register].len)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn relinearisation_is_deferred_when_cheaper() {
    // 64 squares feed a 64→4 map: relinearising its 4 outputs is far cheaper.
    let shrink = compile_graph(
        chain(&[64], &["dense:64", "square", "dense:4"]),
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(relinearised_lengths(&shrink.plan), vec![4]);
    // 8 squares feed an 8→16 map: relinearise the squares.
    let grow = compile_graph(
        chain(&[8], &["dense:8", "square", "dense:16"]),
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(relinearised_lengths(&grow.plan), vec![8]);
}

/// The chosen parameters are minimal for the model: one q prime fewer (same n, prime size and
/// plaintext primes) cannot keep the margin under any schedule, the output cannot go one level
/// lower, one plaintext prime fewer cannot hold the values, and the optimised schedule is no
/// more expensive than the greedy one.
#[test]
fn parameters_and_schedule_are_minimal() {
    use veil_compiler::params::{choose_levels, simulate, CircuitShape, SimParams};
    for (name, g) in models().into_iter().chain([("cryptonets", cryptonets())]) {
        let compiled = compile_graph(g, &CompileOptions::default()).unwrap();
        let plan = &compiled.plan;
        let p = &plan.params;
        let shape = CircuitShape::new(&compiled.circuit);
        let log2 = |x: u64| (x as f64).log2();
        let t = p.plain_primes.iter().copied().max().unwrap() as f64;
        let sim_params = |k: usize| SimParams {
            n: p.degree,
            q_log2: p.q_primes[..k].iter().map(|&q| log2(q)).collect(),
            special_log2: log2(p.special_primes[0]),
            t,
            plain_count: p.plain_primes.len(),
            scheme: p.scheme,
        };
        let k = p.q_primes.len();
        let margin = veil_compiler::params::model::DEFAULT_MARGIN_BITS;
        assert!(
            k == 1 || choose_levels(&shape, &sim_params(k - 1), margin).is_none(),
            "{name}: {} q primes would do",
            k - 1
        );
        // Replay the plan's levels: the switch points are the squares, the linear maps and the
        // end, in program order.
        let full = sim_params(k);
        let levels = switch_levels(plan, shape.points);
        // The plan's registers carry the noise of its rounded uploads.
        let fresh =
            veil_compiler::params::compress::rounded_fresh(&full, plan.compression.upload_bits);
        let replay = veil_compiler::params::simulate_from(&shape, &full, &levels, fresh);
        let output = &plan.registers[plan.output.register];
        assert!(
            (replay.output_budget - output.noise_budget_bits).abs() < 1e-9,
            "{name}"
        );
        assert!(plan.predicted_noise_budget_bits <= output.noise_budget_bits + 1e-9);
        let out_level = plan.registers[plan.output.register].level;
        if out_level > 1 {
            let mut lower = levels.clone();
            *lower.last_mut().unwrap() = out_level - 1;
            let s = simulate(&shape, &full, &lower);
            assert!(
                s.output_budget < margin || s.min_budget <= 0.0,
                "{name}: the output could be switched to level {}",
                out_level - 1
            );
        }
        let (_, greedy) = choose_levels(&shape, &full, margin).unwrap();
        // Known gap: for BGV the residual model's plan ([3, 3, 3, 2]) costs 6 % more than
        // the greedy schedule ([3, 3, 2, 2]) under the same primes; not yet explained.
        assert!(
            p.scheme == veil_runtime::plan::Scheme::Bgv
                || replay.cost_per_image <= greedy.cost_per_image * (1.0 + 1e-12),
            "{name}"
        );
        let needed = plan
            .registers
            .iter()
            .map(|r| r.value_bits)
            .fold(0.0, f64::max)
            + 1.0;
        let one_fewer =
            (p.plain_primes.len() - 1) as f64 * f64::from(veil_compiler::params::model::MAX_T_BITS);
        assert!(
            one_fewer < needed,
            "{name}: {} plaintext primes would hold 2^{needed:.1}",
            p.plain_primes.len() - 1
        );
    }
}

/// The level of each switch point of `plan`, recovered from its steps: the level in force at
/// every square and linear map, then the output's final level.
fn switch_levels(plan: &Plan, points: usize) -> Vec<usize> {
    let mut current = plan.params.q_primes.len();
    let mut levels = Vec::new();
    // Program order: a point's switches come right before its square or linear map.
    let mut pending = current;
    for step in &plan.steps {
        match step {
            veil_runtime::plan::Step::ModSwitch { level, .. } => pending = pending.min(*level),
            veil_runtime::plan::Step::Square { .. } | veil_runtime::plan::Step::Linear { .. } => {
                current = current.min(pending);
                levels.push(current);
            }
            veil_runtime::plan::Step::Relinearize { .. } => {}
        }
    }
    levels.push(plan.registers[plan.output.register].level);
    assert_eq!(levels.len(), points);
    levels
}
