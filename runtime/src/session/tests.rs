//! The session API on a toy plan (insecure parameters): round trips, the input rule, shapes,
//! and hostile batch bytes.

use super::*;
use crate::exec::NoProgress;
use crate::math::ntt_primes;
use crate::plan::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Two raw inputs in [0, 10] per image, one score `3·x0 − x1 + 1`, n = 1024.
fn toy_context() -> Context {
    let n = 1024;
    let q = ntt_primes(50, n, 3, &[]).unwrap();
    let register = |name: &str, len: usize, value_bits: f64| RegisterInfo {
        name: name.into(),
        len,
        value_bits,
        depth: 0,
        level: 2,
        ct_size: 2,
        noise_budget_bits: 20.0,
        calibrated_value_bits: None,
    };
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        model: "toy".into(),
        params: PlanParams {
            degree: n,
            q_primes: q[..2].to_vec(),
            special_primes: vec![q[2]],
            plain_primes: vec![65537],
            security_bits: 0,
        },
        input: InputEncoding {
            register: 0,
            shape: vec![2],
            raw_min: 0.0,
            raw_max: 10.0,
            scale: 1.0,
            max_abs: 10,
            features: vec![0, 1],
        },
        registers: vec![register("input", 2, 3.4), register("fc", 1, 5.0)],
        steps: vec![Step::Linear {
            name: "fc".into(),
            inputs: vec![0],
            output: 1,
            matrix: IntMatrix {
                rows: 1,
                cols: 2,
                row_ptr: vec![0, 2],
                col_idx: vec![0, 1],
                values: vec![3, -1],
            },
            bias: vec![1],
        }],
        output: OutputDecoding {
            register: 1,
            scale: 1.0,
            class_names: vec![],
        },
        depth: 0,
        predicted_noise_budget_bits: 20.0,
        calibration: None,
    };
    Context::new(plan).unwrap()
}

#[test]
fn two_chunks_round_trip_through_the_wire_format_and_match_the_reference() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let keys = context.keygen(&mut rng);
    let images = context.slots() + 3;
    let raw: Vec<f32> = (0..images * 2).map(|i| (i % 11) as f32).collect();
    let (batch, clamped) = context
        .encrypt(EncryptionKey::Public(&keys.public), &raw, &mut rng, &|_| {})
        .unwrap();
    assert_eq!((batch.images, batch.chunks.len(), clamped), (images, 2, 0));
    let bytes = context
        .batch_to_bytes(ContainerKind::Batch, &batch)
        .unwrap();
    assert_eq!(bytes.len(), encoded_len(&batch));
    let batch = context
        .batch_from_bytes(ContainerKind::Batch, &bytes)
        .unwrap();
    let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    let decrypted = context.decrypt(&keys.client, &result).unwrap();
    assert_eq!(decrypted.scores, context.reference(&raw).unwrap());
    assert!(decrypted.min_noise_budget_bits > 0);
}

#[test]
fn out_of_range_inputs_are_clamped_and_counted() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let keys = context.keygen(&mut rng);
    let raw = [12.0f32, -3.0, 5.0, 5.0];
    let (batch, clamped) = context
        .encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})
        .unwrap();
    assert_eq!(clamped, 2);
    let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    let scores = context.decrypt(&keys.client, &result).unwrap().scores;
    // 12 → 10 and −3 → 0: 3·10 − 0 + 1; the second image is inside the range.
    assert_eq!(scores, vec![vec![31], vec![11]]);
    assert_eq!(scores, context.reference(&raw).unwrap());
}

#[test]
fn inputs_that_are_not_whole_images_or_not_finite_are_refused() {
    let context = toy_context();
    let err = context.reference(&[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "3 raw values are not a whole number of images of 2 values"
    );
    let err = context
        .reference(&[1.0, 2.0, f32::INFINITY, 0.0])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "image 1: value 0 is inf, not a finite number"
    );
}

#[test]
fn a_batch_of_another_shape_is_refused_before_evaluation() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let keys = context.keygen(&mut rng);
    let (mut batch, _) = context
        .encrypt(
            EncryptionKey::Client(&keys.client),
            &[1.0, 2.0],
            &mut rng,
            &|_| {},
        )
        .unwrap();
    batch.chunks[0][0].pop();
    let err = context.eval(&keys.server, batch, &NoProgress).unwrap_err();
    assert!(matches!(err, SessionError::BatchShape { .. }), "{err}");
}

#[test]
fn a_result_decrypted_under_another_key_set_is_refused_by_its_id() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let keys = context.keygen(&mut rng);
    let other = context.keygen(&mut rng);
    assert_ne!(keys.id(), other.id());
    let raw: Vec<f32> = (0..64).map(|i| (i % 11) as f32).collect();
    let (batch, _) = context
        .encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})
        .unwrap();
    assert_eq!(batch.key_set, keys.id());
    let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    let err = context.decrypt(&other.client, &result).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the result was made under key set {}, but the key given belongs to key set {}: \
             use the keys from the `veil keygen` run that encrypted it",
            keys.id(),
            other.id()
        )
    );
}

#[test]
fn a_result_whose_id_was_forged_still_fails_the_score_bound() {
    // Ids are not authenticators: relabelled values fall back on the score-bound check.
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let keys = context.keygen(&mut rng);
    let other = context.keygen(&mut rng);
    let raw: Vec<f32> = (0..64).map(|i| (i % 11) as f32).collect();
    let (batch, _) = context
        .encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})
        .unwrap();
    let mut result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    result.key_set = other.id();
    let err = context.decrypt(&other.client, &result).unwrap_err();
    assert!(
        matches!(err, SessionError::ScoresOutOfBound { .. }),
        "{err}"
    );
}

