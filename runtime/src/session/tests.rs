//! The session API on a toy plan (insecure parameters): round trips, the input rule, shapes,
//! and hostile batch bytes.

use super::*;
use crate::exec::NoProgress;
use crate::math::ntt_primes;
use crate::plan::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::ops::Range;

/// Two raw inputs in [0, 10] per image, one score `3·x0 − x1 + 1`, n = 1024.
fn toy_context() -> Context {
    Context::new(toy_plan(&[3, -1])).unwrap()
}

/// One raw input in [0, 10] per weight, one score `Σ w_i·x_i + 1`, n = 1024 (insecure).
fn toy_plan(weights: &[i64]) -> Plan {
    let inputs = weights.len();
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
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        model: "toy".into(),
        params: PlanParams {
            degree: n,
            q_primes: q[..2].to_vec(),
            special_primes: vec![q[2]],
            plain_primes: vec![65537],
            security_bits: 0,
            scheme: Default::default(),
        },
        input: InputEncoding {
            register: 0,
            shape: vec![inputs],
            raw_min: 0.0,
            raw_max: 10.0,
            scale: 1.0,
            max_abs: 10,
            features: (0..inputs).collect(),
        },
        registers: vec![
            register("input", inputs, 3.4),
            register(
                "fc",
                1,
                (10.0 * weights.iter().map(|w| w.abs()).sum::<i64>() as f64 + 1.0).log2(),
            ),
        ],
        steps: vec![Step::Linear {
            name: "fc".into(),
            inputs: vec![0],
            output: 1,
            matrix: IntMatrix {
                rows: 1,
                cols: inputs,
                row_ptr: vec![0, inputs],
                col_idx: (0..inputs as u32).collect(),
                values: weights.to_vec(),
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
        compression: Default::default(),
        calibration: None,
        packing: None,
    }
}

#[test]
fn two_chunks_round_trip_through_the_wire_format_and_match_the_reference() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let keys = context.keygen(&mut rng).unwrap();
    let images = context.slots() + 3;
    let raw: Vec<f32> = (0..images * 2).map(|i| (i % 11) as f32).collect();
    let (batch, clamped) = context
        .encrypt(EncryptionKey::Public(&keys.public), &raw, &mut rng, &|_| {})
        .unwrap();
    assert_eq!(
        (batch.info.images, batch.chunks.len(), clamped),
        (images, 2, 0)
    );
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
    let keys = context.keygen(&mut rng).unwrap();
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
    let keys = context.keygen(&mut rng).unwrap();
    let (mut batch, _) = context
        .encrypt(
            EncryptionKey::Client(&keys.client),
            &[1.0, 2.0],
            &mut rng,
            &|_| {},
        )
        .unwrap();
    batch.chunks[0].values[0].pop();
    let err = context.eval(&keys.server, batch, &NoProgress).unwrap_err();
    assert!(matches!(err, SessionError::BatchShape { .. }), "{err}");
}

#[test]
fn a_result_decrypted_under_another_key_set_is_refused_by_its_id() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let keys = context.keygen(&mut rng).unwrap();
    let other = context.keygen(&mut rng).unwrap();
    assert_ne!(keys.id(), other.id());
    let raw: Vec<f32> = (0..64).map(|i| (i % 11) as f32).collect();
    let (batch, _) = context
        .encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})
        .unwrap();
    assert_eq!(batch.info.key_set, keys.id());
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
    let keys = context.keygen(&mut rng).unwrap();
    let other = context.keygen(&mut rng).unwrap();
    let raw: Vec<f32> = (0..64).map(|i| (i % 11) as f32).collect();
    let (batch, _) = context
        .encrypt(EncryptionKey::Client(&keys.client), &raw, &mut rng, &|_| {})
        .unwrap();
    let mut result = context.eval(&keys.server, batch, &NoProgress).unwrap();
    result.info.key_set = other.id();
    for chunk in &mut result.chunks {
        chunk.batch.key_set = other.id();
    }
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
    let keys = context.keygen(&mut rng).unwrap();
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
    let keys = context.keygen(&mut rng).unwrap();
    let other = context.keygen(&mut rng).unwrap();
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
        let keys = context.keygen(&mut rng).unwrap();
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
        // A flipped bit anywhere after the magic and version is caught before the chunk it
        // falls in is used: mostly as a checksum error; in a record's length field, as a
        // length beyond what the plan allows or the file holds.
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let mut checksums = 0;
        for _ in 0..200 {
            let at = 12 + (rand::RngCore::next_u64(&mut rng) as usize) % (bytes.len() - 12);
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (at % 8);
            let err = context.read_batch(kind, flipped.as_slice()).unwrap_err();
            checksums += usize::from(matches!(err, ContainerError::Checksum { .. }));
            assert!(
                matches!(
                    err,
                    ContainerError::Checksum { .. }
                        | ContainerError::ChunkTooLarge { .. }
                        | ContainerError::Truncated { .. }
                ),
                "byte {at}: {err}"
            );
        }
        assert!(
            checksums > 190,
            "{checksums} of 200 flips were checksum errors"
        );
        // Endless bytes after a valid header: the first record fails its checksum.
        let endless = bytes[..HEADER_LEN]
            .iter()
            .copied()
            .chain(std::iter::repeat(0));
        let err = context.read_batch(kind, IterReader(endless)).unwrap_err();
        assert!(matches!(err, ContainerError::Checksum { .. }), "{err}");
        // A byte after the last record.
        let mut longer = bytes.clone();
        longer.push(0);
        let err = context.read_batch(kind, longer.as_slice()).unwrap_err();
        assert!(matches!(err, ContainerError::Trailing { .. }), "{err}");
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
        batch: BatchInfo {
            key_set: crate::bfv::KeyId::from_bytes([1; 16]),
            id: BatchId::from_bytes([2; 16]),
            images: chunks as usize * context.slots(),
        },
        plan_fingerprint: context.fingerprint(),
        slots: context.slots() as u32,
        chunks,
        primes: 1,
        values: 2,
        first: 0,
        held: chunks,
    };
    let bytes = header.to_bytes();
    assert_eq!(bytes.len(), HEADER_LEN);
    let err = context
        .batch_from_bytes(ContainerKind::Batch, &bytes)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the file is truncated: it ends inside the record of chunk 0 (at byte 92)"
    );
}

