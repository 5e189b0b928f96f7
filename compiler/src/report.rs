//! The per-layer report of a plan (`veil report`, and the summary of `veil compile`).

use crate::packing::{self, LayoutPrice, PackedFigures};
use crate::params::SchemeOption;
use serde::Serialize;
use std::fmt::Write;
use veil_runtime::plan::{Calibration, Compression, InputEncoding, Plan, Scheme, Step};
use veil_runtime::security::SecurityLevel;

/// The parameter block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportParams {
    /// Ring degree.
    pub n: usize,
    /// Ciphertext primes.
    pub q_primes: Vec<u64>,
    /// Bits of each ciphertext prime.
    pub q_bits: Vec<u32>,
    /// log2 of the product of the ciphertext primes.
    pub log2_q: f64,
    /// Special key-switching primes.
    pub special_primes: Vec<u64>,
    /// log2 of q times the special primes (what the security bound limits).
    pub log2_qp: f64,
    /// Plaintext primes.
    pub t: Vec<u64>,
    /// Bits of each plaintext prime.
    pub t_bits: Vec<u32>,
    /// 128, 192, 256, or 0 (insecure).
    pub security_bits: u32,
    /// The homomorphic scheme.
    pub scheme: Scheme,
}

/// How raw inputs become integers (the plan's one input rule, see
/// `veil_runtime::plan::InputEncoding::encode`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportInput {
    /// Declared range of raw values; values outside are clamped to it.
    pub raw_min: f64,
    /// Declared range of raw values.
    pub raw_max: f64,
    /// Integer = round(raw × scale).
    pub scale: f64,
    /// Largest |integer input|.
    pub max_abs: i64,
    /// Smallest raw difference the encoding tells apart (1 / scale).
    pub resolution: f64,
    /// Raw values per input.
    pub raw_values: usize,
    /// Raw values that influence the output (the rest are not sent).
    pub values_used: usize,
}

impl ReportInput {
    fn new(input: &InputEncoding) -> Self {
        ReportInput {
            raw_min: input.raw_min,
            raw_max: input.raw_max,
            scale: input.scale,
            max_abs: input.max_abs,
            resolution: input.resolution(),
            raw_values: input.raw_len(),
            values_used: input.features.len(),
        }
    }
}

/// One row per register.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerRow {
    /// Layer name(s).
    pub name: String,
    /// `input`, `linear IN→OUT` or `square`.
    pub op: String,
    /// Ciphertexts out (per plaintext prime).
    pub outputs: usize,
    /// Multiplicative depth.
    pub depth: u32,
    /// log2 of the guaranteed |value| bound.
    pub value_bits: f64,
    /// log2 of the calibrated bound, when calibrated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibrated_value_bits: Option<f64>,
    /// Predicted noise budget left (bits).
    pub noise_budget_bits: f64,
    /// q primes left.
    pub level: usize,
    /// Ciphertext-by-integer multiplications.
    pub scalar_mults: usize,
    /// Ciphertext additions (plaintext bias additions included).
    pub additions: usize,
    /// Ciphertext squares.
    pub squares: usize,
    /// Relinearisations.
    pub relins: usize,
    /// Ciphertexts switched down.
    pub mod_switches: usize,
}

/// How one affine layer's weights were quantised (compiled from a model): the figures of
/// [`crate::analysis::LayerError`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuantRow {
    /// Layer name(s).
    pub layer: String,
    /// Bits of the largest integer weight of each row, sign included.
    pub weight_bits: u32,
    /// Relative weight error of the worst row (against the row without its largest weight).
    pub worst_row_error: f64,
    /// That row.
    pub worst_row: usize,
    /// Relative weight error over the whole layer.
    pub layer_error: f64,
    /// Relative error of the layer's outputs on the calibration inputs, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_error: Option<f64>,
}

impl From<&crate::analysis::LayerError> for QuantRow {
    fn from(e: &crate::analysis::LayerError) -> Self {
        QuantRow {
            layer: e.layer.clone(),
            weight_bits: e.weight_bits,
            worst_row_error: e.worst_row_error,
            worst_row: e.worst_row,
            layer_error: e.layer_error,
            output_error: e.output_error,
        }
    }
}

