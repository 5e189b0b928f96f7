//! ONNX import: the committed files of tests/data/onnx (written by scripts/export_onnx.py)
//! import, evaluate like ONNX's reference evaluator, compile, and compile to the same plan as
//! the model file `veil import` writes; the shipped CryptoNets export compiles to the same plan
//! as models/cryptonets-mnist.ron; broken and unsupported files are refused with messages that
//! say what to do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop on failure"
)]

use std::path::{Path, PathBuf};
use veil_compiler::onnx::{self, ImportOptions, OnnxError};
use veil_compiler::{compile_path, float_eval, load_model_with, CompileError, CompileOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn data() -> PathBuf {
    root().join("tests").join("data").join("onnx")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veil-onnx-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A committed model with its reference.
struct Case {
    path: PathBuf,
    range: (f64, f64),
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f64>>,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for json in entries {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let nums = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let range = nums(&v["input_range"]);
        cases.push(Case {
            path: data().join(v["model"].as_str().unwrap()),
            range: (range[0], range[1]),
            inputs: v["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| nums(x).into_iter().map(|f| f as f32).collect())
                .collect(),
            outputs: v["outputs"].as_array().unwrap().iter().map(nums).collect(),
        });
    }
    assert!(cases.len() >= 6, "the committed ONNX models are missing");
    cases
}

fn options(range: (f64, f64)) -> CompileOptions {
    CompileOptions {
        import: ImportOptions {
            input_range: Some(range),
            class_names: None,
        },
        ..CompileOptions::default()
    }
}

#[test]
fn float_evaluation_matches_the_onnx_reference() {
    for case in cases() {
        let (graph, _) = load_model_with(
            &case.path,
            &ImportOptions {
                input_range: Some(case.range),
                class_names: None,
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.path.display()));
        for (x, want) in case.inputs.iter().zip(&case.outputs) {
            let got = float_eval(&graph, x).unwrap();
            assert_eq!(got.len(), want.len(), "{}", case.path.display());
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-4 * scale,
                    "{}: got {got:?}, ONNX reference {want:?}",
                    case.path.display()
                );
            }
        }
    }
}

#[test]
fn every_model_compiles_and_imports_to_the_same_plan() {
    let dir = temp_dir("same-plan");
    for case in cases() {
        let opts = options(case.range);
        let direct = compile_path(&case.path, &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.path.display()));
        let imported = onnx::read(&case.path, &opts.import).unwrap();
        let stem = case
            .path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ron = dir.join(format!("{stem}-imported.ron"));
        let written = imported.write_files(&case.path, &ron, false).unwrap();
        assert!(written.iter().all(|p| p.exists()));
        // The model file carries the input range: no import options needed.
        let again = compile_path(&ron, &CompileOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", ron.display()));
        assert_eq!(
            direct.plan.fingerprint(),
            again.plan.fingerprint(),
            "{stem}: the ONNX file and the imported model file compile to different plans"
        );
        // Writing again without permission to overwrite is refused.
        let err = imported.write_files(&case.path, &ron, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        imported.write_files(&case.path, &ron, true).unwrap();
    }
}

#[test]
fn notes_reach_the_warnings() {
    let c = compile_path(&data().join("conv_relu_maxpool.onnx"), &options((0.0, 1.0))).unwrap();
    let text = c.warnings.join("\n");
    assert!(text.contains("LogSoftmax"), "{text}");
    assert!(text.contains("argmax"), "{text}");
    let c = compile_path(&data().join("leaky_relu.onnx"), &options((-2.0, 2.0))).unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("LeakyRelu")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn shipped_cryptonets_exports_compile_to_the_plans_of_the_model_files() {
    // Exported by torch.onnx.export (training/train_cryptonets.py --export-onnx-only).
    let models = root().join("models");
    for name in ["cryptonets-mnist", "cryptonets-fashion"] {
        let ron_plan = compile_path(
            &models.join(format!("{name}.ron")),
            &CompileOptions::default(),
        )
        .unwrap();
        let mut opts = options((0.0, 255.0));
        opts.import.class_names = Some(ron_plan.plan.output.class_names.clone());
        let onnx_plan = compile_path(&models.join(format!("{name}.onnx")), &opts).unwrap();
        assert!(onnx_plan.plan == ron_plan.plan, "{name}: the plans differ");
        assert_eq!(
            onnx_plan.plan.fingerprint(),
            ron_plan.plan.fingerprint(),
            "{name}"
        );
    }
}

#[test]
fn recognised_by_content_not_extension() {
    let dir = temp_dir("content");
    let renamed = dir.join("net.model");
    std::fs::copy(data().join("square_mlp.onnx"), &renamed).unwrap();
    assert!(onnx::is_onnx(&renamed));
    compile_path(&renamed, &options((0.0, 15.0))).unwrap();
    assert!(!onnx::is_onnx(
        &root().join("models").join("cryptonets-mnist.ron")
    ));
}

fn import_error(path: &Path, range: Option<(f64, f64)>) -> String {
    let err = load_model_with(
        path,
        &ImportOptions {
            input_range: range,
            class_names: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, CompileError::Onnx(_)), "{err:?}");
    err.to_string()
}

#[test]
fn a_missing_input_range_says_how_to_give_it() {
    let msg = import_error(&data().join("square_mlp.onnx"), None);
    assert!(msg.contains("square_mlp.onnx"), "{msg}");
    assert!(msg.contains("--input-range MIN,MAX"), "{msg}");
    // load_model (no options) refuses ONNX files the same way.
    let err = veil_compiler::load_model(&data().join("square_mlp.onnx")).unwrap_err();
    assert!(err.to_string().contains("--input-range"), "{err}");
}

#[test]
fn an_unsupported_operator_is_named_with_its_opset_and_alternatives() {
    let msg = import_error(
        &data().join("invalid/unsupported_op.onnx"),
        Some((0.0, 1.0)),
    );
    assert!(msg.contains("node `/abs/Abs` (Abs, opset 17)"), "{msg}");
    assert!(msg.contains("additions and multiplications"), "{msg}");
    assert!(msg.contains("Supported: Conv"), "{msg}");
}

#[test]
fn a_dynamic_shape_is_refused() {
    let msg = import_error(&data().join("invalid/dynamic_shape.onnx"), Some((0.0, 1.0)));
    assert!(msg.contains("dynamic size `height` on axis 2"), "{msg}");
    assert!(msg.contains("static shapes"), "{msg}");
}

#[test]
fn a_missing_initialiser_is_named() {
    let msg = import_error(
        &data().join("invalid/missing_initializer.onnx"),
        Some((0.0, 1.0)),
    );
    assert!(msg.contains("node `/fc1/Gemm` (Gemm, opset 17)"), "{msg}");
    assert!(
        msg.contains("input `fc1.weight` is neither an initialiser"),
        "{msg}"
    );
}

#[test]
fn truncated_files_are_errors_with_an_offset() {
    let bytes = std::fs::read(data().join("square_mlp.onnx")).unwrap();
    let dir = temp_dir("truncated");
    let path = dir.join("cut.onnx");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let msg = import_error(&path, Some((0.0, 15.0)));
    assert!(msg.contains("truncated"), "{msg}");
    assert!(msg.contains("byte "), "{msg}");
    // Every prefix is refused and none panics.
    let opts = ImportOptions {
        input_range: Some((0.0, 15.0)),
        class_names: None,
    };
    for len in 0..bytes.len() {
        let r = onnx::import(&path, &bytes[..len], &opts);
        assert!(r.is_err(), "a {len}-byte prefix imported");
    }
}

#[test]
fn damaged_bytes_never_panic() {
    let bytes = std::fs::read(data().join("cnn_batchnorm_avgpool.onnx")).unwrap();
    let opts = ImportOptions {
        input_range: Some((0.0, 255.0)),
        class_names: None,
    };
    let path = Path::new("damaged.onnx");
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            if let Ok(imported) = onnx::import(path, &b, &opts) {
                // Whatever imports must still be checked by the model builder without panics.
                let loaded =
                    veil_compiler::model::from_parts(path, imported.model, imported.tensors);
                let _ = veil_compiler::ir::build::build(&loaded);
            }
        }
    }
    // An inflated length is refused, not allocated.
    let mut b = bytes.clone();
    b.extend([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        onnx::import(path, &b, &opts),
        Err(OnnxError::Wire { .. })
    ));
}

#[test]
fn unreadable_and_oversized_files_are_refused_before_reading() {
    let dir = temp_dir("size");
    let opts = ImportOptions {
        input_range: Some((0.0, 1.0)),
        class_names: None,
    };
    let err = onnx::read(&dir.join("absent.onnx"), &opts).unwrap_err();
    assert!(matches!(err, OnnxError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("absent.onnx: cannot read the file"),
        "{err}"
    );
    // A sparse file one byte over the limit: refused from its size alone.
    let big = dir.join("big.onnx");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(onnx::MAX_ONNX_BYTES + 1)
        .unwrap();
    let err = onnx::read(&big, &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the 536870912 bytes an ONNX model may have"),
        "{err}"
    );
    let _ = std::fs::remove_file(&big);
}

/// Layer names and ops of an imported file.
fn layers(name: &str, range: (f64, f64)) -> Vec<(String, veil_compiler::model::Op)> {
    let imported = onnx::read(
        &data().join(name),
        &ImportOptions {
            input_range: Some(range),
            class_names: None,
        },
    )
    .unwrap();
    imported
        .model
        .layers
        .into_iter()
        .map(|l| (l.name, l.op))
        .collect()
}

#[test]
fn torch_gelu_imports_as_one_activation_in_both_forms() {
    use veil_compiler::model::{Activation, Op};
    // Opset 17: the five-node Erf pattern; opset 20: the Gelu operator.
    for (file, range, layer) in [
        ("torch_gelu_mlp.onnx", (-2.0, 2.0), "body.2"),
        ("torch_gelu_op.onnx", (-1.0, 1.0), "body.1"),
        ("gelu_variants.onnx", (-2.0, 2.0), "gelu"),
    ] {
        let l = layers(file, range);
        let gelus: Vec<_> = l
            .iter()
            .filter(|(_, op)| *op == Op::Activation(Activation::Gelu))
            .collect();
        assert_eq!(gelus.len(), 1, "{file}: {l:?}");
        assert_eq!(gelus[0].0, layer, "{file}: the module path names the layer");
        // Nothing of the pattern is left as a layer of its own.
        assert_eq!(
            l.iter().filter(|(n, _)| n.starts_with(layer)).count(),
            1,
            "{file}: {l:?}"
        );
        let c = compile_path(&data().join(file), &options(range)).unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains(&format!("`{layer}`: gelu replaced by x²"))),
            "{file}: {:?}",
            c.warnings
        );
    }
}

