//! Golden IR text after every pass (and with analysis facts) for small models. A mismatch
//! prints a diff; rerun with `VEIL_BLESS=1` to accept the new text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use std::path::Path;
use veil_compiler::testing::{chain, residual};
use veil_compiler::{compile_graph, CompileOptions};

fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("-{:>4} {x}\n", i + 1));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+{:>4} {y}\n", i + 1));
                }
            }
        }
    }
    out
}

fn check(name: &str, g: veil_compiler::ir::Graph) {
    let opts = CompileOptions {
        dump_ir: true,
        security: None,
        ..CompileOptions::default()
    };
    let compiled = compile_graph(g, &opts).unwrap();
    let mut text = String::new();
    for (stage, ir) in &compiled.ir_dumps {
        text.push_str(&format!("== {stage} ==\n{ir}"));
    }
    for w in &compiled.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.ir"));
    if std::env::var_os("VEIL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == text,
        "IR of `{name}` differs from {}:\n{}\nrerun with VEIL_BLESS=1 to accept",
        path.display(),
        diff(&expected, &text)
    );
}

#[test]
fn small_cryptonets() {
    check(
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
                "softmax",
            ],
        ),
    );
}

#[test]
fn every_kind_of_lowering() {
    check(
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
    );
}

#[test]
fn average_pooling_and_tanh() {
    check(
        "avgpool_tanh",
        chain(
            &[1, 6, 6],
            &["conv:2:3:1", "tanh", "avgpool:2:2", "flatten", "dense:3"],
        ),
    );
}

#[test]
fn residual_add() {
    check("residual", residual());
}
