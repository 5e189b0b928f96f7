//! `veil report` on every shipped model, compared with the committed text in
//! `docs/generated/report-<model>.txt`. The docs quote their figures (bounds, budgets, primes,
//! bytes per image) from those files, so a change in the compiler that moves a figure fails
//! here until the files are regenerated, and the diff shows which figures the docs must follow.
//!
//! Regenerate after an intended change with
//! `VEIL_BLESS=1 cargo test --release --test report_snapshot`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed step must stop the test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that rewrites the snapshots instead of comparing with them.
const BLESS: &str = "VEIL_BLESS";

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped models, `models/*.ron`, in name order.
fn shipped_models() -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = std::fs::read_dir(repository().join("models"))
        .expect("models/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "ron"))
        .collect();
    models.sort();
    models
}

/// `veil report models/NAME.ron`, run from the repository root so that nothing in the output
/// depends on where the checkout lives.
fn report(model: &Path) -> String {
    let relative = model
        .strip_prefix(repository())
        .expect("a model of this repository");
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("report")
        .arg(relative)
        .current_dir(repository())
        .output()
        .expect("the veil binary runs");
    assert!(
        out.status.success(),
        "veil report {} failed:\n{}",
        relative.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

/// The lines that differ, in a diff-like form (`-` expected, `+` actual), at most `limit`.
fn line_differences(expected: &str, actual: &str, limit: usize) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(i), new.get(i));
        if a == b {
            continue;
        }
        if shown == limit {
            out.push_str("  …\n");
            break;
        }
        out.push_str(&format!("  line {}:\n", i + 1));
        if let Some(a) = a {
            out.push_str(&format!("  - {a}\n"));
        }
        if let Some(b) = b {
            out.push_str(&format!("  + {b}\n"));
        }
        shown += 1;
    }
    out
}

#[test]
fn reports_of_the_shipped_models_match_docs_generated() {
    let bless = std::env::var_os(BLESS).is_some();
    let generated = repository().join("docs/generated");
    let models = shipped_models();
    assert!(!models.is_empty(), "no models/*.ron found");
    let mut stale = Vec::new();
    for model in &models {
        let stem = model.file_stem().unwrap().to_string_lossy();
        let snapshot = generated.join(format!("report-{stem}.txt"));
        let actual = report(model);
        if bless {
            std::fs::create_dir_all(&generated).unwrap();
            std::fs::write(&snapshot, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != actual {
            stale.push(format!(
                "{} differs from `veil report models/{stem}.ron`:\n{}",
                snapshot.display(),
                line_differences(&expected, &actual, 20)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nIf the change is intended, rerun with `{BLESS}=1 cargo test --release --test report_snapshot` \
         to rewrite docs/generated/, then update the figures the docs quote from it.",
        stale.join("\n")
    );
}
