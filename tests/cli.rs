//! The built `veil` binary: the client/server split through files, `infer`, and clear errors
//! on bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step must stop the test"
)]

mod common;

use common::{models, random_images, write_csv, write_model, BUDGET_TOLERANCE_BITS};
use std::path::Path;
use std::process::{Command, Output};
use veil_runtime::plan::argmax;
use veil_runtime::plan::Plan;
use veil_runtime::session::Context;

fn veil(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the veil binary runs")
}

fn succeeds(args: &[&str], dir: &Path) -> String {
    succeeds_with_stderr(args, dir).0
}

/// Runs a command that must succeed, and returns its standard output and standard error.
fn succeeds_with_stderr(args: &[&str], dir: &Path) -> (String, String) {
    let out = veil(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "veil {args:?} failed:\n{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Runs a command that must fail, and returns its standard error.
fn fails(args: &[&str], dir: &Path) -> String {
    let out = veil(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "veil {args:?} should have failed");
    eprintln!("veil {args:?}:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "veil {args:?} panicked:\n{stderr}"
    );
    stderr
}

/// `veil encrypt net.plan --key KEY --images IMAGES -o OUT`.
fn encrypt_args<'a>(key: &'a str, images: &'a str, out: &'a str) -> [&'a str; 8] {
    [
        "encrypt", "net.plan", "--key", key, "--images", images, "-o", out,
    ]
}

/// `veil eval net.plan --key KEY BATCH -o OUT`.
fn eval_args<'a>(key: &'a str, batch: &'a str, out: &'a str) -> [&'a str; 7] {
    ["eval", "net.plan", "--key", key, batch, "-o", out]
}

fn assert_mentions(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            stderr.contains(part),
            "expected `{part}` in the error:\n{stderr}"
        );
    }
}

/// IDX label file bytes.
fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

struct Setup {
    dir: tempfile::TempDir,
    images: Vec<f32>,
}

/// A compiled conv + square + dense model, 40 CSV images and their labels in a temp dir.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = models()
        .into_iter()
        .find(|(n, _)| *n == "conv-square-dense")
        .unwrap()
        .1;
    write_model(dir.path(), "net", &model);
    let images = random_images(&[1, 8, 8], 40, -1.0, 1.0, 3);
    write_csv(&dir.path().join("images.csv"), &images, 64);
    let labels: Vec<u8> = (0..40u8).map(|i| i % 4).collect();
    std::fs::write(dir.path().join("labels.idx"), idx_labels(&labels)).unwrap();
    succeeds(&["compile", "net.ron", "-o", "net.plan"], dir.path());
    Setup { dir, images }
}