#[test]
fn erf_outside_gelu_is_refused() {
    let msg = import_error(&data().join("invalid/erf_alone.onnx"), Some((0.0, 1.0)));
    assert!(msg.contains("node `/erf/Erf` (Erf, opset 17)"), "{msg}");
    assert!(msg.contains("Erf is supported only inside GELU"), "{msg}");
}

#[test]
fn grouped_conv_and_ceil_mode_pools_import_with_notes() {
    let imported = onnx::read(
        &data().join("torch_grouped_ceil.onnx"),
        &ImportOptions {
            input_range: Some((0.0, 1.0)),
            class_names: None,
        },
    )
    .unwrap();
    let notes = imported.notes.join("\n");
    assert!(
        notes.contains("group=2 is imported as a full convolution"),
        "{notes}"
    );
    assert!(notes.contains("group=4"), "{notes}");
    assert!(
        notes.contains("ceil_mode=1: its last window is padded with 1 row(s) and 1 column(s)"),
        "{notes}"
    );
    // The depthwise weights: each output channel reads its own input channel only.
    let w = &imported.tensors.tensors["body.2.weight"];
    assert_eq!(w.shape, vec![4, 4, 3, 3]);
    for oc in 0..4 {
        for ic in 0..4 {
            let block = &w.data[(oc * 4 + ic) * 9..(oc * 4 + ic + 1) * 9];
            assert_eq!(block.iter().any(|v| *v != 0.0), oc == ic, "{oc},{ic}");
        }
    }
}

