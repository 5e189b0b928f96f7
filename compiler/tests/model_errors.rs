//! One test per kind of model error, pinning the message (file, layer, field, what).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers stop the test on failure"
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use veil_compiler::model::{Tensor, TensorSource};
use veil_compiler::{compile_path, load_model, CompileOptions};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "veil-model-errors-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `text` as `name` and returns the error message with the directory replaced by `DIR`.
fn error(name: &str, text: &str) -> String {
    let dir = scratch();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let msg = load_model(&path).unwrap_err().to_string();
    msg.replace(&dir.display().to_string(), "DIR")
}

fn model(layers: &str) -> String {
    format!("Model(name: \"m\", input: Input(shape: [1, 4, 4], min: 0.0, max: 1.0), layers: [{layers}])")
}

const FLAT: &str = r#"Layer(name: "flat", op: Flatten),"#;

fn dense(name: &str, out: usize, inputs: usize) -> String {
    let w = vec!["0.5"; out * inputs].join(", ");
    let b = vec!["0.1"; out].join(", ");
    format!(
        r#"Layer(name: "{name}", op: Dense(out_features: {out}), params: {{"weight": [{w}], "bias": [{b}]}}),"#
    )
}

#[test]
fn ron_syntax_error_has_line_and_column() {
    let text = "Model(\n    name: \"m\"\n    input: Input(shape: [3], min: 0.0, max: 1.0),\n    layers: [],\n)";
    assert_eq!(
        error("m.ron", text),
        "DIR/m.ron: line 3, column 5: Expected comma"
    );
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let text = "{\n  \"name\": \"m\",\n  \"input\": {\"shape\": [3], \"min\": 0.0 \"max\": 1.0},\n  \"layers\": []\n}";
    assert_eq!(
        error("m.json", text),
        "DIR/m.json: line 3, column 38: expected `,` or `}`"
    );
}

