//! The packed layout (issue 11): packed plans validate, keep the slot plan's exact reference
//! (only parameters and schedule differ), lay CryptoNets out with few diagonals, and the
//! layout choice follows the batch size.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use std::path::{Path, PathBuf};
use veil_compiler::packing::{pack, PackError, PackOptions};
use veil_compiler::testing::chain;
use veil_compiler::{compile_graph, compile_path, CompileError, CompileOptions, LayoutChoice};
use veil_runtime::exec::exact_scores;
use veil_runtime::plan::{Plan, Step};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("models")
}

fn packed_options() -> CompileOptions {
    CompileOptions {
        layout: LayoutChoice::Packed,
        ..CompileOptions::default()
    }
}

/// A few deterministic raw inputs in `[lo, hi]`.
fn inputs(len: usize, lo: f64, hi: f64) -> Vec<Vec<f64>> {
    (0..4u64)
        .map(|k| {
            (0..len as u64)
                .map(|i| {
                    let x = (i * 2_654_435_761 + k * 40_503) % 1000;
                    lo + (hi - lo) * x as f64 / 999.0
                })
                .collect()
        })
        .collect()
}

/// The packed plan of the same model computes exactly what the slot plan computes.
fn assert_same_reference(slot: &Plan, packed: &Plan) {
    let len = slot.input_len();
    for raw in inputs(len, slot.input.raw_min, slot.input.raw_max) {
        assert_eq!(
            exact_scores(slot, &raw).unwrap(),
            exact_scores(packed, &raw).unwrap()
        );
    }
}

fn linears(plan: &Plan) -> Vec<(usize, usize)> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::Linear { output, matrix, .. } => Some((*output, matrix.rows)),
            _ => None,
        })
        .collect()
}

#[test]
fn small_models_pack_validate_and_keep_their_reference() {
    let models: [(&[usize], &[&str]); 4] = [
        (&[8], &["dense:6", "square", "dense:4", "square", "dense:3"]),
        (&[16], &["dense:4", "poly:0.1:0.5:0.25", "dense:3"]),
        (
            &[1, 8, 8],
            &[
                "conv:2:3:1:1",
                "square",
                "sumpool:2:2",
                "flatten",
                "dense:4",
            ],
        ),
        (&[1, 6, 6], &["conv:3:3:1", "square", "flatten", "dense:5"]),
    ];
    for (shape, specs) in models {
        let slot = compile_graph(chain(shape, specs), &CompileOptions::default()).unwrap();
        let packed = compile_graph(chain(shape, specs), &packed_options()).unwrap();
        let plan = &packed.plan;
        assert!(plan.packing.is_some(), "{specs:?}");
        plan.validate().unwrap();
        assert_eq!(plan.params.scheme, veil_runtime::plan::Scheme::Bfv);
        assert!(plan.predicted_noise_budget_bits >= 10.0, "{specs:?}");
        assert_same_reference(&slot.plan, plan);
        // Every square is relinearised at once: rotations need size-2 ciphertexts.
        for (i, step) in plan.steps.iter().enumerate() {
            if let Step::Square { output, .. } = step {
                assert_eq!(
                    plan.steps.get(i + 1),
                    Some(&Step::Relinearize { register: *output }),
                    "{specs:?}"
                );
            }
        }
        let report = &packed.report;
        assert!(report.packing.is_some());
        assert!(report.to_text().contains("packed layout: lane"));
    }
}

