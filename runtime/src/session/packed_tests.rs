//! The session API on a packed toy plan (insecure parameters): many images per ciphertext,
//! exact scores, Galois keys that travel with the evaluation key and are checked on reading.

use super::*;
use crate::exec::NoProgress;
use crate::math::ntt_primes;
use crate::plan::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn dense(rows: usize, cols: usize, f: impl Fn(usize, usize) -> i64) -> IntMatrix {
    let mut m = IntMatrix {
        rows,
        cols,
        row_ptr: vec![0],
        col_idx: vec![],
        values: vec![],
    };
    for r in 0..rows {
        for c in 0..cols {
            let w = f(r, c);
            if w != 0 {
                m.col_idx.push(c as u32);
                m.values.push(w);
            }
        }
        m.row_ptr.push(m.values.len());
    }
    m
}

/// Six raw inputs in [0, 7]; a folded 6→4 map, a square, and an unfolded 4→2 map; lanes of 16
/// slots, so a ciphertext of n = 1024 holds 64 images.
pub(super) fn packed_toy_plan() -> Plan {
    let n = 1024;
    let q = ntt_primes(50, n, 4, &[]).unwrap();
    let register = |name: &str, len: usize, value_bits: f64, depth: u32| RegisterInfo {
        name: name.into(),
        len,
        value_bits,
        depth,
        level: 3,
        ct_size: 2,
        noise_budget_bits: 10.0,
        calibrated_value_bits: None,
    };
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        model: "packed toy".into(),
        params: PlanParams {
            degree: n,
            q_primes: q[..3].to_vec(),
            special_primes: vec![q[3]],
            plain_primes: vec![65537, 40961],
            security_bits: 0,
            scheme: Default::default(),
        },
        input: InputEncoding {
            register: 0,
            shape: vec![6],
            raw_min: 0.0,
            raw_max: 7.0,
            scale: 1.0,
            max_abs: 7,
            features: (0..6).collect(),
        },
        registers: vec![
            register("input", 6, 3.0, 0),
            register("fc1", 4, 9.0, 0),
            register("act", 4, 18.0, 1),
            register("fc2", 2, 22.0, 1),
        ],
        steps: vec![
            Step::Linear {
                name: "fc1".into(),
                inputs: vec![0],
                output: 1,
                matrix: dense(4, 6, |r, c| ((r * 5 + c * 3) % 7) as i64 - 3),
                bias: vec![1, -2, 0, 5],
            },
            Step::Square {
                name: "act".into(),
                input: 1,
                output: 2,
            },
            Step::Relinearize { register: 2 },
            Step::Linear {
                name: "fc2".into(),
                inputs: vec![2],
                output: 3,
                matrix: dense(2, 4, |r, c| (r as i64 + 1) * (c as i64 - 1)),
                bias: vec![-7, 3],
            },
        ],
        output: OutputDecoding {
            register: 3,
            scale: 1.0,
            class_names: vec![],
        },
        depth: 1,
        predicted_noise_budget_bits: 10.0,
        compression: Default::default(),
        calibration: None,
        packing: Some(Packing {
            lane: 16,
            layouts: vec![
                (8..14).collect(),
                (0..4).collect(),
                (0..4).collect(),
                vec![5, 9],
            ],
            linears: vec![
                LinearPacking {
                    fold_stride: 4,
                    fold_parts: 4,
                    baby_steps: 2,
                    outer_steps: 0,
                },
                LinearPacking {
                    fold_stride: 0,
                    fold_parts: 1,
                    baby_steps: 2,
                    outer_steps: 0,
                },
            ],
        }),
    }
}

#[test]
fn packed_images_decrypt_to_the_reference_across_chunks() {
    let context = Context::new(packed_toy_plan()).unwrap();
    assert_eq!(context.slots(), 64);
    assert_eq!(
        (context.input_ciphertexts(), context.output_ciphertexts()),
        (1, 1)
    );
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = context.keygen(&mut rng).unwrap();
    let images = 64 + 5;
    let raw: Vec<f32> = (0..images * 6).map(|i| ((i * 7) % 8) as f32).collect();
    let (batch, _) = context
        .encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})
        .unwrap();
    assert_eq!(batch.chunks.len(), 2);
    let bytes = context
        .batch_to_bytes(ContainerKind::Batch, &batch)
        .unwrap();
    let batch = context
        .batch_from_bytes(ContainerKind::Batch, &bytes)
        .unwrap();
    let server = ServerKey::from_bytes(&context, &keys.server.to_bytes()).unwrap();
    let result = context.eval(&server, batch, &NoProgress).unwrap();
    let decrypted = context.decrypt(&keys.client, &result).unwrap();
    assert_eq!(decrypted.scores, context.reference(&raw).unwrap());
    assert!(decrypted.min_noise_budget_bits > 0);
}