/// The report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Model name.
    pub model: String,
    /// Parameters.
    pub params: ReportParams,
    /// The input encoding.
    pub input: ReportInput,
    /// Multiplicative depth.
    pub depth: u32,
    /// One row per register, in program order.
    pub layers: Vec<LayerRow>,
    /// Predicted budget left at the output (bits), as the client receives it (after the
    /// rounding of [`Report::compression`]).
    pub noise_budget_bits: f64,
    /// Predicted budget of the output register at the end of the circuit, before the results
    /// are rounded for download (bits).
    pub circuit_noise_budget_bits: f64,
    /// Low bits rounded away from uploads and results.
    #[serde(skip_serializing_if = "Compression::is_none")]
    pub compression: Compression,
    /// Upload per image (bytes).
    pub upload_bytes_per_image: f64,
    /// Download per image (bytes).
    pub download_bytes_per_image: f64,
    /// Passes applied (with whether they changed the graph), when compiled from a model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passes: Vec<String>,
    /// Warnings, when compiled from a model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Weight quantisation per affine layer, when compiled from a model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quantisation: Vec<QuantRow>,
    /// The worst-row error target the weight bits were chosen for (`--weight-bits auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_error_target: Option<f64>,
    /// Calibration facts when the plaintext primes cover calibrated bounds only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// When compiled from a model: the best parameters of every scheme searched, so the choice
    /// is visible (`--scheme auto` searches both).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<SchemeOption>,
    /// When compiled with a batch size or a layout: both layouts priced for that batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layouts: Option<LayoutComparison>,
    /// When the plan is packed: its lane and each linear map's diagonals and key switches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packing: Option<PackedFigures>,
}

/// One layout priced for a batch (the report's layout comparison).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayoutOption {
    /// `slots` or `packed`.
    pub layout: &'static str,
    /// Whether the plan uses it.
    pub chosen: bool,
    /// Ring degree.
    pub n: usize,
    /// Plaintext primes (runs).
    pub plain_primes: usize,
    /// q primes.
    pub q_primes: usize,
    /// Images one ciphertext serves.
    pub images_per_ciphertext: usize,
    /// Predicted seconds (encryption and evaluation) for the batch.
    pub seconds: f64,
    /// Predicted seconds per ciphertext group.
    pub seconds_per_group: f64,
    /// Bytes uploaded per image of the batch (whole ciphertexts).
    pub upload_bytes_per_image: f64,
    /// Bytes downloaded per image of the batch (whole ciphertexts).
    pub download_bytes_per_image: f64,
    /// Evaluation keys (relinearisation and Galois), bytes, uploaded once.
    pub eval_key_bytes: f64,
    /// Galois keys.
    pub galois_keys: usize,
}

impl LayoutOption {
    /// The figures of `plan` (named `layout`) for a batch of `batch` images.
    pub fn of(
        plan: &Plan,
        layout: &'static str,
        price: LayoutPrice,
        batch: usize,
        galois_keys: usize,
    ) -> Self {
        let per = price.images_per_ciphertext.max(1);
        // Whole ciphertexts travel: a batch smaller than a ciphertext pays for all of it.
        let fill = (batch.div_ceil(per) * per) as f64 / batch.max(1) as f64;
        LayoutOption {
            layout,
            chosen: false,
            n: plan.params.degree,
            plain_primes: plan.params.plain_primes.len(),
            q_primes: plan.params.q_primes.len(),
            images_per_ciphertext: per,
            seconds: price.seconds(batch),
            seconds_per_group: price.seconds_per_group,
            upload_bytes_per_image: plan.upload_bytes_per_image() * fill,
            download_bytes_per_image: plan.download_bytes_per_image() * fill,
            eval_key_bytes: packing::eval_key_bytes(plan),
            galois_keys,
        }
    }

    fn price(&self) -> LayoutPrice {
        LayoutPrice {
            images_per_ciphertext: self.images_per_ciphertext,
            seconds_per_group: self.seconds_per_group,
        }
    }
}

/// The two layouts priced for the batch size the user expects.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayoutComparison {
    /// Images per batch the figures are for.
    pub batch_size: usize,
    /// The layout the plan uses.
    pub chosen: LayoutOption,
    /// The other layout, when it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<LayoutOption>,
    /// The smallest batch at which the layout cheaper for one image stops being cheaper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossover_batch: Option<usize>,
    /// Why the packed layout does not apply, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packed_unavailable: Option<String>,
}

impl LayoutComparison {
    /// The comparison of `chosen` and `rejected` (the crossover from their prices).
    pub fn new(
        batch_size: usize,
        chosen: LayoutOption,
        rejected: Option<LayoutOption>,
        packed_unavailable: Option<String>,
    ) -> Self {
        let crossover_batch = rejected
            .as_ref()
            .and_then(|r| packing::crossover(&chosen.price(), &r.price()));
        LayoutComparison {
            batch_size,
            chosen,
            rejected,
            crossover_batch,
            packed_unavailable,
        }
    }

