//! What a model file declares and an ONNX file does not: the raw input range and the class
//! names. Shared by `veil import` and every command that compiles a model.

use clap::Args;
use veil_compiler::ImportOptions;

/// Flags for facts an ONNX model does not record.
#[derive(Debug, Clone, Default, Args)]
pub struct ModelFlags {
    /// Range of the raw input values as MIN,MAX (e.g. 0,255 for image bytes). Required for
    /// ONNX models, which do not record it; for a model file it replaces the declared range.
    #[arg(long, value_name = "MIN,MAX", value_parser = parse_range, allow_hyphen_values = true)]
    pub input_range: Option<(f64, f64)>,
    /// Class names, comma-separated, one per output (default 0, 1, …); for a model file they
    /// replace the declared ones.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',')]
    pub class_names: Option<Vec<String>>,
}

impl ModelFlags {
    /// The compiler's import options these flags describe.
    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            input_range: self.input_range,
            class_names: self.class_names.clone(),
        }
    }
}

fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let bad = || {
        format!(
            "`{s}` is not an input range: give the smallest and largest raw input value as \
             MIN,MAX, e.g. 0,255"
        )
    };
    let (min, max) = s.split_once(',').ok_or_else(bad)?;
    let min: f64 = min.trim().parse().map_err(|_| bad())?;
    let max: f64 = max.trim().parse().map_err(|_| bad())?;
    if !(min.is_finite() && max.is_finite()) || min > max {
        return Err(format!(
            "`{s}` is not an input range: MIN and MAX must be finite with MIN ≤ MAX"
        ));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_range("0,255"), Ok((0.0, 255.0)));
        assert_eq!(parse_range("-1, 1"), Ok((-1.0, 1.0)));
        for bad in ["255", "a,b", "3,1", "0,inf"] {
            let err = parse_range(bad).err().unwrap_or_default();
            assert!(err.contains("is not an input range"), "{bad}: {err}");
        }
    }
}