/// The toy plan with the square switched down a level before the second map.
fn switched_toy_plan() -> Plan {
    let mut plan = packed_toy_plan();
    plan.steps.insert(
        3,
        Step::ModSwitch {
            register: 2,
            level: 2,
        },
    );
    for r in [2, 3] {
        plan.registers[r].level = 2;
    }
    plan
}

/// The switched toy plan with a three-level rotation split in both maps.
fn three_level_toy_plan() -> Plan {
    let mut plan = switched_toy_plan();
    if let Some(p) = plan.packing.as_mut() {
        p.linears[0].baby_steps = 1;
        p.linears[0].outer_steps = 2;
        p.linears[1].outer_steps = 4;
    }
    plan
}

#[test]
fn prepared_and_fresh_diagonals_give_the_same_ciphertexts_at_every_level() {
    for plan in [
        packed_toy_plan(),
        switched_toy_plan(),
        three_level_toy_plan(),
    ] {
        let context = Context::new(plan.clone()).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let keys = context.keygen(&mut rng).unwrap();
        let raw: Vec<f32> = (0..3 * 6).map(|i| (i % 8) as f32).collect();
        let encrypt = |rng: &mut ChaCha20Rng| {
            context
                .encrypt(EncryptionKey::Public(&keys.public), &raw, rng, &|_| {})
                .unwrap()
                .0
        };
        let params = &context.params()[0];
        let relin = keys.server.bfv().unwrap();
        let galois = keys.server.galois().unwrap();
        let scheme = || crate::exec::BfvPacked::new(params, relin, galois);
        let fresh = crate::exec::PackedBackend::new(&plan, params, scheme()).unwrap();
        let prepared = Arc::new(crate::exec::PreparedDiagonals::new(&plan, params).unwrap());
        let ready = crate::exec::PackedBackend::new(&plan, params, scheme())
            .unwrap()
            .with_prepared(prepared);
        let batch = encrypt(&mut rng);
        let input = batch.chunks[0].values[0][0].clone().into_bfv().unwrap();
        let a = crate::exec::run_plan(&plan, &fresh, vec![input.clone()], &NoProgress).unwrap();
        let b = crate::exec::run_plan(&plan, &ready, vec![input], &NoProgress).unwrap();
        assert_eq!(a, b);
        let result = context
            .eval(&keys.server, encrypt(&mut rng), &NoProgress)
            .unwrap();
        let scores = context.decrypt(&keys.client, &result).unwrap().scores;
        assert_eq!(scores, context.reference(&raw).unwrap());
    }
}