    /// The comparison as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "layouts for a batch of {} image(s)", self.batch_size);
        let _ = writeln!(
            out,
            "  {:<8} {:>6} {:>5} {:>10} {:>11} {:>12} {:>14} {:>12} {:>7}",
            "layout",
            "n",
            "runs",
            "images/ct",
            "seconds",
            "up/image",
            "down/image",
            "eval keys",
            "Galois"
        );
        for (o, mark) in [(Some(&self.chosen), "chosen"), (self.rejected.as_ref(), "")] {
            let Some(o) = o else { continue };
            let _ = writeln!(
                out,
                "  {:<8} {:>6} {:>5} {:>10} {:>11.3} {:>10.0} B {:>12.0} B {:>10.1} MB {:>7} {mark}",
                o.layout,
                o.n,
                o.plain_primes,
                o.images_per_ciphertext,
                o.seconds,
                o.upload_bytes_per_image,
                o.download_bytes_per_image,
                o.eval_key_bytes / 1e6,
                o.galois_keys
            );
        }
        match (self.crossover_batch, &self.rejected) {
            (Some(b), Some(_)) => {
                let _ = writeln!(
                    out,
                    "  crossover          the layouts cost the same at about {b} images"
                );
            }
            (None, Some(_)) => {
                let _ = writeln!(out, "  crossover          none below 2^22 images");
            }
            _ => {}
        }
        if let Some(why) = &self.packed_unavailable {
            let _ = writeln!(out, "  packed             {why}");
        }
        out
    }
}

/// The packed layout's figures as text.
fn packing_text(p: &PackedFigures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "packed layout: lane {} slots, {} images per ciphertext, {} Galois keys",
        p.lane, p.images_per_ciphertext, p.galois_keys
    );
    let w = p
        .linears
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "  {:<w$}  {:>11} {:>9} {:>12} {:>5} {:>10} {:>11}",
        "layer", "map", "diagonals", "key switches", "fold", "baby steps", "outer steps"
    );
    for l in &p.linears {
        let _ = writeln!(
            out,
            "  {:<w$}  {:>11} {:>9} {:>12} {:>5} {:>10} {:>11}",
            l.name,
            format!("{}→{}", l.cols, l.rows),
            l.diagonals,
            l.key_switches,
            l.fold_parts,
            l.baby_steps,
            l.outer_steps
        );
    }
    out
}

