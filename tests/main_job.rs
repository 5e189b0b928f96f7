//! README's main job on a few hundred shipped MNIST test digits: the shipped model is compiled
//! at 128-bit security, the digits are encrypted, evaluated and decrypted by the built binary,
//! and the encrypted predictions equal the plaintext plan's with the model's accuracy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step must stop the test"
)]

use std::process::Command;

#[test]
fn encrypted_inference_on_shipped_mnist_digits() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .current_dir(root)
        .args([
            "infer",
            "models/cryptonets-mnist.ron",
            "--images",
            "models/data/mnist/test-images-idx3-ubyte.gz",
            "--labels",
            "models/data/mnist/test-labels-idx1-ubyte.gz",
            "--limit",
            "300",
            "--json",
        ])
        .output()
        .expect("the veil binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "veil infer failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report:#}");
    assert_eq!(report["images"], 300);
    assert_eq!(report["mismatches"], 0, "encrypted scores equal the plan's");
    let encrypted = report["accuracy_encrypted"].as_f64().unwrap();
    let plain = report["accuracy_plain"].as_f64().unwrap();
    assert_eq!(encrypted, plain);
    assert!(encrypted >= 95.0, "accuracy {encrypted}% on 300 digits");
    assert!(report["noise_budget_measured_bits"].as_f64().unwrap() > 0.0);
}
