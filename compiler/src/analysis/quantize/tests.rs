#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop on failure"
)]

use super::*;
use crate::analysis::depth;
use crate::ir::build::build;
use crate::model::{self, TensorSource};
use crate::passes::PassManager;
use crate::testing::{chain, chain_model};
use std::path::Path;
use veil_runtime::plan::IntMatrix;

fn lower(mut g: Graph) -> Graph {
    PassManager::standard().run(&mut g).unwrap();
    g
}

fn circuit(shape: &[usize], specs: &[&str], opts: &QuantOptions) -> (Graph, QCircuit) {
    let g = lower(chain(shape, specs));
    let c = quantize(&g, opts).unwrap();
    (g, c)
}

/// Largest |integer weight| of row `r` over the columns `cols`.
fn row_max(m: &IntMatrix, r: usize, cols: std::ops::Range<usize>) -> i64 {
    m.row(r)
        .filter(|(c, _)| cols.contains(c))
        .map(|(_, w)| w.abs())
        .max()
        .unwrap_or(0)
}

#[test]
fn the_input_scale_rule() {
    // Integer bounds that already span input_bits − 1 bits stay as they are.
    assert_eq!(input_scale(0.0, 255.0, 8), 1.0);
    assert_eq!(input_scale(-128.0, 127.0, 8), 1.0);
    // Otherwise the largest |bound| maps to 2^input_bits − 1.
    assert_eq!(input_scale(0.0, 255.0, 9), 511.0 / 255.0);
    assert_eq!(input_scale(0.0, 10.0, 8), 25.5);
    assert_eq!(input_scale(-1.0, 1.0, 8), 255.0);
    assert_eq!(input_scale(-0.5, 0.25, 4), 30.0);
    assert_eq!(input_scale(0.5, 200.0, 8), 255.0 / 200.0);
    assert_eq!(input_scale(0.0, 0.0, 8), 1.0);
    // In the circuit: the chain models take raw values in [-1, 1].
    let (_, c) = circuit(&[4], &["dense:2"], &QuantOptions::default());
    assert_eq!(c.input.scale, 255.0);
    assert_eq!(c.input_range(), (-255, 255));
    assert_eq!(c.nodes[0].scales, vec![255.0; 4]);
    assert_eq!(
        c.encode_input(&[1.0, -1.0, 0.5, 0.0]),
        vec![255, -255, 128, 0]
    );
    // Values outside the declared range are clamped to it.
    assert_eq!(c.encode_input(&[3.0, -3.0, 0.0, 0.0])[..2], [255, -255]);
}

#[test]
fn the_circuit_encodes_inputs_by_the_plans_rule() {
    // A range whose ends are not multiples of the resolution, and values inside, on and
    // beyond both ends: the circuit's integers are the plan encoding's, clamping included.
    let mut m = chain_model(&[4], &["dense:2"]);
    (m.input.min, m.input.max) = (-0.3, 0.7);
    let g = build(&model::from_parts(
        Path::new("m.ron"),
        m,
        TensorSource::default(),
    ))
    .unwrap();
    let c = quantize(&lower(g), &QuantOptions::default()).unwrap();
    assert_eq!((c.input.raw_min, c.input.raw_max), (-0.3, 0.7));
    assert_eq!(c.input.shape, vec![4]);
    for raw in [
        [-0.3, 0.7, 0.0, 0.25],
        [-5.0, 9.0, -0.31, 0.71],
        [0.123, -0.299, 0.699, 1e9],
    ] {
        let plan_rule = c.input.encode(&raw).unwrap();
        assert_eq!(c.encode_input(&raw), plan_rule.values, "{raw:?}");
    }
    let (lo, hi) = c.input_range();
    assert_eq!((lo, hi), (c.encode_input(&[-1e9; 4])[0], c.input.max_abs));
}

#[test]
fn squares_square_the_scales_and_add_one_depth() {
    let (g, c) = circuit(
        &[6],
        &["dense:5", "square", "dense:4", "square", "dense:3"],
        &QuantOptions::default(),
    );
    let depth_of = depth::depths(&g);
    let mut squares = 0;
    for node in &c.nodes {
        assert_eq!(node.depth, depth_of[&node.id], "{}", node.name);
        if let QOp::Square { input } = node.op {
            squares += 1;
            let src = &c.nodes[input];
            let want: Vec<f64> = src.scales.iter().map(|s| s * s).collect();
            assert_eq!(node.scales, want, "{}", node.name);
            assert_eq!(node.depth, src.depth + 1);
        }
    }
    assert_eq!(squares, 2);
    assert_eq!(c.depth(), 2);
}