#[test]
fn unknown_op_names_the_alternatives() {
    let text = model(r#"Layer(name: "c", op: Conv3d(out_channels: 2)),"#);
    let msg = error("m.ron", &text);
    assert!(msg.starts_with("DIR/m.ron: line 1, column "), "{msg}");
    assert!(
        msg.contains(
            "Unexpected variant named `Conv3d` in enum `Op`, expected one of `Conv2d`, `Dense`"
        ),
        "{msg}"
    );
}

#[test]
fn unknown_field_is_rejected() {
    let text = model(r#"Layer(name: "d", op: Dense(out_features: 2, bias: true, activation: 1)),"#);
    let msg = error("m.ron", &text);
    assert!(msg.contains("activation"), "{msg}");
}

#[test]
fn shape_mismatch_prints_both_shapes() {
    let text = model(&format!(
        r#"{FLAT} Layer(name: "c", op: Conv2d(out_channels: 2, kernel: (3, 3))),"#
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `c`: shape mismatch: Conv2d needs a [C, H, W] input, but its input has shape [16]"
    );
    let text = model(r#"Layer(name: "c", op: Conv2d(out_channels: 2, kernel: (5, 5))),"#);
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `c`: shape mismatch: conv2d with kernel 5x5, stride 1x1 needs a padded input of at least 5x5 (padding 0,0,0,0), but its input has shape [1, 4, 4]"
    );
    let text = model(&format!(
        r#"{FLAT} {} {} Layer(name: "sum", op: Add, inputs: ["a", "b"]),"#,
        dense("a", 2, 16),
        dense("b", 3, 16).replace("Layer(name: \"b\"", "Layer(name: \"b\", inputs: [\"flat\"]")
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `sum`: shape mismatch: add needs two inputs of the same shape; the first is [2], but its input has shape [3]"
    );
}

#[test]
fn missing_tensor() {
    let text = model(&format!(
        r#"{FLAT} Layer(name: "fc", op: Dense(out_features: 2)),"#
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `fc`, field `weight`: tensor `fc.weight` not found inline (`params`) or in the weights file (the model names no weights file)"
    );
}

#[test]
fn mis_sized_tensor() {
    let text = model(&format!("{FLAT} {}", dense("fc", 2, 15)));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `fc`, field `params.weight`: tensor `fc.weight` has shape [30] (30 values), expected [2, 16] (32 values)"
    );
}

#[test]
fn mis_shaped_tensor_in_the_weights_file() {
    let dir = scratch();
    let mut tensors = TensorSource::default();
    tensors.tensors.insert(
        "fc.weight".into(),
        Tensor {
            shape: vec![16, 2],
            data: vec![0.5; 32],
        },
    );
    tensors.tensors.insert(
        "fc.bias".into(),
        Tensor {
            shape: vec![2],
            data: vec![0.0; 2],
        },
    );
    std::fs::write(
        dir.join("w.safetensors"),
        tensors.to_safetensors_f32().unwrap(),
    )
    .unwrap();
    let text = model(&format!(
        r#"{FLAT} Layer(name: "fc", op: Dense(out_features: 2)),"#
    ))
    .replace("layers:", "weights: Some(\"w.safetensors\"), layers:");
    let path = dir.join("m.ron");
    std::fs::write(&path, text).unwrap();
    let msg = load_model(&path)
        .unwrap_err()
        .to_string()
        .replace(&dir.display().to_string(), "DIR");
    assert_eq!(
        msg,
        "DIR/m.ron: layer `fc`, field `weight`: tensor `fc.weight` has shape [16, 2] (32 values), expected [2, 16] (32 values)"
    );
}

#[test]
fn nan_weight() {
    let dir = scratch();
    let mut tensors = TensorSource::default();
    let mut w = vec![0.5; 32];
    w[7] = f64::NAN;
    tensors.tensors.insert(
        "fc.weight".into(),
        Tensor {
            shape: vec![2, 16],
            data: w,
        },
    );
    tensors.tensors.insert(
        "fc.bias".into(),
        Tensor {
            shape: vec![2],
            data: vec![0.0; 2],
        },
    );
    std::fs::write(
        dir.join("w.safetensors"),
        tensors.to_safetensors_f32().unwrap(),
    )
    .unwrap();
    let text = model(&format!(
        r#"{FLAT} Layer(name: "fc", op: Dense(out_features: 2)),"#
    ))
    .replace("layers:", "weights: Some(\"w.safetensors\"), layers:");
    let path = dir.join("m.ron");
    std::fs::write(&path, text).unwrap();
    let msg = load_model(&path)
        .unwrap_err()
        .to_string()
        .replace(&dir.display().to_string(), "DIR");
    assert_eq!(msg, "DIR/m.ron: layer `fc`, field `weight`: tensor `fc.weight` holds NaN at index 7; weights must be finite");
    // Inline infinity (RON spells it `inf`).
    let text = model(&format!(
        "{FLAT} {}",
        dense("fc", 2, 16).replacen("0.5", "-inf", 1)
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `fc`, field `weight`: tensor `fc.weight` holds -inf at index 0; weights must be finite"
    );
}

#[test]
fn missing_weights_file_and_bad_safetensors() {
    let text = model(&format!("{FLAT} {}", dense("fc", 2, 16)))
        .replace("layers:", "weights: Some(\"nope.safetensors\"), layers:");
    let msg = error("m.ron", &text);
    assert!(
        msg.starts_with("DIR/m.ron, field `weights`: cannot read DIR/nope.safetensors"),
        "{msg}"
    );
    let dir = scratch();
    std::fs::write(
        dir.join("w.safetensors"),
        b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}",
    )
    .unwrap();
    let path = dir.join("m.ron");
    std::fs::write(
        &path,
        model(&format!("{FLAT} {}", dense("fc", 2, 16)))
            .replace("layers:", "weights: Some(\"w.safetensors\"), layers:"),
    )
    .unwrap();
    let msg = load_model(&path).unwrap_err().to_string();
    assert!(
        msg.contains("field `weights`: bad safetensors file"),
        "{msg}"
    );
}

/// Writes `w.safetensors` with `fc.bias` (F32) and `fc.weight` [2, 16] of `dtype`, then loads a
/// model whose dense layer `fc` reads both.
fn typed_weight_error(dtype: safetensors::Dtype, element_bytes: usize) -> String {
    use safetensors::tensor::TensorView;
    let dir = scratch();
    let weight = vec![0u8; 32 * element_bytes];
    let bias: Vec<u8> = [0.5f32, -0.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let views = vec![
        (
            "fc.weight".to_owned(),
            TensorView::new(dtype, vec![2, 16], &weight).unwrap(),
        ),
        (
            "fc.bias".to_owned(),
            TensorView::new(safetensors::Dtype::F32, vec![2], &bias).unwrap(),
        ),
    ];
    std::fs::write(
        dir.join("w.safetensors"),
        safetensors::serialize(views, &None).unwrap(),
    )
    .unwrap();
    let text = model(&format!(
        r#"{FLAT} Layer(name: "fc", op: Dense(out_features: 2)),"#
    ))
    .replace("layers:", "weights: Some(\"w.safetensors\"), layers:");
    let path = dir.join("m.ron");
    std::fs::write(&path, text).unwrap();
    load_model(&path)
        .unwrap_err()
        .to_string()
        .replace(&dir.display().to_string(), "DIR")
}

#[test]
fn a_layer_reading_a_tensor_of_an_unsupported_type() {
    assert_eq!(
        typed_weight_error(safetensors::Dtype::I64, 8),
        "DIR/m.ron: layer `fc`, field `weight`: tensor `fc.weight` in the weights file `w.safetensors` has element type I64; only F32 and F64 tensors can be used (convert it with `.float()` before saving)"
    );
    // Half precision is not converted either (docs/model-format.md shows this message).
    assert_eq!(
        typed_weight_error(safetensors::Dtype::F16, 2),
        "DIR/m.ron: layer `fc`, field `weight`: tensor `fc.weight` in the weights file `w.safetensors` has element type F16; only F32 and F64 tensors can be used (convert it with `.float()` before saving)"
    );
}

#[test]
fn unused_tensors_of_unsupported_types_are_ignored() {
    // The I64 counter every PyTorch batch norm saves: no layer reads it, so it does no harm.
    use safetensors::tensor::TensorView;
    let dir = scratch();
    let weight: Vec<u8> = [0.25f32; 32].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bias: Vec<u8> = [0.0f32; 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tracked = 3i64.to_le_bytes();
    let views = vec![
        (
            "fc.weight".to_owned(),
            TensorView::new(safetensors::Dtype::F32, vec![2, 16], &weight).unwrap(),
        ),
        (
            "fc.bias".to_owned(),
            TensorView::new(safetensors::Dtype::F32, vec![2], &bias).unwrap(),
        ),
        (
            "bn.num_batches_tracked".to_owned(),
            TensorView::new(safetensors::Dtype::I64, vec![], &tracked).unwrap(),
        ),
    ];
    std::fs::write(
        dir.join("w.safetensors"),
        safetensors::serialize(views, &None).unwrap(),
    )
    .unwrap();
    let text = model(&format!(
        r#"{FLAT} Layer(name: "fc", op: Dense(out_features: 2)),"#
    ))
    .replace("layers:", "weights: Some(\"w.safetensors\"), layers:");
    let path = dir.join("m.ron");
    std::fs::write(&path, text).unwrap();
    let g = load_model(&path).unwrap();
    assert_eq!(g.node(g.output).len(), 2);
}

#[test]
fn cycle() {
    let text = model(&format!(
        r#"{FLAT} {} {} {}"#,
        dense("a", 16, 16).replace("Layer(name: \"a\"", "Layer(name: \"a\", inputs: [\"b\"]"),
        dense("b", 16, 16).replace("Layer(name: \"b\"", "Layer(name: \"b\", inputs: [\"a\"]"),
        dense("out", 2, 16).replace(
            "Layer(name: \"out\"",
            "Layer(name: \"out\", inputs: [\"b\"]"
        ),
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `a`, field `inputs`: the layers form a cycle through `a`, `b`, `out`"
    );
}

#[test]
fn unreachable_layer() {
    let text = model(&format!(
        "{FLAT} {} {}",
        dense("side", 3, 16),
        dense("out", 2, 16).replace(
            "Layer(name: \"out\"",
            "Layer(name: \"out\", inputs: [\"flat\"]"
        )
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `side`: the layer's result never reaches the output (the last layer `out`)"
    );
}

#[test]
fn unknown_input_name() {
    let text = model(&format!(
        "{FLAT} {}",
        dense("fc", 2, 16).replace(
            "Layer(name: \"fc\"",
            "Layer(name: \"fc\", inputs: [\"flatt\"]"
        )
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `fc`, field `inputs`: unknown input `flatt`; known: `input` and the layers `flat`, `fc`"
    );
}

#[test]
fn absurd_sizes() {
    let text = model(&format!(
        r#"{FLAT} Layer(name: "fc", op: Dense(out_features: 4000000000)),"#
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `fc`, field `out_features`: out_features = 4000000000 is outside the supported range 1..=1048576"
    );
    let text = "Model(name: \"m\", input: Input(shape: [100000, 100000], min: 0.0, max: 1.0), layers: [Layer(name: \"f\", op: Flatten)])";
    assert_eq!(
        error("m.ron", text),
        "DIR/m.ron, field `input.shape`: input values = 10000000000 is outside the supported range 1..=16777216"
    );
    let text = model(r#"Layer(name: "c", op: Conv2d(out_channels: 0, kernel: (3, 3))),"#);
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `c`, field `out_channels`: out_channels = 0 is outside the supported range 1..=65536"
    );
    let text = model(r#"Layer(name: "p", op: SumPool2d(kernel: (2, 2), stride: (0, 1))),"#);
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `p`, field `stride`: stride height = 0 is outside the supported range 1..=1024"
    );
}

#[test]
fn other_model_errors() {
    assert_eq!(
        error("m.ron", &model("")),
        "DIR/m.ron, field `layers`: the model has no layers"
    );
    let text = model(&format!("{FLAT} {FLAT}"));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `flat`, field `name`: the name is used by more than one layer"
    );
    let text = model(&format!(
        r#"{FLAT} Layer(name: "s", op: Softmax), {}"#,
        dense("fc", 2, 16)
    ));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `s`, field `op`: Softmax is only supported as the final layer"
    );
    let text = model(r#"Layer(name: "p", op: Activation(Polynomial([0.0, 1.0, 0.5, 0.25]))),"#);
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `p`, field `op`: polynomial of degree 3: only degree ≤ 2 is supported (the circuit squares, it does not multiply two ciphertexts)"
    );
    let text = model(&format!(r#"{FLAT} Layer(name: "a", op: Add),"#));
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: layer `a`, field `inputs`: Add takes 2 input(s), got 1"
    );
    let text = "Model(name: \"m\", input: Input(shape: [2], min: 1.0, max: 0.0), layers: [Layer(name: \"f\", op: Flatten)])";
    assert_eq!(
        error("m.ron", text),
        "DIR/m.ron, field `input.min`: input.min = 1 is not allowed: must not exceed input.max"
    );
}

#[test]
fn missing_model_file() {
    let dir = scratch();
    let err = compile_path(&dir.join("none.ron"), &CompileOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("none.ron: cannot read"), "{err}");
}

#[test]
fn no_panic_on_mangled_model_files() {
    // Every truncation and many byte edits of a valid model: an error or a model, never a panic.
    let text = veil_compiler::testing::CRYPTONETS_RON.replace(
        "weights: Some(\"cryptonets-mnist-random.safetensors\"),",
        "",
    );
    let bytes = text.as_bytes();
    let dir = scratch();
    let path = dir.join("m.ron");
    for cut in (0..bytes.len()).step_by(7) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let _ = load_model(&path);
    }
    for i in (0..bytes.len()).step_by(5) {
        let mut b = bytes.to_vec();
        b[i] = b"9,)(:x\"-"[i % 8];
        std::fs::write(&path, &b).unwrap();
        let _ = load_model(&path);
    }
}

#[test]
fn ops_with_default_fields_can_be_written_bare() {
    // `BatchNorm` and `Dropout` written like `Flatten`, in RON and in JSON: the same graph as
    // with their fields spelt out.
    let bn = r#""weight": [2.0], "bias": [0.5], "running_mean": [0.1], "running_var": [4.0]"#;
    let ron = |bn_op: &str, drop_op: &str| {
        model(&format!(
            r#"Layer(name: "bn", op: {bn_op}, params: {{{bn}}}), Layer(name: "drop", op: {drop_op}), {FLAT} {}"#,
            dense("fc", 2, 16)
        ))
    };
    let json = |bn_op: &str, drop_op: &str| {
        let w = vec!["0.5"; 32].join(", ");
        format!(
            r#"{{"name": "m", "input": {{"shape": [1, 4, 4], "min": 0.0, "max": 1.0}}, "layers": [
                {{"name": "bn", "op": {bn_op}, "params": {{{bn}}}}},
                {{"name": "drop", "op": {drop_op}}},
                {{"name": "flat", "op": "Flatten"}},
                {{"name": "fc", "op": {{"Dense": {{"out_features": 2}}}}, "params": {{"weight": [{w}], "bias": [0.1, 0.1]}}}}
            ]}}"#
        )
    };
    let load = |name: &str, text: &str| {
        let dir = scratch();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        load_model(&path).unwrap().to_text()
    };
    let spelt = load("m.ron", &ron("BatchNorm(eps: 1e-5)", "Dropout(p: 0.5)"));
    assert_eq!(load("m.ron", &ron("BatchNorm", "Dropout")), spelt);
    assert_eq!(load("m.json", &json("\"BatchNorm\"", "\"Dropout\"")), spelt);
    assert_eq!(
        load("m.json", &json("{\"BatchNorm\": {}}", "{\"Dropout\": {}}")),
        spelt
    );
}

#[test]
fn a_bare_op_that_needs_fields_shows_how_to_write_it() {
    let text = model(r#"Layer(name: "fc", op: Dense),"#);
    assert_eq!(
        error("m.ron", &text),
        "DIR/m.ron: line 1, column 106: `Dense` cannot be written bare: missing field `out_features`; write it with its fields, e.g. `Dense(out_features: …)` in RON or `{\"Dense\": {\"out_features\": …}}` in JSON"
    );
}

/// Compiles `text` as `m.ron` and returns the error message with the directory replaced.
fn compile_error(text: &str) -> String {
    let dir = scratch();
    let path = dir.join("m.ron");
    std::fs::write(&path, text).unwrap();
    let msg = compile_path(&path, &CompileOptions::default())
        .unwrap_err()
        .to_string();
    msg.replace(&dir.display().to_string(), "DIR")
}

#[test]
fn an_output_that_ignores_the_input_names_the_layer() {
    // Used to fail as "internal error: the emitted plan is invalid" (an input register of
    // length 0).
    let input = r#"input: Input(shape: [2], min: 0.0, max: 1.0)"#;
    let zero = format!(
        r#"Model(name: "m", {input}, layers: [
            Layer(name: "fc", op: Dense(out_features: 2), params: {{"weight": [0, 0, 0, 0], "bias": [0.5, 0.25]}}),
        ])"#
    );
    assert_eq!(
        compile_error(&zero),
        "layer `fc`: the output does not depend on the input: every weight that reads the input is zero after quantisation, so the plan would give every input the same scores; check the weights of that layer"
    );
    // Zero weights before a square: the later layer reads only a constant.
    let zero_first = format!(
        r#"Model(name: "m", {input}, layers: [
            Layer(name: "fc1", op: Dense(out_features: 2), params: {{"weight": [0, 0, 0, 0], "bias": [0.5, 0.25]}}),
            Layer(name: "sq", op: Activation(Square)),
            Layer(name: "fc2", op: Dense(out_features: 2), params: {{"weight": [1, 2, 3, 4], "bias": [0, 0]}}),
        ])"#
    );
    assert!(
        compile_error(&zero_first).starts_with("layer `fc1`: the output does not depend"),
        "{}",
        compile_error(&zero_first)
    );
    // Two layers whose weights cancel once fused: the fused layer is named.
    let cancelling = format!(
        r#"Model(name: "m", {input}, layers: [
            Layer(name: "fc1", op: Dense(out_features: 2), params: {{"weight": [1, 1, 1, 1], "bias": [0, 0]}}),
            Layer(name: "fc2", op: Dense(out_features: 2), params: {{"weight": [1, -1, 2, -2], "bias": [0.5, 0]}}),
        ])"#
    );
    assert!(
        compile_error(&cancelling).starts_with("layer `fc1+fc2`: the output does not depend"),
        "{}",
        compile_error(&cancelling)
    );
}
