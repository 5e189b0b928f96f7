//! The packed layout through the built `veil` binary: compile with `--layout packed`, the
//! client/server split through files (the Galois keys travel in `eval.key`), `infer` and
//! `bench --batch-size 1`, all exact against the plan's reference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step must stop the test"
)]

mod common;

use common::{models, random_images, write_csv, write_model};
use std::path::Path;
use std::process::{Command, Output};
use veil_runtime::plan::{argmax, Plan};
use veil_runtime::session::Context;

fn veil(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the veil binary runs")
}

fn succeeds(args: &[&str], dir: &Path) -> String {
    let out = veil(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "veil {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str], dir: &Path) -> String {
    let out = veil(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "veil {args:?} should have failed");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_packed_plan_runs_through_files_infer_and_bench_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models()
        .into_iter()
        .find(|(n, _)| *n == "conv-square-dense")
        .unwrap()
        .1;
    write_model(d, "net", &model);
    let images = random_images(&[1, 8, 8], 9, -1.0, 1.0, 5);
    write_csv(&d.join("images.csv"), &images, 64);
    succeeds(
        &["compile", "net.ron", "--layout", "packed", "-o", "net.plan"],
        d,
    );
    let plan = Plan::read_file(&d.join("net.plan")).unwrap();
    assert!(
        plan.packing.is_some(),
        "--layout packed gives a packed plan"
    );
    succeeds(&["keygen", "net.plan", "-o", "keys"], d);
    succeeds(
        &[
            "encrypt",
            "net.plan",
            "--key",
            "keys/public.key",
            "--images",
            "images.csv",
            "-o",
            "batch.veil",
        ],
        d,
    );
    // The server holds the plan, the batch and eval.key (relinearisation + Galois keys).
    let server = d.join("server");
    std::fs::create_dir(&server).unwrap();
    for (from, to) in [
        ("net.plan", "net.plan"),
        ("batch.veil", "batch.veil"),
        ("keys/eval.key", "eval.key"),
    ] {
        std::fs::copy(d.join(from), server.join(to)).unwrap();
    }
    succeeds(
        &[
            "eval",
            "net.plan",
            "--key",
            "eval.key",
            "batch.veil",
            "-o",
            "result.veil",
        ],
        &server,
    );
    // A cut evaluation key is refused with a clear error, and nothing is written.
    let key = std::fs::read(server.join("eval.key")).unwrap();
    std::fs::write(server.join("cut.key"), &key[..key.len() / 2]).unwrap();
    let err = fails(
        &[
            "eval",
            "net.plan",
            "--key",
            "cut.key",
            "batch.veil",
            "-o",
            "bad.veil",
        ],
        &server,
    );
    assert!(err.contains("key"), "{err}");
    assert!(!server.join("bad.veil").exists());

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
    let context = Context::new(plan).unwrap();
    let reference = context.reference(&images).unwrap();
    let csv = std::fs::read_to_string(d.join("predictions.csv")).unwrap();
    let classes: Vec<usize> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let want: Vec<usize> = reference.iter().map(|s| argmax(s)).collect();
    assert_eq!(classes, want);

    let json = succeeds(
        &[
            "infer",
            "net.ron",
            "--layout",
            "packed",
            "--images",
            "images.csv",
            "--json",
        ],
        d,
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["mismatches"], 0);

    let json = succeeds(
        &[
            "bench",
            "net.ron",
            "--layout",
            "packed",
            "--batch-size",
            "1",
            "--json",
        ],
        d,
    );
    let bench: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(bench["images"], 1);
    assert_eq!(bench["layout"], "packed");
    assert!(bench["galois_keys"].as_u64().unwrap() > 0);
    assert!(bench["eval_key_bytes"].as_u64().unwrap() > 0);
}
