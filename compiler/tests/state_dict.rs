//! A PyTorch `state_dict` saved with safetensors plugs straight in: torch's tensor names, its
//! batch-norm statistics and its I64 `num_batches_tracked`, which no layer reads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use veil_compiler::ir::eval::evaluate;
use veil_compiler::model::{self, TensorSource};
use veil_compiler::{compile_graph, compile_path, CompileOptions};

/// conv (1→2 maps, 3×3) → batch norm → square → flatten → dense 3, as `nn.Module` attributes
/// `conv`, `bn`, `act`, `flatten`, `fc`.
const MODEL: &str = r#"Model(
    name: "conv-bn-dense",
    input: Input(shape: [1, 6, 6], min: 0.0, max: 1.0),
    weights: Some("state_dict.safetensors"),
    layers: [
        Layer(name: "conv", op: Conv2d(out_channels: 2, kernel: (3, 3))),
        Layer(name: "bn", op: BatchNorm(eps: 1e-5)),
        Layer(name: "act", op: Activation(Square)),
        Layer(name: "flatten", op: Flatten),
        Layer(name: "fc", op: Dense(out_features: 3)),
    ],
)"#;

const EPS: f64 = 1e-5;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veil-state-dict-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Seeded values in (-bound, bound), rounded to f32 as a torch state_dict holds them.
fn values(len: usize, seed: u64, bound: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let unit = (s >> 11) as f64 / (1u64 << 53) as f64;
            f64::from(((2.0 * unit - 1.0) * bound) as f32)
        })
        .collect()
}

/// The F32 tensors of the state_dict: name → (shape, values).
fn weights() -> BTreeMap<String, (Vec<usize>, Vec<f64>)> {
    let var: Vec<f64> = values(2, 6, 0.5)
        .iter()
        .map(|v| f64::from((v + 1.0) as f32))
        .collect();
    [
        ("conv.weight", vec![2, 1, 3, 3], values(18, 1, 0.5)),
        ("conv.bias", vec![2], values(2, 2, 0.5)),
        ("bn.weight", vec![2], values(2, 3, 2.0)),
        ("bn.bias", vec![2], values(2, 4, 1.0)),
        ("bn.running_mean", vec![2], values(2, 5, 1.0)),
        ("bn.running_var", vec![2], var),
        ("fc.weight", vec![3, 32], values(96, 7, 0.3)),
        ("fc.bias", vec![3], values(3, 8, 0.5)),
    ]
    .into_iter()
    .map(|(name, shape, data)| (name.to_owned(), (shape, data)))
    .collect()
}

/// Writes the state_dict as `safetensors.torch.save_file` would: F32 weights and statistics
/// and the 0-dimensional I64 `bn.num_batches_tracked`.
fn write_state_dict(path: &Path) {
    let f32_bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights()
        .into_iter()
        .map(|(name, (shape, data))| {
            let bytes = data
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let tracked = 1200i64.to_le_bytes();
    let mut views: Vec<(String, TensorView<'_>)> = f32_bytes
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    views.push((
        "bn.num_batches_tracked".into(),
        TensorView::new(Dtype::I64, vec![], &tracked).unwrap(),
    ));
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

/// The float function written out by hand with torch's semantics
/// (`γ·(x − mean)/√(var + ε) + β`), independent of the IR.
fn reference(x: &[f64]) -> Vec<f64> {
    let w = weights();
    let t = |name: &str| w[name].1.clone();
    let (cw, cb) = (t("conv.weight"), t("conv.bias"));
    let (gamma, beta, mean, var) = (
        t("bn.weight"),
        t("bn.bias"),
        t("bn.running_mean"),
        t("bn.running_var"),
    );
    let mut hidden = Vec::with_capacity(32);
    for o in 0..2 {
        for y in 0..4 {
            for xx in 0..4 {
                let mut acc = cb[o];
                for i in 0..3 {
                    for j in 0..3 {
                        acc += cw[o * 9 + i * 3 + j] * x[(y + i) * 6 + xx + j];
                    }
                }
                let bn = gamma[o] * (acc - mean[o]) / (var[o] + EPS).sqrt() + beta[o];
                hidden.push(bn * bn);
            }
        }
    }
    let (fw, fb) = (t("fc.weight"), t("fc.bias"));
    (0..3)
        .map(|r| fb[r] + (0..32).map(|c| fw[r * 32 + c] * hidden[c]).sum::<f64>())
        .collect()
}

fn inputs() -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; 36], vec![1.0; 36]];
    for seed in 0..6 {
        out.push(
            values(36, 100 + seed, 1.0)
                .iter()
                .map(|v| v.abs())
                .collect(),
        );
    }
    out
}

#[test]
fn torch_state_dict_with_batch_norm_compiles_and_folds() {
    let dir = scratch("fold");
    write_state_dict(&dir.join("state_dict.safetensors"));
    let path = dir.join("m.ron");
    std::fs::write(&path, MODEL).unwrap();
    let opts = CompileOptions::default();
    let compiled = compile_path(&path, &opts).unwrap();

    // The batch norm was folded into the convolution.
    assert!(compiled.source.to_text().contains("batch_norm"));
    assert!(
        !compiled.lowered.to_text().contains("batch_norm"),
        "{}",
        compiled.lowered.to_text()
    );
    assert!(compiled.lowered.to_text().contains("conv+bn"));
    assert!(
        compiled
            .report
            .passes
            .iter()
            .any(|p| p == "fold_batch_norm"),
        "{:?}",
        compiled.report.passes
    );
    assert_eq!(compiled.plan.depth, 1);

    // The loaded model and the lowered graph compute torch's function.
    for x in inputs() {
        let want = reference(&x);
        for g in [&compiled.source, &compiled.lowered] {
            let got = evaluate(g, &x).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "{got:?} vs {want:?}"
                );
            }
        }
    }

    // The same model with the weights inline compiles to the same plan.
    let mut m = model::parse(MODEL, false, &path).unwrap();
    m.weights = None;
    for (name, (_, data)) in weights() {
        let (layer, tensor) = name.split_once('.').unwrap();
        let l = m.layers.iter_mut().find(|l| l.name == layer).unwrap();
        l.params.insert(tensor.to_owned(), data);
    }
    let inline =
        veil_compiler::ir::build::build(&model::from_parts(&path, m, TensorSource::default()))
            .unwrap();
    let inline = compile_graph(inline, &opts).unwrap();
    assert_eq!(inline.plan, compiled.plan);
}

#[test]
fn skipped_tensors_are_recorded_with_their_type() {
    let dir = scratch("skipped");
    let file = dir.join("state_dict.safetensors");
    write_state_dict(&file);
    let source = TensorSource::from_safetensors(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(source.tensors.len(), weights().len());
    assert_eq!(
        source
            .skipped
            .get("bn.num_batches_tracked")
            .map(String::as_str),
        Some("I64")
    );
}