#[test]
fn client_server_split_through_files_matches_infer_and_the_reference() {
    let s = setup();
    let d = s.dir.path();
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("keys/secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "secret.key is owner-only");
    }
    succeeds(
        &encrypt_args("keys/secret.key", "images.csv", "batch.veil"),
        d,
    );
    // The server's directory holds the plan, the batch and eval.key only.
    let server = d.join("server");
    std::fs::create_dir(&server).unwrap();
    for (from, to) in [
        ("net.plan", "net.plan"),
        ("batch.veil", "batch.veil"),
        ("keys/eval.key", "eval.key"),
    ] {
        std::fs::copy(d.join(from), server.join(to)).unwrap();
    }
    succeeds(&eval_args("eval.key", "batch.veil", "result.veil"), &server);
    std::fs::copy(server.join("result.veil"), d.join("result.veil")).unwrap();
    succeeds(
        &[
            "decrypt",
            "net.plan",
            "--key",
            "keys/secret.key",
            "result.veil",
            "-o",
            "predictions.csv",
        ],
        d,
    );

    // The predictions are the plaintext plan's, class and decoded score alike.
    let plan = Plan::read_file(&d.join("net.plan")).unwrap();
    let context = Context::new(plan).unwrap();
    let reference = context.reference(&s.images).unwrap();
    let csv = std::fs::read_to_string(d.join("predictions.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("image,class,score_"));
    let mut predicted = Vec::new();
    for (i, (line, scores)) in lines.zip(&reference).enumerate() {
        let class = argmax(scores);
        predicted.push(class);
        let mut want = format!("{i},{class}");
        for v in context.plan().output.decode(scores) {
            want.push_str(&format!(",{v:.6e}"));
        }
        assert_eq!(line, want, "image {i}");
    }
    assert_eq!(predicted.len(), 40);

    // `infer` (fresh keys, one process) agrees: no mismatch, and the same accuracy as the
    // split run's predictions against the labels.
    let json = succeeds(
        &[
            "infer",
            "net.plan",
            "--images",
            "images.csv",
            "--labels",
            "labels.idx",
            "--json",
        ],
        d,
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["mismatches"], 0);
    let correct = predicted
        .iter()
        .enumerate()
        .filter(|(i, &p)| p == i % 4)
        .count();
    let accuracy = 100.0 * correct as f64 / 40.0;
    let encrypted = report["accuracy_encrypted"].as_f64().unwrap();
    assert!(
        (encrypted - accuracy).abs() < 1e-9,
        "{encrypted} vs {accuracy}"
    );
    assert_eq!(report["accuracy_plain"].as_f64().unwrap(), encrypted);
    for key in ["compile", "keygen", "encrypt", "eval", "decrypt"] {
        assert!(report["seconds"][key].as_f64().is_some(), "seconds.{key}");
    }
    assert!(report["upload_bytes_per_image"].as_f64().unwrap() > 0.0);
    assert!(report["download_bytes_per_image"].as_f64().unwrap() > 0.0);
    assert!(report["noise_budget_measured_bits"].as_f64().unwrap() > 0.0);
    assert!(report["images_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let s = setup();
    let d = s.dir.path();
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    succeeds(
        &encrypt_args("keys/public.key", "images.csv", "batch.veil"),
        d,
    );

    // The server refuses a secret key.
    let err = fails(&eval_args("keys/secret.key", "batch.veil", "r.veil"), d);
    assert_mentions(&err, &["keys/secret.key", "secret key"]);
    assert!(!d.join("r.veil").exists(), "nothing written on failure");

    // A truncated batch.
    let bytes = std::fs::read(d.join("batch.veil")).unwrap();
    std::fs::write(d.join("cut.veil"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&eval_args("keys/eval.key", "cut.veil", "r.veil"), d);
    assert_mentions(&err, &["cut.veil", "truncated"]);
    assert!(!d.join("r.veil").exists());

    // Keys and batches from other parameters: a second model compiles to another plan.
    let other = models()
        .into_iter()
        .find(|(n, _)| *n == "dense-only")
        .unwrap()
        .1;
    write_model(d, "other", &other);
    succeeds(&["compile", "other.ron", "-o", "other.plan"], d);
    succeeds(&["keygen", "other.plan", "-o", "other-keys"], d);
    let err = fails(&eval_args("other-keys/eval.key", "batch.veil", "r.veil"), d);
    assert_mentions(&err, &["other-keys/eval.key", "parameters"]);
    let err = fails(
        &[
            "eval",
            "other.plan",
            "--key",
            "other-keys/eval.key",
            "batch.veil",
            "-o",
            "r.veil",
        ],
        d,
    );
    assert_mentions(&err, &["batch.veil", "plan"]);

    // Wrong image size: 8×8 images expected, rows of 10 values given.
    std::fs::write(d.join("wide.csv"), "1,2,3,4,5,6,7,8,9,10\n").unwrap();
    let err = fails(&encrypt_args("keys/public.key", "wide.csv", "w.veil"), d);
    assert_mentions(&err, &["wide.csv", "10", "64"]);

    // Label count mismatch.
    std::fs::write(d.join("few.idx"), idx_labels(&[1, 2, 3])).unwrap();
    let err = fails(
        &[
            "infer",
            "net.plan",
            "--images",
            "images.csv",
            "--labels",
            "few.idx",
        ],
        d,
    );
    assert_mentions(&err, &["few.idx", "3", "40"]);

    // A malformed model file names the file and the place.
    std::fs::write(d.join("broken.ron"), "Model(name: \"x\", input: ").unwrap();
    let err = fails(&["compile", "broken.ron"], d);
    assert_mentions(&err, &["broken.ron"]);

    // A garbled plan.
    let mut plan = std::fs::read(d.join("net.plan")).unwrap();
    let middle = plan.len() / 2;
    plan.truncate(middle);
    std::fs::write(d.join("cut.plan"), &plan).unwrap();
    let err = fails(&["keygen", "cut.plan", "-o", "k2"], d);
    assert_mentions(&err, &["cut.plan", "truncated"]);
    assert!(!d.join("k2").join("secret.key").exists());
    let err = fails(&["report", "cut.plan"], d);
    assert_mentions(&err, &["cut.plan", "truncated"]);
    let err = fails(&["report", "missing.plan"], d);
    assert_mentions(&err, &["missing.plan", "cannot read"]);
}

/// Writes the first half of `from` to `to`, both in `dir`.
fn truncate_copy(dir: &Path, from: &str, to: &str) {
    let bytes = std::fs::read(dir.join(from)).unwrap();
    std::fs::write(dir.join(to), &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn damaged_and_misplaced_key_and_result_files_are_clear_errors() {
    let s = setup();
    let d = s.dir.path();
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    succeeds(
        &[
            "encrypt",
            "net.plan",
            "--key",
            "keys/secret.key",
            "--images",
            "images.csv",
            "--limit",
            "5",
            "-o",
            "batch.veil",
        ],
        d,
    );
    succeeds(&eval_args("keys/eval.key", "batch.veil", "result.veil"), d);
    let decrypt = |key: &str, result: &str| {
        let err = fails(
            &[
                "decrypt",
                "net.plan",
                "--key",
                key,
                result,
                "-o",
                "predictions.csv",
            ],
            d,
        );
        assert!(!d.join("predictions.csv").exists(), "nothing written");
        err
    };

    // Key files cut in half: the file, the key and the truncation are named.
    truncate_copy(d, "keys/secret.key", "cut-secret.key");
    truncate_copy(d, "keys/public.key", "cut-public.key");
    truncate_copy(d, "keys/eval.key", "cut-eval.key");
    let err = decrypt("cut-secret.key", "result.veil");
    assert_mentions(&err, &["cut-secret.key", "secret key", "truncated"]);
    for key in ["cut-secret.key", "cut-public.key"] {
        let err = fails(&encrypt_args(key, "images.csv", "b.veil"), d);
        assert_mentions(&err, &[key, "truncated"]);
        assert!(!d.join("b.veil").exists());
    }
    let err = fails(&eval_args("cut-eval.key", "batch.veil", "r.veil"), d);
    assert_mentions(&err, &["cut-eval.key", "relinearisation key", "truncated"]);
    assert!(!d.join("r.veil").exists());

    // A result cut in half ends inside its chunk's record.
    truncate_copy(d, "result.veil", "cut-result.veil");
    let err = decrypt("keys/secret.key", "cut-result.veil");
    assert_mentions(&err, &["cut-result.veil", "truncated", "chunk 0"]);

    // A batch where a result belongs, and the reverse.
    let err = decrypt("keys/secret.key", "batch.veil");
    assert_mentions(
        &err,
        &[
            "batch.veil",
            "not an encrypted result",
            "it is an encrypted batch",
        ],
    );
    let err = fails(&eval_args("keys/eval.key", "result.veil", "r.veil"), d);
    assert_mentions(
        &err,
        &[
            "result.veil",
            "not an encrypted batch",
            "it is an encrypted result",
        ],
    );
    assert!(!d.join("r.veil").exists());
    // A key where a result belongs.
    let err = decrypt("keys/secret.key", "keys/eval.key");
    assert_mentions(
        &err,
        &[
            "keys/eval.key",
            "not an encrypted result",
            "it is an evaluation key",
        ],
    );

    // The public or evaluation key given to decrypt.
    let err = decrypt("keys/public.key", "result.veil");
    assert_mentions(
        &err,
        &["keys/public.key", "expected a secret key", "a public key"],
    );
    let err = decrypt("keys/eval.key", "result.veil");
    assert_mentions(
        &err,
        &["keys/eval.key", "expected a secret key", "an evaluation"],
    );

    // A secret key made for another plan, of another ring.
    let other = models()
        .into_iter()
        .find(|(n, _)| *n == "dense-only")
        .unwrap()
        .1;
    write_model(d, "other", &other);
    succeeds(&["compile", "other.ron", "-o", "other.plan"], d);
    succeeds(&["keygen", "other.plan", "-o", "other-keys"], d);
    let err = decrypt("other-keys/secret.key", "result.veil");
    assert_mentions(
        &err,
        &[
            "other-keys/secret.key",
            "ring",
            "other parameters",
            "veil keygen",
        ],
    );

    // Keys of the same ring from another keygen: the key-set ids differ, so eval refuses the
    // batch before evaluating and decrypt refuses the result, instead of printing noise.
    succeeds(&["keygen", "net.plan", "-o", "keys2"], d);
    let err = decrypt("keys2/secret.key", "result.veil");
    assert_mentions(
        &err,
        &[
            "result.veil",
            "the result was made under key set",
            "belongs to key set",
            "veil keygen",
        ],
    );
    let err = fails(&eval_args("keys2/eval.key", "batch.veil", "r.veil"), d);
    assert_mentions(
        &err,
        &[
            "batch.veil",
            "the batch was made under key set",
            "keys2/eval.key is not the eval.key of that key set",
        ],
    );
    assert!(!d.join("r.veil").exists());
    // A tampered batch: one flipped bit is a checksum error before any evaluation.
    let mut bytes = std::fs::read(d.join("batch.veil")).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x10;
    std::fs::write(d.join("flipped.veil"), &bytes).unwrap();
    let err = fails(&eval_args("keys/eval.key", "flipped.veil", "r.veil"), d);
    assert_mentions(
        &err,
        &[
            "flipped.veil",
            "checksum mismatch",
            "nothing in it was used",
        ],
    );
    assert!(!d.join("r.veil").exists());
    // Bytes after the last chunk: refused by eval as by decrypt, and nothing written.
    let mut bytes = std::fs::read(d.join("batch.veil")).unwrap();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(d.join("long.veil"), &bytes).unwrap();
    let err = fails(&eval_args("keys/eval.key", "long.veil", "r.veil"), d);
    assert_mentions(&err, &["long.veil"]);
    assert!(!d.join("r.veil").exists());
    // The right key still decrypts.
    succeeds(
        &[
            "decrypt",
            "net.plan",
            "--key",
            "keys/secret.key",
            "result.veil",
        ],
        d,
    );
}

/// Writes `count` random images for `model` (in its input range) as `name.csv` and `count`
/// labels (0 and 1 alternating) as `name.idx`.
fn write_inputs(dir: &Path, name: &str, model: &veil_compiler::model::Model, count: usize) {
    let images = random_images(
        &model.input.shape,
        count,
        model.input.min as f32,
        model.input.max as f32,
        11,
    );
    let per_image = model.input.shape.iter().product();
    write_csv(&dir.join(format!("{name}.csv")), &images, per_image);
    let labels: Vec<u8> = (0..count).map(|i| (i % 2) as u8).collect();
    std::fs::write(dir.join(format!("{name}.idx")), idx_labels(&labels)).unwrap();
}

#[test]
fn every_small_model_through_infer_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, model) in models() {
        write_model(d, name, &model);
        write_inputs(d, name, &model, 12);
        let (json, stderr) = succeeds_with_stderr(
            &[
                "infer",
                &format!("{name}.ron"),
                "--images",
                &format!("{name}.csv"),
                "--labels",
                &format!("{name}.idx"),
                "--limit",
                "10",
                "--json",
            ],
            d,
        );
        assert!(!stderr.contains("INSECURE"), "{name}: secure by default");
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        eprintln!("{name}: {report}");
        assert_eq!(report["images"], 10, "{name}: --limit");
        assert_eq!(
            report["mismatches"], 0,
            "{name}: scores equal the reference"
        );
        let measured = report["noise_budget_measured_bits"].as_f64().unwrap();
        let predicted = report["noise_budget_predicted_bits"].as_f64().unwrap();
        assert!(measured > 0.0, "{name}: budget left");
        assert!(
            measured <= predicted + BUDGET_TOLERANCE_BITS,
            "{name}: measured {measured} bits, predicted {predicted:.1}"
        );
        let encrypted = report["accuracy_encrypted"].as_f64().unwrap();
        let plain = report["accuracy_plain"].as_f64().unwrap();
        assert_eq!(encrypted, plain, "{name}: accuracy");
        assert!((0.0..=100.0).contains(&encrypted), "{name}: {encrypted}%");
        for key in ["compile", "keygen", "encrypt", "eval", "decrypt"] {
            assert!(
                report["seconds"][key].as_f64().is_some(),
                "{name}: seconds.{key}"
            );
        }
        assert!(report["upload_bytes_per_image"].as_f64().unwrap() > 0.0);
        assert!(report["download_bytes_per_image"].as_f64().unwrap() > 0.0);
        // The compiler's replacement warnings reach infer's JSON (issue 12), as compile's.
        let warnings = report["warnings"].as_array().unwrap();
        if name == "maxpool-relu" {
            let text = format!("{warnings:?}");
            assert!(text.contains("relu") && text.contains("max"), "{text}");
        } else {
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
        assert_eq!(report["clamped_inputs"], 0, "{name}");
    }
}

/// The predicted output budget from a compile summary ("noise budget  41.6 bits left …").
fn summary_budget(summary: &str) -> f64 {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("noise budget"))
        .expect("the summary has a noise budget line");
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn infer_and_bench_warn_about_insecure_plans_and_take_a_margin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models()
        .into_iter()
        .find(|(n, _)| *n == "dense-only")
        .unwrap()
        .1;
    write_model(d, "dense", &model);
    write_inputs(d, "dense", &model, 6);
    let infer = |target: &str, extra: &[&str]| {
        let mut args = vec!["infer", target, "--images", "dense.csv", "--json"];
        args.extend_from_slice(extra);
        let (json, stderr) = succeeds_with_stderr(&args, d);
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["mismatches"], 0);
        (report, stderr)
    };
    let warning = "uses INSECURE parameters";

    // Insecure parameters, compiled on the fly or read from a plan: both commands warn.
    let (_, stderr) = infer("dense.ron", &["--insecure"]);
    assert_mentions(&stderr, &["dense.ron", warning]);
    succeeds(
        &["compile", "dense.ron", "--insecure", "-o", "insecure.plan"],
        d,
    );
    let (_, stderr) = infer("insecure.plan", &[]);
    assert_mentions(&stderr, &["insecure.plan", warning]);
    let (json, stderr) = succeeds_with_stderr(&["bench", "insecure.plan", "--json"], d);
    assert_mentions(&stderr, &["insecure.plan", warning]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(report["images"].as_u64().unwrap() > 0);
    let (_, stderr) = succeeds_with_stderr(&["bench", "dense.ron", "--insecure", "--json"], d);
    assert_mentions(&stderr, &["dense.ron", warning]);
    // Secure ones do not.
    succeeds(&["compile", "dense.ron", "-o", "secure.plan"], d);
    let (_, stderr) = infer("secure.plan", &[]);
    assert!(!stderr.contains("INSECURE"), "{stderr}");

    // --margin reaches the compiler: a 40-bit margin keeps at least 40 bits predicted, where
    // the default (10 bits) keeps less.
    let (report, _) = infer("dense.ron", &[]);
    let default = report["noise_budget_predicted_bits"].as_f64().unwrap();
    assert!(
        default < 40.0,
        "default margin: {default:.1} bits predicted"
    );
    let (report, _) = infer("dense.ron", &["--margin", "40"]);
    assert!(report["noise_budget_measured_bits"].as_f64().unwrap() > 0.0);
    // The margin is the circuit's (the output register's budget); what is left beyond it
    // pays for rounding the results, so the downloaded prediction may be lower.
    succeeds(
        &["compile", "dense.ron", "--margin", "40", "-o", "wide.json"],
        d,
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("wide.json")).unwrap()).unwrap();
    let output = plan["output"]["register"].as_u64().unwrap() as usize;
    let wide = plan["registers"][output]["noise_budget_bits"]
        .as_f64()
        .unwrap();
    assert!(wide >= 40.0, "--margin 40: {wide:.1} bits predicted");
    // bench prints the compile summary on standard error.
    let (_, stderr) = succeeds_with_stderr(&["bench", "dense.ron", "--margin", "40"], d);
    let budget = summary_budget(&stderr);
    assert!(
        budget >= 40.0,
        "bench --margin 40: {budget:.1} bits\n{stderr}"
    );
    let (_, stderr) = succeeds_with_stderr(&["bench", "dense.ron"], d);
    assert!(summary_budget(&stderr) < 40.0, "{stderr}");
}

#[test]
fn keygen_keeps_existing_keys_unless_forced_and_writes_the_set_whole() {
    let s = setup();
    let d = s.dir.path();
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the key folder is owner-only");
    }
    let before = std::fs::read(d.join("keys/secret.key")).unwrap();
    let err = fails(&["keygen", "net.plan", "-o", "keys"], d);
    assert_mentions(&err, &["keys", "already holds", "--force"]);
    assert_eq!(std::fs::read(d.join("keys/secret.key")).unwrap(), before);

    succeeds(&["keygen", "net.plan", "-o", "keys", "--force"], d);
    assert_ne!(std::fs::read(d.join("keys/secret.key")).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(d.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "exactly the three keys: {names:?}");

    // A folder with other files is never filled or replaced.
    std::fs::create_dir(d.join("mixed")).unwrap();
    std::fs::write(d.join("mixed/notes.txt"), "mine").unwrap();
    let err = fails(&["keygen", "net.plan", "-o", "mixed", "--force"], d);
    assert_mentions(&err, &["mixed", "other files"]);
    assert!(d.join("mixed/notes.txt").exists());
    // No temporary folder is left behind.
    let leftovers = std::fs::read_dir(d)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn labels_beyond_the_classes_nan_margins_are_refused_and_predictions_are_private() {
    let s = setup();
    let d = s.dir.path();
    let labels: Vec<u8> = (0..40u8).map(|i| if i == 5 { 7 } else { i % 4 }).collect();
    std::fs::write(d.join("bad-labels.idx"), idx_labels(&labels)).unwrap();
    let err = fails(
        &[
            "report",
            "net.plan",
            "--images",
            "images.csv",
            "--labels",
            "bad-labels.idx",
        ],
        d,
    );
    assert_mentions(&err, &["bad-labels.idx", "label 7 is not a class", "4"]);
    let err = fails(&["compile", "net.ron", "--margin", "NaN"], d);
    assert_mentions(&err, &["NaN", "noise margin"]);

    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    succeeds(
        &encrypt_args("keys/secret.key", "images.csv", "batch.veil"),
        d,
    );
    succeeds(&eval_args("keys/eval.key", "batch.veil", "result.veil"), d);
    succeeds(
        &[
            "decrypt",
            "net.plan",
            "--key",
            "keys/secret.key",
            "result.veil",
            "-o",
            "predictions.csv",
        ],
        d,
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("predictions.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "predictions are the client's alone");
    }
    // Accuracy through `report` on a plan: the plan's exact integers.
    let out = succeeds(
        &[
            "report",
            "net.plan",
            "--images",
            "images.csv",
            "--labels",
            "labels.idx",
            "--json",
        ],
        d,
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["accuracy"]["images"], 40);
    assert!(report["accuracy"]["float"].is_null());
    assert!(report["accuracy"]["plan"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        report["input"]["resolution"].as_f64(),
        Some(1.0 / report["input"]["scale"].as_f64().unwrap())
    );
}

/// Gzip-compresses `bytes`.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Runs a command that must fail within `seconds`, and returns its standard error.
fn fails_fast(args: &[&str], dir: &Path, seconds: u64) -> String {
    let started = std::time::Instant::now();
    let err = fails(args, dir);
    let took = started.elapsed();
    assert!(
        took.as_secs() < seconds,
        "veil {args:?} took {took:?} to fail"
    );
    err
}

#[cfg(unix)]
#[test]
fn endless_and_bomb_inputs_fail_fast_with_the_limit_named() {
    let s = setup();
    let d = s.dir.path();
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);

    // /dev/zero as the weights file, as a key, as a plan, as a batch.
    let mut model = models()
        .into_iter()
        .find(|(n, _)| *n == "dense-only")
        .unwrap()
        .1;
    model.weights = Some("/dev/zero".into());
    write_model(d, "zero", &model);
    let err = fails_fast(&["compile", "zero.ron", "-o", "zero.plan"], d, 10);
    assert_mentions(&err, &["zero.ron", "weights", "not safetensors"]);
    let err = fails_fast(&encrypt_args("/dev/zero", "images.csv", "b.veil"), d, 10);
    assert_mentions(&err, &["/dev/zero", "expected secret.key or public.key"]);
    let err = fails_fast(&eval_args("/dev/zero", "batch.veil", "r.veil"), d, 10);
    assert_mentions(&err, &["/dev/zero", "expected an evaluation key"]);
    let err = fails_fast(&["keygen", "/dev/zero", "-o", "k0"], d, 10);
    assert_mentions(&err, &["/dev/zero", "not a Veil plan file"]);
    let err = fails_fast(&eval_args("keys/eval.key", "/dev/zero", "r.veil"), d, 10);
    assert_mentions(&err, &["/dev/zero", "not an encrypted batch"]);
    // As a model: at most the model-file limit is read, then it does not parse.
    let err = fails_fast(&["infer", "/dev/zero", "--images", "images.csv"], d, 30);
    assert_mentions(&err, &["/dev/zero"]);

    // A 1 MB .idx.gz whose header declares 2^30 images of the model's 8×8 size.
    let mut idx = vec![0, 0, 8, 3];
    for v in [1u32 << 30, 8, 8] {
        idx.extend_from_slice(&v.to_be_bytes());
    }
    idx.extend(std::iter::repeat_n(7u8, 1 << 20));
    std::fs::write(d.join("bomb.idx.gz"), gzip(&idx)).unwrap();
    let err = fails_fast(
        &encrypt_args("keys/public.key", "bomb.idx.gz", "b.veil"),
        d,
        10,
    );
    assert_mentions(
        &err,
        &["bomb.idx.gz", "declares 1073741824 images", "--limit"],
    );
    // Another image size is refused from the header.
    idx[12..16].copy_from_slice(&28u32.to_be_bytes());
    idx[8..12].copy_from_slice(&28u32.to_be_bytes());
    std::fs::write(d.join("mnist.idx.gz"), gzip(&idx)).unwrap();
    let err = fails_fast(
        &encrypt_args("keys/public.key", "mnist.idx.gz", "b.veil"),
        d,
        10,
    );
    assert_mentions(&err, &["mnist.idx.gz", "784 values", "expects 64"]);
    // A .csv.gz of one endless row.
    std::fs::write(d.join("row.csv.gz"), gzip(&b"1,".repeat(32 << 20))).unwrap();
    let err = fails_fast(
        &encrypt_args("keys/public.key", "row.csv.gz", "b.veil"),
        d,
        10,
    );
    assert_mentions(&err, &["row.csv.gz", "line 1 is longer than"]);
    assert!(!d.join("b.veil").exists());
}

#[test]
fn keys_of_an_older_format_are_refused_with_a_hint() {
    let s = setup();
    let d = s.dir.path();
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    let mut bytes = std::fs::read(d.join("keys/eval.key")).unwrap();
    bytes[4] = 1;
    std::fs::write(d.join("old-eval.key"), &bytes).unwrap();
    let err = fails(&eval_args("old-eval.key", "x.veil", "r.veil"), d);
    assert_mentions(
        &err,
        &[
            "old-eval.key",
            "format version 1",
            "older Veil",
            "veil keygen",
        ],
    );
}

#[test]
fn report_measures_accuracy_stage_by_stage_and_fits_activations_on_calibration_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (name, model) = models()
        .into_iter()
        .find(|(n, _)| *n == "maxpool-relu")
        .unwrap();
    write_model(d, name, &model);
    write_inputs(d, name, &model, 24);
    let file = format!("{name}.ron");
    let err = fails(&["report", &file, "--activation", "fit"], d);
    assert_mentions(&err, &["--activation fit", "--calibrate"]);
    let err = fails(&["report", &file, "--activation", "cubic"], d);
    assert_mentions(&err, &["cubic", "square", "fit"]);
    let csv = format!("{name}.csv");
    let idx = format!("{name}.idx");
    let images = ["--images", csv.as_str(), "--labels", idx.as_str()];
    let mut square = vec!["report", file.as_str(), "--json"];
    square.extend(images);
    let json: serde_json::Value = serde_json::from_str(&succeeds(&square, d)).unwrap();
    let stages: Vec<&str> = json["accuracy"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["float", "lower_pooling", "replace_activations", "plan"]
    );
    let mut fit = vec!["report", file.as_str(), "--activation", "fit"];
    fit.extend(["--calibrate", csv.as_str()]);
    fit.extend(images);
    let text = succeeds(&fit, d);
    assert_mentions(
        &text,
        &[
            "relu replaced by",
            "fitted over the values it sees on 24 calibration inputs",
            "float, after activations → fitted",
            "float, after max pooling → sum pooling",
        ],
    );
}

/// A plan on toy, insecure parameters (n = 1024, so a chunk is 1024 images): `inputs` raw
/// values in [0, 10] per image, two scores `Σ x_i + 1` and `Σ (i mod 3 − 1)·x_i`.
fn toy_plan(inputs: usize) -> Plan {
    use veil_runtime::plan::*;
    let n = 1024;
    let q = veil_runtime::math::ntt_primes(50, n, 3, &[]).unwrap();
    let register = |name: &str, len: usize, value_bits: f64| RegisterInfo {
        name: name.into(),
        len,
        value_bits,
        depth: 0,
        level: 2,
        ct_size: 2,
        noise_budget_bits: 20.0,
        calibrated_value_bits: None,
    };
    let second: Vec<i64> = (0..inputs as i64).map(|i| i % 3 - 1).collect();
    let mut values = vec![1; inputs];
    values.extend(&second);
    let cols: Vec<u32> = (0..inputs as u32).collect();
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        model: "toy".into(),
        params: PlanParams {
            degree: n,
            q_primes: q[..2].to_vec(),
            special_primes: vec![q[2]],
            plain_primes: vec![65537],
            security_bits: 0,
            scheme: Default::default(),
        },
        input: InputEncoding {
            register: 0,
            shape: vec![inputs],
            raw_min: 0.0,
            raw_max: 10.0,
            scale: 1.0,
            max_abs: 10,
            features: (0..inputs).collect(),
        },
        registers: vec![
            register("input", inputs, 3.4),
            register("fc", 2, (10.0 * inputs as f64 + 1.0).log2()),
        ],
        steps: vec![Step::Linear {
            name: "fc".into(),
            inputs: vec![0],
            output: 1,
            matrix: IntMatrix {
                rows: 2,
                cols: inputs,
                row_ptr: vec![0, inputs, 2 * inputs],
                col_idx: cols.iter().chain(&cols).copied().collect(),
                values,
            },
            bias: vec![1, 0],
        }],
        output: OutputDecoding {
            register: 1,
            scale: 1.0,
            class_names: vec![],
        },
        depth: 0,
        predicted_noise_budget_bits: 20.0,
        compression: Default::default(),
        calibration: None,
        packing: None,
    }
}

/// The peak memory `veil eval` prints, in MiB.
fn printed_peak_mib(stdout: &str) -> f64 {
    let rest = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("peak memory "))
        .expect("veil eval prints its peak memory");
    let (value, unit) = rest.split_once(' ').unwrap();
    let value: f64 = value.parse().unwrap();
    let scale = match unit {
        "KiB" => 1.0 / 1024.0,
        "MiB" => 1.0,
        "GiB" => 1024.0,
        _ => f64::NAN,
    };
    assert!(scale.is_finite(), "unit {unit}");
    value * scale
}

#[test]
fn a_sharded_job_in_several_processes_gives_the_single_process_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 128 inputs: a chunk of the batch holds 128 ciphertexts of 32 KiB (4 MiB) in memory.
    let inputs = 128;
    toy_plan(inputs).write_file(&d.join("net.plan")).unwrap();
    let count = 3 * 1024 + 10; // 4 chunks, the last one partly filled
    let pixels: Vec<f32> = (0..count * inputs)
        .map(|i| ((i * 7 + i / inputs) % 11) as f32)
        .collect();
    write_csv(&d.join("images.csv"), &pixels, inputs);
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    succeeds(
        &encrypt_args("keys/secret.key", "images.csv", "batch.veil"),
        d,
    );

    // One process.
    let whole = succeeds(&eval_args("keys/eval.key", "batch.veil", "whole.veil"), d);
    fn decrypt<'a>(results: &[&'a str], out: &'a str) -> Vec<&'a str> {
        let mut args = vec!["decrypt", "net.plan", "--key", "keys/secret.key"];
        args.extend(results);
        args.extend(["-o", out]);
        args
    }
    succeeds(&decrypt(&["whole.veil"], "whole.csv"), d);

    // Three processes at once, one per shard.
    let shards: [(&[&str], &str); 3] = [
        (&["--chunk", "0"], "part0.veil"),
        (&["--chunks", "1..3"], "part12.veil"),
        (&["--chunks", "3..=3"], "part3.veil"),
    ];
    let children: Vec<_> = shards
        .iter()
        .map(|(range, out)| {
            let mut args = eval_args("keys/eval.key", "batch.veil", out).to_vec();
            args.extend(*range);
            Command::new(env!("CARGO_BIN_EXE_veil"))
                .args(&args)
                .current_dir(d)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut part0 = String::new();
    for (child, (_, out)) in children.into_iter().zip(&shards) {
        let child = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout).into_owned();
        assert!(
            child.status.success(),
            "{out}: {}",
            String::from_utf8_lossy(&child.stderr)
        );
        assert!(stdout.contains("a partial result"), "{stdout}");
        if *out == "part0.veil" {
            part0 = stdout;
        }
    }
    // Parts in any order give exactly the single process's predictions.
    succeeds(
        &decrypt(&["part3.veil", "part0.veil", "part12.veil"], "sharded.csv"),
        d,
    );
    let single = std::fs::read_to_string(d.join("whole.csv")).unwrap();
    assert_eq!(single.lines().count(), count + 1);
    assert_eq!(
        single,
        std::fs::read_to_string(d.join("sharded.csv")).unwrap()
    );
    // And those are the plan's: image 0's first score is Σ x_i + 1.
    let plan = Plan::read_file(&d.join("net.plan")).unwrap();
    let context = Context::new(plan).unwrap();
    let reference = context.reference(&pixels).unwrap();
    let first: f64 = single
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(first, reference[0][0] as f64);

    // Memory holds one chunk: evaluating 4 chunks peaks within one chunk (4 MiB) of
    // evaluating one.
    let (peak4, peak1) = (printed_peak_mib(&whole), printed_peak_mib(&part0));
    eprintln!("veil eval peak memory: 4 chunks {peak4:.1} MiB, 1 chunk {peak1:.1} MiB");
    assert!(
        peak4 < peak1 + 4.0,
        "4 chunks {peak4} MiB, 1 chunk {peak1} MiB"
    );

    // Gaps, duplicates, chunks out of range, other batches and other keys are refused.
    let err = fails(&decrypt(&["part0.veil", "part3.veil"], "x.csv"), d);
    assert_mentions(&err, &["chunks 1..3", "missing", "--chunks 1..3"]);
    let err = fails(
        &decrypt(
            &["part0.veil", "part12.veil", "part12.veil", "part3.veil"],
            "x.csv",
        ),
        d,
    );
    assert_mentions(&err, &["chunk 1 is in both", "part12.veil"]);
    let err = fails(&decrypt(&["whole.veil", "part3.veil"], "x.csv"), d);
    assert_mentions(&err, &["chunk 3 is in both", "whole.veil", "part3.veil"]);
    let mut args = eval_args("keys/eval.key", "batch.veil", "x.veil").to_vec();
    args.extend(["--chunks", "3..5"]);
    let err = fails(&args, d);
    assert_mentions(&err, &["batch.veil", "chunks 3..5", "holds chunks 0..4"]);
    succeeds(
        &encrypt_args("keys/secret.key", "images.csv", "again.veil"),
        d,
    );
    let mut args = eval_args("keys/eval.key", "again.veil", "again3.veil").to_vec();
    args.extend(["--chunk", "3"]);
    succeeds(&args, d);
    let err = fails(
        &decrypt(&["part0.veil", "part12.veil", "again3.veil"], "x.csv"),
        d,
    );
    assert_mentions(&err, &["again3.veil belongs to batch", "different batches"]);
    succeeds(&["keygen", "net.plan", "-o", "keys2"], d);
    succeeds(
        &encrypt_args("keys2/secret.key", "images.csv", "other.veil"),
        d,
    );
    let mut args = eval_args("keys2/eval.key", "other.veil", "other3.veil").to_vec();
    args.extend(["--chunk", "3"]);
    succeeds(&args, d);
    let err = fails(
        &decrypt(&["part0.veil", "part12.veil", "other3.veil"], "x.csv"),
        d,
    );
    assert_mentions(
        &err,
        &["other3.veil was made under key set", "share its keys"],
    );
    assert!(!d.join("x.csv").exists(), "nothing written on refusal");
}
