//! `veil report` on every shipped model, compared with the committed text in
//! `docs/generated/report-<model>.txt`. The docs quote their figures (bounds, budgets, primes,
//! bytes per image) from those files, so a change in the compiler that moves a figure fails
//! here until the files are regenerated, and the diff shows which figures the docs must follow.
//!
//! A page may also embed a generated file verbatim: a line `<!-- generated: docs/generated/F -->`
//! directly before a fenced block makes that block a copy of `F`, checked here too.
//!
//! Regenerate both after an intended change with
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

/// The line that makes the fenced block after it a copy of a generated file.
const EMBED_MARKER: &str = "<!-- generated: ";

/// Pages that may embed generated files: README.md and docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repository().join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.push(repository().join("README.md"));
    pages.sort();
    pages
}

/// `page` with every embedded block replaced by the current content of its generated file.
fn with_fresh_embeds(page: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(rest) = line.strip_prefix(EMBED_MARKER) else {
            continue;
        };
        let source = rest.trim_end().trim_end_matches("-->").trim();
        let content = std::fs::read_to_string(repository().join(source))
            .map_err(|e| format!("{source}: {e}"))?;
        let fence = lines
            .next()
            .filter(|l| l.starts_with("```"))
            .ok_or_else(|| format!("no fenced block after the marker for {source}"))?;
        out.push_str(fence);
        out.push('\n');
        out.push_str(&content);
        if !content.ends_with('\n') {
            out.push('\n');
        }
        // Skip the old copy up to and including its closing fence.
        let closing = lines
            .by_ref()
            .find(|l| l.starts_with("```"))
            .ok_or_else(|| format!("the block embedding {source} is not closed"))?;
        out.push_str(closing);
        out.push('\n');
    }
    Ok(out)
}

/// Checks (or, when blessing, rewrites) every page's embedded copies; returns what is stale.
fn check_embeds(bless: bool) -> Vec<String> {
    let mut stale = Vec::new();
    for path in pages() {
        let page = std::fs::read_to_string(&path).unwrap();
        if !page.contains(EMBED_MARKER) {
            continue;
        }
        let fresh = with_fresh_embeds(&page).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if fresh == page {
            continue;
        }
        if bless {
            std::fs::write(&path, fresh).unwrap();
        } else {
            stale.push(format!(
                "{} embeds a stale copy of a generated file:\n{}",
                path.display(),
                line_differences(&page, &fresh, 20)
            ));
        }
    }
    stale
}

#[test]
fn docs_quote_the_current_reports_of_the_shipped_models() {
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
    // After the reports, so that blessing copies the new reports into the pages.
    stale.extend(check_embeds(bless));
    assert!(
        stale.is_empty(),
        "{}\nIf the change is intended, rerun with `{BLESS}=1 cargo test --release --test report_snapshot` \
         to rewrite docs/generated/ and the copies embedded in the pages, then update the figures the prose quotes.",
        stale.join("\n")
    );
}
