//! The compiler's settings as flags, shared by `veil compile` and every command that may be
//! given a model file in place of a plan.

use super::model_flags::ModelFlags;
use crate::data;
use crate::error::CliError;
use clap::Args;
use std::path::{Path, PathBuf};
use veil_compiler::{ActivationChoice, CompileOptions, LayoutChoice};
use veil_runtime::plan::Scheme;
use veil_runtime::security::SecurityLevel;

/// Compiler settings: `veil compile`, and every command that may be given a model file in
/// place of a plan (`report`, `infer`, `bench`).
#[derive(Debug, Clone, Args)]
pub struct CompileFlags {
    /// Target security level in bits: 128, 192 or 256.
    #[arg(long, default_value = "128", value_parser = parse_security)]
    pub security: SecurityLevel,
    /// Bits of the largest integer weight of each row, sign included (2..=32), or `auto`: per
    /// layer, the fewest bits whose worst row is off by at most --weight-error-target
    /// (`veil report` lists each layer's bits and error).
    #[arg(long, default_value = "8", value_parser = parse_weight_bits)]
    pub weight_bits: WeightBits,
    /// With --weight-bits auto: the worst-row weight error (percent) each layer must meet.
    #[arg(long, value_name = "PERCENT", value_parser = parse_target)]
    pub weight_error_target: Option<f64>,
    /// Bits of the integer input (2..=24) when the declared range is not already integers
    /// spanning that many bits; raise it for finer input resolution (`veil report` shows it).
    #[arg(long, default_value_t = veil_compiler::DEFAULT_INPUT_BITS)]
    pub input_bits: u32,
    /// Calibration images (IDX or CSV, read as `--images` is): tighter value bounds from data
    /// (largest observed value with a 1-bit margin) instead of the guaranteed worst case.
    #[arg(long, value_name = "IMAGES")]
    pub calibrate: Option<PathBuf>,
    /// What replaces ReLU, GELU, sigmoid and tanh: `square` (x², what networks trained for Veil use)
    /// or `fit` (a·x² + b·x + c fitted by least squares to the activation over the values each
    /// layer sees on the --calibrate images; same depth as x²).
    #[arg(long, default_value = "square", value_parser = parse_activation)]
    pub activation: ActivationChoice,
    /// Noise budget (bits) every output must keep (a finite number, 0 or more).
    #[arg(long, default_value_t = veil_compiler::params::model::DEFAULT_MARGIN_BITS, value_parser = parse_margin)]
    pub margin: f64,
    /// The homomorphic scheme: `auto` (the cost model picks the cheaper; the report shows
    /// both), `bfv` or `bgv`.
    #[arg(long, default_value = DEFAULT_SCHEME_FLAG, value_parser = parse_scheme)]
    pub scheme: SchemeFlag,
    /// The layout: `slots` (one image per slot; pays off for thousands of images), `packed`
    /// (each image in a lane of slots, one ciphertext per layer; about a second per image) or
    /// `auto` (the cheaper for --batch-size images; slots without one).
    #[arg(long, default_value = "auto", value_parser = parse_layout)]
    pub layout: LayoutChoice,
    /// The number of images you expect per batch: `auto` layout picks the layout with the
    /// lower predicted time for it, and the report prices both layouts for it.
    #[arg(long, value_name = "B", value_parser = parse_batch_size)]
    pub batch_size: Option<usize>,
    /// Packed layout: what one Galois key is worth, in rotations, when each layer's rotations
    /// are chosen. Raise it for fewer, smaller evaluation keys and more rotations (slower);
    /// lower it (down to 0) for faster evaluation with more keys. `veil report` shows both.
    #[arg(long, value_name = "ROTATIONS", default_value_t = veil_compiler::packing::split::NEW_KEY, value_parser = parse_key_cost)]
    pub galois_key_cost: f64,
    /// Allow parameters below 128-bit security (the plan records security 0). For tests only.
    #[arg(long)]
    pub insecure: bool,
    /// Input range and class names (required input range for ONNX models).
    #[command(flatten)]
    pub model: ModelFlags,
}

impl Default for CompileFlags {
    /// The command line's defaults: 128-bit security, the compiler's weight precision and
    /// noise margin, no calibration.
    fn default() -> Self {
        CompileFlags {
            security: SecurityLevel::Bits128,
            weight_bits: WeightBits::Fixed(veil_compiler::DEFAULT_WEIGHT_BITS),
            weight_error_target: None,
            input_bits: veil_compiler::DEFAULT_INPUT_BITS,
            calibrate: None,
            activation: ActivationChoice::Square,
            margin: veil_compiler::params::model::DEFAULT_MARGIN_BITS,
            scheme: SchemeFlag(veil_compiler::params::DEFAULT_SCHEME),
            layout: LayoutChoice::Auto,
            batch_size: None,
            galois_key_cost: veil_compiler::packing::split::NEW_KEY,
            insecure: false,
            model: ModelFlags::default(),
        }
    }
}

