//! Helpers for tests (this crate's and its users'): small seeded models, the random-weight
//! CryptoNets model, and a checker that a pass keeps the function.
//!
//! Compiled only for this crate's unit tests and under the `testing` feature, which test
//! code enables through its dev-dependencies; a product build carries none of it (nor the
//! random-number crates it needs).

use crate::ir::{build::build, eval::evaluate, Graph};
use crate::model::{self, Activation, Input, Layer, Model, Padding, Tensor, TensorSource};
use crate::passes::{Pass, PassContext};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;

fn uniform(rng: &mut ChaCha8Rng, len: usize, bound: f64) -> Vec<f64> {
    (0..len).map(|_| rng.gen_range(-bound..bound)).collect()
}

fn num(parts: &[&str], i: usize, default: usize) -> usize {
    parts.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A chain model over `shape` (raw range [-1, 1]) from short layer specs, named `l0`, `l1`, …,
/// with seeded random inline weights. Specs: `dense:N`, `conv:O:K:S[:P]`, `sumpool:K:S[:P]`,
/// `avgpool:K:S`, `maxpool:K:S`, `bn`, `square`, `relu`, `tanh`, `sigmoid`, `flatten`,
/// `dropout`, `softmax`, `poly:c0:c1:c2`.
pub fn chain_model(shape: &[usize], specs: &[&str]) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cur = shape.to_vec();
    let mut layers = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let parts: Vec<&str> = spec.split(':').collect();
        let mut params = BTreeMap::new();
        let window = |parts: &[&str]| {
            let k = num(parts, 1, 2);
            let s = num(parts, 2, 1);
            let p = num(parts, 3, 0);
            (
                (k, k),
                (s, s),
                Padding {
                    top: p,
                    left: p,
                    bottom: p,
                    right: p,
                },
            )
        };
        let out_hw = |cur: &[usize], k: usize, s: usize, p: usize| {
            let h = (cur[1] + 2 * p).saturating_sub(k) / s + 1;
            let w = (cur[2] + 2 * p).saturating_sub(k) / s + 1;
            (h, w)
        };
        let op = match parts[0] {
            "dense" => {
                let out = num(&parts, 1, 2);
                let fan_in: usize = cur.iter().product();
                params.insert(
                    "weight".into(),
                    uniform(&mut rng, out * fan_in, 1.0 / (fan_in as f64).sqrt()),
                );
                params.insert("bias".into(), uniform(&mut rng, out, 0.5));
                cur = vec![out];
                model::Op::Dense {
                    out_features: out,
                    bias: true,
                }
            }
            "conv" => {
                let o = num(&parts, 1, 2);
                let ((k, _), (s, _), padding) = window(&parts[1..]);
                let fan_in = cur[0] * k * k;
                params.insert(
                    "weight".into(),
                    uniform(&mut rng, o * fan_in, 1.0 / (fan_in as f64).sqrt()),
                );
                params.insert("bias".into(), uniform(&mut rng, o, 0.5));
                let (h, w) = out_hw(&cur, k, s, padding.top);
                cur = vec![o, h, w];
                model::Op::Conv2d {
                    out_channels: o,
                    kernel: (k, k),
                    stride: (s, s),
                    padding,
                    bias: true,
                }
            }
            "sumpool" | "avgpool" | "maxpool" => {
                let (kernel, stride, padding) = window(&parts);
                let (h, w) = out_hw(&cur, kernel.0, stride.0, padding.top);
                cur = vec![cur[0], h, w];
                match parts[0] {
                    "sumpool" => model::Op::SumPool2d {
                        kernel,
                        stride,
                        padding,
                    },
                    "avgpool" => model::Op::AvgPool2d {
                        kernel,
                        stride,
                        padding,
                    },
                    _ => model::Op::MaxPool2d {
                        kernel,
                        stride,
                        padding,
                    },
                }
            }
            "bn" => {
                let c = cur[0];
                params.insert("weight".into(), uniform(&mut rng, c, 2.0));
                params.insert("bias".into(), uniform(&mut rng, c, 1.0));
                params.insert("running_mean".into(), uniform(&mut rng, c, 1.0));
                params.insert(
                    "running_var".into(),
                    (0..c).map(|_| rng.gen_range(0.5..2.0)).collect(),
                );
                model::Op::BatchNorm { eps: 1e-5 }
            }
            "square" => model::Op::Activation(Activation::Square),
            "relu" => model::Op::Activation(Activation::Relu),
            "tanh" => model::Op::Activation(Activation::Tanh),
            "sigmoid" => model::Op::Activation(Activation::Sigmoid),
            "poly" => model::Op::Activation(Activation::Polynomial(
                parts[1..]
                    .iter()
                    .map(|s| s.parse().unwrap_or(0.0))
                    .collect(),
            )),
            "flatten" => {
                cur = vec![cur.iter().product()];
                model::Op::Flatten
            }
            "dropout" => model::Op::Dropout { p: 0.5 },
            "softmax" => model::Op::Softmax,
            other => model::Op::Reshape {
                shape: vec![other.len()],
            },
        };
        layers.push(Layer {
            name: format!("l{i}"),
            op,
            inputs: Vec::new(),
            params,
        });
    }
    Model {
        name: "chain".into(),
        input: Input {
            shape: shape.to_vec(),
            min: -1.0,
            max: 1.0,
        },
        weights: None,
        classes: Vec::new(),
        layers,
    }
}

