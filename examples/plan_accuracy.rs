//! Float model vs compiled plan: accuracy of both on a labelled test set.
//!
//! ```sh
//! cargo run --release --example plan_accuracy -- MODEL IMAGES LABELS [WEIGHT_BITS ...]
//! cargo run --release --example plan_accuracy -- models/cryptonets-mnist.ron \
//!     models/data/mnist/test-images-idx3-ubyte.gz models/data/mnist/test-labels-idx1-ubyte.gz 8 10
//! ```
//!
//! For each weight-bit setting (default: the compiler's) the model is compiled with 128-bit
//! security and every image is classified twice: by the float model as loaded and by exact
//! integer evaluation of the plan, which is what the encrypted circuit computes. The numbers
//! are the "float accuracy" and "plan accuracy" columns of models/README.md.

use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use veil::data::{check_labels, load_images, load_labels};
use veil_compiler::eval::{argmax, plan_scores};
use veil_compiler::{compile_path, CompileOptions, DEFAULT_WEIGHT_BITS};

const USAGE: &str = "usage: plan_accuracy MODEL IMAGES LABELS [WEIGHT_BITS ...]";

/// Predictions of one classifier, or the first error it met.
fn predictions<F>(count: usize, classify: F) -> Result<Vec<usize>, String>
where
    F: Fn(usize) -> Result<usize, String> + Send + Sync,
{
    (0..count).into_par_iter().map(classify).collect()
}

fn accuracy(predicted: &[usize], labels: &[u32]) -> f64 {
    let correct = predicted
        .iter()
        .zip(labels)
        .filter(|(&p, &l)| u32::try_from(p).is_ok_and(|p| p == l))
        .count();
    100.0 * correct as f64 / predicted.len().max(1) as f64
}

fn run(args: &[String]) -> Result<(), String> {
    let [model, images, labels, bits @ ..] = args else {
        return Err(USAGE.to_owned());
    };
    let model = PathBuf::from(model);
    let images = load_images(images).map_err(|e| e.to_string())?;
    let labels = load_labels(labels).map_err(|e| e.to_string())?;
    check_labels(&images, &labels).map_err(|e| e.to_string())?;
    let bits: Vec<u32> = if bits.is_empty() {
        vec![DEFAULT_WEIGHT_BITS]
    } else {
        bits.iter()
            .map(|b| b.parse().map_err(|_| format!("`{b}` is not a bit count")))
            .collect::<Result<_, _>>()?
    };
    let count = images.count();
    let image = |i: usize| images.image(i).ok_or_else(|| format!("no image {i}"));
    println!("{}: {count} images", model.display());

    let mut float_acc = None;
    for weight_bits in bits {
        let started = Instant::now();
        let options = CompileOptions {
            weight_bits,
            ..CompileOptions::default()
        };
        let compiled = compile_path(&model, &options).map_err(|e| e.to_string())?;
        let compile_seconds = started.elapsed().as_secs_f64();
        if float_acc.is_none() {
            let float = predictions(count, |i| {
                let scores = compiled
                    .float_scores(image(i)?)
                    .map_err(|e| e.to_string())?;
                let scores: Vec<f64> = scores.into_iter().map(f64::from).collect();
                Ok(argmax(&scores))
            })?;
            let acc = accuracy(&float, labels.as_slice());
            println!("float accuracy             {acc:.2}%");
            float_acc = Some(acc);
        }
        let plan = predictions(count, |i| {
            let raw: Vec<f64> = image(i)?.iter().map(|&v| f64::from(v)).collect();
            let scores = plan_scores(&compiled.plan, &raw).map_err(|e| e.to_string())?;
            Ok(argmax(&scores))
        })?;
        let acc = accuracy(&plan, labels.as_slice());
        let drop = float_acc.map_or(0.0, |f| f - acc);
        println!(
            "weight bits {weight_bits:2}: plan accuracy {acc:.2}% (float − plan = {drop:+.2} points), \
             depth {}, compiled in {compile_seconds:.1} s",
            compiled.plan.depth
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