/// `count` images of the toy plan, image `i` being `(i % 11, (3i) % 11)`.
fn toy_raw(images: Range<usize>) -> Vec<f32> {
    images
        .flat_map(|i| [(i % 11) as f32, ((3 * i) % 11) as f32])
        .collect()
}

#[test]
fn chunks_stream_through_files_and_shards_join_into_the_whole_batch() {
    let context = toy_context();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let keys = context.keygen(&mut rng).unwrap();
    let key = EncryptionKey::Client(&keys.client);
    let images = 4 * context.slots() + 5;
    let info = context.new_batch(key, images, &mut rng).unwrap();
    assert_eq!(context.chunks_for(images), 5);
    // Encrypt chunk by chunk into one file.
    let mut writer = context
        .chunk_writer(ContainerKind::Batch, &info, 0..5, Vec::new())
        .unwrap();
    for index in 0..5 {
        let raw = toy_raw(context.chunk_images(&info, index));
        let (chunk, _) = context
            .encrypt_chunk(key, &info, index, &raw, &mut rng, &|_| {})
            .unwrap();
        writer.write_chunk(&chunk).unwrap();
    }
    let (batch_file, written) = writer.finish().unwrap();
    assert_eq!(written as usize, batch_file.len());
    // Three shards evaluate chunks 3..5, 0..1 and 1..3, each skipping to its first chunk.
    let mut parts = Vec::new();
    for range in [3..5, 0..1, 1..3] {
        let mut reader = context
            .chunk_reader(ContainerKind::Batch, std::io::Cursor::new(&batch_file))
            .unwrap();
        reader.skip_to(range.start).unwrap();
        let mut writer = context
            .chunk_writer(ContainerKind::Result, &info, range.clone(), Vec::new())
            .unwrap();
        for _ in range.clone() {
            let chunk = reader.next_chunk().unwrap().unwrap();
            let result = context
                .eval_chunk(&keys.server, chunk, &NoProgress)
                .unwrap();
            writer.write_chunk(&result).unwrap();
        }
        let part = writer.finish().unwrap().0;
        let header = *context
            .chunk_reader(ContainerKind::Result, part.as_slice())
            .unwrap()
            .header();
        assert_eq!(header.chunk_range(), range);
        parts.push((format!("{range:?}"), header, part));
    }
    let headers: Vec<(String, Header)> = parts.iter().map(|(n, h, _)| (n.clone(), *h)).collect();
    let order = assemble(&headers).unwrap();
    assert_eq!(order, vec![1, 2, 0]);
    let mut scores = Vec::new();
    for i in order {
        let mut reader = context
            .chunk_reader(ContainerKind::Result, parts[i].2.as_slice())
            .unwrap();
        for chunk in reader.by_ref() {
            scores.extend(
                context
                    .decrypt_chunk(&keys.client, &chunk.unwrap())
                    .unwrap()
                    .scores,
            );
        }
        reader.finish().unwrap();
    }
    assert_eq!(scores, context.reference(&toy_raw(0..images)).unwrap());
    // A whole-batch read refuses a part; a record spliced from another batch fails its
    // checksum, as a chunk of the right batch at the wrong place fails its index.
    let err = context
        .read_batch(ContainerKind::Result, parts[0].2.as_slice())
        .unwrap_err();
    assert!(err.to_string().contains("not the whole batch"), "{err}");
    let other = context.new_batch(key, images, &mut rng).unwrap();
    let raw = toy_raw(context.chunk_images(&other, 0));
    let (stranger, _) = context
        .encrypt_chunk(key, &other, 0, &raw, &mut rng, &|_| {})
        .unwrap();
    let mut writer = context
        .chunk_writer(ContainerKind::Batch, &other, 0..1, Vec::new())
        .unwrap();
    writer.write_chunk(&stranger).unwrap();
    let stranger_file = writer.finish().unwrap().0;
    let mut spliced = batch_file[..HEADER_LEN].to_vec();
    spliced.extend_from_slice(&stranger_file[HEADER_LEN..]);
    let err = context
        .chunk_reader(ContainerKind::Batch, spliced.as_slice())
        .unwrap()
        .next_chunk()
        .unwrap_err();
    assert!(matches!(err, ContainerError::Checksum { .. }), "{err}");
    // The writer takes chunks only in order, of its batch, and all of them.
    let mut writer = context
        .chunk_writer(ContainerKind::Batch, &info, 0..2, Vec::new())
        .unwrap();
    assert!(writer.write_chunk(&stranger).is_err());
    assert!(writer.finish().is_err());
    // Chunk arguments are checked.
    let err = context
        .encrypt_chunk(key, &info, 5, &[], &mut rng, &|_| {})
        .unwrap_err();
    assert!(matches!(err, SessionError::ChunkLength { .. }), "{err}");
    let err = context
        .encrypt_chunk(key, &info, 4, &[1.0; 4], &mut rng, &|_| {})
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "chunk 4 of 5 needs 10 raw values (its images' values), but 4 were given"
    );
}