/// [`chain_model`] built into the IR.
#[expect(
    clippy::expect_used,
    reason = "test helper: a broken fixture must stop the test"
)]
pub fn chain(shape: &[usize], specs: &[&str]) -> Graph {
    let m = chain_model(shape, specs);
    build(&model::from_parts(
        Path::new("chain.ron"),
        m,
        TensorSource::default(),
    ))
    .expect("test chain builds")
}

/// input[4] → dense → square → dense → add(square, dense) → dense[2].
#[expect(
    clippy::expect_used,
    reason = "test helper: a broken fixture must stop the test"
)]
pub fn residual() -> Graph {
    let mut m = chain_model(
        &[4],
        &["dense:4", "square", "dense:4", "dense:4", "dense:2"],
    );
    m.layers[3] = Layer {
        name: "l3".into(),
        op: model::Op::Add,
        inputs: vec!["l1".into(), "l2".into()],
        params: BTreeMap::new(),
    };
    build(&model::from_parts(
        Path::new("residual.ron"),
        m,
        TensorSource::default(),
    ))
    .expect("residual builds")
}

/// Runs `pass` on a copy of `g`, verifies the result and, when `exact`, checks that the float
/// function is unchanged on seeded random inputs from the declared range and its corners.
#[expect(
    clippy::expect_used,
    reason = "test helper: a failing pass must stop the test"
)]
pub fn check_pass(pass: &dyn Pass, g: &Graph, exact: bool) -> Graph {
    let mut after = g.clone();
    let mut ctx = PassContext::default();
    pass.run(&mut after, &mut ctx).expect("pass runs");
    after.prune();
    after.verify().expect("IR verifies after the pass");
    if exact {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let len = g.node(g.input).len();
        let (lo, hi) = g.input_range;
        for trial in 0..24 {
            let x: Vec<f64> = match trial {
                0 => vec![lo; len],
                1 => vec![hi; len],
                _ => (0..len).map(|_| rng.gen_range(lo..=hi)).collect(),
            };
            let a = evaluate(g, &x).expect("evaluates before");
            let b = evaluate(&after, &x).expect("evaluates after");
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(&b) {
                assert!(
                    (p - q).abs() <= 1e-9 * (1.0 + p.abs()),
                    "pass {} changed {p} into {q}",
                    pass.name()
                );
            }
        }
    }
    after
}

/// The CryptoNets network (docs/model-format.md) with seeded random weights in a safetensors
/// source: conv1 5×5×5 stride 2 on 1×28×28 padded to 29×29, square, sum pool 3×3, conv2 50
/// maps 5×5 stride 2, sum pool, dense 100, square, dense 10.
pub fn cryptonets_random(seed: u64) -> (Model, TensorSource) {
    let text = CRYPTONETS_RON;
    #[expect(clippy::expect_used, reason = "the embedded model text is a constant")]
    let model: Model = ron::de::from_str(text).expect("the embedded CryptoNets model parses");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tensors = BTreeMap::new();
    let mut put = |name: &str, shape: Vec<usize>, fan_in: usize, rng: &mut ChaCha8Rng| {
        let len = shape.iter().product();
        tensors.insert(
            name.to_owned(),
            Tensor {
                shape,
                data: uniform(rng, len, 1.0 / (fan_in as f64).sqrt()),
            },
        );
    };
    put("conv1.weight", vec![5, 1, 5, 5], 25 * 255, &mut rng);
    put("conv1.bias", vec![5], 25, &mut rng);
    put("conv2.weight", vec![50, 5, 5, 5], 125 * 9, &mut rng);
    put("conv2.bias", vec![50], 125, &mut rng);
    put("fc1.weight", vec![100, 1250], 1250 * 9, &mut rng);
    put("fc1.bias", vec![100], 1250, &mut rng);
    put("fc2.weight", vec![10, 100], 100, &mut rng);
    put("fc2.bias", vec![10], 100, &mut rng);
    (
        model,
        TensorSource {
            tensors,
            ..TensorSource::default()
        },
    )
}

/// The CryptoNets model file shipped as `models/cryptonets-mnist-random.ron`.
pub const CRYPTONETS_RON: &str = r#"// CryptoNets (Gilad-Bachrach et al., ICML 2016) with seeded random weights, for tests.
Model(
    name: "cryptonets-mnist-random",
    input: Input(shape: [1, 28, 28], min: 0.0, max: 255.0),
    weights: Some("cryptonets-mnist-random.safetensors"),
    classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    layers: [
        Layer(name: "conv1", op: Conv2d(out_channels: 5, kernel: (5, 5), stride: (2, 2),
              padding: (top: 1, left: 1, bottom: 0, right: 0), bias: true)),
        Layer(name: "act1", op: Activation(Square)),
        Layer(name: "pool1", op: SumPool2d(kernel: (3, 3), stride: (1, 1),
              padding: (top: 1, left: 1, bottom: 1, right: 1))),
        Layer(name: "conv2", op: Conv2d(out_channels: 50, kernel: (5, 5), stride: (2, 2),
              padding: (top: 0, left: 0, bottom: 0, right: 0), bias: true)),
        Layer(name: "pool2", op: SumPool2d(kernel: (3, 3), stride: (1, 1),
              padding: (top: 1, left: 1, bottom: 1, right: 1))),
        Layer(name: "flatten", op: Flatten),
        Layer(name: "fc1", op: Dense(out_features: 100, bias: true)),
        Layer(name: "act2", op: Activation(Square)),
        Layer(name: "fc2", op: Dense(out_features: 10, bias: true)),
    ],
)
"#;
