//! The seeded random-weight CryptoNets model: shipped files, fusion, depth, parameters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use std::path::{Path, PathBuf};
use veil_compiler::testing::{cryptonets_random, CRYPTONETS_RON};
use veil_compiler::{compile_path, CompileOptions};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("models")
}

const SEED: u64 = 2016;

#[test]
fn shipped_random_model_matches_its_generator() {
    let (_, tensors) = cryptonets_random(SEED);
    let bytes = tensors.to_safetensors_f32().unwrap();
    let ron_path = models_dir().join("cryptonets-mnist-random.ron");
    let st_path = models_dir().join("cryptonets-mnist-random.safetensors");
    if std::env::var_os("VEIL_BLESS").is_some() || !ron_path.exists() {
        std::fs::create_dir_all(models_dir()).unwrap();
        std::fs::write(&ron_path, CRYPTONETS_RON).unwrap();
        std::fs::write(&st_path, &bytes).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&ron_path).unwrap(),
        CRYPTONETS_RON,
        "rerun with VEIL_BLESS=1"
    );
    assert!(
        std::fs::read(&st_path).unwrap() == bytes,
        "safetensors differ; rerun with VEIL_BLESS=1"
    );
}

#[test]
fn cryptonets_fuses_to_845_by_100_with_depth_2() {
    shipped_random_model_matches_its_generator();
    let compiled = compile_path(
        &models_dir().join("cryptonets-mnist-random.ron"),
        &CompileOptions::default(),
    )
    .unwrap();
    let text = compiled.report.to_text();
    println!("{text}");
    let ops: Vec<(String, String)> = compiled
        .report
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.op.clone()))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("input".to_owned(), "input".to_owned()),
            ("conv1".to_owned(), "linear 784→845".to_owned()),
            ("act1".to_owned(), "square".to_owned()),
            (
                "pool1+conv2+pool2+flatten+fc1".to_owned(),
                "linear 845→100".to_owned()
            ),
            ("act2".to_owned(), "square".to_owned()),
            ("fc2".to_owned(), "linear 100→10".to_owned()),
        ]
    );
    assert_eq!(compiled.plan.depth, 2);
    assert_eq!(compiled.plan.params.security_bits, 128);
    // The circuit keeps the margin; the results the client receives have part of the rest
    // rounded away, and so have the uploads.
    let plan = &compiled.plan;
    assert!(plan.registers[plan.output.register].noise_budget_bits >= 10.0);
    assert!(plan.predicted_noise_budget_bits > 0.0);
    // Rounding applies to both schemes (a BGV component travels as the rounding of t⁻¹·c).
    assert!(plan.compression.upload_bits > 0, "{:?}", plan.compression);
    assert_eq!(plan.compression.download_bits.len(), 2);
    assert_eq!(compiled.plan.input.features.len(), 784);
}

/// `veil report --json` carries the keys the issue promises, with the plan's numbers, and the
/// table has one row per layer with every column; a report rebuilt from the plan alone matches.
#[test]
fn report_json_and_table_carry_every_field() {
    let compiled = compile_path(
        &models_dir().join("cryptonets-mnist-random.ron"),
        &CompileOptions::default(),
    )
    .unwrap();
    let plan = &compiled.plan;
    let json: serde_json::Value = serde_json::to_value(&compiled.report).unwrap();
    let params = &json["params"];
    assert_eq!(params["n"], plan.params.degree);
    assert_eq!(
        params["q_primes"].as_array().unwrap().len(),
        plan.params.q_primes.len()
    );
    assert!(
        (params["log2_q"].as_f64().unwrap() - plan.q_bits_at(plan.params.q_primes.len()) as f64)
            .abs()
            < 1.0
    );
    assert_eq!(
        params["t"].as_array().unwrap().len(),
        plan.params.plain_primes.len()
    );
    assert_eq!(params["security_bits"], 128);
    assert_eq!(json["depth"], 2);
    assert_eq!(
        json["noise_budget_bits"].as_f64().unwrap(),
        plan.predicted_noise_budget_bits
    );
    assert_eq!(
        json["upload_bytes_per_image"].as_f64().unwrap(),
        plan.upload_bytes_per_image()
    );
    assert_eq!(
        json["download_bytes_per_image"].as_f64().unwrap(),
        plan.download_bytes_per_image()
    );
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), plan.registers.len());
    for (row, reg) in layers.iter().zip(&plan.registers) {
        for key in [
            "name",
            "op",
            "outputs",
            "depth",
            "value_bits",
            "noise_budget_bits",
        ] {
            assert!(!row[key].is_null(), "layer {} lacks `{key}`", reg.name);
        }
        assert_eq!(row["name"], reg.name.as_str());
        assert_eq!(row["outputs"], reg.len);
        assert_eq!(
            row["noise_budget_bits"].as_f64().unwrap(),
            reg.noise_budget_bits
        );
    }
    let text = compiled.report.to_text();
    for column in [
        "layer",
        "op",
        "cts out",
        "depth",
        "|x| ≤2^",
        "budget",
        "level",
        "squares",
        "relins",
    ] {
        assert!(text.contains(column), "no column `{column}` in\n{text}");
    }
    for reg in &plan.registers {
        assert!(text.contains(&reg.name), "no row for {}", reg.name);
    }
    let from_plan = veil_compiler::Report::from_plan(plan);
    assert_eq!(from_plan.layers, compiled.report.layers);
    assert_eq!(from_plan.params, compiled.report.params);
}