/// The environment variable that makes [`streaming_job_in_a_child`] run a job of that many
/// chunks (it does nothing otherwise).
const CHILD_CHUNKS: &str = "VEIL_TEST_STREAMING_CHUNKS";
/// Inputs per image of the streaming job: 128 ciphertexts of 32 KiB per chunk (4 MiB).
const WIDE: usize = 128;

/// This process's peak resident memory, KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The child's side of [`memory_does_not_grow_with_chunks`]: a whole job, chunk by chunk,
/// through files (encrypt → batch file → eval → result file → decrypt), then prints its peak
/// memory and the seconds it took.
#[test]
fn streaming_job_in_a_child() {
    let Some(chunks) = std::env::var(CHILD_CHUNKS)
        .ok()
        .and_then(|c| c.parse().ok())
    else {
        return;
    };
    let weights: Vec<i64> = (0..WIDE as i64).map(|i| i % 5 - 2).collect();
    let context = Context::new(toy_plan(&weights)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let keys = context.keygen(&mut rng).unwrap();
    let key = EncryptionKey::Client(&keys.client);
    let images = chunks * context.slots();
    let info = context.new_batch(key, images, &mut rng).unwrap();
    let raw = |index: usize| -> Vec<f32> {
        context
            .chunk_images(&info, index)
            .flat_map(|i| (0..WIDE).map(move |f| ((i + 7 * f) % 11) as f32))
            .collect()
    };
    let dir = std::env::temp_dir();
    let name = |what: &str| dir.join(format!("veil-streaming-{}-{what}", std::process::id()));
    let (batch_path, result_path) = (name("batch"), name("result"));
    let started = std::time::Instant::now();
    let file = std::io::BufWriter::new(std::fs::File::create(&batch_path).unwrap());
    let mut writer = context
        .chunk_writer(ContainerKind::Batch, &info, 0..chunks, file)
        .unwrap();
    for index in 0..chunks {
        let (chunk, _) = context
            .encrypt_chunk(key, &info, index, &raw(index), &mut rng, &|_| {})
            .unwrap();
        writer.write_chunk(&chunk).unwrap();
    }
    writer.finish().unwrap();
    let input = std::io::BufReader::new(std::fs::File::open(&batch_path).unwrap());
    let reader = context.chunk_reader(ContainerKind::Batch, input).unwrap();
    let file = std::io::BufWriter::new(std::fs::File::create(&result_path).unwrap());
    let mut writer = context
        .chunk_writer(ContainerKind::Result, &info, 0..chunks, file)
        .unwrap();
    for chunk in reader {
        let result = context
            .eval_chunk(&keys.server, chunk.unwrap(), &NoProgress)
            .unwrap();
        writer.write_chunk(&result).unwrap();
    }
    writer.finish().unwrap();
    let input = std::io::BufReader::new(std::fs::File::open(&result_path).unwrap());
    for chunk in context.chunk_reader(ContainerKind::Result, input).unwrap() {
        let chunk = chunk.unwrap();
        let scores = context.decrypt_chunk(&keys.client, &chunk).unwrap().scores;
        let expected = context.reference(&raw(chunk.index)).unwrap();
        assert_eq!(scores, expected, "chunk {}", chunk.index);
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&batch_path);
    let _ = std::fs::remove_file(&result_path);
    println!(
        "streaming-job peak_kib={} seconds={seconds:.3}",
        peak_rss_kib().unwrap_or(0)
    );
}

/// Runs the streaming job of `chunks` chunks in a child process (this test binary, running
/// [`streaming_job_in_a_child`] alone) and returns its peak memory in KiB and its seconds.
fn child_job(chunks: usize) -> (u64, f64) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "session::tests::streaming_job_in_a_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CHUNKS, chunks.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("streaming-job ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .to_owned()
    };
    (
        field("peak_kib=").parse().unwrap(),
        field("seconds=").parse().unwrap(),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn memory_does_not_grow_with_chunks() {
    // A chunk of the job holds WIDE ciphertexts of 2 polynomials × 2 primes × 1024 × 8 bytes
    // (4 MiB), its file record about half that (seeded ciphertexts). Were chunks kept, 8
    // chunks would take 6 × 4 MiB more than 2 do; streamed, the peaks agree to well within one
    // chunk.
    let chunk_kib = (WIDE * 2 * 2 * 1024 * 8 / 1024) as u64;
    let (peak2, seconds2) = child_job(2);
    let (peak8, seconds8) = child_job(8);
    eprintln!(
        "streaming job: 2 chunks {peak2} KiB peak in {seconds2:.3} s, 8 chunks {peak8} KiB in {seconds8:.3} s ({:.2}× the time for 4× the chunks)",
        seconds8 / seconds2.max(1e-9)
    );
    assert!(peak2 > 0 && peak8 > 0, "VmHWM is reported");
    assert!(
        peak8 < peak2 + chunk_kib,
        "peak memory grew from {peak2} KiB (2 chunks) to {peak8} KiB (8 chunks); one chunk is {chunk_kib} KiB"
    );
}

/// The toy plan in `scheme` with `upload` low bits rounded away from uploads and `download`
/// from results (Q of 100 bits, t of 17 bits, scores of at most 41 = 3·10 + 1).
fn rounded_context(scheme: Scheme, upload: u32, download: &[u32]) -> Context {
    let mut plan = toy_plan(&[3, -1]);
    plan.params.scheme = scheme;
    plan.compression = Compression {
        upload_bits: upload,
        download_bits: download.to_vec(),
    };
    Context::new(plan).unwrap()
}

/// In both schemes (a BGV component travels as the rounding of t⁻¹·c, in the same width).
#[test]
fn rounded_uploads_and_results_are_smaller_and_decrypt_exactly() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        let whole = rounded_context(scheme, 0, &[]);
        let rounded = rounded_context(scheme, 40, &[70, 60]);
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let keys = whole.keygen(&mut rng).unwrap();
        let raw: Vec<f32> = (0..200).map(|i| (i % 11) as f32).collect();
        let mut sizes = Vec::new();
        for context in [&whole, &rounded] {
            for key in [
                EncryptionKey::Client(&keys.client),
                EncryptionKey::Public(&keys.public),
            ] {
                let (batch, _) = context.encrypt(key, &raw, &mut rng, &|_| {}).unwrap();
                let up = context
                    .batch_to_bytes(ContainerKind::Batch, &batch)
                    .unwrap();
                assert_eq!(up.len(), encoded_len(&batch));
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
                sizes.push((up.len(), down.len(), decrypted.min_noise_budget_bits));
            }
        }
        let ((up, down, budget), (rounded_up, rounded_down, rounded_budget)) = (sizes[0], sizes[2]);
        println!("{scheme:?} whole: {up} B up, {down} B down, {budget} bits; rounded: {rounded_up} B up, {rounded_down} B down, {rounded_budget} bits");
        // Two uploaded ciphertexts lose 40 bits of each of the 1024 coefficients of c0, the
        // one result 70 + 60; each rounded ciphertext names its counts in 2 × 2 bytes.
        assert_eq!(up - rounded_up, 2 * (1024 * 40 / 8 - 4));
        assert_eq!(down - rounded_down, 1024 * (70 + 60) / 8 - 4);
        assert!(rounded_budget > 0 && rounded_budget < budget);
        // The plan's byte counts say the same.
        let per_image = |c: &Context| {
            (
                c.plan().upload_bytes_per_image(),
                c.plan().download_bytes_per_image(),
            )
        };
        let (u, d) = per_image(&whole);
        let (ru, rd) = per_image(&rounded);
        assert_eq!((u - ru, d - rd), (2.0 * 40.0 / 8.0, (70.0 + 60.0) / 8.0));
    }
}