#[test]
fn packed_evaluation_keys_must_hold_exactly_the_plans_rotations() {
    let context = Context::new(packed_toy_plan()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let keys = context.keygen(&mut rng).unwrap();
    let needed = context
        .plan()
        .packing
        .as_ref()
        .unwrap()
        .galois_elements(context.plan())
        .unwrap();
    assert_eq!(keys.server.galois().unwrap().elements(), needed);
    let bytes = keys.server.to_bytes();
    assert_eq!(&bytes[..4], MAGIC_PACKED_EVAL_KEYS);
    for cut in [3, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            ServerKey::from_bytes(&context, &bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    // A relinearisation key alone is not enough for a packed plan.
    let relin_only = ServerKey::from(crate::bfv::RelinKey::new(keys.client.secret(), &mut rng));
    assert!(ServerKey::from_bytes(&context, &relin_only.to_bytes()).is_err());
    let (batch, _) = context
        .encrypt(
            EncryptionKey::Client(&keys.client),
            &[1.0; 6],
            &mut rng,
            &|_| {},
        )
        .unwrap();
    let err = context.eval(&relin_only, batch, &NoProgress).unwrap_err();
    assert!(matches!(err, SessionError::MissingGaloisKeys), "{err}");
}

#[test]
fn packed_bgv_plans_decrypt_to_the_reference_with_keys_read_back() {
    for mut plan in [
        packed_toy_plan(),
        switched_toy_plan(),
        three_level_toy_plan(),
    ] {
        plan.params.scheme = Scheme::Bgv;
        let context = Context::new(plan).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let keys = context.keygen(&mut rng).unwrap();
        let bytes = keys.server.to_bytes();
        assert_eq!(&bytes[..4], MAGIC_PACKED_EVAL_KEYS);
        let server = ServerKey::from_bytes(&context, &bytes).unwrap();
        assert_eq!(server.galois_count(), keys.server.galois_count());
        assert!(ServerKey::from_bytes(&context, &bytes[..bytes.len() - 3]).is_err());
        let raw: Vec<f32> = (0..70 * 6).map(|i| ((i * 5) % 8) as f32).collect();
        for key in [
            EncryptionKey::Client(&keys.client),
            EncryptionKey::Public(&keys.public),
        ] {
            let (batch, _) = context.encrypt(key, &raw, &mut rng, &|_| {}).unwrap();
            let result = context.eval(&server, batch, &NoProgress).unwrap();
            let decrypted = context.decrypt(&keys.client, &result).unwrap();
            assert_eq!(decrypted.scores, context.reference(&raw).unwrap());
            assert!(decrypted.min_noise_budget_bits > 0);
        }
    }
}

#[test]
fn a_fold_may_not_reach_the_output_even_through_a_square() {
    // The folded first map, squared, as the output: its unnamed slots would carry partial sums
    // of the weights to the client.
    let mut plan = packed_toy_plan();
    plan.steps.truncate(3);
    plan.registers.truncate(3);
    plan.output.register = 2;
    plan.depth = 1;
    if let Some(p) = plan.packing.as_mut() {
        p.linears.truncate(1);
        p.layouts.truncate(3);
    }
    let err = plan.validate().unwrap_err().to_string();
    assert!(err.contains("fold's partial sums"), "{err}");
}

#[test]
fn a_plan_whose_rotations_need_terabytes_of_keys_is_refused_before_keygen() {
    // One output reading 16,384 inputs, every weight with its own rotation and no baby steps:
    // 16,383 Galois keys of tens of MB each at n = 32768.
    let n = 32768;
    let q = ntt_primes(50, n, 17, &[]).unwrap();
    let mut plan = packed_toy_plan();
    let len = 16384;
    plan.params.degree = n;
    plan.params.q_primes = q[..16].to_vec();
    plan.params.special_primes = vec![q[16]];
    plan.params.plain_primes = ntt_primes(20, n, 1, &q).unwrap();
    plan.input.shape = vec![len];
    plan.input.features = (0..len).collect();
    plan.steps = vec![Step::Linear {
        name: "wide".into(),
        inputs: vec![0],
        output: 1,
        matrix: dense(1, len, |_, _| 1),
        bias: vec![0],
    }];
    plan.registers.truncate(2);
    plan.registers[0].len = len;
    plan.registers[1].len = 1;
    plan.registers[1].value_bits = 17.0;
    plan.depth = 0;
    for r in &mut plan.registers {
        r.level = 16;
        r.depth = 0;
    }
    plan.output.register = 1;
    plan.packing = Some(Packing {
        lane: len,
        layouts: vec![(0..len as u32).collect(), vec![0]],
        linears: vec![LinearPacking {
            fold_stride: 0,
            fold_parts: 1,
            baby_steps: 1,
            outer_steps: 0,
        }],
    });
    plan.validate().unwrap();
    let err = Context::new(plan).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::PackedTooLarge {
                what: "evaluation keys",
                ..
            }
        ),
        "{err}"
    );
}

/// Rounded uploads and results in the packed layout, both schemes: exact scores, fewer bytes.
#[test]
fn packed_plans_with_rounding_decrypt_to_the_reference() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        for plan in [packed_toy_plan(), switched_toy_plan()] {
            let mut rounded = plan.clone();
            rounded.params.scheme = scheme;
            let out = &rounded.registers[rounded.output.register];
            let mut download_bits = vec![12; out.ct_size];
            download_bits[0] = 20;
            rounded.compression = Compression {
                upload_bits: 24,
                download_bits,
            };
            let mut whole = plan;
            whole.params.scheme = scheme;
            let mut sizes = Vec::new();
            for plan in [whole, rounded] {
                let context = Context::new(plan).unwrap();
                let mut rng = ChaCha20Rng::seed_from_u64(13);
                let keys = context.keygen(&mut rng).unwrap();
                let raw: Vec<f32> = (0..70 * 6).map(|i| ((i * 3) % 8) as f32).collect();
                let key = EncryptionKey::Client(&keys.client);
                let (batch, _) = context.encrypt(key, &raw, &mut rng, &|_| {}).unwrap();
                let up = context
                    .batch_to_bytes(ContainerKind::Batch, &batch)
                    .unwrap();
                let batch = context.batch_from_bytes(ContainerKind::Batch, &up).unwrap();
                let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
                let down = context
                    .batch_to_bytes(ContainerKind::Result, &result)
                    .unwrap();
                let result = context
                    .batch_from_bytes(ContainerKind::Result, &down)
                    .unwrap();
                let decrypted = context.decrypt(&keys.client, &result).unwrap();
                assert_eq!(decrypted.scores, context.reference(&raw).unwrap());
                sizes.push((up.len(), down.len()));
            }
            assert!(
                sizes[1].0 < sizes[0].0 && sizes[1].1 < sizes[0].1,
                "{scheme:?}: {sizes:?}"
            );
        }
    }
}