#[test]
fn cryptonets_packs_with_few_diagonals_and_keeps_its_reference() {
    let slot = compile_path(
        &models_dir().join("cryptonets-mnist.ron"),
        &CompileOptions::default(),
    )
    .unwrap();
    let opts = PackOptions {
        security: Some(veil_runtime::security::SecurityLevel::Bits128),
        margin_bits: 10.0,
        galois_key_cost: veil_compiler::packing::split::NEW_KEY,
    };
    let packed = pack(&slot.plan, &opts).unwrap();
    let plan = &packed.plan;
    plan.validate().unwrap();
    assert_same_reference(&slot.plan, plan);
    let f = &packed.figures;
    let maps = linears(plan);
    assert_eq!(f.linears.len(), 3);
    let (conv1, dense, out) = (&f.linears[0], &f.linears[1], &f.linears[2]);
    // conv1 (784→845, 25 weights per row): about one diagonal per kernel offset and map.
    assert_eq!((conv1.cols, conv1.rows), (784, 845));
    assert_eq!(conv1.fold_parts, 1);
    assert!(conv1.diagonals <= 130, "{conv1:?}");
    // The dense 845→100 folds: at most the stride (128) diagonals.
    assert_eq!((dense.cols, dense.rows), (845, 100));
    assert!(dense.fold_parts > 1, "{dense:?}");
    assert!(dense.diagonals <= 128, "{dense:?}");
    // The output never comes from a fold.
    assert_eq!(maps[2].0, plan.output.register);
    assert_eq!(out.fold_parts, 1);
    assert!(plan.predicted_noise_budget_bits >= 10.0);
    assert!(f.images_per_ciphertext >= 1);
    assert_eq!(
        f.galois_keys,
        plan.packing
            .as_ref()
            .unwrap()
            .galois_elements(plan)
            .unwrap()
            .len()
    );
    eprintln!(
        "packed CryptoNets: n = {}, q = {:?}, p = {:?}, t = {:?}, budget {:.1} bits, {:?}, {:.2} s per ciphertext",
        plan.params.degree,
        plan.params.q_primes,
        plan.params.special_primes,
        plan.params.plain_primes,
        plan.predicted_noise_budget_bits,
        f,
        packed.price.seconds_per_group
    );
}

#[test]
fn the_batch_size_picks_the_layout() {
    let path = models_dir().join("cryptonets-mnist.ron");
    let one = compile_path(
        &path,
        &CompileOptions {
            batch_size: Some(1),
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert!(one.plan.packing.is_some(), "one image: packed");
    let layouts = one.report.layouts.as_ref().unwrap();
    assert_eq!(layouts.chosen.layout, "packed");
    let rejected = layouts.rejected.as_ref().unwrap();
    assert_eq!(rejected.layout, "slots");
    assert!(layouts.chosen.seconds < rejected.seconds);
    let crossover = layouts.crossover_batch.unwrap();
    assert!(crossover > 1 && crossover < 16384, "{crossover}");
    let text = one.report.to_text();
    assert!(text.contains("crossover"), "{text}");
    let json = serde_json::to_string(&one.report).unwrap();
    assert!(json.contains("\"crossover_batch\""), "{json}");
    assert!(json.contains("\"eval_key_bytes\""), "{json}");

    let many = compile_path(
        &path,
        &CompileOptions {
            batch_size: Some(16384),
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert!(many.plan.packing.is_none(), "a full batch: slots");
    let layouts = many.report.layouts.as_ref().unwrap();
    assert_eq!(layouts.chosen.layout, "slots");
    assert_eq!(layouts.crossover_batch, Some(crossover));
}

#[test]
fn without_a_batch_size_auto_keeps_the_slot_plan_unchanged() {
    let g = || chain(&[8], &["dense:6", "square", "dense:3"]);
    let default = compile_graph(g(), &CompileOptions::default()).unwrap();
    let slots = compile_graph(
        g(),
        &CompileOptions {
            layout: LayoutChoice::Slots,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert!(default.plan.packing.is_none());
    assert_eq!(default.plan, slots.plan);
    assert!(default.report.layouts.is_none());
    assert!(slots.report.layouts.is_some(), "--layout slots prices both");
}

#[test]
fn a_model_too_wide_for_a_row_is_refused_clearly() {
    // 20,000 inputs need a lane of 32,768 slots: more than n/2 at every ring degree.
    let g = chain(&[20_000], &["dense:2"]);
    let err = compile_graph(g, &packed_options()).unwrap_err();
    assert!(
        matches!(
            err,
            CompileError::Packing(PackError::LaneTooWide { lane: 32768, .. })
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("--layout slots"), "{msg}");
    // Auto falls back to the slot layout and says why.
    let auto = compile_graph(
        chain(&[20_000], &["dense:2"]),
        &CompileOptions {
            batch_size: Some(1),
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert!(auto.plan.packing.is_none());
    let layouts = auto.report.layouts.unwrap();
    assert!(layouts.rejected.is_none());
    assert!(layouts
        .packed_unavailable
        .unwrap()
        .contains("lane of 32768"));
}

#[test]
fn the_packed_layout_is_bfv_only() {
    let g = || chain(&[8], &["dense:6", "square", "dense:3"]);
    let opts = CompileOptions {
        scheme: Some(veil_runtime::plan::Scheme::Bgv),
        ..packed_options()
    };
    let err = compile_graph(g(), &opts).unwrap_err();
    assert!(
        matches!(err, CompileError::Packing(PackError::NotBfv)),
        "{err}"
    );
    assert!(err.to_string().contains("BFV only"), "{err}");
}