#[test]
fn ciphertexts_rounded_otherwise_than_the_plan_says_are_refused() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        let context = rounded_context(scheme, 40, &[70, 60]);
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let keys = context.keygen(&mut rng).unwrap();
        let (mut batch, _) = context
            .encrypt(
                EncryptionKey::Client(&keys.client),
                &[1.0, 2.0],
                &mut rng,
                &|_| {},
            )
            .unwrap();
        let result = context.eval(&keys.server, batch_copy(&batch), &NoProgress);
        let mut result = result.unwrap();
        // One bit more than the plan says, on either side.
        let rounded = |ct: &Ciphertext, bits: &[u32]| match ct {
            Ciphertext::Bfv(ct) => Ciphertext::Bfv(ct.round_low_bits(bits).unwrap()),
            Ciphertext::Bgv(ct) => Ciphertext::Bgv(ct.round_low_bits(bits).unwrap()),
        };
        batch.chunks[0].values[0][1] = rounded(&batch.chunks[0].values[0][1], &[41]);
        result.chunks[0].values[0][0] = rounded(&result.chunks[0].values[0][0], &[70, 61]);
        for (kind, forged, expected) in [
            (
                ContainerKind::Batch,
                &batch,
                "[41, 0] low bits rounded away, but the plan rounds away [40, 0]",
            ),
            (
                ContainerKind::Result,
                &result,
                "[70, 61] low bits rounded away, but the plan rounds away [70, 60]",
            ),
        ] {
            let bytes = context.batch_to_bytes(kind, forged).unwrap();
            let err = context.batch_from_bytes(kind, &bytes).unwrap_err();
            assert!(err.to_string().ends_with(expected), "{err}");
            assert!(err.to_string().starts_with("ciphertext "), "{err}");
        }
    }
}