#[test]
fn every_row_uses_the_weight_budget() {
    for bits in [4u32, 8, 12] {
        let opts = QuantOptions {
            weight_bits: bits,
            ..QuantOptions::default()
        };
        let qmax = (1i64 << (bits - 1)) - 1;
        let (_, c) = circuit(&[6], &["dense:5", "square", "dense:3"], &opts);
        for (i, node) in c.nodes.iter().enumerate() {
            let QOp::Linear { matrix, .. } = &node.op else {
                continue;
            };
            let maxima: Vec<i64> = (0..matrix.rows)
                .map(|r| row_max(matrix, r, 0..matrix.cols))
                .collect();
            if i == c.output {
                // One scale for all class scores: the row that needs the smallest sets it.
                assert!(node.scales.iter().all(|&s| s == c.output_scale));
                assert!(maxima.iter().all(|&m| m <= qmax), "{maxima:?}");
                assert!(maxima.contains(&qmax), "{maxima:?}");
            } else {
                assert!(maxima.iter().all(|&m| m == qmax), "{bits}: {maxima:?}");
            }
        }
    }
}

#[test]
fn integer_weights_round_the_scaled_real_weights() {
    let g = lower(chain(&[6], &["dense:4", "square", "dense:3"]));
    let c = quantize(&g, &QuantOptions::default()).unwrap();
    for node in &c.nodes {
        let QOp::Linear {
            inputs,
            matrix,
            bias,
        } = &node.op
        else {
            continue;
        };
        let Op::Affine {
            matrix: real,
            bias: real_bias,
        } = &g.node(node.id).op
        else {
            panic!("{} is not affine", node.name);
        };
        let col_scales: Vec<f64> = inputs
            .iter()
            .flat_map(|&i| c.nodes[i].scales.clone())
            .collect();
        for r in 0..real.rows {
            let s = node.scales[r];
            let ints: BTreeMap<usize, i64> = matrix.row(r).collect();
            for (col, w) in real.row(r) {
                let exact = w / col_scales[col] * s;
                let q = ints.get(&col).copied().unwrap_or(0) as f64;
                assert!((q - exact).abs() <= 0.5, "{q} vs {exact}");
            }
            assert!((bias[r] as f64 - real_bias[r] * s).abs() <= 0.5);
        }
    }
    // And so the dequantised scores follow the float model.
    let x = [0.3, -0.7, 1.0, 0.0, -0.2, 0.9];
    let want = crate::ir::eval::evaluate(&g, &x).unwrap();
    let got = c.scores(&x);
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 0.05 * scale, "{got:?} vs {want:?}");
    }
}

#[test]
fn a_row_over_several_registers_keeps_the_budget_in_each() {
    // A polynomial activation reads x² and x: both blocks of every row keep ≥ B bits (the
    // map after it is not the output, whose rows share one scale).
    let (_, c) = circuit(
        &[4],
        &[
            "dense:3",
            "poly:0.1:0.5:0.25",
            "dense:3",
            "square",
            "dense:2",
        ],
        &QuantOptions::default(),
    );
    let node = c
        .nodes
        .iter()
        .enumerate()
        .find(|(i, n)| {
            *i != c.output && matches!(&n.op, QOp::Linear { inputs, .. } if inputs.len() == 2)
        })
        .map(|(_, n)| n)
        .expect("the polynomial's map reads x² and x");
    let QOp::Linear { inputs, matrix, .. } = &node.op else {
        unreachable!()
    };
    let split = c.nodes[inputs[0]].len;
    for r in 0..matrix.rows {
        let a = row_max(matrix, r, 0..split);
        let b = row_max(matrix, r, split..matrix.cols);
        assert_eq!(a.min(b), 127, "row {r}: {a} and {b}");
    }
}

#[test]
fn unread_input_values_are_dropped() {
    let mut m = chain_model(&[4], &["dense:2"]);
    // Column 1 has no weight in either row.
    m.layers[0].params.insert(
        "weight".into(),
        vec![0.5, 0.0, -0.25, 0.125, 0.25, 0.0, 0.5, -0.5],
    );
    let g = build(&model::from_parts(
        Path::new("m.ron"),
        m,
        TensorSource::default(),
    ))
    .unwrap();
    let c = quantize(&lower(g), &QuantOptions::default()).unwrap();
    assert_eq!(c.input.features, vec![0, 2, 3]);
    assert_eq!(c.input.raw_len(), 4);
    assert_eq!(c.nodes[0].len, 3);
    let QOp::Linear { matrix, .. } = &c.nodes[c.output].op else {
        panic!("the output is linear");
    };
    assert_eq!(matrix.cols, 3);
    assert_eq!(c.encode_input(&[1.0, 0.9, -1.0, 0.0]), vec![255, -255, 0]);
}

#[test]
fn bad_options_and_unlowered_graphs_are_refused() {
    let g = lower(chain(&[4], &["dense:2"]));
    for (weight_bits, input_bits, what) in [
        (1, 8, "weight bits"),
        (33, 8, "weight bits"),
        (8, 1, "input bits"),
        (8, 25, "input bits"),
    ] {
        let err = quantize(
            &g,
            &QuantOptions {
                weight_bits,
                input_bits,
                error_target: None,
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, QuantError::Option { what: w, .. } if w == what),
            "{err}"
        );
    }
    let raw = chain(&[1, 4, 4], &["conv:2:3:1", "flatten", "dense:2"]);
    let err = quantize(&raw, &QuantOptions::default()).unwrap_err();
    assert_eq!(
        err,
        QuantError::NotLowered {
            node: "l0".into(),
            op: "conv2d",
        }
    );
}