impl CompileFlags {
    /// The compiler options these flags describe; reads the calibration images, if any.
    pub fn options(&self) -> Result<CompileOptions, CliError> {
        let (weight_bits, weight_error_target) = match (self.weight_bits, self.weight_error_target)
        {
            (WeightBits::Fixed(bits), None) => (bits, None),
            (WeightBits::Fixed(_), Some(_)) => {
                return Err(
                    "--weight-error-target chooses weight bits per layer: give it with --weight-bits auto".into(),
                )
            }
            (WeightBits::Auto, target) => (
                veil_compiler::DEFAULT_WEIGHT_BITS,
                Some(target.map_or(veil_compiler::analysis::DEFAULT_ERROR_TARGET, |p| p / 100.0)),
            ),
        };
        let calibration_samples = match &self.calibrate {
            Some(path) => Some(calibration_samples(path)?),
            None => None,
        };
        Ok(CompileOptions {
            security: (!self.insecure).then_some(self.security),
            weight_bits,
            weight_error_target,
            input_bits: self.input_bits,
            margin_bits: self.margin,
            scheme: self.scheme.0,
            calibration_samples,
            activation: self.activation,
            import: self.model.import_options(),
            layout: self.layout,
            batch_size: self.batch_size,
            galois_key_cost: self.galois_key_cost,
            ..CompileOptions::default()
        })
    }
}

/// The calibration images of `path` as raw inputs, at most as many as the compiler evaluates.
fn calibration_samples(path: &Path) -> Result<Vec<Vec<f64>>, CliError> {
    let images = data::load_images(path)?;
    Ok(images
        .iter()
        .take(veil_compiler::MAX_CALIBRATION_SAMPLES)
        .map(|image| image.iter().map(|&v| f64::from(v)).collect())
        .collect())
}

/// `--weight-bits`: one count for every layer, or chosen per layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightBits {
    /// The same bits for every layer.
    Fixed(u32),
    /// The fewest bits per layer that meet the error target.
    Auto,
}

fn parse_weight_bits(s: &str) -> Result<WeightBits, String> {
    if s == "auto" {
        return Ok(WeightBits::Auto);
    }
    s.parse::<u32>()
        .ok()
        .filter(|b| (2..=32).contains(b))
        .map(WeightBits::Fixed)
        .ok_or_else(|| format!("`{s}` is not a weight bit count: give 2..=32 or `auto`"))
}

fn parse_target(s: &str) -> Result<f64, String> {
    s.trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p > 0.0 && *p < 100.0)
        .ok_or_else(|| {
            format!("`{s}` is not an error target: give a percentage above 0 and below 100, e.g. 1")
        })
}

fn parse_security(s: &str) -> Result<SecurityLevel, String> {
    s.parse::<u32>()
        .ok()
        .and_then(SecurityLevel::from_bits)
        .ok_or_else(|| {
            format!("`{s}` is not a security level: use 128, 192 or 256 (or --insecure for tests)")
        })
}

fn parse_activation(s: &str) -> Result<ActivationChoice, String> {
    match s {
        "square" => Ok(ActivationChoice::Square),
        "fit" => Ok(ActivationChoice::Fit),
        _ => Err(format!(
            "`{s}` is not an activation replacement: use `square` (x²) or `fit` (a fitted a·x² + b·x + c, with --calibrate)"
        )),
    }
}

/// A `--scheme` value: a scheme, or `None` for `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemeFlag(pub Option<Scheme>);

/// The default `--scheme`, as the compiler's default choice spells it.
const DEFAULT_SCHEME_FLAG: &str = match veil_compiler::params::DEFAULT_SCHEME {
    None => "auto",
    Some(scheme) => scheme.name(),
};

fn parse_scheme(s: &str) -> Result<SchemeFlag, String> {
    if s == "auto" {
        return Ok(SchemeFlag(None));
    }
    s.parse::<Scheme>()
        .map(|scheme| SchemeFlag(Some(scheme)))
        .map_err(|e| format!("{e}, or `auto` to let the cost model choose"))
}

fn parse_margin(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m >= 0.0)
        .ok_or_else(|| format!("`{s}` is not a noise margin: give a number of bits, 0 or more"))
}

fn parse_layout(s: &str) -> Result<LayoutChoice, String> {
    match s {
        "auto" => Ok(LayoutChoice::Auto),
        "slots" => Ok(LayoutChoice::Slots),
        "packed" => Ok(LayoutChoice::Packed),
        _ => Err(format!(
            "`{s}` is not a layout: use `auto` (the cheaper for --batch-size), `slots` or `packed`"
        )),
    }
}

fn parse_key_cost(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a key cost: give a number of rotations from 0 to 1e6"
        )),
    }
}

fn parse_batch_size(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|&b| b >= 1)
        .ok_or_else(|| format!("`{s}` is not a batch size: give a number of images, 1 or more"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests stop on failure")]

    use super::*;

    #[test]
    fn layouts_and_batch_sizes_parse_or_say_what_to_give() {
        assert_eq!(parse_layout("auto").unwrap(), LayoutChoice::Auto);
        assert_eq!(parse_layout("slots").unwrap(), LayoutChoice::Slots);
        assert_eq!(parse_layout("packed").unwrap(), LayoutChoice::Packed);
        assert!(parse_layout("lanes")
            .unwrap_err()
            .contains("`slots` or `packed`"));
        assert_eq!(parse_batch_size("1").unwrap(), 1);
        assert_eq!(parse_batch_size("16384").unwrap(), 16384);
        for bad in ["0", "-1", "many"] {
            assert!(parse_batch_size(bad).unwrap_err().contains("1 or more"));
        }
    }

    #[test]
    fn the_flags_reach_the_compiler_options() {
        let flags = CompileFlags {
            layout: LayoutChoice::Packed,
            batch_size: Some(3),
            ..CompileFlags::default()
        };
        let opts = flags.options().unwrap();
        assert_eq!(
            (opts.layout, opts.batch_size),
            (LayoutChoice::Packed, Some(3))
        );
        let defaults = CompileFlags::default().options().unwrap();
        assert_eq!(
            (defaults.layout, defaults.batch_size),
            (LayoutChoice::Auto, None)
        );
    }
}