/// The same batch again (ciphertexts are cloned).
fn batch_copy(batch: &EncryptedBatch) -> EncryptedBatch {
    EncryptedBatch {
        info: batch.info,
        chunks: batch
            .chunks
            .iter()
            .map(|c| EncryptedChunk {
                batch: c.batch,
                index: c.index,
                values: c.values.clone(),
            })
            .collect(),
    }
}

#[test]
fn rounding_counts_that_cannot_decrypt_are_refused_by_validation() {
    for scheme in [Scheme::Bfv, Scheme::Bgv] {
        for (upload, download, expected) in [
            (83, vec![], "uploads round away 83 low bits"),
            (
                0,
                vec![70],
                "1 download counts for output ciphertexts of 2 components",
            ),
            (0, vec![0, 83], "results round away 83 low bits"),
            (
                0,
                vec![1, 2, 3],
                "3 download counts for output ciphertexts of 2",
            ),
        ] {
            let mut plan = toy_plan(&[3, -1]);
            plan.params.scheme = scheme;
            plan.compression = Compression {
                upload_bits: upload,
                download_bits: download,
            };
            let err = plan.validate().unwrap_err().to_string();
            assert!(err.starts_with("parameters: compression: "), "{err}");
            assert!(err.contains(expected), "{err}");
        }
        let mut plan = toy_plan(&[3, -1]);
        plan.params.scheme = scheme;
        plan.compression.upload_bits = 82;
        plan.compression.download_bits = vec![82, 82];
        plan.validate().unwrap();
    }
    // A plan without rounding writes no compression field, so old plans keep their
    // fingerprints.
    let json = serde_json::to_string(&toy_plan(&[3, -1])).unwrap();
    assert!(!json.contains("compression"));
}