/// A calibrated plan's primes cover only the calibrated bound: scores beyond it are refused
/// (they may have wrapped), where the guaranteed bound alone would let them through.
#[test]
fn a_calibrated_plan_checks_scores_against_its_calibrated_bound() {
    let mut plan = toy_context().plan().clone();
    // x0 = 10, x1 = 0 scores 31: within the guaranteed 2^5, beyond a calibrated 2^4.
    plan.registers[1].calibrated_value_bits = Some(4.0);
    let context = Context::new(plan).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let keys = context.keygen(&mut rng);
    let run = |raw: &[f32], rng: &mut ChaCha20Rng| {
        let (batch, _) = context
            .encrypt(EncryptionKey::Client(&keys.client), raw, rng, &|_| {})
            .unwrap();
        let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
        context.decrypt(&keys.client, &result)
    };
    assert_eq!(run(&[3.0, 2.0], &mut rng).unwrap().scores, vec![vec![8]]);
    let err = run(&[10.0, 0.0], &mut rng).unwrap_err();
    assert!(
        matches!(err, SessionError::ScoresOutOfBound { outside: 1, .. }),
        "{err}"
    );
}

#[test]
fn a_batch_under_another_key_set_is_refused_before_evaluation() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let keys = context.keygen(&mut rng);
    let other = context.keygen(&mut rng);
    let (batch, _) = context
        .encrypt(
            EncryptionKey::Public(&keys.public),
            &[1.0, 2.0],
            &mut rng,
            &|_| {},
        )
        .unwrap();
    let err = context.eval(&other.server, batch, &NoProgress).unwrap_err();
    assert!(
        matches!(err, SessionError::KeySetMismatch { what: "batch", .. }),
        "{err}"
    );
}

/// A small real batch in the container format.
fn batch_bytes(kind: ContainerKind) -> Vec<u8> {
    static BYTES: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let (batch, result) = BYTES.get_or_init(|| {
        let context = toy_context();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keys = context.keygen(&mut rng);
        let (batch, _) = context
            .encrypt(
                EncryptionKey::Client(&keys.client),
                &[1.0, 2.0],
                &mut rng,
                &|_| {},
            )
            .unwrap();
        let batch_bytes = context
            .batch_to_bytes(ContainerKind::Batch, &batch)
            .unwrap();
        let result = context.eval(&keys.server, batch, &NoProgress).unwrap();
        let result_bytes = context
            .batch_to_bytes(ContainerKind::Result, &result)
            .unwrap();
        (batch_bytes, result_bytes)
    });
    match kind {
        ContainerKind::Batch => batch.clone(),
        ContainerKind::Result => result.clone(),
    }
}

#[test]
fn damaged_batches_and_results_are_clear_errors_never_panics() {
    let context = toy_context();
    for kind in [ContainerKind::Batch, ContainerKind::Result] {
        let bytes = batch_bytes(kind);
        let back = context.read_batch(kind, bytes.as_slice()).unwrap();
        assert_eq!(context.batch_to_bytes(kind, &back).unwrap(), bytes);
        // Truncated at many offsets, from the stream reader and from memory.
        let step = (bytes.len() / 300).max(1);
        for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
            let err = context.read_batch(kind, &bytes[..cut]).unwrap_err();
            assert!(!err.to_string().is_empty());
            assert!(context.batch_from_bytes(kind, &bytes[..cut]).is_err());
        }
        // A flipped bit anywhere after the magic and version is a checksum error.
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        for _ in 0..200 {
            let at = 12 + (rand::RngCore::next_u64(&mut rng) as usize) % (bytes.len() - 12);
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (at % 8);
            let err = context.read_batch(kind, flipped.as_slice()).unwrap_err();
            assert!(
                matches!(err, ContainerError::Checksum { .. }),
                "byte {at}: {err}"
            );
        }
        // Endless bytes after a valid header stop at the size the header allows.
        let endless = bytes[..HEADER_LEN]
            .iter()
            .copied()
            .chain(std::iter::repeat(0));
        let err = context.read_batch(kind, IterReader(endless)).unwrap_err();
        assert!(matches!(err, ContainerError::TooLarge { .. }), "{err}");
    }
}

/// A reader over an iterator of bytes.
struct IterReader<I>(I);

impl<I: Iterator<Item = u8>> std::io::Read for IterReader<I> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            match self.0.next() {
                Some(b) => *slot = b,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

#[test]
fn a_header_declaring_billions_of_chunks_is_an_error_not_an_allocation() {
    let context = toy_context();
    let chunks = u32::MAX;
    let header = Header {
        kind: ContainerKind::Batch,
        key_set: crate::bfv::KeyId::from_bytes([1; 16]),
        plan_fingerprint: context.fingerprint(),
        images: u64::from(chunks) * context.slots() as u64,
        slots: context.slots() as u32,
        chunks,
        primes: 1,
        values: 2,
    };
    let mut bytes = Vec::new();
    header.write(&mut bytes).unwrap();
    assert_eq!(bytes.len(), HEADER_LEN);
    let sum = crate::math::fnv1a(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    let err = context
        .batch_from_bytes(ContainerKind::Batch, &bytes)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the header declares {} images in 4294967295 chunks, 8589934590 ciphertexts, but \
             only 0 bytes follow it",
            header.images
        )
    );
    let err = context
        .read_batch(ContainerKind::Batch, bytes.as_slice())
        .unwrap_err();
    assert!(err.to_string().starts_with("the header declares"), "{err}");
}
