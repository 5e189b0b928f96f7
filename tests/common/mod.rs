//! Shared fixtures for the end-to-end tests: small models written as model files and seeded
//! images.

#![allow(
    dead_code,
    reason = "each test binary uses its own subset of the fixtures"
)]
#![allow(
    clippy::expect_used,
    reason = "fixtures: a broken fixture must stop the test"
)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use veil_compiler::model::{Layer, Model, Op};
use veil_compiler::testing::chain_model;

/// Noise-budget tolerance (bits): the measured budget may exceed the compiler's prediction by
/// at most this much, the same bound as compiler/tests/noise.rs. The prediction sums worst
/// cases (row L1 norms, δ = 2√n, biases at their maximum) where one run sees typical noise, so
/// it is conservative by a few bits to about fifteen; see docs/parameters.md, "Checked against
/// the runtime".
pub const BUDGET_TOLERANCE_BITS: f64 = 25.0;

/// The four small models of the end-to-end tests, by name.
pub fn models() -> Vec<(&'static str, Model)> {
    vec![
        ("dense-only", chain_model(&[16], &["dense:8", "dense:4"])),
        (
            "conv-square-dense",
            chain_model(&[1, 8, 8], &["conv:2:3:2", "square", "flatten", "dense:4"]),
        ),
        ("residual-add", residual_model()),
        (
            "maxpool-relu",
            chain_model(
                &[1, 8, 8],
                &["conv:2:3:1", "relu", "maxpool:2:2", "flatten", "dense:3"],
            ),
        ),
    ]
}

/// input[4] → dense → square → dense; add(square, dense) → dense[2]: a residual connection.
pub fn residual_model() -> Model {
    let mut m = chain_model(
        &[4],
        &["dense:4", "square", "dense:4", "dense:4", "dense:2"],
    );
    m.layers[3] = Layer {
        name: "l3".into(),
        op: Op::Add,
        inputs: vec!["l1".into(), "l2".into()],
        params: BTreeMap::new(),
    };
    m
}

/// Writes `model` as a RON model file `name.ron` in `dir`.
pub fn write_model(dir: &Path, name: &str, model: &Model) -> PathBuf {
    let mut model = model.clone();
    model.name = name.to_string();
    let text = ron::ser::to_string_pretty(&model, ron::ser::PrettyConfig::default())
        .expect("a model serialises");
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, text).expect("the model file is written");
    path
}

/// `count` seeded random images of `shape` with values in [min, max], image after image.
pub fn random_images(shape: &[usize], count: usize, min: f32, max: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let len: usize = shape.iter().product();
    (0..count * len).map(|_| rng.gen_range(min..=max)).collect()
}

/// Writes images of `per_image` values as CSV, one image per row.
pub fn write_csv(path: &Path, pixels: &[f32], per_image: usize) {
    let mut text = String::new();
    for image in pixels.chunks(per_image) {
        let row: Vec<String> = image.iter().map(|v| format!("{v}")).collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).expect("the CSV file is written");
}
