//! ONNX models end to end: committed ONNX files (tests/data/onnx) compiled, encrypted,
//! evaluated and decrypted through the session API, bit-exact against the plan; and the
//! `veil import` / `--input-range` command line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step must stop the test"
)]

mod common;

use common::random_images;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use veil_compiler::{CompileOptions, ImportOptions};
use veil_runtime::exec::NoProgress;
use veil_runtime::session::{Context, EncryptionKey};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join("onnx")
}

/// Compiles the ONNX file `name` and runs a few seeded images encrypted; every decrypted score
/// must equal the plan's exact integer reference.
fn run_encrypted(name: &str, range: (f64, f64)) {
    let opts = CompileOptions {
        import: ImportOptions {
            input_range: Some(range),
            class_names: None,
        },
        ..CompileOptions::default()
    };
    let compiled = veil_compiler::compile_path(&data().join(name), &opts).unwrap();
    assert_eq!(compiled.plan.params.security_bits, 128);
    let context = Context::new(compiled.plan).unwrap();
    let input = &context.plan().input;
    let images = random_images(
        &input.shape.clone(),
        6,
        input.raw_min as f32,
        input.raw_max as f32,
        3,
    );
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let keys = context.keygen(&mut rng).unwrap();
    let (batch, clamped) = context
        .encrypt(
            EncryptionKey::Public(&keys.public),
            &images,
            &mut rng,
            &|_| {},
        )
        .unwrap();
    assert_eq!(clamped, 0);
    let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    let decrypted = context.decrypt(&keys.client, &result).unwrap();
    let reference = context.reference(&images).unwrap();
    assert_eq!(decrypted.scores.len(), 6);
    assert_eq!(decrypted.scores, reference, "{name}");
    assert!(
        reference.iter().any(|s| s != &reference[0]),
        "{name}: outputs vary"
    );
}

#[test]
fn square_mlp_runs_encrypted_bit_exact() {
    run_encrypted("square_mlp.onnx", (0.0, 15.0));
}

#[test]
fn batchnorm_avgpool_cnn_runs_encrypted_bit_exact() {
    run_encrypted("cnn_batchnorm_avgpool.onnx", (0.0, 255.0));
}

#[test]
fn torch_square_cnn_runs_encrypted_bit_exact() {
    // Exported by torch.onnx.export (scripts/export_torch.py), opset 13.
    run_encrypted("torch_square_cnn.onnx", (0.0, 15.0));
}

#[test]
fn torch_residual_square_runs_encrypted_bit_exact() {
    // Input scaling, residual Add, x * x, x ** 2 and a scalar Mul, as torch exports them.
    run_encrypted("torch_residual_square.onnx", (0.0, 15.0));
}

fn veil(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn import_writes_a_model_file_that_compiles_to_the_same_plan() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("net.onnx");
    std::fs::copy(data().join("residual_scale.onnx"), &onnx).unwrap();

    // Without an input range: refused, saying how to give one.
    let o = veil(&["import", "net.onnx", "-o", "out.ron"], dir.path());
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("--input-range MIN,MAX"), "{err}");
    assert!(!dir.path().join("out.ron").exists(), "nothing written");

    let args = [
        "import",
        "net.onnx",
        "-o",
        "out.ron",
        "--input-range",
        "0,255",
        "--class-names",
        "cat,dog",
    ];
    let o = veil(&args, dir.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("out.ron and"), "{out}");
    let ron = std::fs::read_to_string(dir.path().join("out.ron")).unwrap();
    assert!(ron.contains("weights: Some(\"out.safetensors\")"), "{ron}");
    assert!(
        ron.contains("classes: [\"cat\", \"dog\"]") || ron.contains("\"dog\""),
        "{ron}"
    );
    assert!(dir.path().join("out.safetensors").exists());

    // Again without --force: refused; with it: replaced.
    let o = veil(&args, dir.path());
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--force"));
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(veil(&forced, dir.path()).status.success());

    // Compiling the ONNX file (with the flags) and the model file give the same plan.
    let o = veil(
        &[
            "compile",
            "net.onnx",
            "-o",
            "a.plan",
            "--input-range",
            "0,255",
            "--class-names",
            "cat,dog",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let o = veil(&["compile", "out.ron", "-o", "b.plan"], dir.path());
    assert!(o.status.success(), "{}", text(&o).1);
    let a = veil_runtime::plan::Plan::read_file(&dir.path().join("a.plan")).unwrap();
    let b = veil_runtime::plan::Plan::read_file(&dir.path().join("b.plan")).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(
        a.output.class_names,
        vec!["cat".to_owned(), "dog".to_owned()]
    );
}

#[test]
fn compile_refuses_onnx_without_an_input_range_and_bad_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let model = data().join("square_mlp.onnx");
    let model = model.to_str().unwrap();
    let o = veil(&["compile", model, "-o", "x.plan"], dir.path());
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--input-range"), "{}", text(&o).1);
    let o = veil(
        &["compile", model, "-o", "x.plan", "--input-range", "5,1"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("MIN ≤ MAX"), "{}", text(&o).1);
    let o = veil(&["report", model, "--input-range", "0,15"], dir.path());
    assert!(o.status.success(), "{}", text(&o).1);
}

#[test]
fn report_lists_weight_bits_per_layer_and_auto_chooses_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = data().join("torch_square_cnn.onnx");
    let model = model.to_str().unwrap();
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["report", model, "--input-range", "0,15", "--json"];
        args.extend_from_slice(extra);
        let o = veil(&args, dir.path());
        assert!(o.status.success(), "{}", text(&o).1);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let fixed = json(&[]);
    let rows = fixed["quantisation"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r["weight_bits"] == 8), "{rows:?}");
    assert!(fixed.get("weight_error_target").is_none());
    let auto = json(&["--weight-bits", "auto", "--weight-error-target", "0.5"]);
    assert_eq!(auto["weight_error_target"], 0.005);
    for r in auto["quantisation"].as_array().unwrap() {
        assert!(r["worst_row_error"].as_f64().unwrap() <= 0.005, "{r}");
    }
    // The text report says how the bits were chosen.
    let o = veil(
        &[
            "report",
            model,
            "--input-range",
            "0,15",
            "--weight-bits",
            "auto",
        ],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("bits chosen per layer: the fewest with a worst row ≤ 1 %"),
        "{out}"
    );
    // A target without auto, and bad values, are refused.
    let o = veil(
        &[
            "report",
            model,
            "--input-range",
            "0,15",
            "--weight-error-target",
            "1",
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--weight-bits auto"), "{}", text(&o).1);
    let o = veil(
        &[
            "report",
            model,
            "--input-range",
            "0,15",
            "--weight-bits",
            "fast",
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("give 2..=32 or `auto`"),
        "{}",
        text(&o).1
    );
}