#[test]
fn an_average_pool_whose_ceil_window_overhangs_is_refused() {
    let msg = import_error(
        &data().join("invalid/avgpool_ceil_overhang.onnx"),
        Some((0.0, 1.0)),
    );
    assert!(msg.contains("(AveragePool, opset 17)"), "{msg}");
    assert!(
        msg.contains("runs 1 row(s) and 1 column(s) past the input"),
        "{msg}"
    );
    assert!(msg.contains("use ceil_mode=False"), "{msg}");
}

#[test]
fn torch_exports_are_all_committed() {
    for name in [
        "conv_bn_relu_maxpool",
        "gelu_mlp",
        "gelu_op",
        "grouped_ceil",
        "residual_square",
        "square_cnn",
    ] {
        let json = data().join(format!("torch_{name}.json"));
        let text = std::fs::read_to_string(&json).unwrap();
        assert!(
            text.contains("\"reference\": \"torch "),
            "{}",
            json.display()
        );
    }
}

#[test]
fn a_gelu_can_be_fitted_on_calibration_inputs() {
    let case = cases()
        .into_iter()
        .find(|c| c.path.ends_with("torch_gelu_op.onnx"))
        .unwrap();
    let samples: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            (0..6)
                .map(|j| f64::from(((i * 7 + j * 5) % 21) as u8) / 10.0 - 1.0)
                .collect()
        })
        .collect();
    let opts = CompileOptions {
        activation: veil_compiler::ActivationChoice::Fit,
        calibration_samples: Some(samples),
        ..options(case.range)
    };
    let c = compile_path(&case.path, &opts).unwrap();
    let text = c.warnings.join("\n");
    assert!(text.contains("`body.1`: gelu replaced by"), "{text}");
    assert!(!text.contains("gelu replaced by x²"), "{text}");
}
