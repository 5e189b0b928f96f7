//! End to end through the library: small models compiled at 128-bit security in both schemes,
//! encrypted, evaluated and decrypted, with uploads and results rounded as the compiler chose;
//! every slot must equal the plaintext plan's integers.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed step must stop the test"
)]

mod common;

use common::{models, random_images, write_model, BUDGET_TOLERANCE_BITS};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil_compiler::CompileOptions;
use veil_runtime::exec::NoProgress;
use veil_runtime::plan::Scheme;
use veil_runtime::session::{encoded_len, ContainerKind};
use veil_runtime::session::{Context, EncryptionKey};

/// Compiles `model`, runs a full batch (plus `extra` images in a second batch) encrypted with
/// `key`, and checks the decrypted integers against the reference in every slot.
fn check_model(name: &str, model: &veil_compiler::model::Model, extra: usize, public: bool) {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        check_model_in(name, model, extra, public, scheme);
    }
}

/// [`check_model`] in one scheme.
fn check_model_in(
    name: &str,
    model: &veil_compiler::model::Model,
    extra: usize,
    public: bool,
    scheme: Scheme,
) {
    let name = &format!("{name} ({scheme})");
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), name, model);
    let options = CompileOptions {
        scheme: Some(scheme),
        ..CompileOptions::default()
    };
    let compiled = veil_compiler::compile_path(&path, &options).unwrap();
    let plan = compiled.plan;
    assert_eq!(plan.params.scheme, scheme);
    assert_eq!(plan.params.security_bits, 128, "{name}: secure by default");
    let predicted = plan.predicted_noise_budget_bits;
    // Both schemes round uploads and results: the scores below must still be exact.
    assert!(
        plan.compression.upload_bits > 0 && plan.compression.download_bits.iter().any(|&k| k > 0),
        "{name}: {:?}",
        plan.compression
    );
    let context = Context::new(plan).unwrap();

    let input = &context.plan().input;
    let shape = input.shape.clone();
    let (min, max) = (input.raw_min as f32, input.raw_max as f32);
    let count = context.slots() + extra;
    let images = random_images(&shape, count, min, max, 5);

    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let keys = context.keygen(&mut rng).unwrap();
    let key = if public {
        EncryptionKey::Public(&keys.public)
    } else {
        EncryptionKey::Client(&keys.client)
    };
    let (batch, clamped) = context.encrypt(key, &images, &mut rng, &|_| {}).unwrap();
    assert_eq!(clamped, 0);
    assert_eq!(batch.chunks.len(), if extra > 0 { 2 } else { 1 });

    // Through the upload format and back, as a server would receive it.
    // `infer` and `bench` report sizes from `encoded_len`, without serialising.
    let upload = context
        .batch_to_bytes(ContainerKind::Batch, &batch)
        .unwrap();
    assert_eq!(encoded_len(&batch), upload.len(), "{name}: batch size");
    let batch = context
        .batch_from_bytes(ContainerKind::Batch, &upload)
        .unwrap();

    let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    let download = context
        .batch_to_bytes(ContainerKind::Result, &result)
        .unwrap();
    assert_eq!(encoded_len(&result), download.len(), "{name}: result size");
    let result = context
        .batch_from_bytes(ContainerKind::Result, &download)
        .unwrap();
    let decrypted = context.decrypt(&keys.client, &result).unwrap();
    let reference = context.reference(&images).unwrap();

    assert_eq!(decrypted.scores.len(), count);
    for (i, (got, want)) in decrypted.scores.iter().zip(&reference).enumerate() {
        assert_eq!(got, want, "{name}: image {i}");
    }
    // Not every slot may hold the same value: a constant circuit would pass trivially.
    assert!(
        reference.iter().any(|s| s != &reference[0]),
        "{name}: outputs vary"
    );

    let measured = f64::from(decrypted.min_noise_budget_bits);
    eprintln!("{name}: noise budget measured {measured} bits, predicted {predicted:.1} bits");
    assert!(measured > 0.0, "{name}: budget left");
    assert!(
        measured + 1.0 >= predicted,
        "{name}: the prediction {predicted:.1} must not exceed the measured {measured}"
    );
    assert!(
        measured <= predicted + BUDGET_TOLERANCE_BITS,
        "{name}: prediction {predicted:.1} is more than {BUDGET_TOLERANCE_BITS} bits below the measured {measured}"
    );
}

fn model(name: &str) -> veil_compiler::model::Model {
    models()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| m)
        .unwrap()
}

#[test]
fn dense_only_two_batches_with_public_key_encryption() {
    check_model("dense-only", &model("dense-only"), 7, true);
}

#[test]
fn conv_square_dense() {
    check_model("conv-square-dense", &model("conv-square-dense"), 0, false);
}

#[test]
fn residual_add() {
    check_model("residual-add", &model("residual-add"), 0, false);
}

#[test]
fn max_pooling_and_relu_replaced() {
    check_model("maxpool-relu", &model("maxpool-relu"), 0, false);
}

/// Every small model, and both shipped models, in the packed layout: a ciphertext's worth of
/// images plus three more (two ciphertext groups), every score equal to the plaintext plan's.
#[test]
fn every_small_model_and_the_shipped_ones_run_packed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let options = CompileOptions {
        layout: veil_compiler::LayoutChoice::Packed,
        ..CompileOptions::default()
    };
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut paths: Vec<(String, std::path::PathBuf)> = models()
        .into_iter()
        .map(|(name, model)| (name.to_string(), write_model(dir.path(), name, &model)))
        .collect();
    for name in ["cryptonets-mnist", "cryptonets-fashion"] {
        paths.push((name.into(), shipped.join(format!("{name}.ron"))));
    }
    for (name, path) in paths {
        let plan = veil_compiler::compile_path(&path, &options).unwrap().plan;
        assert!(plan.packing.is_some(), "{name}");
        assert_eq!(plan.params.security_bits, 128, "{name}");
        let context = Context::new(plan).unwrap();
        let input = &context.plan().input;
        let count = context.slots() + 3;
        let images = random_images(
            &input.shape.clone(),
            count,
            input.raw_min as f32,
            input.raw_max as f32,
            11,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let keys = context.keygen(&mut rng).unwrap();
        let (batch, _) = context
            .encrypt(
                EncryptionKey::Public(&keys.public),
                &images,
                &mut rng,
                &|_| {},
            )
            .unwrap();
        assert_eq!(batch.chunks.len(), 2, "{name}");
        let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
        let decrypted = context.decrypt(&keys.client, &result).unwrap();
        assert_eq!(
            decrypted.scores,
            context.reference(&images).unwrap(),
            "{name}"
        );
        assert!(decrypted.min_noise_budget_bits > 0, "{name}");
    }
}