/// `x` to four significant digits, without trailing zeros (255 → "255", 1/255 → "0.003922"):
/// the report's scales and resolutions are for reading, the JSON keeps every digit.
fn four_digits(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

impl Report {
    /// Builds the report of a plan (register facts and step counts).
    pub fn from_plan(plan: &Plan) -> Report {
        let q_log: f64 = plan
            .params
            .q_primes
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        let p_log: f64 = plan
            .params
            .special_primes
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        let params = ReportParams {
            n: plan.params.degree,
            q_primes: plan.params.q_primes.clone(),
            q_bits: plan.params.q_primes.iter().map(|&q| bits(q)).collect(),
            log2_q: q_log,
            special_primes: plan.params.special_primes.clone(),
            log2_qp: q_log + p_log,
            t: plan.params.plain_primes.clone(),
            t_bits: plan.params.plain_primes.iter().map(|&q| bits(q)).collect(),
            security_bits: plan.params.security_bits,
            scheme: plan.params.scheme,
        };
        let mut rows: Vec<Option<LayerRow>> = vec![None; plan.registers.len()];
        let mut order = vec![plan.input.register];
        let row = |r: usize, op: String| {
            let reg = &plan.registers[r];
            LayerRow {
                name: reg.name.clone(),
                op,
                outputs: plan.ciphertexts_of(r),
                depth: reg.depth,
                value_bits: reg.value_bits,
                calibrated_value_bits: reg.calibrated_value_bits,
                noise_budget_bits: reg.noise_budget_bits,
                level: reg.level,
                scalar_mults: 0,
                additions: 0,
                squares: 0,
                relins: 0,
                mod_switches: 0,
            }
        };
        if plan.input.register < rows.len() {
            rows[plan.input.register] = Some(row(plan.input.register, "input".into()));
        }
        for step in &plan.steps {
            match step {
                Step::Linear {
                    inputs,
                    output,
                    matrix,
                    bias,
                    ..
                } => {
                    let cols: usize = inputs
                        .iter()
                        .filter_map(|&i| plan.registers.get(i))
                        .map(|r| r.len)
                        .sum();
                    let mut r = row(*output, format!("linear {cols}→{}", matrix.rows));
                    r.scalar_mults = matrix.nnz();
                    let nonempty = matrix.row_ptr.windows(2).filter(|w| w[1] > w[0]).count();
                    r.additions =
                        matrix.nnz() - nonempty + bias.iter().filter(|&&b| b != 0).count();
                    rows[*output] = Some(r);
                    order.push(*output);
                }
                Step::Square { output, .. } => {
                    let mut r = row(*output, "square".into());
                    r.squares = plan.ciphertexts_of(*output);
                    rows[*output] = Some(r);
                    order.push(*output);
                }
                Step::Relinearize { register } => {
                    if let Some(Some(r)) = rows.get_mut(*register) {
                        r.relins += plan.ciphertexts_of(*register);
                    }
                }
                Step::ModSwitch { register, .. } => {
                    if let Some(Some(r)) = rows.get_mut(*register) {
                        r.mod_switches += plan.ciphertexts_of(*register);
                    }
                }
            }
        }
        let layers = order
            .into_iter()
            .filter_map(|r| rows.get_mut(r).and_then(Option::take))
            .collect();
        Report {
            model: plan.model.clone(),
            params,
            input: ReportInput::new(&plan.input),
            depth: plan.depth,
            layers,
            noise_budget_bits: plan.predicted_noise_budget_bits,
            circuit_noise_budget_bits: plan
                .registers
                .get(plan.output.register)
                .map_or(plan.predicted_noise_budget_bits, |r| r.noise_budget_bits),
            compression: plan.compression.clone(),
            upload_bytes_per_image: plan.upload_bytes_per_image(),
            download_bytes_per_image: plan.download_bytes_per_image(),
            passes: Vec::new(),
            warnings: Vec::new(),
            quantisation: Vec::new(),
            weight_error_target: None,
            calibration: plan.calibration.clone(),
            schemes: Vec::new(),
            layouts: None,
            packing: packing::figures(plan).ok(),
        }
    }

    /// The parameter block as text.
    pub fn params_text(&self) -> String {
        let p = &self.params;
        let mut out = String::new();
        let security = match SecurityLevel::from_bits(p.security_bits) {
            Some(level) => level.to_string(),
            None => "NONE (--insecure)".to_owned(),
        };
        let i = &self.input;
        let _ = writeln!(out, "  n                  {}", p.n);
        let _ = writeln!(
            out,
            "  q                  {} primes, {:.1} bits ({:?}) + special prime {:.1} bits; log2(q·p) = {:.1}",
            p.q_primes.len(),
            p.log2_q,
            p.q_bits,
            p.log2_qp - p.log2_q,
            p.log2_qp
        );
        let _ = writeln!(
            out,
            "  t                  {} prime(s) {:?} ({:?} bits)",
            p.t.len(),
            p.t,
            p.t_bits
        );
        let _ = writeln!(out, "  security           {security}");
        let _ = writeln!(out, "  scheme             {}", self.scheme_text());
        let _ = writeln!(
            out,
            "  input              raw [{}, {}] (clamped) → round(raw × {}) in ±{}: resolution {} raw units; {} of {} values used",
            i.raw_min, i.raw_max, four_digits(i.scale), i.max_abs, four_digits(i.resolution), i.values_used, i.raw_values
        );
        let _ = writeln!(out, "  depth              {}", self.depth);
        if self.compression.download_bits.iter().any(|&k| k > 0) {
            let _ = writeln!(
                out,
                "  noise budget       {:.1} bits left at the output, {:.1} as downloaded (predicted)",
                self.circuit_noise_budget_bits, self.noise_budget_bits
            );
        } else {
            let _ = writeln!(
                out,
                "  noise budget       {:.1} bits left at the output (predicted)",
                self.noise_budget_bits
            );
        }
        let _ = writeln!(
            out,
            "  bytes per image    {:.0} up, {:.0} down",
            self.upload_bytes_per_image, self.download_bytes_per_image
        );
        if !self.compression.is_none() {
            let c = &self.compression;
            let _ = writeln!(
                out,
                "  rounded away       {} low bits of c0 up, {:?} of the components down",
                c.upload_bits, c.download_bits
            );
        }
        if let Some(c) = &self.calibration {
            let _ = writeln!(
                out,
                "  value bounds       CALIBRATED on {} inputs with a {:.0}-bit margin (not guaranteed over the declared range)",
                c.samples, c.margin_bits
            );
        }
        out
    }

    /// The scheme, and when others were searched, their predicted cost relative to it.
    fn scheme_text(&self) -> String {
        let chosen = self.params.scheme;
        let mine = self.schemes.iter().find(|o| o.scheme == chosen);
        let others: Vec<String> = self
            .schemes
            .iter()
            .filter(|o| o.scheme != chosen)
            .map(|o| match mine {
                Some(m) if m.cost_per_image > 0.0 => format!(
                    "{} predicted {:.2}× the time (n = {}, {} q primes)",
                    o.scheme,
                    o.cost_per_image / m.cost_per_image,
                    o.n,
                    o.q_primes
                ),
                _ => format!("{} also possible", o.scheme),
            })
            .collect();
        match (others.is_empty(), self.schemes.is_empty()) {
            (false, _) => format!(
                "{chosen} (cheapest by the cost model; {})",
                others.join("; ")
            ),
            (true, false) => {
                format!("{chosen} (the only scheme searched, or the only one that fits)")
            }
            (true, true) => chosen.to_string(),
        }
    }

    /// The packed layout's lane and linear maps (when packed) and the two layouts priced for
    /// the batch size (when one or a layout was given); empty otherwise.
    pub fn layout_text(&self) -> String {
        let mut out = String::new();
        if let Some(p) = &self.packing {
            out.push_str(&packing_text(p));
        }
        if let Some(l) = &self.layouts {
            out.push_str(&l.to_text());
        }
        out
    }

    /// The weight quantisation of each affine layer as text (empty for a plan file).
    pub fn quantisation_text(&self) -> String {
        let mut out = String::new();
        if self.quantisation.is_empty() {
            return out;
        }
        let chosen = self.weight_error_target.map_or_else(String::new, |t| {
            format!(
                " (bits chosen per layer: the fewest with a worst row ≤ {} %)",
                four_digits(100.0 * t)
            )
        });
        let _ = writeln!(out, "weight quantisation{chosen}");
        let w = self
            .quantisation
            .iter()
            .map(|q| q.layer.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "  {:<w$}  {:>4} {:>10} {:>9} {:>9}",
            "layer", "bits", "worst row", "layer", "outputs"
        );
        for q in &self.quantisation {
            let outputs = q
                .output_error
                .map_or_else(|| "-".to_owned(), |e| format!("{:.3} %", 100.0 * e));
            let _ = writeln!(
                out,
                "  {:<w$}  {:>4} {:>8.3} % {:>7.3} % {:>9}",
                q.layer,
                q.weight_bits,
                100.0 * q.worst_row_error,
                100.0 * q.layer_error,
                outputs
            );
        }
        out
    }

    /// The per-layer table and the parameter block as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "model {}", self.model);
        let w = self
            .layers
            .iter()
            .map(|l| l.name.len())
            .max()
            .unwrap_or(4)
            .max(5);
        let _ = writeln!(
            out,
            "{:<w$}  {:<16} {:>7} {:>5} {:>7} {:>7} {:>5} {:>9} {:>9} {:>7} {:>6} {:>6}",
            "layer",
            "op",
            "cts out",
            "depth",
            "|x| ≤2^",
            "budget",
            "level",
            "scal.mul",
            "adds",
            "squares",
            "relins",
            "modsw"
        );
        for l in &self.layers {
            let bits = match l.calibrated_value_bits {
                Some(c) => format!("{c:.1}*"),
                None => format!("{:.1}", l.value_bits),
            };
            let _ = writeln!(
                out,
                "{:<w$}  {:<16} {:>7} {:>5} {:>7} {:>7.1} {:>5} {:>9} {:>9} {:>7} {:>6} {:>6}",
                l.name,
                l.op,
                l.outputs,
                l.depth,
                bits,
                l.noise_budget_bits,
                l.level,
                l.scalar_mults,
                l.additions,
                l.squares,
                l.relins,
                l.mod_switches
            );
        }
        if self.calibration.is_some() {
            let _ = writeln!(out, "(* calibrated bound)");
        }
        out.push_str(&self.quantisation_text());
        let _ = writeln!(out, "parameters");
        out.push_str(&self.params_text());
        out.push_str(&self.layout_text());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::four_digits;

    #[test]
    fn scales_and_resolutions_print_to_four_significant_digits() {
        assert_eq!(four_digits(255.0), "255");
        assert_eq!(four_digits(1.0), "1");
        assert_eq!(four_digits(1.0 / 255.0), "0.003922");
        assert_eq!(four_digits(63.75), "63.75");
        assert_eq!(four_digits(4095.0 / 1000.0), "4.095");
        assert_eq!(four_digits(0.0), "0");
    }
}
